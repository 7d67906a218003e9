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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # another user's process, or we cannot tell: keep its file
    return True


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove temporary files that an interrupted write to ``path`` left beside it.

    `atomic_path` names its temporary files ``.<name>.<pid>-<random>.tmp``. A
    process killed while writing (SIGKILL, power loss) cannot remove its
    file; the next write to the same destination removes every such file
    whose process is no longer running on this machine. Files of running
    processes (including this one) are kept.

    Parameters
    ----------
    path : str or path-like
        The destination whose temporaries to remove.

    Returns
    -------
    list of Path
        The files removed.
    """
    path = Path(path)
    removed = []
    prefix = f".{path.name}."
    try:
        candidates = [
            c
            for c in path.parent.iterdir()
            if c.name.startswith(prefix) and c.name.endswith(".tmp")
        ]
    except OSError:
        return removed
    for candidate in candidates:
        middle = candidate.name[len(prefix) : -len(".tmp")]
        pid_text = middle.split("-", 1)[0]
        if "-" not in middle or not pid_text.isdigit():
            continue
        pid = int(pid_text)
        if pid == os.getpid() or _pid_alive(pid):
            continue
        try:
            candidate.unlink()
            removed.append(candidate)
        except OSError:
            pass
    return removed


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one rename.

    The destination is never left half written: a crash or an exception while
    writing leaves the previous file (if any) untouched and removes the
    temporary file. A process killed outright cannot remove it; its
    temporary file (``.<name>.<pid>-<random>.tmp``) is removed by the next
    write to the same destination (`remove_stale_temporaries`). The new file
    gets the usual permissions (``0o666`` less the umask), not ``mkstemp``'s
    private ``0o600``.

    Parameters
    ----------
    path : str or path-like
        Destination; its parent folder is created if needed.

    Yields
    ------
    Path
        The temporary file to write (it exists, empty).

    Raises
    ------
    OSError
        If writing fails (a full disk, a failed rename): the message names
        ``path``, which is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.{os.getpid()}-", suffix=".tmp", dir=path.parent
    )
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError) and str(path) not in str(exc):  # e.g. a full disk
            raise type(exc)(
                exc.errno, f"could not write {path} (left unchanged): {exc.strerror or exc}"
            ) from exc
        raise


#: Largest expansion of a compressed .npz member behavhmm accepts (its own files are not
#: compressed).
MAX_NPZ_EXPANSION = 20
#: Uncompressed bytes always accepted, whatever the compression ratio.
_NPZ_FREE_BYTES = 2**20
_MAX_NPZ_MEMBERS = 10_000


def read_npz(
    path: str | os.PathLike,
    *,
    string_keys=(),
    max_string_bytes: int = 16 * 2**20,
    what: str = ".npz file",
):
    """Read every array of an ``.npz`` archive, checking sizes before anything is decompressed.

    Each member's ``.npy`` header is read and checked against the zip
    directory first: the array must be numeric or boolean (never an object
    array, which would need pickle), its size must equal the member's
    uncompressed size, and the archive as a whole may expand at most
    `MAX_NPZ_EXPANSION` times its compressed size (plus 1 MiB), so a small
    crafted file cannot make the reader allocate a large array. Then the
    arrays are read with ``numpy.load(allow_pickle=False)``; a truncated or
    corrupted archive (CRC mismatch) gives a ``ValueError``.

    Parameters
    ----------
    path : str or path-like
    string_keys : collection of str
        Members that may hold a string array (JSON metadata), at most
        ``max_string_bytes`` long.
    max_string_bytes : int
    what : str
        What the file should be, for error messages.

    Returns
    -------
    dict of str to ndarray

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ValueError
        If the file is not a readable .npz archive, holds object arrays or
        members that are not ``.npy`` arrays, declares sizes that do not add
        up, expands too much, or is truncated or corrupted. The message names
        the file.
    """
    import zipfile

    import numpy as np

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No {what} at {path}.")
    bad = f"{path} is not a readable {what}"
    try:
        with open(path, "rb") as fh:
            if fh.read(4) != b"PK\x03\x04":
                raise ValueError(f"{bad} (not a zip archive).")
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            if len(infos) > _MAX_NPZ_MEMBERS:
                raise ValueError(f"{bad}: it has {len(infos)} members.")
            names = [info.filename for info in infos]
            if len(set(names)) != len(names):
                raise ValueError(f"{bad}: it lists a member twice.")
            compressed = sum(info.compress_size for info in infos)
            expanded = sum(info.file_size for info in infos)
            if expanded > _NPZ_FREE_BYTES + MAX_NPZ_EXPANSION * compressed:
                raise ValueError(
                    f"{bad}: its {compressed} compressed bytes claim to expand to {expanded} bytes "
                    f"(more than {MAX_NPZ_EXPANSION} times); behavhmm does not unpack such "
                    "archives."
                )
            for info in infos:
                _check_npy_member(archive, info, path, bad, string_keys, max_string_bytes)
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except ValueError as exc:
        if str(exc).startswith(str(path)):
            raise
        raise ValueError(f"{bad}: {exc}") from None
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        OSError,
        EOFError,
        KeyError,
        NotImplementedError,
    ) as exc:
        raise ValueError(f"{bad}: {type(exc).__name__}: {exc}") from None


def _check_npy_member(archive, info, path, bad: str, string_keys, max_string_bytes: int) -> None:
    """Check one member's ``.npy`` header against the zip directory (see `read_npz`)."""
    import numpy as np
    from numpy.lib import format as npy_format

    if not info.filename.endswith(".npy"):
        raise ValueError(f"{bad}: the member {info.filename!r} is not a .npy array.")
    key = info.filename[: -len(".npy")]
    with archive.open(info) as member:
        version = npy_format.read_magic(member)
        if version == (1, 0):
            shape, _, dtype = npy_format.read_array_header_1_0(member, max_header_size=10_000)
        elif version in ((2, 0), (3, 0)):
            shape, _, dtype = npy_format.read_array_header_2_0(member, max_header_size=10_000)
        else:
            raise ValueError(f"{bad}: {key} has an unknown .npy version {version}.")
        header = member.tell()
    if dtype.hasobject:
        raise ValueError(
            f"{path} holds object arrays ({key}) that need pickle; behavhmm never "
            "loads pickled data."
        )
    if dtype.kind in "US" and key not in string_keys:
        raise ValueError(f"{bad}: {key} holds strings where numbers are expected.")
    if dtype.kind not in "biufcUS" or dtype.fields is not None:
        raise ValueError(f"{bad}: {key} has the unsupported dtype {dtype}.")
    nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if header + nbytes != info.file_size:
        raise ValueError(
            f"{bad}: {key} declares {nbytes} bytes of data but the member holds "
            f"{info.file_size - header}; the file is damaged."
        )
    if dtype.kind in "US" and nbytes > max_string_bytes:
        raise ValueError(f"{bad}: {key} is a string of {nbytes} bytes.")
