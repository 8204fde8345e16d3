"""Batch ensembles: the coordinator that hands out chunks, folds them and writes the result.

The chunks and the order of folding are in ``runners.chunks``, the checkpoint files in
``runners.checkpoints``.  Nothing here imports MPI: the coordinator talks to its workers
through a *transport* object (``trajspin.runners.mpi.MPITransport``, or
:class:`SerialTransport` for one process).  Nothing here knows the physics either, beyond
:class:`EnsembleTask`, the adapter that calls :class:`trajspin.trajectories.EnsemblePlan`.
"""
from __future__ import annotations

import math
import os
import sys
import time

import numpy as np

from trajspin.errors import InputError
from trajspin.initial import resolve_initial
from trajspin.observables import check_observables
from trajspin.outputs import ReservedOutput, check_output_path, remove_temporaries
from trajspin.progress import get_progress_bar
from trajspin.resources import check_records_memory, choose_engine
from trajspin.results.base import versions
from trajspin.results.ensemble import EnsembleResult
from trajspin.results.io import load
from trajspin.runners.checkpoints import (CheckpointLock, default_checkpoint_path,
                                          read_checkpoint, write_checkpoint)
from trajspin.runners.chunks import ChunkPlan, OrderedSums
from trajspin.trajectories.plan import EnsemblePlan
from trajspin.trajectories.tables import (observable_extra, observable_rows_bytes,
                                          top_excitation)
from trajspin.trajectories.sums import PartialSums
from trajspin.validation import check_memory, check_result, check_seed, check_times

__all__ = ["EnsembleTask", "SerialTransport", "Coordinator", "RunPlan", "prepare_run", "run_root",
           "stop_test_for", "LOOKAHEAD"]

LOOKAHEAD = 3          # chunks a worker holds: one running, two queued (see Coordinator)


# ---------------------------------------------------------------------------- chunks


# ---------------------------------------------------------------------------- checkpoints


# ---------------------------------------------------------------------------- the work

class EnsembleTask:
    """Chunks of trajectories of one chain, grid, seed and initial state (the only physics here).

    Parameters
    ----------
    chain : Chain                 any chain (temperature, local reservoirs, schedules)
    times : ndarray, shape (T,)
    seed : int
    initial : anything ``trajspin.initial.resolve_initial`` accepts (a list of per-domain
              items such as ints, "excited", "half", "up:k", "coherent:theta"; a state vector;
              None for paper eq. 4)
    records : {"none", "summaries", "full"}   (paper's model from a Dicke basis state only)
    observables : name or sequence of names (``trajspin.observables``, not log_negativity)

    ``compute(start, stop)`` returns the partial of
    :class:`trajspin.trajectories.EnsemblePlan`:
    ``(jz_sum (T, M), jz_sumsq (T, M), final_counts (K_top + 1,), ndark, njumps)``, followed by
    the chunk's :class:`trajspin.results.JumpRecords` when ``records`` is "summaries" or
    "full" (folded in chunk order, so the records come out in trajectory-index order), and by
    the sums of the other observables when some are asked for.  Tables and the no-jump trace
    of the initial state are built once per process.
    """

    def __init__(self, chain, times, seed, initial=None, records="none", observables=("jz",),
                 method="auto"):
        self.chain, self.times, self.seed = chain, check_times(times), check_seed(seed)
        self.plan = EnsemblePlan(chain, self.times, initial, records, None, observables, method)
        self.initial = self.plan.label()
        self.records = self.plan.records
        self.observables = self.plan.names
        self.K0 = self.plan.K_top
        self.sizes = np.asarray(chain.sizes, dtype=float)

    def zero(self):
        return self.plan.zero()

    def compute(self, start, stop):
        return self.plan.chunk(self.seed, start, stop)

    def result(self, total, n, meta=None):
        full = self.plan.meta()
        full.update(meta or {})
        return check_result(self.plan.result(total, n, self.seed, full), "the MPI ensemble")

    def max_error(self, total, n):
        """max_t,i of the standard error of <J_i^z>/N_i, exactly as ``run_trajectories`` tests it."""
        res = EnsembleResult(self.chain, self.times, self.seed, total.jz_sum, total.jz_sumsq, n,
                             total.final_counts, total.ndark, total.njumps, [[0, n]])
        return float(np.max(res.jz_err / self.sizes))


