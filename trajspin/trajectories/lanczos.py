"""Matrix-free (Lanczos) quantum trajectories for sectors too large to diagonalise.

The dense engine (``trajspin.trajectories``) diagonalises every no-jump generator
G_K = sum_c gamma_c L_c^T L_c once (sum_K d_K^2 numbers, O(d_K^3) time).  For chains like
(200, 100, 50, 20), whose sectors hold up to 1e5 states, that is out of reach, while a state
vector is not.  This module samples the *same* unravelling (paper model, T = 0) with

* the generator applied matrix-free from per-sector tables (``kernels.matrix_free.build_sector``:
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

The random numbers are those of the dense path (``trajspin.kernels.rng.rng_init(seed, index)``;
per sector: the waiting-time threshold, then the channel draw), so the same (seed, index)
gives the same jump record within the tolerances above.
"""
from __future__ import annotations

import time
from collections import OrderedDict

import numpy as np

from trajspin.kernels.lanczos import VISIT_DARK, run_visits
from trajspin.kernels.matrix_free import build_sector, count_table, rank
from trajspin.kernels.linalg import dicke_jz
from trajspin.kernels.rng import rng_init
from trajspin.errors import InputError
from trajspin.caches import BoundedCache
from trajspin.resources import CACHED_DIM, check_countable, check_paper, krylov_memory_estimate
from trajspin.trajectories.sums import PartialSums
from trajspin.trajectories.tables import JumpArrays, jump_arrays, jump_records, summaries
from trajspin.trajectories.view import TrajectoryView
from trajspin.validation import check_initial, check_memory, check_seed, check_times

__all__ = ["KrylovOptions", "KrylovSectors", "krylov_trajectory", "run_chunk_krylov"]


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
        """(nexc, diag, hop_tgt, hop_amp) of sector K (``kernels.matrix_free.build_sector``)."""
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


_KRYLOV_SECTORS = BoundedCache(2)


def _sectors(chain, options=None):
    """The chain's KrylovSectors (the 2 latest chains keep theirs, like the dense tables)."""
    budget = KrylovOptions().cache_bytes if options is None else options.cache_bytes
    ks = _KRYLOV_SECTORS.get(chain, lambda: KrylovSectors(chain, budget))
    if options is not None:
        ks.cache_bytes = options.cache_bytes
    return ks


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


class KrylovTrajectory(TrajectoryView):
    """One trajectory from the Lanczos path: the fields of ``trajspin.Trajectory``.

    Attributes
    ----------
    times : ndarray (T,);  jz : ndarray (T, M)
    jump_times, jump_channels, jump_excitation : ndarray (njumps,)
    jump_reservoirs : ndarray (njumps,)   = jump_channels (the paper's model: channel c is
                                   reservoir c);  jump_directions : ndarray (njumps,) all -1
    jz_before, jz_after : ndarray (njumps, M)
    reservoirs_open : ndarray (njumps,)   all reservoirs (no feedback here)
    observables : dict             {"jz": jz};  final_sizes : tuple, the domain sizes
    dark : bool;  excitation_left : int
    final_state : ndarray (d_K,)   t -> infinity state (bright weight below 1e-12)
    matvecs, segments : int        products G_K x and Krylov spaces used
    p_error_bound : float          largest bound on the relative error of p at a jump
    """

    def __init__(self, chain, times, jz, rec, nj, Kf, dark, final, seed, index, initial):
        self.chain, self.times, self.jz = chain, times, jz
        self.jump_times, self.jump_channels, self.jump_excitation = rec[0], rec[1], rec[2]
        M = chain.M
        self.jump_reservoirs = self.jump_channels
        self.jump_directions = np.full(nj, -1, dtype=np.int64)
        self.jz_before, self.jz_after = rec[3], rec[4]
        self.reservoirs_open = np.full(nj, (1 << (M - 1)) - 1, dtype=np.int64)
        self.observables, self.final_sizes = {"jz": jz}, tuple(chain.sizes)
        self.dark, self.excitation_left = bool(dark), int(Kf)
        self.final_state = final
        self.seed, self.index, self.initial = seed, index, initial
        self.feedback = None
        self.matvecs, self.segments = int(rec[5][0]), int(rec[5][1])
        self.p_error_bound = float(rec[5][2])

    @property
    def quanta(self):
        """Quanta each reservoir took, shape (M - 1,)."""
        return np.bincount(self.jump_channels, minlength=self.chain.M - 1)

    @property
    def final_jz(self):
        """<J_i^z> of the t -> infinity conditional state, shape (M,)."""
        out = np.empty(self.chain.M)
        ks = _sectors(self.chain)
        dicke_jz(self.final_state, self.final_state.size, ks.table(self.excitation_left)[0], 0,
                 ks.half, out)
        return out

    def __str__(self):
        rec = ", ".join(f"t={t:.4g} R{c + 1}" for t, c in zip(self.jump_times, self.jump_channels))
        return (f"KrylovTrajectory {self.index} (seed {self.seed}) of {self.chain!r}: "
                f"{len(self.jump_times)} jumps [{rec}]; "
                f"{'dark' if self.dark else 'ground' if self.excitation_left == 0 else 'running'} "
                f"with excitation {self.excitation_left} left; {self.matvecs} products G x")

    __repr__ = __str__


