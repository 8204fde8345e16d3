"""The demon's views drawn with matplotlib (optional: ``pip install 'trajspin[plot]'``).

Each view returns its matplotlib Figure; saving is the caller's choice (``fig.savefig``), or
pass ``path=`` to save it there and release it from pyplot (the figure is still returned).
"""
from __future__ import annotations

import numpy as np

from trajspin.demon.statistics import as_records, conditional_final_jz, photocurrent
from trajspin.errors import InputError
from trajspin.results.plotting import COLORS, need_pyplot, plot_trajectory, save_figure

__all__ = ["plot_raster", "plot_final_histograms", "plot_photocurrent", "plot_feedback_comparison"]


# ---------------------------------------------------------------------------- views

def plot_raster(trajectories, path=None, title=None):
    """A few trajectories: conditional <J_i^z>/N_i against time, with a jump raster per reservoir.

    Parameters
    ----------
    trajectories : sequence of Trajectory (same chain and time grid; log-spaced times look best)
        One panel each (``trajspin.results.plot_trajectory`` on a log time axis).
    path : str, optional
        Save the figure there (PNG) and release it from pyplot.

    Returns
    -------
    fig : matplotlib Figure
    """
    plt = need_pyplot()
    trs = list(trajectories)
    if not trs:
        raise InputError("plot_raster needs at least one trajectory")
    chain = trs[0].chain
    fig, axes = plt.subplots(len(trs), 1, figsize=(8, 1.9 * len(trs) + 0.8), sharex=True,
                             constrained_layout=True, squeeze=False)
    for k, (ax, tr) in enumerate(zip(axes[:, 0], trs)):
        plot_trajectory(tr, ax, xscale="log", legend=False, lw=1.4)
        ax.title.set_fontsize(8)
        ax.set_ylabel(r"$\langle J_i^z\rangle_c/N_i$", fontsize=8)
        if k < len(trs) - 1:
            ax.set_xlabel("")
    handles, labels = [], []
    for ax in axes[:, 0]:                      # one legend: the domains, "reservoir closed" once
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    axes[0, 0].legend(handles, labels, fontsize=7, loc="lower left", ncol=len(labels))
    fig.suptitle(title or f"{chain!r}: conditional states and the quanta each reservoir took",
                 fontsize=10)
    return save_figure(fig, path)