# ---------------------------------------------------------------------------- transports

class SerialTransport:
    """One process, no workers: the coordinator computes every chunk itself."""

    size = 1
    workers = ()

    def assign(self, rank, items):
        raise RuntimeError("a serial run has no workers")

    def poll(self, timeout=0.0):
        return []

    def finish(self, rank):
        raise RuntimeError("a serial run has no workers")


class Coordinator:
    """Hands out chunks, folds their partials in order, writes checkpoints, drives the bar.

    Transport protocol (root side):

    - ``size``: number of ranks, ``workers``: the other ranks;
    - ``assign(rank, [(c, start, stop), ...])``: give chunks to a worker;
    - ``poll(timeout)``: messages that arrived, waiting up to ``timeout`` s for the first:
      ``("result", rank, c, partial)`` or ``("bye", rank, {"busy": s, "idle": s, "cpu": s})``;
    - ``finish(rank)``: tell a worker to stop (it answers "bye" after its last result).

    Chunks are handed out in increasing order.  Each worker holds up to ``lookahead`` chunks and
    gets a new one for every result, so it keeps computing while the root is busy with a chunk
    of its own (``root_computes``) or with a checkpoint: the root answers only between its own
    chunks.  With one chunk in reserve, workers still waited 23-32% of the time on a loaded
    2-core machine (the root's answer came a little after the reserve ran out); two in reserve
    (the default 3) made the waiting negligible.  The cost is at the end: when the chunks run
    out, a worker may still hold ``lookahead`` of them while others are idle.
    """

    def __init__(self, task, plan, sums, transport, *, root_computes=True, lookahead=LOOKAHEAD,
                 checkpoint=None, bar=None):
        self.task, self.plan, self.sums, self.transport = task, plan, sums, transport
        self.root_computes = root_computes or not transport.workers
        self.lookahead = max(1, int(lookahead))
        self.checkpoint = checkpoint           # callable(sums) -> None, or None
        self.bar = bar
        # per rank: wall seconds computing, wall seconds waiting (root: for messages), CPU seconds
        self.stats = {0: {"busy": 0.0, "idle": 0.0, "cpu": 0.0}}
        self.messages = 0
        self.service_time = 0.0          # root seconds spent receiving, folding and handing out
        self.chunks_by_rank = {0: 0}

    def _todo(self):
        skip = set(self.sums.pending)
        for c in range(self.sums.nfolded, self.plan.nchunks):
            if c not in skip:
                yield c

    def run(self, interval=None):
        """Run to completion (or the stop test); returns ``stats``: per rank busy, idle, cpu seconds."""
        tr, sums = self.transport, self.sums
        todo = self._todo()
        inflight = {r: 0 for r in tr.workers}
        self.chunks_by_rank.update({r: 0 for r in tr.workers})
        self.stats.update({r: {"busy": 0.0, "idle": 0.0, "cpu": 0.0} for r in tr.workers})
        mine = self.stats[0]
        last_ckpt = time.monotonic()

        def take():
            if sums.complete:
                return None
            c = next(todo, None)
            return None if c is None else (c,) + tuple(self.plan.bounds(c))

        def refill(r):
            items = []
            while inflight[r] + len(items) < self.lookahead:
                item = take()
                if item is None:
                    break
                items.append(item)
            if items:
                inflight[r] += len(items)
                tr.assign(r, items)

        def handle(msgs):
            for m in msgs:
                self.messages += 1
                if m[0] == "result":
                    _, r, c, part = m
                    inflight[r] -= 1
                    self.chunks_by_rank[r] += 1
                    self._deliver(c, part)
                    refill(r)

        for r in tr.workers:
            refill(r)
        while not sums.complete:
            t0 = time.perf_counter()
            handle(tr.poll(0.0))
            self.service_time += time.perf_counter() - t0
            if interval is not None and self.checkpoint is not None \
                    and time.monotonic() - last_ckpt >= interval and not sums.complete:
                self.checkpoint(sums)
                last_ckpt = time.monotonic()
            if sums.complete:
                break
            item = take() if self.root_computes else None
            if item is not None:
                c, start, stop = item
                t0, c0 = time.perf_counter(), time.process_time()
                part = self.task.compute(start, stop)
                t1 = time.perf_counter()
                mine["busy"] += t1 - t0
                mine["cpu"] += time.process_time() - c0
                self.chunks_by_rank[0] += 1
                self._deliver(c, part)
                self.service_time += time.perf_counter() - t1
            else:
                wait = 0.5
                if interval is not None:
                    wait = max(0.0, min(wait, interval - (time.monotonic() - last_ckpt)))
                t0 = time.perf_counter()
                msgs = tr.poll(wait)
                mine["idle"] += time.perf_counter() - t0
                t0 = time.perf_counter()
                handle(msgs)
                self.service_time += time.perf_counter() - t0
        # stop the workers; collect their last results (dropped after a stop test) and byes
        waiting = set(tr.workers)
        for r in tr.workers:
            tr.finish(r)
        while waiting:
            for m in tr.poll(0.5):
                self.messages += 1
                if m[0] == "bye":
                    self.stats[m[1]] = dict(m[2])
                    waiting.discard(m[1])
        return self.stats

    def _deliver(self, c, part):
        start, stop = self.plan.bounds(c)
        self.sums.add(c, part)
        if self.bar is not None:
            self.bar.update(stop - start)


