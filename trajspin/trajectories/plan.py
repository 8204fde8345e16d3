"""One ensemble, decided once: engine, tables, observables, and the sums of a chunk.

Quantum trajectories: one at a time, or ensembles with error bars.

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

from trajspin.errors import InputError
from trajspin.initial import resolve_initial
from trajspin.kernels.events import (L_F, ensemble_kernel, general_ensemble_kernel,
                                     no_jump_jz_pattern, record_ensemble_kernel)
from trajspin.observables import check_observables
from trajspin.resources import choose_engine
from trajspin.results.ensemble import EnsembleResult
from trajspin.results.records import JumpRecords, RecordedEnsemble
from trajspin.trajectories.feedback import Feedback, Rule
from trajspin.trajectories.lanczos import run_chunk_krylov
from trajspin.trajectories.sums import PartialSums
from trajspin.trajectories.tables import (general_tables_for, kernel_tables, locate_state,
                                          observable_extra, observable_layout, tables_for,
                                          top_excitation)
from trajspin.validation import check_memory


RECORD_KINDS = ("none", "summaries", "full")


METHODS = ("auto", "dense", "krylov")


DEFAULT_CHUNK = 256


GENERAL_CALL_SECONDS = 0.2     # general engine: wall time per kernel call (Ctrl-C grain)


def check_feedback(chain, feedback):
    """None, or a checked Feedback (text rules accepted)."""
    if feedback is None:
        return None
    if isinstance(feedback, (str, Rule)):
        feedback = [feedback]
    if not isinstance(feedback, (Feedback, list, tuple)):
        raise InputError(f"feedback must be a Feedback, a Rule, a rule string or a list of "
                         f"them, got {feedback!r}")
    if not isinstance(feedback, Feedback):
        feedback = Feedback(feedback)
    return feedback.check(chain)


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
        if method not in METHODS:
            raise InputError(f"method must be one of {', '.join(map(repr, METHODS))}, got {method!r}")
        self.chain, self.times = chain, times
        self.names = check_observables(observables, solver="trajectories")
        self.records = check_records(records)
        self.feedback = check_feedback(chain, feedback)
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
            self.K0, self.pos = locate_state(chain, self.n0)
            self.tables = tables_for(chain, self.K0)
            self._init_jz = None              # shared no-jump trace, built on the first chunk
            self.K_top = self.K0
            self.lay, self.parts = observable_layout(chain, ())
        else:
            self.tables = general_tables_for(chain, self.init)
            self.K_top = top_excitation(chain, self.init)
            self.lay, self.parts = observable_layout(chain, self.names)
            self.horizon = self.tables.horizon(times)
        self.extra = bool(self.parts)

    def label(self):
        """The initial state as result metadata: excitations n_i, or the label of the request."""
        return list(self.n0) if self.engine in ("paper", "krylov") else (
            list(self.init.basis_state) if self.init.basis_state is not None else self.init.label)

    def zero(self):
        """The sums of no trajectories (:meth:`PartialSums.zero`)."""
        return PartialSums.zero(self.T, self.M, self.K_top, self.records,
                                observable_extra(self.chain, self.names))

    @property
    def init_jz(self):
        """<J_i^z>(t) of the no-jump evolution of the initial basis state (paper engine), (T, M)."""
        if self._init_jz is None:
            self._init_jz = initial_trace(self.tables, self.pos, self.times, self.feedback)
        return self._init_jz

    def chunk(self, seed, start, stop):
        """The partial of trajectories start..stop-1 (see the class docstring)."""
        if self.engine == "paper":
            return run_chunk(self.chain, self.times, seed, start, stop, self.K0, self.pos,
                             self.init_jz, self.records, self.feedback)
        if self.engine == "krylov":
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
        extra = {}
        if self.extra:
            extra = dict(obs_sum=np.ascontiguousarray(obs_sum[:, M:]),
                         obs_sumsq=np.ascontiguousarray(obs_sumsq[:, M:]), cross=cross)
        return PartialSums(np.ascontiguousarray(obs_sum[:, :M]),
                           np.ascontiguousarray(obs_sumsq[:, :M]), counts, int(stats[0]),
                           int(stats[1]), **extra)

    def observable_sums(self, total):
        """{array name: sums} of the extra observables in a folded partial (EnsembleResult form)."""
        if not self.extra:
            return None
        s1, s2, cross = total.obs_sum, total.obs_sumsq, total.cross
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
                         "krylov": "event-driven, matrix-free restarted Lanczos (trajspin.trajectories.lanczos)",
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
            return EnsembleResult(self.chain, self.times, seed, total.jz_sum, total.jz_sumsq, n,
                                  total.final_counts, total.ndark, total.njumps, [[0, n]],
                                  meta=meta, observables=obs)
        meta["records"] = self.records
        if self.feedback is not None:
            meta["feedback"] = self.feedback.to_dict()
        return RecordedEnsemble(self.chain, self.times, seed, total.jz_sum, total.jz_sumsq, n,
                                total.final_counts, total.ndark, total.njumps, [[0, n]],
                                records=total.records, meta=meta)


def initial_trace(tab, pos, times, feedback):
    """The shared no-jump trace of the initial state under the reservoirs open at t = 0."""
    if feedback is None:
        return tab.initial_trace(pos, times)
    rules, mask0, lam_p, V_p, rows = kernel_tables(tab, feedback)
    if mask0 == (1 << tab.gamma.size) - 1:
        return tab.initial_trace(pos, times)
    return no_jump_jz_pattern(tab.K0, pos, times, tab.dims, tab.off_d, tab.off_V, lam_p, V_p,
                              int(rows[mask0]), tab.nexc, tab.half)


def run_chunk(chain, times, seed, start, stop, K0, pos, init_jz=None, records="none",
              feedback=None):
    """The :class:`PartialSums` of trajectories start..stop-1 (paper engine).

    ``init_jz`` (from ``SectorTables.initial_trace``) may be passed to share it between chunks.
    With ``records`` "summaries" or "full" they carry the chunk's
    :class:`trajspin.results.JumpRecords`.  ``feedback``: a checked
    :class:`trajspin.trajectories.feedback.Feedback` or None.
    """
    tab = tables_for(chain, K0)
    if init_jz is None:
        init_jz = initial_trace(tab, pos, times, feedback)
    T, M = times.size, chain.M
    jz_sum = np.zeros((T, M))
    jz_sumsq = np.zeros((T, M))
    counts = np.zeros(K0 + 1, dtype=np.int64)
    stats = np.zeros(2, dtype=np.int64)
    if records == "none" and feedback is None:
        ensemble_kernel(seed, start, stop, K0, pos, times, *tab.args(), init_jz, jz_sum, jz_sumsq,
                        counts, stats)
        return PartialSums(jz_sum, jz_sumsq, counts, int(stats[0]), int(stats[1]))
    rules, mask0, lam_p, V_p, rows = kernel_tables(tab, feedback)
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
    if records == "none":
        return PartialSums(jz_sum, jz_sumsq, counts, int(stats[0]), int(stats[1]))
    rec = JumpRecords(M, np.arange(start, stop, dtype=np.int64), njumps, k_final, dark, final_jz,
                      quanta, final_mask, first,
                      **(dict(jump_time=jt[:used], jump_reservoir=jc[:used],
                              jump_excitation=jK[:used], jz_before=jb[:used], jz_after=ja[:used],
                              reservoirs_open=jm[:used]) if full else {}))
    return PartialSums(jz_sum, jz_sumsq, counts, int(stats[0]), int(stats[1]), rec)
