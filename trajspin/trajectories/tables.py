"""Flat arrays the trajectory kernels read: the paper tables and the general tables.

``SectorTables``: spectra, eigenvectors and jump tables of sectors 0..K0 of the paper model
(plus the no-jump spectra of reservoir patterns for feedback).  ``GeneralTables``: every
effective chain and schedule piece of a general run.  Both are built once per chain (and
initial state) and kept in bounded caches.
"""
from __future__ import annotations

import hashlib
from collections import namedtuple

import numpy as np

from trajspin.caches import BoundedCache
from trajspin.errors import InputError
from trajspin.kernels.ensemble import no_jump_trace
from trajspin.kernels.layout import L_CHAN, L_COH, L_F, L_JZ2, L_NBINS, L_NDIST, L_R, L_RES
from trajspin.kernels.rules import NO_RULES
from trajspin.observables import check_observables, coherence_elements
from trajspin.resources import general_plan, trajectory_memory_estimate
from trajspin.results.records import JumpRecords
from trajspin.sectors import dark_exact_eigh, dense_generator
from trajspin.validation import check_memory

#: The tables ``trajspin.kernels.events.event_kernel`` reads (layout in that module's docstring).
EventTables = namedtuple("EventTables", [
    "dims", "off_d", "off_V", "lam_p", "V_p", "nexc", "low_tgt", "low_amp", "up_tgt", "up_amp",
    "coh_off", "coh_rows", "coh_cols", "coh_amp", "blk", "half_b", "exc_off", "comp_block",
    "comp_w", "choice_off", "choice_K", "choice_w", "vec_off", "vecs", "ch_dom", "ch_dir",
    "ch_res", "rates", "piece_end", "draw_initial"])
#: Feedback for the kernel: rules float64 (R, 5), mask0 int (open reservoirs at t = 0; -1: all),
#: mask_rows int64 (2^C,) table row of each reachable mask, or (0,): row = schedule piece.
Switching = namedtuple("Switching", ["rules", "mask0", "mask_rows"])
#: Jump records: time, chan, K (J,), jzb, jza (J, M), mask (J,); J = 0 keeps none.
JumpArrays = namedtuple("JumpArrays", ["time", "chan", "K", "jzb", "jza", "mask"])
#: Per-trajectory summaries: njumps, k_final, dark, final_jz (n, M), quanta (n, R), final_mask.
Summaries = namedtuple("Summaries", ["njumps", "k_final", "dark", "final_jz", "quanta",
                                     "final_mask"])
PASSIVE = Switching(NO_RULES, -1, np.zeros(0, dtype=np.int64))


def jump_arrays(J, M, with_jz=True):
    """Empty :data:`JumpArrays` with room for J jumps (<J^z> before / after only ``with_jz``)."""
    return JumpArrays(np.empty(J), np.empty(J, dtype=np.int64), np.empty(J, dtype=np.int64),
                      np.empty((J if with_jz else 0, M)), np.empty((J if with_jz else 0, M)),
                      np.empty(J, dtype=np.int64))


def summaries(n, M, R):
    """Zeroed :data:`Summaries` of n trajectories (n = 0: none kept)."""
    return Summaries(np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64),
                     np.zeros(n, dtype=np.bool_), np.zeros((n, M)),
                     np.zeros((n, R), dtype=np.int64), np.zeros(n, dtype=np.int64))


def jump_records(M, start, stop, summ, rec, full, first=None):
    """The :class:`JumpRecords` of trajectories start..stop-1 from their summaries and packed
    jumps (trajectory n's after those of 0..n-1; their times are kept even for summaries,
    unless ``first``, each trajectory's first jump time (inf: none), is given)."""
    used = int(summ.njumps.sum())
    if first is None:
        offsets = np.concatenate([[0], np.cumsum(summ.njumps)])
        has = summ.njumps > 0
        first = np.full(stop - start, np.inf)
        first[has] = rec.time[offsets[:-1][has]]
    jumps = {}
    if full:
        jumps = dict(jump_time=rec.time[:used], jump_reservoir=rec.chan[:used],
                     jump_excitation=rec.K[:used], jz_before=rec.jzb[:used],
                     jz_after=rec.jza[:used], reservoirs_open=rec.mask[:used])
    return JumpRecords(M, np.arange(start, stop, dtype=np.int64), summ.njumps, summ.k_final,
                       summ.dark, summ.final_jz, summ.quanta, summ.final_mask, first, **jumps)


