"""Checkpoints of an ensemble run: written atomically, checked on resume, locked while in use.

The file holds the folded prefix of the partial sums and the chunks finished beyond it, as
numbered components (``PartialSums.components``), with the physics they belong to and a
checksum; a resume refuses a file of another config, naming the first differing setting.
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import json
import os
import sys

import numpy as np

from trajspin.errors import InputError
from trajspin.outputs import fsync_folder
from trajspin.results.records import JumpRecords
from trajspin.runners.chunks import OrderedSums

__all__ = ["write_checkpoint", "read_checkpoint", "default_checkpoint_path", "CheckpointLock",
           "CHECKPOINT_FORMAT", "CHECKPOINT_VERSION"]


CHECKPOINT_FORMAT = "trajspin-ensemble-checkpoint"


CHECKPOINT_VERSION = 1


def default_checkpoint_path(out):
    """``result.npz`` -> ``result.ckpt.npz`` (same folder)."""
    out = os.fspath(out)
    stem = out[:-4] if out.endswith(".npz") else out
    return stem + ".ckpt.npz"


def _digest(header_text, arrays):
    h = hashlib.sha256(header_text.encode())
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(name.encode())
        h.update(str(a.dtype).encode())
        h.update(repr(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def write_checkpoint(path, physics, sums, info=None):
    """Write the folded prefix and the pending chunks of ``sums`` to ``path`` atomically.

    The file is written as ``path + ".tmp"``, flushed to disk, then renamed over ``path``:
    a kill at any moment leaves either the previous or the new checkpoint.

    Parameters
    ----------
    path : str
    physics : dict
        What the sums depend on (``EnsembleConfig.physics()``); a resume must match it.
    sums : OrderedSums
    info : dict, optional
        JSON-ready bookkeeping (wall time so far, number of segments, ...).

    Returns
    -------
    int
        Size of the file in bytes.
    """
    path = os.fspath(path)
    arrays = {}
    for k, v in enumerate(sums.total.components()):
        if isinstance(v, JumpRecords):
            arrays.update(v.to_arrays(f"total_{k}__"))
        else:
            arrays[f"total_{k}"] = np.asarray(v)
    ids = sorted(sums.pending)
    arrays["pending_ids"] = np.asarray(ids, dtype=np.int64)
    pending = {c: sums.pending[c].components() for c in ids}
    zero = sums.zero.components()
    for k, v in enumerate(zero):
        if isinstance(v, JumpRecords):    # chunk records: one set of arrays per pending chunk
            for c in ids:
                arrays.update(pending[c][k].to_arrays(f"pending_{k}_{c}__"))
            continue
        shape = np.shape(v)
        stack = [np.asarray(pending[c][k]) for c in ids]
        arrays[f"pending_{k}"] = (np.stack(stack) if stack
                                  else np.zeros((0,) + shape, dtype=np.asarray(v).dtype))
    header = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "physics": physics,
              "nchunks": sums.nchunks, "nfolded": sums.nfolded, "ncomponents": len(zero),
              "info": info or {}}
    text = json.dumps(header, sort_keys=True)
    header["digest"] = _digest(text, arrays)
    tmp = path + ".tmp"
    buf = io.BytesIO()
    np.savez(buf, header=np.array(json.dumps(header, sort_keys=True)), **arrays)
    data = buf.getvalue()
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_folder(os.path.dirname(os.path.abspath(path)))
    return len(data)


def read_checkpoint(path, physics, zero, stop_test=None):
    """Load a checkpoint written by :func:`write_checkpoint` for the same ``physics``.

    Returns
    -------
    sums : OrderedSums
    info : dict

    Raises
    ------
    InputError
        One line: the file is unreadable, damaged, not a checkpoint, or from a different config
        (naming the first differing setting).
    """
    path = os.fspath(path)
    fix = f"delete {path} to start over"
    try:
        with np.load(path, allow_pickle=False) as f:
            header = json.loads(str(f["header"]))
            arrays = {k: f[k] for k in f.files if k != "header"}
    except Exception as exc:                      # zip, CRC, JSON, npy format errors alike
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"checkpoint {path} is corrupt or unreadable ({reason}); {fix}") from None
    if not isinstance(header, dict) or header.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"{path} is not a trajspin ensemble checkpoint; {fix}")
    if header.get("version") != CHECKPOINT_VERSION:
        raise InputError(f"checkpoint {path} has format version {header.get('version')}, this "
                         f"trajspin writes version {CHECKPOINT_VERSION}; {fix}")
    digest = header.pop("digest", None)
    if digest != _digest(json.dumps(header, sort_keys=True), arrays):
        raise InputError(f"checkpoint {path} is corrupt (checksum mismatch); {fix}")
    theirs = header.get("physics", {})
    if theirs != physics:
        keys = [k for k in list(physics) + [k for k in theirs if k not in physics]
                if theirs.get(k) != physics.get(k)]
        k = keys[0]
        more = f" and {len(keys) - 1} more" if len(keys) > 1 else ""
        raise InputError(f"checkpoint {path} belongs to a different config: {k} is "
                         f"{_short(theirs.get(k))} there but {_short(physics.get(k))} here{more}; "
                         f"{fix} or set checkpoint.path")
    try:
        zparts = zero.components()
        if header["ncomponents"] != len(zparts):
            raise ValueError("component count")
        total = []
        for k, z in enumerate(zparts):
            if isinstance(z, JumpRecords):
                total.append(type(z).from_arrays(arrays, z.M, f"total_{k}__"))
                continue
            a = arrays[f"total_{k}"]
            if a.shape != np.shape(z):
                raise ValueError(f"total_{k} has shape {a.shape}")
            total.append(int(a) if isinstance(z, (int, np.integer)) else a)
        ids = [int(c) for c in arrays["pending_ids"]]
        pending = {}
        for j, c in enumerate(ids):
            part = []
            for k, z in enumerate(zparts):
                if isinstance(z, JumpRecords):
                    part.append(type(z).from_arrays(arrays, z.M, f"pending_{k}_{c}__"))
                    continue
                a = arrays[f"pending_{k}"][j]
                if a.shape != np.shape(z):
                    raise ValueError(f"pending_{k} has shape {a.shape}")
                part.append(int(a) if isinstance(z, (int, np.integer)) else a)
            pending[c] = zero.with_components(part)
        nchunks, nfolded = int(header["nchunks"]), int(header["nfolded"])
        if not 0 <= nfolded <= nchunks or any(not nfolded < c < nchunks for c in ids):
            raise ValueError("chunk indices out of range")
    except (KeyError, ValueError, TypeError, IndexError) as exc:
        raise InputError(f"checkpoint {path} is corrupt ({exc}); {fix}") from None
    sums = OrderedSums(zero, nchunks, stop_test, total=zero.with_components(total),
                       nfolded=nfolded, pending=pending)
    return sums, dict(header.get("info", {}))


def _short(value):
    text = json.dumps(value)
    return text if len(text) <= 48 else text[:45] + "..."


class CheckpointLock:
    """An exclusive advisory lock on ``path`` (fcntl.flock), so two jobs never share a checkpoint."""

    def __init__(self, path):
        self.path = path
        self.fh = None

    def acquire(self):
        try:
            self.fh = open(self.path, "a+")
        except OSError as exc:
            raise InputError(f"cannot create lock file {self.path}: {exc.strerror}") from None
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            self.fh.close()
            self.fh = None
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise InputError(f"checkpoint {self.path[:-5]} is in use by another running job "
                                 f"(lock {self.path} is held)") from None
            # file systems without flock support: go on without the lock
            print(f"warning: cannot lock {self.path} ({exc.strerror}); make sure no other job "
                  f"uses this checkpoint", file=sys.stderr)
        return self

    def release(self, remove=True):
        if self.fh is not None:
            if remove:
                try:
                    os.unlink(self.path)
                except OSError:
                    pass
            self.fh.close()
            self.fh = None
