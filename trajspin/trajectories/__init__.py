"""Quantum trajectories: one at a time (``trajectory``) or ensembles (``run_trajectories``).

``tables`` (flat arrays the kernels read), ``sums`` (typed partial sums), ``plan`` (the engine
and tables of one ensemble, the sums of a chunk), ``single``, ``ensemble``, ``lanczos`` (the
matrix-free path for large sectors) and ``feedback`` (rules that switch reservoirs).
"""
from trajspin.trajectories.ensemble import run_trajectories
from trajspin.trajectories.feedback import check_feedback
from trajspin.trajectories.plan import (DEFAULT_CHUNK, METHODS, RECORD_KINDS, EnsemblePlan,
                                        check_records, run_chunk)
from trajspin.trajectories.single import Trajectory, trajectory
from trajspin.trajectories.sums import PartialSums
from trajspin.trajectories.tables import (GeneralTables, SectorTables, observable_extra,
                                          observable_layout, top_excitation)

__all__ = ["Trajectory", "trajectory", "run_trajectories", "run_chunk", "EnsemblePlan",
           "PartialSums", "SectorTables", "GeneralTables", "check_feedback", "check_records",
           "observable_extra", "observable_layout", "top_excitation", "DEFAULT_CHUNK",
           "METHODS", "RECORD_KINDS"]
