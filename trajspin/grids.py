"""Time grids in units of 1/gamma."""
from __future__ import annotations

import numpy as np

from trajspin.errors import InputError
from trajspin.validation import check_memory

__all__ = ["time_grid"]


def time_grid(tmax, points, tmin=1e-4, spacing="log", include_zero=False) -> np.ndarray:
    """``points`` times from ``tmin`` to ``tmax`` (log or linear spacing), optionally with t = 0 first.

    Parameters
    ----------
    tmax : float
        Last time, in units of 1/gamma.
    points : int
        Number of times from tmin to tmax.
    tmin : float
        First time (> 0 for a log grid; default 1e-4), units of 1/gamma.
    spacing : {"log", "linear"}
    include_zero : bool
        Put t = 0 (the initial state) first.

    Returns
    -------
    ndarray, shape (points,) or (points + 1,)
    """
    if spacing not in ("log", "linear"):
        raise InputError(f"spacing must be 'log' or 'linear', got {spacing!r}")
    if not (np.isfinite(tmax) and tmax > 0):
        raise InputError(f"tmax must be a positive number, got {tmax!r}")
    if isinstance(points, bool) or int(points) != points or points < 1:
        raise InputError(f"points must be a positive integer, got {points!r}")
    points = int(points)
    # the grid and the (T, M) arrays every solver keeps on it: refuse before allocating
    check_memory(64 * points, f"a grid of {points} output times", "use fewer --points")
    if spacing == "log":
        if not (np.isfinite(tmin) and 0 < tmin < tmax):
            raise InputError(f"a log grid needs 0 < tmin < tmax, got tmin={tmin!r}, tmax={tmax!r}")
        t = np.logspace(np.log10(tmin), np.log10(tmax), points)
    else:
        lo = 0.0 if tmin is None else float(tmin)
        if not (np.isfinite(lo) and 0 <= lo < tmax):
            raise InputError(f"a linear grid needs 0 <= tmin < tmax, got tmin={tmin!r}, tmax={tmax!r}")
        t = np.linspace(lo, tmax, points)
    if include_zero and t[0] > 0:
        t = np.concatenate([[0.0], t])
    return t
