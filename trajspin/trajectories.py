"""Quantum trajectories: one at a time, or ensembles with error bars.

Each trajectory is an exact event-driven unravelling of the master equation
with jump operators sqrt(gamma_c) L_c (``trajspin.kernels``).  Trajectory k of
a run with seed s uses a random stream determined by (s, k) alone, and an
ensemble is accumulated over fixed chunks of indices in index order, so the
same (seed, ntraj, chunk) gives bitwise identical sums however the chunks
are scheduled (serially, or over MPI ranks).

Two engines share that contract.  The paper's model (zero temperature, shared reservoirs, no
schedule) started from one coupled Dicke basis state runs on the fast passive / feedback
kernels (``demon_kernel``), which share the no-jump trace of the initial state.  Every other
chain (finite temperature, local reservoirs, reservoir schedules) or initial state (mixtures
over spin-j sectors, coherent states, superpositions, user vectors), and every observable
beyond <J_i^z>, runs on ``general_kernel`` over :class:`GeneralTables`.  A trajectory of the
general engine first draws the component of the initial mixture, then its excitation sector
K with probability ||P_K psi||^2 (``trajspin.initial``), both from its own (seed, index)
stream.
"""
from __future__ import annotations

import time

import numpy as np

from .kernels import (L_CHAN, L_COH, L_F, L_JZ2, L_NBINS, L_NDIST, L_R, L_RES, demon_kernel,
                      ensemble_kernel, general_ensemble_kernel, general_kernel, no_jump_jz,
                      no_jump_jz_pattern, record_ensemble_kernel, rng_init)
from .model import InputError
from .observables import coherence_elements
from .sectors import dark_exact_eigh
from .budget import check_budget
from .progress import get_progress_bar
from .results import EnsembleResult, versions
from .validation import check_memory, check_result, check_times

__all__ = ["SectorTables", "GeneralTables", "Trajectory", "trajectory", "run_trajectories",
           "run_chunk", "DEFAULT_CHUNK", "trajectory_memory_estimate", "RECORD_KINDS",
           "EnsemblePlan", "top_excitation", "observable_extra", "observable_layout"]

RECORD_KINDS = ("none", "summaries", "full")
METHODS = ("auto", "dense", "krylov")

DEFAULT_CHUNK = 256
GENERAL_CALL_SECONDS = 0.2     # general engine: wall time per kernel call (Ctrl-C grain)
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
    if not isinstance(feedback, (Feedback, list, tuple)):
        raise InputError(f"feedback must be a Feedback, a Rule, a rule string or a list of "
                         f"them, got {feedback!r}")
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


# ---------------------------------------------------------------------------- general engine

def _effective(chain, sizes2j):
    """``chain.effective(sizes2j)``, cached on the chain (its sector tables are reused)."""
    cache = chain.__dict__.setdefault("_effective_cache", {})
    key = tuple(int(x) for x in sizes2j)
    if key not in cache:
        cache[key] = chain.effective(key)
    return cache[key]


def _start_vector(basis, part, K):
    """P_K psi (unnormalised) on sector K of ``basis``: product of local amplitudes or a slice."""
    sec = basis.sector(K)
    if isinstance(part, list):
        v = np.ones(sec.dim)
        for i, loc in enumerate(part):
            v = v * loc[sec.states[:, i]]
        return v
    return np.asarray(part, dtype=float)[sec.codes].copy()


def _general_plan(chain, init):
    """[(sizes2j, members, basis, top sector)] per effective chain, and the bytes of the
    general engine's tables: 8 (P sum d_K^2 + (P + 5M + 8) sum d_K) over sectors 0..top."""
    chans = chain.channels()
    P, M = chans.P, chain.M
    sw_all = [init.sector_weights(c) for c in range(len(init.components))]
    plan, est = [], 0
    for s2j, members in init.by_effective_chain().items():
        basis = _effective(chain, s2j).sectors
        if chans.raises:
            top = basis.K_max
        else:
            top = max(int(np.nonzero(sw_all[c] > 0)[0].max()) for _, c in members)
        d = basis.dims[: top + 1].astype(float)
        est += int(8 * (P * np.sum(d**2) + (P + 5 * M + 8) * np.sum(d)))
        plan.append((s2j, members, basis, top))
    return plan, est


