"""Jump records: which reservoir took a quantum and when, for an ordered set of trajectories.

Per-trajectory summaries, and with ``records="full"`` every jump as flat arrays with offsets
per trajectory (:class:`JumpRecords`); an ensemble result that carries them
(:class:`RecordedEnsemble`).  The statistics and views built on them are in ``trajspin.demon``.
"""
from __future__ import annotations

import numpy as np

from trajspin.errors import InputError
from trajspin.results.ensemble import EnsembleResult

__all__ = ["JumpRecords", "RecordedEnsemble", "RECORD_PREFIX"]

RECORD_PREFIX = "rec_"


class JumpRecords:
    """The records of an ordered set of trajectories (flat arrays, offsets per trajectory).

    Attributes
    ----------
    index : int64 ndarray, shape (n,)
        Global trajectory index (n trajectories, in index order).
    njumps : int64 ndarray, shape (n,)
        Quanta taken (= jumps).
    excitation_left : int64 ndarray, shape (n,)
        Excitation K of the final state.
    dark : bool ndarray, shape (n,)
        Frozen with excitation left.
    final_jz : float64 ndarray, shape (n, M)
        <J_i^z> of the t -> infinity conditional state.
    quanta : int64 ndarray, shape (n, M-1)
        Quanta taken by each reservoir.
    final_open : int64 ndarray, shape (n,)
        Bit mask of the reservoirs open at the end (bit c: reservoir c).
    first_jump_time : float64 ndarray, shape (n,)
        Time of the first jump, in 1/gamma (inf when the trajectory never jumped).
    jump_time : float64 ndarray, shape (J,)
        Every jump's time (only when ``full``; J = sum(njumps), trajectory k owns
        ``offsets[k]:offsets[k+1]``); likewise the per-jump fields below.
    jump_reservoir : int64 ndarray, shape (J,)
        Reservoir that took the quantum.
    jump_excitation : int64 ndarray, shape (J,)
        Excitation K just before the jump (K - 1 after).
    jz_before, jz_after : float64 ndarray, shape (J, M)
        Conditional <J_i^z> just before / after the jump.
    reservoirs_open : int64 ndarray, shape (J,)
        Bit mask of open reservoirs after the jump (feedback).
    """

    SUMMARY = ("index", "njumps", "excitation_left", "dark", "final_jz", "quanta", "final_open",
               "first_jump_time")
    JUMPS = ("jump_time", "jump_reservoir", "jump_excitation", "jz_before", "jz_after",
             "reservoirs_open")

    def __init__(self, M, index, njumps, excitation_left, dark, final_jz, quanta, final_open,
                 first_jump_time, **jumps):
        self.M = int(M)
        self.index = np.asarray(index, dtype=np.int64)
        self.njumps = np.asarray(njumps, dtype=np.int64)
        self.excitation_left = np.asarray(excitation_left, dtype=np.int64)
        self.dark = np.asarray(dark, dtype=bool)
        self.final_jz = np.asarray(final_jz, dtype=float).reshape(-1, self.M)
        self.quanta = np.asarray(quanta, dtype=np.int64).reshape(-1, self.M - 1)
        self.final_open = np.asarray(final_open, dtype=np.int64)
        self.first_jump_time = np.asarray(first_jump_time, dtype=float)
        self.full = bool(jumps)
        if self.full:
            missing = set(self.JUMPS) - set(jumps)
            if missing:
                raise InputError(f"full records need {sorted(missing)}")
            self.jump_time = np.asarray(jumps["jump_time"], dtype=float)
            self.jump_reservoir = np.asarray(jumps["jump_reservoir"], dtype=np.int64)
            self.jump_excitation = np.asarray(jumps["jump_excitation"], dtype=np.int64)
            self.jz_before = np.asarray(jumps["jz_before"], dtype=float).reshape(-1, self.M)
            self.jz_after = np.asarray(jumps["jz_after"], dtype=float).reshape(-1, self.M)
            self.reservoirs_open = np.asarray(jumps["reservoirs_open"], dtype=np.int64)

    @classmethod
    def empty(cls, M, full=True):
        """Records of no trajectory (n = 0) for a chain of ``M`` domains.

        Parameters
        ----------
        M : int
            Number of domains (the per-reservoir arrays get M - 1 columns).
        full : bool
            Also hold the (empty) per-jump arrays, as ``records="full"`` does.

        Returns
        -------
        JumpRecords
            With every array of length 0: shapes (0,), (0, M) and (0, M - 1).
        """
        C = M - 1
        jumps = dict(jump_time=np.zeros(0), jump_reservoir=np.zeros(0, np.int64),
                     jump_excitation=np.zeros(0, np.int64), jz_before=np.zeros((0, M)),
                     jz_after=np.zeros((0, M)), reservoirs_open=np.zeros(0, np.int64))
        return cls(M, np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64),
                   np.zeros(0, bool), np.zeros((0, M)), np.zeros((0, C), np.int64),
                   np.zeros(0, np.int64), np.zeros(0), **(jumps if full else {}))

    @property
    def kind(self):
        """``"full"`` (every jump kept) or ``"summaries"`` (per-trajectory summaries only)."""
        return "full" if self.full else "summaries"

    def __len__(self):
        return self.index.size

    @property
    def offsets(self):
        """Start of each trajectory's jumps in the flat arrays, shape (n + 1,)."""
        return np.concatenate([[0], np.cumsum(self.njumps)]).astype(np.int64)

    @property
    def total_quanta(self):
        """Quanta taken by all reservoirs together in each trajectory (= ``njumps``), int64
        ndarray, shape (n,)."""
        return self.njumps

    def jumps(self, k):
        """The jumps of the k-th trajectory held here: dict of the per-jump arrays."""
        if not self.full:
            raise InputError("these records keep summaries only (records='full' keeps every jump)")
        a, b = self.offsets[k], self.offsets[k + 1]
        return {name: getattr(self, name)[a:b] for name in self.JUMPS}

    def __add__(self, other):
        """Concatenation: ``self`` then ``other`` (trajectory order is kept)."""
        if not isinstance(other, JumpRecords) or other.M != self.M or other.full != self.full:
            raise InputError("can only join records of the same chain and kind")
        names = self.SUMMARY + (self.JUMPS if self.full else ())
        parts = {n: np.concatenate([getattr(self, n), getattr(other, n)]) for n in names}
        return JumpRecords(self.M, **parts)

    def select(self, keep):
        """Records of the trajectories where ``keep`` (bool array, length n) is True."""
        keep = np.asarray(keep, dtype=bool)
        parts = {n: getattr(self, n)[keep] for n in self.SUMMARY}
        if self.full:
            per_jump = np.repeat(keep, self.njumps)
            parts.update({n: getattr(self, n)[per_jump] for n in self.JUMPS})
        return JumpRecords(self.M, **parts)

    def to_arrays(self, prefix=RECORD_PREFIX):
        """The arrays as a dict for a result file (the inverse of :meth:`from_arrays`).

        Parameters
        ----------
        prefix : str
            Prepended to every field name (``"rec_"``: ``rec_njumps``, ``rec_jump_time`` ...).

        Returns
        -------
        dict of str to ndarray
            The summary fields (shapes (n,), (n, M), (n, M - 1)) and, for full records, the
            per-jump fields (shapes (J,), (J, M)); units as in the class attributes.
        """
        names = self.SUMMARY + (self.JUMPS if self.full else ())
        return {prefix + n: np.asarray(getattr(self, n)) for n in names}

    @classmethod
    def from_arrays(cls, arrays, M, prefix=RECORD_PREFIX):
        """Records from the arrays of a result file (the inverse of :meth:`to_arrays`).

        Parameters
        ----------
        arrays : mapping of str to ndarray
            Holds ``prefix + name`` for every summary field; full records when the per-jump
            fields are there too.
        M : int
            Number of domains of the chain.
        prefix : str
            The prefix the arrays were saved with.

        Returns
        -------
        JumpRecords
        """
        summary = {n: arrays[prefix + n] for n in cls.SUMMARY}
        jumps = {n: arrays[prefix + n] for n in cls.JUMPS if prefix + n in arrays}
        return cls(M, **summary, **jumps)

    def __eq__(self, other):
        if not isinstance(other, JumpRecords) or other.M != self.M or other.full != self.full:
            return False
        a, b = self.to_arrays(), other.to_arrays()
        return all(np.array_equal(a[k], b[k]) for k in a)

    def __str__(self):
        return (f"JumpRecords ({self.kind}): {len(self)} trajectories, "
                f"{int(self.njumps.sum())} jumps")

    __repr__ = __str__


