"""The chain of spin domains that trajspin simulates.

M domains of N_i spin-1/2 each; neighbouring domains c and c+1 share
reservoir c, whose zero-temperature collective decay has the jump operator

    L_c = J_c^- + J_{c+1}^-,        c = 0 .. M-2,

at rate gamma_c (paper eq. 3 with D[O]rho = 2 O rho O^dag - {O^dag O, rho}).
"""
from __future__ import annotations

import numbers

import numpy as np

__all__ = ["Chain", "InputError"]


class InputError(ValueError):
    """Bad user input, reported in one line before any work starts."""


def _as_int(value, what):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, numbers.Real) and float(value).is_integer():
            return int(value)
        raise InputError(f"{what} must be an integer, got {value!r}")
    return int(value)


def _per_item(value, count, what, *, allow_zero=False):
    """Broadcast a scalar or check a sequence of `count` finite rates."""
    arr = np.atleast_1d(np.asarray(value, dtype=float))
    if arr.ndim != 1:
        raise InputError(f"{what} must be a scalar or a 1-d sequence")
    if arr.size == 1:
        arr = np.full(count, arr[0])
    if arr.size != count:
        raise InputError(f"{what} needs one value per reservoir: expected {count}, got {arr.size}")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{what} must be finite, got {arr.tolist()}")
    bad = arr < 0 if allow_zero else arr <= 0
    if np.any(bad):
        kind = "non-negative" if allow_zero else "positive"
        raise InputError(f"{what} must be {kind}, got {arr.tolist()}")
    return arr


class Chain:
    """A chain of M >= 2 spin domains coupled through shared reservoirs.

    Parameters
    ----------
    sizes : sequence of int, length M
        Number of spins N_i in each domain (each >= 1).
    gamma : float or sequence of float, length M-1
        Collective decay rate gamma_c of reservoir c (shared by domains c and
        c+1).  Times are measured in the units of 1/gamma.

    Attributes
    ----------
    sizes : tuple of int
    gamma : ndarray, shape (M-1,)
    M : int
        Number of domains.

    Examples
    --------
    >>> chain = Chain([12, 6, 2])
    >>> chain.M, chain.gamma.tolist()
    (3, [1.0, 1.0])
    """

    def __init__(self, sizes, gamma=1.0):
        try:
            sizes = list(sizes)
        except TypeError:
            raise InputError(f"sizes must be a sequence of domain sizes, got {sizes!r}") from None
        sizes = tuple(_as_int(n, "each domain size") for n in sizes)
        if len(sizes) < 2:
            raise InputError(f"a chain needs at least 2 domains, got {len(sizes)}: sizes={list(sizes)}")
        if min(sizes) < 1:
            raise InputError(f"every domain needs at least 1 spin, got sizes={list(sizes)}")
        self.sizes = sizes
        self.M = len(sizes)
        self.gamma = _per_item(gamma, self.M - 1, "gamma")
        self.gamma.flags.writeable = False
        self._sectors = None

    @property
    def n_reservoirs(self) -> int:
        """Number of shared reservoirs, M - 1."""
        return self.M - 1

    @property
    def hilbert_dim(self) -> int:
        """Dimension prod(N_i + 1) of the coupled Dicke basis."""
        return int(np.prod([n + 1 for n in self.sizes], dtype=object))

    @property
    def sectors(self):
        """The excitation-sector basis (built once, then cached)."""
        if self._sectors is None:
            from .sectors import SectorBasis
            self._sectors = SectorBasis(self)
        return self._sectors

    def default_excitations(self):
        """Paper eq. (4): domain 1 fully excited, the rest in the ground state."""
        return (self.sizes[0],) + (0,) * (self.M - 1)

    def to_dict(self) -> dict:
        """Plain parameters that recreate this chain."""
        return {"sizes": list(self.sizes), "gamma": self.gamma.tolist()}

    @classmethod
    def from_dict(cls, d):
        return cls(d["sizes"], gamma=d.get("gamma", 1.0))

    def __eq__(self, other):
        return (isinstance(other, Chain) and self.sizes == other.sizes
                and np.array_equal(self.gamma, other.gamma))

    def __hash__(self):
        return hash((self.sizes, tuple(self.gamma)))

    def __repr__(self):
        g = self.gamma
        gtxt = f"{g[0]:g}" if np.all(g == g[0]) else str(g.tolist())
        return f"Chain(sizes={list(self.sizes)}, gamma={gtxt})"
