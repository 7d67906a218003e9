"""Sessions, pynapple objects and NaN borders: turning user input into one time axis.

Every estimator concatenates its sessions on one time axis and marks them with
a boolean mask (see ``behavhmm.inference``). This module converts what users
pass — a boolean mask, integer start indices, a pynapple ``IntervalSet``, or a
pynapple object's ``time_support`` — into that mask, drops NaN rows at session
borders, and wraps outputs back into pynapple objects on the input timestamps.
"""

from __future__ import annotations

import numbers
import warnings
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "PynappleInfo",
    "is_pynapple",
    "split_pynapple",
    "session_mask",
    "session_ids",
    "session_bounds",
    "drop_nan_borders",
    "wrap_output",
]


class PynappleInfo(NamedTuple):
    """Timestamps and epochs of a pynapple input, to rebuild outputs on them."""

    t: np.ndarray
    time_support: Any


def is_pynapple(obj) -> bool:
    """True for pynapple ``Tsd``, ``TsdFrame`` and ``TsdTensor`` objects."""
    try:
        import pynapple as nap
    except ImportError:  # pragma: no cover - pynapple is a core dependency
        return False
    return isinstance(obj, nap.Tsd | nap.TsdFrame | nap.TsdTensor)


def _is_interval_set(obj) -> bool:
    try:
        import pynapple as nap
    except ImportError:  # pragma: no cover
        return False
    return isinstance(obj, nap.IntervalSet)


def split_pynapple(X, name: str = "X"):
    """Return ``(values, PynappleInfo | None)``; values is a NumPy array."""
    if is_pynapple(X):
        values = np.asarray(X.values)
        return values, PynappleInfo(np.asarray(X.t), X.time_support)
    return X, None


def _starts_from_epochs(epochs, t: np.ndarray) -> np.ndarray:
    """Index of the first timestamp at or after each epoch start (within the epoch)."""
    starts = np.asarray(epochs.start, float)
    ends = np.asarray(epochs.end, float)
    idx = np.searchsorted(t, starts, side="left")
    inside = (idx < len(t)) & (t[np.minimum(idx, len(t) - 1)] <= ends)
    return idx[inside]


def session_mask(
    session_starts,
    n_time_bins: int,
    *,
    info: PynappleInfo | None = None,
    name: str = "session_starts",
) -> np.ndarray:
    """Turn any accepted ``session_starts`` into a boolean mask of shape (n_time_bins,).

    Parameters
    ----------
    session_starts : None, bool array-like, int array-like or pynapple IntervalSet
        None means one session (or, for pynapple input, one per epoch of its
        ``time_support``). A boolean mask of shape ``(n_time_bins,)`` marks
        the first bin of each session. Integers are start indices in
        ``[0, n_time_bins)``. An ``IntervalSet`` needs pynapple input; each
        interval starts a session at its first timestamp.
    n_time_bins : int
        Length of the time axis.
    info : PynappleInfo, optional
        Timestamps and epochs of pynapple input.
    name : str
        Argument name used in error messages.

    Returns
    -------
    ndarray of bool, shape (n_time_bins,)
        Index 0 is always a session start. With pynapple input the starts of
        the ``time_support`` epochs are always included too.

    Raises
    ------
    TypeError
        If ``session_starts`` has an unsupported type or dtype.
    ValueError
        If a mask has the wrong shape, an index is out of range, or an
        IntervalSet is given without pynapple input.
    """
    mask = np.zeros(n_time_bins, bool)
    if n_time_bins == 0:
        return mask
    mask[0] = True
    if info is not None:
        mask[_starts_from_epochs(info.time_support, info.t)] = True
    if session_starts is None:
        return mask
    if _is_interval_set(session_starts):
        if info is None:
            raise ValueError(
                f"{name} is a pynapple IntervalSet, which needs X as a pynapple object with "
                "timestamps; with NumPy input pass a boolean mask or start indices."
            )
        mask[_starts_from_epochs(session_starts, info.t)] = True
        return mask
    if is_pynapple(session_starts):
        session_starts = np.asarray(session_starts.values)
    if isinstance(session_starts, numbers.Integral) and not isinstance(session_starts, bool):
        session_starts = [session_starts]
    try:
        arr = np.asarray(session_starts)
    except Exception as exc:  # pragma: no cover - exotic objects
        raise TypeError(
            f"{name} must be a boolean mask or integer indices, got "
            f"{type(session_starts).__name__}."
        ) from exc
    if arr.dtype == bool:
        if arr.shape != (n_time_bins,):
            raise ValueError(
                f"{name} as a boolean mask must have shape ({n_time_bins},) to match X, "
                f"got shape {arr.shape}."
            )
        return mask | arr
    if arr.size == 0:
        return mask
    mask[_start_indices(arr, n_time_bins, name)] = True
    return mask


