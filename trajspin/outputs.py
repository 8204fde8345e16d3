"""Result files that are never lost and never replace what is not ours.

A result path is checked and its temporary file created *before* the work starts
(``ReservedOutput``), so an unusable destination fails in the first second; at the end the
arrays go into that temporary file, which is fsynced, renamed over the destination and the
folder fsynced.  A path that exists and is not a regular file (a directory, device, FIFO,
socket or symbolic link) is always refused; an existing regular file only with ``overwrite``
(``--force`` on the command line).
"""
from __future__ import annotations

import os
import socket
import stat
import tempfile

import numpy as np

from trajspin.errors import InputError

__all__ = ["check_output_path", "ReservedOutput", "atomic_savez", "fsync_folder",
           "remove_temporaries"]


def check_output_path(path, what="output", overwrite=False):
    """The absolute-folder-checked path, or an InputError saying why it cannot be written.

    Parameters
    ----------
    path : str or PathLike
    what : str         how the caller names it in messages ("--out", "checkpoint.path", ...)
    overwrite : bool   allow replacing an existing regular file
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.lexists(path):
        mode = os.lstat(path).st_mode
        if stat.S_ISDIR(mode):
            raise InputError(f"{what}: {path} is a directory")
        if stat.S_ISLNK(mode):
            raise InputError(f"{what}: {path} is a symbolic link; give the file it points to")
        if not stat.S_ISREG(mode):
            raise InputError(f"{what}: {path} exists and is not a regular file (device, FIFO or "
                             f"socket); refusing to replace it")
        if not overwrite:
            raise InputError(f"{what}: {path} exists; pass --force (overwrite=True) to replace it")
    if not os.path.isdir(folder):
        raise InputError(f"{what}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise InputError(f"{what}: folder {folder} is not writable")
    return path


def fsync_folder(folder):
    """Make a rename in ``folder`` durable (no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _temp_prefix(path) -> str:
    """``.tmp-<name>-<host>-<pid>-``: whose temporary file it is, so strays can be told apart."""
    host = socket.gethostname().replace("-", "_")
    return f".tmp-{os.path.basename(path)}-{host}-{os.getpid()}-"


def remove_temporaries(path, dead_only=True) -> int:
    """Delete temporary files of earlier saves of ``path`` (a save killed midway).

    Temporaries are named ``.tmp-<name>-<host>-<pid>-*.npz``.  With ``dead_only`` (every new
    save does this) only those of processes of this host that no longer run go; a live
    writer's, and other hosts', are never touched.  ``dead_only=False`` removes them all: for
    a caller that holds the lock of the run writing ``path`` (the batch runners).

    Returns
    -------
    int
        Number of files removed.
    """
    folder = os.path.dirname(os.path.abspath(path))
    prefix = f".tmp-{os.path.basename(path)}-"
    host = socket.gethostname().replace("-", "_") + "-"
    removed = 0
    try:
        names = os.listdir(folder)
    except OSError:
        return 0
    for name in names:
        if not (name.startswith(prefix) and name.endswith(".npz")):
            continue
        if dead_only:
            rest = name[len(prefix):]
            pid = rest[len(host):].split("-", 1)[0] if rest.startswith(host) else ""
            if not pid.isdigit() or _alive(int(pid)):
                continue
        try:
            os.unlink(os.path.join(folder, name))
            removed += 1
        except OSError:
            pass
    return removed


def _alive(pid) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:          # exists, owned by someone else
        return True
    return True


class ReservedOutput:
    """A checked destination and its temporary file, created now, filled later.

    Parameters
    ----------
    path : str or PathLike   destination (.npz)
    what : str               name in messages
    overwrite : bool         allow replacing an existing regular file

    Use ``write_npz(**arrays)`` once at the end, or ``discard()`` when the work fails.
    """

    def __init__(self, path, what="output", overwrite=False):
        self.path = check_output_path(path, what, overwrite)
        self.what, self.overwrite = what, overwrite
        self.folder = os.path.dirname(os.path.abspath(self.path))
        remove_temporaries(self.path)
        try:
            fd, self.tmp = tempfile.mkstemp(prefix=_temp_prefix(self.path),
                                            suffix=".npz", dir=self.folder)
        except OSError as exc:
            raise InputError(f"{what}: cannot create a file in {self.folder}: "
                             f"{exc.strerror or exc}") from None
        os.close(fd)

    def write_npz(self, **arrays):
        """Write the arrays, fsync, rename over the destination, fsync the folder."""
        if self.tmp is None:
            raise RuntimeError(f"{self.path}: this reservation was already used")
        try:
            with open(self.tmp, "wb") as fh:
                np.savez(fh, **arrays)
                fh.flush()
                os.fsync(fh.fileno())
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(self.tmp, 0o666 & ~umask)    # mkstemp makes 0600; results are shared
            check_output_path(self.path, self.what, self.overwrite)   # nothing appeared meanwhile
            os.replace(self.tmp, self.path)
            self.tmp = None
            fsync_folder(self.folder)
        except BaseException:
            self.discard()
            raise
        return self.path

    def discard(self):
        """Remove the temporary file (the destination is untouched)."""
        if self.tmp is not None:
            try:
                os.unlink(self.tmp)
            except FileNotFoundError:
                pass
            self.tmp = None


def atomic_savez(path, overwrite=True, **arrays):
    """Write an .npz atomically (``ReservedOutput`` then ``write_npz``); ``path`` may be a
    ``ReservedOutput`` made before the work."""
    if isinstance(path, ReservedOutput):
        return path.write_npz(**arrays)
    return ReservedOutput(path, "output", overwrite).write_npz(**arrays)