def choose_engine(chain, init, names=("jz",), records="none", feedback=None, method="auto"):
    """The one engine choice of an ensemble, and the bytes of that engine's tables.

    "paper": the paper's model from one Dicke basis state, <J_i^z> only or with records or
    feedback (dense spectral tables, ``trajectory_memory_estimate``); "krylov": the same
    without records or feedback when ``method`` asks for it or ``krylov.choose_method``
    prefers it (``krylov_memory_estimate``); "general": everything else (``GeneralTables``).

    Parameters
    ----------
    chain : Chain;  init : trajspin.initial.InitialState;  names : tuple of observable names
    records : {"none", "summaries", "full"};  feedback : Feedback or None
    method : {"auto", "dense", "krylov"}

    Returns
    -------
    (engine, bytes) : (str, int)
    """
    paper = chain.is_paper_model and init.basis_state is not None
    if feedback is not None or records != "none":
        what = "feedback" if feedback is not None else "records"
        if not paper:
            raise InputError(f"{what} needs the paper's model (zero temperature, shared "
                             f"reservoirs, no schedule) from one Dicke basis state; "
                             f"got {chain!r} from {init.label}")
        if len(names) > 1:
            raise InputError(f"{what} keeps <J_i^z> only; drop observables "
                             f"{list(names[1:])} or run without {what}")
    engine = "paper" if paper and len(names) == 1 else "general"
    plain = engine == "paper" and feedback is None and records == "none"
    if method == "krylov" and not plain:
        raise InputError("method='krylov' (matrix-free) covers the paper's model from one Dicke "
                         "basis state, <J_i^z> only, without records or feedback; use "
                         "method='dense' or 'auto'")
    if engine == "general":
        return engine, _general_plan(chain, init)[1]
    K0 = int(sum(init.basis_state))
    if plain and method != "dense":
        from .krylov import choose_method, krylov_memory_estimate
        if method == "krylov" or choose_method(chain, K0) == "krylov":
            return "krylov", krylov_memory_estimate(chain, K0)
    return "paper", trajectory_memory_estimate(chain, K0)


