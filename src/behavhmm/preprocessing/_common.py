"""Input handling shared by the preprocessing functions: arrays or pynapple, and sessions."""

from __future__ import annotations

import numpy as np

from ..sessions import (
    PynappleInfo,
    session_bounds,
    session_mask,
    split_pynapple,
    wrap_output,
)

__all__ = ["as_float_array", "keypoint_array", "session_slices", "starts_mask", "wrap"]


def as_float_array(X, name: str, *, min_ndim: int = 1) -> tuple[np.ndarray, PynappleInfo | None]:
    """``(float64 copy of X, pynapple info or None)``; the time axis is axis 0."""
    values, info = split_pynapple(X, name)
    try:
        arr = np.array(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{name} must be a numeric array or a pynapple object, got {type(X).__name__}."
        ) from exc
    if arr.ndim < min_ndim:
        raise ValueError(
            f"{name} must have at least {min_ndim} dimension(s) with time first, got shape "
            f"{arr.shape}."
        )
    if np.isinf(arr).any():
        raise ValueError(f"{name} contains infinite values; use NaN for missing points.")
    return arr, info


def keypoint_array(X, name: str = "coordinates") -> tuple[np.ndarray, PynappleInfo | None]:
    """A (n_time_bins, n_keypoints, n_dims) float64 array with n_dims 2 or 3."""
    arr, info = as_float_array(X, name)
    if arr.ndim != 3 or arr.shape[2] not in (2, 3):
        raise ValueError(
            f"{name} must have shape (n_time_bins, n_keypoints, n_dims) with n_dims 2 or 3, got "
            f"shape {arr.shape}."
        )
    return arr, info


def starts_mask(session_starts, n_time_bins: int, info: PynappleInfo | None) -> np.ndarray:
    """Boolean session-start mask (see ``behavhmm.sessions.session_mask``)."""
    return session_mask(session_starts, n_time_bins, info=info)


def session_slices(mask: np.ndarray) -> list[slice]:
    """One slice of the time axis per session."""
    starts, stops = session_bounds(mask)
    return [slice(int(a), int(b)) for a, b in zip(starts, stops, strict=True)]


def wrap(values: np.ndarray, info: PynappleInfo | None, columns=None):
    """NumPy output, or pynapple on the input's timestamps."""
    return wrap_output(values, info, columns=columns)
