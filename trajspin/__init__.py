"""trajspin: energy migration through chains of spin domains coupled by shared reservoirs.

Exact sector-block master equation, exact event-driven quantum trajectories
(numba), MPI ensembles.  Model of Dias et al., "Reservoir-assisted energy
migration through multiple spin-domains" (2021).
"""
__version__ = "0.1.0"

from .model import Chain, InputError
from .master import solve_master, steady_state, master_memory_estimate
from .results import MasterResult, SteadyStateResult, EnsembleResult, load

__all__ = ["Chain", "InputError", "solve_master", "steady_state", "master_memory_estimate",
           "MasterResult", "SteadyStateResult", "EnsembleResult", "load", "__version__"]