class GeneralTables:
    """Flat arrays of every effective chain and schedule piece a general run needs.

    Built from a chain and a resolved :class:`trajspin.initial.InitialState`; laid out as
    described in ``trajspin.kernels`` (global sectors g = sec_base[b] + K' over the effective
    chains b, eigen-decompositions per schedule piece p).

    Without channels that raise the excitation, the sectors above the highest initial one are
    never visited and are not built; otherwise every sector 0..sum(2 j_i) is.

    Attributes
    ----------
    raises : bool                 some channel raises K (trajectories then stop at the last time)
    K_top : int                   highest true excitation a trajectory can have
    P, C, R : int                 schedule pieces, channels, reservoirs
    nbytes : int                  size of the arrays
    """

    def __init__(self, chain, init):
        chans = chain.channels()
        self.chain, self.init, self.channels = chain, init, chans
        self.raises = chans.raises
        P, C, M = chans.P, chans.C, chain.M
        self.P, self.C, self.R = P, C, chans.n_reservoirs
        plan, est = _general_plan(chain, init)
        sw_all = [init.sector_weights(c) for c in range(len(init.components))]
        check_memory(est, f"the trajectory tables of {chain!r} from {init.label}",
                     "use smaller domains or a simpler initial state")
        dims, lam, V, nexc, lt, la, ut, ua = [], [[] for _ in range(P)], [[] for _ in range(P)], \
            [], [], [], [], []
        coh_rows, coh_cols, coh_amp, coh_len = [], [], [], []
        blk, half_b, exc_off, block_of = [], [], [], {}
        nsec = 0
        for b, (s2j, members, basis, top) in enumerate(plan):
            block_of[s2j] = b
            off = init.excitation_offset(s2j)
            blk.append((nsec, top, int(off.sum())))
            half_b.append(0.5 * np.asarray(s2j, dtype=float))
            exc_off.append(off)
            echans = _effective(chain, s2j).channels()
            for K in range(top + 1):
                dims.append(basis.dim(K))
                for p in range(P):
                    lk, Vk = basis.channel_spectrum(K, echans, p)
                    lam[p].append(lk)
                    V[p].append(Vk.ravel())
                nexc.append(basis.number_diagonals(K))
                tabs = basis.domain_tables(K)
                lt.append(tabs[0]); la.append(tabs[1]); ut.append(tabs[2]); ua.append(tabs[3])
                for i in range(M - 1):
                    r, c, a = coherence_elements(basis, K, i)
                    coh_rows.append(r); coh_cols.append(c); coh_amp.append(a)
                    coh_len.append(r.size)
            nsec += top + 1
        self.dims = np.array(dims, dtype=np.int64)
        self.off_d = np.concatenate([[0], np.cumsum(self.dims)[:-1]]).astype(np.int64)
        self.off_V = np.concatenate([[0], np.cumsum(self.dims**2)[:-1]]).astype(np.int64)
        self.lam_p = np.ascontiguousarray(np.stack([np.concatenate(x) for x in lam]))
        self.V_p = np.ascontiguousarray(np.stack([np.concatenate(x) for x in V]))
        self.nexc = np.ascontiguousarray(np.concatenate(nexc))
        self.low_tgt = np.ascontiguousarray(np.concatenate(lt))
        self.low_amp = np.ascontiguousarray(np.concatenate(la))
        self.up_tgt = np.ascontiguousarray(np.concatenate(ut))
        self.up_amp = np.ascontiguousarray(np.concatenate(ua))
        self.coh_off = np.concatenate([[0], np.cumsum(coh_len)]).astype(np.int64) if coh_len \
            else np.zeros(1, dtype=np.int64)
        cat = (lambda parts, dt: np.concatenate(parts).astype(dt) if parts else np.zeros(0, dt))
        self.coh_rows = cat(coh_rows, np.int64)
        self.coh_cols = cat(coh_cols, np.int64)
        self.coh_amp = cat(coh_amp, np.float64)
        self.blk = np.array(blk, dtype=np.int64).reshape(-1, 3)
        self.half_b = np.ascontiguousarray(np.array(half_b, dtype=float).reshape(-1, M))
        self.exc_off = np.ascontiguousarray(np.array(exc_off, dtype=np.int64).reshape(-1, M))
        self.K_top = int(max(b[1] + b[2] for b in blk))
        # the initial mixture: component -> block, then sector choices with start vectors
        comp_block, weights, choice_off, choice_K, choice_cum, vec_off, vecs = \
            [], [], [0], [], [], [], []
        nvec = 0
        for c, (w, s2j, part) in enumerate(init.components):
            b = block_of[tuple(s2j)]
            basis = plan[b][2]
            top = plan[b][3]
            comp_block.append(b)
            weights.append(w)
            ks, ws = [], []
            for K in np.nonzero(sw_all[c] > 0)[0]:
                K = int(K)
                if K > top:
                    continue
                v = _start_vector(basis, part, K)
                nrm = np.linalg.norm(v)
                if nrm == 0.0:
                    continue
                ks.append(K)
                ws.append(sw_all[c][K])
                vec_off.append(nvec)
                vecs.append(v / nrm)
                nvec += v.size
            if not ks:
                raise InputError(f"initial state component {c} has no weight in any sector")
            choice_K.extend(ks)
            choice_cum.extend(np.cumsum(ws))
            choice_off.append(len(choice_K))
        self.comp_block = np.array(comp_block, dtype=np.int64)
        self.comp_cum = np.cumsum(np.array(weights, dtype=float))
        self.choice_off = np.array(choice_off, dtype=np.int64)
        self.choice_K = np.array(choice_K, dtype=np.int64)
        self.choice_cum = np.array(choice_cum, dtype=float)
        self.vec_off = np.array(vec_off, dtype=np.int64)
        self.vecs = np.concatenate(vecs)
        self.ch_dom = np.ascontiguousarray(chans.domains, dtype=np.int64).reshape(-1, 2)
        self.ch_dir = np.ascontiguousarray(chans.direction, dtype=np.int64)
        self.ch_res = np.ascontiguousarray(chans.reservoir, dtype=np.int64)
        self.rates = np.ascontiguousarray(chans.rates, dtype=float).reshape(P, C)
        self.piece_end = np.concatenate([chans.starts[1:], [np.inf]]).astype(float)
        self.nbytes = sum(getattr(self, k).nbytes for k in vars(self)
                          if isinstance(getattr(self, k), np.ndarray))

    def args(self):
        """The table arguments of ``general_kernel`` (after ``horizon``), in order."""
        return (self.dims, self.off_d, self.off_V, self.lam_p, self.V_p, self.nexc, self.low_tgt,
                self.low_amp, self.up_tgt, self.up_amp, self.coh_off, self.coh_rows,
                self.coh_cols, self.coh_amp, self.blk, self.half_b, self.exc_off,
                self.comp_block, self.comp_cum, self.choice_off, self.choice_K, self.choice_cum,
                self.vec_off, self.vecs, self.ch_dom, self.ch_dir, self.ch_res, self.rates,
                self.piece_end)

    def horizon(self, times):
        """Last time a trajectory is followed: inf when no channel raises K (it ends dark)."""
        return float(times[-1]) if self.raises else np.inf


def _initial_key(init):
    """A content key of a resolved initial state (for caching tables)."""
    import hashlib
    h = hashlib.sha256(init.label.encode())
    for w, s2j, part in init.components:
        h.update(np.float64(w).tobytes())
        h.update(np.asarray(s2j, dtype=np.int64).tobytes())
        for v in (part if isinstance(part, list) else [part]):
            h.update(np.ascontiguousarray(v, dtype=float).tobytes())
    return h.hexdigest()


def _general_tables(chain, init):
    cache = chain.__dict__.setdefault("_general_tables_cache", {})
    key = _initial_key(init)
    if key not in cache:
        cache[key] = GeneralTables(chain, init)
    return cache[key]


