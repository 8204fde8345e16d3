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

Feedback rules (``trajspin.trajectories.feedback``) are applied after every jump inside the
kernel; a closed reservoir gets rate 0 in the next sector's tables (G_K = sum over the open
reservoirs), as the dense engine switches its table row, so the record (channels, masks,
sectors) is the dense engine's.  Observables beyond <J_i^z> (``trajspin.observables``) come
from the same sector tables, O(d_K M) per output time (``kernels.matrix_free.sector_extra``).
"""
from __future__ import annotations

import numpy as np

from trajspin.kernels.lanczos import VISIT_DARK, run_visits
from trajspin.kernels.layout import L_F, L_JZ2
from trajspin.kernels.matrix_free import rank
from trajspin.kernels.linalg import dicke_jz
from trajspin.kernels.rng import rng_init
from trajspin.kernels.rules import NO_RULES
from trajspin.errors import InputError
from trajspin.observables import check_observables
from trajspin.resources import CACHED_DIM, check_jz_only, check_paper, krylov_memory_estimate
from trajspin.trajectories.feedback import check_feedback
from trajspin.trajectories.krylov_sectors import (KrylovOptions, KrylovSectors, check_options,
                                                  sectors_of)
from trajspin.trajectories.sums import PartialSums
from trajspin.trajectories.tables import (JumpArrays, jump_arrays, jump_records,
                                          observable_layout, observable_rows_bytes, summaries)
from trajspin.trajectories.view import TrajectoryView, observable_dict
from trajspin.validation import check_initial, check_memory, check_seed, check_times

__all__ = ["KrylovOptions", "KrylovSectors", "KrylovRequest", "krylov_trajectory",
           "run_chunk_krylov", "run_request"]


class _Work:
    """Buffers of one trajectory (sized for sectors 0..K0): one sector's tables, the Krylov
    basis Q (m_max + 1, max d_K), the state, and the M - 1 lowered vectors (M - 1, max d_K);
    the feedback state (rates of the open reservoirs, fired rules, quanta); with ``record``
    the jump record, K0 rows of (time, channel, K, <J^z> before and after, mask after)."""

    def __init__(self, ks, K0, options, record=False, nrules=0):
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
        self.jzb, self.jza = np.empty(M), np.empty(M)
        self.u = np.empty(dmax)
        self.gam = np.empty(C)
        self.fired = np.zeros(max(nrules, 1), dtype=np.bool_)
        self.quanta = np.zeros(C, dtype=np.int64)
        R = K0 if record else 0
        self.rec = (np.empty(R), np.empty(R, dtype=np.int64), np.empty(R, dtype=np.int64),
                    np.empty((R, M)), np.empty((R, M)), np.empty(R, dtype=np.int64))


VISITS_PER_CALL = 20000      # sector visits per kernel call: Ctrl-C is seen between calls


def _run_one(ks, times, seed, index, n0, options, work, obs, lay, record, rules, mask0,
             copy=True):
    """One trajectory; fills obs (T, F) (layout ``lay``).

    Returns (njumps, K_final, dark, final_state or None, rec, mask), rec (when ``record``):
    arrays of jump times, channels, K before, jz before (nj, M), jz after (nj, M), mask after,
    then the diagnostics [matvecs, segments, p error bound]; mask: the open reservoirs at the
    end.  ``work.quanta`` holds the quanta per reservoir.  Without ``copy`` the record arrays
    are views of ``work``'s buffers, overwritten by the next trajectory.
    """
    state = rng_init(seed, index)
    K = int(sum(n0))
    d = ks.dim(K)
    u = work.u
    u[:d] = 0.0
    u[int(_rank(ks, n0, K))] = 1.0
    carry = np.array([K, 0, 0, -1, mask0], dtype=np.int64)
    tc = np.zeros(1)
    stats = np.zeros(3)
    work.gam[:] = ks.rates(mask0)
    work.fired[:] = False
    work.quanta[:] = 0
    rec = work.rec if record else tuple(np.empty((0,) * x.ndim, x.dtype) for x in work.rec)
    horizon = options.horizon_for(ks.chain)
    while carry[3] < 0:
        K = int(carry[0])
        if ks.dim(K) >= CACHED_DIM:          # large sector: its cached tables, one visit
            tables, fill, visits = ks.table(K, int(carry[4])), False, 1
        else:                                # small sectors: rebuilt in place, many visits
            tables, fill, visits = (work.nexc, work.diag, work.hop_tgt, work.hop_amp), True, \
                VISITS_PER_CALL
        run_visits(state, carry, tc, u, times, obs, lay, ks.sizes, ks.gamma, work.gam, ks.half,
                   ks.cum, options.m_max, options.m_check, options.tol, horizon, record, *tables,
                   fill, CACHED_DIM, work.Q, work.alpha, work.beta, work.psi, work.low,
                   work.info, work.jzb, rules, work.fired, work.quanta, work.jza, *rec, stats,
                   visits)
    nj, Kf = int(carry[2]), int(carry[0])
    final = work.psi[: ks.dim(Kf)].copy() if record else None
    out = tuple(x[:nj].copy() if copy else x[:nj] for x in rec) + (stats,) if record else None
    return nj, Kf, int(carry[3]) == VISIT_DARK, final, out, int(carry[4])


def _rank(ks, n0, K):
    return rank(np.asarray(n0, dtype=np.int64), K, ks.cum)


class KrylovTrajectory(TrajectoryView):
    """One trajectory from the Lanczos path: the fields of ``trajspin.Trajectory``.

    Attributes
    ----------
    times : ndarray (T,);  jz : ndarray (T, M)
    observables : dict             conditional value of each requested observable (shapes as
                                   in ``trajspin.observables``, time first); also attributes
    jump_times, jump_channels, jump_excitation : ndarray (njumps,)
    jump_reservoirs : ndarray (njumps,)   = jump_channels (the paper's model: channel c is
                                   reservoir c);  jump_directions : ndarray (njumps,) all -1
    jz_before, jz_after : ndarray (njumps, M)
    reservoirs_open : ndarray (njumps,)   bit mask of the open reservoirs after each jump
    feedback : Feedback or None;  final_sizes : tuple, the domain sizes
    dark : bool;  excitation_left : int
    final_state : ndarray (d_K,)   t -> infinity state (bright weight below 1e-12)
    matvecs, segments : int        products G_K x and Krylov spaces used
    p_error_bound : float          largest bound on the relative error of p at a jump
    """

    def __init__(self, chain, times, observables, rec, nj, Kf, dark, final, seed, index, initial,
                 feedback=None):
        self.chain, self.times, self.jz = chain, times, observables["jz"]
        self.jump_times, self.jump_channels, self.jump_excitation = rec[0], rec[1], rec[2]
        self.jump_reservoirs = self.jump_channels
        self.jump_directions = np.full(nj, -1, dtype=np.int64)
        self.jz_before, self.jz_after, self.reservoirs_open = rec[3], rec[4], rec[5]
        self.observables, self.final_sizes = observables, tuple(chain.sizes)
        self.dark, self.excitation_left = bool(dark), int(Kf)
        self.final_state = final
        self.seed, self.index, self.initial = seed, index, initial
        self.feedback = feedback
        self.matvecs, self.segments = int(rec[6][0]), int(rec[6][1])
        self.p_error_bound = float(rec[6][2])

    @property
    def quanta(self):
        """Quanta each reservoir took, shape (M - 1,)."""
        return np.bincount(self.jump_channels, minlength=self.chain.M - 1)

    @property
    def final_jz(self):
        """<J_i^z> of the t -> infinity conditional state, shape (M,)."""
        out = np.empty(self.chain.M)
        ks = sectors_of(self.chain)
        dicke_jz(self.final_state, self.final_state.size, ks.table(self.excitation_left)[0], 0,
                 ks.half, out)
        return out

    def __str__(self):
        rec = ", ".join(f"t={t:.4g} R{c + 1}" for t, c in zip(self.jump_times, self.jump_channels))
        fb = f"; feedback: {self.feedback}" if self.feedback is not None else ""
        return (f"KrylovTrajectory {self.index} (seed {self.seed}) of {self.chain!r}: "
                f"{len(self.jump_times)} jumps [{rec}]; "
                f"{'dark' if self.dark else 'ground' if self.excitation_left == 0 else 'running'} "
                f"with excitation {self.excitation_left} left; {self.matvecs} products G x{fb}")

    __repr__ = __str__


class KrylovRequest:
    """A checked Lanczos request: grid, initial state, options, feedback and observables.

    Refuses (``InputError``, before any work) what the path does not cover and what would not
    fit in memory: ``krylov_memory_estimate`` plus the observable rows, 32 T F bytes (one
    trajectory's rows, their sums, squares and cross sums).  ``records``: the ensemble's
    records kind ("none", "summaries", "full"), or "single" for one trajectory (which keeps
    its record whatever the observables).
    """

    def __init__(self, chain, times, initial, options, records, feedback, observables):
        if records not in ("none", "summaries", "full", "single"):
            raise InputError(f"records must be 'none', 'summaries' or 'full', got {records!r}")
        check_paper(chain)
        self.chain, self.records = chain, records
        self.times = check_times(times)
        self.n0 = check_initial(chain, initial)
        self.options = check_options(options)
        self.K0 = int(sum(self.n0))
        self.feedback = check_feedback(chain, feedback)
        self.names = check_observables(observables, solver="trajectories")
        check_jz_only(self.names, "none" if records == "single" else records, self.feedback)
        self.lay, self.parts = observable_layout(chain, self.names)
        C = chain.M - 1
        if self.feedback is None:
            self.rules, self.mask0 = NO_RULES, (1 << C) - 1
        else:
            self.rules, self.mask0 = self.feedback.spec(), self.feedback.initial_mask(C)
        rows = observable_rows_bytes(chain, self.names, self.times.size)
        need = krylov_memory_estimate(chain, self.K0, self.options.m_max, records != "none",
                                      self.options.cache_bytes)
        hint = "use smaller domains"
        if rows > need:
            hint = (f"the observables take {int(self.lay[L_F])} numbers per output time "
                    f"({self.times.size} times): use fewer output times"
                    + (" or drop n_dist (max N_i + 1 per domain)" if "n_dist" in self.names
                       else ""))
        check_memory(need + rows, f"the Lanczos trajectory path for {chain!r}", hint)


def krylov_trajectory(chain, times, seed=0, index=0, initial=None, options=None, feedback=None,
                      observables=("jz",)) -> KrylovTrajectory:
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
    feedback : Feedback, Rule, str or sequence of them, optional
        Rules that open or close reservoirs on the record (``trajspin.trajectories.feedback``).
    observables : name or sequence of names (``trajspin.observables``; not log_negativity;
        <J_i^z> only with feedback)

    Returns
    -------
    KrylovTrajectory
        ``jz`` (T, M), the other observables, the jump record, ``final_state`` and the work
        counters.
    """
    req = KrylovRequest(chain, times, initial, options, "single", feedback, observables)
    seed = check_seed(seed, "seed")
    index = check_seed(index, "index")
    ks = sectors_of(chain, req.options)
    work = _Work(ks, req.K0, req.options, record=True, nrules=req.rules.shape[0])
    obs = np.empty((req.times.size, int(req.lay[L_F])))
    nj, Kf, dark, final, rec, _ = _run_one(ks, req.times, seed, index, req.n0, req.options, work,
                                           obs, req.lay, True, req.rules, req.mask0)
    return KrylovTrajectory(chain, req.times, observable_dict(obs, chain.M, req.names, req.parts),
                            rec, nj, Kf, dark, final, seed, index, req.n0, req.feedback)


def run_chunk_krylov(chain, times, seed, start, stop, initial=None, options=None, records="none",
                     feedback=None, observables=("jz",)):
    """Sums over trajectories start..stop-1, in the format of ``trajectories.run_chunk``.

    ``records`` "summaries" or "full" keep each trajectory's record (as the dense paper
    engine does): the sums are bitwise those of a run without records.  ``feedback`` and
    ``observables`` as in :func:`krylov_trajectory`.

    Returns
    -------
    PartialSums (final_counts of length K0 + 1), with ``records`` (``JumpRecords``) if kept,
    and ``obs_sum``, ``obs_sumsq`` (T, F - M) and ``cross`` ((T, M) with jz2, else (0, M))
    when observables beyond <J_i^z> are asked for
    """
    req = KrylovRequest(chain, times, initial, options, records, feedback, observables)
    seed = check_seed(seed, "seed")
    start = check_seed(start, "start")
    stop = check_seed(stop, "stop")
    if stop < start:
        raise InputError(f"stop ({stop}) must be >= start ({start})")
    return run_request(req, seed, start, stop)


def run_request(req, seed, start, stop):
    """The sums of trajectories start..stop-1 of a checked :class:`KrylovRequest` (see
    :func:`run_chunk_krylov`), with the request's records."""
    records = req.records
    keep = records != "none"
    chain = req.chain
    ks = sectors_of(chain, req.options)
    work = _Work(ks, req.K0, req.options, record=keep, nrules=req.rules.shape[0])
    T, M, F = req.times.size, chain.M, int(req.lay[L_F])
    sums, sumsq = np.zeros((T, F)), np.zeros((T, F))
    o2 = int(req.lay[L_JZ2])
    cross = np.zeros((T if "jz2" in req.parts else 0, M))
    counts = np.zeros(req.K0 + 1, dtype=np.int64)
    ndark = njumps = 0
    obs = np.empty((T, F))
    summ = summaries(stop - start if keep else 0, M, M - 1)
    full = records == "full"
    parts, first = [], np.full(stop - start, np.inf)     # summaries: only the first jump time
    for idx in range(start, stop):
        nj, Kf, dark, final, rec, mask = _run_one(ks, req.times, seed, idx, req.n0, req.options,
                                                  work, obs, req.lay, keep, req.rules, req.mask0,
                                                  copy=full)
        sums += obs
        sumsq += obs * obs
        if cross.shape[0]:
            cross += obs[:, :M] * obs[:, o2:o2 + M]
        counts[Kf] += 1
        ndark += int(dark)
        njumps += nj
        if keep:
            k = idx - start
            summ.njumps[k], summ.k_final[k], summ.dark[k] = nj, Kf, dark
            summ.quanta[k], summ.final_mask[k] = work.quanta, mask
            dicke_jz(final, final.size, ks.table(Kf)[0], 0, ks.half, summ.final_jz[k])
            if full:
                parts.append(rec[:6])
            elif nj:
                first[k] = rec[0][0]
    records = None
    if keep:
        packed = JumpArrays(*(np.concatenate(col) for col in zip(*parts))) if parts \
            else jump_arrays(0, M)
        records = jump_records(M, start, stop, summ, packed, full, None if full else first)
    return PartialSums.from_rows(sums, sumsq, cross, counts, ndark, njumps, M, records)
