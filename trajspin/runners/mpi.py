"""The MPI side of batch ensembles (the only trajspin module that imports mpi4py).

Rank 0 runs :class:`trajspin.runners.batch.Coordinator` over an :class:`MPITransport`; every other
rank runs :func:`worker_loop`.  Messages (all pickled, all on ``COMM_WORLD``):

    root -> worker, TAG_WORK:   [(c, start, stop), ...]  chunks to compute, or None: stop
    worker -> root, TAG_RESULT: ("result", c, partial) after each chunk,
                                ("bye", {"busy": s, "idle": s, "cpu": s}) after the stop

A partial of a (T, M) grid is 2 T M doubles plus K0 + 1 counts, sent once per chunk.
Waiting ranks poll with short sleeps instead of spinning in a blocking receive, so
oversubscribed ranks leave the cores to the ranks that compute.
"""
from __future__ import annotations

import time
from collections import deque

from mpi4py import MPI

__all__ = ["world", "MPITransport", "worker_loop", "ranks_on_this_node", "library_version",
           "TAG_WORK", "TAG_RESULT"]

TAG_WORK = 11
TAG_RESULT = 12
_SLEEP_MIN, _SLEEP_MAX = 5e-5, 2e-3


def world():
    return MPI.COMM_WORLD


def ranks_on_this_node(comm):
    """Number of ranks sharing this rank's node (they all hold a copy of the sector tables)."""
    node = comm.Split_type(MPI.COMM_TYPE_SHARED)
    try:
        return node.Get_size()
    finally:
        node.Free()


def library_version():
    return MPI.Get_library_version().splitlines()[0].strip()


def _sleeper():
    delay = _SLEEP_MIN
    while True:
        yield delay
        delay = min(2 * delay, _SLEEP_MAX)


class MPITransport:
    """Root side of the chunk protocol (see ``trajspin.runners.batch.Coordinator``)."""

    def __init__(self, comm):
        self.comm = comm
        self.size = comm.Get_size()
        self.workers = tuple(range(1, self.size))
        self._status = MPI.Status()

    def assign(self, rank, items):
        self.comm.send(list(items), dest=rank, tag=TAG_WORK)

    def finish(self, rank):
        self.comm.send(None, dest=rank, tag=TAG_WORK)

    def poll(self, timeout=0.0):
        msgs = self._drain()
        if msgs or timeout <= 0:
            return msgs
        deadline = time.monotonic() + timeout
        for delay in _sleeper():
            time.sleep(delay)
            msgs = self._drain()
            if msgs or time.monotonic() >= deadline:
                return msgs

    def _drain(self):
        out = []
        st = self._status
        while self.comm.iprobe(source=MPI.ANY_SOURCE, tag=TAG_RESULT, status=st):
            src = st.Get_source()
            msg = self.comm.recv(source=src, tag=TAG_RESULT)
            if msg[0] == "result":
                out.append(("result", src, msg[1], msg[2]))
            else:
                out.append(("bye", src, msg[1]))
        return out


def worker_loop(comm, task):
    """Compute the chunks rank 0 hands out until it says stop.

    Returns {"busy", "idle", "cpu"}: wall seconds computing, wall seconds waiting for work,
    CPU seconds computing.
    """
    queue = deque()
    sends = []
    busy = idle = cpu = 0.0
    stop = False
    while True:
        while comm.iprobe(source=0, tag=TAG_WORK):
            items = comm.recv(source=0, tag=TAG_WORK)
            if items is None:
                stop = True
            else:
                queue.extend(items)
        if stop:
            break
        if queue:
            c, start, end = queue.popleft()
            t0, c0 = time.perf_counter(), time.process_time()
            part = task.compute(start, end)
            busy += time.perf_counter() - t0
            cpu += time.process_time() - c0
            sends.append(comm.isend(("result", c, part), dest=0, tag=TAG_RESULT))
            sends = [r for r in sends if not r.Test()]
            continue
        t0 = time.perf_counter()
        for delay in _sleeper():
            if comm.iprobe(source=0, tag=TAG_WORK):
                break
            time.sleep(delay)
        idle += time.perf_counter() - t0
    stats = {"busy": busy, "idle": idle, "cpu": cpu}
    sends.append(comm.isend(("bye", stats), dest=0, tag=TAG_RESULT))
    MPI.Request.Waitall(sends)
    return stats