def observable_layout(chain, names):
    """Where each observable sits in the kernel's row of F numbers per output time.

    Returns
    -------
    lay : int64 ndarray, shape (8,)   [F, o_jz2, o_ndist, o_coh, o_chan, o_res, nbins, R]
    parts : dict {name: (start, stop, shape per time)} for the observables beyond jz that
            have their own sums (jz_var is formed from jz and jz2)
    """
    M = chain.M
    chans = chain.channels()
    nbins = max(chain.sizes) + 1
    lay = -np.ones(8, dtype=np.int64)
    lay[L_NBINS], lay[L_R] = nbins, chans.n_reservoirs
    F = M
    parts = {}
    spec = [("jz2", L_JZ2, (M,)), ("n_dist", L_NDIST, (M, nbins)), ("coherence", L_COH, (M - 1,)),
            ("channel_rates", L_CHAN, (chans.C,)),
            ("reservoir_rates", L_RES, (chans.n_reservoirs,))]
    for name, slot, shape in spec:
        if name in names or (name == "jz2" and "jz_var" in names):
            size = int(np.prod(shape))
            lay[slot] = F
            parts[name] = (F, F + size, shape)
            F += size
    lay[L_F] = F
    return lay, parts


def top_excitation(chain, init):
    """Highest true excitation K the final counts of an ensemble cover (length K + 1).

    sum(n_i) of a Dicke basis-state initial state on a chain without absorption (K never
    rises above it); sum(N_i) otherwise.  Depends only on the chain and the request, so a
    runner can size a checkpoint's partial before building any table.
    """
    if init.basis_state is not None and not chain.has_absorption:
        return int(sum(init.basis_state))
    return int(sum(chain.sizes))


def observable_extra(chain, observables):
    """``extra`` argument of ``trajspin.runner.ensemble_zero`` for these observables.

    None when only jz is asked for, else (F', with_cross): the extra columns of
    :func:`observable_layout` and whether the jz x jz2 cross sum (for jz_var) is kept.
    """
    from .observables import check_observables
    names = check_observables(observables, solver="trajectories")
    lay, parts = observable_layout(chain, names)
    return (int(lay[L_F]) - chain.M, "jz2" in parts) if parts else None


