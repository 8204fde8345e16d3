"""Cost curves and kernel efficiency of the trajectory engine.

    python analysis/benchmarks/bench_costs.py           # ~3-5 min on an idle core

Cost curves (400 log-spaced times in [1e-4, 1e3], kernels compiled beforehand):

- time per trajectory and memory of the sector tables against N_1 for two domains (N_1, 2) and
  three domains (N_1, 10, 3), and against the number of domains (prefixes of (6, 5, 4, 3, 2, 1));
- memory, three numbers: trajspin's own estimate
  ``trajspin.trajectories.trajectory_memory_estimate(chain)``, and the tracemalloc peak and
  retained bytes while the tables are built (first ``run_trajectories`` call on a fresh Chain);
- the growth exponent is the least-squares log-log slope, over all points and over the
  last three ("large N"); for the domain count also the factor per added domain.
  Each point runs enough trajectories for about ``--seconds`` of work.

Kernel efficiency, for chains whose largest sector d_K is 100-1000:

- time per jump = run time / ``r.njumps_sum``, measured with 2 output times (the jump work
  alone) and with the 400-point grid (adds the O(d_K^2) evaluation at each output time);
- against the time of one dense d_K x d_K matrix-vector product (numpy ``A @ x``, one BLAS
  thread, best of many) for the largest sector d_K, in the same run;
- and against the jump-weighted floor: at zero temperature every jump lowers K by one, so a
  trajectory that ends in sector K_f made one jump out of each K = K_0 .. K_f + 1, and
  sum over trajectories of sum_K t_matvec(d_K) is the time one matrix-vector product per jump
  would take (``final_excitation_counts`` gives the K_f).  The dense spectral method needs
  two per jump (state at the jump V_K a, new coefficients V_{K-1}^T L psi).

Results go to ``analysis/benchmarks/results/bench_costs.json``; ``plot`` draws the PNGs.
"""
from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import time
import timeit
import tracemalloc
from pathlib import Path

import numpy as np

import trajspin
from trajspin.estimate import estimate, table_bytes
from bench_master import (chain_name, fmt_s, load1, log_grid, machine_info, print_report,
                          write_json)

SERIES = {
    "two domains (N1, 2)": [(n, 2) for n in (10, 20, 40, 80, 160, 320, 640)],
    "three domains (N1, 10, 3)": [(n, 10, 3) for n in (10, 20, 40, 80, 160, 320, 640)],
    "domains: prefixes of (6, 5, 4, 3, 2, 1)": [(6, 5), (6, 5, 4), (6, 5, 4, 3), (6, 5, 4, 3, 2),
                                                (6, 5, 4, 3, 2, 1)],
}
QUICK_SERIES = {
    "two domains (N1, 2)": [(n, 2) for n in (10, 20, 40, 80)],
    "three domains (N1, 10, 3)": [(n, 10, 3) for n in (10, 20, 40, 80)],
    "domains: prefixes of (6, 5, 4, 3, 2, 1)": [(6, 5), (6, 5, 4), (6, 5, 4, 3), (6, 5, 4, 3, 2)],
}
QUICK_KERNEL_CHAINS = [(200, 10, 10)]
ESTIMATE_RUNS = [((200, 100, 50, 20), 100, 2)]      # (chain, ntraj, ranks): issue 7's target
KERNEL_CHAINS = [(200, 10, 10), (300, 20, 10), (150, 30, 15), (100, 40, 20)]
SEED = 1


def _fresh_tables(sizes, times):
    """Build the sector tables of a fresh Chain under tracemalloc: (chain, seconds, peak, retained)."""
    chain = trajspin.Chain(sizes)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    t0 = time.perf_counter()
    trajspin.run_trajectories(chain, times[:2], 1, seed=SEED, progress=False)
    setup = time.perf_counter() - t0
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return chain, setup, peak - base, current - base


def _timed_run(chain, times, seconds, nmin=5, nmax=20_000):
    """Run enough trajectories for about ``seconds``; returns (result, wall, ntraj)."""
    t0 = time.perf_counter()
    r = trajspin.run_trajectories(chain, times, nmin, seed=SEED, progress=False)
    wall = time.perf_counter() - t0
    n = int(np.clip(seconds / max(wall / nmin, 1e-7), nmin, nmax))
    if n > nmin:
        t0 = time.perf_counter()
        r = trajspin.run_trajectories(chain, times, n, seed=SEED, progress=False)
        wall = time.perf_counter() - t0
    return r, wall, r.ntraj


