"""Fixed accumulation chunks, and their partial sums folded strictly in chunk order.

An ensemble of trajectories 0..n-1 is cut into the same fixed chunks that
:func:`trajspin.trajectories.run_trajectories` accumulates (boundaries at the
multiples of ``chunk``, at ``ntraj`` and at ``max_ntraj``).  Chunk partial sums
may be computed on any rank in any order; the coordinator folds them strictly in
chunk order,

    S_0 = 0,   S_{c+1} = S_c + s_c       (elementwise, the same additions as the serial loop),

so the sums are bitwise identical to the serial run for any number of ranks
and after any kill and resume.  The folded prefix S_c (and chunks finished
beyond it) is written periodically to a checkpoint file, atomically.
"""
from __future__ import annotations

__all__ = ["ChunkPlan", "OrderedSums"]


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
        self.zero = zero
        self.nchunks = int(nchunks)
        self.stop_test = stop_test
        self.total = zero if total is None else total
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
        self.pending[c] = part
        while not self.stopped and self.nfolded in self.pending:
            self.total = self.total.fold(self.pending.pop(self.nfolded))
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
