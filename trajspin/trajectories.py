"""Quantum trajectories: one at a time, or ensembles with error bars.

Each trajectory is an exact event-driven unravelling of the master equation
with jump operators sqrt(gamma_c) L_c (``trajspin.kernels``).  Trajectory k of
a run with seed s uses a random stream determined by (s, k) alone, and an
ensemble is accumulated over fixed chunks of indices in index order, so the
same (seed, ntraj, chunk) gives bitwise identical sums however the chunks
are scheduled (serially, or over MPI ranks).
"""
from __future__ import annotations

import time

import numpy as np

from .kernels import (demon_kernel, ensemble_kernel, no_jump_jz, no_jump_jz_pattern,
                      record_ensemble_kernel, rng_init)
from .model import InputError
from .sectors import dark_exact_eigh
from .progress import get_progress_bar
from .results import EnsembleResult, versions
from .validation import check_initial, check_memory, check_times

__all__ = ["SectorTables", "Trajectory", "trajectory", "run_trajectories", "run_chunk",
           "DEFAULT_CHUNK", "trajectory_memory_estimate", "RECORD_KINDS"]

RECORD_KINDS = ("none", "summaries", "full")

DEFAULT_CHUNK = 256
_MAX_SEED = 2**63


def trajectory_memory_estimate(chain, K0=None) -> int:
    """Bytes of the sector tables for sectors 0..K0: eigenvectors sum d_K^2, plus O(sum d_K) per state."""
    d = chain.sectors.dims[: (chain.sizes[0] if K0 is None else K0) + 1].astype(float)
    per_state = 8 * (2 + chain.M + 4 * (chain.M - 1))
    return int(8 * np.sum(d**2) * 2 + per_state * np.sum(d))


class SectorTables:
    """Flat arrays of sectors 0..K0 for the kernels (built once per chain and initial sector).

    Attributes
    ----------
    dims, off_d, off_V : int64 arrays, shape (K0 + 1,)
    lam : float64, shape (sum d_K,)
    V : float64, shape (sum d_K^2,)   row-major eigenvectors of each G_K
    nexc : float64, shape (sum d_K, M)
    jtgt : int64, shape (sum d_K, M-1, 2);  jamp : float64, same shape
    """

    def __init__(self, chain, K0):
        basis = chain.sectors
        self.K0 = K0
        self.dims = np.array([basis.dim(K) for K in range(K0 + 1)], dtype=np.int64)
        self.off_d = np.concatenate([[0], np.cumsum(self.dims)[:-1]]).astype(np.int64)
        self.off_V = np.concatenate([[0], np.cumsum(self.dims**2)[:-1]]).astype(np.int64)
        spectra = [basis.spectrum(K) for K in range(K0 + 1)]
        self.lam = np.concatenate([s[0] for s in spectra])
        self.V = np.concatenate([s[1].ravel() for s in spectra])
        self.nexc = np.ascontiguousarray(np.concatenate(
            [basis.number_diagonals(K) for K in range(K0 + 1)]))
        secs = [basis.sector(K) for K in range(K0 + 1)]
        self.jtgt = np.ascontiguousarray(np.concatenate([s.jump_target.transpose(1, 0, 2) for s in secs]))
        self.jamp = np.ascontiguousarray(np.concatenate([s.jump_amp.transpose(1, 0, 2) for s in secs]))
        self.gamma = np.ascontiguousarray(chain.gamma, dtype=float)
        self.half = 0.5 * np.asarray(chain.sizes, dtype=float)
        self.chain_sectors = basis

    def args(self):
        return (self.dims, self.off_d, self.off_V, self.lam, self.V, self.nexc, self.jtgt,
                self.jamp, self.gamma, self.half)

    def initial_trace(self, pos, times):
        """<J_i^z>(t) of the no-jump evolution of the initial state, shape (T, M) (shared)."""
        return no_jump_jz(self.K0, pos, times, self.dims, self.off_d, self.off_V, self.lam,
                          self.V, self.nexc, self.half)

    def pattern(self, mask):
        """(lam, V) flattened like ``self.lam`` / ``self.V`` for G_K = sum_{c in mask} gamma_c L_c^T L_c.

        Built on first use and cached per mask; the all-open mask is the passive spectrum itself.
        """
        C = self.gamma.size
        if mask == (1 << C) - 1:
            return self.lam, self.V
        cache = self.__dict__.setdefault("_patterns", {})
        if mask not in cache:
            basis = self.chain_sectors
            lams, Vs = [], []
            for K in range(self.K0 + 1):
                d = int(self.dims[K])
                G = np.zeros((d, d))
                if K > 0:
                    for c, L in enumerate(basis.jump_matrices(K)):
                        if (mask >> c) & 1:
                            G += self.gamma[c] * (L.T @ L).toarray()
                lam, V = dark_exact_eigh(G)
                lams.append(lam)
                Vs.append(V.ravel())
            cache[mask] = (np.concatenate(lams), np.concatenate(Vs))
        return cache[mask]

    def pattern_tables(self, masks):
        """Stacked tables of reservoir patterns for ``demon_kernel``.

        Returns
        -------
        lam_p : ndarray, shape (P, sum d_K);  V_p : ndarray, shape (P, sum d_K^2)
        rows : int64 ndarray, shape (2^(M-1),)   row of each mask (-1: not built)
        """
        masks = tuple(sorted(set(int(m) for m in masks)))
        cache = self.__dict__.setdefault("_stacks", {})
        if masks not in cache:
            parts = [self.pattern(m) for m in masks]
            rows = -np.ones(1 << self.gamma.size, dtype=np.int64)
            rows[list(masks)] = np.arange(len(masks))
            cache[masks] = (np.ascontiguousarray(np.stack([p[0] for p in parts])),
                            np.ascontiguousarray(np.stack([p[1] for p in parts])), rows)
        return cache[masks]


