"""Memory and time a run will need, known before it starts.

``estimate(chain, solver, ...)`` returns an :class:`Estimate`: bytes per rank and in total,
the memory available, the predicted wall time, the method the engine will use, and whether
the run fits (``est.fits``; ``est.check()`` raises :class:`trajspin.InputError` with the numbers
when it does not).  ``trajspin estimate --sizes ...`` prints the same on the command line.

Memory (bytes, exact where the arrays are known)
------------------------------------------------
Let d_K be the dimension of sector K (``trajspin.sectors.sector_dims``), K0 the initial sector,
M the number of domains, T the number of output times.

* trajectories, dense spectral engine (``trajspin.trajectories``): the retained sector data,
  :func:`table_bytes` (exact: the sum of the array sizes the engine keeps, tested against them),

      8 [2 sum_K d_K^2 + (3 + 2M + 8(M-1)) sum_K d_K + 3(K0 + 1) + 3M + sum_i N_i]

  (eigenvectors twice: the basis cache and the flat kernel table), plus the transient of the
  largest eigendecomposition, ``EIGH_TRANSIENT`` x 8 d_max^2 (generator, LAPACK copy and
  workspace, eigenvectors), plus the run's accumulators ~ 8 x 8 T M, plus ``BASELINE_BYTES``
  (the interpreter with numpy, scipy, numba and trajspin's kernels loaded).  Every MPI rank
  builds its own tables: total = ranks x per rank.
* trajectories, matrix-free Krylov engine (``trajspin.trajectories.lanczos``, when present and when its
  ``choose_method(chain, K0)`` says "krylov"): its own ``krylov_memory_estimate(chain, K0)``
  plus the accumulators and the baseline.
* master: ``trajspin.resources.master_memory_estimate(chain, K0)`` plus T (2M + K0) doubles of
  output and the baseline; steady: ``steady_memory_estimate`` plus the baseline.

A run fits when its total is at most ``MEMORY_FRACTION`` (0.8) of the available memory
(``MemAvailable``), the same rule the engines apply when they refuse a problem.

Time (seconds, one core per rank)
---------------------------------
A cost model with constants in :data:`COSTS`, fitted by non-negative least squares on the
relative error of measured runs (``analysis/benchmarks/calibrate_estimate.py``, which prints
the fitted table; re-run it after a kernel change).  Features:

* set-up (once per rank): ``eigh`` sum_K d_K^3 + ``setup_d2`` sum_K d_K^2 + ``setup_state``
  sum_K d_K M + ``setup_sector`` (K0 + 1);
* one trajectory: ``traj_jump`` sum_{K=1}^{K0} (d_K^2 + d_{K-1}^2) (at zero temperature a
  trajectory leaves each sector at most once; two dense products per jump: the state at the
  jump and its new eigen-coefficients) + ``traj_out`` T mean_K d_K^2 (the O(d_K^2)
  evaluation at output times) + ``traj_point`` T M + ``traj_const``;
* master: sweeps x (``master_sweep`` sum_K [d_K^2 + (M-1)(d_K d_{K+1}^2 + d_K^2 d_{K+1})]
  + ``master_sector`` (K0 + 1) + ``master_step``) with sweeps = ``sweeps_base`` +
  ``sweeps_per_point`` T, plus ``master_setup`` M sum_K d_K^3 and ``master_obs`` T M sum_K d_K^2;
* trajectories, matrix-free: set-up ``krylov_state`` sum_{d_K >= 2048} d_K (the tables kept
  between trajectories), per trajectory ``krylov_jump`` sum_{K=1}^{K0} (2M - 1) d_K +
  ``krylov_visit`` K0 + ``traj_point`` T M + ``traj_const`` (``krylov_jump = None`` gives
  memory only);
* steady: ``steady_cubic`` sum_K [d_K^3 + (M-1)(d_K d_{K+1}^2 + d_K^2 d_{K+1})] + ``steady_d2``
  M sum_K d_K^2 + ``steady_sector`` (K0 + 1).

The prediction is meant to be right within a factor of a few (the tests hold it to 4x on a
small run); the number of jumps is bounded by K0 and the number of solver sweeps depends on
the stiffness, so longer grids or unusual initial states move it.  Wall time with ``ranks``
ranks: set-up + ceil(ntraj / ranks) x time per trajectory (ranks on separate cores).
"""
from __future__ import annotations

import math

import numpy as np