def _prepare(chain, times, initial, options, records):
    check_paper(chain)
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
    seed = check_seed(seed, "seed")
    index = check_seed(index, "index")
    ks = _sectors(chain, options)
    work = _Work(ks, K0, options, record=True)
    jz = np.empty((t.size, chain.M))
    nj, Kf, dark, final, rec = _run_one(ks, t, seed, index, n0, options, work, jz, True)
    return KrylovTrajectory(chain, t, jz, rec, nj, Kf, dark, final, seed, index, n0)


def run_chunk_krylov(chain, times, seed, start, stop, initial=None, options=None, records="none"):
    """Sums over trajectories start..stop-1, in the format of ``trajectories.run_chunk``.

    ``records`` "summaries" or "full" keep each trajectory's record (as the dense paper
    engine does, all reservoirs open): the sums are bitwise those of a run without records.

    Returns
    -------
    PartialSums (final_counts of length K0 + 1), with ``records`` (``JumpRecords``) if kept
    """
    keep = records != "none"
    t, n0, options, K0 = _prepare(chain, times, initial, options, keep)
    seed = check_seed(seed, "seed")
    start = check_seed(start, "start")
    stop = check_seed(stop, "stop")
    if stop < start:
        raise InputError(f"stop ({stop}) must be >= start ({start})")
    ks = _sectors(chain, options)
    work = _Work(ks, K0, options, record=keep)
    T, M = t.size, chain.M
    jz_sum, jz_sumsq = np.zeros((T, M)), np.zeros((T, M))
    counts = np.zeros(K0 + 1, dtype=np.int64)
    ndark = njumps = 0
    jz = np.empty((T, M))
    n = stop - start
    summ = summaries(n if keep else 0, M, M - 1)
    parts = []
    for idx in range(start, stop):
        nj, Kf, dark, final, rec = _run_one(ks, t, seed, idx, n0, options, work, jz, keep)
        jz_sum += jz
        jz_sumsq += jz * jz
        counts[Kf] += 1
        ndark += int(dark)
        njumps += nj
        if keep:
            k = idx - start
            summ.njumps[k], summ.k_final[k], summ.dark[k] = nj, Kf, dark
            summ.quanta[k] = np.bincount(rec[1], minlength=M - 1)
            dicke_jz(final, final.size, ks.table(Kf)[0], 0, ks.half, summ.final_jz[k])
            parts.append(rec[:5])
    if not keep:
        return PartialSums(jz_sum, jz_sumsq, counts, ndark, njumps)
    summ.final_mask[:] = (1 << (M - 1)) - 1          # no feedback: every reservoir open
    packed = jump_arrays(0, M)
    if parts:
        packed = JumpArrays(*(np.concatenate(col) for col in zip(*parts)),
                            np.full(int(summ.njumps.sum()), (1 << (M - 1)) - 1, dtype=np.int64))
    return PartialSums(jz_sum, jz_sumsq, counts, ndark, njumps,
                       records=jump_records(M, start, stop, summ, packed, records == "full"))