class RecordedEnsemble(EnsembleResult):
    """An :class:`~trajspin.results.EnsembleResult` that also keeps the records.

    Saved as an ensemble file (``trajspin.load`` reads its averages) with the record arrays
    (``rec_*``) next to them; :func:`load_records` reads them back.

    Attributes
    ----------
    records : JumpRecords or None
        One record per trajectory, in index order (None for a feedback run without records).
    feedback : dict or None
        The feedback rules (``meta["feedback"]``); averages under feedback are not given by
        any master equation.

    Besides these, every attribute of :class:`~trajspin.EnsembleResult` (``times`` (T,),
    ``jz`` and ``jz_err`` (T, M), ``ntraj`` ...).
    """

    def __init__(self, chain, times, seed, jz_sum, jz_sumsq, ntraj, final_excitation_counts,
                 ndark, njumps_sum, index_ranges, records=None, meta=None):
        super().__init__(chain, times, seed, jz_sum, jz_sumsq, ntraj, final_excitation_counts,
                         ndark, njumps_sum, index_ranges, meta=meta)
        self.records = records

    @property
    def feedback(self):
        """The feedback rules the ensemble ran with (dict with ``"rules"``), or None."""
        return self.meta.get("feedback")

    def save(self, path, overwrite=False):
        """Write the ensemble and its records to an ``.npz`` file (atomically).

        Parameters
        ----------
        path : str or PathLike
            The result file; ``trajspin.load`` reads the averages back and
            :func:`trajspin.demon.load_records` the whole ensemble with its records.
        overwrite : bool
            Replace an existing regular file (never a directory, device, FIFO or link).

        Returns
        -------
        str
            The path written.
        """
        self.meta.update(seed=self.seed, ntraj=self.ntraj, ndark=self.ndark,
                         njumps_sum=self.njumps_sum,
                         records=self.records.kind if self.records is not None else "none")
        return super().save(path, overwrite)

    def file_arrays(self) -> dict:
        """The ensemble's arrays and, when kept, the records (``JumpRecords.to_arrays``)."""
        arrays = super().file_arrays()
        if self.records is not None:
            arrays.update(self.records.to_arrays())
        return arrays

    def merge(self, other):
        """Join two ensembles of the same chain, times, seed, initial state and feedback over
        disjoint trajectory index ranges (sums add; records are concatenated in index order).

        Parameters
        ----------
        other : RecordedEnsemble
            The other part; records are kept only if both parts have them.

        Returns
        -------
        RecordedEnsemble
            The ensemble of both index ranges, the same as one run over their union.
        """
        merged = super().merge(other)
        recs = None
        if self.records is not None and getattr(other, "records", None) is not None:
            first, second = ((self, other) if self.index_ranges[0, 0] < other.index_ranges[0, 0]
                             else (other, self))
            recs = first.records + second.records
        if self.feedback != getattr(other, "feedback", None):
            raise InputError("cannot merge ensembles run with different feedback rules")
        return RecordedEnsemble(merged.chain, merged.times, merged.seed, merged.jz_sum,
                                merged.jz_sumsq, merged.ntraj, merged.final_excitation_counts,
                                merged.ndark, merged.njumps_sum, merged.index_ranges, recs,
                                meta=merged.meta)

    def __str__(self):
        text = super().__str__()
        extra = []
        if self.records is not None:
            extra.append(f"records: {self.records}")
        if self.feedback:
            extra.append(f"feedback: {'; '.join(self.feedback['rules'])} (averages under feedback "
                         f"are not given by any master equation)")
        return text + ("\n" + "\n".join(extra) if extra else "")

    __repr__ = __str__

    def _summary_items(self):
        fb = self.feedback
        return super()._summary_items() + [
            ("records", None if self.records is None else str(self.records)),
            ("feedback", "; ".join(fb["rules"]) if fb else None)]

    @classmethod
    def from_file_arrays(cls, chain, arrays, meta):
        """Build from the arrays and meta of a result file (the ``trajspin.load`` hook)."""
        recs = JumpRecords.from_arrays(arrays, chain.M) if RECORD_PREFIX + "index" in arrays else None
        return cls(chain, arrays["times"], meta.get("seed", 0), arrays["jz_sum"],
                   arrays["jz_sumsq"], meta["ntraj"], arrays["final_excitation_counts"],
                   meta.get("ndark", 0), meta.get("njumps_sum", 0), arrays["index_ranges"],
                   records=recs, meta=meta)

