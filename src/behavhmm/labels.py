"""Hand labels as evidence on the hidden states: validation, log-evidence, initialisation.

A labelled frame ``t`` with label ``c`` multiplies the emission likelihood of
state ``k`` by ``e_t(k) = 1`` if ``k = c`` and ``1 - w`` otherwise, where ``w``
is ``label_weight``; unlabelled frames have ``e_t(k) = 1``. The
models add ``log e_t(k)`` (0, ``log(1 - w)``, or ``-inf`` when ``w = 1``) to
their ``(n_time_bins, n_states)`` emission log-likelihoods before the
forward-backward, Viterbi or forward-filtering backward-sampling kernels, so
the kernels themselves do not change (see [`label_evidence`][behavhmm.labels.label_evidence]
for the derivation). A non-negative ``(n_time_bins, n_states)`` array of
evidence (heuristic labels, another classifier's probabilities) is accepted
in place of the labels.

This module is below the models (NumPy, SciPy and scikit-learn only): it checks
the user's ``labels`` and ``label_weight``, builds the evidence on the frames a
model keeps, and provides the state sequences and transition matrix the
``"labels"`` initializers start from.
"""

from __future__ import annotations

import numbers
import warnings
from typing import NamedTuple

import numpy as np

from .sessions import split_pynapple

__all__ = [
    "LabelEvidence",
    "check_label_weight",
    "check_labels",
    "log_evidence",
    "label_evidence",
    "restrict_evidence",
    "complete_labels",
    "labelled_transition_proba",
    "labelled_initial_proba",
    "initializer_labels",
    "padded_log_evidence",
    "check_class_names",
]


class LabelEvidence(NamedTuple):
    """Evidence on the frames a model keeps.

    Attributes
    ----------
    log_evidence : ndarray of float64, shape (n_frames, n_states)
        ``log e_t(k)``: 0 on unlabelled frames, ``-inf`` for excluded states.
    labels : ndarray of int64, shape (n_frames,)
        The hard label of each frame (the most likely state under the
        evidence where it is informative), -1 where the evidence is flat.
    n_classes : int
        Number of labelled classes ``C`` (largest label + 1): states
        ``0..C-1`` are the classes, ``C..n_states-1`` are free.
    """

    log_evidence: np.ndarray
    labels: np.ndarray
    n_classes: int


def check_label_weight(label_weight, name: str = "label_weight") -> float:
    """Return ``label_weight`` as a float after checking it is a finite number in [0, 1].

    Raises
    ------
    TypeError
        If it is not a real number (or is a bool).
    ValueError
        If it is NaN or outside [0, 1].
    """
    if isinstance(label_weight, bool | np.bool_) or not isinstance(label_weight, numbers.Real):
        raise TypeError(f"{name} must be a float in [0, 1], got {type(label_weight).__name__}.")
    value = float(label_weight)
    if not 0.0 <= value <= 1.0:  # also refuses NaN
        raise ValueError(f"{name} must be a number in [0, 1], got {label_weight}.")
    return value