from trajspin.errors import InputError
from trajspin.initial import resolve_initial
from trajspin.model import Chain
from trajspin.resources import (choose_engine, general_memory_estimate, master_memory_estimate,
                                steady_closed_form, steady_memory_estimate, table_bytes)
from trajspin.validation import available_memory, check_initial, check_times

__all__ = ["Estimate", "estimate", "warm_jumps", "table_bytes", "COSTS", "BASELINE_BYTES", "SOLVERS",
           "MEMORY_FRACTION"]


SOLVERS = ("trajectories", "master", "steady")
MEMORY_FRACTION = 0.8          # same rule as trajspin.validation.check_memory
EIGH_TRANSIENT = 5             # d_max^2 arrays alive while the largest sector is diagonalised
# RSS of `python -c "import trajspin"` after a first tiny run_trajectories (kernels loaded),
# measured 181 MiB (numpy 2.4.6, numba 0.68.1, qutip not imported); rounded up.
BASELINE_BYTES = 200 * 2**20

# Seconds per unit of each cost feature (see the module docstring).  Fitted with
# analysis/benchmarks/calibrate_estimate.py on 2026-11-26 05:45 UTC on a copy of the tree of
# that time (HEAD 422b575 + uncommitted kernel/solver edits), AMD EPYC VM, one BLAS thread:
# 11 trajectory chains (400 and 2 output times), 5 master chains (400 and 40 times), 4 steady
# chains; worst prediction / measurement factor 2.7x ((160, 2) per trajectory).  The machine
# was busy (1-minute load average 4.3 on 2 cores, so a process got about half a core): on an
# idle core expect runs about 2x faster than predicted.  The same fit at load 0.3-0.7 on the
# 05:32 tree gave constants 2-3x smaller (results/calibrate_estimate.json keeps the inputs).
# A constant of 0 means the fit found that feature redundant.
COSTS = {
    "eigh": 3.29e-10,            # s per d_K^3 (numpy eigh, one thread), set-up
    "setup_d2": 0,               # s per d_K^2 (dense generator, tables), set-up
    "setup_state": 1.63e-05,     # s per d_K M (sector states, jump tables), set-up
    "setup_sector": 0.00648,     # s per sector (Python overhead), set-up
    "traj_jump": 7.16e-10,       # s per d^2 of jump work
    "traj_out": 7.33e-11,        # s per output point x mean d_K^2
    "traj_point": 2.9e-08,       # s per output point x domain
    "traj_const": 1.61e-05,      # s per trajectory
    "master_sweep": 1.51e-10,    # s per sweep flop unit
    "sweeps_base": 1.26e+04,     # sweeps of solve_master on any grid ...
    "sweeps_per_point": 5.44,    # ... plus this many per output time
    "master_sector": 1.03e-06,   # s per sweep x sector (loop overhead of the numba sweep)
    "master_step": 3.13e-05,     # s per sweep (Python work of a step, per sweep)
    "master_setup": 0,           # s per M d_K^3
    "master_obs": 1.03e-07,      # s per T M d_K^2
    # steady: refitted 2026-12-08 after the cascade change (sparse Dicke-basis feed, eigh of
    # the next sector on a second thread) with ``calibrate_estimate.py --steady``, load ~1,
    # one BLAS thread, 5 chains up to (150, 100, 10) (1111-state sectors, 31.8 s): every chain
    # within 0.77-1.06x; (10^4, 10^2, 10) is then 75 min (measured extrapolation with both
    # cores in bench_steady_three.py: 59 min).
    "steady_cubic": 6.47e-11,    # s per d_K^3 unit of the direct cascade
    "steady_d2": 0,              # s per M d_K^2
    "steady_sector": 0.0111,     # s per sector (Python overhead)
    # matrix-free engine (one numba loop per trajectory, m_check 4): fitted to two rows of
    # analysis/benchmarks/bench_large_n.py (results/bench_large_n.json, load 1.0-1.5):
    # (10^6, 100) 25.8 s and (10^7, 10) 105 s per trajectory; (10^5, 100, 10) is then
    # predicted 32 s against 25 s measured.  krylov_state from bench_large.py's table build
    # (1.25e7 states in 1.02 s).  Set krylov_jump to None to switch the time prediction off.
    "krylov_jump": 5.67e-08,     # s per nonzero of G_K (row sparsity 2M-1) per sector passed
    "krylov_visit": 8.6e-06,     # s per sector passed (Lanczos set-up, eigen-solve, the jump)
    "krylov_state": 8.2e-08,     # s per state of the cached sectors (d_K >= 2048), set-up
    # warm reservoirs (general engine): measured 2026-12-02 on (2,1) n = 1e4, 1e5, (4,2) n = 1e3,
    # (6,3,2) n = 100 (tmax 5-20): 1.4-5.3 us per jump, ~0.7 us per jump and channel
    "warm_jump": 7.5e-07,        # s per jump x channel
}
DEFAULT_TMAX = 1000.0          # the CLI's default last time, for warm chains without ``times``
DEFAULT_POINTS = 400           # the CLI's default grid, for time estimates without ``times``