# ---------------------------------------------------------------------------- the whole run

class RunPlan:
    """Everything the root decided before any work starts (see :func:`prepare_run`).

    ``resume_state`` is None or ``(OrderedSums, info)`` read from the checkpoint.
    """

    def __init__(self, config, out, checkpoint_path, lock, resume_state, done, engine=None,
                 reserved=None):
        self.config, self.out, self.checkpoint_path = config, out, checkpoint_path
        self.lock, self.resume_state, self.done = lock, resume_state, done
        self.engine, self.reserved = engine, reserved

    @property
    def method(self):
        """The ``method=`` that makes every rank run ``engine`` (resolved once, on the root)."""
        return {"krylov": "krylov", "paper": "dense", "general": "dense"}.get(self.engine, "auto")

    def physics(self):
        """The config's physics plus the engine: a resume must run the same engine."""
        return dict(self.config.physics(), engine=self.engine)

    def close(self, remove_lock=True):
        if self.reserved is not None:
            self.reserved.discard()
            self.reserved = None
        if self.lock is not None:
            self.lock.release(remove=remove_lock)
            self.lock = None


def prepare_run(config, out, resume=False, ranks_per_node=1, force=False):
    """Check everything on the root before work starts; lock and read the checkpoint.

    Raises InputError (one line) for an unusable output path (not a regular file; an existing
    result of another config unless ``force``), a checkpoint that exists without ``resume``,
    or a foreign or corrupt checkpoint.  ``done`` is True when ``resume`` finds the result
    file already written by this config.  The engine is resolved here, once
    (``RunPlan.engine``, ``RunPlan.method`` for every rank), and is part of the checkpoint's
    physics; the result's temporary file is created here (``RunPlan.reserved``).
    """
    out = os.fspath(out)
    check_output_path(out, "--out", overwrite=True)     # existing results: decided below
    ckpt = config.checkpoint_path or default_checkpoint_path(out)
    check_output_path(ckpt, "checkpoint.path", overwrite=True)
    if os.path.abspath(ckpt) == os.path.abspath(out):
        raise InputError("checkpoint.path must differ from the result file --out")
    chain = config.chain()
    init = resolve_initial(chain, config.initial_request())
    K0 = top_excitation(chain, init)      # sizes the tables and the final counts
    names = check_observables(config.observables, solver="trajectories")
    engine, need = choose_engine(chain, init, names, config.records, None, config.method)
    need += observable_rows_bytes(chain, names, config.times.size)
    check_memory(ranks_per_node * need,
                 f"the {engine} engine's tables of {chain!r} on {ranks_per_node} rank(s) of "
                 f"this node",
                 "use fewer ranks per node or smaller domains")
    check_records_memory(chain, K0, config.max_ntraj, config.records)
    ours = False
    if os.path.exists(out):
        try:
            old = load(out)
            ours = old.meta.get("config_hash") == config.config_hash()
            if resume and ours and old.meta.get("complete") and not os.path.exists(ckpt):
                return RunPlan(config, out, ckpt, None, None, done=True, engine=engine)
        except (InputError, KeyError, ValueError):
            pass
        if not (force or ours):         # a result of this same config may be redone
            raise InputError(f"--out: {out} exists and was not written by this config; pass "
                             f"--force to replace it")
    lock = CheckpointLock(ckpt + ".lock").acquire()
    try:
        state = None
        if os.path.exists(ckpt):
            if not resume:
                raise InputError(f"checkpoint {ckpt} exists from an earlier run: pass --resume to "
                                 f"continue it, or delete it to start over")
            zero = PartialSums.zero(config.times.size, len(config.sizes), K0, config.records,
                                    observable_extra(chain, config.observables))
            state = read_checkpoint(ckpt, dict(config.physics(), engine=engine), zero)
        remove_temporaries(out, dead_only=False)
        reserved = ReservedOutput(out, "--out", overwrite=True)
    except BaseException:
        lock.release()
        raise
    return RunPlan(config, out, ckpt, lock, state, done=False, engine=engine, reserved=reserved)


