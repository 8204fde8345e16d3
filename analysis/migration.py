"""Beyond the paper: how much excitation reaches the last domain, and how fast.

    python analysis/migration.py            # about a minute on one core
    python analysis/migration.py --quick    # written to analysis/figures/quick/

1. Final relative excitation of the last domain, <J_M^z>/N_M (t -> inf), against the domain
   sizes, for domain 1 initially a fraction p = n_1/N_1 excited (p = 1, 3/4, 1/2):
   exact (``steady_state``) as far as it goes, mean field beyond, against eq. (5),
   <J_M^z>/N_M -> <J_1^z>/N_1 (0) = p - 1/2, and the exact two-domain N_2 = 1 result S9.
2. Migration times: the time t_1/2 at which the receiving domain is half excited
   (<J^z> crosses 0), against the superradiant scale ln N / N.

Writes figures/migration_final.png, figures/migration_times.png, figures/migration.json.
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
COL = {1.0: "#c2187f", 0.75: "#1f5fbf", 0.5: "#d4a017"}


def s9(N1, p):
    """Paper eq. S9 (N_2 = 1): <J_2^z>(inf) = (<J_1^z>(0) N_1 - N_1 - 1/2) / (N_1 + 1)^2."""
    m1 = (p - 0.5) * N1
    return (m1 * N1 - N1 - 0.5) / (N1 + 1) ** 2


def crossing(t, y):
    """First time y(t) crosses 0 upwards (linear in log t), or nan."""
    k = np.nonzero((y[:-1] < 0) & (y[1:] >= 0))[0]
    if not k.size:
        return np.nan
    k = k[0]
    lt = np.log(t[k]) + (np.log(t[k + 1]) - np.log(t[k])) * (-y[k]) / (y[k + 1] - y[k])
    return float(np.exp(lt))


def final_two_domains(quick):
    """<J_2^z>/N_2 (inf) for (N_1, N_2), p = n_1/N_1."""
    out = []
    n1_exact = [4, 10, 40, 100, 400, 1000] if not quick else [4, 40]
    n1_mf = [10**k for k in range(1, 9)] if not quick else [10, 10**4]
    for N2 in ((1, 5) if not quick else (1,)):
        for p in (1.0, 0.75, 0.5):
            for N1 in n1_exact:
                if N1 <= 4 * N2:
                    continue
                n0 = (int(round(p * N1)), 0)
                ex = ts.steady_state(ts.Chain((N1, N2)), initial=n0).jz_over_n[-1]
                out.append({"N": [N1, N2], "p": n0[0] / N1, "method": "exact", "last": float(ex)})
            for N1 in n1_mf:
                if N1 <= 4 * N2:
                    continue
                n0 = (int(round(p * N1)), 0)
                # two domains settle by gamma t ~ 1; much later times only add round-off
                # (relative eps * N_1 per unit time along the conserved direction)
                mf = solve_mean_field(ts.Chain((N1, N2)), [0.0, 50.0], initial=n0).jz_over_n[-1, -1]
                out.append({"N": [N1, N2], "p": n0[0] / N1, "method": "mf", "last": float(mf)})
    return out


def final_three_domains(quick):
    """Chains (r^2, r, 1) * N_3: exact t -> inf, and the MF plateau (max of the last domain)."""
    out = []
    rs_exact = [2, 4, 6, 8, 12, 16] if not quick else [2, 4]
    rs_mf = [4, 10, 30, 100, 300, 1000, 3000] if not quick else [10, 100]
    N3 = 2
    for p in (1.0, 0.5):
        for r in rs_exact:
            sizes = (r * r * N3, r * N3, N3)
            n0 = (int(round(p * sizes[0])), 0, 0)
            ex = ts.steady_state(ts.Chain(sizes), initial=n0).jz_over_n[-1]
            out.append({"N": list(sizes), "p": p, "method": "exact", "last": float(ex)})
        for r in rs_mf:
            sizes = (r * r * N3, r * N3, N3)
            n0 = (int(round(p * sizes[0])), 0, 0)
            t = np.logspace(-3 - 2 * np.log10(r * r * N3), 3, 400)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", MeanFieldBreakdown)
                y = solve_mean_field(ts.Chain(sizes), t, initial=n0).jz_over_n[:, -1]
            out.append({"N": list(sizes), "p": p, "method": "mf plateau", "last": float(np.nanmax(y)),
                        "t_plateau": float(t[np.nanargmax(y)])})
    return out


def migration_times(quick):
    """t_1/2 of domain 2 for (N_1, 1) [exact and MF], and of domain 3 for (10^8, N_2, 1) [MF]."""
    two = []
    for N1 in ([10, 20, 50, 100, 200, 500] if not quick else [20, 100]):
        t = np.logspace(np.log10(0.02 / N1), np.log10(50.0 / N1), 300)
        ex = ts.solve_master(ts.Chain((N1, 1)), t)
        if np.max(np.abs(ex.trace - 1)) > 1e-8:
            continue
        two.append({"N1": N1, "method": "exact", "t_half": crossing(t, ex.jz_over_n[:, 1])})
    for N1 in ([10**k for k in range(1, 9)] if not quick else [100, 10**6]):
        t = np.logspace(np.log10(0.02 / N1), np.log10(50.0 / N1), 600)
        mf = solve_mean_field(ts.Chain((N1, 1)), t)
        two.append({"N1": N1, "method": "mf", "t_half": crossing(t, mf.jz_over_n[:, 1])})
        mf2 = solve_mean_field(ts.Chain((N1, max(N1 // 100, 1))), t)
        two.append({"N1": N1, "method": "mf, N2 = N1/100", "t_half": crossing(t, mf2.jz_over_n[:, 1])})
    three = []
    for N2 in ([10**k for k in range(2, 7)] if not quick else [100, 10**4]):
        sizes = (10**8, N2, 1)
        t = np.logspace(-11, np.log10(50.0 / N2), 800)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MeanFieldBreakdown)
            y = solve_mean_field(ts.Chain(sizes), t).jz_over_n
        t2, t3 = crossing(t, y[:, 1]), crossing(t, y[:, 2])
        three.append({"N2": N2, "t_half_2": t2, "t_half_3": t3})
    return two, three


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=None,
                    help="output folder (default analysis/figures, or analysis/figures/quick with --quick)")
    args = ap.parse_args(argv)
    if args.out is None:        # a quick run never overwrites the tracked full-run outputs
        args.out = os.path.join(HERE, "figures", "quick" if args.quick else "")
    os.makedirs(args.out, exist_ok=True)
    start = time.perf_counter()
    fin2 = final_two_domains(args.quick)
    fin3 = final_three_domains(args.quick)
    two, three = migration_times(args.quick)

    # --- final excitation
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    ax = axes[0]
    for p in (1.0, 0.75, 0.5):
        target = p - 0.5
        for N2, mk in ((1, "o"), (5, "s")):
            for meth, fill in (("exact", None), ("mf", "white")):
                sel = [r for r in fin2 if r["N"][1] == N2 and r["method"] == meth and abs(r["p"] - p) < 0.01]
                if not sel:
                    continue
                n1 = np.array([r["N"][0] for r in sel], dtype=float)
                dev = np.array([target - r["last"] for r in sel])
                ax.loglog(n1, np.abs(dev), mk + ("-" if meth == "exact" else ":"), color=COL[p],
                          mfc=fill or COL[p], ms=5,
                          label=f"p = {p:g}, $N_2$ = {N2}, {'exact' if meth == 'exact' else 'MF'}")
        n1 = np.logspace(0.5, 8, 50)
        ax.loglog(n1, np.abs(target - s9(n1, p)), color=COL[p], lw=0.8, alpha=0.6)
    ax.set_xlabel("$N_1$")
    ax.set_ylabel(r"$|(p - 1/2) - \langle J_2^z\rangle/N_2(\infty)|$")
    ax.set_title("two domains: distance from eq. (5); thin lines: S9 ($N_2$ = 1)", fontsize=9)
    ax.legend(fontsize=6.5, frameon=False, ncol=2)
    ax = axes[1]
    for p in (1.0, 0.5):
        for meth, mk in (("exact", "o-"), ("mf plateau", "s:")):
            sel = [r for r in fin3 if r["method"] == meth and r["p"] == p]
            ax.semilogx([r["N"][0] for r in sel], [r["last"] for r in sel], mk, color=COL[p],
                        mfc=COL[p] if meth == "exact" else "white", label=f"p = {p:g}, {meth}")
        ax.axhline(p - 0.5, color=COL[p], lw=0.8, ls="--")
    ax.set_xlabel(r"$N_1$  (chains $(2r^2, 2r, 2)$)")
    ax.set_ylabel(r"$\langle J_3^z\rangle/N_3$ ($t\to\infty$ / MF plateau)")
    ax.set_title("three domains: last domain; dashed: eq. (5)", fontsize=9)
    ax.legend(fontsize=7, frameon=False)
    fig.savefig(os.path.join(args.out, "migration_final.png"), dpi=130)
    plt.close(fig)

    # --- migration times
    fig, ax = plt.subplots(figsize=(6.6, 4.2), constrained_layout=True)
    for meth, mk, col in (("exact", "o", "#c2187f"), ("mf", "s", "#1f5fbf"),
                          ("mf, N2 = N1/100", "D", "#2fbf8f")):
        sel = [r for r in two if r["method"] == meth]
        n = np.array([r["N1"] for r in sel], dtype=float)
        tt = np.array([r["t_half"] for r in sel])
        ax.plot(np.log(n), tt * n, mk, color=col, mfc="white" if meth != "exact" else col,
                label=f"$D_2$ of $(N_1, {'1' if meth != 'mf, N2 = N1/100' else 'N_1/100'})$, {meth.split(',')[0]}; x = ln $N_1$")
    n2 = np.array([r["N2"] for r in three], dtype=float)
    t3 = np.array([r["t_half_3"] for r in three]) - np.array([r["t_half_2"] for r in three])
    ax.plot(np.log(n2), t3 * n2, "^", color="#d4a017", mfc="white",
            label=r"$D_3$ of $(10^8, N_2, 1)$, MF: $(t_3 - t_2) N_2$; x = ln $N_2$")
    x = np.linspace(0, 21, 10)
    ax.plot(x, x, color="0.6", lw=0.8, ls="--", label=r"$t N = \ln N$")
    ax.set_xlabel(r"ln $N$ of the emitting domain")
    ax.set_ylabel(r"$\gamma\, t_{1/2}\, N$")
    ax.legend(fontsize=7, frameon=False)
    ax.set_title("migration time: receiving domain half excited", fontsize=9)
    fig.savefig(os.path.join(args.out, "migration_times.png"), dpi=130)
    plt.close(fig)

    # fits t N = a ln N + b
    fits = {}
    for meth in ("exact", "mf"):
        sel = [r for r in two if r["method"] == meth and np.isfinite(r["t_half"])]
        n = np.array([r["N1"] for r in sel], dtype=float)
        fits[f"two domains {meth}"] = np.polyfit(np.log(n), n * np.array([r["t_half"] for r in sel]), 1).tolist()
    ok = n2 <= 1e-3 * 1e8          # stage 2 is separated from stage 1 only for N_2 << N_1
    fits["three domains stage 2 (mf), N2 <= 1e5"] = np.polyfit(np.log(n2[ok]), (t3 * n2)[ok], 1).tolist()
    res = {"final_two": fin2, "final_three": fin3, "times_two": two, "times_three": three,
           "fits_tN_vs_lnN": fits, "seconds": time.perf_counter() - start}
    with open(os.path.join(args.out, "migration.json"), "w") as fh:
        json.dump(res, fh, indent=1, default=float)
    for k in ("final_two", "final_three", "times_two", "times_three"):
        for r in res[k]:
            print(k, r)
    print("fits t*N = a ln N + b:", fits)
    return 0


if __name__ == "__main__":
    sys.exit(main())
