"""Exact density-matrix evolution in the excitation-sector blocks: the public entry points.

``solve_master`` (against time) and ``steady_state`` (t -> infinity), for every chain and
initial state.  Each request is validated and checked against the memory and time budgets,
then handed to one of three paths:

* the paper model (zero temperature, shared reservoirs only, no schedule) started in one
  coupled Dicke basis state: the sector cascade (``trajspin.exact.cascade``) from that state,
  with <J_i^z>, sector populations and jump rates read in the cascade's eigenbasis;
* two domains of the paper model from eq. (4), t -> infinity, <J_i^z> only: the total-spin
  closed form (``trajspin.exact.two_domain``), O(N_2) at any N_1;
* everything else (finite temperature, local reservoirs, schedules, mixtures and
  superpositions as initial states): one run per effective chain of the initial state
  (``trajspin.initial``, ``trajspin.exact.effective``) — the same cascade at zero
  temperature, packed shift-and-invert Krylov with absorption (``trajspin.exact.packed``) —
  and the weighted observables summed (``trajspin.exact.observers``).

Both solvers run BLAS on one thread (threadpoolctl): the matrices are small
(d_K <~ 100), where threading costs more than it gains, and parallelism in
trajspin comes from MPI ranks.
"""
from __future__ import annotations

import time

import numpy as np
from threadpoolctl import threadpool_limits

from trajspin.exact.cascade import MAX_ORDER, TOL, Cascade, advance, stationary_blocks
from trajspin.exact.effective import evolve_effective, stationary_effective
from trajspin.exact.observers import BlockObserver, add_observations, combine_observations
from trajspin.exact.packed import KRYLOV_TOL
from trajspin.initial import InitialState, resolve_initial
from trajspin.errors import InputError
from trajspin.observables import check_observables
from trajspin.budget import check_budget
from trajspin.progress import get_progress_bar
from trajspin.resources import (general_memory_estimate, master_memory_estimate, steady_closed_form,
                                steady_memory_estimate)
from trajspin.results.base import MasterResult, SteadyStateResult, versions
from trajspin.exact.two_domain import two_domain_steady
from trajspin.validation import check_initial, check_memory, check_result, check_times

__all__ = ["solve_master", "steady_state"]


def _prepare(chain, initial, estimate=master_memory_estimate):
    n0 = check_initial(chain, initial)
    check_memory(estimate(chain, sum(n0)), f"the exact solver for {chain!r}",
                 "use fewer or smaller domains, or the trajectory engine")
    K0, pos = chain.sectors.index_of(n0)
    psi = np.zeros(chain.sectors.dim(K0))
    psi[pos] = 1.0
    return n0, K0, {K0: psi}


def _paper_observer(chain, names, pairs, K0):
    """Observables beyond <J_i^z> of the paper model from its Dicke blocks {K: rho_K}."""
    observer = BlockObserver(chain, chain, np.zeros(chain.M, dtype=np.int64), names, pairs,
                             range(K0 + 1))
    rate0 = chain.channels().rates[0]
    return lambda blocks: combine_observations([observer.observe(blocks)], chain, names, rate0,
                                               K0, pairs)


