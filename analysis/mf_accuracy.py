"""How accurate is the mean field?  MF against the exact solver as the domains grow.

    python analysis/mf_accuracy.py            # about 2-3 minutes on one core
    python analysis/mf_accuracy.py --quick    # a few chains, written to analysis/figures/quick/

For each chain, with Delta(t) = max_i |<J_i^z>/N_i (MF) - <J_i^z>/N_i (exact)|:

* ``max_t``     max of Delta over the transient (a log grid up to the settling time t_s of
                the exact dynamics, where it is within 1e-4 of its t -> infinity value);
* ``at t_s``    Delta at t_s (the MF "plateau" against the exact steady state);
* ``t -> inf``  MF at gamma t = 10^4 against the exact steady state (``steady_state``).

Two closures for three domains: "pairs" (default) and "paper" (the 13 moments of S3);
they coincide for two domains.  Writes figures/mf_accuracy.png, figures/mf_accuracy.json
and prints the markdown table that analysis/README.md quotes.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import trajspin as ts  # noqa: E402
from trajspin.mean_field import MeanFieldBreakdown, solve_mean_field  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
T_INF = 1e4

TWO = {1: [2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000],
       2: [4, 10, 20, 50, 100, 200, 500, 1000, 2000],
       5: [10, 20, 50, 100, 200, 500, 1000]}
THREE = {1: [(4, 2, 1), (16, 4, 1), (36, 6, 1), (64, 8, 1), (144, 12, 1), (256, 16, 1)],
         2: [(8, 4, 2), (32, 8, 2), (72, 12, 2), (128, 16, 2), (200, 20, 2)]}
QUICK_TWO = {1: [4, 40], 2: [20]}
QUICK_THREE = {1: [(16, 4, 1)]}


def exact_trace(chain, points=90):
    """Exact <J_i^z>/N_i on a log grid up to settling; falls back to coarser grids if the
    exact solver loses the trace (it does for some large chains with small steps)."""
    ss = ts.steady_state(chain).jz_over_n
    N1 = chain.sizes[0]
    for pts, tmin in ((points, 0.05 / N1), (points // 2, 0.2 / N1), (30, 1.0 / N1)):
        t = np.logspace(np.log10(tmin), 3, pts)
        ex = ts.solve_master(chain, t)
        if np.max(np.abs(ex.trace - 1)) < 1e-8 and np.all(np.abs(ex.jz_over_n) <= 0.5 + 1e-9):
            break
    else:
        raise RuntimeError(f"exact solver unreliable for {chain!r}")
    dev = np.max(np.abs(ex.jz_over_n - ss), axis=1)
    settled = np.nonzero(dev > 1e-4)[0]
    ks = min(int(settled[-1]) + 1, t.size - 1) if settled.size else 0
    return t, ex.jz_over_n, ss, ks


def compare(sizes, closure):
    chain = ts.Chain(sizes)
    t, ex, ss, ks = exact_trace(chain)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MeanFieldBreakdown)
        mf = solve_mean_field(chain, np.append(t, T_INF), closure=closure)
    y = mf.jz_over_n
    delta = np.max(np.abs(y[:-1] - ex), axis=1)
    row = {"sizes": list(sizes), "closure": closure, "t_settle": float(t[ks]),
           "max_t": float(np.max(delta[: ks + 1])), "at_ts": float(delta[ks]),
           "t_inf": float(np.max(np.abs(y[-1] - ss))),
           "exact_last_inf": float(ss[-1]), "mf_last_ts": float(y[ks, -1]),
           "mf_last_inf": float(y[-1, -1]), "breakdown_time": mf.breakdown_time}
    return row


def steady_only(sizes):
    """Exact and MF (two domains) at t -> infinity for chains too large for the time traces."""
    chain = ts.Chain(sizes)
    ss = ts.steady_state(chain).jz_over_n
    mf = solve_mean_field(chain, [0.0, T_INF])
    return {"sizes": list(sizes), "exact": ss.tolist(), "mf": mf.jz_over_n[-1].tolist(),
            "t_inf": float(np.max(np.abs(mf.jz_over_n[-1] - ss)))}


def _fmt(row):
    if row["breakdown_time"] is not None and np.isnan(row["max_t"]):
        return f"breaks down at γt = {row['breakdown_time']:.3g}", "–", "–"
    f = lambda v: "NaN" if not np.isfinite(v) else f"{v:.2e}"   # noqa: E731
    return f(row["max_t"]), f(row["at_ts"]), f(row["t_inf"])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=None,
                    help="output folder (default analysis/figures, or analysis/figures/quick with --quick)")
    args = ap.parse_args(argv)
    if args.out is None:        # a quick run never overwrites the tracked full-run outputs
        args.out = os.path.join(HERE, "figures", "quick" if args.quick else "")
    os.makedirs(args.out, exist_ok=True)
    two, three = (QUICK_TWO, QUICK_THREE) if args.quick else (TWO, THREE)
    rows, big = [], []
    start = time.perf_counter()
    skipped = []

    def add(sizes, closure):
        try:
            rows.append(compare(sizes, closure))
            print(rows[-1], flush=True)
        except RuntimeError as exc:          # the exact solver's trace check failed
            skipped.append({"sizes": list(sizes), "closure": closure, "why": str(exc)})
            print("skipped", skipped[-1], flush=True)

    for n2, n1s in two.items():
        for n1 in n1s:
            add((n1, n2), "pairs")
    for n3, chains in three.items():
        for sizes in chains:
            for closure in ("pairs", "paper"):
                add(sizes, closure)
    if not args.quick:
        for sizes in [(5000, 1), (10000, 1), (5000, 2), (10000, 5), (3000, 20)]:
            big.append(steady_only(sizes))
            print(big[-1], flush=True)

    # markdown table
    lines = ["| domains N_i | closure | max_t Δ (transient) | Δ at t_s | Δ at t → ∞ | last domain: exact ∞ / MF at t_s / MF ∞ |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        a, b, c = _fmt(r)
        last = (f"{r['exact_last_inf']:+.4f} / {r['mf_last_ts']:+.4f} / {r['mf_last_inf']:+.4f}"
                if np.isfinite(r["mf_last_ts"]) else f"{r['exact_last_inf']:+.4f} / – / –")
        lines.append(f"| {tuple(r['sizes'])} | {r['closure']} | {a} | {b} | {c} | {last} |")
    for r in big:
        lines.append(f"| {tuple(r['sizes'])} | pairs | (steady only) | – | {r['t_inf']:.2e} | "
                     f"{r['exact'][-1]:+.5f} / – / {r['mf'][-1]:+.5f} |")
    table = "\n".join(lines)
    print(table)

    # figure: error against N_1
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    colors = {1: "#c2187f", 2: "#1f5fbf", 5: "#d4a017"}
    ax = axes[0]
    for n2 in two:
        sel = [r for r in rows if len(r["sizes"]) == 2 and r["sizes"][1] == n2]
        n1 = [r["sizes"][0] for r in sel]
        ax.loglog(n1, [r["max_t"] for r in sel], "o-", color=colors[n2], label=f"$N_2$ = {n2}: max over t")
        ax.loglog(n1, [r["t_inf"] for r in sel], "s--", color=colors[n2], mfc="white",
                  label=f"$N_2$ = {n2}: t → ∞")
    if big:
        ax.loglog([r["sizes"][0] for r in big if r["sizes"][1] <= 5],
                  [r["t_inf"] for r in big if r["sizes"][1] <= 5], "^", color="0.4", mfc="white",
                  label="t → ∞, larger chains")
    ax.set_xlabel("$N_1$")
    ax.set_ylabel(r"MF error  max$_i$ |Δ⟨$J_i^z$⟩/$N_i$|")
    ax.set_title("two domains (closures coincide)", fontsize=10)
    ax.legend(fontsize=7, frameon=False)
    ax = axes[1]
    for n3, mk in zip(three, ("o", "D")):
        for closure, ls in (("pairs", "-"), ("paper", ":")):
            sel = [r for r in rows if len(r["sizes"]) == 3 and r["sizes"][2] == n3 and r["closure"] == closure]
            n1 = [r["sizes"][0] for r in sel]
            ax.loglog(n1, [r["max_t"] if np.isfinite(r["max_t"]) else np.nan for r in sel], mk + ls,
                      color="#1f5fbf" if closure == "pairs" else "#d4a017",
                      label=f"$N_3$ = {n3}, {closure}: max over transient")
        sel = [r for r in rows if len(r["sizes"]) == 3 and r["sizes"][2] == n3 and r["closure"] == "pairs"]
        ax.loglog([r["sizes"][0] for r in sel], [r["t_inf"] for r in sel], mk + "--", color="#c2187f",
                  mfc="white", label=f"$N_3$ = {n3}, pairs: t → ∞")
    ax.set_xlabel("$N_1$  (chains $(r^2, r, 1)N_3$)")
    ax.set_title("three domains", fontsize=10)
    ax.legend(fontsize=7, frameon=False)
    fig.savefig(os.path.join(args.out, "mf_accuracy.png"), dpi=130)
    with open(os.path.join(args.out, "mf_accuracy.json"), "w") as fh:
        json.dump({"rows": rows, "steady_only": big, "table": table, "skipped": skipped,
                   "seconds": time.perf_counter() - start}, fh, indent=1, default=float)
    return 0


if __name__ == "__main__":
    sys.exit(main())