def cost_point(sizes, times, seconds):
    chain, setup, peak, retained = _fresh_tables(sizes, times)
    r, wall, n = _timed_run(chain, times, seconds)
    est = estimate(chain, "trajectories", ntraj=n, times=times)
    return {"chain": list(sizes), "N1": sizes[0], "M": len(sizes), "ntraj": n,
            "predicted_per_traj": est.seconds_per_traj, "predicted_setup": est.seconds_setup,
            "table_bytes_exact": table_bytes(chain),
            "per_traj": wall / n, "per_jump": wall / max(r.njumps_sum, 1),
            "jumps_per_traj": r.njumps_sum / n, "setup": setup,
            "estimate_bytes": trajspin.trajectories.trajectory_memory_estimate(chain),
            "traced_peak_bytes": peak, "traced_retained_bytes": retained,
            "max_sector_dim": int(chain.sectors.dims[: sizes[0] + 1].max()),
            "hilbert_dim": chain.hilbert_dim, "load1": load1()}


def slope(x, y):
    """Least-squares slope of log y against log x."""
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def fit_series(points, key):
    """Exponents of time per trajectory and memory against ``key`` (all points, last three)."""
    x = np.array([p[key] for p in points], float)
    out = {}
    for name in ("per_traj", "estimate_bytes", "traced_retained_bytes"):
        y = np.array([p[name] for p in points], float)
        out[name] = {"all": slope(x, y), "last3": slope(x[-3:], y[-3:])}
        if key == "M":
            out[name]["factor_per_domain"] = float(np.exp(np.polyfit(x, np.log(y), 1)[0]))
    return out


def matvec_time(d, rng):
    """Best time of one dense d x d matrix-vector product A @ x (numpy, current BLAS threads)."""
    A = rng.standard_normal((d, d))
    x = rng.standard_normal(d)
    timer = timeit.Timer(lambda: A @ x)
    n, _ = timer.autorange()
    n = max(n, 10)
    return min(timer.repeat(repeat=5, number=n)) / n


def kernel_point(sizes, times, seconds, rng):
    chain = trajspin.Chain(sizes)
    dims = chain.sectors.dims[: sizes[0] + 1]
    t0 = time.perf_counter()
    trajspin.run_trajectories(chain, times[:2], 1, seed=SEED, progress=False)   # tables
    setup = time.perf_counter() - t0
    out = {"chain": list(sizes), "d_max": int(dims.max()), "setup": setup}
    # matvec time of every distinct sector dimension (for the jump-weighted floor)
    mv = {int(d): matvec_time(int(d), rng) for d in np.unique(dims) if d > 0}
    out["matvec_dmax"] = mv[int(dims.max())]
    K0 = sizes[0]
    tail = np.zeros(K0 + 2)          # tail[K] = sum of matvec times of sectors K..K0 (K >= 1)
    for K in range(K0, 0, -1):
        tail[K] = tail[K + 1] + mv[int(dims[K])]
    for label, grid in (("jumps_only", np.array([times[0], times[-1]])), ("grid", times)):
        r, wall, n = _timed_run(chain, grid, seconds)
        # a trajectory ending in K_f jumped once out of each sector K_f + 1 .. K0
        floor = float(sum(c * tail[Kf + 1] for Kf, c in enumerate(r.final_excitation_counts)))
        per_jump = wall / max(r.njumps_sum, 1)
        out[label] = {"ntraj": n, "wall": wall, "jumps": r.njumps_sum, "per_jump": per_jump,
                      "points": int(grid.size), "ratio_matvec_dmax": per_jump / out["matvec_dmax"],
                      "floor": floor, "ratio_floor": wall / floor if floor else None}
    out["load1"] = load1()
    return out


