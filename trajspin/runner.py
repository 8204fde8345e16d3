"""Batch ensembles: fixed chunks, scheduled anywhere, folded in order, checkpointed.

An ensemble of trajectories 0..n-1 is cut into the same fixed chunks that
:func:`trajspin.trajectories.run_trajectories` accumulates (boundaries at the
multiples of ``chunk``, at ``ntraj`` and at ``max_ntraj``).  Chunk partial sums
may be computed on any rank in any order; the coordinator folds them strictly in
chunk order,

    S_0 = 0,   S_{c+1} = S_c + s_c       (elementwise, the same additions as the serial loop),

so the sums are bitwise identical to the serial run for any number of ranks
and after any kill and resume.  The folded prefix S_c (and chunks finished
beyond it) is written periodically to a checkpoint file, atomically.

Nothing here imports MPI: the coordinator talks to its workers through a
*transport* object (``trajspin.mpi_backend.MPITransport``, or
:class:`SerialTransport` for one process).  Nothing here knows the physics
either, beyond :class:`EnsembleTask`, the adapter that calls
:func:`trajspin.trajectories.run_chunk`.
"""
from __future__ import annotations

import errno
import hashlib
import io
import json
import math
import os
import sys
import time

import numpy as np

from .model import InputError
from .outputs import fsync_folder

__all__ = ["ChunkPlan", "OrderedSums", "EnsembleTask", "SerialTransport", "Coordinator",
           "RunPlan", "prepare_run", "run_root", "write_checkpoint", "read_checkpoint",
           "default_checkpoint_path", "LOOKAHEAD"]

CHECKPOINT_FORMAT = "trajspin-ensemble-checkpoint"
CHECKPOINT_VERSION = 1
LOOKAHEAD = 3          # chunks a worker holds: one running, two queued (see Coordinator)


# ---------------------------------------------------------------------------- chunks