def _dims(chain, K0):
    return np.asarray(chain.sectors.dims[: K0 + 1], dtype=float)


def trajectory_features(dims, M, T):
    """Cost features of the dense trajectory engine (see the module docstring).

    Parameters
    ----------
    dims : array_like, shape (K0 + 1,)   d_K for K = 0..K0
    M, T : int

    Returns
    -------
    setup : dict   {"eigh", "setup_d2", "setup_state", "setup_sector"} -> feature value
    per_traj : dict  {"traj_jump", "traj_out", "traj_point", "traj_const"} -> feature value
    """
    d = np.asarray(dims, dtype=float)
    setup = {"eigh": float(np.sum(d**3)), "setup_d2": float(np.sum(d**2)),
             "setup_state": float(np.sum(d) * M), "setup_sector": float(d.size)}
    per = {"traj_jump": float(np.sum(d[1:] ** 2) + np.sum(d[:-1] ** 2)),
           "traj_out": float(T * np.mean(d**2)), "traj_point": float(T * M), "traj_const": 1.0}
    return setup, per


def _feed(d, M):
    up = np.append(d[1:], 0.0)
    return (M - 1) * (d * up**2 + d**2 * up)


def master_features(dims, M, T):
    """Cost features of ``solve_master``.

    Returns
    -------
    dict  {"master_sweep", "master_sector", "master_step", "master_setup", "master_obs"} -> value
    """
    d = np.asarray(dims, dtype=float)
    sweeps = COSTS["sweeps_base"] + COSTS["sweeps_per_point"] * T
    return {"master_sweep": sweeps * float(np.sum(d**2 + _feed(d, M))),
            "master_sector": sweeps * float(d.size), "master_step": sweeps,
            "master_setup": float(M * np.sum(d**3)), "master_obs": float(T * M * np.sum(d**2))}


def steady_features(dims, M):
    """Cost features of ``steady_state``: {"steady_cubic", "steady_d2", "steady_sector"} -> value."""
    d = np.asarray(dims, dtype=float)
    return {"steady_cubic": float(np.sum(d**3 + _feed(d, M))), "steady_d2": float(M * np.sum(d**2)),
            "steady_sector": float(d.size)}


def _cost(features):
    return sum(COSTS[k] * v for k, v in features.items())


def _gib(b):
    return f"{b / 2**30:.3g} GiB" if b >= 2**28 else f"{b / 2**20:.3g} MiB"


def _seconds(s):
    if not np.isfinite(s):
        return "unknown"
    if s < 1e-3:
        return f"{s * 1e6:.0f} us"
    if s < 1:
        return f"{s * 1e3:.0f} ms"
    if s < 120:
        return f"{s:.1f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h" if s < 3.6e7 else f"{s / 3600:.2g} h"


