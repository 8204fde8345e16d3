"""Plot a trajectory ensemble (<J_i^z>/N_i ± standard error) over the exact master-equation curve.

    python analysis/plot_ensemble.py results/default.npz --out results/default.png
"""
import argparse
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import trajspin  # noqa: E402

COLORS = ["#c2185b", "#1f5fbf", "#d4a017", "#2e9e7f", "#6a3d9a", "#444444"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("result", help="ensemble .npz (run_ensemble.py or trajspin trajectories --out)")
    p.add_argument("--out", default=None, help="PNG path (default: next to the result)")
    args = p.parse_args(argv)
    ens = trajspin.load(args.result)
    chain, t = ens.chain, ens.times
    exact = trajspin.solve_master(chain, t, initial=ens.meta.get("initial"))
    sizes = np.asarray(chain.sizes, dtype=float)
    mean, err, ref = ens.jz_over_n, ens.jz_over_n_err, exact.jz_over_n
    z = np.abs(mean - ref) / np.maximum(err, 1.0 / (ens.ntraj * sizes))
    fig, ax = plt.subplots(figsize=(7.5, 4.5), constrained_layout=True)
    pos = t > 0
    for i in range(chain.M):
        c = COLORS[i % len(COLORS)]
        ax.plot(t[pos], ref[pos, i], color=c, lw=1.6, label=f"D{i + 1} (N={chain.sizes[i]}) exact")
        ax.fill_between(t[pos], (mean - 2 * err)[pos, i], (mean + 2 * err)[pos, i], color=c,
                        alpha=0.25, lw=0)
        ax.plot(t[pos], mean[pos, i], color=c, lw=0.8, ls="--")
    ax.plot([], [], color="gray", ls="--", lw=0.8, label=f"trajectory mean ± 2 s.e. ({ens.ntraj} traj.)")
    ax.set_xscale("log")
    ax.set_xlabel(r"$\gamma t$")
    ax.set_ylabel(r"$\langle J_i^z\rangle / N_i$")
    ax.set_ylim(-0.52, 0.52)
    ax.set_title(f"{chain!r}: trajectories vs exact master equation (max |dev| = {z.max():.1f} s.e.)",
                 fontsize=9)
    ax.legend(fontsize=8, loc="center left")
    ax.grid(alpha=0.3, which="both", lw=0.3)
    out = args.out or os.path.splitext(args.result)[0] + ".png"
    fig.savefig(out, dpi=130)
    print(f"largest deviation from the exact curve: {z.max():.2f} standard errors "
          f"(over {z.size} points); plot written to {out}")


if __name__ == "__main__":
    main()
