"""Matrix-free (Lanczos) quantum trajectories for sectors too large to diagonalise.

The dense engine (``trajspin.trajectories``) diagonalises every no-jump generator
G_K = sum_c gamma_c L_c^T L_c once (sum_K d_K^2 numbers, O(d_K^3) time).  For chains like
(200, 100, 50, 20), whose sectors hold up to 1e5 states, that is out of reach, while a state
vector is not.  This module samples the *same* unravelling (paper model, T = 0) with

* the generator applied matrix-free from per-sector tables (``krylov_kernels.build_sector``:
  a diagonal and one excitation hop per reservoir, O(d_K M) memory and time per product),
  rebuilt in place at every sector visit inside one numba loop over the whole trajectory
  (``run_visits``);
* restarted Lanczos propagation psi(tau) = exp(-G_K tau / 2) psi between jumps (full
  reorthogonalisation, Krylov dimension m <= 40, grown 4 at a time), with the waiting time
  solved by Newton on the projected spectrum, p_m(tau) = sum_k S_1k^2 exp(-theta_k tau) = r,
  inside a step h_safe whose a-posteriori vector error bound

      ||psi(h) - psi_m(h)|| <= (beta_m / 2) int_0^h |e_m^T exp(-s T_m / 2) e_1| ds
                             = (beta_m / 2) |sum_k S_mk S_1k (1 - exp(-theta_k h / 2)) / (theta_k / 2)|

  (variation of constants on the Lanczos relation G Q = Q T + beta_m q_{m+1} e_m^T with
  ||exp(-G s / 2)|| <= 1; the integrand never changes sign because T_m has positive
  off-diagonals, so the integral is the signed sum) stays below ``tol`` x ||psi_m(h)||.  When
  the root lies beyond h_safe the trajectory advances by h_safe and rebuilds the Krylov space
  from the propagated state (restart).  The relative error of p at the jump is at most the sum
  over that sector's segments of 2 x their bounds, reported as ``p_error_bound`` (2e-12 per
  segment at the default tol = 1e-12; ~1e-11 per trajectory for (200, 100, 50, 20)).  Output
  times are evaluated from the same projections, so <J_i^z> carries the same bound;
* dark states: at T = 0 the dark subspace is the null space of G_K.  The weights S_1k^2 at
  the Ritz values theta_k are the Gauss quadrature of the spectral measure of the current state;
  exp(-lambda H) has positive even derivatives in lambda, so the quadrature *underestimates*
  p(H) for every H.  If that lower bound at the horizon H (default 1e6 / min gamma) already
  exceeds the threshold r, the trajectory provably does not jump within H: it is frozen, as
  the dense path freezes when r <= its dark weight.  The zero Ritz value carries the dark
  weight once the Krylov space contains the dark component (Chebyshev rate set by
  lambda_gap / lambda_max of the state); restarts from the decaying state make it so, since
  the bright part left after h shrinks like exp(-lambda_gap h).  A trajectory is also frozen
  once its state u is *still*: ||G u||^2 >= lambda_gap^2 x (bright weight), and
  ||G u|| <= max(1e-10 min gamma, 1e-13 x Gershgorin bound of G_K), so at most
  (that / lambda_gap)^2 of p can still decay (the smallest bright eigenvalue lambda_gap is
  >= 0.44 gamma in every chain checked: (12,6,2), (8,6,5,1), (20,10,4), (30,15,8,3),
  (10,10,10,10), (16,8,4,2,1)); a threshold r inside that sliver is the only case where the
  two paths may differ.  A frozen trajectory is evolved on (past the grid when its final
  state is wanted) until it is still; its final state is the state then, whose <J_i^z>
  differs from that of the exact dark projection by O(N_i ||G u|| / lambda_gap).  The
  Ritz values are never cut to zero, so the Gauss bound stays a bound.

The random numbers are those of the dense path (``trajspin.kernels.rng_init(seed, index)``;
per sector: the waiting-time threshold, then the channel draw), so the same (seed, index)
gives the same jump record within the tolerances above.
"""
from __future__ import annotations

import time
from collections import OrderedDict

import numpy as np

from .kernels import rng_init
from .krylov_kernels import (VISIT_DARK, build_sector, count_table, dicke_jz, rank,
                             run_visits)
from .model import InputError
from .sectors import sector_dims
from .validation import check_initial, check_memory, check_times

__all__ = ["KrylovOptions", "KrylovSectors", "krylov_trajectory", "run_chunk_krylov",
           "krylov_memory_estimate", "choose_method", "DEFAULT_MAX_DENSE_DIM"]