class EnsemblePlan:
    """Everything an ensemble needs, decided once: engine, tables, observables, partial layout.

    ``chunk(seed, start, stop)`` returns the partial of trajectories start..stop-1,
    ``(jz_sum (T, M), jz_sumsq (T, M), final_counts (K_top + 1,), ndark, njumps)``
    (K_top = :func:`top_excitation`), then the
    chunk's ``JumpRecords`` when records are kept (paper engine only), then, when observables
    beyond jz are asked for, ``(obs_sum (T, F'), obs_sumsq (T, F'), cross (T, M) or (0, M))``
    (F' the extra columns of :func:`observable_layout`; cross sums <J^z><(J^z)^2> for the
    error of jz_var).  Partials add elementwise, so they fold in chunk order.
    """

    def __init__(self, chain, times, initial=None, records="none", feedback=None,
                 observables=("jz",), method="auto"):
        from .initial import resolve_initial
        from .observables import check_observables
        if method not in METHODS:
            raise InputError(f"method must be one of {', '.join(map(repr, METHODS))}, got {method!r}")
        self.chain, self.times = chain, times
        self.names = check_observables(observables, solver="trajectories")
        self.records = check_records(records)
        self.feedback = _check_feedback(chain, feedback)
        self.init = resolve_initial(chain, initial)
        self.engine, need = choose_engine(chain, self.init, self.names, self.records,
                                          self.feedback, method)
        self.T, self.M = times.size, chain.M
        if self.engine == "krylov":
            check_memory(need, f"the Lanczos trajectory path for {chain!r}", "use smaller domains")
            self.n0 = tuple(self.init.basis_state)
            self.K0 = self.K_top = int(sum(self.n0))
            self.lay, self.parts = observable_layout(chain, ())
            self.extra = False
            return
        if self.engine == "paper":
            self.n0 = tuple(self.init.basis_state)
            self.K0, self.pos = _locate(chain, self.n0)
            self.tables = _tables(chain, self.K0)
            self._init_jz = None              # shared no-jump trace, built on the first chunk
            self.K_top = self.K0
            self.lay, self.parts = observable_layout(chain, ())
        else:
            self.tables = _general_tables(chain, self.init)
            self.K_top = top_excitation(chain, self.init)
            self.lay, self.parts = observable_layout(chain, self.names)
            self.horizon = self.tables.horizon(times)
        self.extra = bool(self.parts)

    def label(self):
        """The initial state as result metadata: excitations n_i, or the label of the request."""
        return list(self.n0) if self.engine in ("paper", "krylov") else (
            list(self.init.basis_state) if self.init.basis_state is not None else self.init.label)

    def zero(self):
        """The partial of no trajectories (``trajspin.runner.ensemble_zero``)."""
        from .runner import ensemble_zero
        return ensemble_zero(self.T, self.M, self.K_top, self.records,
                             observable_extra(self.chain, self.names))

    @property
    def init_jz(self):
        """<J_i^z>(t) of the no-jump evolution of the initial basis state (paper engine), (T, M)."""
        if self._init_jz is None:
            self._init_jz = _initial_trace(self.tables, self.pos, self.times, self.feedback)
        return self._init_jz

    def chunk(self, seed, start, stop):
        """The partial of trajectories start..stop-1 (see the class docstring)."""
        if self.engine == "paper":
            return run_chunk(self.chain, self.times, seed, start, stop, self.K0, self.pos,
                             self.init_jz, self.records, self.feedback)
        if self.engine == "krylov":
            from .krylov import run_chunk_krylov
            return run_chunk_krylov(self.chain, self.times, seed, start, stop, list(self.n0))
        T, M, F = self.T, self.M, int(self.lay[L_F])
        tab = self.tables
        obs_sum, obs_sumsq = np.zeros((T, F)), np.zeros((T, F))
        cross = np.zeros((T if "jz2" in self.parts else 0, M))
        counts = np.zeros(self.K_top + 1, dtype=np.int64)
        stats = np.zeros(2, dtype=np.int64)
        # kernel calls of ~GENERAL_CALL_SECONDS each (from 1 trajectory up): Ctrl-C is seen
        # between calls even when warm chains take seconds per trajectory; the sums
        # accumulate in place in index order, so the result is bitwise that of one call
        args = tab.args()
        a, n = start, 1
        while a < stop:
            b = min(a + n, stop)
            t0 = time.perf_counter()
            general_ensemble_kernel(seed, a, b, self.times, self.horizon, *args, self.lay,
                                    obs_sum, obs_sumsq, cross, counts, stats,
                                    np.zeros(tab.R, dtype=np.int64))
            took = time.perf_counter() - t0
            n = int(min(max(1, 2 * n if took < 1e-9 else n * GENERAL_CALL_SECONDS / took), 2 * n, 4096))
            a = b
        part = (np.ascontiguousarray(obs_sum[:, :M]), np.ascontiguousarray(obs_sumsq[:, :M]),
                counts, int(stats[0]), int(stats[1]))
        if self.extra:
            part = part + (np.ascontiguousarray(obs_sum[:, M:]),
                           np.ascontiguousarray(obs_sumsq[:, M:]), cross)
        return part

    def observable_sums(self, total):
        """{array name: sums} of the extra observables in a folded partial (EnsembleResult form)."""
        if not self.extra:
            return None
        k = 6 if self.records != "none" else 5
        s1, s2, cross = total[k], total[k + 1], total[k + 2]
        T, M = self.T, self.M
        out = {}
        for name, (a, b, shape) in self.parts.items():
            out[f"obs_sum__{name}"] = s1[:, a - M:b - M].reshape((T,) + shape)
            out[f"obs_sumsq__{name}"] = s2[:, a - M:b - M].reshape((T,) + shape)
        if cross.shape[0]:
            out["obs_cross__jz_jz2"] = cross
        return out

    def meta(self):
        m = {"initial": self.label(), "initial_label": self.init.label,
             "observables": list(self.names), "chain": self.chain.to_dict(),
             "sampler": {"paper": "exact event-driven (sector spectral decomposition)",
                         "krylov": "event-driven, matrix-free restarted Lanczos (trajspin.krylov)",
                         "general": "exact event-driven, general channels and schedules (sector "
                                    "spectral decomposition per schedule piece)"}[self.engine],
             "engine": self.engine}
        if self.engine == "general":
            m["channels"] = list(self.chain.channels().names)
            m["reservoirs"] = self.chain.channels().reservoir_names()
            m["final_state_at"] = "last output time" if self.tables.raises else "t -> infinity"
        return m

    def result(self, total, n, seed, meta=None):
        """The ensemble result of a folded partial ``total`` of trajectories 0..n-1."""
        meta = dict(meta or {})
        obs = self.observable_sums(total)
        if self.records == "none" and self.feedback is None:
            return EnsembleResult(self.chain, self.times, seed, total[0], total[1], n, total[2],
                                  total[3], total[4], [[0, n]], meta=meta, observables=obs)
        from .demon import RecordedEnsemble
        meta["records"] = self.records
        if self.feedback is not None:
            meta["feedback"] = self.feedback.to_dict()
        return RecordedEnsemble(self.chain, self.times, seed, total[0], total[1], n, total[2],
                                total[3], total[4], [[0, n]],
                                records=total[5] if self.records != "none" else None, meta=meta)