def _start_indices(arr: np.ndarray, n_time_bins: int, name: str) -> np.ndarray:
    """Check integer (or integral float) start indices in ``[0, n_time_bins)``; 1-D int64 array."""
    if not np.issubdtype(arr.dtype, np.integer):
        if (
            np.issubdtype(arr.dtype, np.floating)
            and np.all(np.isfinite(arr))
            and np.all(arr == np.round(arr))
        ):
            arr = arr.astype(np.int64)
        else:
            raise TypeError(
                f"{name} must be a boolean mask of shape ({n_time_bins},) or integer start "
                f"indices, got an array of dtype {arr.dtype}."
            )
    if arr.ndim != 1:
        raise ValueError(f"{name} as start indices must be 1-D, got shape {arr.shape}.")
    bad = (arr < 0) | (arr >= n_time_bins)
    if np.any(bad):
        raise ValueError(
            f"{name} contains index {int(arr[bad][0])}, outside [0, {n_time_bins}) "
            f"(X has {n_time_bins} time bins)."
        )
    return arr


def session_ids(mask: np.ndarray) -> np.ndarray:
    """Integer session label (0, 1, ...) of every time bin from a start mask."""
    mask = np.asarray(mask, bool).copy()
    if mask.size:
        mask[0] = True
    return np.cumsum(mask) - 1


def session_bounds(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(starts, stops)`` index arrays of the sessions in a start mask."""
    mask = np.asarray(mask, bool).copy()
    if mask.size == 0:
        return np.zeros(0, int), np.zeros(0, int)
    mask[0] = True
    starts = np.flatnonzero(mask)
    stops = np.append(starts[1:], mask.size)
    return starts, stops


def drop_nan_borders(
    X: np.ndarray, mask: np.ndarray, *, info: PynappleInfo | None = None, name: str = "X"
) -> tuple[np.ndarray, np.ndarray]:
    """Find the rows to keep: NaN rows are allowed only at the borders of sessions.

    Parameters
    ----------
    X : ndarray of shape (n_time_bins, ...)
        Input; a row is NaN if any of its values is NaN.
    mask : ndarray of bool, shape (n_time_bins,)
        Session starts.
    info : PynappleInfo, optional
        Used to report times in error messages.
    name : str
        Argument name used in error messages.

    Returns
    -------
    keep : ndarray of bool, shape (n_time_bins,)
        Rows that are modelled.
    starts : ndarray of bool, shape (keep.sum(),)
        Session starts among the kept rows.

    Raises
    ------
    ValueError
        If a NaN row lies between two non-NaN rows of one session, or if X
        holds infinite values.

    Warns
    -----
    UserWarning
        If a whole session is NaN (it is dropped).
    """
    n_time_bins = X.shape[0]
    flat = X.reshape(n_time_bins, -1)
    if np.isinf(flat).any():
        row = int(np.flatnonzero(np.isinf(flat).any(axis=1))[0])
        raise ValueError(
            f"{name} contains infinite values (first at time bin {row}{_when(info, row)})."
        )
    nan_rows = np.isnan(flat).any(axis=1)
    if not nan_rows.any():
        return np.ones(n_time_bins, bool), mask.copy()
    sid = session_ids(mask)
    n_sessions = sid[-1] + 1
    index = np.arange(n_time_bins)
    valid_index = np.where(nan_rows, n_time_bins, index)
    first = np.full(n_sessions, n_time_bins)
    np.minimum.at(first, sid, valid_index)
    last = np.full(n_sessions, -1)
    np.maximum.at(last, sid, np.where(nan_rows, -1, index))
    interior = nan_rows & (index > first[sid]) & (index < last[sid])
    if interior.any():
        row = int(np.flatnonzero(interior)[0])
        raise ValueError(
            f"{name} has NaN at time bin {row}{_when(info, row)}, inside a session. NaN is "
            "allowed only at the start or end of a session (epoch), where it is dropped; "
            "interpolate gaps or split the session with session_starts."
        )
    empty = first == n_time_bins
    if empty.any():
        warnings.warn(
            f"{int(empty.sum())} session(s) of {name} are entirely NaN and are ignored.",
            UserWarning,
            stacklevel=3,
        )
    keep = ~nan_rows
    starts = np.zeros(n_time_bins, bool)
    starts[first[~empty]] = True
    return keep, starts[keep]


def _when(info: PynappleInfo | None, row: int) -> str:
    return "" if info is None else f", t = {info.t[row]:g} s"


def wrap_output(values: np.ndarray, info: PynappleInfo | None, columns=None):
    """Return ``values`` as a NumPy array, or as pynapple on the input timestamps."""
    if info is None:
        return values
    import pynapple as nap

    if values.ndim == 1:
        return nap.Tsd(t=info.t, d=values, time_support=info.time_support)
    if values.ndim == 2:
        return nap.TsdFrame(t=info.t, d=values, time_support=info.time_support, columns=columns)
    return nap.TsdTensor(t=info.t, d=values, time_support=info.time_support)
