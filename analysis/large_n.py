"""Exact quantum trajectories where the paper could only use mean field.

    OPENBLAS_NUM_THREADS=1 python analysis/large_n.py                  # ~12 min on one core
    OPENBLAS_NUM_THREADS=1 python analysis/large_n.py --part burst     # 20 min *
    OPENBLAS_NUM_THREADS=1 python analysis/large_n.py --part plateau   # 19 min *
    ... --quick                  # each part in < 1 min, smaller runs -> analysis/figures/quick/
    ... --from-json              # burst, plateau: summarise and draw the stored JSON again

    * measured with the machine's other core busy (one core, OPENBLAS_NUM_THREADS=1); the
      trajectories ran at ~12 us per jump there against ~8 us on a free core.

Three parts, each with its own figure and JSON beside it (analysis/figures/large_n*.png/json).

``--part compare`` (the default).  For each chain, an exact ensemble of Lanczos trajectories
(``run_trajectories``, the matrix-free engine chosen by "auto") and the mean field ("pairs"
closure, the one that draws the paper's figures) on the same log grid; the figure shows
<J_i^z>/N_i with the ensemble's +-2 standard errors as bands and the mean field as lines, and
below it the mean-field error in units of the ensemble's standard error.  Numbers go to
``analysis/figures/large_n.json``.  Chains: (10^5, 10^2), (10^6, 10^2) and (10^5, 10^2, 10).

``--part burst``.  The spread of the superradiant burst across trajectories of (N_1, 10),
N_1 = 10^3 .. 10^7, and (N_1, 100), N_1 = 10^3, 10^4: per trajectory (``trajectory``, full jump
record) the time t_1/2 at which the conditional <J_1^z> crosses 0, and the time of jump N_1/2.
Mean and standard deviation against exact references: one collective domain (closed form
H_N / (N + 1)) and the two-domain chain (a mixture over total spin J of sums of independent
exponentials, ``two_domain_count_time``); fits gamma N_1 <t_1/2> = a ln N_1 + b and
sd(t_1/2) = c / (gamma N_1^p).  -> ``large_n_burst.json``.

``--part plateau``.  The exact t -> infinity <J_3^z>/N_3 of three-domain chains on the way to
Fig. 3(a)'s (10^6, 10^4, 10^2): ``steady_state`` for families (100n, 10n, n), (N_1, 20, 2),
(N_1, 40, 8), (200, 20, N_3) and (10^4, 100, 1) (the paper's ratios), trajectory ensembles
(Lanczos path, value at gamma t = 10^3) for (10^4, 20, 2), (10^3, 100, 10), (10^4, 100, 10) and
(2 x 10^4, 200, 2), and the extrapolation of the deficit (1/2 - D3) N_2 to N_2 = 10^4.
-> ``large_n_plateau.json``.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import trajspin
from trajspin import (Chain, estimate, run_trajectories, solve_mean_field, steady_state,
                      trajectory)

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


# ---------------------------------------------------------------------------------------------
# --part burst: the spread of the superradiant burst across trajectories
# ---------------------------------------------------------------------------------------------

# (N_2, N_1, trajectories).  A trajectory runs on to its dark state whatever the output grid:
# N_1 - N_2 jumps at ~8 us each for N_2 = 10 (~12 us with the other core busy: 121 s at 10^7),
# ~35 us for N_2 = 100
BURST = {"full": [(10, 10**3, 2000), (10, 10**4, 400), (10, 10**5, 150), (10, 10**6, 30),
                  (10, 10**7, 4), (100, 10**3, 400), (100, 10**4, 150)],
         "quick": [(10, 10**3, 200), (10, 10**4, 40), (100, 10**3, 50)]}
BURST_TRACES = 3            # conditional <J_1^z>/N_1 of the first trajectories, for the figure
BURST_SEED = 13


def burst_seed(N1, N2):
    """The seed of chain (N1, N2): its own stream.  With one seed for all chains, trajectory k
    of every chain would draw the same thresholds, and since the first waiting times scale as
    1/N_1, gamma N_1 t_1/2 of trajectory k would be nearly the same number at every N_1 (its
    correlation across chains was 1.00): the rows would not be independent measurements."""
    return BURST_SEED * 10**12 + N2 * 10**9 + N1


def single_domain_half_time(N):
    """Exact mean and standard deviation of gamma t_1/2 for one collective domain of N spins.

    From |N/2, N/2> the waiting times are independent exponentials with rates
    gamma K (N - K + 1), K = N, N-1, ...; t_1/2 is the time of jump N/2 (K reaches N/2).
    With 1/(K (N+1-K)) = (1/K + 1/(N+1-K)) / (N+1):

        mean = H_N / (N + 1),   var = (H_N^(2) + 2 H_N / (N + 1)) / (N + 1)^2   (N even)

    so gamma t_1/2 (N+1) -> ln N + 0.5772 and its spread -> pi / sqrt(6) / (N + 1).
    """
    k = np.arange(1, N + 1, dtype=float)
    H1, H2 = np.sum(1.0 / k[::-1]), np.sum(1.0 / k[::-1] ** 2)   # small terms first
    mean = H1 / (N + 1)
    var = (H2 + 2 * H1 / (N + 1)) / (N + 1) ** 2
    return mean, np.sqrt(var)


def two_domain_count_time(N1, N2, n):
    """Exact mean and standard deviation of gamma x (time of jump n) for the chain (N1, N2).

    L = J_1^- + J_2^- lowers the total spin, so |j_1 j_1>|j_2 -j_2> = sum_J c_J |J, M_0>,
    M_0 = j_1 - j_2, and the probability of a jump record is the sum over J of the records of
    single spins J (the branches never mix): a mixture, weights P_J = c_J^2
    (``trajspin.exact.two_domain``), of sums of independent exponentials with rates
    (J + M)(J - M + 1) = (N1 - N2 + k - s)(k + s + 1) for jump s = 0, 1, .. of branch
    J = j_1 - j_2 + k.  N2 = 0 gives the single domain.
    """
    a, b = N1 - N2, N2
    k = np.arange(b + 1, dtype=float)
    J = a / 2.0 + k
    S = (N1 + N2) / 2.0
    steps = np.log1p(2.0 / (2 * J[:-1] + 1)) + np.log(S - J[:-1]) - np.log(S + J[:-1] + 2)
    P = np.exp(np.log((a + 1.0) / (N1 + 1.0)) + np.concatenate([[0.0], np.cumsum(steps)]))
    s = np.arange(n, dtype=float)
    means, second = np.empty(b + 1), np.empty(b + 1)
    for i in range(b + 1):
        inv = 1.0 / ((a + i - s) * (i + s + 1))
        means[i] = np.sum(inv[::-1])
        second[i] = np.sum(inv[::-1] ** 2) + means[i] ** 2
    mean = P @ means
    return mean, np.sqrt(P @ second - mean**2), float(P.sum())


def burst_times(tr, N1):
    """(t_cross, t_count) of one trajectory.

    t_cross: the first jump at which the conditional <J_1^z> is <= 0 just before or just after
    it (D_1 half empty in the conditional state; the crossing lies in the waiting time before
    that jump, so t_cross is late by less than one waiting time, ~4 / (gamma N_1^2) at the
    burst).  t_count: the time of jump N_1/2 (N_1/2 quanta have left the chain), which has the
    exact reference of ``two_domain_count_time``.
    """
    z = np.minimum(tr.jz_before[:, 0], tr.jz_after[:, 0])
    k = int(np.argmax(z <= 0.0))
    if z[k] > 0.0:
        raise RuntimeError("D_1 never crossed half excitation")
    return float(tr.jump_times[k]), float(tr.jump_times[N1 // 2 - 1])


GUMBEL_EXCESS_KURTOSIS = 2.4     # the limit law of t_1/2 (sum of E_j / j over early jumps)


def summarise(x, scale):
    """Mean and its standard error, standard deviation and its error, all times ``scale``.

    The error of the standard deviation s of n samples is s/2 sqrt(2/(n-1) + kappa/n) with
    kappa = 2.4, the excess kurtosis of the Gumbel law that t_1/2 follows at large N (the
    bootstrap underestimates it for a handful of samples: n = 4 at N_1 = 10^7).
    """
    x = np.asarray(x) * scale
    n, sd = x.size, float(x.std(ddof=1))
    return dict(mean=float(x.mean()), mean_err=sd / np.sqrt(n), std=sd,
                std_err=sd / 2 * np.sqrt(2 / (n - 1) + GUMBEL_EXCESS_KURTOSIS / n))


def burst_chain(N2, N1, ntraj):
    chain = Chain([N1, N2])
    t = np.array([0.0, 3 * np.log(N1) / N1])        # the grid costs nothing; records carry it
    t_cross, t_count, traces = [], [], []
    t0 = time.perf_counter()
    for i in range(ntraj):
        tr = trajectory(chain, t, seed=burst_seed(N1, N2), index=i)
        tc, tn = burst_times(tr, N1)
        t_cross.append(tc)
        t_count.append(tn)
        if i < BURST_TRACES:
            keep = np.unique(np.linspace(0, tr.jump_times.size - 1, 400).astype(int))
            traces.append([tr.jump_times[keep].tolist(), (tr.jz_after[keep, 0] / N1).tolist()])
    row = dict(N1=N1, N2=N2, ntraj=ntraj, seconds=time.perf_counter() - t0,
               seed=burst_seed(N1, N2), t_cross=t_cross, t_count=t_count, traces=traces)
    return burst_summary(row)


def burst_summary(row):
    """Add to a row of sampled times their statistics and the exact references (in place)."""
    N1, N2 = row["N1"], row["N2"]
    one_mean, one_std = single_domain_half_time(N1)
    refs = dict(one_domain=(one_mean, one_std, 1.0),
                jump_half_N1=two_domain_count_time(N1, N2, N1 // 2),
                jump_half_N1_minus_N2=two_domain_count_time(N1, N2, (N1 - N2) // 2))
    row.update(cross=summarise(row["t_cross"], N1), count=summarise(row["t_count"], N1),
               exact={k: dict(mean=m * N1, std=sd * N1, weight_sum=w)
                      for k, (m, sd, w) in refs.items()})
    for key in ("cross", "count"):
        m = row[key]
        m["z_mean"] = {k: (m["mean"] - e["mean"]) / m["mean_err"] for k, e in row["exact"].items()}
        m["z_std"] = {k: (m["std"] - e["std"]) / m["std_err"] for k, e in row["exact"].items()}
    return row


def weighted_line(x, y, err):
    """Weighted least squares y = a x + b: a, b, their standard errors, chi^2 per dof, and the
    errors scaled by sqrt(chi^2 per dof) when that exceeds 1 (scatter beyond the error bars)."""
    A = np.column_stack([x, np.ones_like(x)]) / err[:, None]
    cov = np.linalg.inv(A.T @ A)
    a, b = cov @ (A.T @ (y / err))
    chi2 = float(np.sum(((y - a * x - b) / err) ** 2)) / max(x.size - 2, 1)
    scale = np.sqrt(max(chi2, 1.0))
    return dict(slope=float(a), slope_err=float(np.sqrt(cov[0, 0])), intercept=float(b),
                intercept_err=float(np.sqrt(cov[1, 1])), chi2_per_dof=chi2,
                slope_err_scaled=float(scale * np.sqrt(cov[0, 0])),
                intercept_err_scaled=float(scale * np.sqrt(cov[1, 1])))


def weighted_mean(y, err):
    w = 1.0 / err**2
    return dict(mean=float(np.sum(w * y) / np.sum(w)), err=float(1.0 / np.sqrt(np.sum(w))))


def chi2_vs_exact(rows, key):
    """Sum of z^2 of the means against the exact time of jump (N_1 - N_2)/2 (crossing) or
    N_1/2 (count), over the given rows; no parameter is fitted."""
    ref = "jump_half_N1_minus_N2" if key == "cross" else "jump_half_N1"
    return dict(reference=ref, rows=len(rows),
                chi2=float(sum(r[key]["z_mean"][ref] ** 2 for r in rows)))


def burst_fits(rows):
    """Fits over the N_2 = 10 rows: gamma N_1 <t_1/2> = a ln N_1 + b, and
    ln(gamma sd(t_1/2)) = -p ln N_1 + ln c (sd = c / (gamma N_1^p))."""
    rs = [r for r in rows if r["N2"] == 10]
    N1 = np.array([r["N1"] for r in rs], dtype=float)
    lnN = np.log(N1)
    fits = {}
    for key in ("cross", "count"):
        mean = np.array([r[key]["mean"] for r in rs])
        merr = np.array([r[key]["mean_err"] for r in rs])
        sd = np.array([r[key]["std"] / r["N1"] for r in rs])
        sderr = np.array([r[key]["std_err"] / r["N1"] for r in rs])
        f = weighted_line(lnN, mean, merr)
        g = weighted_line(lnN, np.log(sd), sderr / sd)
        fits[key] = dict(mean_vs_lnN=f, std_power=dict(p=-g["slope"], p_err=g["slope_err"],
                                                      c=float(np.exp(g["intercept"])),
                                                      c_err=float(np.exp(g["intercept"])
                                                                  * g["intercept_err"]),
                                                      chi2_per_dof=g["chi2_per_dof"]),
                         std_times_N1_at_p1=weighted_mean(sd * N1, sderr * N1),
                         chi2_vs_exact=chi2_vs_exact(rs, key))
    for key in ("cross", "count"):
        fits[key]["chi2_vs_exact_all_rows"] = chi2_vs_exact(rows, key)
    return dict(N1=[r["N1"] for r in rs], N2=10, fits=fits,
                asymptote=dict(slope=1.0, intercept=float(np.euler_gamma),
                               std=float(np.pi / np.sqrt(6))))


def draw_burst(rows, fits, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.9))
    ax = axes[0]
    for r, c in zip([r for r in rows if r["N2"] == 10], ("C0", "C1", "C2", "C3", "C4")):
        for k, (tt, z) in enumerate(r["traces"]):
            ax.plot(np.array(tt) * r["N1"], z, color=c, lw=0.8,
                    label=f"$N_1$ = {r['N1']:.0e}" if k == 0 else None)
    ax.set_xlabel(r"$\gamma N_1 t$")
    ax.set_ylabel(r"conditional $\langle J_1^z\rangle / N_1$")
    ax.set_title(f"first {BURST_TRACES} trajectories of ($N_1$, 10)", fontsize=9)
    ax.set_xlim(0, 25)
    ax.legend(fontsize=7, frameon=False)
    Ns = np.logspace(3, 7, 13)
    one = np.array([single_domain_half_time(int(round(n / 2)) * 2) for n in Ns])
    for key, ax in (("mean", axes[1]), ("std", axes[2])):
        for N2, mk in ((10, "o"), (100, "s")):
            rs = [r for r in rows if r["N2"] == N2]
            if not rs:
                continue
            N1 = np.array([r["N1"] for r in rs], dtype=float)
            y = np.array([r["cross"][key] for r in rs])
            e = np.array([r["cross"][f"{key}_err"] for r in rs])
            ax.errorbar(N1 * (1.0 if N2 == 10 else 1.08), y, 2 * e, fmt=mk, ms=4, capsize=2,
                        color="C3" if N2 == 10 else "C0",
                        label=rf"trajectories, $N_2$ = {N2}: $\langle J_1^z\rangle$ crosses 0 "
                              "(±2 s.e.)")
            ax.plot(N1 * (1.0 if N2 == 10 else 1.08),
                    [r["exact"]["jump_half_N1_minus_N2"][key] for r in rs], "x", color="k",
                    ms=6, label="exact, time of jump $(N_1 - N_2)/2$ (J mixture)"
                    if N2 == 10 else None)
        ax.plot(Ns, one[:, 0 if key == "mean" else 1] * Ns, "-", color="0.5", lw=1,
                label="exact, one domain of $N_1$ spins")
        ax.set_xscale("log")
        ax.set_xlabel(r"$N_1$")
    axes[1].plot(Ns, np.log(Ns) + np.euler_gamma, ":", color="0.3", lw=1,
                 label=r"$\ln N_1 + 0.577$")
    f = fits["fits"]["cross"]["mean_vs_lnN"]
    axes[1].set_ylabel(r"$\gamma N_1 \langle t_{1/2}\rangle$")
    axes[1].set_title(f"fit ($N_2$ = 10): {f['slope']:.3f}(±{f['slope_err']:.3f}) ln $N_1$ + "
                      f"{f['intercept']:.2f}(±{f['intercept_err']:.2f})", fontsize=9)
    axes[2].axhline(np.pi / np.sqrt(6), ls=":", color="0.3", lw=1, label=r"$\pi/\sqrt{6}$")
    p = fits["fits"]["cross"]["std_power"]
    axes[2].set_ylabel(r"$\gamma N_1\,\mathrm{sd}(t_{1/2})$")
    axes[2].set_title(f"sd ∝ $N_1^{{-p}}$, p = {p['p']:.3f} ± {p['p_err']:.3f}", fontsize=9)
    for ax in axes[1:]:
        ax.legend(fontsize=6.5, frameon=False)
    fig.tight_layout()
    fig.savefig(out, dpi=130)


def run_burst(quick, out, stored=None):
    """Sample (or, with ``stored``, take the rows of an earlier JSON), summarise, fit, draw."""
    rows = []
    plan = BURST["quick" if quick else "full"] if stored is None else stored["rows"]
    for item in plan:
        r = burst_chain(*item) if stored is None else burst_summary(item)
        rows.append(r)
        c, n, ex = r["cross"], r["count"], r["exact"]
        print(f"({r['N1']}, {r['N2']}): {r['ntraj']} trajectories in {r['seconds']:.0f} s; "
              f"gamma N1 t_1/2: crossing {c['mean']:.3f} ± {c['mean_err']:.3f} (sd "
              f"{c['std']:.3f} ± {c['std_err']:.3f}), jump N1/2 {n['mean']:.3f} ± "
              f"{n['mean_err']:.3f} [exact: jump N1/2 {ex['jump_half_N1']['mean']:.3f}, jump "
              f"(N1-N2)/2 {ex['jump_half_N1_minus_N2']['mean']:.3f} sd "
              f"{ex['jump_half_N1_minus_N2']['std']:.3f}; one domain "
              f"{ex['one_domain']['mean']:.3f} sd {ex['one_domain']['std']:.3f}]", flush=True)
    fits = burst_fits(rows)
    draw_burst(rows, fits, out)
    return dict(rows=rows, fits=fits)


# ---------------------------------------------------------------------------------------------
# --part plateau: the exact t -> infinity <J_3^z>/N_3 on the way to Fig. 3(a)'s chain
# ---------------------------------------------------------------------------------------------

# exact t -> infinity (steady_state; ~1-45 s each, (10^4, 100, 1) ~2 min) by family
PLATEAU_STEADY = {
    "full": {"(100n, 10n, n)": [(100 * n, 10 * n, n) for n in range(1, 7)],
             "(N1, 20, 2)": [(N1, 20, 2) for N1 in (40, 100, 200, 400, 1000, 2000)],
             "(N1, 40, 8)": [(N1, 40, 8) for N1 in (80, 160, 400, 1000)],
             "(200, 20, N3)": [(200, 20, N3) for N3 in (1, 2, 4, 8, 12)],
             "paper's ratios": [(10**4, 100, 1)]},
    "quick": {"(100n, 10n, n)": [(100 * n, 10 * n, n) for n in range(1, 5)],
              "(N1, 20, 2)": [(N1, 20, 2) for N1 in (40, 100, 200)],
              "(200, 20, N3)": [(200, 20, N3) for N3 in (1, 4)]}}
# trajectory ensembles (Lanczos path), t -> infinity read at gamma t = 10^3
PLATEAU_TRAJ = {"full": [((10**4, 20, 2), 400), ((10**3, 100, 10), 300), ((10**4, 100, 10), 40),
                         ((2 * 10**4, 200, 2), 40)],
                "quick": [((10**3, 100, 10), 20)]}
PLATEAU_SEED = 31
PAPER = (10**6, 10**4, 10**2)


def stage_two(N2, N3):
    """<J_2^z>/N_2 at t -> infinity of the two-domain chain (N2, N3) started (N2, 0): stage 2
    on its own, exact at any size (``steady_state`` takes the closed form,
    ``trajspin.exact.two_domain``)."""
    return float(steady_state(Chain([N2, N3])).jz_over_n[1])


def plateau_steady(sizes):
    t0 = time.perf_counter()
    r = steady_state(Chain(list(sizes)))
    wall = time.perf_counter() - t0
    jz = np.asarray(r.jz_over_n, dtype=float)
    two = stage_two(sizes[1], sizes[2])
    return dict(sizes=list(sizes), seconds=wall,
                estimate_seconds=float(estimate(list(sizes), solver="steady").seconds),
                jz_over_n=jz.tolist(), d3=float(jz[2]), deficit_N2=float((0.5 - jz[2]) * sizes[1]),
                two_domain=two, delta=float(jz[2] - two), delta_N1=float((jz[2] - two) * sizes[0]))


def plateau_traj(sizes, ntraj):
    chain = Chain(list(sizes))
    t0 = time.perf_counter()
    ens = run_trajectories(chain, [100.0, 1000.0], ntraj, seed=PLATEAU_SEED, progress=False,
                           chunk=1)
    wall = time.perf_counter() - t0
    n = np.asarray(sizes, dtype=float)
    jz, err = ens.jz_over_n, ens.jz_err / n
    left = {int(K): int(c) for K, c in enumerate(ens.final_excitation_counts) if c}
    two = stage_two(sizes[1], sizes[2])
    return dict(sizes=list(sizes), ntraj=ntraj, seed=PLATEAU_SEED, seconds=wall,
                engine=ens.meta.get("engine"), jz_over_n=jz[-1].tolist(),
                jz_over_n_err=err[-1].tolist(), d3_at_100=float(jz[0, 2]), d3=float(jz[-1, 2]),
                d3_err=float(err[-1, 2]), deficit_N2=float((0.5 - jz[-1, 2]) * sizes[1]),
                deficit_N2_err=float(err[-1, 2] * sizes[1]), excitation_left_counts=left,
                two_domain=two,
                z_vs_two_domain=float((jz[-1, 2] - two) / err[-1, 2]) if err[-1, 2] > 0 else None)


def plateau_extrapolation(families):
    """What the exact t -> infinity values say for (10^6, 10^4, 10^2).

    Measured: D3(inf) of (N_1, N_2, N_3) approaches D2(inf) of the two-domain chain
    (N_2, N_3) (stage 2 alone, exact at any size) as delta = kappa / N_1 with |kappa| = O(1).
    Read at the paper's chain: the two-domain (10^4, 10^2) value, shifted by at most
    max|kappa| / 10^6 (all chains with N_1 >= 10 N_2), or, if kappa grew in proportion to N_3
    (the worst trend in the data), by max|kappa / N_3| x 10^2 / 10^6.
    """
    rows = [r for rs in families.values() for r in rs if r["sizes"][0] >= 10 * r["sizes"][1]]
    two = stage_two(PAPER[1], PAPER[2])
    out = dict(paper_chain=list(PAPER), two_domain_paper=two,
               two_domain_paper_deficit_N2=(0.5 - two) * PAPER[1])
    if rows:
        kappa = max(abs(r["delta_N1"]) for r in rows)
        kappa_n3 = max(abs(r["delta_N1"]) / r["sizes"][2] for r in rows)
        out.update(kappa_max=kappa, kappa_over_N3_max=kappa_n3,
                   shift_bound=kappa / PAPER[0],
                   shift_bound_if_kappa_grows_like_N3=kappa_n3 * PAPER[2] / PAPER[0],
                   d3_paper_range=[two - kappa_n3 * PAPER[2] / PAPER[0], two])
    return out


def two_domain_curves():
    N2 = np.unique(np.logspace(1, 4, 31).astype(int))
    ratio = np.logspace(np.log10(0.005), np.log10(0.5), 25)
    c = dict(N2=N2.tolist(), ratio=ratio.tolist())
    for key, div in (("N3 = N2/10", 10), ("N3 = N2/100", 100)):
        c[key] = [stage_two(int(n), int(n) // div) if n >= div else None for n in N2]
    for key, n in (("N2 = 40", 40), ("N2 = 10^4", 10**4)):
        c[key] = [(0.5 - stage_two(n, max(int(round(r * n)), 1))) * n for r in ratio]
    return c


def draw_plateau(info, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fam, traj = info["steady"], list(info["trajectories"])
    prior = info.get("from_large_n_json")
    if prior:
        traj.append(dict(prior, source="large_n.json"))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.3))
    ax = axes[0]
    for k, (name, rows) in enumerate(fam.items()):
        x = [r["sizes"][1] for r in rows]
        ax.plot(x, [r["d3"] for r in rows], "o-", ms=4, lw=0.8, color=f"C{k}",
                label=f"{name}, exact t → ∞")
        ax.plot(x, [r["two_domain"] for r in rows], "x", ms=6, color=f"C{k}")
    for k, r in enumerate(traj):
        ax.errorbar(r["sizes"][1] * (1 + 0.04 * k), r["d3"], 2 * r["d3_err"], fmt="sDv^<>"[k],
                    ms=4, capsize=2, color="k", mfc="w",
                    label=f"{tuple(r['sizes'])}: {r['ntraj']} traj. (±2 s.e.)"
                          + (" (large_n.json)" if r.get("source") else ""))
    curve = info["two_domain_curves"]
    for key, ls in (("N3 = N2/10", ":"), ("N3 = N2/100", "--")):
        ax.plot(curve["N2"], np.array(curve[key], dtype=float), ls, color="0.4", lw=1,
                label=f"two domains ($N_2$, $N_3$), {key}")
    ax.plot([PAPER[1]], [info["paper_mean_field_plateau"]], "*", ms=10, color="C6",
            label="(10⁶, 10⁴, 10²): mean field at γt = 10")
    ax.set_xscale("log")
    ax.set_xlabel(r"$N_2$")
    ax.set_ylabel(r"$\langle J_3^z\rangle / N_3$ at t → ∞  (×: two domains ($N_2$, $N_3$))")
    ax.legend(fontsize=5.8, frameon=False, loc="lower right")
    ax = axes[1]
    for k, (name, rows) in enumerate(fam.items()):
        ax.plot([r["sizes"][0] / r["sizes"][1] for r in rows], [r["delta_N1"] for r in rows],
                "o-", ms=4, lw=0.8, color=f"C{k}", label=name)
    ax.axhline(0, color="0.6", lw=0.6)
    ax.set_xscale("log")
    ax.set_xlabel(r"$N_1 / N_2$")
    ax.set_ylabel(r"$N_1\,[D_3(\infty) - D_2^{(N_2, N_3)}(\infty)]$")
    ax.set_title("three domains minus stage 2 alone, in units of $1/N_1$", fontsize=9)
    ax.legend(fontsize=6, frameon=False)
    ax = axes[2]
    for k, (name, rows) in enumerate(fam.items()):
        rs = [r for r in rows if r["sizes"][0] >= 10 * r["sizes"][1]]
        ax.plot([r["sizes"][2] / r["sizes"][1] for r in rs], [r["deficit_N2"] for r in rs],
                "o", ms=4, color=f"C{k}", label=name)
    for key, ls in (("N2 = 40", ":"), ("N2 = 10^4", "--")):
        ax.plot(curve["ratio"], curve[key], ls, color="0.4", lw=1, label=f"two domains, {key}")
    ax.set_xscale("log")
    ax.set_xlabel(r"$N_3 / N_2$")
    ax.set_ylabel(r"$(1/2 - \langle J_3^z\rangle/N_3)\; N_2$")
    ax.set_title(r"chains with $N_1 \geq 10 N_2$", fontsize=9)
    ax.legend(fontsize=6, frameon=False)
    fig.tight_layout()
    fig.savefig(out, dpi=130)


def run_plateau(quick, out, stored=None):
    """Run the chains (or, with ``stored``, take those of an earlier JSON), extrapolate, draw."""
    families = {}
    plan = PLATEAU_STEADY["quick" if quick else "full"] if stored is None else stored["steady"]
    for name, chains in plan.items():
        families[name] = []
        for sizes in chains:
            r = plateau_steady(sizes) if stored is None else sizes
            families[name].append(r)
            print(f"{name} {tuple(r['sizes'])}: D3(inf) = {r['d3']:.6f}, (1/2 - D3) N2 = "
                  f"{r['deficit_N2']:.4f}, two domains {r['two_domain']:.6f}, N1 x difference "
                  f"{r['delta_N1']:.3f} ({r['seconds']:.1f} s, estimate "
                  f"{r['estimate_seconds']:.1f} s)", flush=True)
    traj = []
    plan = PLATEAU_TRAJ["quick" if quick else "full"] if stored is None else stored["trajectories"]
    for item in plan:
        r = plateau_traj(*item) if stored is None else item
        sizes, ntraj = r["sizes"], r["ntraj"]
        traj.append(r)
        print(f"{tuple(sizes)}: {ntraj} trajectories in {r['seconds']:.0f} s: D3 = "
              f"{r['d3']:.4f} ± {r['d3_err']:.4f}, (1/2 - D3) N2 = {r['deficit_N2']:.2f} ± "
              f"{r['deficit_N2_err']:.2f}; two domains {r['two_domain']:.5f}; excitation "
              f"left: {r['excitation_left_counts']}",
              flush=True)
    tmf = np.logspace(-8, 1, 200)
    mf = solve_mean_field(Chain(list(PAPER)), tmf)
    d3mf = mf.jz_over_n[:, 2]
    info = dict(steady=families, trajectories=traj, extrapolation=plateau_extrapolation(families),
                paper_mean_field_plateau=float(d3mf[-1]),
                paper_mean_field_max=float(d3mf.max()),
                paper_mean_field_max_time=float(tmf[np.argmax(d3mf)]),
                two_domain_curves=two_domain_curves())
    prior = HERE / "figures" / "large_n.json"         # the default part's (10^5, 100, 10) ensemble
    if prior.exists():
        for r in json.loads(prior.read_text())["rows"]:
            if len(r["sizes"]) == 3:
                info["from_large_n_json"] = dict(sizes=r["sizes"], ntraj=r["ntraj"],
                                                 d3=r["final_exact"][2],
                                                 d3_err=r["final_exact_err"][2])
    print("extrapolation:", info["extrapolation"], flush=True)
    draw_plateau(info, out)
    info["mean_field_times"] = "logspace(-8, 1, 200), value at gamma t = 10"
    return info


def run_compare(quick, out):
    t = np.logspace(-8, 2, 120)
    rows = []
    for sizes, ntraj in CHAINS["quick" if quick else "full"]:
        r = compare(sizes, ntraj, t)
        rows.append(r)
        print(f"{tuple(sizes)}: {ntraj} trajectories in {r['seconds']:.0f} s ({r['engine']}); "
              f"final exact {np.round(r['final_exact'], 5).tolist()} ± "
              f"{np.round(r['final_exact_err'], 5).tolist()}, mean field "
              f"{np.round(r['final_mean_field'], 5).tolist()}; max |error| "
              f"{np.round(r['max_abs_error'], 4).tolist()}", flush=True)
    draw(rows, t, out)
    return dict(times=t.tolist(), rows=rows)


PARTS = {"compare": ("large_n.png", run_compare), "burst": ("large_n_burst.png", run_burst),
         "plateau": ("large_n_plateau.png", run_plateau)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--part", choices=tuple(PARTS), default="compare",
                    help="compare (default): exact ensembles against the mean field; burst: "
                         "spread of the superradiant burst; plateau: D3 at t -> infinity "
                         "toward Fig. 3(a)'s chain")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--from-json", action="store_true",
                    help="burst and plateau: no new runs; take the samples and exact values of "
                         "the JSON beside --out, summarise and draw them again")
    ap.add_argument("--out", type=Path, default=None,
                    help="PNG path, JSON beside it (default analysis/figures/large_n.png, "
                         "large_n_burst.png or large_n_plateau.png by part, under "
                         "analysis/figures/quick/ with --quick)")
    args = ap.parse_args(argv)
    name, run = PARTS[args.part]
    if args.from_json and args.part == "compare":
        ap.error("--from-json is for --part burst and --part plateau")
    if args.out is None:        # a quick run never overwrites the tracked full-run outputs
        args.out = HERE / "figures" / ("quick" if args.quick else "") / name
    args.out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if args.from_json:       # seconds and versions stay those of the run that sampled
        stored = json.loads(args.out.with_suffix(".json").read_text())
        info = run(args.quick, args.out, stored)
        info.update(part=args.part, quick=stored["quick"], seconds=stored["seconds"],
                    versions=stored["versions"], summarised_again_with=trajspin.results.versions())
    else:
        info = run(args.quick, args.out)
        info.update(part=args.part, quick=args.quick, seconds=time.perf_counter() - t0,
                    versions=trajspin.results.versions())
    args.out.with_suffix(".json").write_text(json.dumps(info, indent=1))
    print(f"wrote {args.out} ({info['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