# Largest sector for which the dense engine is chosen by default (see ``choose_method``).
DEFAULT_MAX_DENSE_DIM = 600
CACHED_DIM = 2048            # Lanczos path: sectors this large keep their tables between trajectories
# Dense set-up: ~1 ms of Python per sector (SectorBasis, spectra, flat tables; 94 s for the
# 1e5 sectors of (100000, 2) on one core) plus eigh at ~3.3e-10 s per d_K^3.  Beyond this
# many seconds of set-up "auto" takes the Lanczos path, which starts at once.
DENSE_SETUP_PER_SECTOR = 1e-3
DENSE_SETUP_PER_D3 = 3.3e-10
DEFAULT_MAX_DENSE_SETUP = 5.0
_MAX_SEED = 2**63


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
        Budget of the per-sector tables ``KrylovSectors.table`` keeps for look-ups from
        Python (``final_jz``, analysis; default 2 GiB).  Trajectories do not use them: the
        kernel rebuilds each sector's tables in place.
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


_MAX_COUNT = 2**62          # Dicke states counted by count_table (int64, with headroom)
_MAX_SECTOR = 2**31 - 1     # states per sector: hop targets are int32


def check_countable(chain):
    """Refuse, with the numbers, chains whose sector tables cannot be indexed exactly.

    count_table and rank work in int64 (total number of Dicke states prod_i (N_i + 1) must
    stay below 2**62) and hop targets are int32 (d_K < 2**31 for every sector).  Returns
    the sector dimensions (``sectors.sector_dims``), so callers need not count them again.
    """
    total = 1
    for n in chain.sizes:
        total *= int(n) + 1
    if total >= _MAX_COUNT:
        raise InputError(f"{chain!r} has {float(total):.3g} Dicke states in all; the matrix-free "
                         f"tables index at most 2**62 = {float(_MAX_COUNT):.3g}")
    dims = sector_dims(chain.sizes)
    dmax = int(dims.max())
    if dmax > _MAX_SECTOR:
        raise InputError(f"{chain!r}: its largest sector holds {dmax} states; the matrix-free "
                         f"tables index at most 2**31 - 1 = {_MAX_SECTOR} per sector")
    return dims


def _bytes_per_state(M):
    """Table bytes per state: nexc int64 (M), diag f8, hop_tgt int32 (M-1), hop_amp f8 (M-1)."""
    return 8 * M + 8 + 12 * (M - 1)


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

    def table(self, K, keep=()):
        """(nexc, diag, hop_tgt, hop_amp) of sector K (``krylov_kernels.build_sector``)."""
        if K in self._cache:
            self._cache.move_to_end(K)
            return self._cache[K]
        t = time.perf_counter()
        tab = build_sector(self.sizes, self.gamma, K, self.cum)
        self.build_time += time.perf_counter() - t
        self._cache[K] = tab
        self._bytes += sum(a.nbytes for a in tab)
        while self._bytes > self.cache_bytes and len(self._cache) > 1:
            old = next(iter(self._cache))
            if old == K or old in keep:
                break
            self._bytes -= sum(a.nbytes for a in self._cache.pop(old))
        return tab

    def states(self, K):
        """Excitation numbers of sector K's states, shape (d_K, M) (int64)."""
        return self.table(K)[0].astype(np.int64)


def _sectors(chain, options=None):
    """The chain's KrylovSectors (one per chain, kept on it like the dense tables)."""
    cache = chain.__dict__.setdefault("_krylov_cache", {})
    budget = KrylovOptions().cache_bytes if options is None else options.cache_bytes
    if "sectors" not in cache:
        cache["sectors"] = KrylovSectors(chain, budget)
    ks = cache["sectors"]
    if options is not None:
        ks.cache_bytes = options.cache_bytes
    return ks


def _check_K0(chain, K0):
    if K0 is None:
        return int(chain.sizes[0])
    if isinstance(K0, bool) or not isinstance(K0, (int, np.integer)) or not 0 <= K0 <= sum(chain.sizes):
        raise InputError(f"K0 must be an integer in 0..{sum(chain.sizes)}, got {K0!r}")
    return int(K0)


