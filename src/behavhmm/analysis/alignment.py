"""Matching the states of two fits (or of a fit and the truth) by the Hungarian method."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = ["state_confusion", "match_states", "state_accuracy"]


def _labels(states, name):
    arr = np.asarray(states)
    if arr.ndim == 2:  # one-hot
        arr = np.where(arr.any(axis=1), arr.argmax(axis=1), -1)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must be integer state indices of shape (n_time_bins,) or one-hot.")
    return arr


def state_confusion(reference, states, n_states: int | None = None) -> np.ndarray:
    """Count matrix ``C[i, j]`` = frames with reference state ``i`` and state ``j``.

    Frames where either label is negative (unmodelled, e.g. -1) are ignored.

    Parameters
    ----------
    reference, states : array-like of int, shape (n_time_bins,) (or one-hot)
        Two labelings of the same frames.
    n_states : int, optional
        Size of the matrix; default: the largest label + 1.

    Returns
    -------
    ndarray of int64, shape (n_states, n_states)

    Raises
    ------
    ValueError
        If the labelings differ in length or are not integer labels.
    """
    ref, est = _labels(reference, "reference"), _labels(states, "states")
    if ref.shape != est.shape:
        raise ValueError(f"reference and states must have the same length, got {ref.shape} and {est.shape}.")
    valid = (ref >= 0) & (est >= 0)
    if n_states is None:
        n_states = int(max(ref[valid].max(initial=-1), est[valid].max(initial=-1)) + 1)
    counts = np.zeros((n_states, n_states), np.int64)
    np.add.at(counts, (ref[valid], est[valid]), 1)
    return counts


def match_states(reference, states, n_states: int | None = None) -> np.ndarray:
    """Permutation that best aligns ``states`` to ``reference`` (Hungarian method).

    Parameters
    ----------
    reference, states : array-like of int, shape (n_time_bins,) (or one-hot)
        Two labelings of the same frames.
    n_states : int, optional
        Number of states; default: the largest label + 1.

    Returns
    -------
    ndarray of int, shape (n_states,)
        ``perm[i]`` is the state of ``states`` matched to reference state
        ``i``; so ``fitted_param[perm]`` lines fitted parameters up with the
        reference, and ``np.argsort(perm)[states]`` relabels ``states``.

    References
    ----------
    H. W. Kuhn (1955). The Hungarian method for the assignment problem.
    Naval Research Logistics Quarterly 2, 83-97.
    """
    counts = state_confusion(reference, states, n_states)
    _, perm = linear_sum_assignment(-counts)
    return perm


def state_accuracy(reference, states, n_states: int | None = None) -> float:
    """Fraction of frames whose matched state equals the reference state.

    Frames with a negative label in either input are ignored.

    Returns
    -------
    float
        In [0, 1].
    """
    counts = state_confusion(reference, states, n_states)
    rows, cols = linear_sum_assignment(-counts)
    total = counts.sum()
    return float(counts[rows, cols].sum() / total) if total else float("nan")
