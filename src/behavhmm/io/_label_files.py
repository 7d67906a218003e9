"""Hand-label files: daart one-hot CSVs, BORIS event exports and plain per-frame CSVs.

Every reader returns [`LabelFile`][behavhmm.io.LabelFile]: one integer label per frame
(-1: unlabelled or background) and the class names, ready for ``fit(labels=...,
class_names=...)``. [`write_daart_labels`][behavhmm.io.write_daart_labels] writes states
(or labels) in daart's layout, so a behavhmm fit can be compared with a daart model.

Layouts
-------
daart (``labels-hand/<session>_labels.csv``, read by ``daart.data.load_label_csv``)
    A header row (an empty first name, then ``background`` and the class names),
    then one row per frame: the frame index and a one-hot row of 0/1. Column 0
    (background) means "no behaviour labelled" and becomes -1 here.
BORIS tabular events export (Observations > Export events, CSV/TSV)
    One row per event with the columns ``Behavior``, ``Behavior type`` (called
    ``Status`` by BORIS < 8) holding ``START``/``STOP``/``POINT``, and ``Time``
    in seconds. BORIS's aggregated export (``Start (s)``, ``Stop (s)``) is read
    too. State events cover the frames ``t`` with ``start <= t / fps < stop``;
    point events are ignored.
plain per-frame CSV
    A header and one row per frame with a column ``label`` (or ``state``):
    integers (-1 unlabelled) or class names (empty: unlabelled).
"""

from __future__ import annotations

import csv
import math
from os import PathLike
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .._files import atomic_path

__all__ = [
    "LabelFile",
    "read_boris_events",
    "read_daart_labels",
    "read_label_file",
    "read_plain_labels",
    "write_daart_labels",
    "write_plain_labels",
]


class LabelFile(NamedTuple):
    """Per-frame hand labels read from a file.

    Attributes
    ----------
    labels : ndarray of int64, shape (n_frames,)
        Class index of every frame (``0..n_classes-1``), -1 where unlabelled.
    class_names : list of str
        Name of each class, in index order (daart's background column is not a class).
    """

    labels: np.ndarray
    class_names: list


def _rows(path: Path, delimiter=None) -> list[list[str]]:
    if not path.is_file():
        raise FileNotFoundError(f"No label file at {path}.")
    text = path.read_text(encoding="utf-8-sig")
    if not text.strip():
        raise ValueError(f"{path} is empty; expected a label table.")
    if delimiter is None:
        delimiter = (
            "\t" if text.split("\n", 1)[0].count("\t") > text.split("\n", 1)[0].count(",") else ","
        )
    return [row for row in csv.reader(text.splitlines(), delimiter=delimiter) if row]


def read_daart_labels(path: str | PathLike) -> LabelFile:
    """Read a daart one-hot label CSV (column 0 = background -> -1).

    Parameters
    ----------
    path : str or path-like
        A CSV with a header row (first name empty or an index name, then
        ``background`` and the class names) and one row per frame: the
        frame index, then 0/1 per column with at most one 1.

    Returns
    -------
    LabelFile
        ``labels`` of shape (n_frames,): the hot column minus 1 (background
        and all-zero rows give -1); ``class_names``: the header after
        ``background``.

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ValueError
        If the file has no class column, a row of the wrong length, a value
        other than 0/1, or a row with more than one 1 (the message names the
        file and the row).
    """
    path = Path(path)
    rows = _rows(path, ",")
    header, body = rows[0], rows[1:]
    if len(header) < 3:
        raise ValueError(
            f"{path}: a daart label file has an index column, a background column and at least "
            f"one class column; the header has {len(header)} column(s)."
        )
    width = len(header)
    hot = np.zeros((len(body), width - 1), dtype=np.int64)
    for i, row in enumerate(body):
        if len(row) != width:
            raise ValueError(f"{path}: row {i + 2} has {len(row)} values, the header {width}.")
        try:
            values = [float(v) for v in row[1:]]
        except ValueError:
            raise ValueError(f"{path}: row {i + 2} holds a value that is not 0 or 1.") from None
        if any(v not in (0.0, 1.0) for v in values):
            raise ValueError(f"{path}: row {i + 2} holds a value that is not 0 or 1.")
        hot[i] = values
    if np.any(hot.sum(axis=1) > 1):
        bad = int(np.flatnonzero(hot.sum(axis=1) > 1)[0])
        raise ValueError(f"{path}: row {bad + 2} has more than one class set (not one-hot).")
    labels = np.where(hot.sum(axis=1) == 0, 0, hot.argmax(axis=1)) - 1
    return LabelFile(labels.astype(np.int64), [h.strip() for h in header[2:]])