def check_labels(labels, n_time_bins: int, n_states: int, *, info=None, name: str = "labels"):
    """Check ``labels`` and return them as NumPy.

    Parameters
    ----------
    labels : array-like or pynapple Tsd / TsdFrame
        Either integer labels of shape (n_time_bins,), -1 for unlabelled
        frames (integer-valued floats are accepted), or non-negative evidence
        of shape (n_time_bins, n_states).
    n_time_bins : int
        Length of the model's input ``X``.
    n_states : int
        Number of states of the model.
    info : behavhmm.sessions.PynappleInfo, optional
        Timestamps of a pynapple ``X``; a pynapple ``labels`` must share them.
    name : str
        Argument name used in error messages.

    Returns
    -------
    ndarray
        int64 of shape (n_time_bins,) or float64 of shape (n_time_bins, n_states).

    Raises
    ------
    TypeError
        For non-numeric or boolean labels.
    ValueError
        For a wrong length or shape, labels >= n_states or < -1, non-integer
        labels, or evidence that is negative, non-finite or zero for every state.
    """
    values, lab_info = split_pynapple(labels)
    if lab_info is not None and info is not None:
        if lab_info.t.shape != info.t.shape or not np.allclose(lab_info.t, info.t):
            raise ValueError(f"{name} must have the same timestamps as X.")
    arr = np.asarray(values)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"{name} must hold integer labels or numeric evidence, got {arr.dtype}.")
    if arr.ndim == 0 or arr.shape[0] != n_time_bins:
        raise ValueError(
            f"{name} must have n_time_bins={n_time_bins} rows (one per frame of X), got shape "
            f"{arr.shape}."
        )
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim == 2:
        return _check_evidence(arr, n_states, name)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D labels or 2-D evidence, got shape {arr.shape}.")
    if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
        raise ValueError(f"{name} must hold integers (-1 for unlabelled frames).")
    arr = arr.astype(np.int64)
    bad = (arr < -1) | (arr >= n_states)
    if bad.any():
        t = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{name} must lie in [-1, n_states) = [-1, {n_states}) (-1: unlabelled); frame {t} "
            f"has {arr[t]}."
        )
    return arr


def _check_evidence(arr: np.ndarray, n_states: int, name: str) -> np.ndarray:
    if arr.shape[1] != n_states:
        raise ValueError(
            f"{name} as evidence must have shape (n_time_bins, n_states) with n_states={n_states}, "
            f"got {arr.shape}."
        )
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(f"{name} as evidence must be finite and non-negative.")
    zero = arr.max(axis=1) <= 0
    if zero.any():
        raise ValueError(
            f"{name} as evidence is zero for every state at frame {int(np.flatnonzero(zero)[0])}; "
            "give at least one state positive evidence (all ones: unlabelled)."
        )
    return arr


def log_evidence(labels: np.ndarray, n_states: int, label_weight: float = 1.0) -> np.ndarray:
    """The ``(n_time_bins, n_states)`` matrix ``log e_t(k)`` of checked labels or evidence.

    Parameters
    ----------
    labels : ndarray
        Output of [`check_labels`][behavhmm.labels.check_labels].
    n_states : int
    label_weight : float
        ``w`` in [0, 1] for integer labels. Evidence arrays are used as they
        are (each row divided by its maximum), so ``label_weight`` must be 1.

    Returns
    -------
    ndarray of float64, shape (n_time_bins, n_states)
        0 on unlabelled frames; on a frame labelled ``c``: 0 at ``c`` and
        ``log(1 - w)`` elsewhere (``-inf`` at ``w = 1``).

    Raises
    ------
    ValueError
        If ``label_weight`` is not 1 with an evidence array.
    """
    if labels.ndim == 2:
        if label_weight != 1.0:
            raise ValueError(
                "label_weight must be 1.0 when labels is an evidence array (n_time_bins, "
                "n_states): scale the evidence itself."
            )
        with np.errstate(divide="ignore"):
            return np.log(labels / labels.max(axis=1, keepdims=True))
    with np.errstate(divide="ignore"):
        off = np.log1p(-label_weight) if label_weight < 1 else -np.inf
    out = np.zeros((labels.shape[0], n_states))
    labelled = labels >= 0
    out[labelled] = off
    out[np.flatnonzero(labelled), labels[labelled]] = 0.0
    return out


