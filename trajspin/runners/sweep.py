"""Sweeps: many points, each solved whole by one rank, largest first, checkpointed per point.

``sweep(config, out)`` runs a ``[sweep]`` config (``trajspin.runners.sweep_spec``) in this
process; ``mpi_scripts/run_sweep.py`` runs the same on MPI ranks, and ``trajspin sweep`` on
the command line.  All three go through :func:`prepare_sweep` (everything that can be
refused is refused here, before any work: the config, the output path, a point too big for
a rank, a foreign checkpoint folder) and :func:`run_sweep_root`.

Scheduling.  Points are ordered by the resource model's predicted seconds
(``trajspin.estimate``), largest first, and handed out in that order to whichever rank is
free (longest-processing-time list scheduling; the prediction only orders the points, so a
wrong one costs balance, never correctness).  Each worker holds up to ``LOOKAHEAD`` points,
one running and one queued, so it goes on while rank 0 is busy with a point of its own;
rank 0 answers between its own trajectory chunks and points.

Results do not depend on the rank count: a point runs whole on one rank with a deterministic
solver (one BLAS thread; trajectory j's stream is a function of (seed, j) alone), and its
arrays are saved and read back bit for bit.  A point whose solver raises
``InputError`` / ``NumericalError`` is recorded as failed (NaN in the result, its message in
``meta["failed"]``) and the others go on; a resume retries it.
"""
from __future__ import annotations

import os
import sys
import time
import warnings
from collections import deque

from trajspin.errors import InputError, NumericalError
from trajspin.outputs import ReservedOutput, check_output_path, remove_temporaries
from trajspin.progress import get_progress_bar
from trajspin.results.base import versions
from trajspin.results.io import load
from trajspin.results.sweep import SweepResult
from trajspin.runners.batch import SerialTransport
from trajspin.runners.sweep_points import check_fit, point_cost, solve_point
from trajspin.runners.sweep_spec import SweepSpec, load_sweep, parse_sweep
from trajspin.runners.sweep_store import MemoryStore, PointFolder, points_folder

__all__ = ["sweep", "SweepPlan", "SweepCoordinator", "prepare_sweep", "run_sweep_root",
           "try_point", "as_spec", "LOOKAHEAD"]

LOOKAHEAD = 2          # points a worker holds: one running, one queued


def as_spec(config) -> SweepSpec:
    """A SweepSpec from a config file path, a parsed TOML document (dict) or a SweepSpec."""
    if isinstance(config, SweepSpec):
        return config
    if isinstance(config, dict):
        return parse_sweep(config)
    if isinstance(config, (str, os.PathLike)):
        return load_sweep(config)
    raise InputError(f"a sweep config is a TOML file path or a dict, got {type(config).__name__}")


def try_point(spec, store, index, rank, tick=None):
    """Solve point ``index`` and write it to ``store``.

    Returns
    -------
    ("done", index, info) with info {"index", "key", "solver", "rank", "wall_time"}, or
    ("failed", index, message) when the solver raised InputError or NumericalError.
    """
    point = spec.points[index]
    try:
        result = solve_point(point, tick)
    except (InputError, NumericalError) as exc:
        return "failed", index, f"{type(exc).__name__}: {exc}"
    info = {"index": index, "key": point.key, "solver": point.solver, "rank": int(rank),
            "wall_time": float(result.meta.get("wall_time", 0.0))}
    result.meta["sweep_point"] = info
    store.write(point, result)
    return "done", index, info


class SweepPlan:
    """What the root decided before any work (see :func:`prepare_sweep`).

    Attributes
    ----------
    spec : SweepSpec;  out : str or None;  store : MemoryStore or PointFolder
    reserved : ReservedOutput or None     the result file's temporary file
    done : dict                           {index: info} of points finished by earlier runs
    costs : list of PointCost             per point
    order : list of int                   points by predicted seconds, largest first
    finished : SweepResult or None        the result, when ``out`` is already complete
    """

    def __init__(self, spec, out, store, reserved, done, costs, finished=None):
        self.spec, self.out, self.store, self.reserved = spec, out, store, reserved
        self.done, self.costs, self.finished = dict(done), list(costs), finished
        self.order = sorted(range(spec.size), key=lambda i: (-self.costs[i].seconds, i))

    def close(self, remove=False):
        """Discard the unused temporary file, release the folder (``remove``: delete it)."""
        if self.reserved is not None:
            self.reserved.discard()
            self.reserved = None
        if self.store is not None:
            self.store.close(remove)
            self.store = None


