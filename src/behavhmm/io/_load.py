"""`load_keypoints` and `detect_format`: one entry point for every keypoint format."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import replace
from os import PathLike
from pathlib import Path

import numpy as np

from ._keypoints import KeypointData, KeypointSessions

__all__ = ["FORMATS", "detect_format", "load_keypoints"]

#: Format names accepted by `load_keypoints`, with their aliases.
FORMATS = {
    "deeplabcut": ("deeplabcut", "dlc"),
    "sleap": ("sleap",),
    "nwb": ("nwb", "ndx-pose"),
    "movement": ("movement", "netcdf"),
    "anipose": ("anipose",),
}
_ALIASES = {alias: name for name, aliases in FORMATS.items() for alias in aliases}

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_HDF5_SUFFIXES = {".h5", ".hdf5", ".hdf", ".slp", ".nwb", ".nc", ".nc4", ".netcdf"}
_NETCDF3_SIGNATURE = b"CDF"


def _canonical_format(format: str) -> str:
    if not isinstance(format, str):
        raise TypeError(f"format must be a string or None, got {type(format).__name__}.")
    name = _ALIASES.get(format.strip().lower())
    if name is None:
        raise ValueError(
            f"format={format!r} is not supported; use one of {sorted(FORMATS)} or None to detect "
            "it."
        )
    return name


def _sniff_hdf5(path: Path) -> str | None:
    try:
        import h5py
    except ImportError as exc:
        raise ImportError(
            f"detecting the format of {path.name} needs h5py (or pass format=): pip install "
            "'behavhmm[io]'."
        ) from exc
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ValueError(
            f"{path} has an HDF5 signature but cannot be opened (truncated or damaged?): {exc}"
        ) from exc
    with f:
        attrs = f.attrs
        if "nwb_version" in attrs or ("specifications" in f and "processing" in f):
            return "nwb"
        if "_NCProperties" in attrs or "position" in f and "space" in f:
            return "movement"
        if "tracks" in f and "node_names" in f:
            return "sleap"
        if "metadata" in f and "points" in f and "instances" in f:
            return "sleap"
        for key in f:
            node = f[key]
            if "pandas_type" in node.attrs or "pandas_version" in node.attrs:
                return "deeplabcut"
    return None


def _sniff_csv(path: Path) -> str | None:
    with open(path, newline="") as handle:
        try:
            first = next(csv.reader(handle))
        except StopIteration:
            return None
    if first and first[0].strip().lower() == "scorer":
        return "deeplabcut"
    from ._anipose import anipose_bodyparts

    if anipose_bodyparts(first):
        return "anipose"
    return None


def detect_format(path: str | PathLike) -> str:
    """The keypoint format of a file, from its extension and content.

    HDF5 files are recognised by content whatever their extension: NWB (root
    attribute ``nwb_version``), ``movement`` NetCDF-4 (``_NCProperties``),
    SLEAP analysis (``tracks`` and ``node_names``) or project (``.slp``)
    files, and DeepLabCut tables (a pandas/PyTables store). CSV files are
    DeepLabCut tables when their first cell is ``scorer`` and Anipose
    tables when they have ``<bodypart>_x/_y`` columns with ``_error``,
    ``_ncams`` or ``_score`` beside them.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    str
        One of ``"deeplabcut"``, ``"sleap"``, ``"nwb"``, ``"movement"``,
        ``"anipose"``.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If the content matches no supported format.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"keypoint file not found: {path}")
    with open(path, "rb") as handle:
        head = handle.read(8)
    fmt = None
    if head == _HDF5_SIGNATURE:
        fmt = _sniff_hdf5(path)
    elif head.startswith(_NETCDF3_SIGNATURE):
        fmt = "movement"
    elif path.suffix.lower() in _HDF5_SUFFIXES:
        raise ValueError(f"{path} has a {path.suffix} extension but is not an HDF5 file.")
    else:
        try:
            fmt = _sniff_csv(path)
        except UnicodeDecodeError:
            fmt = None
    if fmt is None:
        raise ValueError(
            f"could not tell the keypoint format of {path}; supported formats are DeepLabCut "
            "(.h5/.csv), "
            "SLEAP (.slp/analysis .h5), NWB with ndx-pose (.nwb), movement (.nc) and Anipose "
            "(.csv). "
            "Pass format= if the file is one of them."
        )
    return fmt