def write_daart_labels(path: str | PathLike, labels, class_names=None) -> Path:
    """Write per-frame labels or states as a daart one-hot CSV, atomically.

    Parameters
    ----------
    path : str or path-like
    labels : array-like of int, shape (n_frames,)
        Class (state) of every frame, -1 for background / none.
    class_names : sequence of str, optional
        One name per class (default: ``"state_0"``, ``"state_1"``, ... up to
        the largest label).

    Returns
    -------
    Path

    Raises
    ------
    ValueError
        If ``labels`` is not 1-D integers >= -1, or a label has no class name.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer) or np.any(labels < -1):
        raise ValueError("labels must be a 1-D integer array with values >= -1.")
    n = int(labels.max(initial=-1)) + 1
    names = list(class_names) if class_names is not None else [f"state_{k}" for k in range(n)]
    if len(names) < n:
        raise ValueError(f"labels go up to {n - 1} but only {len(names)} class names are given.")
    if "background" in names:
        raise ValueError("'background' is daart's column 0; no class may have that name.")
    hot = np.zeros((len(labels), len(names) + 1), dtype=np.int64)
    hot[np.arange(len(labels)), labels + 1] = 1
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["", "background", *names])
        for i, row in enumerate(hot):
            writer.writerow([i, *row.tolist()])
    return path


def _class_index(names_seen: list[str], class_names, path) -> tuple[list[str], dict]:
    if class_names is None:
        ordered = sorted(set(names_seen))
    else:
        ordered = list(class_names)
        unknown = sorted(set(names_seen) - set(ordered))
        if unknown:
            raise ValueError(f"{path}: classes {unknown} are not in class_names {ordered}.")
    return ordered, {name: k for k, name in enumerate(ordered)}


def _boris_intervals(path: Path, header: list[str], body: list[list[str]]) -> list:
    """(behaviour, start, stop) of every state event of a BORIS export."""
    col = {name.strip(): j for j, name in enumerate(header)}
    behaviour = col.get("Behavior")
    if behaviour is None:
        raise ValueError(f"{path}: no 'Behavior' column; is this a BORIS events export?")
    if "Start (s)" in col and "Stop (s)" in col:  # aggregated export: one row per state
        kind = col.get("Behavior type")
        out = []
        for row in body:
            if kind is not None and row[kind].strip().upper() == "POINT":
                continue
            out.append((row[behaviour], float(row[col["Start (s)"]]), float(row[col["Stop (s)"]])))
        return out
    status = col.get("Behavior type", col.get("Status"))
    if status is None or "Time" not in col:
        raise ValueError(
            f"{path}: a BORIS events export needs the columns Behavior, Behavior type (or Status) "
            "and Time (or Start (s) and Stop (s))."
        )
    open_events, out = {}, []
    for i, row in enumerate(body):
        name, what = row[behaviour], row[status].strip().upper()
        time = float(row[col["Time"]])
        if what == "START":
            if name in open_events:
                raise ValueError(f"{path}: row {i + 2} starts {name!r} again before it stopped.")
            open_events[name] = time
        elif what == "STOP":
            if name not in open_events:
                raise ValueError(f"{path}: row {i + 2} stops {name!r}, which was not started.")
            out.append((name, open_events.pop(name), time))
        elif what != "POINT":
            raise ValueError(f"{path}: row {i + 2} has the status {what!r} (START/STOP/POINT).")
    if open_events:
        raise ValueError(f"{path}: {sorted(open_events)} started but never stopped.")
    return out


def read_boris_events(
    path: str | PathLike, fps: float, *, n_frames: int | None = None, class_names=None
) -> LabelFile:
    """Read a BORIS events export (tabular or aggregated) as per-frame labels.

    Parameters
    ----------
    path : str or path-like
        CSV or TSV exported by BORIS (see the module docstring for the columns).
    fps : float
        Frames per second of the video: frame ``t`` lies at ``t / fps`` seconds.
    n_frames : int, optional
        Frames of the session (default: up to the last stop time).
    class_names : sequence of str, optional
        The classes in index order (default: the behaviours, sorted by name).

    Returns
    -------
    LabelFile
        Frames in no state event are -1; where state events overlap, the
        later-starting one wins.

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ValueError
        If a column is missing, a state is stopped before it starts (or never
        stops), a time is not a number, ``fps`` is not positive, or a
        behaviour is not in ``class_names``.
    """
    path = Path(path)
    if not (isinstance(fps, int | float) and math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps!r}.")
    rows = _rows(path)
    start = next((i for i, r in enumerate(rows) if "Behavior" in [c.strip() for c in r]), None)
    if start is None:
        raise ValueError(f"{path}: no 'Behavior' column; is this a BORIS events export?")
    try:
        intervals = _boris_intervals(path, rows[start], rows[start + 1 :])
    except (IndexError, ValueError) as exc:
        if str(exc).startswith(str(path)):
            raise
        raise ValueError(
            f"{path}: a row is too short or holds a time that is not a number."
        ) from None
    names, index = _class_index([b for b, _, _ in intervals], class_names, path)
    last = max((stop for _, _, stop in intervals), default=0.0)
    n = int(math.ceil(last * fps - 1e-9)) if n_frames is None else int(n_frames)
    labels = np.full(n, -1, dtype=np.int64)
    times = np.arange(n) / fps
    for name, begin, stop in sorted(intervals, key=lambda item: item[1]):
        labels[(times >= begin) & (times < stop)] = index[name]
    return LabelFile(labels, names)


def read_plain_labels(path: str | PathLike, *, column=None, class_names=None) -> LabelFile:
    """Read a per-frame label CSV: one row per frame, a ``label`` (or ``state``) column.

    Parameters
    ----------
    path : str or path-like
    column : str, optional
        The label column (default: ``label``, else ``state``, else the only column).
    class_names : sequence of str, optional
        For text labels: the classes in index order (default: sorted names).

    Returns
    -------
    LabelFile
        Integer columns are used as they are (-1 unlabelled; class names
        ``"0"``, ``"1"``, ...); text columns map names to indices (an empty
        cell is unlabelled).

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ValueError
        If the column is missing, integers are below -1 or not whole, or a
        name is not in ``class_names``.
    """
    path = Path(path)
    rows = _rows(path)
    header, body = [h.strip() for h in rows[0]], rows[1:]
    if column is None:
        column = next((c for c in ("label", "state") if c in header), None)
        if column is None and len(header) == 1:
            column = header[0]
    if column not in header:
        raise ValueError(f"{path}: no label column (looked for {column or 'label or state'!r}).")
    j = header.index(column)
    cells = [row[j].strip() if j < len(row) else "" for row in body]
    try:
        values = np.array([float(c) if c else -1.0 for c in cells])
    except ValueError:
        names, index = _class_index([c for c in cells if c], class_names, path)
        labels = np.array([index[c] if c else -1 for c in cells], dtype=np.int64)
        return LabelFile(labels, names)
    if np.any(values != np.round(values)) or np.any(values < -1):
        raise ValueError(f"{path}: labels must be whole numbers >= -1 (-1: unlabelled).")
    labels = values.astype(np.int64)
    n = int(labels.max(initial=-1)) + 1
    names = list(class_names) if class_names is not None else [str(k) for k in range(n)]
    return LabelFile(labels, names)


def write_plain_labels(path: str | PathLike, labels, class_names=None) -> Path:
    """Write ``frame,label`` rows (label: the class name when names are given, else the index).

    Returns
    -------
    Path
    """
    labels = np.asarray(labels)
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["frame", "label"])
        for i, value in enumerate(labels.tolist()):
            if class_names:
                writer.writerow([i, "" if value < 0 else class_names[value]])
            else:
                writer.writerow([i, value])
    return path


def _looks_like(path: Path) -> str:
    first = _rows(path)[:40]
    flat = [c.strip() for row in first for c in row]
    if "Behavior" in flat:
        return "boris"
    if len(first[0]) >= 3 and first[0][1].strip().lower() == "background":
        return "daart"
    return "plain"


def read_label_file(
    path: str | PathLike, format: str = "auto", *, fps=None, n_frames=None, class_names=None
) -> LabelFile:
    """Read hand labels from a daart CSV, a BORIS export or a plain per-frame CSV.

    Parameters
    ----------
    path : str or path-like
    format : {"auto", "daart", "boris", "plain"}, default "auto"
        "auto": a ``Behavior`` column means BORIS, a second header name
        ``background`` means daart, anything else a plain table.
    fps, n_frames : optional
        For BORIS files (see `read_boris_events`).
    class_names : sequence of str, optional
        Class order for BORIS and text labels.

    Returns
    -------
    LabelFile

    Raises
    ------
    ValueError
        For an unknown ``format``, a BORIS file without ``fps``, or a bad file.
    FileNotFoundError
        If there is no file at ``path``.
    """
    path = Path(path)
    if format not in ("auto", "daart", "boris", "plain"):
        raise ValueError(f"format must be 'auto', 'daart', 'boris' or 'plain', got {format!r}.")
    kind = _looks_like(path) if format == "auto" else format
    if kind == "daart":
        return read_daart_labels(path)
    if kind == "boris":
        if fps is None:
            raise ValueError(f"{path} is a BORIS export (times in seconds): give fps.")
        return read_boris_events(path, fps, n_frames=n_frames, class_names=class_names)
    return read_plain_labels(path, class_names=class_names)