def _tables(chain, K0):
    cache = chain.__dict__.setdefault("_tables_cache", {})
    if K0 not in cache:
        cache[K0] = SectorTables(chain, K0)
    return cache[K0]


def _locate(chain, n0):
    """(K0, position) of the initial basis state, after checking the tables fit in memory."""
    check_memory(trajectory_memory_estimate(chain, sum(n0)), f"the trajectory tables of {chain!r}",
                 "use smaller domains")
    return chain.sectors.index_of(n0)


def _check_seed(seed, name="seed"):
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < _MAX_SEED:
        raise InputError(f"{name} must be an integer in [0, 2**63), got {seed!r}")
    return int(seed)


def _check_feedback(chain, feedback):
    """None, or a checked Feedback (text rules accepted)."""
    if feedback is None:
        return None
    from .feedback import Feedback, Rule
    if isinstance(feedback, (str, Rule)):
        feedback = [feedback]
    if not isinstance(feedback, Feedback):
        feedback = Feedback(feedback)
    return feedback.check(chain)


def _kernel_tables(tab, feedback):
    """(rules, mask0, lam_p, V_p, pattern_row) for ``demon_kernel``."""
    from .kernels import NO_RULES
    C = tab.gamma.size
    if feedback is None:
        return (NO_RULES, (1 << C) - 1) + tab.pattern_tables([(1 << C) - 1])
    return (feedback.spec(), feedback.initial_mask(C)) + tab.pattern_tables(
        feedback.reachable_masks(C))