def _read(path: Path, fmt: str, fps: float | None) -> list[KeypointData]:
    if fmt == "deeplabcut":
        from ._deeplabcut import load_deeplabcut

        return load_deeplabcut(path)
    if fmt == "sleap":
        from ._sleap import load_sleap_analysis, load_slp

        with open(path, "rb") as handle:
            is_hdf5 = handle.read(8) == _HDF5_SIGNATURE
        if not is_hdf5:
            raise ValueError(f"{path} is not a SLEAP file (SLEAP files are HDF5).")
        import h5py

        with h5py.File(path, "r") as f:
            analysis = "tracks" in f and "node_names" in f
        return load_sleap_analysis(path) if analysis else load_slp(path)
    if fmt == "nwb":
        from ._nwb import load_nwb

        return load_nwb(path, fps=fps)
    if fmt == "movement":
        from ._movement import load_movement

        return load_movement(path, fps=fps)
    from ._anipose import load_anipose

    return load_anipose(path)


def _read_named(path: Path, fmt: str, fps: float | None) -> list[KeypointData]:
    """`_read`, with every failure of a reader turned into a ValueError that names the file.

    Readers (h5py, pandas, sleap-io, pynwb, xarray) fail on a truncated,
    damaged or foreign file with their own types (``OSError``, ``KeyError``,
    ``IndexError``, ``TypeError``...) and messages that do not say which file;
    the user can act on neither. ImportError (a missing extra) passes as is.
    """
    try:
        return _read(path, fmt, fps)
    except (ImportError, MemoryError, RecursionError):
        raise
    except ValueError as exc:
        if str(path) in str(exc):
            raise
        raise ValueError(f"{path}: {exc}") from exc
    except Exception as exc:
        raise ValueError(
            f"{path} could not be read as a {fmt} file (truncated, damaged, or another "
            f"format?): {type(exc).__name__}: {exc}"
        ) from exc


def _is_xarray_dataset(obj) -> bool:
    module = type(obj).__module__ or ""
    return module.startswith("xarray") and type(obj).__name__ == "Dataset"


