"""trajspin: energy migration through chains of spin domains coupled by shared reservoirs.

Exact sector-block master equation, exact event-driven quantum trajectories
(numba), MPI ensembles.  Model of Dias et al., "Reservoir-assisted energy
migration through multiple spin-domains" (2021).
"""
__version__ = "0.1.0"

from .model import Chain, InputError, NumericalError, Schedule, thermal_occupation
from .initial import Dicke, SpinsUp, Coherent, InitialState, resolve_initial
from .observables import OBSERVABLES
from .master import solve_master, steady_state, master_memory_estimate
from .results import MasterResult, SteadyStateResult, EnsembleResult, load
from .trajectories import Trajectory, trajectory, run_trajectories
from .grids import time_grid
from .mean_field import solve_mean_field, mean_field_equations, MeanFieldResult
from .estimate import estimate, Estimate

__all__ = ["Chain", "InputError", "NumericalError", "Schedule", "thermal_occupation", "Dicke", "SpinsUp", "Coherent",
           "InitialState", "resolve_initial", "OBSERVABLES", "solve_master", "steady_state", "master_memory_estimate",
           "MasterResult", "SteadyStateResult", "EnsembleResult", "load", "Trajectory", "trajectory",
           "run_trajectories", "time_grid", "solve_mean_field", "mean_field_equations",
           "MeanFieldResult", "estimate", "Estimate", "__version__"]
