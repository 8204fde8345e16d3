"""Mean-field (cumulant) equations of the chain: moment algebra, closures, solver.

Modules, bottom up: ``algebra`` (exact moment algebra), ``closures`` ("paper" and "pairs"),
``moments`` (initial moments), ``equations`` (``MeanFieldModel``), ``solver`` (integration).
"""
from trajspin.mean_field.closures import CLOSURES
from trajspin.mean_field.equations import MeanFieldModel
from trajspin.mean_field.moments import InitialMoments, initial_moments
from trajspin.mean_field.solver import MeanFieldBreakdown, mean_field_equations, solve_mean_field
from trajspin.results.mean_field import MeanFieldResult

__all__ = ["solve_mean_field", "mean_field_equations", "initial_moments", "MeanFieldResult",
           "MeanFieldModel", "InitialMoments", "MeanFieldBreakdown", "CLOSURES"]