def run(seconds=1.0, series=None, kernel_chains=None, points=400, verbose=True):
    say = print if verbose else (lambda *a, **k: None)
    times = log_grid(points)
    data = {"machine": machine_info(), "grid": {"points": points, "tmin": 1e-4, "tmax": 1e3},
            "seconds_per_point": seconds, "series": {}, "kernel": []}
    trajspin.run_trajectories(trajspin.Chain((2, 1)), times, 2, progress=False)   # compile / load
    for name, chains in (series or SERIES).items():
        pts = []
        for sizes in chains:
            p = cost_point(tuple(sizes), times, seconds)
            pts.append(p)
            say(f"{chain_name(sizes)}: {fmt_s(p['per_traj'])}/traj ({p['ntraj']} traj, "
                f"{p['jumps_per_traj']:.1f} jumps), set-up {fmt_s(p['setup'])}, tables est. "
                f"{p['estimate_bytes'] / 2**20:.2f} MiB, traced {p['traced_retained_bytes'] / 2**20:.2f} MiB "
                f"(peak {p['traced_peak_bytes'] / 2**20:.2f})", flush=True)
        key = "M" if name.startswith("domains") else "N1"
        fit = fit_series(pts, key)
        data["series"][name] = {"key": key, "points": pts, "fit": fit}
        say(f"  {name}: time/traj ~ {key}^{fit['per_traj']['all']:.2f} (last 3: "
            f"{fit['per_traj']['last3']:.2f}), memory ~ {key}^{fit['estimate_bytes']['all']:.2f}", flush=True)
    rng = np.random.default_rng(0)
    for sizes in (kernel_chains or KERNEL_CHAINS):
        k = kernel_point(tuple(sizes), times, seconds, rng)
        data["kernel"].append(k)
        say(f"kernel {chain_name(sizes)} d_max={k['d_max']}: {fmt_s(k['jumps_only']['per_jump'])}/jump "
            f"(grid: {fmt_s(k['grid']['per_jump'])}), matvec(d_max) {fmt_s(k['matvec_dmax'])}: "
            f"x{k['jumps_only']['ratio_matvec_dmax']:.1f}; vs jump-weighted floor "
            f"x{k['jumps_only']['ratio_floor']:.1f}", flush=True)
    # what trajspin.estimate says about issue 7's target run (no run: a prediction only)
    data["estimates"] = [estimate(sizes, "trajectories", ntraj=n, times=times, ranks=ranks).to_dict()
                         for sizes, n, ranks in ESTIMATE_RUNS]
    data["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    return data


def rows(data):
    out = []
    for name, s in data["series"].items():
        pts, fit, key = s["points"], s["fit"], s["key"]
        first, last = pts[0], pts[-1]
        extra = (f"; x{fit['per_traj']['factor_per_domain']:.1f}/domain" if key == "M" else "")
        out.append(["cost curve", name,
                    f"{fmt_s(first['per_traj'])} -> {fmt_s(last['per_traj'])} /traj",
                    "-", "-",
                    f"t/traj ~ {key}^{fit['per_traj']['all']:.2f} (last3 {fit['per_traj']['last3']:.2f}){extra}",
                    f"tables {first['estimate_bytes'] / 2**20:.2g} -> {last['estimate_bytes'] / 2**20:.3g} MiB "
                    f"~ {key}^{fit['estimate_bytes']['all']:.2f}; traced "
                    f"{last['traced_retained_bytes'] / 2**20:.3g} MiB at {chain_name(last['chain'])}"])
    pts = [p for s in data["series"].values() for p in s["points"] if "predicted_per_traj" in p]
    if pts:
        q = np.array([p["predicted_per_traj"] / p["per_traj"] for p in pts])
        qs = np.array([p["predicted_setup"] / max(p["setup"], 1e-9) for p in pts])
        worst = pts[int(np.argmax(np.abs(np.log(q))))]
        out.append(["estimate check", f"{len(pts)} cost-curve chains",
                    f"predicted/measured per traj {q.min():.2f}-{q.max():.2f}", "-", "-",
                    f"set-up {qs.min():.2f}-{qs.max():.2f}",
                    f"trajspin.estimate vs this run; worst per traj {chain_name(worst['chain'])}"])
    for e in data.get("estimates", []):
        secs = e["seconds"]
        out.append(["estimate", chain_name(e["chain"]),
                    f"{e['bytes_per_rank'] / 2**30:.2f} GiB/rank, {e['method']}", "-", "-",
                    f"fits: {'yes' if e['fits'] else 'no'} ({e['available'] / 2**30:.1f} GiB available)",
                    f"{e['ntraj']} traj on {e['ranks']} ranks; predicted time "
                    + (f"{secs / 60:.0f} min" if secs == secs else "not calibrated (matrix-free)")])
    for k in data["kernel"]:
        j, g = k["jumps_only"], k["grid"]
        out.append(["kernel/jump", f"{chain_name(k['chain'])} d_max={k['d_max']}",
                    f"{fmt_s(j['per_jump'])}/jump ({fmt_s(g['per_jump'])} w/ 400 pts)",
                    f"matvec {fmt_s(k['matvec_dmax'])}", f"{j['ratio_matvec_dmax']:.1f}x matvec",
                    f"{j['ratio_floor']:.1f}x jump-weighted floor",
                    f"set-up {fmt_s(k['setup'])}, {j['ntraj']} traj, load {k['load1']}"])
    return out


HEADER = ["benchmark", "chain", "trajspin", "reference", "ratio", "agreement / fit", "note"]


def plot(data, folder):
    """cost_curves.png (time/trajectory and memory with fitted slopes) and kernel_efficiency.png."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    series = data["series"]
    fig, axes = plt.subplots(2, 2, figsize=(11, 8.5))
    panels = ((0, "per_traj", "time per trajectory [s]"), (1, "estimate_bytes", "sector tables [bytes]"))
    for row, key_x in ((0, "N1"), (1, "M")):
        for name, s in series.items():
            if s["key"] != key_x:
                continue
            x = np.array([p[key_x] for p in s["points"]], float)
            for col, key, label in panels:
                ax = axes[row, col]
                y = np.array([p[key] for p in s["points"]], float)
                b, a = np.polyfit(np.log(x), np.log(y), 1)
                extra = (f", x{s['fit'][key]['factor_per_domain']:.1f}/domain" if key_x == "M" else "")
                line, = ax.loglog(x, y, "o", label=f"{name}: slope {b:.2f}{extra}")
                ax.loglog(x, np.exp(a) * x**b, "-", color=line.get_color(), lw=1)
                if key == "estimate_bytes":
                    yt = np.array([p["traced_retained_bytes"] for p in s["points"]], float)
                    ax.loglog(x, yt, "x", color=line.get_color(), label="  tracemalloc, retained after set-up")
                ax.set_ylabel(label)
                ax.set_xticks(x, [str(int(v)) for v in x] if key_x == "N1"
                              else [chain_name(p["chain"]) for p in s["points"]],
                              fontsize=8 if key_x == "N1" else 7)
                ax.xaxis.set_minor_formatter(NullFormatter())
    for col, what in ((0, "time per trajectory (400 output times)"), (1, "memory of the sector tables")):
        axes[0, col].set_title(f"{what} vs $N_1$")
        axes[0, col].set_xlabel("$N_1$")
        axes[1, col].set_title(f"{what} vs number of domains")
        axes[1, col].set_xlabel("number of domains M (log axis)")
    for ax in axes.ravel():
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    m = data["machine"]
    fig.suptitle(f"trajspin cost curves, one core ({m['date']}, load average {m['loadavg'][0]})")
    fig.tight_layout()
    paths = [folder / "cost_curves.png"]
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    if data["kernel"]:
        fig, ax = plt.subplots(figsize=(7.5, 5.5))
        ks = data["kernel"]
        d = np.array([k["d_max"] for k in ks], float)
        ax.loglog(d, [k["jumps_only"]["per_jump"] for k in ks], "o-",
                  label="trajspin time per jump (2 output times)")
        ax.loglog(d, [k["grid"]["per_jump"] for k in ks], "^-",
                  label="trajspin time per jump, 400 output times")
        ax.loglog(d, [k["matvec_dmax"] for k in ks], "s--",
                  label=r"one dense $d_K \times d_K$ matvec, largest $d_K$ (numpy, 1 thread)")
        ax.loglog(d, [k["jumps_only"]["floor"] / k["jumps_only"]["jumps"] for k in ks], "v:",
                  label="one matvec per jump, weighted over the sectors visited")
        ax.loglog(d, [3 * k["matvec_dmax"] for k in ks], "-", color="0.6", lw=1,
                  label="3x matvec (issue 7 target)")
        for k in ks:
            ax.annotate(f"{chain_name(k['chain'])}: {k['jumps_only']['ratio_matvec_dmax']:.0f}x",
                        (k["d_max"], k["jumps_only"]["per_jump"]), fontsize=7,
                        textcoords="offset points", xytext=(-30, 8))
        ax.set_xlabel("largest sector dimension $d_K$")
        ax.set_ylabel("seconds")
        ax.set_title("kernel efficiency: time per jump vs dense matvec floor")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        paths.append(folder / "kernel_efficiency.png")
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
    return paths


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=1.0, help="work per cost point (default 1 s)")
    p.add_argument("--quick", action="store_true", help="small series for a smoke test")
    p.add_argument("--plot", default=None, help="folder for the PNGs (default: no plot)")
    p.add_argument("--out", default="bench_costs")
    a = p.parse_args(argv)
    series = kernel = None
    if a.quick:
        series, kernel = QUICK_SERIES, QUICK_KERNEL_CHAINS
    data = run(a.seconds, series, kernel)
    path = write_json(a.out, data)
    if a.plot:
        for f in plot(data, a.plot):
            print(f"wrote {f}")
    print_report(HEADER, rows(data), data, path)


if __name__ == "__main__":
    main()