def label_evidence(
    labels,
    label_weight,
    n_states: int,
    values: np.ndarray,
    keep: np.ndarray,
    *,
    info=None,
    name: str = "labels",
) -> LabelEvidence | None:
    """Check ``labels`` and ``label_weight`` and put the evidence on the frames a model keeps.

    Parameters
    ----------
    labels : None, array-like or pynapple Tsd / TsdFrame
        See [`check_labels`][behavhmm.labels.check_labels]. None: no evidence.
    label_weight : float
        ``w`` in [0, 1].
    n_states : int
    values : ndarray of shape (n_time_bins, ...) or None
        The model's input on the user's time axis; rows with a NaN are not
        modelled. None: every row outside ``keep`` is a NaN row.
    keep : ndarray of bool, shape (n_time_bins,)
        Rows the model keeps (NaN session borders dropped).
    info : PynappleInfo, optional
        Timestamps of a pynapple ``X``.
    name : str
        Argument name used in error messages.

    Returns
    -------
    LabelEvidence or None
        On the kept rows; None when ``labels`` is None or no frame carries
        evidence (e.g. ``label_weight=0``), so that the fit is the unsupervised one.

    Raises
    ------
    ValueError, TypeError
        As [`check_labels`][behavhmm.labels.check_labels] and
        [`check_label_weight`][behavhmm.labels.check_label_weight]; and
        ValueError for a label on a frame that is not modelled because it is
        NaN.

    Notes
    -----
    **Conditioned forward-backward.** Treat the labels as extra observations
    ``ℓ_t`` emitted by the hidden state with ``p(ℓ_t | z_t = k) ∝ e_t(k)``
    (Rabiner 1989's HMM with the observation ``(x_t, ℓ_t)``; the partially
    labelled HMM of Scheffer et al. 2001). The joint is

    ``p(x, ℓ, z) ∝ π_{z_1} b_1(z_1) e_1(z_1) ∏_{t>1} A_{z_{t-1} z_t} b_t(z_t) e_t(z_t)``,
    so the forward and backward recursions are the usual ones with
    ``b_t(k) e_t(k)`` in place of ``b_t(k)``:
    ``α_t(k) = b_t(k) e_t(k) Σ_j α_{t-1}(j) A_{jk}`` and
    ``β_t(j) = Σ_k A_{jk} b_{t+1}(k) e_{t+1}(k) β_{t+1}(k)``. Their product
    gives ``p(z_t | x, ℓ)``; with ``w = 1`` the labelled states are clamped
    (``e_t(k) = 0`` for ``k ≠ c``) and the result is exact conditioning on
    ``z_t = c``. EM with these posteriors maximises
    ``log p(x, ℓ | θ) + log p(θ)``: the log-likelihood the models report for a
    fit with labels is this evidence-conditioned one, not ``log p(x | θ)``.
    Gibbs sampling draws ``z ~ p(z | x, ℓ, θ)`` by forward filtering and
    backward sampling on the same products, so a clamped frame never changes.

    References
    ----------
    L. R. Rabiner (1989). A tutorial on hidden Markov models and selected
    applications in speech recognition. Proc. IEEE 77(2), 257-286.

    T. Scheffer, C. Decomain and S. Wrobel (2001). Active hidden Markov models
    for information extraction. Advances in Intelligent Data Analysis (IDA),
    LNCS 2189, 309-318.

    hmmlearn issue #568: the discussion of fitting an HMM with some states
    known (github.com/hmmlearn/hmmlearn/issues/568).
    """
    if labels is None:
        return None
    weight = check_label_weight(label_weight)
    n_time_bins = keep.shape[0]
    checked = check_labels(labels, n_time_bins, n_states, info=info, name=name)
    log_ev = log_evidence(checked, n_states, weight)
    informative = np.any(log_ev < 0, axis=1)
    if values is None:
        nan_rows = ~keep
    else:
        nan_rows = np.isnan(values.reshape(n_time_bins, -1)).any(axis=1)
    if np.any(informative & nan_rows):
        t = int(np.flatnonzero(informative & nan_rows)[0])
        raise ValueError(
            f"{name} labels frame {t}, where X is NaN (not modelled); set it to -1 (unlabelled)."
        )
    if not informative.any():  # label_weight 0 or flat evidence: an unsupervised fit
        return None
    hard = np.where(informative, np.argmax(log_ev, axis=1), -1)
    if checked.ndim == 1:
        hard = np.where(checked >= 0, checked, -1)
    n_classes = int(hard.max(initial=-1) + 1)
    return LabelEvidence(log_ev[keep], hard[keep], n_classes)