class Estimate:
    """Predicted memory and wall time of one run (returned by :func:`estimate`).

    Attributes
    ----------
    chain : Chain
    solver : str            "trajectories", "master" or "steady"
    method : str            the engine that would run: "dense spectral", "krylov (matrix-free)",
                            "sector cascade" or "sector cascade (direct)"
    ntraj, ranks, points : int   (ntraj 0 for the exact solvers; points 0 for steady)
    K0 : int                initial sector
    d_max : int             largest sector dimension among 0..K0
    bytes_per_rank, bytes_total, available : int
    seconds, seconds_setup, seconds_per_traj : float   predicted wall time (seconds_per_traj
                            is 0 for the exact solvers)
    fits : bool             bytes_total <= MEMORY_FRACTION x available
    breakdown : dict        bytes per item (per rank)
    notes : tuple of str
    """

    def __init__(self, chain, solver, method, ntraj, ranks, points, K0, d_max, breakdown,
                 available, seconds_setup, seconds_per_traj, seconds, notes=()):
        self.chain, self.solver, self.method = chain, solver, method
        self.ntraj, self.ranks, self.points, self.K0, self.d_max = ntraj, ranks, points, K0, d_max
        self.breakdown = dict(breakdown)
        self.bytes_per_rank = int(sum(self.breakdown.values()))
        self.bytes_total = self.bytes_per_rank * ranks
        self.available = int(available)
        self.seconds_setup, self.seconds_per_traj, self.seconds = seconds_setup, seconds_per_traj, seconds
        self.fits = self.bytes_total <= MEMORY_FRACTION * self.available
        self.notes = tuple(notes)

    def message(self) -> str:
        """One line: what needs how much, and how much there is."""
        per = (f"{_gib(self.bytes_per_rank)} per rank x {self.ranks} ranks = " if self.ranks > 1 else "")
        verdict = "fits in" if self.fits else "does not fit in"
        return (f"{self.solver} ({self.method}) of {self.chain!r} needs {per}{_gib(self.bytes_total)}, "
                f"which {verdict} {MEMORY_FRACTION:.0%} of the {_gib(self.available)} available; "
                f"predicted time {_seconds(self.seconds)}")

    def check(self):
        """Raise :class:`trajspin.InputError` (one line, with the numbers) if the run does not fit.

        Returns
        -------
        Estimate
            ``self``, so ``estimate(...).check()`` can be chained.
        """
        if not self.fits:
            hint = ("use fewer ranks per node, smaller domains, or the matrix-free engine"
                    if self.solver == "trajectories" else "use fewer or smaller domains, or trajectories")
            raise InputError(self.message() + f"; {hint}")
        return self

    def __str__(self):
        lines = [f"estimate: {self.solver} of {self.chain!r}",
                 f"  method            {self.method}",
                 f"  initial sector    K0 = {self.K0}, largest sector d_K = {self.d_max}"]
        if self.solver == "trajectories":
            lines.append(f"  run               {self.ntraj} trajectories on {self.ranks} rank(s), "
                         f"{self.points} output times")
        elif self.points:
            lines.append(f"  run               {self.points} output times")
        lines.append(f"  memory per rank   {_gib(self.bytes_per_rank)}  ("
                     + ", ".join(f"{k} {_gib(v)}" for k, v in self.breakdown.items()) + ")")
        if self.ranks > 1:
            lines.append(f"  memory, all ranks {_gib(self.bytes_total)}")
        lines.append(f"  available         {_gib(self.available)} (a run may use "
                     f"{MEMORY_FRACTION:.0%}: {_gib(MEMORY_FRACTION * self.available)})")
        if self.solver == "trajectories":
            lines.append(f"  time              {_seconds(self.seconds)} = set-up "
                         f"{_seconds(self.seconds_setup)} + {math.ceil(self.ntraj / self.ranks)} x "
                         f"{_seconds(self.seconds_per_traj)} per trajectory")
        else:
            lines.append(f"  time              {_seconds(self.seconds)}")
        lines.append(f"  fits              {'yes' if self.fits else 'NO'}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def __repr__(self):
        return (f"Estimate(solver={self.solver!r}, method={self.method!r}, bytes_total={self.bytes_total}, "
                f"seconds={self.seconds:.3g}, fits={self.fits})")

    def to_dict(self) -> dict:
        """Plain numbers, for JSON."""
        return {"chain": list(self.chain.sizes), "solver": self.solver, "method": self.method,
                "ntraj": self.ntraj, "ranks": self.ranks, "points": self.points, "K0": self.K0,
                "d_max": self.d_max, "bytes_per_rank": self.bytes_per_rank,
                "bytes_total": self.bytes_total, "available": self.available,
                "seconds": self.seconds, "seconds_setup": self.seconds_setup,
                "seconds_per_traj": self.seconds_per_traj, "fits": self.fits,
                "breakdown": self.breakdown, "notes": list(self.notes)}


def warm_jumps(chain, tmax) -> float:
    """Jumps per trajectory that warm reservoirs add up to ``tmax`` (an upper estimate).

    A reservoir at occupation n > 0 emits and absorbs at rate gamma (2n + 1) <L^dag L>; near
    infinite temperature the collective <L^dag L> of domains c, c+1 averages about S^2 / 5
    with S = N_c + N_{c+1} (local reservoirs: N_i^2 / 5), and a cooler reservoir holds the
    domains nearer their ground state, which the factor w(n) = (2n / (2n + 1))^2 takes in:

        jumps ~ tmax * [sum_c gamma_c (2 n_c + 1) w(n_c) S_c^2 / 5
                        + sum_i kappa_i (2 nl_i + 1) w(nl_i) N_i^2 / 5]

    over the warm reservoirs only (zero-temperature ones add at most K0 jumps).  Measured
    jumps are 1.2-2x fewer on (12, 6, 2) at n = 0.5 and 5, (20, 2) at n = 0.3, (2, 1) at 1e3,
    (6, 3, 2) at 100 (tmax 5-100).
    """
    N = np.asarray(chain.sizes, dtype=float)
    S = N[:-1] + N[1:]
    n, g = np.asarray(chain.n_thermal, float), np.asarray(chain.gamma, float)
    nl, k = np.asarray(chain.n_thermal_local, float), np.asarray(chain.kappa, float)
    shared = np.sum(np.where(n > 0, g * (2 * n + 1) * (2 * n / (2 * n + 1)) ** 2 * S**2 / 5, 0.0))
    local = np.sum(np.where((nl > 0) & (k > 0),
                            k * (2 * nl + 1) * (2 * nl / (2 * nl + 1)) ** 2 * N**2 / 5, 0.0))
    return float(tmax * (shared + local))


def _closed_form_estimate(chain, available) -> Estimate:
    """The two-domain t -> infinity closed form: O(N_2) numbers and time, whatever N_1."""
    n2 = int(chain.sizes[1])
    avail = available_memory() if available is None else int(available)
    breakdown = {"work": 8 * 8 * (n2 + 2), "baseline": BASELINE_BYTES}
    seconds = 1e-3 + 1e-6 * n2           # (10^9, 10^3): 8 ms measured
    return Estimate(chain, "steady", "total-spin decomposition (closed form)", 0, 1, 0,
                    int(chain.sizes[0]), min(chain.sizes) + 1, breakdown, avail, 0.0, 0.0,
                    seconds, ("two domains from eq. (4): O(N_2) at any N_1",))


def _positive_int(value, what):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


def _engine_choice(chain, initial):
    """(engine, table bytes, initial state) from the runs' own choice ``resources.choose_engine``.

    engine is "paper", "krylov" or "general"; (None, None, None) with the reason when the
    choice refuses the chain (e.g. not the paper model and too large for the dense tables):
    the dense model is used then, as a lower bound.
    """
    try:
        init = resolve_initial(chain, initial)
        engine, need = choose_engine(chain, init)
        return engine, int(need), init, None
    except InputError as exc:
        return None, None, None, str(exc).splitlines()[0]


def _initial_sector(chain, initial):
    """(K0, exact): the initial sector, or an upper bound for states spread over sectors.

    Integer items are Dicke states with n_i excitations (exact); "ground" counts 0; any other
    named item (excited, half, up:k, coherent:theta, ...) counts N_i, the most it can hold.
    """
    try:
        return int(sum(check_initial(chain, initial))), True
    except InputError:
        if initial is None or isinstance(initial, (str, np.ndarray)) or len(initial) != chain.M:
            raise
    k0 = 0
    for item, N in zip(initial, chain.sizes):
        if isinstance(item, (int, np.integer)) and not isinstance(item, bool):
            if not 0 <= item <= N:
                raise InputError(f"initial excitation {item} is outside 0..{N}")
            k0 += int(item)
        elif isinstance(item, str):
            k0 += 0 if item.strip().lower() == "ground" else N
        else:
            raise InputError(f"initial items are excitation numbers or names, got {item!r}")
    return k0, False


def estimate(chain, solver="trajectories", ntraj=1000, times=None, initial=None, ranks=1,
             available=None) -> Estimate:
    """Memory and wall time of a run, before it starts.

    Parameters
    ----------
    chain : Chain or sequence of int
        The chain, or its domain sizes N_1 .. N_M.
    solver : {"trajectories", "master", "steady"}
    ntraj : int
        Number of trajectories (``solver="trajectories"`` only).
    times : array_like, shape (T,), optional
        Output times; default a grid of ``DEFAULT_POINTS`` (400) times.  Only their number
        enters the estimate.
    initial : sequence of int, optional
        Initial excitation numbers n_i (default paper eq. 4: (N_1, 0, ..., 0)).
    ranks : int
        MPI ranks (trajectories only; each builds its own tables).
    available : int, optional
        Bytes of memory to compare with (default: ``MemAvailable`` of this machine).

    Returns
    -------
    Estimate

    Raises
    ------
    InputError
        Unknown solver, bad ntraj / ranks / times / initial.  Not raised when the run does
        not fit: call ``.check()`` for that.
    """
    if not isinstance(chain, Chain):
        chain = Chain(chain)
    if solver not in SOLVERS:
        raise InputError(f"solver must be one of {', '.join(SOLVERS)}, got {solver!r}")
    ranks = _positive_int(ranks, "ranks")
    if solver != "trajectories" and ranks != 1:
        raise InputError(f"the exact solver ({solver}) runs in one process; got ranks={ranks}")
    ntraj = _positive_int(ntraj, "ntraj") if solver == "trajectories" else 0
    T = DEFAULT_POINTS if times is None else int(check_times(times).size)
    if solver == "steady":
        T = 0
    if solver == "steady" and steady_closed_form(chain, initial):
        return _closed_form_estimate(chain, available)
    K0, exact_k0 = _initial_sector(chain, initial)
    d = _dims(chain, K0)
    M = chain.M
    d_max = int(d.max())
    avail = available_memory() if available is None else int(available)
    notes = []
    if not exact_k0:
        notes.append(f"initial state spans several sectors: sized for the highest possible, K0 = {K0}")
    if not getattr(chain, "is_paper_model", True):
        notes.append("not the paper model (temperature, local reservoirs or schedule): the general "
                     "engine keeps more tables; memory and time are lower bounds")
    run_bytes = 8 * 8 * T * M
    if solver == "trajectories":
        choice, need, _, declined = _engine_choice(chain, initial)
        setup_f, per_f = trajectory_features(d, M, T)
        if choice == "krylov":
            method = "krylov (matrix-free)"
            breakdown = {"krylov": need, "run": run_bytes, "baseline": BASELINE_BYTES}
            nnz = (1 + 2 * (M - 1)) * d                  # G_K = sum_c L_c^T L_c, row sparsity
            setup = COSTS["krylov_state"] * float(np.sum(d[d >= 2048]))
            if COSTS["krylov_jump"] is None:
                per_traj = float("nan")
                notes.append("time of the matrix-free engine: not calibrated yet (no prediction)")
            else:
                per_traj = (COSTS["krylov_jump"] * float(np.sum(nnz[1:]))
                            + COSTS["krylov_visit"] * (d.size - 1)
                            + COSTS["traj_point"] * T * M + COSTS["traj_const"])
        else:
            method = "dense spectral"
            breakdown = {"tables": table_bytes(chain, K0) if need is None else need,
                         "eigh transient": 8 * EIGH_TRANSIENT * d_max**2,
                         "run": run_bytes, "baseline": BASELINE_BYTES}
            setup, per_traj = _cost(setup_f), _cost(per_f)
            if declined:
                notes.append(f"matrix-free engine declined: {declined}")
        warm = warm_jumps(chain, DEFAULT_TMAX if times is None else float(np.max(times)))
        if warm > 0:
            per_traj += COSTS["warm_jump"] * warm * len(chain.channels().names)
            notes.append(f"warm reservoirs: about {warm:.3g} jumps per trajectory up to "
                         f"t = {DEFAULT_TMAX if times is None else float(np.max(times)):g}")
        else:
            notes.append(f"at most K0 = {K0} jumps per trajectory")
        seconds = setup + math.ceil(ntraj / ranks) * per_traj
        notes.append(f"time assumes {ranks} free core(s)")
    elif solver == "master":
        method = "sector cascade"
        blocks = master_memory_estimate(chain, K0)
        if not chain.is_paper_model or not exact_k0:
            _, _, init, _ = _engine_choice(chain, initial)
            if init is not None:
                blocks = general_memory_estimate(chain, init, max(T, 1))
        breakdown = {"blocks": blocks, "output": 8 * T * (2 * M + K0),
                     "baseline": BASELINE_BYTES}
        setup, per_traj = 0.0, 0.0
        seconds = _cost(master_features(d, M, T))
        notes.append("solver sweeps depend on stiffness and grid span; calibrated on a log grid 1e-4..1e3")
    else:
        method = "sector cascade (direct)"
        breakdown = {"work": steady_memory_estimate(chain, K0), "baseline": BASELINE_BYTES}
        setup, per_traj = 0.0, 0.0
        seconds = _cost(steady_features(d, M))
    return Estimate(chain, solver, method, ntraj, ranks, T, K0, d_max, breakdown, avail, setup,
                    per_traj, seconds, notes)
