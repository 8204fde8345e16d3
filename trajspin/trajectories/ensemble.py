"""Ensembles of trajectories with error bars (``run_trajectories``)."""
from __future__ import annotations

import time

import numpy as np

from trajspin.budget import check_budget
from trajspin.errors import InputError
from trajspin.progress import get_progress_bar
from trajspin.results.base import versions
from trajspin.results.ensemble import EnsembleResult
from trajspin.trajectories.plan import DEFAULT_CHUNK, EnsemblePlan
from trajspin.resources import check_records_memory
from trajspin.validation import check_result, check_seed, check_times


def run_trajectories(chain, times, ntraj, seed=0, initial=None, progress=True, target_err=None,
                     chunk=DEFAULT_CHUNK, max_ntraj=None, records="none", feedback=None,
                     observables=("jz",), method="auto", max_seconds=None) -> EnsembleResult:
    """Average ``ntraj`` quantum trajectories (indices 0..ntraj-1) with standard errors.

    Parameters
    ----------
    chain : Chain
        Any chain: finite temperature, local reservoirs, reservoir schedules.
    times : array_like, shape (T,)
    ntraj : int
        Number of trajectories (with ``target_err``: the minimum).
    seed : int
    initial : anything ``trajspin.initial.resolve_initial`` accepts, optional
        Default: paper eq. (4).  Each trajectory draws the component of a mixture and the
        excitation sector of a superposition from its own (seed, index) stream.
    progress : bool
        tqdm progress bar over trajectories.
    target_err : float, optional
        Keep adding chunks until the largest standard error of <J_i^z>/N_i over the grid is
        below this value, or ``max_ntraj`` (default 100 * ntraj) is reached.
    chunk : int
        Trajectories per accumulation chunk; sums are combined chunk by chunk in index
        order, so results are reproducible bitwise for the same chunk size.
    records : {"none", "summaries", "full"} or bool
        Keep every trajectory's record (``trajspin.results.JumpRecords``; the paper's model from
        a Dicke basis state only): "summaries" the quanta per reservoir, first jump time,
        final excitation and final conditional <J_i^z>; "full" (or True) also every jump.
    feedback : Feedback, Rule, str or sequence of them, optional
        Rules that switch reservoirs on the record (``trajspin.trajectories.feedback``; paper's model
        only).  Averages with feedback are not given by any master equation.
    observables : name or sequence of names, optional
        ``trajspin.observables`` names except log_negativity; "jz" is always included.
        Each comes back as the ensemble average of the conditional expectation,
        ``result.<name>``, with its standard error ``result.<name>_err`` (jz_var from the
        averaged moments, its error by the delta method).
    method : {"auto", "dense", "krylov"}
        Sector propagation (see :func:`trajectory`); "auto" switches to the matrix-free
        Lanczos path for chains whose sectors are too large to diagonalise.
    max_seconds : float, optional
        Refuse (InputError, before any work) a run that ``trajspin.estimate`` predicts to
        take longer than this (ntraj trajectories on one core).

    Returns
    -------
    EnsembleResult
        ``.jz`` and ``.jz_err`` of shape (T, M), the other observables, ``.ntraj``, ``.seed``,
        ``.final_excitation_counts`` (true excitation K at t -> infinity, or at the last
        output time when a channel raises K); with records or feedback a
        ``trajspin.demon.RecordedEnsemble`` (also ``.records``).
    """
    t = check_times(times)
    seed = check_seed(seed)
    if isinstance(ntraj, bool) or not isinstance(ntraj, (int, np.integer)) or ntraj < 1:
        raise InputError(f"ntraj must be a positive integer, got {ntraj!r}")
    if isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)) or chunk < 1:
        raise InputError(f"chunk must be a positive integer, got {chunk!r}")
    if target_err is not None and (isinstance(target_err, (bool, np.bool_))
                                   or not isinstance(target_err, (int, float, np.integer,
                                                                  np.floating))
                                   or not (np.isfinite(target_err) and target_err > 0)):
        raise InputError(f"target_err must be a positive number, got {target_err!r}")
    if max_ntraj is not None:
        if (isinstance(max_ntraj, (bool, np.bool_))
                or not isinstance(max_ntraj, (int, np.integer)) or max_ntraj < ntraj):
            raise InputError(f"max_ntraj must be an integer >= ntraj = {ntraj}, got {max_ntraj!r}")
    max_ntraj = int(max_ntraj or (100 * ntraj if target_err else ntraj))
    check_budget(max_seconds, chain, "trajectories", ntraj=ntraj, times=t, initial=initial)
    start_time = time.perf_counter()
    plan = EnsemblePlan(chain, t, initial, records, feedback, observables, method)
    check_records_memory(chain, plan.K_top, max_ntraj, plan.records)
    acc = plan.zero()
    done = 0
    sizes = np.asarray(chain.sizes, dtype=float)
    with get_progress_bar(progress, max_ntraj if target_err else ntraj, "trajectories", "traj") as bar:
        while True:
            goal = ntraj if done < ntraj else max_ntraj
            if done >= goal:
                break
            stop = min(done + chunk - done % chunk, goal)
            part = plan.chunk(seed, done, stop)
            acc = acc.fold(part)
            bar.update(stop - done)
            done = stop
            if target_err is not None and done >= ntraj and done % chunk == 0:
                res = EnsembleResult(chain, t, seed, acc.jz_sum, acc.jz_sumsq, done,
                                     acc.final_counts, acc.ndark, acc.njumps, [[0, done]])
                worst = float(np.max(res.jz_err / sizes))
                bar.set_postfix_str(f"max err {worst:.2e}")
                if worst <= target_err:
                    break
    meta = plan.meta()
    meta.update(seed=seed, ntraj=done, ndark=acc.ndark, njumps_sum=acc.njumps,
                wall_time=time.perf_counter() - start_time, versions=versions())
    return check_result(plan.result(acc, done, seed, meta), "run_trajectories")