def _solve_paper(chain, t, init, names, pairs, progress) -> MasterResult:
    """Paper model from one coupled Dicke basis state: the cascade, observed in its eigenbasis."""
    n0, K0, blocks0 = _prepare(chain, init.basis_state)
    start = time.perf_counter()
    cas = Cascade(chain.sectors, chain.channels(), 0, K0)
    Y = cas.to_eigen(blocks0)
    half = 0.5 * np.asarray(chain.sizes, dtype=float)
    jz = np.empty((t.size, chain.M))
    pops = np.empty((t.size, K0 + 1))
    rates = np.empty((t.size, chain.M - 1))
    extra = [n for n in names if n != "jz"]
    observe = _paper_observer(chain, names, pairs, K0) if extra else None
    parts = []
    now, h = 0.0, None
    stats = _new_stats()
    with get_progress_bar(progress, t.size, "master") as bar:
        for k, tk in enumerate(t):
            Y, h = advance(cas, Y, now, tk, h, stats)
            now = tk
            n_mean, pops[k], rates[k] = cas.expectations(Y)
            jz[k] = n_mean - half
            if extra:
                parts.append(observe(cas.to_dicke(Y)))
            bar.update(1)
    # the paper model's channels are exactly the M - 1 emission channels, in reservoir order
    obs = _stack(parts, names) if extra else {"channel_rates": rates, "reservoir_rates": rates}
    meta = {"initial": list(n0), "initial_label": init.label, "observables": list(names),
            "pairs": [list(p) for p in pairs], "solver": _describe(chain, stats),
            "wall_time": time.perf_counter() - start, "versions": versions()}
    return MasterResult(chain, t, jz, pops, meta, jump_rates=rates, observables=obs)


def _steady_paper(chain, init, names, pairs, keep_blocks, progress=False) -> SteadyStateResult:
    """Paper model from one coupled Dicke basis state: the stationary cascade, sector by sector.

    Only one sector's blocks are held at a time unless ``keep_blocks`` or observables beyond
    <J_i^z> ask for all of them (``trajspin.exact.cascade.stationary_blocks``).
    """
    n0, K0, blocks0 = _prepare(chain, init.basis_state, steady_memory_estimate)
    start = time.perf_counter()
    basis = chain.sectors
    jz = -0.5 * np.asarray(chain.sizes, dtype=float)
    pops = np.zeros(K0 + 1)
    extra = [n for n in names if n != "jz"]
    keep = keep_blocks or bool(extra)
    blocks = [None] * (K0 + 1) if keep else None
    with get_progress_bar(progress, K0 + 1, "steady", "sector") as bar:
        for K, rho in stationary_blocks(basis, chain.channels(), 0, blocks0):
            bar.update(1)
            if rho is None:
                continue
            diag = np.diag(rho)
            pops[K] = diag.sum()
            jz += diag @ basis.number_diagonals(K)
            if keep:
                blocks[K] = rho
    if extra:
        present = {K: b for K, b in enumerate(blocks) if b is not None}
        obs = _paper_observer(chain, names, pairs, K0)(present)
        obs = {n: obs[n] for n in names if n != "jz"}
    else:       # the stationary state is dark: every L_c annihilates it, no quanta flow
        obs = {"channel_rates": np.zeros(chain.M - 1), "reservoir_rates": np.zeros(chain.M - 1)}
    meta = {"initial": list(n0), "initial_label": init.label, "observables": list(names),
            "pairs": [list(p) for p in pairs], "solver": "sector cascade (direct)",
            "wall_time": time.perf_counter() - start, "versions": versions()}
    return SteadyStateResult(chain, jz, pops, blocks if keep_blocks else None, meta,
                             observables=obs)


FULL_POPULATIONS_MAX = 10**7     # two-domain closed form: longer population arrays are cut


def _steady_two_domain(chain) -> SteadyStateResult:
    """Two domains from |j_1, j_1>|j_2, -j_2>: t -> infinity through J = J_1 + J_2 alone."""
    start = time.perf_counter()
    jz, pops = two_domain_steady(*chain.sizes)
    K0 = chain.sizes[0]
    if K0 + 1 <= FULL_POPULATIONS_MAX:           # the cascade's shape (K0 + 1,), zeros above
        pops = np.concatenate([pops, np.zeros(K0 + 1 - pops.size)])
    obs = {"channel_rates": np.zeros(1), "reservoir_rates": np.zeros(1)}
    meta = {"initial": [chain.sizes[0], 0], "initial_label": "excited, ground",
            "observables": ["jz"], "pairs": [], "solver": "total-spin decomposition (closed form)",
            "wall_time": time.perf_counter() - start, "versions": versions()}
    return SteadyStateResult(chain, jz, pops, None, meta, observables=obs)


