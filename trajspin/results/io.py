"""Reading result files: one ``load`` that maps a file's kind to its result class."""
from __future__ import annotations

import json
import zipfile
import zlib

import numpy as np

from trajspin.errors import InputError
from trajspin.model import Chain
from trajspin.results.base import EXTRA_OBSERVABLES, MasterResult, SteadyStateResult
from trajspin.results.ensemble import EnsembleResult
from trajspin.results.mean_field import MeanFieldResult
from trajspin.results.records import RECORD_PREFIX, RecordedEnsemble
from trajspin.results.sweep import SweepResult
from trajspin.validation import available_memory

__all__ = ["load", "load_records", "read_result_file"]


MAX_COMPRESSED_MEMBER = 64 * 2**20    # trajspin writes uncompressed .npz; others stay small


def _check_members(path):
    """Refuse files whose members would expand beyond memory (deflate bombs) before reading."""
    with zipfile.ZipFile(path) as z:
        infos = z.infolist()
    total = sum(i.file_size for i in infos)
    for i in infos:
        if i.compress_type != zipfile.ZIP_STORED and i.file_size > MAX_COMPRESSED_MEMBER:
            raise InputError(f"{path}: member {i.filename} expands from {i.compress_size} to "
                             f"{i.file_size} bytes; trajspin writes uncompressed files")
    if total > 0.5 * available_memory():
        raise InputError(f"{path}: its arrays need {total / 2**30:.1f} GiB, more than half the "
                         f"available memory")


def read_result_file(path):
    """(header dict, {name: array}) of a trajspin result file; one-line InputError otherwise."""
    try:
        _check_members(path)
        with np.load(path, allow_pickle=False) as f:
            if not hasattr(f, "files"):
                raise ValueError("a single array (.npy), not an .npz archive")
            header = json.loads(str(f["header"]))
            arrays = {k: f[k] for k in f.files if k != "header"}
    except InputError:
        raise
    except (OSError, KeyError, ValueError, EOFError, TypeError, zipfile.BadZipFile,
            zlib.error) as exc:
        raise InputError(f"{path}: not a trajspin result file ({type(exc).__name__}: "
                         f"{exc})") from None
    if not isinstance(header, dict) or "kind" not in header or "chain" not in header:
        raise InputError(f"{path}: not a trajspin result file (its header lacks kind and chain; "
                         f"a checkpoint? read those with trajspin.runners.checkpoints.read_checkpoint)")
    return header, arrays


def load(path):
    """Read a result written by ``save``, ``trajspin.sweep``, the command line's ``--out`` or
    the MPI runners (``mpi_scripts/run_ensemble.py``, ``run_sweep.py``).

    Parameters
    ----------
    path : str or PathLike
        A trajspin result file (.npz).

    Returns
    -------
    result : MasterResult, SteadyStateResult, EnsembleResult, RecordedEnsemble, \
MeanFieldResult or SweepResult
        The class is the file's kind; arrays as saved (times (T,) in units of 1/gamma,
        <J_i^z> (T, M) in units of hbar, ...), the chain and ``meta`` as they were.

    Raises
    ------
    InputError
        Every problem with the file (missing, truncated, corrupt, a .npy, a checkpoint, a
        header with missing or foreign keys, arrays too large for memory), naming it.
    """
    header, arrays = read_result_file(path)
    try:
        return _build(header, arrays, path)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise InputError(f"{path}: malformed trajspin result ({type(exc).__name__}: {exc})") \
            from None


def _build(header, arrays, path):
    chain = Chain.from_dict(header["chain"])
    meta = header.get("meta", {})
    kind = header["kind"]
    if kind == "master":
        return MasterResult(chain, arrays["times"], arrays["jz"], arrays["sector_populations"], meta,
                            jump_rates=arrays.get("jump_rates"),
                            observables={k: arrays[k] for k in EXTRA_OBSERVABLES if k in arrays})
    if kind == "steady":
        return SteadyStateResult(chain, arrays["jz"], arrays["sector_populations"], meta=meta,
                                 observables={k: arrays[k] for k in EXTRA_OBSERVABLES if k in arrays})
    if kind == "ensemble":
        if RECORD_PREFIX + "index" in arrays:
            return RecordedEnsemble.from_file_arrays(chain, arrays, meta)
        return EnsembleResult.from_file_arrays(chain, arrays, meta)
    if kind == "mean_field":
        return MeanFieldResult(chain, arrays["times"], arrays["moments"], meta["labels"], meta)
    if kind == "sweep":
        return SweepResult.from_file_arrays(arrays, meta)
    raise InputError(f"{path}: unknown result kind {kind!r}")


def load_records(path) -> RecordedEnsemble:
    """Read an ensemble file with its jump records as a :class:`RecordedEnsemble`.

    Parameters
    ----------
    path : str or PathLike
        An ensemble result file (.npz) saved from ``run_trajectories(records=...)`` or
        written by an MPI run with ``[output] records``.

    Returns
    -------
    RecordedEnsemble
        The averages (``jz`` (T, M), ``jz_err`` ...) and ``records`` (a :class:`JumpRecords`,
        n trajectories in index order; None when the file holds no records).

    Raises
    ------
    InputError
        The file is not a trajspin ensemble result (one line naming it).
    """
    header, arrays = read_result_file(path)
    if header.get("kind") != "ensemble":
        raise InputError(f"{path}: not an ensemble result (kind {header.get('kind')!r})")
    chain = Chain.from_dict(header["chain"])
    return RecordedEnsemble.from_file_arrays(chain, arrays, header.get("meta", {}))

