"""Mean-field (cumulant) equations of the chain: moment algebra, closures, solver."""
from trajspin.mean_field.solver import (CLOSURES, InitialMoments, MeanFieldBreakdown,
                                        MeanFieldModel, initial_moments, mean_field_equations,
                                        solve_mean_field)
from trajspin.results.mean_field import MeanFieldResult

__all__ = ["solve_mean_field", "mean_field_equations", "initial_moments", "MeanFieldResult",
           "MeanFieldModel", "InitialMoments", "MeanFieldBreakdown", "CLOSURES"]
