"""Matching the states of two fits (or of a fit and the truth) by the Hungarian method, and
relabelling fits."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from .syllables import _states, relabel_states

__all__ = [
    "state_confusion",
    "match_states",
    "state_accuracy",
    "compare_labelings",
    "permute_states",
    "align_states",
]


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
    ref, est = _states(reference, "reference"), _states(states, "states")
    if ref.shape != est.shape:
        raise ValueError(
            f"reference and states must have the same length, got {ref.shape} and {est.shape}."
        )
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


def compare_labelings(a, b, n_states: int | None = None) -> dict:
    """How well two labelings of the same frames agree (two models, two runs, a model and hand
    labels).

    Frames where either label is negative are ignored. ``b``'s labels are
    matched to ``a``'s by the Hungarian method
    ([`match_states`][behavhmm.analysis.alignment.match_states]) before the
    confusion matrix is tabulated; the adjusted Rand index and the normalised
    mutual information (scikit-learn) do not depend on the labels' names.

    Parameters
    ----------
    a, b : array-like of int, shape (n_time_bins,) (or one-hot)
        Two labelings of the same frames.
    n_states : int, optional
        Size of the confusion matrix; default: the largest label + 1.

    Returns
    -------
    dict
        ``"confusion"``: ndarray of int64, shape (n_states, n_states), frames
        with label ``i`` in ``a`` and matched label ``j`` in ``b`` (diagonal:
        agreement); ``"matching"``: ndarray of int, ``matching[i]`` is the
        label of ``b`` matched to ``a``'s ``i``; ``"accuracy"``: fraction of
        frames on the diagonal; ``"adjusted_rand"``: adjusted Rand index (1:
        identical partitions, about 0: chance); ``"nmi"``: normalised mutual
        information in [0, 1] (arithmetic normalisation); ``"n_frames"``:
        frames compared.

    Raises
    ------
    ValueError
        If the labelings differ in length or share no labelled frame.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.array([0, 0, 1, 1, 2, 2])
    >>> renamed = np.array([2, 0, 1, 0, 0, 1])[a]  # the same partition, other names
    >>> out = compare_labelings(a, renamed)
    >>> out["adjusted_rand"], out["nmi"], out["accuracy"]
    (1.0, 1.0, 1.0)
    """
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    ref, est = _states(a, "a"), _states(b, "b")
    if ref.shape != est.shape:
        raise ValueError(f"a and b must have the same length, got {ref.shape} and {est.shape}.")
    valid = (ref >= 0) & (est >= 0)
    if not valid.any():
        raise ValueError("a and b share no labelled frame (all are negative in one of them).")
    perm = match_states(ref, est, n_states)
    confusion = state_confusion(ref, est, n_states)[:, perm]
    total = int(confusion.sum())
    return {
        "confusion": confusion,
        "matching": perm,
        "accuracy": float(np.trace(confusion) / total),
        "adjusted_rand": float(adjusted_rand_score(ref[valid], est[valid])),
        "nmi": float(normalized_mutual_info_score(ref[valid], est[valid])),
        "n_frames": total,
    }


# ----------------------------------------------------------------------------
# aligning fitted models
# ----------------------------------------------------------------------------

# fitted attributes with a state axis, per estimator: (name, axes holding states)
_AR_AXES = (
    ("coef_", (0,)),
    ("intercept_", (0,)),
    ("covariances_", (0,)),
    ("initial_prob_", (0,)),
    ("transition_prob_", (-2, -1)),
    ("beta_", (0,)),
    ("dof_", (0,)),
)
_STATE_AXES = {
    "GLMHMM": (
        ("coef_", (-1,)),
        ("intercept_", (-1,)),
        ("scale_", (-1,)),
        ("initial_prob_", (0,)),
        ("transition_prob_", (0, 1)),
    ),
    "ARHMM": _AR_AXES,  # transition_prob_ may be per group: (n_groups, n_states, n_states)
    "KeypointSLDS": _AR_AXES,
}
#: Fitted attributes holding state labels (not indexed by state): their values are renumbered.
_STATE_LABELS = ("states_",)


def _state_axes(model):
    name = type(model).__name__
    if name not in _STATE_AXES:
        raise TypeError(f"permute_states supports {sorted(_STATE_AXES)}, got {name}.")
    return _STATE_AXES[name]


def _take(arr, perm, axes):
    if isinstance(arr, dict):
        return {k: _take(v, perm, axes) for k, v in arr.items()}
    out = np.asarray(arr)
    for axis in axes:
        out = np.take(out, perm, axis=axis)
    return out


def permute_states(model, perm):
    """A copy of a fitted model with its states reordered: new state ``i`` is old state ``perm[i]``.

    Parameters
    ----------
    model : GLMHMM, ARHMM or KeypointSLDS
        A fitted (or hand-set) model.
    perm : array-like of int, shape (n_states,)
        A permutation of ``range(n_states)``, e.g. from
        [`match_states`][behavhmm.analysis.alignment.match_states] or
        [`align_states`][behavhmm.analysis.alignment.align_states].

    Returns
    -------
    estimator
        Same class and hyperparameters; predictions are identical up to the
        relabelling of states.

    Raises
    ------
    ValueError
        If ``perm`` is not a permutation of the model's states.
    """
    import copy

    perm = np.asarray(perm, int)
    n_states = np.shape(model.initial_prob_)[0]
    if perm.shape != (n_states,) or sorted(perm.tolist()) != list(range(n_states)):
        raise ValueError(f"perm must be a permutation of range({n_states}), got {perm.tolist()}.")
    out = copy.deepcopy(model)
    for name, axes in _state_axes(model):
        if getattr(model, name, None) is not None:
            setattr(out, name, _take(getattr(model, name), perm, axes))
    for name in _STATE_LABELS:
        if getattr(model, name, None) is not None:
            setattr(out, name, relabel_states(getattr(model, name), perm))
    mapping = getattr(model, "syllable_mapping_", None)
    if mapping is not None:  # merged labels (merge_syllables): index and values both renumbered
        out.syllable_mapping_ = relabel_states(np.asarray(mapping)[perm], perm)
    return out


def _glm_weights(model) -> np.ndarray:
    """One row per state: all of a state's weights (coefficients then intercepts)."""
    coef = model.coef_
    leaves = (
        [np.asarray(coef[k]) for k in sorted(coef)]
        if isinstance(coef, dict)
        else [np.asarray(coef)]
    )
    parts = [np.moveaxis(leaf, -1, 0).reshape(leaf.shape[-1], -1) for leaf in leaves]
    intercept = np.asarray(model.intercept_)
    parts.append(np.moveaxis(intercept, -1, 0).reshape(intercept.shape[-1], -1))
    return np.concatenate(parts, axis=1)


