"""One call that runs an ensemble with full records and draws every demon view."""
from __future__ import annotations

import os

import numpy as np

from trajspin.demon.references import exact_conditional_final_jz, exact_jump_rates
from trajspin.demon.statistics import (bin_average, conditional_final_jz, counting_statistics,
                                       energy_balance, photocurrent, probability_above)
from trajspin.demon.views import plot_final_histograms, plot_photocurrent, plot_raster
from trajspin.grids import time_grid
from trajspin.trajectories import check_feedback, run_trajectories, trajectory

__all__ = ["make_views"]


# ---------------------------------------------------------------------------- all views at once

def make_views(chain, ntraj=5000, seed=1, initial=None, feedback=None, folder=".", prefix="demon_",
               show=4, tmax=1e3, tmin=1e-3, points=200, bins=30, progress=False):
    """Run an ensemble with full records and draw the demon's views into ``folder``.

    Writes ``{prefix}raster.png`` (``show`` trajectories: conditional <J_i^z>/N_i with a jump
    raster per reservoir), ``{prefix}final.png`` (the last domain's final excitation sorted by
    the number of quanta, with the exact conditional means) and ``{prefix}photocurrent.png``
    (jump rate per reservoir from the records over the exact rate; passive runs only).  The
    figures are saved and released from pyplot (the views of ``trajspin.demon`` return their
    Figures instead).  Needs matplotlib.

    Parameters
    ----------
    chain : Chain
        The chain (the paper's model for ``feedback``).
    ntraj : int
        Trajectories of the ensemble.
    seed : int
        Seed of the ensemble; trajectory k draws from (seed, k) alone.
    initial : optional
        Initial state, as for every solver (default: the paper's eq. 4, domain 1 excited).
    feedback : Feedback, Rule, str or sequence of them, optional
        Rules that switch reservoirs on the record (e.g. ``"close R2 when D3 >= 0.3"``);
        then there is no exact reference and no photocurrent view.
    folder : str or PathLike
        Where the PNG files go (it must exist).
    prefix : str
        Start of the file names.
    show : int
        Trajectories in the raster view (spread over the last domain's final excitation).
    tmax, tmin : float
        Last and first positive time of the log-spaced grid, units of 1/gamma (t = 0 is
        added).
    points : int
        Points of the time grid.
    bins : int
        Histogram bins of the final-excitation view.
    progress : bool
        Show a progress bar over trajectories.

    Returns
    -------
    summary : dict
        JSON-ready numbers: mean quanta per reservoir (C,) with errors, Fano factors, P(total
        n), the last domain's mean final <J^z>/N with its error, P(<J^z>/N >= 0.25), the
        largest energy-balance residuals; for passive runs also the exact P(n), the largest
        z-score against it, the largest deviation of the conditional means from the exact
        blocks and the largest photocurrent z-score; and ``files`` (view name -> path).
    ensemble : RecordedEnsemble
        The ensemble with full records.
    """
    fb = check_feedback(chain, feedback)
    times = time_grid(tmax, points, tmin, "log", include_zero=True)
    ens = run_trajectories(chain, times, ntraj, seed=seed, initial=initial, records="full",
                           feedback=fb, progress=progress)
    recs = ens.records
    sizes = np.asarray(chain.sizes, dtype=float)
    trs = [trajectory(chain, times, seed=seed, index=k, initial=initial, feedback=fb)
           for k in _interesting(recs, show)]
    names = (["raster"] if trs else []) + (["photocurrent"] if fb is None else []) + ["final"]
    files = {name: os.path.join(folder, f"{prefix}{name}.png") for name in names}
    if trs:
        plot_raster(trs, files["raster"])
    stats = counting_statistics(ens)
    q_res, s_res = energy_balance(ens)
    summary = {"chain": chain.to_dict(), "ntraj": ens.ntraj, "seed": seed,
               "initial": ens.meta["initial"],
               "feedback": fb.to_dict() if fb is not None else None,
               "mean_quanta": stats.mean.tolist(), "mean_quanta_err": stats.mean_err.tolist(),
               "fano": stats.fano.tolist(), "P_total": stats.total.tolist(),
               "final_last_domain": float(recs.final_jz[:, -1].mean() / sizes[-1]),
               "final_last_domain_err": float(recs.final_jz[:, -1].std(ddof=1) / sizes[-1]
                                              / np.sqrt(len(recs))),
               "P_last_above_0.25": probability_above(ens, -1, 0.25)[0],
               "energy_balance_max_quanta_residual": int(np.abs(q_res).max()),
               "energy_balance_max_state_residual": float(np.abs(s_res).max())}
    exact = None
    if fb is None:
        exact = exact_conditional_final_jz(chain, initial)
        p_exact = np.zeros(stats.total.size)
        for n, (p, _) in exact.items():
            if n < p_exact.size:
                p_exact[n] = p
        z = np.abs(stats.total - p_exact) / np.maximum(stats.total_err, 1.0 / ntraj)
        summary["P_total_exact"] = p_exact.tolist()
        summary["P_total_max_z"] = float(z.max())
        cond = conditional_final_jz(ens)
        summary["conditional_max_abs_dev"] = float(max(
            np.abs(cond[n][1] - exact[n][1]).max() for n in cond))
        edges = np.geomspace(tmin, tmax, 31)
        rates = exact_jump_rates(chain, times, initial)
        centres, rate, err = photocurrent(ens, edges)
        ref = bin_average(times, rates, edges)
        ok = err > 0
        summary["photocurrent_max_z"] = float((np.abs(rate - ref)[ok] / err[ok]).max())
        plot_photocurrent(ens, files["photocurrent"], edges, times[1:], rates[1:])
    plot_final_histograms(ens, files["final"], exact=exact, bins=bins)
    summary["files"] = files
    return summary, ens


def _interesting(recs, show):
    """Indices of ``show`` trajectories spanning the final excitation of the last domain."""
    if show <= 0:
        return []
    order = np.argsort(recs.final_jz[:, -1], kind="stable")
    picks = order[np.linspace(0, len(order) - 1, show).round().astype(int)][::-1]
    return [int(recs.index[k]) for k in picks]
