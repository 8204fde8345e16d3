"""trajspin: energy migration through chains of spin domains coupled by shared reservoirs.

Exact sector-block master equation, exact event-driven quantum trajectories
(numba), MPI ensembles.  Model of Dias et al., "Reservoir-assisted energy
migration through multiple spin-domains" (2021).  The layers are described in
ARCHITECTURE.md.
"""
from trajspin.version import __version__
from trajspin.errors import InputError, NumericalError
from trajspin.model import Chain, Schedule, thermal_occupation
from trajspin.initial import Dicke, SpinsUp, Coherent, InitialState, resolve_initial
from trajspin.observables import OBSERVABLES
from trajspin.grids import time_grid
from trajspin.resources import master_memory_estimate
from trajspin.results import MasterResult, SteadyStateResult, EnsembleResult, MeanFieldResult, load
from trajspin.exact import solve_master, steady_state
from trajspin.trajectories import Trajectory, trajectory, run_trajectories
from trajspin.mean_field import solve_mean_field, mean_field_equations
from trajspin.estimate import estimate, Estimate
from trajspin import demon
from trajspin.runners.sweep import sweep

__all__ = ["Chain", "InputError", "NumericalError", "Schedule", "thermal_occupation", "Dicke", "SpinsUp", "Coherent",
           "InitialState", "resolve_initial", "OBSERVABLES", "solve_master", "steady_state", "master_memory_estimate",
           "MasterResult", "SteadyStateResult", "EnsembleResult", "load", "Trajectory", "trajectory",
           "run_trajectories", "time_grid", "solve_mean_field", "mean_field_equations",
           "MeanFieldResult", "estimate", "Estimate", "demon", "sweep", "__version__"]
