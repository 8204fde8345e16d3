"""Result objects and their files: exact, ensemble (with jump records), mean field; ``load``.

Every result draws itself (``result.plot(ax=None, ...)`` returns the matplotlib Axes;
matplotlib is optional, ``pip install 'trajspin[plot]'``); ``plot_trajectory`` draws a
single trajectory with its jump raster.  ``trajspin.results.plotting`` holds the helpers.
"""
from trajspin.results.base import (EXTRA_OBSERVABLES, MasterResult, Result, SteadyStateResult,
                                   format_table, html_table, versions)
from trajspin.results.ensemble import EnsembleResult
from trajspin.results.io import load, load_records, read_result_file
from trajspin.results.mean_field import MeanFieldResult
from trajspin.results.plotting import plot_trajectory
from trajspin.results.records import JumpRecords, RecordedEnsemble

__all__ = ["Result", "MasterResult", "SteadyStateResult", "EnsembleResult", "MeanFieldResult",
           "JumpRecords", "RecordedEnsemble", "load", "load_records", "read_result_file",
           "versions", "format_table", "html_table", "plot_trajectory", "EXTRA_OBSERVABLES"]
