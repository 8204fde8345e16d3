"""Checks of user input that run before any work starts."""
from __future__ import annotations

import os

import numpy as np

from trajspin.errors import InputError, NumericalError

__all__ = ["check_times", "check_initial", "available_memory", "check_memory", "check_result",
           "check_seed", "MAX_SEED"]


def check_times(times) -> np.ndarray:
    """A 1-d, finite, non-negative, strictly increasing grid of times (units of 1/gamma)."""
    try:
        t = np.asarray(times, dtype=float)
    except (TypeError, ValueError):
        raise InputError("times must be a 1-d array of numbers") from None
    if t.ndim == 0:
        t = t[None]
    if t.ndim != 1 or t.size == 0:
        raise InputError(f"times must be a non-empty 1-d array, got shape {t.shape}")
    if not np.all(np.isfinite(t)):
        raise InputError("times must be finite")
    if t[0] < 0:
        raise InputError(f"times must be >= 0 (the initial state is at t = 0), got {t[0]:g}")
    if t.size > 1 and np.any(np.diff(t) <= 0):
        k = int(np.argmax(np.diff(t) <= 0))
        raise InputError(f"times must be strictly increasing: times[{k}] = {t[k]:g} "
                         f"is followed by times[{k + 1}] = {t[k + 1]:g}")
    return t


def check_initial(chain, initial):
    """Excitation numbers n_i of the initial product of Dicke states |j_i, m_i = n_i - N_i/2>.

    None gives paper eq. (4): domain 1 fully excited, all others in the ground state.
    """
    if initial is None:
        return tuple(chain.default_excitations())
    try:
        n = [int(v) for v in initial]
    except (TypeError, ValueError):
        raise InputError(f"initial must be a sequence of excitation numbers n_i, got {initial!r}") from None
    if any(float(a) != b for a, b in zip(initial, n)):
        raise InputError(f"initial excitation numbers must be integers, got {list(initial)}")
    if len(n) != chain.M:
        raise InputError(f"initial needs one excitation number per domain ({chain.M}), got {len(n)}")
    for i, (k, N) in enumerate(zip(n, chain.sizes)):
        if not 0 <= k <= N:
            raise InputError(f"initial excitation of domain {i + 1} must be in 0..{N}, got {k}")
    return tuple(n)


def available_memory() -> int:
    """Bytes of physical memory this process may use (MemAvailable, else total)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_memory(needed_bytes, what, hint):
    """Refuse a problem whose estimated memory exceeds 80 % of what is available."""
    avail = available_memory()
    if needed_bytes > 0.8 * avail:
        raise InputError(f"{what} needs about {needed_bytes / 2**30:.1f} GiB but only "
                         f"{avail / 2**30:.1f} GiB is available; {hint}")


def check_result(result, what, tol=1e-6):
    """Return ``result`` if it is finite and physical, else raise NumericalError.

    Checks ``result.jz`` (..., M): finite and |<J_i^z>| <= N_i/2 (1 + tol); and, when present,
    ``result.sector_populations`` (..., K + 1): finite, >= -tol and summing to 1 within tol
    (the trace).  Used by every solver before it returns or writes a result.

    The tolerance catches output that is not physical (NaN, overflow, a lost trace), not the
    solvers' accuracy: per-sector eigen-decompositions lose ~1e-16 x (largest / smallest
    rate) of the trace, 8e-8 for Chain([4, 2, 1], gamma=[1, 1e-8]).
    """
    half = 0.5 * np.asarray(result.chain.sizes, dtype=float)
    jz = np.asarray(result.jz, dtype=float)
    if not np.all(np.isfinite(jz)):
        raise NumericalError(f"{what} for {result.chain!r} produced non-finite <J_i^z> "
                             f"({int(np.sum(~np.isfinite(jz)))} values); nothing was returned")
    if np.any(np.abs(jz) > half * (1 + tol) + tol):
        worst = float(np.max(np.abs(jz) / half))
        raise NumericalError(f"{what} for {result.chain!r} produced |<J_i^z>| = {worst:.6g} N_i/2 "
                             f"> N_i/2; nothing was returned")
    pops = getattr(result, "sector_populations", None)
    if pops is not None:
        pops = np.asarray(pops, dtype=float)
        trace = pops.sum(axis=-1)
        if not (np.all(np.isfinite(pops)) and np.all(pops >= -tol)
                and np.all(np.abs(trace - 1) <= tol)):
            raise NumericalError(f"{what} for {result.chain!r}: sector populations are not a "
                                 f"probability distribution (trace {np.min(trace):.6g} .. "
                                 f"{np.max(trace):.6g}); nothing was returned")
    return result


MAX_SEED = 2**63


def check_seed(seed, name="seed") -> int:
    """An integer seed (or trajectory index) in [0, 2**63)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < MAX_SEED:
        raise InputError(f"{name} must be an integer in [0, 2**63), got {seed!r}")
    return int(seed)
