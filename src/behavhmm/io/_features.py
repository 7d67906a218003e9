"""Per-sequence feature tables (LISBET embeddings, plain CSV/NPY/HDF5) on one time axis."""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import NamedTuple

import numpy as np

__all__ = ["Features", "load_features"]

_SUFFIXES = (".csv", ".npy", ".h5", ".hdf5")


class Features(NamedTuple):
    """Feature tables concatenated in time (from [`load_features`][behavhmm.io.load_features]).

    Attributes
    ----------
    X : ndarray of float, shape (n_time_bins, n_features)
    session_starts : ndarray of bool, shape (n_time_bins,)
        True at the first frame of every sequence.
    names : list of str
        One name per sequence, in order (LISBET's key: the folder of the
        file relative to the root; for other files their relative path
        without suffix).
    columns : list of str
        Feature names (CSV headers, else ``"0"``, ``"1"``, ...).
    """

    X: np.ndarray
    session_starts: np.ndarray
    names: list
    columns: list


def _read_csv(path: Path) -> tuple[np.ndarray, list[str]]:
    import pandas as pd

    table = pd.read_csv(path)
    first = str(table.columns[0])
    if first == "" or first.startswith(
        "Unnamed: 0"
    ):  # an index column, as pandas (and LISBET) write it
        table = table.iloc[:, 1:]
    try:
        values = table.to_numpy(dtype=float)
    except ValueError as err:
        raise ValueError(
            f"{path}: every column of a feature table must be numeric ({err})."
        ) from None
    return values, [str(c) for c in table.columns]


def _read_hdf5(path: Path, key: str | None) -> np.ndarray:
    import h5py

    with h5py.File(path, "r") as fh:
        if key is None:
            found = []
            fh.visititems(
                lambda name, obj: found.append(name) if isinstance(obj, h5py.Dataset) else None
            )
            if len(found) != 1:
                raise ValueError(
                    f"{path} holds {len(found)} datasets ({found[:5]}); pass key= to choose one."
                )
            key = found[0]
        if key not in fh or not isinstance(fh[key], h5py.Dataset):
            raise ValueError(f"{path} has no dataset {key!r}.")
        return np.asarray(fh[key][()], dtype=float)


def _files(root: Path) -> list[tuple[str, Path]]:
    lisbet = sorted(root.rglob("features_*_embedding.csv"))
    if lisbet:
        return [(str(p.parent.relative_to(root).as_posix()), p) for p in lisbet]
    found = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in _SUFFIXES)
    return [(str(p.relative_to(root).with_suffix("").as_posix()), p) for p in found]


def load_features(
    path: str | PathLike, *, key: str | None = None, pattern: str | None = None
) -> Features:
    """Read per-sequence feature tables into one array with session starts.

    Parameters
    ----------
    path : str or path-like
        A folder or one file. In a folder, LISBET's layout
        ``embeddings/<key>/features_*_embedding.csv`` (at any depth) is used
        when present (the sequence name is ``<key>``, the file's folder);
        otherwise every ``.csv``, ``.npy``, ``.h5`` and ``.hdf5`` file below
        it, one sequence each, named by its relative path without suffix.
        Sequences are sorted by name.
    key : str, optional
        Dataset to read from HDF5 files (default: their only dataset).
    pattern : str, optional
        Glob (e.g. ``"**/*.npy"``) choosing the files, instead of the rules above.

    Returns
    -------
    Features
        ``X`` (float64, frames x features), ``session_starts`` (bool mask),
        ``names`` and ``columns``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist or holds no feature file.
    ValueError
        For a table that is not 2-D or not numeric, sequences with different
        numbers of features or different column names, or an empty table.

    Examples
    --------
    >>> from behavhmm.io import load_features
    >>> feats = load_features("lisbet_output/embeddings/lisbet32x4")  # doctest: +SKIP
    >>> scan = scan_n_states(GaussianHMM(n_iter=10), feats.X, feats.session_starts,
    ...                      sequence_names=feats.names)  # doctest: +SKIP
    """
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"path does not exist: {root}")
    if root.is_file():
        files = [(root.stem, root)]
    elif pattern is not None:
        files = [
            (str(p.relative_to(root).with_suffix("").as_posix()), p)
            for p in sorted(root.glob(pattern))
            if p.is_file()
        ]
    else:
        files = _files(root)
    if not files:
        raise FileNotFoundError(f"no feature file (.csv, .npy, .h5, .hdf5) under {root}.")
    files.sort(key=lambda item: item[0])
    blocks, names, columns = [], [], None
    for name, file in files:
        suffix = file.suffix.lower()
        cols = None
        if suffix == ".csv":
            values, cols = _read_csv(file)
        elif suffix == ".npy":
            values = np.load(file, allow_pickle=False).astype(float)
        elif suffix in (".h5", ".hdf5"):
            values = _read_hdf5(file, key)
        else:
            raise ValueError(
                f"{file}: unsupported feature file suffix {file.suffix!r} "
                f"(use {', '.join(_SUFFIXES)})."
            )
        if values.ndim == 1:
            values = values[:, None]
        if values.ndim != 2 or values.shape[0] == 0:
            raise ValueError(
                f"{file}: a feature table must be 2-D (frames, features) with frames, "
                f"got {values.shape}."
            )
        cols = cols or [str(i) for i in range(values.shape[1])]
        if columns is None:
            columns, first = cols, file
        elif values.shape[1] != len(columns):
            raise ValueError(
                f"{file} has {values.shape[1]} features but {first} has {len(columns)}: "
                "every sequence needs the same."
            )
        elif cols != columns:
            raise ValueError(
                f"{file} has columns {cols[:5]}... but {first} has {columns[:5]}...: "
                "they must match."
            )
        blocks.append(values)
        names.append(name)
    X = np.concatenate(blocks, axis=0)
    starts = np.zeros(X.shape[0], bool)
    starts[np.cumsum([0] + [b.shape[0] for b in blocks[:-1]])] = True
    return Features(X, starts, names, list(columns))