class Trajectory:
    """One quantum trajectory: its jump record and conditional expectations against time.

    Attributes
    ----------
    times : ndarray, shape (T,)
    jz : ndarray, shape (T, M)      <J_i^z> in the conditional state
    observables : dict              conditional value of each requested observable (shapes as
                                    in ``trajspin.observables``, time first); also attributes
    jump_times : ndarray, shape (njumps,), increasing
    jump_channels : ndarray of int, shape (njumps,)   channel k of ``chain.channels()`` of each
                                    jump (for the paper's model, channel c is reservoir c)
    jump_reservoirs : ndarray of int, shape (njumps,)  reservoir of each jump (0..M-2 shared,
                                    M-1+i local reservoir of domain i)
    jump_directions : ndarray of int, shape (njumps,)  -1 a quantum went into the reservoir
                                    (emission, K -> K-1), +1 one came out of it (absorption)
    jump_excitation : ndarray of int, shape (njumps,)   excitation K just before each jump
    jz_before, jz_after : ndarray, shape (njumps, M)   conditional <J_i^z> just before and
                                    just after each jump
    reservoirs_open : ndarray of int, shape (njumps,)   bit mask of open reservoirs after each
                                    jump (feedback; paper engine only, else None)
    quanta : ndarray of int, shape (R,)   NET quanta each reservoir received: emissions minus
                                    absorptions (R = M-1 shared reservoirs, then M local ones
                                    if the chain has any); at T = 0 simply the quanta taken
    dark : bool                     can never jump again, with excitation left
    excitation_left : int           excitation K of the final state
    final_state : ndarray, shape (d_K,)   final conditional state on sector K' of the chain with
                                    domain sizes ``final_sizes`` (2 j_i; equal to N_i for the
                                    symmetric ladders): at t -> infinity when no channel raises
                                    K, else at the last output time
    final_sizes : tuple of int
    seed, index : int
    feedback : Feedback or None
    """

    def __init__(self, chain, times, jz, jump_times, jump_channels, dark, excitation_left,
                 final_state, seed, index, initial, jump_excitation=None, jz_before=None,
                 jz_after=None, reservoirs_open=None, feedback=None, observables=None,
                 final_sizes=None):
        self.chain, self.times, self.jz = chain, times, jz
        self.jump_times, self.jump_channels = jump_times, jump_channels
        self.dark, self.excitation_left = bool(dark), int(excitation_left)
        self.final_state, self.seed, self.index, self.initial = final_state, seed, index, initial
        self.jump_excitation, self.jz_before, self.jz_after = jump_excitation, jz_before, jz_after
        self.reservoirs_open, self.feedback = reservoirs_open, feedback
        self.observables = dict(observables or {})
        self.observables.setdefault("jz", jz)
        self.final_sizes = tuple(chain.sizes) if final_sizes is None else tuple(final_sizes)
        chans = chain.channels()
        self.jump_reservoirs = chans.reservoir[jump_channels]
        self.jump_directions = chans.direction[jump_channels]
        self.quanta = np.bincount(self.jump_reservoirs, weights=-self.jump_directions,
                                  minlength=chans.n_reservoirs).astype(np.int64)

    def __getattr__(self, name):
        obs = self.__dict__.get("observables", {})
        if name in obs:
            return obs[name]
        raise AttributeError(name)

    @property
    def jz_over_n(self):
        return self.jz / np.asarray(self.chain.sizes, dtype=float)

    @property
    def final_jz(self):
        """<J_i^z> of the final conditional state, shape (M,)."""
        eff = _effective(self.chain, self.final_sizes)
        off = (np.asarray(self.chain.sizes) - np.asarray(self.final_sizes)) // 2
        K = self.excitation_left - int(off.sum())
        states = eff.sectors.sector(K).states
        return (self.final_state**2) @ states - 0.5 * np.asarray(self.final_sizes, dtype=float)

    def __str__(self):
        names = self.chain.channels().reservoir_names()
        rec = ", ".join(f"t={t:.4g} {names[r]}{'' if d < 0 else ' (absorbed)'}"
                        for t, r, d in zip(self.jump_times[:20], self.jump_reservoirs[:20],
                                           self.jump_directions[:20]))
        if self.jump_times.size > 20:
            rec += ", ..."
        fb = f"; feedback: {self.feedback}" if self.feedback is not None else ""
        state = "dark" if self.dark else "ground" if self.excitation_left == 0 else "running"
        return (f"Trajectory {self.index} (seed {self.seed}) of {self.chain!r}: "
                f"{len(self.jump_times)} jumps [{rec}]; net quanta per reservoir "
                f"{self.quanta.tolist()}; {state} with excitation {self.excitation_left} left; "
                f"final <J_i^z>/N_i = "
                f"{np.round(self.final_jz / np.asarray(self.chain.sizes), 6).tolist()}{fb}")

    __repr__ = __str__


