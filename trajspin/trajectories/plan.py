"""One ensemble, decided once: engine, tables, observables, and the sums of a chunk.

Quantum trajectories: one at a time, or ensembles with error bars.

Each trajectory is an exact event-driven unravelling of the master equation
with jump operators sqrt(gamma_c) L_c (``trajspin.kernels``).  Trajectory k of
a run with seed s uses a random stream determined by (s, k) alone, and an
ensemble is accumulated over fixed chunks of indices in index order, so the
same (seed, ntraj, chunk) gives bitwise identical sums however the chunks
are scheduled (serially, or over MPI ranks).

One kernel (``trajspin.kernels.events.event_kernel``) serves both dense-table engines.  The
paper's model (zero temperature, shared reservoirs, no schedule) started from one coupled
Dicke basis state runs on :class:`SectorTables` (with feedback and jump records), its
trajectories sharing the no-jump trace of the initial state.  Every other chain (finite
temperature, local reservoirs, reservoir schedules) or initial state (mixtures over spin-j
sectors, coherent states, superpositions, user vectors), and every observable beyond
<J_i^z>, runs on :class:`GeneralTables`.  A trajectory on the general tables first draws
the component of the initial mixture, then its excitation sector K with probability
||P_K psi||^2 (``trajspin.initial``), both from its own (seed, index) stream (the paper's one
basis state draws nothing).  The kernel runs in calls of about ``CALL_SECONDS`` of
trajectories (Ctrl-C is seen between calls); the sums accumulate in place in index order,
so they are bitwise those of one call.
"""
from __future__ import annotations

import time

import numpy as np

from trajspin.errors import InputError
from trajspin.initial import resolve_initial
from trajspin.kernels.ensemble import ensemble_kernel
from trajspin.kernels.layout import L_F
from trajspin.observables import check_observables
from trajspin.resources import choose_engine
from trajspin.results.ensemble import EnsembleResult
from trajspin.results.records import RecordedEnsemble
from trajspin.trajectories.feedback import check_feedback
from trajspin.trajectories.lanczos import KrylovRequest, run_request
from trajspin.trajectories.sums import PartialSums
from trajspin.trajectories.tables import (PASSIVE, general_tables_for, initial_trace,
                                          jump_arrays, jump_records, locate_state,
                                          observable_extra, observable_layout,
                                          paper_kernel_tables, summaries, tables_for,
                                          top_excitation)


RECORD_KINDS = ("none", "summaries", "full")


METHODS = ("auto", "dense", "krylov")


DEFAULT_CHUNK = 256


CALL_SECONDS = 0.2     # wall time per kernel call (Ctrl-C grain)


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
    chunk's ``JumpRecords`` when records are kept (paper and Lanczos engines), then, when observables
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
        self.engine, _ = choose_engine(chain, self.init, self.names, self.records,
                                          self.feedback, method)
        self.T, self.M = times.size, chain.M
        if self.engine == "krylov":
            self.n0 = tuple(self.init.basis_state)
            self.request = KrylovRequest(chain, times, list(self.n0), None, self.records,
                                         self.feedback, self.names)
            self.K0 = self.K_top = self.request.K0
            self.lay, self.parts = self.request.lay, self.request.parts
            self.extra = bool(self.parts)
            return
        if self.engine == "paper":
            self.n0 = tuple(self.init.basis_state)
            self.K0, self.pos = locate_state(chain, self.n0)
            self.tables = tables_for(chain, self.K0)
            self.event, self.switching = paper_kernel_tables(self.tables, self.pos, self.feedback)
            self._init_jz = None              # shared no-jump trace, built on the first chunk
            self.K_top = self.K0
            self.lay, self.parts = observable_layout(chain, ())
            self.horizon, self.R = np.inf, chain.M - 1
        else:
            self.tables = general_tables_for(chain, self.init)
            self.event, self.switching = self.tables.event, PASSIVE
            self._init_jz = np.zeros((0, chain.M))
            self.K_top = top_excitation(chain, self.init)
            self.lay, self.parts = observable_layout(chain, self.names)
            self.horizon, self.R = self.tables.horizon(times), self.tables.R
        self.extra = bool(self.parts)
        self.grain = Grain()

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
            self._init_jz = initial_trace(self.event, self.switching, self.times)
        return self._init_jz

    def chunk(self, seed, start, stop):
        """The partial of trajectories start..stop-1 (see the class docstring)."""
        if self.engine == "krylov":
            return run_request(self.request, seed, start, stop)
        T, M, F = self.T, self.M, int(self.lay[L_F])
        sums = (np.zeros((T, F)), np.zeros((T, F)),
                np.zeros((T if "jz2" in self.parts else 0, M)),
                np.zeros(self.K_top + 1, dtype=np.int64), np.zeros(2, dtype=np.int64),
                np.zeros(self.R, dtype=np.int64))
        n = stop - start
        keep, full = self.records != "none", self.records == "full"
        summ = summaries(n if keep else 0, M, self.R)
        # with records, the kernel keeps every jump time (the first one is a summary)
        rec = jump_arrays(n * max(self.K0, 1) if keep else 0, M, full)

        def call(a, b):
            cursor = int(summ.njumps[:a - start].sum()) if keep else 0
            ensemble_kernel(seed, a, b, self.event, self.switching, self.times, self.horizon,
                            self.init_jz, self.lay, *sums,
                            type(summ)(*(x[a - start:b - start] for x in summ)),
                            type(rec)(*(x[cursor:] for x in rec)))

        self.grain.run(call, start, stop)
        obs_sum, obs_sumsq, cross, counts, stats = sums[:5]
        records = jump_records(M, start, stop, summ, rec, full) if keep else None
        return PartialSums.from_rows(obs_sum, obs_sumsq, cross, counts, stats[0], stats[1], M,
                                     records)

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


class Grain:
    """Kernel calls of about ``CALL_SECONDS`` each (from 1 trajectory up, remembered between
    chunks): Ctrl-C is seen between calls even when a trajectory takes seconds."""

    def __init__(self):
        self.n = 1

    def run(self, call, start, stop):
        """call(a, b) over consecutive slices [a, b) of start..stop-1, in index order."""
        a = start
        while a < stop:
            b = min(a + self.n, stop)
            t0 = time.perf_counter()
            call(a, b)
            took = time.perf_counter() - t0
            n = 2 * self.n if took < 1e-9 else self.n * CALL_SECONDS / took
            self.n = int(min(max(1, n), 2 * self.n, 4096))
            a = b


def run_chunk(chain, times, seed, start, stop, K0, pos, init_jz=None, records="none",
              feedback=None):
    """The :class:`PartialSums` of trajectories start..stop-1 (paper engine).

    From basis state ``pos`` of sector ``K0``; ``init_jz`` (``tables.initial_trace``) may be
    passed to share it between chunks.  With ``records`` "summaries" or "full" they carry the
    chunk's :class:`trajspin.results.JumpRecords`.  ``feedback``: a checked
    :class:`trajspin.trajectories.feedback.Feedback` or None.
    """
    n0 = chain.sectors.sector(K0).states[pos]
    plan = EnsemblePlan(chain, times, tuple(int(x) for x in n0), records, feedback,
                        method="dense")
    if init_jz is not None:
        plan._init_jz = init_jz
    return plan.chunk(seed, start, stop)