def plot_final_histograms(ensemble, path=None, domain=-1, exact=None, title=None, bins=30):
    """Histograms of a domain's final <J_i^z>/N_i, one per number of quanta, stacked.

    Left: the histogram over trajectories, stacked by the number of quanta taken; right: the
    conditional mean given n quanta (:func:`conditional_final_jz`).

    Parameters
    ----------
    ensemble : RecordedEnsemble
        An ensemble run with ``records="summaries"`` or ``"full"``.
    path : str, optional
        Save the figure there (PNG) and release it from pyplot.
    domain : int
        Index of the domain (0-based; -1 the last).
    exact : dict, optional
        :func:`exact_conditional_final_jz` of the same chain and initial state: marks the
        exact conditional means.
    title : str, optional
        Replaces the default title.
    bins : int
        Histogram bins over [-1/2, 1/2].

    Returns
    -------
    fig : matplotlib Figure
    """
    plt = need_pyplot()
    recs = as_records(ensemble)
    chain = ensemble.chain
    sizes = np.asarray(chain.sizes, dtype=float)
    x = recs.final_jz[:, domain] / sizes[domain]
    dom = domain % chain.M
    ns = np.unique(recs.njumps)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.3), constrained_layout=True,
                                 gridspec_kw={"width_ratios": [1.6, 1]})
    edges = np.linspace(-0.5, 0.5, bins + 1)
    cmap = plt.get_cmap("viridis")
    bottom = np.zeros(bins)
    for k, n in enumerate(ns):
        h, _ = np.histogram(x[recs.njumps == n], bins=edges)
        frac = h / len(recs)
        ax.bar(edges[:-1], frac, width=np.diff(edges), bottom=bottom, align="edge",
               color=cmap(k / max(len(ns) - 1, 1)), edgecolor="white", lw=0.3, label=f"n = {n}")
        bottom += frac
    ax.axvline(x.mean(), color="k", ls="--", lw=1, label=f"mean {x.mean():+.4f}")
    ax.set_xlabel(fr"final $\langle J_{{{dom + 1}}}^z\rangle/N_{{{dom + 1}}}$ of the trajectory")
    ax.set_ylabel("fraction of trajectories")
    ax.legend(fontsize=7, ncol=2, title="quanta taken", title_fontsize=7)
    ax.grid(alpha=0.25, lw=0.3)
    cond = conditional_final_jz(ensemble, by="total")
    keys = list(cond)
    mean = np.array([cond[k][1][dom] for k in keys])
    err = np.array([cond[k][2][dom] for k in keys])
    cnt = np.array([cond[k][0] for k in keys])
    bx.errorbar(keys, mean, yerr=np.where(np.isfinite(err), err, 0), fmt="o", color=COLORS[2],
                ms=4, capsize=2, label="trajectories")
    if exact is not None:
        ek = sorted(exact)
        bx.plot(ek, [exact[k][1][dom] for k in ek], "x", color="k", ms=7, label="exact block")
    for k, c in zip(keys, cnt):
        bx.annotate(f"{c}", (k, 0.47), fontsize=6, ha="center", color="gray")
    bx.set_xlabel("quanta taken n")
    bx.set_ylabel(fr"$\langle J_{{{dom + 1}}}^z\rangle/N_{{{dom + 1}}}$ given n")
    bx.set_ylim(-0.52, 0.52)
    bx.grid(alpha=0.25, lw=0.3)
    bx.legend(fontsize=7, loc="lower left")
    bx.set_title("conditional mean (number of runs on top)", fontsize=8)
    fig.suptitle(title or f"{chain!r}, {len(recs)} trajectories: where domain {dom + 1} ends, "
                 f"sorted by the number of quanta", fontsize=10)
    return save_figure(fig, path)


def plot_photocurrent(ensemble, path=None, edges=None, exact_times=None, exact_rates=None,
                      title=None):
    """Jump rate of each reservoir from the records (points ± s.e.) over the exact rate.

    Parameters
    ----------
    ensemble : RecordedEnsemble
        An ensemble run with ``records="full"``.
    path : str, optional
        Save the figure there (PNG) and release it from pyplot.
    edges : array_like, shape (B + 1,), optional
        Time bins, units of 1/gamma (default 30 log-spaced bins over the ensemble's positive
        times).
    exact_times : array_like, shape (T,), optional
        Times of ``exact_rates``, units of 1/gamma (positive: the time axis is logarithmic).
    exact_rates : ndarray, shape (T, M-1), optional
        :func:`exact_jump_rates` at those times (units of gamma), drawn as lines.
    title : str, optional
        Replaces the default title.

    Returns
    -------
    fig : matplotlib Figure
    """
    plt = need_pyplot()
    if edges is None:
        t = ensemble.times[ensemble.times > 0]
        edges = np.geomspace(t[0], t[-1], 31)
    centres, rate, err = photocurrent(ensemble, edges)
    chain = ensemble.chain
    C = chain.M - 1
    fig, ax = plt.subplots(figsize=(7.5, 4.5), constrained_layout=True)
    for c in range(C):
        col = ["#2e9e7f", "#6a3d9a", "#d4a017", "#444444"][c % 4]
        if exact_rates is not None:
            ax.plot(exact_times, exact_rates[:, c], color=col, lw=1.5,
                    label=fr"R{c + 1} exact $\gamma_{c + 1}\langle L^\dagger L\rangle$")
        ok = rate[:, c] > 0
        ax.errorbar(centres[ok], rate[ok, c], yerr=err[ok, c], fmt="o", ms=3, color=col,
                    mfc="white", capsize=1.5, lw=0.8, label=f"R{c + 1} from the records")
    ax.set_xscale("log")
    ax.set_yscale("log")
    top = np.nanmax(rate) * 3
    ax.set_ylim(top * 1e-5, top)
    seen = centres[np.any(rate > 0, axis=1)]
    if seen.size:
        ax.set_xlim(edges[0], min(edges[-1], seen.max() * 10))
    ax.set_xlabel(r"$\gamma t$")
    ax.set_ylabel(r"quanta per unit time ($\gamma$)")
    ax.grid(alpha=0.3, which="both", lw=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or f"{chain!r}: photocurrent of each reservoir, {len(as_records(ensemble))} "
                 f"trajectories", fontsize=9)
    return save_figure(fig, path)


