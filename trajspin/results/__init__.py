"""Result objects and their files: exact, ensemble (with jump records), mean field; ``load``."""
from trajspin.results.base import (EXTRA_OBSERVABLES, MasterResult, Result, SteadyStateResult,
                                   format_table, versions)
from trajspin.results.ensemble import EnsembleResult
from trajspin.results.io import load, load_records, read_result_file
from trajspin.results.mean_field import MeanFieldResult
from trajspin.results.records import JumpRecords, RecordedEnsemble

__all__ = ["Result", "MasterResult", "SteadyStateResult", "EnsembleResult", "MeanFieldResult",
           "JumpRecords", "RecordedEnsemble", "load", "load_records", "read_result_file",
           "versions", "format_table", "EXTRA_OBSERVABLES"]