class Trajectory:
    """One quantum trajectory: its jump record and conditional <J_i^z>(t).

    Attributes
    ----------
    times : ndarray, shape (T,)
    jz : ndarray, shape (T, M)      <J_i^z> in the conditional state
    jump_times : ndarray, shape (njumps,), increasing
    jump_channels : ndarray of int, shape (njumps,)   reservoir c (0-based) of each jump
    jump_excitation : ndarray of int, shape (njumps,)   excitation K just before each jump
                                    (K - 1 just after: every jump takes one quantum at T = 0)
    jz_before, jz_after : ndarray, shape (njumps, M)   conditional <J_i^z> just before and
                                    just after each jump
    reservoirs_open : ndarray of int, shape (njumps,)   bit mask of open reservoirs after each
                                    jump (bit c: reservoir c; all bits set without feedback)
    dark : bool                     froze in a dark state with excitation left
    excitation_left : int           excitation K of the final state
    final_state : ndarray, shape (d_K,)   conditional state at t -> infinity, coupled Dicke
                                    basis of sector K (``chain.sectors.sector(K).states`` labels it)
    seed, index : int
    feedback : Feedback or None
    """

    def __init__(self, chain, times, jz, jump_times, jump_channels, dark, excitation_left,
                 final_state, seed, index, initial, jump_excitation=None, jz_before=None,
                 jz_after=None, reservoirs_open=None, feedback=None):
        self.chain, self.times, self.jz = chain, times, jz
        self.jump_times, self.jump_channels = jump_times, jump_channels
        self.dark, self.excitation_left = bool(dark), int(excitation_left)
        self.final_state, self.seed, self.index, self.initial = final_state, seed, index, initial
        self.jump_excitation, self.jz_before, self.jz_after = jump_excitation, jz_before, jz_after
        self.reservoirs_open, self.feedback = reservoirs_open, feedback

    @property
    def jz_over_n(self):
        return self.jz / np.asarray(self.chain.sizes, dtype=float)

    @property
    def quanta(self):
        """Quanta taken by each reservoir, shape (M-1,)."""
        return np.bincount(self.jump_channels, minlength=self.chain.M - 1)

    @property
    def final_jz(self):
        """<J_i^z> of the final (t -> infinity) conditional state, shape (M,)."""
        states = self.chain.sectors.sector(self.excitation_left).states
        return (self.final_state**2) @ states - 0.5 * np.asarray(self.chain.sizes, dtype=float)

    def __str__(self):
        rec = ", ".join(f"t={t:.4g} R{c + 1}" for t, c in zip(self.jump_times, self.jump_channels))
        fb = f"; feedback: {self.feedback}" if self.feedback is not None else ""
        return (f"Trajectory {self.index} (seed {self.seed}) of {self.chain!r}: "
                f"{len(self.jump_times)} jumps [{rec}]; "
                f"{'dark' if self.dark else 'ground' if self.excitation_left == 0 else 'running'} "
                f"with excitation {self.excitation_left} left; final <J_i^z>/N_i = "
                f"{np.round(self.final_jz / np.asarray(self.chain.sizes), 6).tolist()}{fb}")

    __repr__ = __str__


def trajectory(chain, times, seed=0, index=0, initial=None, feedback=None) -> Trajectory:
    """Sample one quantum trajectory (its stream depends on (seed, index) only).

    Parameters
    ----------
    chain : Chain
    times : array_like, shape (T,)   output times, increasing, >= 0, units of 1/gamma
    seed, index : int
    initial : sequence of int, optional   excitation numbers n_i (default: paper eq. 4)
    feedback : Feedback, Rule, str or sequence of them, optional
        Rules that open or close reservoirs on the record (``trajspin.feedback``).

    Returns
    -------
    Trajectory
        With the full jump record (times, reservoirs, excitation, conditional <J_i^z>
        just before and after each jump).
    """
    t = check_times(times)
    seed = _check_seed(seed)
    index = _check_seed(index, "index")
    n0 = check_initial(chain, initial)
    fb = _check_feedback(chain, feedback)
    K0, pos = _locate(chain, n0)
    tab = _tables(chain, K0)
    rules, mask0, lam_p, V_p, rows = _kernel_tables(tab, fb)
    M, C = chain.M, chain.M - 1
    n = max(K0, 1)
    jz = np.empty((t.size, M))
    rec_t, rec_c = np.empty(n), np.empty(n, dtype=np.int64)
    rec_K, rec_mask = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
    rec_b, rec_a = np.empty((n, M)), np.empty((n, M))
    psi = np.empty(int(tab.dims.max()))
    nj, Kf, dark, _ = demon_kernel(rng_init(seed, index), K0, pos, t, tab.dims, tab.off_d,
                                   tab.off_V, lam_p, V_p, tab.nexc, tab.jtgt, tab.jamp, tab.gamma,
                                   tab.half, np.empty((0, M)), jz, psi, rules, mask0, rows,
                                   rec_t, rec_c, rec_K, rec_b, rec_a, rec_mask,
                                   np.empty(C, dtype=np.int64))
    return Trajectory(chain, t, jz, rec_t[:nj].copy(), rec_c[:nj].copy(), dark, Kf,
                      psi[: tab.dims[Kf]].copy(), seed, index, n0, rec_K[:nj].copy(),
                      rec_b[:nj].copy(), rec_a[:nj].copy(), rec_mask[:nj].copy(), fb)


def _initial_trace(tab, pos, times, feedback):
    """The shared no-jump trace of the initial state under the reservoirs open at t = 0."""
    if feedback is None:
        return tab.initial_trace(pos, times)
    rules, mask0, lam_p, V_p, rows = _kernel_tables(tab, feedback)
    if mask0 == (1 << tab.gamma.size) - 1:
        return tab.initial_trace(pos, times)
    return no_jump_jz_pattern(tab.K0, pos, times, tab.dims, tab.off_d, tab.off_V, lam_p, V_p,
                              int(rows[mask0]), tab.nexc, tab.half)