def krylov_memory_estimate(chain, K0=None, m_max=40, records=False,
                           cache_bytes=2 * 2**30) -> int:
    """Bytes the Lanczos path needs for trajectories starting in sector K0.

    Work O(max d_K (m_max + M + 4)): the Krylov basis (m_max + 1) d, the state, its copy at a
    jump and the M - 1 lowered vectors; the state counts of ``count_table``,
    8 (M + 1)(sum N_i + 2) bytes; sector tables at (8M + 8 + 12(M-1)) bytes per state: one
    buffer of up to CACHED_DIM - 1 states rebuilt in place for small sectors, and the tables
    of the sectors of CACHED_DIM states or more kept between trajectories, at most
    ``cache_bytes`` of them (LRU, ``KrylovOptions.cache_bytes``) beyond the two in use.
    With ``records`` (single trajectories: ``trajectory``, ``krylov_trajectory``) also the jump record, at most K0 jumps of 8 (3 + 2M) bytes each
    (time, channel, sector, <J_i^z> before and after): 56 MB per 10^6 jumps for M = 2.
    Ensembles keep no record.
    """
    _check_paper(chain)
    K0 = _check_K0(chain, K0)
    d = check_countable(chain)[: K0 + 1].astype(float)
    M = chain.M
    counts = 8.0 * (M + 1) * (sum(chain.sizes) + 2)
    work = 8.0 * d.max() * (m_max + 2 + M + 2)
    per = _bytes_per_state(M)
    big = d[d >= CACHED_DIM]
    tables = per * min(d.max(), CACHED_DIM - 1)
    if big.size:
        tables += min(per * big.sum(), cache_bytes + per * 2 * big.max())
    rec = 8.0 * (3 + 2 * M) * K0 if records else 0.0
    return int(work + tables + counts + rec)


def choose_method(chain, K0=None, max_dense_dim=DEFAULT_MAX_DENSE_DIM, memory_fraction=0.5,
                  max_dense_setup=DEFAULT_MAX_DENSE_SETUP):
    """"dense" or "krylov" for trajectories starting in sector K0 (default N_1).

    Cost model.  The dense engine stores the eigenvectors of every G_K, 16 sum_K d_K^2 bytes
    (with the generator), diagonalises each once, O(sum_K d_K^3), and then pays O(d_K^2) per
    jump and per output time.  The Lanczos path needs O(d_K M) bytes per cached sector and
    O(max d_K m) of work memory, no set-up, and O(m d_K (M + m)) per Krylov space (m ~ 8-16,
    about one space per jump), the whole trajectory in one numba loop (``run_visits``).  Measured here
    (one core, 200 output times, ms per trajectory dense / Lanczos; dense set-up):

        (8, 6, 5, 1)     max d_K 68:    0.04 / 0.75   (0.02 s)
        (30, 15, 8, 3)   max d_K 576:   4.0  / 3.6    (1 s)
        (40, 20, 10, 4)  max d_K 1155:  20   / 7.7    (6 s, 0.43 GB)
        (30, 20, 10, 5)  max d_K 1351:  17   / 6.9    (4 s)
        (200, 100, 50, 20) max d_K 108171: dense impossible (18 TB) / 2600

    so the crossover is near max d_K ~ 600, and beyond it the dense set-up (d^3) and memory
    (d^2) only add to the gap.  Returns "dense" when max d_K <= ``max_dense_dim`` (default
    600) and the dense tables fit in ``memory_fraction`` of the available memory, else
    "krylov"; also "krylov" when the dense set-up, (K0 + 1) x 1 ms + 3.3e-10 s x sum d_K^3,
    would exceed ``max_dense_setup`` seconds (default 5: the dense path needs 94 s before the
    first trajectory of (100000, 2)).  Chains outside the paper model (T > 0, local
    reservoirs, schedules) are dense only: for them an ``InputError`` is raised when the
    dense tables do not fit, and "dense"
    is returned otherwise whatever their size.
    """
    from .validation import available_memory
    K0 = _check_K0(chain, K0)
    d = sector_dims(chain.sizes)[: K0 + 1].astype(float)
    dense_bytes = 16.0 * np.sum(d**2)
    fits = dense_bytes <= memory_fraction * available_memory()
    setup = DENSE_SETUP_PER_SECTOR * d.size + DENSE_SETUP_PER_D3 * np.sum(d**3)
    quick = d.max() <= max_dense_dim and setup <= max_dense_setup
    if fits and (quick or not chain.is_paper_model):
        return "dense"
    if not chain.is_paper_model:
        raise InputError(f"{chain!r}: sectors of up to {int(d.max())} states are too large for "
                         "the dense engine, and the matrix-free path covers the paper model "
                         "(T = 0, shared reservoirs, no schedule) only")
    return "krylov"


def _check_paper(chain):
    if not chain.is_paper_model:
        raise InputError(f"the matrix-free trajectory path needs the paper model (zero "
                         f"temperature, shared reservoirs only, no schedule); got {chain!r}")


