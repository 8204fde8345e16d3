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
            from .sectors import DARK_RTOL
            basis = self.chain_sectors
            lams, Vs = [], []
            for K in range(self.K0 + 1):
                d = int(self.dims[K])
                G = np.zeros((d, d))
                if K > 0:
                    for c, L in enumerate(basis.jump_matrices(K)):
                        if (mask >> c) & 1:
                            G += self.gamma[c] * (L.T @ L).toarray()
                lam, V = np.linalg.eigh(G)
                cut = DARK_RTOL * (1.0 + (lam[-1] if lam.size else 0.0))
                lams.append(np.where(lam < cut, 0.0, lam))
                Vs.append(np.ascontiguousarray(V).ravel())
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


class Trajectory:
    """One quantum trajectory: its jump record and conditional <J_i^z>(t).

    Attributes
    ----------
    times : ndarray, shape (T,)
    jz : ndarray, shape (T, M)      <J_i^z> in the conditional state
    jump_times : ndarray, shape (njumps,), increasing
    jump_channels : ndarray of int, shape (njumps,)   reservoir c (0-based) of each jump
    dark : bool                     froze in a dark state with excitation left
    excitation_left : int           excitation K of the final state
    final_state : ndarray, shape (d_K,)   conditional state at t -> infinity, coupled Dicke
                                    basis of sector K (``chain.sectors.sector(K).states`` labels it)
    seed, index : int
    """

    def __init__(self, chain, times, jz, jump_times, jump_channels, dark, excitation_left,
                 final_state, seed, index, initial):
        self.chain, self.times, self.jz = chain, times, jz
        self.jump_times, self.jump_channels = jump_times, jump_channels
        self.dark, self.excitation_left = bool(dark), int(excitation_left)
        self.final_state, self.seed, self.index, self.initial = final_state, seed, index, initial

    @property
    def jz_over_n(self):
        return self.jz / np.asarray(self.chain.sizes, dtype=float)

    @property
    def final_jz(self):
        """<J_i^z> of the final (t -> infinity) conditional state, shape (M,)."""
        states = self.chain.sectors.sector(self.excitation_left).states
        return (self.final_state**2) @ states - 0.5 * np.asarray(self.chain.sizes, dtype=float)

    def __str__(self):
        rec = ", ".join(f"t={t:.4g} R{c + 1}" for t, c in zip(self.jump_times, self.jump_channels))
        return (f"Trajectory {self.index} (seed {self.seed}) of {self.chain!r}: "
                f"{len(self.jump_times)} jumps [{rec}]; "
                f"{'dark' if self.dark else 'ground' if self.excitation_left == 0 else 'running'} "
                f"with excitation {self.excitation_left} left; final <J_i^z>/N_i = "
                f"{np.round(self.final_jz / np.asarray(self.chain.sizes), 6).tolist()}")

    __repr__ = __str__


def trajectory(chain, times, seed=0, index=0, initial=None) -> Trajectory:
    """Sample one quantum trajectory (its stream depends on (seed, index) only).

    Parameters
    ----------
    chain : Chain
    times : array_like, shape (T,)   output times, increasing, >= 0, units of 1/gamma
    seed, index : int
    initial : sequence of int, optional   excitation numbers n_i (default: paper eq. 4)

    Returns
    -------
    Trajectory
    """
    t = check_times(times)
    seed = _check_seed(seed)
    index = _check_seed(index, "index")
    n0 = check_initial(chain, initial)
    K0, pos = _locate(chain, n0)
    tab = _tables(chain, K0)
    jz = np.empty((t.size, chain.M))
    rec_t = np.empty(max(K0, 1))
    rec_c = np.empty(max(K0, 1), dtype=np.int64)
    psi = np.empty(int(tab.dims.max()))
    nj, Kf, dark = trajectory_kernel(rng_init(seed, index), K0, pos, t, *tab.args(),
                                     np.empty((0, chain.M)), jz, rec_t, rec_c, psi)
    return Trajectory(chain, t, jz, rec_t[:nj].copy(), rec_c[:nj].copy(), dark, Kf,
                      psi[: tab.dims[Kf]].copy(), seed, index, n0)


def run_chunk(chain, times, seed, start, stop, K0, pos, init_jz=None):
    """Sums over trajectories start..stop-1: (jz_sum, jz_sumsq, final_counts, ndark, njumps).

    ``init_jz`` (from ``SectorTables.initial_trace``) may be passed to share it between chunks.
    """
    tab = _tables(chain, K0)
    if init_jz is None:
        init_jz = tab.initial_trace(pos, times)
    T, M = times.size, chain.M
    jz_sum = np.zeros((T, M))
    jz_sumsq = np.zeros((T, M))
    counts = np.zeros(K0 + 1, dtype=np.int64)
    stats = np.zeros(2, dtype=np.int64)
    ensemble_kernel(seed, start, stop, K0, pos, times, *tab.args(), init_jz, jz_sum, jz_sumsq, counts,
                    stats)
    return jz_sum, jz_sumsq, counts, int(stats[0]), int(stats[1])


def run_trajectories(chain, times, ntraj, seed=0, initial=None, progress=True, target_err=None,
                     chunk=DEFAULT_CHUNK, max_ntraj=None) -> EnsembleResult:
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

    Returns
    -------
    EnsembleResult
        ``.jz`` and ``.jz_err`` of shape (T, M), ``.ntraj``, ``.seed``, ``.final_excitation_counts``.
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
    n0 = check_initial(chain, initial)
    K0, pos = _locate(chain, n0)
    start_time = time.perf_counter()
    init_jz = _tables(chain, K0).initial_trace(pos, t)
    T, M = t.size, chain.M
    acc = [np.zeros((T, M)), np.zeros((T, M)), np.zeros(K0 + 1, dtype=np.int64), 0, 0]
    done = 0
    sizes = np.asarray(chain.sizes, dtype=float)
    with get_progress_bar(progress, max_ntraj if target_err else ntraj, "trajectories", "traj") as bar:
        while True:
            goal = ntraj if done < ntraj else max_ntraj
            if done >= goal:
                break
            stop = min(done + chunk - done % chunk, goal)
            part = run_chunk(chain, t, seed, done, stop, K0, pos, init_jz)
            for k in range(5):
                acc[k] = acc[k] + part[k]
            bar.update(stop - done)
            done = stop
            if target_err is not None and done >= ntraj and done % chunk == 0:
                res = _ensemble(chain, t, seed, acc, done, n0, start_time)
                worst = float(np.max(res.jz_err / sizes))
                bar.set_postfix_str(f"max err {worst:.2e}")
                if worst <= target_err:
                    break
    return _ensemble(chain, t, seed, acc, done, n0, start_time)


def _ensemble(chain, t, seed, acc, n, n0, start_time):
    meta = {"initial": list(n0), "seed": seed, "ntraj": n, "ndark": acc[3], "njumps_sum": acc[4],
            "wall_time": time.perf_counter() - start_time, "versions": versions(),
            "sampler": "exact event-driven (sector spectral decomposition)"}
    return EnsembleResult(chain, t, seed, acc[0], acc[1], n, acc[2], acc[3], acc[4],
                          [[0, n]], meta=meta)