def align_states(reference, model, X=None, y=None, session_starts=None):
    """Relabel ``model``'s states to best match ``reference``'s (Hungarian method).

    With data, states are matched by the overlap of their smoothed posteriors
    on ``(X, y)`` (``Σ_t p_ref(z_t = i) p(z_t = j)``), which works for any
    emission model; without, two GLM-HMMs are matched by the Euclidean
    distance between their states' weights (coefficients and intercepts).

    Parameters
    ----------
    reference, model : GLMHMM (or ARHMM with data)
        Fitted models with the same number of states.
    X, y, session_starts : optional
        Data to compare posteriors on (GLMHMM: ``X`` and ``y``; ARHMM: ``X``).

    Returns
    -------
    aligned : estimator
        ``permute_states(model, perm)``.
    perm : ndarray of int, shape (n_states,)
        ``perm[i]`` is the state of ``model`` matched to reference state ``i``.

    Raises
    ------
    ValueError
        If the models differ in their number of states.
    """
    n_ref, n_mod = np.shape(reference.initial_prob_)[0], np.shape(model.initial_prob_)[0]
    if n_ref != n_mod:
        raise ValueError(f"reference has {n_ref} states but model has {n_mod}.")
    if X is not None:
        if type(model).__name__ == "GLMHMM":
            p_ref = reference.smooth_proba(X, y, session_starts=session_starts)
            p_mod = model.smooth_proba(X, y, session_starts=session_starts)
        else:
            p_ref = reference.smooth_proba(X, session_starts=session_starts)
            p_mod = model.smooth_proba(X, session_starts=session_starts)
        p_ref, p_mod = (
            np.nan_to_num(np.asarray(getattr(p, "values", p), float)) for p in (p_ref, p_mod)
        )
        _, perm = linear_sum_assignment(-(p_ref.T @ p_mod))
    else:
        w_ref, w_mod = _glm_weights(reference), _glm_weights(model)
        if w_ref.shape != w_mod.shape:
            raise ValueError(
                f"the models' weights differ in shape: {w_ref.shape} and {w_mod.shape}."
            )
        cost = ((w_ref[:, None, :] - w_mod[None, :, :]) ** 2).sum(-1)
        _, perm = linear_sum_assignment(cost)
    return permute_states(model, perm), perm
