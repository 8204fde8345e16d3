"""Time budgets: refuse a run whose predicted wall time exceeds what the caller allows.

``check_budget(max_seconds, chain, solver, ...)`` asks ``trajspin.estimate`` (the same model
as ``trajspin estimate``) before any work and raises an ``InputError`` with the estimate when
the run would take longer than ``max_seconds``; ``max_seconds=None`` checks nothing.
"""
from __future__ import annotations

import math

from trajspin.estimate import estimate
from trajspin.errors import InputError

__all__ = ["check_budget"]


def check_budget(max_seconds, chain, solver, ntraj=1, times=None, initial=None):
    """Raise InputError when the estimated wall time of the run exceeds ``max_seconds``.

    Parameters
    ----------
    max_seconds : float or None     the budget (None: no check)
    chain : Chain;  solver : {"trajectories", "master", "steady"}
    ntraj : int;  times : array_like (T,) or None;  initial : as for the solvers

    Returns
    -------
    Estimate or None
    """
    if max_seconds is None:
        return None
    if isinstance(max_seconds, bool) or not isinstance(max_seconds, (int, float)) \
            or not max_seconds > 0 or math.isnan(max_seconds):
        raise InputError(f"max_seconds must be a positive number, got {max_seconds!r}")
    est = estimate(chain, solver, ntraj=max(int(ntraj), 1), times=times, initial=initial)
    if math.isfinite(est.seconds) and est.seconds > max_seconds:
        parts = (f" (set-up {est.seconds_setup:.3g} s + {est.seconds_per_traj:.3g} s per "
                 f"trajectory)" if solver == "trajectories" else "")
        raise InputError(f"{solver} of {chain!r} is estimated at {est.seconds:.3g} s{parts} > "
                         f"max_seconds = {max_seconds:g}; see trajspin estimate")
    return est