# --------------------------------------------------------------------------- public API
def _stack(rows, names):
    """Stack per-time observable dicts into arrays with the time axis first."""
    keys = [n for n in names if n != "jz"] + ["reservoir_rates", "channel_rates"]
    return {k: np.array([r[k] for r in rows]) for k in dict.fromkeys(keys)}


def _check_pairs(chain, pairs, names):
    """Domain pairs for log_negativity: default neighbours; list of (a, b), a != b, 0-based."""
    if pairs is None:
        return [(i, i + 1) for i in range(chain.M - 1)] if "log_negativity" in names else []
    try:
        out = [tuple(int(x) for x in p) for p in pairs]
    except (TypeError, ValueError):
        raise InputError(f"pairs must be a list of domain pairs (a, b), got {pairs!r}") from None
    for p in out:
        if len(p) != 2 or p[0] == p[1] or not all(0 <= x < chain.M for x in p):
            raise InputError(f"each pair needs two different domains in 0..{chain.M - 1} "
                             f"(0-based), got {p}")
    if not out:
        raise InputError("pairs must not be empty")
    if "log_negativity" not in names:
        raise InputError("pairs only applies to the observable 'log_negativity'")
    return [tuple(sorted(p)) for p in out]


def _resolve(chain, initial, names):
    """InitialState of a request; plain excitation lists keep their historical messages."""
    legacy = isinstance(initial, str)
    if not legacy and initial is not None and not isinstance(initial, (InitialState, np.ndarray)):
        try:
            items = list(initial)
            legacy = len(items) != chain.hilbert_dim and all(
                isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)
                for x in items)
        except TypeError:
            legacy = True
    if legacy:
        check_initial(chain, initial)
    init = resolve_initial(chain, initial)
    if "log_negativity" in names:
        for c in range(len(init.components)):
            if np.count_nonzero(init.sector_weights(c)) > 1:
                raise InputError("log_negativity needs an initial state without superpositions "
                                 "across excitation sectors (the solvers evolve the K-dephased "
                                 "state, which changes the entanglement); use Dicke/'up:k' states")
    return init


def _effective_runs(chain, init):
    """[(eff chain, offset, initial blocks, K range of the observer)] per effective chain."""
    runs = []
    absorbing = chain.channels().raises
    for s2j in init.by_effective_chain():
        eff = chain.effective(s2j)
        blocks0 = init.blocks(s2j)
        K_range = range(eff.sectors.K_max + 1) if absorbing else range(max(blocks0) + 1)
        runs.append((eff, init.excitation_offset(s2j), blocks0, K_range))
    return runs


def _new_stats():
    return {"steps": 0, "rejected": 0, "sweeps": 0, "krylov": 0, "splits": 0,
            "steady_iterations": 0, "lu": 0}


def _describe(chain, stats):
    if chain.channels().raises:
        return (f"shift-and-invert Krylov on packed blocks (tol {KRYLOV_TOL:g}): {stats['lu']} "
                f"sparse LU, {stats['krylov']} solves, {stats['rejected']} rejected windows, "
                f"{stats['splits']} splits")
    return (f"sector cascade, extrapolated implicit Euler (order <= {MAX_ORDER}, tol {TOL:g}): "
            f"{stats['steps']} steps, {stats['rejected']} rejected, {stats['sweeps']} sweeps")


def _general_setup(chain, init, n_times, pairs):
    """Memory check, then (effective runs, channels, highest true sector K) of a general solve."""
    check_memory(general_memory_estimate(chain, init, n_times, pairs),
                 f"the exact solver for {chain!r}",
                 "use fewer or smaller domains, or the trajectory engine")
    runs = _effective_runs(chain, init)
    ch = chain.channels()
    K_hi = (int(sum(chain.sizes)) if ch.raises else
            max(max(b0) + int(np.sum(off)) for _, off, b0, _ in runs))
    return runs, ch, K_hi