def _check_index(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < _MAX_SEED:
        raise InputError(f"{name} must be an integer in [0, 2**63), got {value!r}")
    return int(value)


def _check_options(options):
    if options is None:
        return KrylovOptions()
    if not isinstance(options, KrylovOptions):
        raise InputError(f"options must be a KrylovOptions, got {options!r}")
    return options


class _Work:
    """Buffers of one trajectory (sized for sectors 0..K0): one sector's tables, the Krylov
    basis Q (m_max + 1, max d_K), the state, and the M - 1 lowered vectors (M - 1, max d_K);
    with ``record`` the jump record, K0 rows of (time, channel, K, <J^z> before and after)."""

    def __init__(self, ks, K0, options, record=False):
        dmax = max(int(ks.dims[: K0 + 1].max()), 1)
        M = len(ks.sizes)
        C = M - 1
        db = min(dmax, CACHED_DIM - 1)
        self.nexc = np.zeros((db, M), dtype=np.int64)
        self.diag = np.zeros(db)
        self.hop_tgt = np.zeros((db, C), dtype=np.int32)
        self.hop_amp = np.zeros((db, C))
        self.Q = np.empty((options.m_max + 1, dmax))
        self.alpha = np.empty(options.m_max)
        self.beta = np.empty(options.m_max)
        self.psi = np.empty(dmax)
        self.low = np.empty((C, dmax))
        self.info = np.zeros(8)
        self.jzb = np.empty(M)
        self.u = np.empty(dmax)
        R = K0 if record else 0
        self.rec = (np.empty(R), np.empty(R, dtype=np.int64), np.empty(R, dtype=np.int64),
                    np.empty((R, M)), np.empty((R, M)))


VISITS_PER_CALL = 20000      # sector visits per kernel call: Ctrl-C is seen between calls


def _run_one(ks, times, seed, index, n0, options, work, jz, record):
    """One trajectory; fills jz (T, M); returns (njumps, K_final, dark, final_state or None, rec).

    rec (when ``record``): arrays of jump times, channels, K before, jz before (nj, M), jz
    after (nj, M), and the diagnostics [matvecs, segments, p error bound].
    """
    state = rng_init(seed, index)
    K = int(sum(n0))
    d = ks.dim(K)
    u = work.u
    u[:d] = 0.0
    u[int(_rank(ks, n0, K))] = 1.0
    carry = np.array([K, 0, 0, -1], dtype=np.int64)
    tc = np.zeros(1)
    stats = np.zeros(3)
    rec = work.rec if record else tuple(np.empty((0,) * x.ndim, x.dtype) for x in work.rec)
    horizon = options.horizon_for(ks.chain)
    while carry[3] < 0:
        K = int(carry[0])
        if ks.dim(K) >= CACHED_DIM:          # large sector: its cached tables, one visit
            tables, fill, visits = ks.table(K), False, 1
        else:                                # small sectors: rebuilt in place, many visits
            tables, fill, visits = (work.nexc, work.diag, work.hop_tgt, work.hop_amp), True, \
                VISITS_PER_CALL
        run_visits(state, carry, tc, u, times, jz, ks.sizes, ks.gamma, ks.half, ks.cum,
                   options.m_max, options.m_check, options.tol, horizon, record, *tables, fill,
                   CACHED_DIM, work.Q, work.alpha, work.beta, work.psi, work.low, work.info,
                   work.jzb, *rec, stats, visits)
    nj, Kf = int(carry[2]), int(carry[0])
    final = work.psi[: ks.dim(Kf)].copy() if record else None
    out = tuple(x[:nj].copy() for x in rec) + (stats,) if record else None
    return nj, Kf, int(carry[3]) == VISIT_DARK, final, out


def _rank(ks, n0, K):
    return rank(np.asarray(n0, dtype=np.int64), K, ks.cum)


class KrylovTrajectory:
    """One trajectory from the Lanczos path: the fields of ``trajspin.Trajectory``.

    Attributes
    ----------
    times : ndarray (T,);  jz : ndarray (T, M)
    jump_times, jump_channels, jump_excitation : ndarray (njumps,)
    jz_before, jz_after : ndarray (njumps, M)
    reservoirs_open : ndarray (njumps,)   all reservoirs (no feedback here)
    dark : bool;  excitation_left : int
    final_state : ndarray (d_K,)   t -> infinity state (bright weight below 1e-12)
    matvecs, segments : int        products G_K x and Krylov spaces used
    p_error_bound : float          largest bound on the relative error of p at a jump
    """

    def __init__(self, chain, times, jz, rec, nj, Kf, dark, final, seed, index, initial):
        self.chain, self.times, self.jz = chain, times, jz
        self.jump_times, self.jump_channels, self.jump_excitation = rec[0], rec[1], rec[2]
        M = chain.M
        self.jz_before, self.jz_after = rec[3], rec[4]
        self.reservoirs_open = np.full(nj, (1 << (M - 1)) - 1, dtype=np.int64)
        self.dark, self.excitation_left = bool(dark), int(Kf)
        self.final_state = final
        self.seed, self.index, self.initial = seed, index, initial
        self.feedback = None
        self.matvecs, self.segments = int(rec[5][0]), int(rec[5][1])
        self.p_error_bound = float(rec[5][2])

    @property
    def jz_over_n(self):
        return self.jz / np.asarray(self.chain.sizes, dtype=float)

    @property
    def quanta(self):
        return np.bincount(self.jump_channels, minlength=self.chain.M - 1)

    @property
    def final_jz(self):
        out = np.empty(self.chain.M)
        ks = _sectors(self.chain)
        dicke_jz(self.final_state, ks.table(self.excitation_left)[0], ks.half, out)
        return out

    def __str__(self):
        rec = ", ".join(f"t={t:.4g} R{c + 1}" for t, c in zip(self.jump_times, self.jump_channels))
        return (f"KrylovTrajectory {self.index} (seed {self.seed}) of {self.chain!r}: "
                f"{len(self.jump_times)} jumps [{rec}]; "
                f"{'dark' if self.dark else 'ground' if self.excitation_left == 0 else 'running'} "
                f"with excitation {self.excitation_left} left; {self.matvecs} products G x")

    __repr__ = __str__


def _prepare(chain, times, initial, options, records):
    _check_paper(chain)
    t = check_times(times)
    n0 = check_initial(chain, initial)
    options = _check_options(options)
    K0 = int(sum(n0))
    check_memory(krylov_memory_estimate(chain, K0, options.m_max, records, options.cache_bytes),
                 f"the Lanczos trajectory path for {chain!r}", "use smaller domains")
    return t, n0, options, K0


def krylov_trajectory(chain, times, seed=0, index=0, initial=None, options=None) -> KrylovTrajectory:
    """Sample one trajectory with the matrix-free Lanczos propagator.

    Same random stream and jump record as ``trajspin.trajectory(chain, times, seed, index)``
    (to the tolerance of ``options``), without any d_K x d_K matrix.

    Parameters
    ----------
    chain : Chain          paper model (T = 0, shared reservoirs, no schedule)
    times : array_like (T,)   output times, increasing, >= 0 (units 1/gamma)
    seed, index : int
    initial : sequence of int, optional   excitation numbers n_i (default (N_1, 0, .., 0))
    options : KrylovOptions, optional

    Returns
    -------
    KrylovTrajectory
        ``jz`` (T, M), the jump record, ``final_state`` and the work counters.
    """
    t, n0, options, K0 = _prepare(chain, times, initial, options, True)
    seed = _check_index(seed, "seed")
    index = _check_index(index, "index")
    ks = _sectors(chain, options)
    work = _Work(ks, K0, options, record=True)
    jz = np.empty((t.size, chain.M))
    nj, Kf, dark, final, rec = _run_one(ks, t, seed, index, n0, options, work, jz, True)
    return KrylovTrajectory(chain, t, jz, rec, nj, Kf, dark, final, seed, index, n0)


def run_chunk_krylov(chain, times, seed, start, stop, initial=None, options=None):
    """Sums over trajectories start..stop-1, in the format of ``trajectories.run_chunk``.

    Returns
    -------
    (jz_sum (T, M), jz_sumsq (T, M), final_counts (K0 + 1,) int64, ndark, njumps)
    """
    t, n0, options, K0 = _prepare(chain, times, initial, options, False)
    seed = _check_index(seed, "seed")
    start = _check_index(start, "start")
    stop = _check_index(stop, "stop")
    if stop < start:
        raise InputError(f"stop ({stop}) must be >= start ({start})")
    ks = _sectors(chain, options)
    work = _Work(ks, K0, options)
    T, M = t.size, chain.M
    jz_sum, jz_sumsq = np.zeros((T, M)), np.zeros((T, M))
    counts = np.zeros(K0 + 1, dtype=np.int64)
    ndark = njumps = 0
    jz = np.empty((T, M))
    for idx in range(start, stop):
        nj, Kf, dark, _, _ = _run_one(ks, t, seed, idx, n0, options, work, jz, False)
        jz_sum += jz
        jz_sumsq += jz * jz
        counts[Kf] += 1
        ndark += int(dark)
        njumps += nj
    return jz_sum, jz_sumsq, counts, ndark, njumps
