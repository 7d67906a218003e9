"""Filling missing values by linear interpolation in time, one session at a time."""

from __future__ import annotations

import warnings

import numpy as np

from ._common import as_float_array, session_slices, starts_mask, wrap

__all__ = ["interpolate_nans"]

_EDGES = ("nearest", "nan")


def _nan_runs(missing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and stop indices of the runs of True in a 1-D boolean array."""
    padded = np.concatenate([[False], missing, [False]])
    change = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return change[0::2], change[1::2]


def _fill_column(column: np.ndarray, edge: str, max_gap: int | None) -> tuple[np.ndarray, bool]:
    missing = np.isnan(column)
    if not missing.any():
        return column, True
    valid = np.flatnonzero(~missing)
    if valid.size == 0:
        return column, False
    index = np.arange(column.size)
    filled = np.interp(
        index, valid, column[valid]
    )  # holds the edge values beyond the first/last valid
    keep_nan = np.zeros(column.size, dtype=bool)
    if edge == "nan":
        keep_nan[: valid[0]] = True
        keep_nan[valid[-1] + 1 :] = True
    if max_gap is not None:
        starts, stops = _nan_runs(missing)
        for a, b in zip(starts, stops, strict=True):
            if b - a > max_gap:
                keep_nan[a:b] = True
    filled[keep_nan] = np.nan
    return filled, True


def interpolate_nans(X, session_starts=None, *, edge: str = "nearest", max_gap: int | None = None):
    """Fill NaN by linear interpolation in time, within each session.

    Each column (every keypoint and spatial dimension, or every feature) is
    interpolated on its own, from the valid frames of the same session only:
    a gap at the end of one session is never filled from the next one.

    Parameters
    ----------
    X : array-like or pynapple object of shape (n_time_bins, ...)
        Keypoints (n_time_bins, n_keypoints, n_dims), features
        (n_time_bins, n_features), or any array with time first; NaN marks
        missing values. Units are kept.
    session_starts : None, bool array-like, int array-like, or pynapple IntervalSet
        Sessions (see the sessions guide); with pynapple input the epochs
        of ``time_support`` are sessions too.
    edge : {"nearest", "nan"}, default "nearest"
        Missing values before a session's first or after its last valid
        value: copy the nearest valid value, or leave NaN.
    max_gap : int, optional
        Leave runs of more than ``max_gap`` consecutive missing frames NaN
        (default: fill every gap).

    Returns
    -------
    ndarray of float64 or pynapple object, same shape as X
        Pynapple input gives a pynapple object on the same timestamps.

    Raises
    ------
    ValueError
        If ``edge`` is unknown, ``max_gap`` is not a positive integer, X
        holds infinite values, or ``session_starts`` is invalid.

    Warns
    -----
    UserWarning
        If a column is NaN for a whole session (it stays NaN; drop that
        keypoint or session).

    Examples
    --------
    >>> import numpy as np
    >>> from behavhmm.preprocessing import interpolate_nans
    >>> x = np.array([0.0, np.nan, 2.0, np.nan, 10.0, np.nan])
    >>> interpolate_nans(x, session_starts=[0, 4]).tolist()
    [0.0, 1.0, 2.0, 2.0, 10.0, 10.0]
    """
    if edge not in _EDGES:
        raise ValueError(f"edge must be one of {_EDGES}, got {edge!r}.")
    if max_gap is not None and (
        isinstance(max_gap, bool) or not isinstance(max_gap, int | np.integer) or max_gap < 1
    ):
        raise ValueError(
            f"max_gap must be a positive integer number of frames or None, got {max_gap!r}."
        )
    arr, info = as_float_array(X, "X")
    mask = starts_mask(session_starts, arr.shape[0], info)
    flat = arr.reshape(arr.shape[0], -1)
    empty = 0
    for sl in session_slices(mask):
        block = flat[sl]
        for j in np.flatnonzero(np.isnan(block).any(axis=0)):
            block[:, j], ok = _fill_column(block[:, j], edge, max_gap)
            empty += not ok
    if empty:
        warnings.warn(
            f"{empty} column(s) of X are NaN for a whole session and stay NaN; drop those "
            "keypoints "
            "(bodyparts=...) or sessions.",
            UserWarning,
            stacklevel=2,
        )
    columns = getattr(X, "columns", None) if info is not None and arr.ndim == 2 else None
    return wrap(flat.reshape(arr.shape), info, columns)
