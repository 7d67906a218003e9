"""DeepLabCut prediction tables (.h5 written by pandas/PyTables, and .csv)."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np

from ._keypoints import KeypointData

#: DeepLabCut's name for the pseudo-individual that holds a multi-animal
#: project's unique (scene) bodyparts.
UNIQUE_BODYPARTS_INDIVIDUAL = "single"

_HEADER_NAMES = ("scorer", "individuals", "bodyparts", "coords")
_PREFERRED_KEYS = ("/df_with_missing", "/tracks")


def _require_pandas():
    try:
        import pandas as pd
    except ImportError as exc:  # pragma: no cover - pandas comes with pynapple
        raise ImportError(
            "reading DeepLabCut files needs pandas: pip install 'behavhmm[io]'."
        ) from exc
    return pd


def _frame_from_store(path: Path, key: str):
    """A pandas DataFrame rebuilt from the arrays `read_pandas_frame` read with h5py."""
    pd = _require_pandas()
    from ._pandas_hdf5 import read_pandas_frame

    frame = read_pandas_frame(path, key)
    if frame.columns and all(isinstance(c, tuple) for c in frame.columns):
        names = frame.column_names
        width = len(frame.columns[0])
        if names is None or len(names) != width:
            names = [None] * width
        columns = pd.MultiIndex.from_tuples(frame.columns, names=names)
    else:
        columns = pd.Index(frame.columns)
    index = None if frame.index is None else pd.Index(frame.index)
    return pd.DataFrame(frame.values, columns=columns, index=index, copy=False)


def read_dlc_h5(path: Path):
    """The DataFrame of a DeepLabCut .h5 file (a pandas HDF5 store with one table).

    The store is read with h5py, not with pandas/PyTables: both layouts pandas
    writes (``fixed``, the default of ``DataFrame.to_hdf``, and ``table``,
    DeepLabCut's) are rebuilt from their arrays, and the pickled attributes
    that hold the ``table`` layout's column labels are decoded by an
    unpickler that builds only lists, tuples, dicts, strings and numbers
    (`behavhmm.io._pandas_hdf5.load_plain_pickle`). Nothing in the file ever
    reaches an unrestricted unpickler, so no file can run code.

    Raises
    ------
    ValueError
        If the file holds no pandas table, several without a DeepLabCut
        name, a table of non-numeric values, or metadata pickles that name
        anything but plain data types (the message names the file).
    """
    import h5py

    from ._pandas_hdf5 import pandas_keys

    try:
        with h5py.File(path, "r") as f:
            keys = pandas_keys(f)
    except OSError as exc:
        raise ValueError(f"{path} is not a readable HDF5 file: {exc}") from None
    if not keys:
        raise ValueError(f"{path} holds no pandas table, so it is not a DeepLabCut .h5 file.")
    if len(keys) == 1:
        key = keys[0]
    else:
        preferred = [k for k in _PREFERRED_KEYS if k in keys]
        if not preferred:
            raise ValueError(
                f"{path} holds several pandas tables {keys}; DeepLabCut predictions are stored "
                "under "
                f"{[k.strip('/') for k in _PREFERRED_KEYS]}."
            )
        key = preferred[0]
    return _frame_from_store(path, key)


def _csv_layout(path: Path) -> tuple[int, int]:
    """(number of header rows, number of index columns) of a DeepLabCut CSV."""
    with open(path, newline="") as handle:
        reader = csv.reader(handle)
        rows = []
        for row in reader:
            if not row or row[0].strip().lower() not in _HEADER_NAMES:
                break
            rows.append(row)
            if len(rows) == 4:
                break
    if len(rows) < 3 or rows[0][0].strip().lower() != "scorer":
        raise ValueError(
            f"{path} is not a DeepLabCut CSV: its first column should start with the header rows "
            "'scorer', ['individuals',] 'bodyparts', 'coords'."
        )
    # Labelled-data CSVs (CollectedData_*.csv) spread the image path over 3 index columns,
    # and then the header rows leave those cells empty.
    coords_row = rows[-1]
    n_index = 1
    while n_index < len(coords_row) and coords_row[n_index].strip() == "":
        n_index += 1
    return len(rows), n_index


def _ragged_rows(path: Path, n_header: int) -> tuple[list[list[str]], list[int], list[int]]:
    """Header rows, and the line numbers of data rows shorter and longer than the header."""
    short, long = [], []
    with open(path, newline="") as handle:
        reader = csv.reader(handle)
        header = [next(reader) for _ in range(n_header)]
        width = len(header[-1])
        for row in reader:
            if not row:
                continue
            if len(row) < width:
                short.append(reader.line_num)
            elif len(row) > width:
                long.append(reader.line_num)
    return header, short, long


def read_dlc_csv(path: Path):
    """The DataFrame of a DeepLabCut .csv file with 3 or 4 header rows.

    Raises
    ------
    ValueError
        If a data row has more fields than the header (the message names the
        file and the line).

    Warns
    -----
    UserWarning
        If data rows have fewer fields than the header (a truncated file): the
        message names the file and the lines, whose missing values are NaN.
    """
    pd = _require_pandas()
    n_header, n_index = _csv_layout(path)
    header, short, long = _ragged_rows(path, n_header)
    width = len(header[-1])
    if long:
        raise ValueError(
            f"{path}: line {long[0]} has more fields than the {width} columns of the header "
            f"({len(long)} such line(s)); the file is not a valid DeepLabCut CSV."
        )
    if not short:
        return pd.read_csv(path, header=list(range(n_header)), index_col=list(range(n_index)))
    warnings.warn(
        f"{path}: {len(short)} data row(s) have fewer fields than the {width} columns of the "
        f"header (line(s) {', '.join(map(str, short[:5]))}{', ...' if len(short) > 5 else ''}); "
        "their missing values are read as NaN.",
        UserWarning,
        stacklevel=6,  # the caller of load_keypoints
    )
    # With a short first data row, pandas would drop the columns that row lacks from every row;
    # explicit column names keep them, and short rows are padded with NaN.
    df = pd.read_csv(
        path,
        header=None,
        skiprows=n_header,
        names=list(range(width)),
        index_col=list(range(n_index)),
    )
    df.columns = pd.MultiIndex.from_arrays(
        [row[n_index:width] for row in header], names=[row[0] for row in header]
    )
    return df


def _frames_from_index(index) -> np.ndarray | None:
    try:
        values = np.asarray(index)
    except Exception:  # pragma: no cover - exotic indexes
        return None
    if values.ndim == 1 and np.issubdtype(values.dtype, np.integer):
        return values.astype(np.int64)
    return None


def dataframe_to_sessions(
    df, *, source: str | None, format: str = "deeplabcut"
) -> list[KeypointData]:
    """Split a DeepLabCut DataFrame into one `KeypointData` per individual.

    The columns are a MultiIndex ``scorer/[individuals/]bodyparts/coords``
    where coords are ``x, y[, z][, likelihood]``. In 2-D files a point whose
    x, y and likelihood are all exactly 0 was not detected (multi-animal
    DeepLabCut writes (0, 0, 0)); it becomes NaN with confidence 0.
    """
    pd = _require_pandas()
    columns = df.columns
    level_ind, level_bp, level_coord = _column_levels(columns, source, pd)
    scorers = columns.get_level_values(0).unique()
    if len(scorers) > 1:
        raise ValueError(f"{source}: the table mixes several scorers {list(scorers)}; keep one.")
    frames = _frames_from_index(df.index)
    values = df.to_numpy(dtype=np.float64, na_value=np.nan)
    individuals = (
        _unique(columns.get_level_values(level_ind)) if level_ind is not None else ["id_0"]
    )
    coords = _unique(columns.get_level_values(level_coord))
    spatial = [c for c in ("x", "y", "z") if c in coords]
    if spatial not in (["x", "y"], ["x", "y", "z"]):
        raise ValueError(f"{source}: coords must include x and y (and optionally z), got {coords}.")
    has_likelihood = "likelihood" in coords
    position = {key: i for i, key in enumerate(tuple(str(v) for v in c) for c in columns)}
    scorer = str(scorers[0])
    sessions = []
    for individual in individuals:
        if level_ind is None:
            bps = _unique(columns.get_level_values(level_bp))
            prefix = (scorer,)
        else:
            mask = columns.get_level_values(level_ind).astype(str) == individual
            bps = _unique(columns.get_level_values(level_bp)[mask])
            prefix = (scorer, individual)
        xyz, conf = _bodypart_arrays(values, position, prefix, bps, spatial, has_likelihood)
        sessions.append(
            KeypointData(
                coordinates=xyz,
                confidence=conf,
                bodyparts=bps,
                individual=individual,
                frames=frames,
                source=source,
                format=format,
            )
        )
    return sessions


def _unique(seq) -> list[str]:
    """The distinct values of ``seq`` as strings, in order of first appearance."""
    return list(dict.fromkeys(str(v) for v in seq))


def _column_levels(columns, source, pd):
    """The column levels of individuals (None in single-animal tables), bodyparts and coords;
    raises when the columns are not DeepLabCut's."""
    if not isinstance(columns, pd.MultiIndex) or columns.nlevels not in (3, 4):
        raise ValueError(
            f"{source}: a DeepLabCut table has MultiIndex columns "
            "scorer/[individuals/]bodyparts/coords, "
            f"got {columns.nlevels if isinstance(columns, pd.MultiIndex) else 1} column level(s)."
        )
    names = [str(n).lower() if n is not None else None for n in columns.names]
    if columns.nlevels == 4:
        level_ind, level_bp, level_coord = 1, 2, 3
    else:
        level_ind, level_bp, level_coord = None, 1, 2
    if names[level_bp] not in (None, "bodyparts") or names[level_coord] not in (None, "coords"):
        raise ValueError(f"{source}: unexpected DeepLabCut column levels {columns.names}.")
    return level_ind, level_bp, level_coord


def _bodypart_arrays(values, position, prefix, bodyparts, spatial, has_likelihood):
    """Coordinates (NaN where a column is absent, or a 2-D point is undetected) and confidences
    of one individual's bodyparts, from the columns keyed ``prefix + (bodypart, coord)``."""

    def column(bp, coord):
        j = position.get((*prefix, bp, coord))
        return None if j is None else values[:, j]

    n = len(values)
    xyz = np.full((n, len(bodyparts), len(spatial)), np.nan)
    conf = np.ones((n, len(bodyparts)))
    for k, bp in enumerate(bodyparts):
        for d, c in enumerate(spatial):
            col = column(bp, c)
            if col is not None:
                xyz[:, k, d] = col
        if has_likelihood:
            col = column(bp, "likelihood")
            conf[:, k] = np.nan if col is None else col
    if has_likelihood and len(spatial) == 2:
        undetected = np.all(xyz == 0.0, axis=2) & (conf == 0.0)
        xyz[undetected] = np.nan
    return xyz, conf


def load_deeplabcut(path: Path) -> list[KeypointData]:
    """All sessions of a DeepLabCut .h5 or .csv prediction file."""
    with open(path, "rb") as handle:
        is_hdf5 = handle.read(8) == b"\x89HDF\r\n\x1a\n"
    df = read_dlc_h5(path) if is_hdf5 else read_dlc_csv(path)
    return dataframe_to_sessions(df, source=str(path))