def _solve_general(chain, t, init, names, pairs, progress) -> MasterResult:
    start = time.perf_counter()
    runs, ch, K_hi = _general_setup(chain, init, t.size, pairs)
    totals = [None] * t.size           # linear contributions summed over effective chains
    stats = _new_stats()
    with get_progress_bar(progress, t.size * len(runs), "master") as bar:
        for eff, offset, blocks0, K_range in runs:
            observer = BlockObserver(chain, eff, offset, names, pairs, K_range)

            def observe(k, blocks, observer=observer):
                totals[k] = add_observations(totals[k], observer.observe(blocks))
                bar.update(1)

            stats["h"] = None
            evolve_effective(eff, blocks0, t, observe, stats)
    rows = [combine_observations([totals[k]], chain, names, ch.rates[ch.piece(tk)], K_hi, pairs)
            for k, tk in enumerate(t)]
    obs = _stack(rows, names)
    jz = np.array([r["jz"] for r in rows])
    pops = np.array([r["sector_populations"] for r in rows])
    meta = {"initial": (list(init.basis_state) if init.basis_state is not None else init.label),
            "initial_label": init.label, "observables": list(names),
            "pairs": [list(p) for p in pairs], "solver": _describe(chain, stats),
            "effective_chains": [list(r[0].sizes) for r in runs],
            "wall_time": time.perf_counter() - start, "versions": versions()}
    return MasterResult(chain, t, jz, pops, meta,
                        jump_rates=obs["reservoir_rates"][:, :chain.M - 1], observables=obs)


def _steady_general(chain, init, names, pairs, keep_blocks) -> SteadyStateResult:
    start = time.perf_counter()
    runs, ch, K_hi = _general_setup(chain, init, 1, pairs)
    stats = _new_stats()
    parts, kept = [], {}
    for eff, offset, blocks0, K_range in runs:
        stats["h"] = None
        final = stationary_effective(eff, blocks0, stats)
        observer = BlockObserver(chain, eff, offset, names, pairs, sorted(final))
        parts.append(observer.observe(final))
        kept[tuple(eff.sizes)] = final
    row = combine_observations(parts, chain, names, ch.rates[ch.P - 1], K_hi, pairs)
    obs = {k: row[k] for k in dict.fromkeys([n for n in names if n != "jz"]
                                            + ["reservoir_rates", "channel_rates"])}
    blocks = None
    if keep_blocks:
        if list(kept) == [tuple(chain.sizes)]:
            final = kept[tuple(chain.sizes)]
            blocks = [final.get(K) for K in range(max(final) + 1)]
        else:
            blocks = kept
    meta = {"initial": (list(init.basis_state) if init.basis_state is not None else init.label),
            "initial_label": init.label, "observables": list(names),
            "pairs": [list(p) for p in pairs],
            "solver": ("stationary iteration x <- (I - sigma A)^{-1} x" if ch.raises
                       else "sector cascade (direct)")
            + f"; {stats['steady_iterations']} iterations",
            "effective_chains": [list(r[0].sizes) for r in runs],
            "wall_time": time.perf_counter() - start, "versions": versions()}
    return SteadyStateResult(chain, row["jz"], row["sector_populations"], blocks, meta,
                             observables=obs)


