"""The benchmark suite in one command: one table, PNG plots.

    python analysis/benchmarks/run_all.py                 # trajspin only (~5-10 min)
    python analysis/benchmarks/run_all.py --qutip         # + QuTiP mesolve / mcsolve (up to ~1 h)
    python analysis/benchmarks/run_all.py --from-results  # table and plots from results/*.json only

Runs ``bench_master``, ``bench_trajectories`` and ``bench_costs`` (in this process, one after the
other; every QuTiP call runs in its own process with a time budget), writes their
``results/<name>.json``, prints one combined table (also saved as ``results/summary.txt``) and
writes ``figures/cost_curves.png``, ``figures/kernel_efficiency.png``, ``figures/steady_scan.png``
and, with QuTiP results, ``figures/qutip_comparison.png``.  See README.md for what each number means.
"""
from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import json
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


def combined_table(results):
    rows = []
    for name, mod in PARTS.items():
        if results.get(name):
            rows += mod.rows(results[name])
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
    return "\n".join([head, *lines, "", print_table(HEADER, rows)])


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
                items.append((f"{chain_name(r['chain'])}\nw0={q.get('omega0', 1.0):g}", r["per_traj"],
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
    p.add_argument("--qutip", action="store_true", help="run QuTiP mesolve and mcsolve too (slow)")
    p.add_argument("--qutip-budget", type=float, default=900.0, metavar="SECONDS",
                   help="wall-clock limit of every QuTiP call (default 900)")
    p.add_argument("--qutip-ntraj", type=int, default=1000, help="mcsolve trajectories (default 1000)")
    p.add_argument("--qutip-omega0", default="1,0", metavar="LIST",
                   help="omega0 values of QuTiP's H for mcsolve (default '1,0': as specified, and "
                        "the rotating frame)")
    p.add_argument("--skip", default="", help="comma-separated parts to skip: master,trajectories,costs")
    p.add_argument("--from-results", action="store_true",
                   help="run nothing: table and plots from the existing results/*.json")
    p.add_argument("--scan-budget", type=float, default=600.0, help="steady-state N1 scan budget (s)")
    p.add_argument("--big-ntraj", type=int, default=40, help="trajectories of (1000, 30, 3)")
    a = p.parse_args(argv)
    skip = {s.strip() for s in a.skip.split(",") if s.strip()}
    unknown = skip - set(PARTS)
    if unknown:
        p.error(f"unknown part(s) to skip: {sorted(unknown)}; choose from {sorted(PARTS)}")
    results = {}
    start = time.perf_counter()
    for name, mod in PARTS.items():
        path = RESULTS / f"bench_{name}.json"
        if a.from_results or name in skip:
            results[name] = json.loads(path.read_text()) if path.exists() else None
            continue
        print(f"=== {name} ===", flush=True)
        if name == "master":
            data = mod.run(a.qutip, a.qutip_budget, scan_budget=a.scan_budget)
        elif name == "trajectories":
            data = mod.run(a.qutip, a.qutip_budget, a.qutip_ntraj, big_ntraj=a.big_ntraj,
                           qutip_omega0=[float(w) for w in a.qutip_omega0.split(",")])
        else:
            data = mod.run()
        write_json(f"bench_{name}", data)
        results[name] = data
    if not any(results.values()):
        raise SystemExit("no results: run without --from-results first")
    FIGURES.mkdir(exist_ok=True)
    figs = []
    if results.get("costs"):
        figs += bench_costs.plot(results["costs"], FIGURES)
    figs += [f for f in (plot_scan(results, FIGURES), plot_qutip(results, FIGURES)) if f]
    text = combined_table(results)
    (RESULTS / "summary.txt").write_text(text + "\n")
    print()
    print(text)
    print(f"\nfigures: {', '.join(os.path.relpath(f, HERE) for f in figs)}; "
          f"table saved to {os.path.relpath(RESULTS / 'summary.txt', HERE)}"
          + ("" if a.from_results else f"; total {time.perf_counter() - start:.0f} s"))


if __name__ == "__main__":
    main()
