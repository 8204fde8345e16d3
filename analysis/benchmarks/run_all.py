"""The benchmark suite in one command: one table, PNG plots.

    python analysis/benchmarks/run_all.py                 # full: trajspin + QuTiP side by side (~50 min)
    python analysis/benchmarks/run_all.py --quick         # a few minutes: small chains, short budgets
    python analysis/benchmarks/run_all.py --no-qutip      # trajspin only (~8 min)
    python analysis/benchmarks/run_all.py --from-results  # table and plots from results/*.json only

Runs ``bench_master`` (solve_master, steady_state; QuTiP ``mesolve``), ``bench_trajectories``
(run_trajectories, numba compile; QuTiP ``mcsolve`` with the same number of trajectories) and
``bench_costs`` (cost curves with fitted exponents, kernel time per jump against a dense matvec,
and ``trajspin.estimate`` against the measured times), in this process one after the other;
every QuTiP call runs in its own process, killed at ``--qutip-budget`` seconds (default 600).
Writes ``results/bench_<part>.json``, prints one combined table (also ``results/summary.txt``
and, as markdown, ``results/summary.md``) and draws ``figures/cost_curves.png``,
``figures/kernel_efficiency.png``, ``figures/qutip_comparison.png`` and ``figures/steady_scan.png``.
``--quick`` writes ``results/quick_*.json``, ``results/summary_quick.*`` and ``figures/quick/``
instead, so it never overwrites the full run.  The 1-minute load average is sampled every 15 s
during the run and printed with the table.  See README.md for what each number means.
"""
from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import json
import sys
import threading
import time
from pathlib import Path

import numpy as np

import bench_costs
import bench_master
import bench_trajectories
from bench_master import RESULTS, chain_name, print_table, write_json

HERE = Path(__file__).resolve().parent
FIGURES = HERE / "figures"
HEADER = ["benchmark", "chain", "trajspin", "reference (QuTiP / BLAS)", "ratio", "agreement / fit", "note"]
PARTS = {"master": bench_master, "trajectories": bench_trajectories, "costs": bench_costs}
QUICK_CHAINS = [(6, 2), (3, 2, 1)]      # small enough for QuTiP to finish in seconds


class LoadSampler:
    """Samples the 1-minute load average every ``interval`` seconds in a daemon thread."""

    def __init__(self, interval=15.0):
        self.interval, self.samples = interval, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while True:
            self.samples.append(round(os.getloadavg()[0], 2))
            if self._stop.wait(self.interval):
                return

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def summary(self):
        x = np.array(self.samples or [np.nan])
        return {"samples": len(self.samples), "interval_s": self.interval, "min": float(x.min()),
                "median": float(np.median(x)), "max": float(x.max()),
                "frac_above_2": float(np.mean(x > 2.0))}


def markdown_table(header, rows):
    """The same rows as a GitHub markdown table (pipes in cells escaped)."""
    esc = lambda c: str(c).replace("|", "\\|") or " "
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def table_rows(results):
    rows = []
    for name, mod in PARTS.items():
        if results.get(name):
            rows += mod.rows(results[name])
    return rows


def header_lines(results, load=None):
    lines = []
    for name, data in results.items():
        if data:
            m = data["machine"]
            lines.append(f"{name:<13} {m['date']}  trajspin commit {m.get('git') or '?'}  "
                         f"load average {m['loadavg']} -> {m.get('loadavg_end')}")
    m = next(d["machine"] for d in results.values() if d)
    head = (f"trajspin {m['trajspin']} benchmarks on {m['host']} ({m['cpu']}, {m['cores']} cores shared), "
            f"one BLAS thread; numpy {m['numpy']}, scipy {m['scipy']}, numba {m['numba']}, "
            f"qutip {m.get('qutip')}, python {m['python']}")
    out = [head, *lines]
    if load:
        out.append(f"1-min load average during the run (sampled every {load['interval_s']:.0f} s, "
                   f"{load['samples']} samples): min {load['min']}, median {load['median']}, "
                   f"max {load['max']}; above 2 (processes waiting for a core) "
                   f"{100 * load['frac_above_2']:.0f}% of the time")
    return out


def combined_table(results, load=None):
    return "\n".join([*header_lines(results, load), "", print_table(HEADER, table_rows(results))])


def combined_markdown(results, load=None):
    return "\n".join(["# trajspin benchmark summary", "", *[f"- {l}" for l in header_lines(results, load)],
                      "", markdown_table(HEADER, table_rows(results)), ""])