def restrict_evidence(evidence: LabelEvidence, rows: np.ndarray, why: str) -> LabelEvidence:
    """The evidence on ``rows`` of the kept frames, warning when labelled frames are left out.

    Parameters
    ----------
    evidence : LabelEvidence
    rows : ndarray of int
        Kept frames the model gives a state (e.g. all but the first ``nlags`` of a session).
    why : str
        Why the other frames have no state, for the warning.

    Warns
    -----
    UserWarning
        If a labelled frame is left out (its label is ignored).
    """
    dropped = np.ones(evidence.labels.shape[0], bool)
    dropped[rows] = False
    n_ignored = int(np.sum(dropped & np.any(evidence.log_evidence < 0, axis=1)))
    if n_ignored:
        warnings.warn(
            f"{n_ignored} labelled frame(s) are ignored: {why}.", UserWarning, stacklevel=3
        )
    return LabelEvidence(evidence.log_evidence[rows], evidence.labels[rows], evidence.n_classes)


# ----------------------------------------------------------------------------
# initialisation from labels
# ----------------------------------------------------------------------------


def complete_labels(features: np.ndarray, labels: np.ndarray, n_states: int, seed: int):
    """A state for every frame: the labels where given, seeded k-means elsewhere.

    Seeded k-means (Basu et al. 2002): the centre of class ``c`` starts at the
    mean of the frames labelled ``c`` (z-scored columns); the centres of the
    free states ``C..n_states-1`` (and of classes without frames) are added
    by k-means++ sampling given those centres; scikit-learn's ``KMeans``
    then runs from these centres on all frames, so cluster ``k`` keeps the
    identity of state ``k``. Labelled frames keep their labels.

    Parameters
    ----------
    features : ndarray of shape (n_frames, n_features)
    labels : ndarray of int, shape (n_frames,)
        -1 for unlabelled frames.
    n_states : int
    seed : int
        Seed of the k-means++ draws.

    Returns
    -------
    ndarray of int64, shape (n_frames,)
        In ``[0, n_states)``.

    References
    ----------
    S. Basu, A. Banerjee and R. J. Mooney (2002). Semi-supervised clustering
    by seeding. Proc. 19th International Conference on Machine Learning, 27-34.
    """
    from sklearn.cluster import KMeans

    labels = np.asarray(labels, np.int64)
    scale = features.std(axis=0)
    feats = (features - features.mean(axis=0)) / np.where(scale > 0, scale, 1.0)
    rng = np.random.default_rng(seed)
    centers = np.full((n_states, feats.shape[1]), np.nan)
    for c in np.unique(labels[labels >= 0]):
        centers[c] = feats[labels == c].mean(axis=0)
    for k in np.flatnonzero(np.isnan(centers[:, 0])):  # k-means++ given the seeded centres
        known = centers[~np.isnan(centers[:, 0])]
        if len(known):
            d2 = ((feats[:, None, :] - known[None]) ** 2).sum(-1).min(axis=1)
            p = d2 / d2.sum() if d2.sum() > 0 else None
        else:
            p = None
        centers[k] = feats[rng.choice(len(feats), p=p)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        km = KMeans(n_clusters=n_states, init=centers, n_init=1).fit(feats)
    return np.where(labels >= 0, labels, km.labels_)


def _transition_counts(states: np.ndarray, starts: np.ndarray, n_states: int) -> np.ndarray:
    counts = np.zeros((n_states, n_states))
    pair = ~np.asarray(starts, bool)[1:] & (states[1:] >= 0) & (states[:-1] >= 0)
    np.add.at(counts, (states[:-1][pair], states[1:][pair]), 1.0)
    return counts


def labelled_transition_proba(
    n_states,
    X,
    session_starts,
    random_key,
    *,
    labels=None,
    stickiness=0.95,
    pseudo_count=10.0,
    **kwargs,
):
    """Transition matrix from the transitions between consecutive labelled frames.

    ``A = normalise(N + pseudo_count * S)``, where ``N[i, j]`` counts pairs of
    consecutive frames (one session) labelled ``i`` then ``j`` and ``S`` is
    the sticky matrix (``stickiness`` on the diagonal). Used as
    ``setup(transition_proba_init="labels")``; the model passes ``labels``
    (on the frames of ``X``) when ``fit`` is given labels.

    Returns
    -------
    ndarray of shape (n_states, n_states)

    Raises
    ------
    ValueError
        If no labels were passed (``fit`` without ``labels``).
    """
    if labels is None:
        raise ValueError('transition_proba_init="labels" needs labels: call fit(..., labels=...).')
    if not 0.0 <= stickiness <= 1.0:
        raise ValueError(f"stickiness must lie in [0, 1], got {stickiness}.")
    off = (1.0 - stickiness) / max(n_states - 1, 1)
    sticky = np.full((n_states, n_states), off) + (stickiness - off) * np.eye(n_states)
    if n_states == 1:
        sticky = np.ones((1, 1))
    counts = _transition_counts(np.asarray(labels), session_starts, n_states)
    rows = counts + float(pseudo_count) * sticky
    return rows / rows.sum(axis=1, keepdims=True)


def labelled_initial_proba(
    n_states, X, session_starts, random_key, *, labels=None, pseudo_count=1.0, **kwargs
):
    """Initial distribution from the labels of session starts, plus ``pseudo_count`` per state.

    Raises
    ------
    ValueError
        If no labels were passed (``fit`` without ``labels``).
    """
    if labels is None:
        raise ValueError('initial_proba_init="labels" needs labels: call fit(..., labels=...).')
    labels = np.asarray(labels)
    first = labels[np.asarray(session_starts, bool) & (labels >= 0)]
    counts = np.bincount(first, minlength=n_states)[:n_states] + float(pseudo_count)
    return counts / counts.sum()


def initializer_labels(func, labels) -> dict:
    """``{"labels": labels}`` for an initializer with a ``labels`` parameter, else ``{}``."""
    import inspect

    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return {}
    return {"labels": labels} if "labels" in params else {}


def padded_log_evidence(evidence: LabelEvidence | None, n_padded: int):
    """The log-evidence padded with zero rows to ``n_padded`` frames (None stays None)."""
    if evidence is None:
        return None
    pad = n_padded - evidence.log_evidence.shape[0]
    return np.pad(evidence.log_evidence, ((0, pad), (0, 0)))


def check_class_names(class_names, n_states: int, n_classes: int = 0) -> np.ndarray | None:
    """``class_names`` as a unicode array, after checking it names classes ``0..C-1``.

    Parameters
    ----------
    class_names : sequence of str or None
        Name of labelled class ``c`` at position ``c``.
    n_states : int
    n_classes : int
        Number of classes the labels use (largest label + 1).

    Returns
    -------
    ndarray of str, shape (len(class_names),), or None

    Raises
    ------
    TypeError
        If a name is not a string.
    ValueError
        If names repeat, there are more names than states, or fewer than the
        labels use.
    """
    if class_names is None:
        return None
    names = list(class_names)
    if not all(isinstance(n, str) for n in names):
        raise TypeError("class_names must be a sequence of str.")
    if len(set(names)) != len(names):
        raise ValueError("class_names must not repeat a name.")
    if not n_classes <= len(names) <= n_states:
        raise ValueError(
            f"class_names must name the labelled classes 0..C-1 (C={n_classes} in labels) and at "
            f"most n_states={n_states} states; got {len(names)} names."
        )
    return np.asarray(names, dtype=str)