def stop_test_for(task, plan, target_err):
    """The serial run's early stop: at chunk ends >= ntraj that are multiples of chunk."""
    if target_err is None:
        return None

    def test(c, total):
        if not plan.is_check_point(c):
            return False
        stop = plan.bounds(c)[1]
        return task.max_error(total, stop) <= target_err
    return test


def run_root(plan, task, transport, *, progress=True, quiet=False, root_computes=None,
             lookahead=LOOKAHEAD, setup_time=0.0, extra_meta=None, out=sys.stdout):
    """Run the ensemble of ``plan`` as the coordinating rank, write the result file.

    Returns
    -------
    EnsembleResult
        Also saved to ``plan.out``; meta carries the config, versions, rank count, wall time,
        busy time per rank and the parallel efficiency sum(busy) / (P * wall).
    """
    cfg = plan.config
    chunks = ChunkPlan(cfg.ntraj, cfg.chunk, cfg.max_ntraj)
    physics = plan.physics()
    stop_test = stop_test_for(task, chunks, cfg.target_err)
    info = {"wall_time_total": 0.0, "segments": 0, "ntraj_done": 0}
    if plan.resume_state:
        sums, info = plan.resume_state
        sums.stop_test = stop_test
        sums.recheck()
    else:
        sums = OrderedSums(task.zero(), chunks.nchunks, stop_test)
    resumed_from = _done_count(chunks, sums)
    P = transport.size
    if root_computes is None:
        root_computes = P <= 16
    goal = cfg.max_ntraj if cfg.target_err is not None else cfg.ntraj
    say = (lambda text: print(text, file=out, flush=True)) if quiet or not progress else (lambda text: None)
    if resumed_from:
        print(f"resuming from {plan.checkpoint_path}: {resumed_from} of {goal} trajectories done",
              file=out, flush=True)
    stats = {"written": 0, "seconds": 0.0, "bytes": 0}

    def save_checkpoint(s):
        t0 = time.perf_counter()
        done_now = _done_count(chunks, s)
        seg = time.monotonic() - start
        stats["bytes"] = write_checkpoint(plan.checkpoint_path, physics, s, {
            "wall_time_total": info.get("wall_time_total", 0.0) + seg,
            "segments": info.get("segments", 0) + 1, "ntraj_done": done_now})
        stats["written"] += 1
        stats["seconds"] += time.perf_counter() - t0
        rate = (done_now - resumed_from) / max(seg, 1e-9)
        eta = (goal - done_now) / rate if rate > 0 else math.inf
        say(f"[{_clock(seg)}] {done_now}/{goal} trajectories ({100 * done_now / goal:.1f}%), "
            f"{rate:.4g} traj/s, eta {_clock(eta)}; checkpoint {plan.checkpoint_path}")

    with get_progress_bar(progress and not quiet, goal, "trajectories", "traj",
                          initial=resumed_from) as bar:
        coord = Coordinator(task, chunks, sums, transport, root_computes=root_computes,
                            lookahead=lookahead, checkpoint=save_checkpoint, bar=bar)
        start = time.monotonic()
        per_rank = coord.run(cfg.checkpoint_interval)
    wall = time.monotonic() - start
    n = chunks.bounds(sums.nfolded - 1)[1]
    busy_list = [float(per_rank[r]["busy"]) for r in range(P)]
    efficiency = sum(busy_list) / (P * wall) if wall > 0 else 1.0
    meta = {
        "initial": cfg.initial_text(), "seed": cfg.seed, "ntraj": n, "ndark": sums.total.ndark,
        "njumps_sum": sums.total.njumps, "wall_time": wall + setup_time, "versions": versions(),
        "runner": "trajspin.runners (mpi_scripts/run_ensemble.py)",
        "config": cfg.to_dict(), "config_hash": cfg.config_hash(), "complete": True,
        "chunk": cfg.chunk, "records": cfg.records, "mpi_ranks": P,
        "root_computes": bool(coord.root_computes), "work_wall_time": wall, "setup_time": setup_time,
        "wall_time_total": info.get("wall_time_total", 0.0) + wall + setup_time,
        "segments": info.get("segments", 0) + 1, "resumed_from_ntraj": resumed_from,
        "busy_time_per_rank": busy_list,
        "idle_time_per_rank": [float(per_rank[r]["idle"]) for r in range(P)],
        "cpu_time_per_rank": [float(per_rank[r]["cpu"]) for r in range(P)],
        "chunks_per_rank": [coord.chunks_by_rank.get(r, 0) for r in range(P)],
        "parallel_efficiency": efficiency, "messages": coord.messages,
        "root_service_time": coord.service_time,
        "checkpoint": {"path": plan.checkpoint_path, "interval_seconds": cfg.checkpoint_interval,
                       "written": stats["written"], "seconds": stats["seconds"],
                       "bytes": stats["bytes"]},
    }
    if cfg.target_err is not None:
        meta["target_err"] = cfg.target_err
        meta["max_err"] = task.max_error(sums.total, n)
        meta["target_reached"] = bool(sums.stopped)
    meta.update(extra_meta or {})
    result = task.result(sums.total, n, meta=meta)
    try:
        result.save(plan.reserved)
        plan.reserved = None
    except (OSError, InputError) as exc:      # keep the work next to the checkpoint, say where
        keep = plan.checkpoint_path + ".result.npz"
        result.save(keep, overwrite=True)
        plan.close()
        raise InputError(f"could not write {plan.out} ({exc}); the result is kept in {keep}") \
            from None
    for path in (plan.checkpoint_path, plan.checkpoint_path + ".tmp"):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    plan.close()
    return result


def _done_count(chunks, sums):
    done = chunks.bounds(sums.nfolded - 1)[1] if sums.nfolded else 0
    for c in sums.pending:
        a, b = chunks.bounds(c)
        done += b - a
    return done


def _clock(seconds):
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"
