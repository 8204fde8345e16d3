"""The MPI side of sweeps: rank 0 hands out points, largest first; the other ranks solve them.

Rank 0 runs :class:`trajspin.runners.sweep.SweepCoordinator` over a :class:`SweepTransport`;
every other rank runs :func:`worker_loop`, which is ``trajspin.runners.mpi.worker_loop`` (the
chunk protocol of batch ensembles, and the only module that imports mpi4py) with a point as
its one-item "chunk" ``(index, index, index + 1)``.  Messages (pickled, on ``COMM_WORLD``):

    root -> worker, TAG_WORK:   [(index, index, index + 1), ...]  points to solve, or None: stop
    worker -> root, TAG_RESULT: ("traj", n)                  after each chunk of n trajectories
                                ("result", index, outcome)   after a point: outcome is
                                    ("done", index, info) once its file is written, or
                                    ("failed", index, message) when its solver raised
                                ("bye", {"busy": s, "idle": s, "cpu": s})   after the stop

A worker writes the result file of each point it solves itself (``trajspin.runners.
sweep_store``), so a kill loses no finished point; rank 0 reads them all at the end.
"""
from __future__ import annotations

from trajspin.runners.mpi import TAG_RESULT, MPITransport
from trajspin.runners.mpi import worker_loop as chunk_worker_loop
from trajspin.runners.sweep import try_point

__all__ = ["SweepTransport", "worker_loop"]


class SweepTransport(MPITransport):
    """Root side of the sweep protocol, in the message forms of ``SweepCoordinator``:
    ``("traj", rank, n)``, ``("done" | "failed", rank, index, payload)``, ``("bye", rank, stats)``."""

    def assign(self, rank, items):
        super().assign(rank, [(i, i, i + 1) for i in items])

    def _drain(self):
        out = []
        st = self._status
        while self.comm.iprobe(tag=TAG_RESULT, status=st):     # from any rank
            src = st.Get_source()
            msg = self.comm.recv(source=src, tag=TAG_RESULT)
            if msg[0] == "result":
                kind, index, payload = msg[2]
                out.append((kind, src, index, payload))
            else:
                out.append((msg[0], src, msg[1]))
        return out


class _PointTask:
    """A worker's "task" for the chunk protocol: ``compute(i, i + 1)`` solves point i."""

    def __init__(self, comm, spec, store):
        self.comm, self.spec, self.store = comm, spec, store
        self.rank = comm.Get_rank()

    def compute(self, start, stop):
        return try_point(self.spec, self.store, start, self.rank, self._tick)

    def _tick(self, n):
        # a few dozen bytes: sent eagerly, so the blocking send returns at once
        self.comm.send(("traj", n), dest=0, tag=TAG_RESULT)


def worker_loop(comm, spec, store):
    """Solve the points rank 0 hands out until it says stop.

    Parameters
    ----------
    comm : mpi4py communicator (COMM_WORLD)
    spec : SweepSpec          the same on every rank (broadcast by rank 0)
    store : PointFolder       where this rank writes the points it solves

    Returns {"busy", "idle", "cpu"}: wall seconds solving, wall seconds waiting, CPU seconds.
    """
    return chunk_worker_loop(comm, _PointTask(comm, spec, store))