def run_chunk(chain, times, seed, start, stop, K0, pos, init_jz=None, records="none",
              feedback=None):
    """Sums over trajectories start..stop-1: (jz_sum, jz_sumsq, final_counts, ndark, njumps).

    ``init_jz`` (from ``SectorTables.initial_trace``) may be passed to share it between chunks.
    With ``records`` "summaries" or "full" a sixth item, the chunk's
    :class:`trajspin.demon.JumpRecords`, follows.  ``feedback``: a checked
    :class:`trajspin.feedback.Feedback` or None.
    """
    tab = _tables(chain, K0)
    if init_jz is None:
        init_jz = _initial_trace(tab, pos, times, feedback)
    T, M = times.size, chain.M
    jz_sum = np.zeros((T, M))
    jz_sumsq = np.zeros((T, M))
    counts = np.zeros(K0 + 1, dtype=np.int64)
    stats = np.zeros(2, dtype=np.int64)
    if records == "none" and feedback is None:
        ensemble_kernel(seed, start, stop, K0, pos, times, *tab.args(), init_jz, jz_sum, jz_sumsq,
                        counts, stats)
        return jz_sum, jz_sumsq, counts, int(stats[0]), int(stats[1])
    from .demon import JumpRecords
    rules, mask0, lam_p, V_p, rows = _kernel_tables(tab, feedback)
    n, C = stop - start, M - 1
    full = records == "full"
    J = n * K0 if full else 0
    njumps, k_final = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    dark, final_jz = np.zeros(n, dtype=np.bool_), np.zeros((n, M))
    quanta, final_mask = np.zeros((n, C), dtype=np.int64), np.zeros(n, dtype=np.int64)
    first = np.full(n, np.inf)
    jt, jc, jK, jm = (np.empty(J), np.empty(J, dtype=np.int64), np.empty(J, dtype=np.int64),
                      np.empty(J, dtype=np.int64))
    jb, ja = np.empty((J, M)), np.empty((J, M))
    if not full:        # the kernel still needs room for one trajectory's times
        jt = np.empty(n * max(K0, 1))
        jc, jK, jm = (np.empty(n * max(K0, 1), dtype=np.int64) for _ in range(3))
    record_ensemble_kernel(seed, start, stop, K0, pos, times, tab.dims, tab.off_d, tab.off_V,
                           lam_p, V_p, tab.nexc, tab.jtgt, tab.jamp, tab.gamma, tab.half, init_jz,
                           rules, mask0, rows, jz_sum, jz_sumsq, counts, stats, njumps, k_final,
                           dark, final_jz, quanta, final_mask, jt, jc, jK, jb if full else jb[:0],
                           ja if full else ja[:0], jm)
    used = int(njumps.sum())
    offsets = np.concatenate([[0], np.cumsum(njumps)])
    has = njumps > 0
    first[has] = jt[offsets[:-1][has]]
    part = (jz_sum, jz_sumsq, counts, int(stats[0]), int(stats[1]))
    if records == "none":
        return part
    rec = JumpRecords(M, np.arange(start, stop, dtype=np.int64), njumps, k_final, dark, final_jz,
                      quanta, final_mask, first,
                      **(dict(jump_time=jt[:used], jump_reservoir=jc[:used],
                              jump_excitation=jK[:used], jz_before=jb[:used], jz_after=ja[:used],
                              reservoirs_open=jm[:used]) if full else {}))
    return part + (rec,)


def check_records(records):
    """"none", "summaries" or "full" (True means "full", False or None "none")."""
    if records is True:
        return "full"
    if records is None or records is False:
        return "none"
    if records not in RECORD_KINDS:
        raise InputError(f"records must be one of {', '.join(map(repr, RECORD_KINDS))} "
                         f"(or True / False), got {records!r}")
    return records


