"""Atomic file writing shared by every writer in the package."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one rename.

    The destination is never left half written: a crash or an exception while
    writing leaves the previous file (if any) untouched and removes the
    temporary file. The new file gets the usual permissions (``0o666`` less
    the umask), not ``mkstemp``'s private ``0o600``.

    Parameters
    ----------
    path : str or path-like
        Destination; its parent folder is created if needed.

    Yields
    ------
    Path
        The temporary file to write (it exists, empty).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