def prepare_sweep(spec, out=None, resume=False, force=False, ranks_per_node=1) -> SweepPlan:
    """Check everything before work starts; lock and read the per-point folder.

    Raises InputError (one line) for a point too big for a rank (with the numbers), an
    unusable ``out``, an existing ``out`` of another sweep (unless ``force``), a points
    folder without ``resume`` or of another sweep.  With ``resume`` and ``out`` already
    complete for this sweep, ``plan.finished`` is that result and nothing runs.
    """
    costs = [point_cost(p) for p in spec.points]
    check_fit(spec, costs, ranks_per_node)
    if out is None:
        return SweepPlan(spec, None, MemoryStore(), None, {}, costs)
    out = check_output_path(out, "--out", overwrite=True)
    folder = points_folder(out)
    if os.path.exists(out):
        old = _own_result(out, spec)
        if resume and old is not None and old.meta.get("complete") and not os.path.exists(folder):
            return SweepPlan(spec, out, None, None, {}, costs, finished=old)
        if old is None and not force:
            raise InputError(f"--out: {out} exists and was not written by this sweep; pass "
                             f"--force to replace it")
    store = PointFolder(folder).open(spec, resume)
    try:
        done = store.done(spec)
        remove_temporaries(out, dead_only=False)        # of a killed run; we hold the folder's lock
        reserved = ReservedOutput(out, "--out", overwrite=True)
    except BaseException:
        store.close()
        raise
    return SweepPlan(spec, out, store, reserved, done, costs)


def _own_result(out, spec):
    """The sweep result in ``out`` if this sweep wrote it, else None."""
    try:
        old = load(out)
    except InputError:
        return None
    if isinstance(old, SweepResult) and old.meta.get("sweep_hash") == spec.sweep_hash():
        return old
    return None


class SweepCoordinator:
    """Hands out points (largest first), records what comes back, drives the progress bar.

    ``transport`` speaks the protocol of ``trajspin.runners.batch.Coordinator`` with point
    indices as items; its messages are ``("traj", rank, n)``, ``("done", rank, index, info)``,
    ``("failed", rank, index, message)`` and ``("bye", rank, stats)``.
    """

    def __init__(self, plan, transport, bar=None, root_computes=True, lookahead=LOOKAHEAD):
        self.plan, self.spec, self.transport, self.bar = plan, plan.spec, transport, bar
        self.root_computes = root_computes or not transport.workers
        self.lookahead = max(1, int(lookahead))
        self.todo = deque(i for i in plan.order if i not in plan.done)
        self.remaining = len(self.todo)
        self.inflight = {r: 0 for r in transport.workers}
        self.info, self.failed, self.waiting = {}, {}, set()
        points = self.spec.points
        self.traj_goal = sum(p.ntraj_goal for p in points)
        self.traj_done = sum(points[i].ntraj_goal for i in plan.done)
        self.stats = {r: {"busy": 0.0, "idle": 0.0, "cpu": 0.0}
                      for r in (0,) + tuple(transport.workers)}

    def run(self):
        """Run every point not done yet; returns per-rank {"busy", "idle", "cpu"} seconds."""
        tr, mine = self.transport, self.stats[0]
        for r in tr.workers:
            self._refill(r)
        while self.remaining:
            self._handle(tr.poll(0.0))
            if self.root_computes and self.todo:
                i = self.todo.popleft()
                t0, c0 = time.perf_counter(), time.process_time()
                outcome = try_point(self.spec, self.plan.store, i, 0, self._tick)
                mine["busy"] += time.perf_counter() - t0
                mine["cpu"] += time.process_time() - c0
                self._record(outcome)
            else:
                t0 = time.perf_counter()
                msgs = tr.poll(0.5)
                mine["idle"] += time.perf_counter() - t0
                self._handle(msgs)
        self.waiting = set(tr.workers)
        for r in tr.workers:
            tr.finish(r)
        while self.waiting:
            self._handle(tr.poll(0.5))
        return self.stats

    def _tick(self, n):
        self._count_traj(n)
        self._handle(self.transport.poll(0.0))

    def _count_traj(self, n):
        self.traj_done += n
        if self.bar is not None:
            self.bar.set_postfix_str(f"{self.traj_done}/{self.traj_goal} traj")

    def _handle(self, msgs):
        for msg in msgs:
            kind, r = msg[0], msg[1]
            if kind == "traj":
                self._count_traj(msg[2])
            elif kind in ("done", "failed"):
                self.inflight[r] -= 1
                self._record((kind, msg[2], msg[3]))
                self._refill(r)
            elif kind == "bye":
                self.stats[r] = dict(msg[2])
                self.waiting.discard(r)

    def _record(self, outcome):
        kind, i, payload = outcome
        self.remaining -= 1
        if kind == "done":
            self.info[i] = payload
        else:
            self.failed[i] = payload
        if self.bar is not None:
            self.bar.update(1)

    def _refill(self, r):
        items = []
        while self.inflight[r] + len(items) < self.lookahead and self.todo:
            items.append(self.todo.popleft())
        if items:
            self.inflight[r] += len(items)
            self.transport.assign(r, items)