def trajectory(chain, times, seed=0, index=0, initial=None, feedback=None,
               observables=("jz",), method="auto") -> Trajectory:
    """Sample one quantum trajectory (its stream depends on (seed, index) only).

    Parameters
    ----------
    chain : Chain   any chain: temperature, local reservoirs, schedules
    times : array_like, shape (T,)   output times, increasing, >= 0, units of 1/gamma
    seed, index : int
    initial : anything ``trajspin.initial.resolve_initial`` accepts (default: paper eq. 4)
        Mixtures (k of N spins up) draw their spin-j component, superpositions across
        excitation sectors their sector K (probability ||P_K psi||^2), from the same stream.
    feedback : Feedback, Rule, str or sequence of them, optional
        Rules that open or close reservoirs on the record (``trajspin.feedback``); paper's
        model from a Dicke basis state only.
    observables : name or sequence of names (``trajspin.observables``; not log_negativity)
        Conditional expectations kept as ``.observables[name]`` and attributes.
    method : {"auto", "dense", "krylov"}
        Sector propagation: dense spectral decomposition, or matrix-free Lanczos
        (``trajspin.krylov``; paper model, jz only).  "auto" picks from the cost and memory
        model ``trajspin.krylov.choose_method`` (Krylov above ~600 states per sector).

    Returns
    -------
    Trajectory  (a ``trajspin.krylov.KrylovTrajectory`` with the same fields on the Krylov path)
        With the full jump record (times, channels, reservoirs, directions, excitation,
        conditional <J_i^z> just before and after each jump).
    """
    t = check_times(times)
    seed = _check_seed(seed)
    index = _check_seed(index, "index")
    plan = EnsemblePlan(chain, t, initial, "none", feedback, observables, method)
    if plan.engine == "krylov":
        from .krylov import krylov_trajectory
        return check_result(krylov_trajectory(chain, t, seed, index, list(plan.n0)), "trajectory")
    if plan.engine == "paper":
        return check_result(_paper_trajectory(plan, seed, index), "trajectory")
    return check_result(_general_trajectory(plan, seed, index), "trajectory")


def _paper_trajectory(plan, seed, index):
    chain, t, tab, K0, pos = plan.chain, plan.times, plan.tables, plan.K0, plan.pos
    rules, mask0, lam_p, V_p, rows = _kernel_tables(tab, plan.feedback)
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
                      psi[: tab.dims[Kf]].copy(), seed, index, plan.n0, rec_K[:nj].copy(),
                      rec_b[:nj].copy(), rec_a[:nj].copy(), rec_mask[:nj].copy(), plan.feedback)