def plot_qutip(results, folder):
    """Wall time per chain: trajspin vs QuTiP (mesolve: full trace; mcsolve: per trajectory)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = []
    if results.get("master"):
        rows = [r for r in results["master"]["master"] if r.get("qutip")]
        if rows:
            panels.append(("exact: solve_master vs mesolve (400 times)", "wall time [s]",
                           [(chain_name(r["chain"]), r["best"], r["qutip"]) for r in rows]))
    if results.get("trajectories"):
        items = []
        for r in results["trajectories"]["chains"]:
            qs = r.get("qutip") or []
            for q in [qs] if isinstance(qs, dict) else qs:
                per = q["wall"] / q["ntraj"] if q.get("wall") else None
                ts = (q["trajspin_wall"] / q["trajspin_ntraj"] if q.get("trajspin_wall")
                      else r["per_traj"])
                items.append((f"{chain_name(r['chain'])}\nw0={q.get('omega0', 1.0):g}", ts,
                              {**q, "wall": per}))
        if items:
            panels.append(("trajectories: run_trajectories vs mcsolve (w0: QuTiP's H)",
                           "time per trajectory [s]", items))
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.8), squeeze=False)
    for ax, (title, ylabel, items) in zip(axes[0], panels):
        x = np.arange(len(items))
        ts = [it[1] for it in items]
        qt = [it[2]["wall"] or np.nan for it in items]
        ax.bar(x - 0.2, ts, 0.4, label="trajspin")
        bars = ax.bar(x + 0.2, qt, 0.4, label="QuTiP")
        for k, it in enumerate(items):
            q = it[2]
            if q["status"] == "timeout":
                bars[k].set_hatch("//")
                bars[k].set_alpha(0.6)
                txt = f"> {q['ratio_lower_bound']:.0f}x\n(budget)"
            elif q["status"] == "ok":
                txt = f"{q['ratio']:.0f}x"
            else:
                txt = "failed"
            ax.annotate(txt, (x[k] + 0.2, qt[k] if np.isfinite(qt[k]) else ts[k]), ha="center",
                        va="bottom", fontsize=8, textcoords="offset points", xytext=(0, 2))
        ax.set_yscale("log")
        top = np.nanmax(qt + ts)
        ax.set_ylim(top=top * 30)            # room for the labels and the legend
        ax.set_xticks(x, [it[0] for it in items], fontsize=8)
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
        ax.grid(True, axis="y", which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    fig.suptitle("trajspin vs QuTiP 5, one core each (hatched: QuTiP stopped at its budget)")
    fig.tight_layout()
    path = Path(folder) / "qutip_comparison.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_scan(results, folder):
    """steady_state time and peak RSS against N1 for (N1, 30, 3)."""
    scan = (results.get("master") or {}).get("scan")
    if not scan or len(scan["points"]) < 2:
        return None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = scan["points"]
    n = np.array([p["N1"] for p in pts], float)
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    t = np.array([p["wall"] for p in pts])
    b, a = np.polyfit(np.log(n), np.log(t), 1)
    ax.loglog(n, t, "o", label=f"steady_state wall time: slope {b:.2f}")
    ax.loglog(n, np.exp(a) * n**b, "-", color="C0", lw=1)
    rss = np.array([p["peak_rss_gb"] for p in pts])
    ax.loglog(n, rss, "s", color="C1", label="peak RSS [GB]")
    ax.loglog(n, [p["estimate_gb"] for p in pts], "x", color="C2",
              label="trajspin's memory estimate [GiB]")
    ax.set_xticks(n, [str(int(v)) for v in n])
    ax.minorticks_off()
    ax.set_xlabel("$N_1$ in $(N_1, %s)$" % ", ".join(map(str, scan["rest"])))
    ax.set_ylabel("seconds / GB")
    ax.set_title(f"exact steady state of $(N_1, {', '.join(map(str, scan['rest']))})$, one core\n"
                 f"next point: {bench_master.short_reason(scan['stop_reason'])}".replace(" (", "\n("),
                 fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(folder) / "steady_scan.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="a few-minute version: small chains, QuTiP budget 60 s, short cost curves "
                        "(writes results/quick_*, figures/quick/)")
    p.add_argument("--no-qutip", action="store_true", help="trajspin only (no mesolve / mcsolve)")
    p.add_argument("--qutip", action="store_true", help=argparse.SUPPRESS)   # the default now
    p.add_argument("--qutip-budget", type=float, default=None, metavar="SECONDS",
                   help="wall-clock limit of every QuTiP call (default 600; --quick 60)")
    p.add_argument("--qutip-ntraj", type=int, default=None,
                   help="trajectories of mcsolve and of the matching trajspin run (default 200; --quick 50)")
    p.add_argument("--qutip-omega0", default="0", metavar="LIST",
                   help="omega0 values of QuTiP's H for mcsolve (default '0', the rotating frame; "
                        "'1,0' adds H = sum_i J_i^z as written, which costs QuTiP 3-6x more)")
    p.add_argument("--skip", default="", help="comma-separated parts to skip: master,trajectories,costs")
    p.add_argument("--from-results", action="store_true",
                   help="run nothing: table and plots from the existing results/*.json")
    p.add_argument("--scan-budget", type=float, default=None,
                   help="steady-state N1 scan budget in s (default 120; --quick 0 = no scan)")
    p.add_argument("--big-ntraj", type=int, default=None, help="trajectories of (1000, 30, 3) (default 40)")
    a = p.parse_args(argv)
    skip = {s.strip() for s in a.skip.split(",") if s.strip()}
    unknown = skip - set(PARTS)
    if unknown:
        p.error(f"unknown part(s) to skip: {sorted(unknown)}; choose from {sorted(PARTS)}")
    qutip = not a.no_qutip
    if qutip and not a.from_results:
        try:
            import qutip  # noqa: F401  (only to fail early; QuTiP runs in subprocesses)
        except ImportError:
            p.error("QuTiP is not installed: install qutip>=5 or pass --no-qutip")
    quick = a.quick
    budget = a.qutip_budget or (60.0 if quick else 600.0)
    qntraj = a.qutip_ntraj or (50 if quick else 200)
    scan_budget = a.scan_budget if a.scan_budget is not None else (0.0 if quick else 120.0)
    big_ntraj = a.big_ntraj if a.big_ntraj is not None else (0 if quick else 40)
    omega0 = [float(w) for w in a.qutip_omega0.split(",")]
    prefix = "quick_" if quick else ""
    figures = FIGURES / "quick" if quick else FIGURES
    results = {}
    start = time.perf_counter()
    with LoadSampler() as sampler:
        for name, mod in PARTS.items():
            path = RESULTS / f"{prefix}bench_{name}.json"
            if a.from_results or name in skip:
                results[name] = json.loads(path.read_text()) if path.exists() else None
                continue
            print(f"=== {name} ===", flush=True)
            if name == "master":
                data = mod.run(qutip, budget, scan_budget=scan_budget,
                               chains=QUICK_CHAINS if quick else None)
                data["qutip_tolerances"] = "mesolve atol 1e-10, rtol 1e-8" if qutip else None
            elif name == "trajectories":
                data = mod.run(qutip, budget, qntraj, big_ntraj=big_ntraj, qutip_omega0=omega0,
                               chains=QUICK_CHAINS if quick else None,
                               ntraj=2000 if quick else 10_000)
            else:
                data = (mod.run(0.3, bench_costs.QUICK_SERIES, bench_costs.QUICK_KERNEL_CHAINS)
                        if quick else mod.run())
            write_json(f"{prefix}bench_{name}", data)
            results[name] = data
    load = None if a.from_results else sampler.summary()
    if not any(results.values()):
        raise SystemExit("no results: run without --from-results first")
    figures.mkdir(parents=True, exist_ok=True)
    figs = []
    if results.get("costs"):
        figs += bench_costs.plot(results["costs"], figures)
    figs += [f for f in (plot_scan(results, figures), plot_qutip(results, figures)) if f]
    if load is None:                       # --from-results: the load recorded by the last run
        old = RESULTS / f"{prefix}summary.json"
        load = json.loads(old.read_text()).get("load") if old.exists() else None
    text = combined_table(results, load)
    stem = "summary_quick" if quick else "summary"
    (RESULTS / f"{stem}.txt").write_text(text + "\n")
    (RESULTS / f"{stem}.md").write_text(combined_markdown(results, load))
    if not a.from_results:
        write_json(f"{prefix}summary", {"load": load, "total_seconds": time.perf_counter() - start,
                                        "argv": argv if argv is not None else sys.argv[1:],
                                        "rows": table_rows(results), "header": HEADER})
    print()
    print(text)
    print(f"\nfigures: {', '.join(os.path.relpath(f, HERE) for f in figs)}; "
          f"table saved to {os.path.relpath(RESULTS / (stem + '.txt'), HERE)} and .md"
          + ("" if a.from_results else f"; total {time.perf_counter() - start:.0f} s"))


if __name__ == "__main__":
    main()
