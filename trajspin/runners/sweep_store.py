"""Where finished sweep points are kept: one result file per point, or memory.

With a result file ``S.npz`` the points go to the folder ``S.points/``::

    S.points/manifest.json        the sweep they belong to (its hash, number of points)
    S.points/point-000007.npz     point 7's result (``trajspin.load`` reads it), written
                                  atomically by the rank that computed it
    S.points.lock                 held while a run uses the folder

A kill at any moment leaves only whole point files (and stray ``.tmp-*`` files, removed
when the sweep resumes), so a resume redoes no finished point.  Every rank writes the
points it computes, so the folder must be on a file system that all ranks share (the
result file's folder usually is).  The folder is removed once the sweep's file is written.
"""
from __future__ import annotations

import json
import os
import shutil

from trajspin.errors import InputError
from trajspin.outputs import check_output_path, fsync_folder
from trajspin.results.io import load
from trajspin.runners.checkpoints import CheckpointLock

__all__ = ["MemoryStore", "PointFolder", "points_folder", "MANIFEST_FORMAT"]

MANIFEST_FORMAT = "trajspin-sweep-points"
MANIFEST_VERSION = 1


def points_folder(out):
    """``results/S.npz`` -> ``results/S.points``."""
    out = os.fspath(out)
    return (out[:-4] if out.endswith(".npz") else out) + ".points"


class MemoryStore:
    """Finished points of a sweep without a result file (nothing survives the process)."""

    folder = None

    def __init__(self):
        self.results = {}

    def done(self, spec):
        return {}

    def write(self, point, result):
        self.results[point.index] = result

    def read(self, point):
        return self.results[point.index]

    def close(self, remove=False):
        pass


class PointFolder:
    """The per-point checkpoint folder of one sweep (see the module docstring).

    Parameters
    ----------
    folder : str     the folder (``points_folder(out)``)
    """

    def __init__(self, folder):
        self.folder = os.fspath(folder)
        self.lock = None

    def path(self, index):
        return os.path.join(self.folder, f"point-{index:06d}.npz")

    def open(self, spec, resume):
        """Lock the folder, then create it or check it belongs to ``spec`` (with ``resume``).

        Raises InputError (one line) when it is in use, holds points but ``resume`` is not
        given, or holds another sweep's points.  A folder without points is reused.
        """
        check_output_path(self.folder + ".lock", "sweep lock", overwrite=True)
        if os.path.lexists(self.folder) and not os.path.isdir(self.folder):
            raise InputError(f"sweep points folder {self.folder} exists and is not a folder")
        self.lock = CheckpointLock(self.folder + ".lock").acquire()
        try:
            manifest = os.path.join(self.folder, "manifest.json")
            if os.path.isdir(self.folder) and self._has_points():
                if not resume:
                    raise InputError(f"sweep points folder {self.folder} exists from an earlier "
                                     f"run: pass --resume (resume=True) to continue it, or "
                                     f"delete it to start over")
                self._check_manifest(manifest, spec)
                self._remove_temporaries()
            else:                          # new, or left by a run that finished no point
                os.makedirs(self.folder, exist_ok=True)
                self._remove_temporaries()
                self._write_manifest(manifest, spec)
        except BaseException:
            self.close()
            raise
        return self

    def _has_points(self):
        return any(name.startswith("point-") for name in os.listdir(self.folder))

    def _write_manifest(self, path, spec):
        text = json.dumps({"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION,
                           "sweep_hash": spec.sweep_hash(), "points": spec.size,
                           "source": spec.source})
        with open(path + ".tmp", "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(path + ".tmp", path)
        fsync_folder(self.folder)

    def _check_manifest(self, path, spec):
        fix = f"delete {self.folder} to start over"
        try:
            with open(path) as fh:
                head = json.load(fh)
        except (OSError, ValueError) as exc:
            raise InputError(f"{path} is missing or damaged ({type(exc).__name__}); {fix}") \
                from None
        if not isinstance(head, dict) or head.get("format") != MANIFEST_FORMAT:
            raise InputError(f"{path} is not a trajspin sweep manifest; {fix}")
        if head.get("sweep_hash") != spec.sweep_hash():
            raise InputError(f"sweep points folder {self.folder} belongs to a different sweep "
                             f"config ({head.get('points')} points from {head.get('source')}); "
                             f"{fix}")

    def _remove_temporaries(self):
        for name in os.listdir(self.folder):
            if name.startswith(".tmp-") or name.endswith(".tmp"):
                try:
                    os.unlink(os.path.join(self.folder, name))
                except OSError:
                    pass

    def done(self, spec):
        """{index: result meta} of the points already in the folder (checked against spec)."""
        out = {}
        for point in spec.points:
            path = self.path(point.index)
            if not os.path.exists(path):
                continue
            info = load(path).meta.get("sweep_point", {})
            if info.get("key") != point.key:
                raise InputError(f"{path} is not point {point.index + 1} of this sweep (its "
                                 f"physics differs); delete {self.folder} to start over")
            out[point.index] = info
        return out

    def write(self, point, result):
        result.save(self.path(point.index), overwrite=True)

    def read(self, point):
        path = self.path(point.index)
        if not os.path.exists(path):
            raise InputError(f"{path} is missing: a rank wrote it where rank 0 cannot see it "
                             f"(the result's folder must be shared by all ranks)")
        return load(path)

    def close(self, remove=False):
        """Release the lock; with ``remove`` delete the folder (the sweep's file is written)."""
        if remove and os.path.isdir(self.folder):
            shutil.rmtree(self.folder, ignore_errors=True)
        if self.lock is not None:
            self.lock.release(remove=True)
            self.lock = None
