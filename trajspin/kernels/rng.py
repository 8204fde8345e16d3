"""Random streams of the trajectory kernels: one xoshiro256+ stream per (seed, index).

The state of trajectory ``index`` of run ``seed`` is filled by SplitMix64 from
key = mix(mix(seed + golden) + index), so a trajectory's stream depends on (seed, index)
only: never on the rank, the chunk or the order trajectories run in.
"""
from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["rng_init", "rng_uniform"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


@njit(cache=True)
def _mix64(z):
    """SplitMix64 finaliser of the uint64 z."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@njit(cache=True)
def rng_init(seed, index):
    """xoshiro256+ state, uint64 (4,), for trajectory ``index`` of run ``seed``."""
    state = np.empty(4, dtype=np.uint64)
    x = _mix64(_mix64(np.uint64(seed) + _GOLDEN) + np.uint64(index))
    for i in range(4):
        x = x + _GOLDEN
        state[i] = _mix64(x)
    return state


@njit(cache=True)
def _rotl(x, k):
    return (x << np.uint64(k)) | (x >> np.uint64(64 - k))


@njit(cache=True)
def rng_uniform(s):
    """A double uniform in (0, 1) (never 0 or 1) from xoshiro256+ state ``s`` (advanced in place).

    u = (x >> 12 + 1/2) 2^-52 with x the next xoshiro256+ output: 2^52 equally spaced values.
    """
    result = s[0] + s[3]
    t = s[1] << np.uint64(17)
    s[2] ^= s[0]
    s[3] ^= s[1]
    s[1] ^= s[2]
    s[0] ^= s[3]
    s[2] ^= t
    s[3] = _rotl(s[3], 45)
    return (np.float64(result >> np.uint64(12)) + 0.5) * (1.0 / 4503599627370496.0)
