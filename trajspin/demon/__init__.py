"""Maxwell's demon views: jump records, full counting statistics, conditional states, feedback.

``statistics`` (what the records say), ``references`` (what the exact solvers say they should
say), ``views`` (matplotlib figures) and ``study`` (one call that runs and draws it all).
"""
from trajspin.demon.references import exact_conditional_final_jz, exact_jump_rates
from trajspin.demon.statistics import (CountingStatistics, bin_average, conditional_final_jz,
                                       counting_statistics, energy_balance,
                                       first_jump_distribution, photocurrent, probability_above,
                                       waiting_times)
from trajspin.demon.study import make_views
from trajspin.demon.views import (plot_feedback_comparison, plot_final_histograms,
                                  plot_photocurrent, plot_raster)
from trajspin.results.io import load_records
from trajspin.results.records import JumpRecords, RecordedEnsemble

__all__ = ["JumpRecords", "RecordedEnsemble", "load_records", "CountingStatistics",
           "counting_statistics", "first_jump_distribution", "waiting_times", "photocurrent",
           "exact_jump_rates", "conditional_final_jz", "exact_conditional_final_jz",
           "probability_above", "energy_balance", "plot_raster", "plot_final_histograms",
           "plot_photocurrent", "plot_feedback_comparison", "bin_average", "make_views"]