def run_trajectories(chain, times, ntraj, seed=0, initial=None, progress=True, target_err=None,
                     chunk=DEFAULT_CHUNK, max_ntraj=None, records="none",
                     feedback=None) -> EnsembleResult:
    """Average ``ntraj`` quantum trajectories (indices 0..ntraj-1) with standard errors.

    Parameters
    ----------
    chain : Chain
    times : array_like, shape (T,)
    ntraj : int
        Number of trajectories (with ``target_err``: the minimum).
    seed : int
    initial : sequence of int, optional
    progress : bool
        tqdm progress bar over trajectories.
    target_err : float, optional
        Keep adding chunks until the largest standard error of <J_i^z>/N_i over the grid is
        below this value, or ``max_ntraj`` (default 100 * ntraj) is reached.
    chunk : int
        Trajectories per accumulation chunk; sums are combined chunk by chunk in index
        order, so results are reproducible bitwise for the same chunk size.
    records : {"none", "summaries", "full"} or bool
        Keep every trajectory's record (``trajspin.demon.JumpRecords``): "summaries" the
        quanta per reservoir, first jump time, final excitation and final conditional
        <J_i^z>; "full" (or True) also every jump (time, reservoir, excitation, conditional
        <J_i^z> just before and after), as flat arrays with offsets per trajectory.
    feedback : Feedback, Rule, str or sequence of them, optional
        Rules that switch reservoirs on the record (``trajspin.feedback``).  Averages with
        feedback are not given by any master equation.

    Returns
    -------
    EnsembleResult
        ``.jz`` and ``.jz_err`` of shape (T, M), ``.ntraj``, ``.seed``, ``.final_excitation_counts``;
        with records or feedback a ``trajspin.demon.RecordedEnsemble`` (also ``.records``).
    """
    t = check_times(times)
    seed = _check_seed(seed)
    if isinstance(ntraj, bool) or not isinstance(ntraj, (int, np.integer)) or ntraj < 1:
        raise InputError(f"ntraj must be a positive integer, got {ntraj!r}")
    if isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)) or chunk < 1:
        raise InputError(f"chunk must be a positive integer, got {chunk!r}")
    if target_err is not None and not (np.isfinite(target_err) and target_err > 0):
        raise InputError(f"target_err must be a positive number, got {target_err!r}")
    max_ntraj = int(max_ntraj or (100 * ntraj if target_err else ntraj))
    records = check_records(records)
    n0 = check_initial(chain, initial)
    fb = _check_feedback(chain, feedback)
    K0, pos = _locate(chain, n0)
    start_time = time.perf_counter()
    init_jz = _initial_trace(_tables(chain, K0), pos, t, fb)
    T, M = t.size, chain.M
    acc = [np.zeros((T, M)), np.zeros((T, M)), np.zeros(K0 + 1, dtype=np.int64), 0, 0]
    if records != "none":
        from .demon import JumpRecords
        acc.append(JumpRecords.empty(M, full=records == "full"))
    done = 0
    sizes = np.asarray(chain.sizes, dtype=float)
    with get_progress_bar(progress, max_ntraj if target_err else ntraj, "trajectories", "traj") as bar:
        while True:
            goal = ntraj if done < ntraj else max_ntraj
            if done >= goal:
                break
            stop = min(done + chunk - done % chunk, goal)
            part = run_chunk(chain, t, seed, done, stop, K0, pos, init_jz, records, fb)
            for k in range(len(acc)):
                acc[k] = acc[k] + part[k]
            bar.update(stop - done)
            done = stop
            if target_err is not None and done >= ntraj and done % chunk == 0:
                res = _ensemble(chain, t, seed, acc[:5], done, n0, start_time)
                worst = float(np.max(res.jz_err / sizes))
                bar.set_postfix_str(f"max err {worst:.2e}")
                if worst <= target_err:
                    break
    return _ensemble(chain, t, seed, acc, done, n0, start_time, records, fb)


def _ensemble(chain, t, seed, acc, n, n0, start_time, records="none", feedback=None):
    meta = {"initial": list(n0), "seed": seed, "ntraj": n, "ndark": acc[3], "njumps_sum": acc[4],
            "wall_time": time.perf_counter() - start_time, "versions": versions(),
            "sampler": "exact event-driven (sector spectral decomposition)"}
    if records == "none" and feedback is None:
        return EnsembleResult(chain, t, seed, acc[0], acc[1], n, acc[2], acc[3], acc[4],
                              [[0, n]], meta=meta)
    from .demon import RecordedEnsemble
    meta["records"] = records
    if feedback is not None:
        meta["feedback"] = feedback.to_dict()
    return RecordedEnsemble(chain, t, seed, acc[0], acc[1], n, acc[2], acc[3], acc[4], [[0, n]],
                            records=acc[5] if len(acc) > 5 else None, meta=meta)