def plot_feedback_comparison(passive, scans, path=None, domain=-1, title=None):
    """Final <J_d^z>/N_d of domain d: passive vs a scan of feedback thresholds.

    Left: the mean final value (± 2 standard errors) against the threshold, over the passive
    band; right: its histogram, passive and the best rule.

    Parameters
    ----------
    passive : RecordedEnsemble
        The ensemble without feedback.
    scans : dict {label: [(threshold, RecordedEnsemble), ...]}
        For each kind of rule, its ensembles at a few thresholds (same chain).
    path : str, optional
        Save the figure there (PNG) and release it from pyplot.
    domain : int
        Index of the domain d (0-based; -1 the last).
    title : str, optional
        Replaces the default title.

    Returns
    -------
    fig : matplotlib Figure
    """
    plt = need_pyplot()
    chain = passive.chain
    dom = domain % chain.M
    N = chain.sizes[dom]
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.3), constrained_layout=True)
    p_mean = passive.records.final_jz[:, dom].mean() / N
    p_err = passive.records.final_jz[:, dom].std(ddof=1) / np.sqrt(len(passive.records)) / N
    ax.axhspan(p_mean - 2 * p_err, p_mean + 2 * p_err, color="gray", alpha=0.3)
    ax.axhline(p_mean, color="gray", lw=1, label=f"passive {p_mean:+.4f}")
    best = None
    for k, (label, runs) in enumerate(scans.items()):
        th = [r[0] for r in runs]
        m = np.array([r[1].records.final_jz[:, dom].mean() / N for r in runs])
        e = np.array([r[1].records.final_jz[:, dom].std(ddof=1) / np.sqrt(len(r[1].records)) / N
                      for r in runs])
        ax.errorbar(th, m, yerr=2 * e, fmt="o-", ms=4, capsize=2, color=COLORS[k % len(COLORS)],
                    label=label)
        j = int(np.argmax(m))
        if best is None or m[j] > best[0]:
            best = (m[j], runs[j][1], label, th[j])
    ax.set_xlabel("rule threshold")
    ax.set_ylabel(fr"mean final $\langle J_{{{dom + 1}}}^z\rangle/N_{{{dom + 1}}}$ (± 2 s.e.)")
    ax.grid(alpha=0.3, lw=0.3)
    ax.legend(fontsize=7)
    edges = np.linspace(-0.5, 0.5, 2 * N + 2) if N <= 20 else np.linspace(-0.5, 0.5, 41)
    xp = passive.records.final_jz[:, dom] / N
    xb = best[1].records.final_jz[:, dom] / N
    bx.hist(xp, bins=edges, alpha=0.55, color="gray", label="passive", density=True)
    bx.hist(xb, bins=edges, alpha=0.55, color=COLORS[1], density=True,
            label=f"{best[2]} at {best[3]:g}")
    bx.set_xlabel(fr"final $\langle J_{{{dom + 1}}}^z\rangle/N_{{{dom + 1}}}$ of the trajectory")
    bx.set_ylabel("density")
    bx.legend(fontsize=7)
    bx.grid(alpha=0.3, lw=0.3)
    fig.suptitle(title or f"{chain!r}: the demon closes reservoirs on the record "
                 f"(not a master-equation average)", fontsize=10)
    return save_figure(fig, path)
