"""The partial sums of a block of trajectories, as one typed object.

Every engine returns, for trajectories start..stop-1 of an ensemble, the same
:class:`PartialSums`; the serial loop, the MPI coordinator and the checkpoints fold them with
:meth:`PartialSums.fold` strictly in chunk order, so the totals do not depend on which process
computed a chunk or when.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

from trajspin.results.records import JumpRecords

__all__ = ["PartialSums"]


@dataclass(frozen=True)
class PartialSums:
    """Sums over a block of trajectories (all fields add elementwise; records concatenate).

    Attributes
    ----------
    jz_sum, jz_sumsq : float64 ndarray, shape (T, M)
        sum_k <J_i^z>_k(t) and sum_k <J_i^z>_k(t)^2 over the block's trajectories k.
    final_counts : int64 ndarray, shape (K_top + 1,)
        Trajectories ending with true excitation K (t -> infinity, or the last output time
        when a channel raises K).
    ndark : int           trajectories frozen with excitation left
    njumps : int          jumps of all trajectories
    records : JumpRecords or None
        The block's jump records, in trajectory-index order (paper engine with records).
    obs_sum, obs_sumsq : float64 ndarray, shape (T, F') or None
        Sums of the observables beyond jz (``trajectories.tables.observable_layout``).
    cross : float64 ndarray, shape (T, M) or (0, M), or None
        sum_k <J^z>_k <(J^z)^2>_k, for the error of jz_var (empty when jz_var is not asked).
    """

    jz_sum: np.ndarray
    jz_sumsq: np.ndarray
    final_counts: np.ndarray
    ndark: int = 0
    njumps: int = 0
    records: JumpRecords | None = None
    obs_sum: np.ndarray | None = None
    obs_sumsq: np.ndarray | None = None
    cross: np.ndarray | None = None

    @classmethod
    def zero(cls, T, M, K_top, records="none", extra=None) -> PartialSums:
        """The sums of no trajectories.

        Parameters
        ----------
        T, M : int        output times and domains
        K_top : int       highest excitation a trajectory can have
                          (``trajectories.tables.top_excitation``)
        records : {"none", "summaries", "full"}
        extra : (F', with_cross) or None
            Extra observable columns and whether the jz x jz2 cross sum is kept
            (``trajectories.tables.observable_extra``).
        """
        rec = None if records == "none" else JumpRecords.empty(M, full=records == "full")
        obs = {}
        if extra:
            F, with_cross = extra
            obs = dict(obs_sum=np.zeros((T, F)), obs_sumsq=np.zeros((T, F)),
                       cross=np.zeros((T if with_cross else 0, M)))
        return cls(np.zeros((T, M)), np.zeros((T, M)), np.zeros(K_top + 1, dtype=np.int64),
                   0, 0, rec, **obs)

    @classmethod
    def from_rows(cls, obs_sum, obs_sumsq, cross, counts, ndark, njumps, M,
                  records=None) -> PartialSums:
        """The partial of sums over observable rows (kernel layout: <J_i^z> in columns 0..M-1).

        obs_sum, obs_sumsq : (T, F); cross : (T, M) or (0, M).  Columns M..F-1, when there are
        any, become ``obs_sum`` / ``obs_sumsq`` (with ``cross``), columns 0..M-1 ``jz_sum`` /
        ``jz_sumsq``.
        """
        extra = {} if records is None else {"records": records}
        if obs_sum.shape[1] > M:
            extra.update(obs_sum=np.ascontiguousarray(obs_sum[:, M:]),
                         obs_sumsq=np.ascontiguousarray(obs_sumsq[:, M:]), cross=cross)
        return cls(np.ascontiguousarray(obs_sum[:, :M]), np.ascontiguousarray(obs_sumsq[:, :M]),
                   counts, int(ndark), int(njumps), **extra)

    def fold(self, later: PartialSums) -> PartialSums:
        """``self + later`` field by field (``later``: the next trajectories in index order)."""
        out = {}
        for f in fields(self):
            a, b = getattr(self, f.name), getattr(later, f.name)
            if (a is None) != (b is None):
                raise ValueError(f"cannot fold partial sums with and without {f.name}")
            out[f.name] = None if a is None else a + b
        return PartialSums(**out)

    @property
    def ntraj(self) -> int:
        """Trajectories summed (from the final-excitation counts)."""
        return int(self.final_counts.sum())

    # --- the checkpoint layout (file format version 1: numbered components) ------------
    def components(self) -> tuple:
        """The fields present, in the order of checkpoint components total_0, total_1, ..."""
        head = (self.jz_sum, self.jz_sumsq, self.final_counts, self.ndark, self.njumps)
        rec = () if self.records is None else (self.records,)
        obs = () if self.obs_sum is None else (self.obs_sum, self.obs_sumsq, self.cross)
        return head + rec + obs

    def with_components(self, parts) -> PartialSums:
        """A PartialSums shaped like ``self`` holding ``parts`` (as :meth:`components` orders them)."""
        parts = list(parts)
        if len(parts) != len(self.components()):
            raise ValueError(f"{len(parts)} components, expected {len(self.components())}")
        names = ["jz_sum", "jz_sumsq", "final_counts", "ndark", "njumps"]
        if self.records is not None:
            names.append("records")
        if self.obs_sum is not None:
            names += ["obs_sum", "obs_sumsq", "cross"]
        return replace(self, **dict(zip(names, parts)))