def load_keypoints(
    path,
    format: str | None = None,
    *,
    bodyparts: Sequence[str] | None = None,
    individuals: Sequence[str] | None = None,
    fps: float | None = None,
    individual_layout: str = "separate",
) -> KeypointSessions:
    """Load pose tracking files as keypoint sessions, one per individual per file.

    Reads DeepLabCut (.h5, .csv; single- and multi-animal), SLEAP (.slp
    through sleap-io; analysis .h5 through h5py), NWB with the ndx-pose
    extension (.nwb, through pynwb), ``movement`` poses datasets (NetCDF
    .nc, through xarray) and Anipose triangulation tables (.csv). Nothing is
    ever unpickled, except lists, strings and numbers of a DeepLabCut .h5's
    column names by a restricted unpickler that can build nothing else (see
    Notes).

    Parameters
    ----------
    path : str, path-like, xarray.Dataset, or a sequence of these
        One file, or several; their sessions are returned in order. An
        in-memory ``movement`` dataset is read like a NetCDF file.
    format : {"deeplabcut", "sleap", "nwb", "movement", "anipose"}, optional
        Aliases ``"dlc"``, ``"ndx-pose"`` and ``"netcdf"`` are accepted. None
        (default) detects the format of each file (`detect_format`).
    bodyparts : sequence of str, optional
        Keypoints to keep, in this order, in every session; use it to give
        files (or individuals) that list the same bodyparts in different
        orders one keypoint axis. None keeps every bodypart of the file; if
        all sessions have the same set in different orders, they all follow
        the first session's order.
    individuals : sequence of str, optional
        Individuals (tracks) to keep. None keeps every animal, except the
        ``"single"`` pseudo-individual of multi-animal DeepLabCut files, which
        holds the scene's unique bodyparts; name it here to load it.
    fps : float, optional
        Frame rate in frames per second. It overrides a rate stored in the
        file, and gives files without a clock (DeepLabCut, SLEAP, Anipose,
        NWB files whose timestamps are frame numbers) timestamps in seconds.
    individual_layout : {"separate", "stack"}, default "separate"
        ``"separate"``: one session per individual per file. ``"stack"``:
        one session per file holding every selected animal's keypoints side
        by side on the keypoint axis (one feature vector per frame, for
        social behaviour), animals in the order of ``individuals`` (else of
        the file); its bodyparts are named ``"<individual>/<bodypart>"`` and
        its ``individual`` is the animals' names joined by ``"+"``. Identity
        swaps of the tracker are not corrected: a swap exchanges the animals'
        blocks of the feature vector.

    Returns
    -------
    KeypointSessions
        A sequence of [`KeypointData`][behavhmm.io.KeypointData] whose
        ``coordinates`` (n_time_bins, n_keypoints, n_dims), ``confidence``
        (n_time_bins, n_keypoints) and ``session_starts`` (n_time_bins,)
        properties concatenate the sessions on one time axis, and whose
        ``to_pynapple()`` gives a ``TsdTensor`` with one epoch per session.

    Raises
    ------
    FileNotFoundError
        If a file does not exist.
    ValueError
        If the format is unknown or cannot be detected, the file is not of
        the given format or is malformed (the message names the file), a
        requested bodypart or individual is missing, ``fps`` is not
        positive, or a DeepLabCut .h5 holds pickled metadata that names
        anything but plain data types, or a node of pickled objects.
    TypeError
        If ``path``, ``format``, ``bodyparts`` or ``individuals`` has the
        wrong type (for example a single string for ``bodyparts``).
    ImportError
        If the library that reads the format is not installed (install the
        ``io`` extra: ``pip install 'behavhmm[io]'``).

    Warns
    -----
    UserWarning
        If NWB timestamps are frame numbers labelled seconds and ``fps`` was
        not given.

    Notes
    -----
    Missing points are NaN with confidence 0 in every format, including
    DeepLabCut's (0, 0, 0) triples for undetected multi-animal points and
    SLEAP's NaN points. Confidences are clipped to [0, 1] (SLEAP scores can
    exceed 1); formats without confidences (3-D DeepLabCut) give ones.
    Frames of a track that a SLEAP or NWB file does not cover are NaN, so
    every session spans the whole recording.

    No file content ever reaches an unrestricted unpickler, so a file cannot
    run code. A DeepLabCut .h5 is read with h5py, not with pandas/PyTables (which
    unpickles the file's metadata attributes): both pandas layouts,
    ``fixed`` and ``table``, are rebuilt from their arrays, and the few
    pickled attributes that hold the ``table`` layout's column names are
    decoded by a restricted unpickler that builds only lists, tuples, dicts,
    sets, strings and numbers; a pickle naming any other global is refused
    with a ``ValueError``. SLEAP, NWB and ``movement`` files are read by
    h5py, sleap-io (without opening the videos a .slp names), pynwb and
    xarray, none of which unpickles.

    References
    ----------
    - DeepLabCut output files:
      https://deeplabcut.github.io/DeepLabCut/docs/maDLC_UserGuide.html
    - SLEAP analysis HDF5 export:
      https://sleap.ai/tutorials/analysis.html ; sleap-io:
      https://io.sleap.ai
    - ndx-pose: https://github.com/rly/ndx-pose
    - movement datasets:
      https://movement.neuroinformatics.dev/user_guide/movement_dataset.html
    - Anipose output: https://anipose.readthedocs.io/en/latest/tutorial.html

    Examples
    --------
    >>> sessions = load_keypoints("mice.h5", bodyparts=["nose", "tail_base"])  # doctest: +SKIP
    >>> model.fit(sessions.coordinates.reshape(len(sessions.session_starts), -1),
    ...           session_starts=sessions.session_starts)  # doctest: +SKIP
    """
    fps = _check_fps(fps)
    if individual_layout not in ("separate", "stack"):
        raise ValueError(
            f'individual_layout must be "separate" or "stack", got {individual_layout!r}.'
        )
    fmt = None if format is None else _canonical_format(format)
    paths = _path_list(path)
    for name, value in (("bodyparts", bodyparts), ("individuals", individuals)):
        if isinstance(value, str):
            raise TypeError(
                f"{name} must be a sequence of names, got the string {value!r}; wrap it in a list."
            )

    sessions: list[KeypointData] = []
    for p in paths:
        if not _is_xarray_dataset(p):
            p = _existing_file(p)
        found, this_fmt = _read_source(p, fmt, fps)
        found = _select_sessions(
            found,
            this_fmt,
            p,
            bodyparts=bodyparts,
            individuals=individuals,
            fps=fps,
            individual_layout=individual_layout,
            n_paths=len(paths),
        )
        sessions.extend(found)
    return KeypointSessions(
        _check_sessions(
            sessions,
            bodyparts=bodyparts,
            individuals=individuals,
            individual_layout=individual_layout,
            n_paths=len(paths),
        )
    )


def _check_fps(fps) -> float | None:
    """``fps`` as a positive finite float (None stays None)."""
    if fps is None:
        return None
    try:
        fps = float(fps)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"fps must be a number of frames per second, got {type(fps).__name__}."
        ) from exc
    if not fps > 0 or fps == float("inf"):
        raise ValueError(f"fps must be a positive number of frames per second, got {fps!r}.")
    return fps


def _path_list(path) -> list:
    """``load_keypoints``'s ``path`` as a non-empty list of paths or datasets."""
    if isinstance(path, str | PathLike) or _is_xarray_dataset(path):
        return [path]
    if isinstance(path, Sequence) and not isinstance(path, bytes):
        paths = list(path)
        if not paths:
            raise ValueError("path is an empty sequence; give at least one file.")
        return paths
    raise TypeError(f"path must be a file path or a sequence of paths, got {type(path).__name__}.")


