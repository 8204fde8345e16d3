"""Settings and per-sector tables of the matrix-free (Lanczos) trajectory path.

``KrylovOptions`` holds the numerical settings (tolerance, Krylov dimension, horizon, table
budget); ``KrylovSectors`` the chain's counting table and the matrix-free tables of its
sectors (``trajspin.kernels.matrix_free.build_sector``), built lazily per (sector, open
reservoirs) and kept in an LRU cache.  Used by ``trajspin.trajectories.lanczos``.
"""
from __future__ import annotations

import time
from collections import OrderedDict

import numpy as np

from trajspin.caches import BoundedCache
from trajspin.errors import InputError
from trajspin.kernels.matrix_free import build_sector, count_table
from trajspin.resources import check_countable

__all__ = ["KrylovOptions", "KrylovSectors", "sectors_of", "check_options"]


class KrylovOptions:
    """Numerical settings of the Lanczos path (immutable).

    Parameters
    ----------
    tol : float
        Relative error bound of the propagated vector per segment (default 1e-12); p is then
        accurate to 2 tol per segment.
    m_max : int
        Largest Krylov dimension before a restart (default 40).
    m_check : int
        Krylov steps between convergence checks (default 4: one check per jump suffices
        for most visits of large-N chains; 4 instead of 8 took (2e5, 100) from 5.9 s to
        3.9 s per trajectory).
    horizon : float or None
        Freeze a trajectory that provably does not jump within this time (units 1/gamma)
        after the last restart; default 1e6 / min(gamma).
    cache_bytes : float
        Budget of the per-sector tables ``KrylovSectors.table`` keeps (default 2 GiB): the
        tables of sectors of ``CACHED_DIM`` states or more, kept between trajectories (per
        reservoir mask with feedback), and look-ups from Python (``final_jz``).  Smaller
        sectors' tables are rebuilt in place by the kernel at every visit.
    """

    __slots__ = ("tol", "m_max", "m_check", "horizon", "cache_bytes")

    def __init__(self, tol=1e-12, m_max=40, m_check=4, horizon=None, cache_bytes=2 * 2**30):
        if not (np.isfinite(tol) and 1e-15 <= tol < 1e-2):
            raise InputError(f"tol must be in [1e-15, 1e-2), got {tol!r}")
        for name, v, lo in (("m_max", m_max, 2), ("m_check", m_check, 1)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
                raise InputError(f"{name} must be an integer >= {lo}, got {v!r}")
        if horizon is not None and not (np.isfinite(horizon) and horizon > 0):
            raise InputError(f"horizon must be a positive number, got {horizon!r}")
        if not cache_bytes >= 0:
            raise InputError(f"cache_bytes must be >= 0, got {cache_bytes!r}")
        for name, v in (("tol", float(tol)), ("m_max", int(m_max)),
                        ("m_check", int(min(m_check, m_max))),
                        ("horizon", None if horizon is None else float(horizon)),
                        ("cache_bytes", float(cache_bytes))):
            object.__setattr__(self, name, v)

    def __setattr__(self, name, value):
        raise AttributeError("KrylovOptions is immutable")

    def horizon_for(self, chain):
        return self.horizon if self.horizon is not None else 1e6 / float(np.min(chain.gamma))

    def __repr__(self):
        return (f"KrylovOptions(tol={self.tol:g}, m_max={self.m_max}, m_check={self.m_check}, "
                f"horizon={self.horizon}, cache_bytes={self.cache_bytes:g})")


class KrylovSectors:
    """Matrix-free sector tables of one chain, built lazily and kept in an LRU cache.

    Parameters
    ----------
    chain : Chain
        Paper model (``chain.is_paper_model``).
    cache_bytes : float
        Tables beyond this budget are dropped, least recently used first (the sectors in
        use by the running trajectory are never dropped).
    """

    def __init__(self, chain, cache_bytes=2 * 2**30):
        self.chain = chain
        self.sizes = np.asarray(chain.sizes, dtype=np.int64)
        self.gamma = np.ascontiguousarray(chain.gamma, dtype=float)
        self.half = 0.5 * self.sizes.astype(float)
        self.K_max = int(self.sizes.sum())
        check_countable(chain)
        self.cum = count_table(self.sizes, self.K_max)
        self.dims = np.diff(self.cum[0]).astype(np.int64)
        self.cache_bytes = cache_bytes
        self._cache = OrderedDict()
        self._bytes = 0
        self.build_time = 0.0

    def dim(self, K):
        return int(self.dims[K]) if 0 <= K <= self.K_max else 0

    @property
    def all_open(self):
        """The reservoir mask with every reservoir open."""
        return (1 << (len(self.sizes) - 1)) - 1

    def rates(self, mask):
        """gamma_c on the reservoirs open under ``mask`` (bit c), 0 on the closed ones."""
        return np.where([(mask >> c) & 1 for c in range(self.gamma.size)], self.gamma, 0.0)

    def table(self, K, mask=None):
        """(nexc, diag, hop_tgt, hop_amp) of sector K (``kernels.matrix_free.build_sector``)
        with the reservoirs of ``mask`` open (default all)."""
        mask = self.all_open if mask is None else int(mask) & self.all_open
        key = (K, mask)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        t = time.perf_counter()
        tab = build_sector(self.sizes, self.rates(mask), K, self.cum)
        self.build_time += time.perf_counter() - t
        self._cache[key] = tab
        self._bytes += sum(a.nbytes for a in tab)
        while self._bytes > self.cache_bytes and len(self._cache) > 1:
            old = next(iter(self._cache))
            if old == key:
                break
            self._bytes -= sum(a.nbytes for a in self._cache.pop(old))
        return tab

    def states(self, K):
        """Excitation numbers of sector K's states, shape (d_K, M) (int64)."""
        return self.table(K)[0].astype(np.int64)


_KRYLOV_SECTORS = BoundedCache(2)


def sectors_of(chain, options=None):
    """The chain's KrylovSectors (the 2 latest chains keep theirs, like the dense tables)."""
    budget = KrylovOptions().cache_bytes if options is None else options.cache_bytes
    ks = _KRYLOV_SECTORS.get(chain, lambda: KrylovSectors(chain, budget))
    if options is not None:
        ks.cache_bytes = options.cache_bytes
    return ks


def check_options(options):
    if options is None:
        return KrylovOptions()
    if not isinstance(options, KrylovOptions):
        raise InputError(f"options must be a KrylovOptions, got {options!r}")
    return options