def run_sweep_root(plan, transport, *, progress=True, quiet=False, root_computes=None,
                   extra_meta=None, out=sys.stdout) -> SweepResult:
    """Run the sweep of ``plan`` as rank 0 (the only rank, or the coordinator of workers).

    Returns
    -------
    SweepResult
        Also written to ``plan.out`` when there is one; the points folder is removed then,
        unless some point failed (a resume retries those).
    """
    if plan.finished is not None:
        return plan.finished
    spec, P = plan.spec, transport.size
    if plan.done:
        print(f"resuming from {plan.store.folder}: {len(plan.done)} of {spec.size} points done",
              file=out, flush=True)
    if root_computes is None:
        root_computes = P <= 16
    start = time.monotonic()
    with get_progress_bar(progress and not quiet, spec.size, "sweep points", "pt",
                          initial=len(plan.done)) as bar:
        coord = SweepCoordinator(plan, transport, bar, root_computes)
        stats = coord.run()
    wall = time.monotonic() - start
    results = [None if i in coord.failed else plan.store.read(p)
               for i, p in enumerate(spec.points)]
    infos = {**plan.done, **coord.info}
    meta = dict(spec.to_dict(), sweep_hash=spec.sweep_hash(), complete=not coord.failed,
                failed={str(i): m for i, m in sorted(coord.failed.items())},
                points=[_point_meta(p, plan.costs[p.index], infos.get(p.index))
                        for p in spec.points],
                mpi_ranks=P, root_computes=bool(coord.root_computes), wall_time=wall,
                resumed_points=len(plan.done), computed_points=len(coord.info),
                busy_time_per_rank=[stats[r]["busy"] for r in sorted(stats)],
                idle_time_per_rank=[stats[r]["idle"] for r in sorted(stats)],
                versions=versions(), runner="trajspin.runners.sweep", **(extra_meta or {}))
    result = SweepResult.from_points(results, meta)
    if plan.out is not None:
        result.save(plan.reserved)
        plan.reserved = None
    plan.close(remove=result.meta["complete"])
    return result


def _point_meta(point, cost, info):
    info = info or {}
    return {"coords": point.coords, "chain": dict(point.config.chain_params),
            "initial": point.config.initial_text(), "estimated_seconds": cost.seconds,
            "rank": info.get("rank"), "wall_time": info.get("wall_time")}


def sweep(config, out=None, *, resume=False, force=False, progress=True) -> SweepResult:
    """Run a sweep in this process (no MPI): every point of a ``[sweep]`` config.

    Parameters
    ----------
    config : str, PathLike or dict
        A TOML config file with a ``[sweep]`` table, or the parsed document
        (``trajspin.runners.sweep_spec`` describes the keys).
    out : str or PathLike, optional
        Result file (.npz), written atomically at the end.  Finished points are kept in the
        folder ``<out without .npz>.points/`` meanwhile, so a killed sweep resumes where it
        stopped (``resume=True``); without ``out`` nothing is written.
    resume : bool
        Continue from the points folder; return the result at once if ``out`` is complete.
    force : bool
        Replace an existing ``out`` that another config wrote.
    progress : bool
        One bar over points (with the trajectories done).

    Returns
    -------
    SweepResult
        ``trajspin.load(out)`` reads the same back.

    Examples
    --------
    >>> res = trajspin.sweep({"chain": {"sizes": [4, 1]},
    ...                       "sweep": {"solver": "steady", "N1": [2, 4, 8]}}, progress=False)
    >>> res.values(-1).round(4).tolist()       # eq. (S8): (N1^2 - 2 N1 - 1) / (2 (N1 + 1)^2)
    [-0.0556, 0.14, 0.2901]
    """
    spec = as_spec(config)
    plan = prepare_sweep(spec, out, resume=resume, force=force)
    try:
        result = run_sweep_root(plan, SerialTransport(), progress=progress)
    finally:
        plan.close()
    if result.failed.any():
        warnings.warn(f"{int(result.failed.sum())} of {spec.size} sweep points failed: "
                      + "; ".join(f"point {i}: {m}" for i, m in result.meta["failed"].items()),
                      RuntimeWarning, stacklevel=2)
    return result