def _existing_file(p) -> Path:
    """One element of ``path`` as the `Path` of an existing file."""
    if not isinstance(p, str | PathLike):
        raise TypeError(
            "path must be a file path or a sequence of paths, got an element of type "
            f"{type(p).__name__}."
        )
    p = Path(p)
    if not p.is_file():
        raise FileNotFoundError(f"keypoint file not found: {p}")
    return p


def _read_source(p, fmt: str | None, fps: float | None) -> tuple[list[KeypointData], str]:
    """The sessions of one file (or in-memory ``movement`` dataset) and its format."""
    if _is_xarray_dataset(p):
        if fmt not in (None, "movement"):
            raise ValueError(
                f"an xarray Dataset is read as a movement dataset, not as format={fmt!r}."
            )
        from ._movement import dataset_to_sessions

        return dataset_to_sessions(p, source=None, fps=fps), "movement"
    this_fmt = fmt if fmt is not None else detect_format(p)
    return _read_named(p, this_fmt, fps), this_fmt


def _select_sessions(
    found: list[KeypointData],
    this_fmt: str,
    p,
    *,
    bodyparts,
    individuals,
    fps: float | None,
    individual_layout: str,
    n_paths: int,
) -> list[KeypointData]:
    """One file's sessions with ``individuals``, ``fps``, ``bodyparts`` and the layout applied."""
    if individuals is None:
        if this_fmt == "deeplabcut" and len(found) > 1:
            from ._deeplabcut import UNIQUE_BODYPARTS_INDIVIDUAL

            found = [s for s in found if s.individual != UNIQUE_BODYPARTS_INDIVIDUAL]
    else:
        wanted = [str(i) for i in individuals]
        have = [s.individual for s in found]
        if n_paths == 1:
            missing = [i for i in wanted if i not in have]
            if missing:
                raise ValueError(f"individuals {missing} not found in {p}; it holds {have}.")
        found = [s for i in wanted for s in found if s.individual == i]
    if fps is not None and this_fmt not in (
        "nwb",
        "movement",
    ):  # those readers apply fps themselves
        found = [replace(s, fps=fps, timestamps=None) for s in found]
    if bodyparts is not None:
        found = [s.select_bodyparts(bodyparts) for s in found]
    if individual_layout == "stack" and found:
        found = [
            _stack_individuals(found, source=str(p) if not _is_xarray_dataset(p) else "the dataset")
        ]
    return found


def _check_sessions(
    sessions: list[KeypointData],
    *,
    bodyparts,
    individuals,
    individual_layout: str,
    n_paths: int,
) -> list[KeypointData]:
    """Checks across files, and one bodypart order when every session has the same set."""
    if individuals is not None and n_paths > 1:
        have = {s.individual for s in sessions}
        missing = [i for i in individuals if str(i) not in have]
        if missing:
            raise ValueError(f"individuals {missing} not found in any of the {n_paths} files.")
    if individual_layout == "stack" and len(sessions) > 1:
        first = sessions[0]
        for other in sessions[1:]:
            if list(other.bodyparts) != list(first.bodyparts):
                raise ValueError(
                    "stacked files have different animals or keypoints: "
                    f"{first.source or 'the first file'} has "
                    f"{list(first.bodyparts)[:6]}..., {other.source or 'another'} has "
                    f"{list(other.bodyparts)[:6]}...; "
                    "pass individuals= and bodyparts= to give them the same layout."
                )
    if bodyparts is None and sessions:
        order = sessions[0].bodyparts
        if all(set(s.bodyparts) == set(order) for s in sessions):
            sessions = [s if s.bodyparts == order else s.select_bodyparts(order) for s in sessions]
    return sessions


def _stack_individuals(found: list[KeypointData], *, source: str) -> KeypointData:
    """One session with every individual's keypoints side by side.

    This is ``individual_layout="stack"``.
    """
    first = found[0]
    for s in found[1:]:
        if list(s.bodyparts) != list(first.bodyparts):
            raise ValueError(
                f"{source}: individuals {first.individual!r} and {s.individual!r} "
                "have different keypoints "
                f"({list(first.bodyparts)} vs {list(s.bodyparts)}); pass bodyparts= to stack them."
            )
        if s.n_frames != first.n_frames:
            raise ValueError(
                f"{source}: individuals {first.individual!r} and {s.individual!r} "
                "have different lengths."
            )
    for s in found:
        if np.isnan(s.coordinates).all():
            raise ValueError(
                f"{source}: individual {s.individual!r} is never tracked (all NaN); "
                "leave it out with individuals=."
            )
    return replace(
        first,
        coordinates=np.concatenate([s.coordinates for s in found], axis=1),
        confidence=np.concatenate([s.confidence for s in found], axis=1),
        bodyparts=[f"{s.individual}/{b}" for s in found for b in s.bodyparts],
        individual="+".join(s.individual for s in found),
    )
