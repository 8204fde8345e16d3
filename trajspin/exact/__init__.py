"""Exact density-matrix solvers: ``solve_master`` (against time) and ``steady_state`` (t -> inf).

``master`` (entry points), ``general`` (packed blocks, shift-and-invert Krylov, the general
cascade), ``two_domain`` (closed form of the two-domain t -> inf state) and ``negativity``.
"""
from trajspin.exact.master import solve_master, steady_state

__all__ = ["solve_master", "steady_state"]