def _general_trajectory(plan, seed, index):
    chain, t, tab = plan.chain, plan.times, plan.tables
    M, T, F = chain.M, t.size, int(plan.lay[L_F])
    cap = max(int(tab.K_top), 16)
    while True:
        obs = np.empty((T, F))
        psi = np.empty(int(tab.dims.max()))
        q = np.zeros(tab.R, dtype=np.int64)
        rec_t, rec_c, rec_K = np.empty(cap), np.empty(cap, np.int64), np.empty(cap, np.int64)
        rec_b, rec_a = np.empty((cap, M)), np.empty((cap, M))
        nj, Kf, dark, overflow, b, Kp = general_kernel(
            rng_init(seed, index), t, plan.horizon, *tab.args(), plan.lay, obs, psi, q,
            rec_t, rec_c, rec_K, rec_b, rec_a)
        if not overflow:
            break
        cap *= 4                    # same (seed, index): the same trajectory, more room
    observables = {"jz": obs[:, :M].copy()}
    for name, (a, z, shape) in plan.parts.items():
        observables[name] = obs[:, a:z].reshape((T,) + shape).copy()
    if "jz_var" in plan.names:
        observables["jz_var"] = observables["jz2"] - observables["jz"] ** 2
    observables = {k: v for k, v in observables.items() if k in plan.names}
    s2j = tuple(int(x) for x in np.rint(2 * tab.half_b[b]))
    d = _effective(chain, s2j).sectors.dim(Kp)
    return Trajectory(chain, t, observables["jz"], rec_t[:nj].copy(), rec_c[:nj].copy(), dark,
                      Kf, psi[:d].copy(), seed, index, plan.label(), rec_K[:nj].copy(),
                      rec_b[:nj].copy(), rec_a[:nj].copy(), None, None, observables, s2j)


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
                     chunk=DEFAULT_CHUNK, max_ntraj=None, records="none", feedback=None,
                     observables=("jz",), method="auto", max_seconds=None) -> EnsembleResult:
    """Average ``ntraj`` quantum trajectories (indices 0..ntraj-1) with standard errors.

    Parameters
    ----------
    chain : Chain
        Any chain: finite temperature, local reservoirs, reservoir schedules.
    times : array_like, shape (T,)
    ntraj : int
        Number of trajectories (with ``target_err``: the minimum).
    seed : int
    initial : anything ``trajspin.initial.resolve_initial`` accepts, optional
        Default: paper eq. (4).  Each trajectory draws the component of a mixture and the
        excitation sector of a superposition from its own (seed, index) stream.
    progress : bool
        tqdm progress bar over trajectories.
    target_err : float, optional
        Keep adding chunks until the largest standard error of <J_i^z>/N_i over the grid is
        below this value, or ``max_ntraj`` (default 100 * ntraj) is reached.
    chunk : int
        Trajectories per accumulation chunk; sums are combined chunk by chunk in index
        order, so results are reproducible bitwise for the same chunk size.
    records : {"none", "summaries", "full"} or bool
        Keep every trajectory's record (``trajspin.demon.JumpRecords``; the paper's model from
        a Dicke basis state only): "summaries" the quanta per reservoir, first jump time,
        final excitation and final conditional <J_i^z>; "full" (or True) also every jump.
    feedback : Feedback, Rule, str or sequence of them, optional
        Rules that switch reservoirs on the record (``trajspin.feedback``; paper's model
        only).  Averages with feedback are not given by any master equation.
    observables : name or sequence of names, optional
        ``trajspin.observables`` names except log_negativity; "jz" is always included.
        Each comes back as the ensemble average of the conditional expectation,
        ``result.<name>``, with its standard error ``result.<name>_err`` (jz_var from the
        averaged moments, its error by the delta method).
    method : {"auto", "dense", "krylov"}
        Sector propagation (see :func:`trajectory`); "auto" switches to the matrix-free
        Lanczos path for chains whose sectors are too large to diagonalise.
    max_seconds : float, optional
        Refuse (InputError, before any work) a run that ``trajspin.estimate`` predicts to
        take longer than this (ntraj trajectories on one core).

    Returns
    -------
    EnsembleResult
        ``.jz`` and ``.jz_err`` of shape (T, M), the other observables, ``.ntraj``, ``.seed``,
        ``.final_excitation_counts`` (true excitation K at t -> infinity, or at the last
        output time when a channel raises K); with records or feedback a
        ``trajspin.demon.RecordedEnsemble`` (also ``.records``).
    """
    t = check_times(times)
    seed = _check_seed(seed)
    if isinstance(ntraj, bool) or not isinstance(ntraj, (int, np.integer)) or ntraj < 1:
        raise InputError(f"ntraj must be a positive integer, got {ntraj!r}")
    if isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)) or chunk < 1:
        raise InputError(f"chunk must be a positive integer, got {chunk!r}")
    if target_err is not None and (isinstance(target_err, (bool, np.bool_))
                                   or not isinstance(target_err, (int, float, np.integer,
                                                                  np.floating))
                                   or not (np.isfinite(target_err) and target_err > 0)):
        raise InputError(f"target_err must be a positive number, got {target_err!r}")
    if max_ntraj is not None:
        if (isinstance(max_ntraj, (bool, np.bool_))
                or not isinstance(max_ntraj, (int, np.integer)) or max_ntraj < ntraj):
            raise InputError(f"max_ntraj must be an integer >= ntraj = {ntraj}, got {max_ntraj!r}")
    max_ntraj = int(max_ntraj or (100 * ntraj if target_err else ntraj))
    check_budget(max_seconds, chain, "trajectories", ntraj=ntraj, times=t, initial=initial)
    start_time = time.perf_counter()
    plan = EnsemblePlan(chain, t, initial, records, feedback, observables, method)
    acc = list(plan.zero())
    done = 0
    sizes = np.asarray(chain.sizes, dtype=float)
    with get_progress_bar(progress, max_ntraj if target_err else ntraj, "trajectories", "traj") as bar:
        while True:
            goal = ntraj if done < ntraj else max_ntraj
            if done >= goal:
                break
            stop = min(done + chunk - done % chunk, goal)
            part = plan.chunk(seed, done, stop)
            for k in range(len(acc)):
                acc[k] = acc[k] + part[k]
            bar.update(stop - done)
            done = stop
            if target_err is not None and done >= ntraj and done % chunk == 0:
                res = EnsembleResult(chain, t, seed, acc[0], acc[1], done, acc[2], acc[3], acc[4],
                                     [[0, done]])
                worst = float(np.max(res.jz_err / sizes))
                bar.set_postfix_str(f"max err {worst:.2e}")
                if worst <= target_err:
                    break
    meta = plan.meta()
    meta.update(seed=seed, ntraj=done, ndark=acc[3], njumps_sum=acc[4],
                wall_time=time.perf_counter() - start_time, versions=versions())
    return check_result(plan.result(acc, done, seed, meta), "run_trajectories")
