"""Exact density-matrix solvers: ``solve_master`` (against time) and ``steady_state`` (t -> inf).

``master`` (the entry points), ``cascade`` (the zero-temperature sector cascade: time steps and
the t -> infinity state), ``packed`` (absorption: packed blocks, shift-and-invert Krylov),
``effective`` (one effective chain through schedule pieces), ``observers`` (observables from
sector blocks), ``two_domain`` (closed form of the two-domain t -> inf state) and
``negativity``.
"""
from trajspin.exact.master import solve_master, steady_state

__all__ = ["solve_master", "steady_state"]