class ChunkPlan:
    """The fixed accumulation chunks of ``run_trajectories(ntraj, chunk, max_ntraj)``.

    Chunk c covers trajectory indices ``bounds(c) = (start, stop)``; the boundaries are
    the multiples of ``chunk`` below ``max_ntraj``, together with ``ntraj`` and ``max_ntraj``
    (``max_ntraj == ntraj`` without a target error).

    Parameters
    ----------
    ntraj, chunk : int
    max_ntraj : int, optional
    """

    def __init__(self, ntraj, chunk, max_ntraj=None):
        self.ntraj, self.chunk = int(ntraj), int(chunk)
        self.max_ntraj = self.ntraj if max_ntraj is None else int(max_ntraj)
        if self.ntraj < 1 or self.chunk < 1 or self.max_ntraj < self.ntraj:
            raise ValueError(f"bad chunk plan ntraj={ntraj}, chunk={chunk}, max_ntraj={max_ntraj}")
        self.n_first = -(-self.ntraj // self.chunk)               # chunks of [0, ntraj)
        self._low = self.ntraj // self.chunk
        extra = -(-self.max_ntraj // self.chunk) - self._low if self.max_ntraj > self.ntraj else 0
        self.nchunks = self.n_first + extra

    def bounds(self, c):
        """(start, stop) of chunk c."""
        if not 0 <= c < self.nchunks:
            raise IndexError(f"chunk {c} outside 0..{self.nchunks - 1}")
        k = self.chunk
        if c < self.n_first:
            return c * k, min((c + 1) * k, self.ntraj)
        j = c - self.n_first
        start = self.ntraj if j == 0 else (self._low + j) * k
        return start, min((self._low + j + 1) * k, self.max_ntraj)

    def is_check_point(self, c):
        """True after chunk c where the serial run tests its target error."""
        stop = self.bounds(c)[1]
        return stop >= self.ntraj and stop % self.chunk == 0

    def to_dict(self):
        return {"ntraj": self.ntraj, "chunk": self.chunk, "max_ntraj": self.max_ntraj,
                "nchunks": self.nchunks}


def _fold(total, part):
    """total + part, elementwise, as the serial loop does (``acc[k] = acc[k] + part[k]``)."""
    return tuple(a + b for a, b in zip(total, part))


class OrderedSums:
    """Chunk partial sums, folded strictly in chunk order.

    A partial is a tuple of arrays and ints (here ``run_chunk``'s
    ``(jz_sum, jz_sumsq, final_counts, ndark, njumps)``).  Chunks that arrive out of order wait
    in ``pending`` until every earlier chunk has been folded.

    Parameters
    ----------
    zero : tuple
        The partial of no trajectories.
    nchunks : int
    stop_test : callable(c, total) -> bool, optional
        Called after folding chunk c; True ends the ensemble there (later chunks are dropped).
    """

    def __init__(self, zero, nchunks, stop_test=None, total=None, nfolded=0, pending=None):
        self.zero = tuple(zero)
        self.nchunks = int(nchunks)
        self.stop_test = stop_test
        self.total = tuple(zero) if total is None else tuple(total)
        self.nfolded = int(nfolded)
        self.pending = dict(pending or {})
        self.stopped = False

    @property
    def complete(self):
        return self.stopped or self.nfolded >= self.nchunks

    def has(self, c):
        return c < self.nfolded or c in self.pending

    def add(self, c, part):
        """Store chunk c's partial and fold every chunk that is now next in order."""
        if self.complete:
            return
        if self.has(c):
            raise RuntimeError(f"chunk {c} was delivered twice")
        self.pending[c] = tuple(part)
        while not self.stopped and self.nfolded in self.pending:
            self.total = _fold(self.total, self.pending.pop(self.nfolded))
            self.nfolded += 1
            if self.stop_test is not None and self.stop_test(self.nfolded - 1, self.total):
                self.stopped = True
                self.pending.clear()

    def recheck(self):
        """Apply the stop test to the folded prefix (after loading a checkpoint)."""
        if self.nfolded and self.stop_test is not None and not self.stopped:
            if self.stop_test(self.nfolded - 1, self.total):
                self.stopped = True
                self.pending.clear()


# ---------------------------------------------------------------------------- checkpoints

def default_checkpoint_path(out):
    """``result.npz`` -> ``result.ckpt.npz`` (same folder)."""
    out = os.fspath(out)
    stem = out[:-4] if out.endswith(".npz") else out
    return stem + ".ckpt.npz"


def _digest(header_text, arrays):
    h = hashlib.sha256(header_text.encode())
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(name.encode())
        h.update(str(a.dtype).encode())
        h.update(repr(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def write_checkpoint(path, physics, sums, info=None):
    """Write the folded prefix and the pending chunks of ``sums`` to ``path`` atomically.

    The file is written as ``path + ".tmp"``, flushed to disk, then renamed over ``path``:
    a kill at any moment leaves either the previous or the new checkpoint.

    Parameters
    ----------
    path : str
    physics : dict
        What the sums depend on (``EnsembleConfig.physics()``); a resume must match it.
    sums : OrderedSums
    info : dict, optional
        JSON-ready bookkeeping (wall time so far, number of segments, ...).

    Returns
    -------
    int
        Size of the file in bytes.
    """
    path = os.fspath(path)
    arrays = {}
    for k, v in enumerate(sums.total):
        if _is_records(v):
            arrays.update(v.to_arrays(f"total_{k}__"))
        else:
            arrays[f"total_{k}"] = np.asarray(v)
    ids = sorted(sums.pending)
    arrays["pending_ids"] = np.asarray(ids, dtype=np.int64)
    for k, v in enumerate(sums.zero):
        if _is_records(v):            # chunk records: one set of arrays per pending chunk
            for c in ids:
                arrays.update(sums.pending[c][k].to_arrays(f"pending_{k}_{c}__"))
            continue
        shape = np.shape(v)
        stack = [np.asarray(sums.pending[c][k]) for c in ids]
        arrays[f"pending_{k}"] = (np.stack(stack) if stack
                                  else np.zeros((0,) + shape, dtype=np.asarray(v).dtype))
    header = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "physics": physics,
              "nchunks": sums.nchunks, "nfolded": sums.nfolded, "ncomponents": len(sums.zero),
              "info": info or {}}
    text = json.dumps(header, sort_keys=True)
    header["digest"] = _digest(text, arrays)
    tmp = path + ".tmp"
    buf = io.BytesIO()
    np.savez(buf, header=np.array(json.dumps(header, sort_keys=True)), **arrays)
    data = buf.getvalue()
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_folder(os.path.dirname(os.path.abspath(path)))
    return len(data)


def read_checkpoint(path, physics, zero, stop_test=None):
    """Load a checkpoint written by :func:`write_checkpoint` for the same ``physics``.

    Returns
    -------
    sums : OrderedSums
    info : dict

    Raises
    ------
    InputError
        One line: the file is unreadable, damaged, not a checkpoint, or from a different config
        (naming the first differing setting).
    """
    path = os.fspath(path)
    fix = f"delete {path} to start over"
    try:
        with np.load(path, allow_pickle=False) as f:
            header = json.loads(str(f["header"]))
            arrays = {k: f[k] for k in f.files if k != "header"}
    except Exception as exc:                      # zip, CRC, JSON, npy format errors alike
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"checkpoint {path} is corrupt or unreadable ({reason}); {fix}") from None
    if not isinstance(header, dict) or header.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"{path} is not a trajspin ensemble checkpoint; {fix}")
    if header.get("version") != CHECKPOINT_VERSION:
        raise InputError(f"checkpoint {path} has format version {header.get('version')}, this "
                         f"trajspin writes version {CHECKPOINT_VERSION}; {fix}")
    digest = header.pop("digest", None)
    if digest != _digest(json.dumps(header, sort_keys=True), arrays):
        raise InputError(f"checkpoint {path} is corrupt (checksum mismatch); {fix}")
    theirs = header.get("physics", {})
    if theirs != physics:
        keys = [k for k in list(physics) + [k for k in theirs if k not in physics]
                if theirs.get(k) != physics.get(k)]
        k = keys[0]
        more = f" and {len(keys) - 1} more" if len(keys) > 1 else ""
        raise InputError(f"checkpoint {path} belongs to a different config: {k} is "
                         f"{_short(theirs.get(k))} there but {_short(physics.get(k))} here{more}; "
                         f"{fix} or set checkpoint.path")
    try:
        nzero = len(zero)
        if header["ncomponents"] != nzero:
            raise ValueError("component count")
        total = []
        for k, z in enumerate(zero):
            if _is_records(z):
                total.append(type(z).from_arrays(arrays, z.M, f"total_{k}__"))
                continue
            a = arrays[f"total_{k}"]
            if a.shape != np.shape(z):
                raise ValueError(f"total_{k} has shape {a.shape}")
            total.append(int(a) if isinstance(z, (int, np.integer)) else a)
        ids = [int(c) for c in arrays["pending_ids"]]
        pending = {}
        for j, c in enumerate(ids):
            part = []
            for k, z in enumerate(zero):
                if _is_records(z):
                    part.append(type(z).from_arrays(arrays, z.M, f"pending_{k}_{c}__"))
                    continue
                a = arrays[f"pending_{k}"][j]
                if a.shape != np.shape(z):
                    raise ValueError(f"pending_{k} has shape {a.shape}")
                part.append(int(a) if isinstance(z, (int, np.integer)) else a)
            pending[c] = tuple(part)
        nchunks, nfolded = int(header["nchunks"]), int(header["nfolded"])
        if not 0 <= nfolded <= nchunks or any(not nfolded < c < nchunks for c in ids):
            raise ValueError("chunk indices out of range")
    except (KeyError, ValueError, TypeError, IndexError) as exc:
        raise InputError(f"checkpoint {path} is corrupt ({exc}); {fix}") from None
    sums = OrderedSums(zero, nchunks, stop_test, total=total, nfolded=nfolded, pending=pending)
    return sums, dict(header.get("info", {}))


def _is_records(value):
    """True for a chunk's jump records (``trajspin.demon.JumpRecords``) in a partial."""
    return hasattr(value, "to_arrays") and hasattr(value, "from_arrays")


def _short(value):
    text = json.dumps(value)
    return text if len(text) <= 48 else text[:45] + "..."


class _Lock:
    """An exclusive advisory lock on ``path`` (fcntl.flock), so two jobs never share a checkpoint."""

    def __init__(self, path):
        self.path = path
        self.fh = None

    def acquire(self):
        import fcntl
        try:
            self.fh = open(self.path, "a+")
        except OSError as exc:
            raise InputError(f"cannot create lock file {self.path}: {exc.strerror}") from None
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            self.fh.close()
            self.fh = None
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise InputError(f"checkpoint {self.path[:-5]} is in use by another running job "
                                 f"(lock {self.path} is held)") from None
            # file systems without flock support: go on without the lock
            print(f"warning: cannot lock {self.path} ({exc.strerror}); make sure no other job "
                  f"uses this checkpoint", file=sys.stderr)
        return self

    def release(self, remove=True):
        if self.fh is not None:
            if remove:
                try:
                    os.unlink(self.path)
                except OSError:
                    pass
            self.fh.close()
            self.fh = None


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
    the chunk's :class:`trajspin.demon.JumpRecords` when ``records`` is "summaries" or
    "full" (folded in chunk order, so the records come out in trajectory-index order), and by
    the sums of the other observables when some are asked for.  Tables and the no-jump trace
    of the initial state are built once per process.
    """

    def __init__(self, chain, times, seed, initial=None, records="none", observables=("jz",),
                 method="auto"):
        from .trajectories import EnsemblePlan, _check_seed
        from .validation import check_times
        self.chain, self.times, self.seed = chain, check_times(times), _check_seed(seed)
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
        from .validation import check_result
        full = self.plan.meta()
        full.update(meta or {})
        return check_result(self.plan.result(total, n, self.seed, full), "the MPI ensemble")

    def max_error(self, total, n):
        """max_t,i of the standard error of <J_i^z>/N_i, exactly as ``run_trajectories`` tests it."""
        from .results import EnsembleResult
        res = EnsembleResult(self.chain, self.times, self.seed, total[0], total[1], n, total[2],
                             total[3], total[4], [[0, n]])
        return float(np.max(res.jz_err / self.sizes))


def ensemble_zero(T, M, K0, records="none", extra=None):
    """The partial of no trajectories: zero sums, empty records when they are kept.

    ``K0`` is the highest excitation a trajectory can have (``EnsembleTask(...).K0``;
    sum(initial) for the paper's model from a Dicke basis state).  ``extra`` = (F', with_cross)
    adds the observable sums of :class:`trajspin.trajectories.EnsemblePlan` (F' extra columns);
    ``EnsembleTask(...).zero()`` gives the same tuple for any task.
    """
    zero = (np.zeros((T, M)), np.zeros((T, M)), np.zeros(K0 + 1, dtype=np.int64), 0, 0)
    if records != "none":
        from .demon import JumpRecords
        zero = zero + (JumpRecords.empty(M, full=records == "full"),)
    if extra:
        F, with_cross = extra
        zero = zero + (np.zeros((T, F)), np.zeros((T, F)), np.zeros((T if with_cross else 0, M)))
    return zero


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
        return {"krylov": "krylov", "paper": "dense"}.get(self.engine, "auto")

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
    from .initial import resolve_initial
    from .observables import check_observables
    from .outputs import ReservedOutput, check_output_path
    from .trajectories import choose_engine
    from .validation import check_memory

    out = os.fspath(out)
    check_output_path(out, "--out", overwrite=True)     # existing results: decided below
    ckpt = config.checkpoint_path or default_checkpoint_path(out)
    check_output_path(ckpt, "checkpoint.path", overwrite=True)
    if os.path.abspath(ckpt) == os.path.abspath(out):
        raise InputError("checkpoint.path must differ from the result file --out")
    chain = config.chain()
    init = resolve_initial(chain, config.initial_request())
    basis_state = init.basis_state
    # highest excitation sector a trajectory can visit (sizes the tables and the final counts)
    K0 = sum(basis_state) if basis_state is not None and not chain.has_absorption else sum(chain.sizes)
    names = check_observables(config.observables, solver="trajectories")
    engine, need = choose_engine(chain, init, names, config.records, None, config.method)
    check_memory(ranks_per_node * need,
                 f"the {engine} engine's tables of {chain!r} on {ranks_per_node} rank(s) of "
                 f"this node",
                 "use fewer ranks per node or smaller domains")
    if config.records != "none":
        per_traj = 8 * (6 + 2 * chain.M)
        if config.records == "full":
            per_traj += K0 * 8 * (4 + 2 * chain.M)
        check_memory(config.max_ntraj * per_traj,
                     f"the records ({config.records}) of {config.max_ntraj} trajectories",
                     'use output.records = "summaries" or fewer trajectories')
    ours = False
    if os.path.exists(out):
        from .results import load
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
    lock = _Lock(ckpt + ".lock").acquire()
    try:
        state = None
        if os.path.exists(ckpt):
            if not resume:
                raise InputError(f"checkpoint {ckpt} exists from an earlier run: pass --resume to "
                                 f"continue it, or delete it to start over")
            from .trajectories import observable_extra
            zero = ensemble_zero(config.times.size, len(config.sizes), K0, config.records,
                                 observable_extra(chain, config.observables))
            state = read_checkpoint(ckpt, dict(config.physics(), engine=engine), zero)
        _remove_stray_temporaries(out)
        reserved = ReservedOutput(out, "--out", overwrite=True)
    except BaseException:
        lock.release()
        raise
    return RunPlan(config, out, ckpt, lock, state, done=False, engine=engine, reserved=reserved)


def _remove_stray_temporaries(out):
    """Temporary files of earlier saves of ``out`` (a save killed midway); the caller holds
    the run's lock, so no other run of this result is writing them."""
    folder = os.path.dirname(os.path.abspath(out))
    prefix = f".tmp-{os.path.basename(out)}-"
    for name in os.listdir(folder):
        if name.startswith(prefix) and name.endswith(".npz"):
            try:
                os.unlink(os.path.join(folder, name))
            except OSError:
                pass


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
    from .progress import get_progress_bar
    from .results import versions

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
        "initial": cfg._initial_text(), "seed": cfg.seed, "ntraj": n, "ndark": sums.total[3],
        "njumps_sum": sums.total[4], "wall_time": wall + setup_time, "versions": versions(),
        "runner": "trajspin.runner (mpi_scripts/run_ensemble.py)",
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