@threadpool_limits.wrap(limits=1, user_api="blas")
def solve_master(chain, times, initial=None, observables=("jz",), progress=False,
                 pairs=None, max_seconds=None) -> MasterResult:
    """Exact Lindblad evolution (paper eq. 3 with every reservoir of ``chain``) in sector blocks.

    Parameters
    ----------
    chain : Chain
        Any chain: finite temperature, local reservoirs kappa, schedules.
    times : array_like, shape (T,)
        Strictly increasing, >= 0, in units of 1/gamma.  The initial state is at t = 0.
    initial : optional
        Any request of ``trajspin.initial.resolve_initial`` (per-domain Dicke/excited/ground/
        half/'up:k'/'coherent:theta', a state vector, an InitialState); default paper eq. (4).
    observables : str or sequence of str
        Names from ``trajspin.observables`` ("jz" is always computed).
    progress : bool
        Show a progress bar.
    pairs : sequence of (a, b), optional
        Domain pairs (0-based) for "log_negativity"; default the neighbours (i, i + 1).
    max_seconds : float, optional
        Refuse (InputError, before any work) a run that ``trajspin.estimate`` predicts to
        take longer.

    Returns
    -------
    MasterResult
        ``.jz`` (T, M), ``.sector_populations`` (T, K_hi + 1) (true excitation K),
        ``.jump_rates`` (T, M - 1) net quanta per unit time into shared reservoir c, and each
        requested observable with the shapes of ``trajspin.observables`` (``.channel_rates``
        and ``.reservoir_rates`` always).

    Notes
    -----
    Paper model from a coupled Dicke basis state: the zero-temperature sector cascade.
    Otherwise one run per effective chain of the initial state, weighted sum
    (``trajspin.exact.effective``; see ``trajspin.exact.cascade`` and ``trajspin.exact.packed``
    for the methods and tolerances).
    """
    t = check_times(times)
    check_budget(max_seconds, chain, "master", times=t, initial=initial)
    names = check_observables(observables)
    pairs = _check_pairs(chain, pairs, names)
    init = _resolve(chain, initial, names)
    if chain.is_paper_model and init.basis_state is not None:
        return check_result(_solve_paper(chain, t, init, names, pairs, progress), "solve_master")
    return check_result(_solve_general(chain, t, init, names, pairs, progress), "solve_master")


@threadpool_limits.wrap(limits=1, user_api="blas")
def steady_state(chain, initial=None, observables=("jz",), keep_blocks=False,
                 pairs=None, progress=False, max_seconds=None) -> SteadyStateResult:
    """The t -> infinity state reached from ``initial`` (arguments as in ``solve_master``).

    Two domains of the paper model from eq. (4), <J_i^z> only: the total-spin decomposition
    (``trajspin.two_domain``, O(N_2) for any N_1; for N_1 >= 10^7 ``sector_populations``
    holds only the sectors reached, K = 0 .. min(N_1, N_2)).
    Zero temperature: closed-form cascade (dark subspaces keep what reaches them).
    Absorption: the fixed point of x -> (I - sigma A)^{-1} x from the initial blocks, i.e. the
    projection of the initial state on the stationary states along the conserved quantities
    (``trajspin.exact.packed``).  With a schedule, the last piece's reservoirs act from the
    state at the last switch time.

    Parameters
    ----------
    chain : Chain
    initial : anything ``trajspin.resolve_initial`` accepts (default: paper eq. 4)
    observables : name or sequence of names (``trajspin.OBSERVABLES``)
    keep_blocks : bool
        Also return the blocks rho_K(inf) (``.blocks``).
    pairs : sequence of (a, b), optional
        Domain pairs for ``log_negativity``.
    progress : bool
        Sectors done (paper cascade; a bar after 2 s, lines in a log).
    max_seconds : float, optional
        Refuse, before any work, a run that ``trajspin.estimate`` predicts to take longer.

    Returns
    -------
    SteadyStateResult
        ``.jz`` (M,), ``.sector_populations`` (K_hi + 1,), requested observables without the
        time axis; with ``keep_blocks`` the blocks rho_K(inf) in the coupled Dicke basis: a
        list over K (None where empty) for a single effective chain equal to ``chain``, else
        {sizes2j: {K: rho_K}}.
    """
    names = check_observables(observables)
    pairs = _check_pairs(chain, pairs, names)
    if steady_closed_form(chain, initial, names, keep_blocks):
        res = _steady_two_domain(chain)        # before resolving: no O(N_1) vector
        return check_result(res, "steady_state")
    check_budget(max_seconds, chain, "steady", initial=initial)
    init = _resolve(chain, initial, names)
    if chain.is_paper_model and init.basis_state is not None:
        res = _steady_paper(chain, init, names, pairs, keep_blocks, progress)
        return check_result(res, "steady_state")
    return check_result(_steady_general(chain, init, names, pairs, keep_blocks), "steady_state")