class SectorTables:
    """Flat arrays of sectors 0..K0 for the kernels (built once per chain and initial sector).

    Attributes
    ----------
    dims, off_d, off_V : int64 arrays, shape (K0 + 1,)
    lam : float64, shape (sum d_K,)
    V : float64, shape (sum d_K^2,)   row-major eigenvectors of each G_K
    nexc : float64, shape (sum d_K, M)
    low_tgt : int64, shape (sum d_K, M);  low_amp : float64, same shape
        Position in sector K-1 of J_i^-|s> and its amplitude (-1 / 0: none)
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
        # jump_target[c, s, side]: J_{c+side}^-|s>; domain i < M-1 is side 0 of channel i,
        # the last domain side 1 of the last channel
        self.low_tgt = np.ascontiguousarray(np.concatenate(
            [np.column_stack([s.jump_target[:, :, 0].T, s.jump_target[-1, :, 1]]) for s in secs]),
            dtype=np.int64)
        self.low_amp = np.ascontiguousarray(np.concatenate(
            [np.column_stack([s.jump_amp[:, :, 0].T, s.jump_amp[-1, :, 1]]) for s in secs]),
            dtype=float)
        self.gamma = np.ascontiguousarray(chain.gamma, dtype=float)
        self.half = 0.5 * np.asarray(chain.sizes, dtype=float)
        self.chain_sectors = basis
        self._patterns, self._stacks = {}, {}     # per reservoir mask / mask set

    def event_tables(self, pos, lam_p=None, V_p=None) -> EventTables:
        """The paper chain as :data:`EventTables`: one block, one piece, channel c lowering
        domains c and c+1 at rate gamma_c, starting from basis state ``pos`` of sector K0.

        lam_p, V_p : stacked reservoir patterns (feedback), default the passive spectrum
        (views, no copy).  The small arrays are made here, not kept.
        """
        M, C, K0 = self.half.size, self.gamma.size, self.K0
        i64 = np.int64
        start = np.zeros(int(self.dims[K0]))
        start[pos] = 1.0
        return EventTables(
            self.dims, self.off_d, self.off_V,
            self.lam.reshape(1, -1) if lam_p is None else lam_p,
            self.V.reshape(1, -1) if V_p is None else V_p,
            self.nexc, self.low_tgt, self.low_amp, np.zeros((0, M), i64), np.zeros((0, M)),
            np.zeros(1, i64), np.zeros(0, i64), np.zeros(0, i64), np.zeros(0),
            np.array([[0, K0, 0]], dtype=i64), self.half.reshape(1, M), np.zeros((1, M), i64),
            np.zeros(1, i64), np.ones(1), np.array([0, 1], dtype=i64), np.array([K0], dtype=i64),
            np.ones(1), np.zeros(1, i64), start,
            np.ascontiguousarray(np.column_stack([np.arange(C), np.arange(1, M)]), dtype=i64),
            -np.ones(C, dtype=i64), np.arange(C, dtype=i64), self.gamma.reshape(1, C),
            np.array([np.inf]), False)

    def pattern(self, mask):
        """(lam, V) flattened like ``self.lam`` / ``self.V`` for G_K = sum_{c in mask} gamma_c L_c^T L_c.

        Built on first use and cached per mask; the all-open mask is the passive spectrum itself.
        """
        C = self.gamma.size
        if mask == (1 << C) - 1:
            return self.lam, self.V
        cache = self._patterns
        if mask not in cache:
            basis = self.chain_sectors
            lams, Vs = [], []
            for K in range(self.K0 + 1):
                ops = basis.jump_terms(K, mask)
                lam, V = dark_exact_eigh(dense_generator(int(self.dims[K]), ops), ops)
                lams.append(lam)
                Vs.append(V.ravel())
            cache[mask] = (np.concatenate(lams), np.concatenate(Vs))
        return cache[mask]

    def pattern_tables(self, masks):
        """Stacked tables of reservoir patterns for ``event_kernel`` (feedback).

        Returns
        -------
        lam_p : ndarray, shape (P, sum d_K);  V_p : ndarray, shape (P, sum d_K^2)
        rows : int64 ndarray, shape (2^(M-1),)   row of each mask (-1: not built)
        """
        masks = tuple(sorted(set(int(m) for m in masks)))
        cache = self._stacks
        if masks not in cache:
            parts = [self.pattern(m) for m in masks]
            rows = -np.ones(1 << self.gamma.size, dtype=np.int64)
            rows[list(masks)] = np.arange(len(masks))
            cache[masks] = (np.ascontiguousarray(np.stack([p[0] for p in parts])),
                            np.ascontiguousarray(np.stack([p[1] for p in parts])), rows)
        return cache[masks]


_PAPER_TABLES = BoundedCache(4)
_GENERAL_TABLES = BoundedCache(4)


def tables_for(chain, K0) -> SectorTables:
    """The paper tables of sectors 0..K0 of ``chain`` (the 4 latest are kept)."""
    return _PAPER_TABLES.get((chain, int(K0)), lambda: SectorTables(chain, K0))


def locate_state(chain, n0):
    """(K0, position) of the initial basis state, after checking the tables fit in memory."""
    check_memory(trajectory_memory_estimate(chain, sum(n0)), f"the trajectory tables of {chain!r}",
                 "use smaller domains")
    return chain.sectors.index_of(n0)


def paper_kernel_tables(tab, pos, feedback):
    """(:data:`EventTables`, :data:`Switching`) of the paper tables ``tab`` from basis state
    ``pos`` of sector K0, with ``feedback`` (a checked Feedback) or passive (all reservoirs
    open, the passive spectrum: no stacked copy)."""
    C = tab.gamma.size
    if feedback is None:
        return tab.event_tables(pos), Switching(NO_RULES, (1 << C) - 1, np.zeros(0, np.int64))
    lam_p, V_p, rows = tab.pattern_tables(feedback.reachable_masks(C))
    return (tab.event_tables(pos, lam_p, V_p),
            Switching(feedback.spec(), feedback.initial_mask(C), rows))


def initial_trace(event, switching, times):
    """<J_i^z>(t) of the no-jump evolution of the (one) initial choice under the reservoirs
    open at t = 0, shape (T, M): what every trajectory shows until its first jump."""
    row = int(switching.mask_rows[switching.mask0]) if switching.mask_rows.size else 0
    return no_jump_trace(event, row, times)


def start_vector(basis, part, K):
    """P_K psi (unnormalised) on sector K of ``basis``: product of local amplitudes or a slice."""
    sec = basis.sector(K)
    if isinstance(part, list):
        v = np.ones(sec.dim)
        for i, loc in enumerate(part):
            v = v * loc[sec.states[:, i]]
        return v
    return np.asarray(part, dtype=float)[sec.codes].copy()


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
        plan, est = general_plan(chain, init)
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
            echans = chain.effective(s2j).channels()
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
        comp_block, weights, choice_off, choice_K, choice_w, vec_off, vecs = \
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
                v = start_vector(basis, part, K)
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
            choice_w.extend(ws)
            choice_off.append(len(choice_K))
        self.comp_block = np.array(comp_block, dtype=np.int64)
        self.comp_w = np.array(weights, dtype=float)
        self.choice_off = np.array(choice_off, dtype=np.int64)
        self.choice_K = np.array(choice_K, dtype=np.int64)
        self.choice_w = np.array(choice_w, dtype=float)
        self.vec_off = np.array(vec_off, dtype=np.int64)
        self.vecs = np.concatenate(vecs)
        self.ch_dom = np.ascontiguousarray(chans.domains, dtype=np.int64).reshape(-1, 2)
        self.ch_dir = np.ascontiguousarray(chans.direction, dtype=np.int64)
        self.ch_res = np.ascontiguousarray(chans.reservoir, dtype=np.int64)
        self.rates = np.ascontiguousarray(chans.rates, dtype=float).reshape(P, C)
        self.piece_end = np.concatenate([chans.starts[1:], [np.inf]]).astype(float)
        self.nbytes = sum(getattr(self, k).nbytes for k in vars(self)
                          if isinstance(getattr(self, k), np.ndarray))
        self.draw_initial = True       # component and sector drawn even when there is one choice
        self.event = EventTables(*(getattr(self, f) for f in EventTables._fields))

    def horizon(self, times):
        """Last time a trajectory is followed: inf when no channel raises K (it ends dark)."""
        return float(times[-1]) if self.raises else np.inf


def _initial_key(init):
    """A content key of a resolved initial state (for caching tables)."""
    h = hashlib.sha256(init.label.encode())
    for w, s2j, part in init.components:
        h.update(np.float64(w).tobytes())
        h.update(np.asarray(s2j, dtype=np.int64).tobytes())
        for v in (part if isinstance(part, list) else [part]):
            h.update(np.ascontiguousarray(v, dtype=float).tobytes())
    return h.hexdigest()


def general_tables_for(chain, init) -> GeneralTables:
    """The general tables of ``chain`` and a resolved initial state (the 4 latest are kept)."""
    return _GENERAL_TABLES.get((chain, _initial_key(init)), lambda: GeneralTables(chain, init))


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


def observable_rows_bytes(chain, names, T):
    """Bytes of the observable rows of one trajectory and of a chunk's sums: 32 T F (the
    rows, their sums, squares and <J^z> x <(J^z)^2> cross sums; F of
    :func:`observable_layout`; ``n_dist`` alone is M (max N_i + 1) numbers per time)."""
    lay, _ = observable_layout(chain, names)
    return 32 * int(T) * int(lay[L_F])


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
    """``extra`` argument of ``trajspin.trajectories.PartialSums.zero`` for these observables.

    None when only jz is asked for, else (F', with_cross): the extra columns of
    :func:`observable_layout` and whether the jz x jz2 cross sum (for jz_var) is kept.
    """
    names = check_observables(observables, solver="trajectories")
    lay, parts = observable_layout(chain, names)
    return (int(lay[L_F]) - chain.M, "jz2" in parts) if parts else None
