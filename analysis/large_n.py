"""Exact quantum trajectories against the mean field where the paper could only use mean field.

    OPENBLAS_NUM_THREADS=1 python analysis/large_n.py            # ~10 min on one core
    OPENBLAS_NUM_THREADS=1 python analysis/large_n.py --quick    # ~1 min, smaller ensembles
                                                                 # -> analysis/figures/quick/

For each chain, an exact ensemble of Lanczos trajectories (``run_trajectories``, the matrix-free
engine chosen by "auto") and the mean field ("pairs" closure, the one that draws the paper's
figures) on the same log grid; the figure shows <J_i^z>/N_i with the ensemble's +-2 standard
errors as bands and the mean field as lines, and below it the mean-field error in units of the
ensemble's standard error.  Numbers go to ``analysis/figures/large_n.json``.

Chains: (10^5, 10^2), (10^6, 10^2) and (10^5, 10^2, 10).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import trajspin
from trajspin import Chain, run_trajectories, solve_mean_field

HERE = Path(__file__).resolve().parent
CHAINS = {"full": [((10**5, 100), 64), ((10**6, 100), 12), ((10**5, 100, 10), 12)],
          "quick": [((10**5, 100), 8), ((10**5, 100, 10), 2)]}


def compare(sizes, ntraj, t, seed=1):
    chain = Chain(list(sizes))
    t0 = time.perf_counter()
    ens = run_trajectories(chain, t, ntraj, seed=seed, progress=False, chunk=1)
    wall = time.perf_counter() - t0
    mf = solve_mean_field(chain, t)
    n = np.asarray(sizes, dtype=float)
    err = ens.jz_err / n
    diff = mf.jz_over_n - ens.jz_over_n
    # where every trajectory agrees (err 0: before the first jump, in the dark state) the
    # standard error is floored at 1/(N_i ntraj), the resolution of the ensemble
    z = np.abs(diff) / np.maximum(err, 1.0 / (n * ntraj))
    return dict(sizes=list(sizes), ntraj=ntraj, seconds=wall, engine=ens.meta.get("engine"),
                exact=ens.jz_over_n.tolist(), exact_err=err.tolist(), mean_field=mf.jz_over_n.tolist(),
                max_abs_error=np.max(np.abs(diff), axis=0).tolist(),
                final_abs_error=np.abs(diff[-1]).tolist(), max_z=np.max(z, axis=0).tolist(),
                final_exact=ens.jz_over_n[-1].tolist(), final_exact_err=err[-1].tolist(),
                final_mean_field=mf.jz_over_n[-1].tolist())


def draw(rows, t, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, len(rows), figsize=(4.2 * len(rows), 6), sharex=True,
                             gridspec_kw={"height_ratios": [3, 1.4]}, squeeze=False)
    labelled = set()
    for k, r in enumerate(rows):
        ax, az = axes[0, k], axes[1, k]
        ex, er, mf = (np.array(r[key]) for key in ("exact", "exact_err", "mean_field"))
        for i in range(ex.shape[1]):
            c = f"C{i}"
            ax.fill_between(t, ex[:, i] - 2 * er[:, i], ex[:, i] + 2 * er[:, i], color=c,
                            alpha=0.3, lw=0,
                            label=None if i in labelled else f"D{i + 1} exact ±2 s.e.")
            ax.plot(t, mf[:, i], color=c, lw=1.0, ls="--",
                    label=None if i in labelled else f"D{i + 1} mean field ('pairs')")
            labelled.add(i)
            az.plot(t, np.abs(mf[:, i] - ex[:, i]), color=c, lw=1.0)
        ax.set_title(f"{tuple(r['sizes'])}: {r['ntraj']} trajectories", fontsize=9)
        ax.set_xscale("log")
        az.set_yscale("log")
        az.set_xlabel(r"$\gamma t$")
        if k == 0:
            ax.set_ylabel(r"$\langle J_i^z\rangle / N_i$")
            az.set_ylabel("|mean field − exact|")
    fig.legend(loc="lower center", ncol=6, fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(out, dpi=130)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, default=None,
                    help="PNG path, JSON beside it (default analysis/figures/large_n.png, "
                         "or analysis/figures/quick/large_n.png with --quick)")
    args = ap.parse_args(argv)
    if args.out is None:        # a quick run never overwrites the tracked full-run outputs
        args.out = HERE / "figures" / ("quick" if args.quick else "") / "large_n.png"
    t = np.logspace(-8, 2, 120)
    rows = []
    for sizes, ntraj in CHAINS["quick" if args.quick else "full"]:
        r = compare(sizes, ntraj, t)
        rows.append(r)
        print(f"{tuple(sizes)}: {ntraj} trajectories in {r['seconds']:.0f} s ({r['engine']}); "
              f"final exact {np.round(r['final_exact'], 5).tolist()} ± "
              f"{np.round(r['final_exact_err'], 5).tolist()}, mean field "
              f"{np.round(r['final_mean_field'], 5).tolist()}; max |error| "
              f"{np.round(r['max_abs_error'], 4).tolist()}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    draw(rows, t, args.out)
    info = dict(times=t.tolist(), rows=rows, versions=trajspin.results.versions())
    args.out.with_suffix(".json").write_text(json.dumps(info, indent=1))
    print("wrote", args.out)


if __name__ == "__main__":
    main()
