"""Typical pose trajectories of syllables, their similarity, clustering, and merging syllables into
one.

A syllable's typical trajectory is the average of its instances' keypoints
in a window around their onsets, each instance seen in the body frame of its
onset frame (centred on the centroid, the heading along +x), as in
keypoint-moseq's trajectory plots. Syllables whose typical trajectories are
close can be merged: `merge_syllables` stores a many-to-one mapping in the
model, and every label the model then produces is mapped; its dynamics (one
autoregressive process per original syllable) are unchanged.

References
----------
C. Weinreb et al. (2024). Keypoint-MoSeq: parsing behavior by linking point
tracking to pose dynamics. Nature Methods 21, 1329-1339.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass

import numpy as np

from ..sessions import session_bounds, session_mask
from .syllables import _runs, _states

__all__ = [
    "TypicalTrajectories",
    "typical_trajectories",
    "syllable_instances",
    "syllable_similarity",
    "cluster_syllables",
    "syllable_mapping",
    "merge_groups",
    "merge_syllables",
    "apply_syllable_mapping",
]


@dataclass
class TypicalTrajectories:
    """Average egocentric keypoint trajectories around syllable onsets.

    Attributes
    ----------
    trajectories : ndarray of shape (n_states, n_window, n_keypoints, n_dims)
        Average keypoints of each syllable's instances, in the body frame of
        the onset (keypoints' units); NaN for syllables with fewer than
        ``min_instances`` usable instances.
    n_instances : ndarray of int, shape (n_states,)
        Instances averaged per syllable.
    offsets : ndarray of int, shape (n_window,)
        Frames relative to the onset (0 = onset).
    fps : float or None
    """

    trajectories: np.ndarray
    n_instances: np.ndarray
    offsets: np.ndarray
    fps: float | None = None


def syllable_instances(states, session_starts=None, *, pre: int = 0, post: int = 0):
    """Onsets, syllables and lengths of the instances whose window fits in their session.

    Parameters
    ----------
    states : int array-like of shape (n_time_bins,)
    session_starts : bool mask or start indices, optional
    pre, post : int
        Frames needed before and after the onset within the session.

    Returns
    -------
    onsets, syllables, lengths : ndarrays of int, shape (n_instances,)
    """
    z = _states(states)
    mask = session_mask(session_starts, len(z))
    labels, lengths, first = _runs(z, mask)
    begin, end = session_bounds(mask)
    sid = np.searchsorted(begin, first, side="right") - 1
    fits = (first - pre >= begin[sid]) & (first + post < end[sid])
    return first[fits], labels[fits], lengths[fits]


def _egocentric_windows(coords, onsets, offsets, anterior, posterior, bodyparts):
    """Keypoints of each window, centred and rotated by the onset frame's centroid and heading."""
    from ..preprocessing import allocentric_from_egocentric, egocentric_align

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ego = egocentric_align(coords[onsets], anterior, posterior, bodyparts=bodyparts)
    windows = coords[onsets[:, None] + offsets[None, :]]  # (n, W, K, D)
    n, w, k, d = windows.shape
    centred = windows - np.asarray(ego.centroid)[:, None, None, :]
    flat = centred.reshape(n * w, k, d)
    rotated = allocentric_from_egocentric(
        flat, np.zeros((n * w, d)), np.repeat(-np.asarray(ego.heading), w)
    )
    return np.asarray(rotated).reshape(n, w, k, d)


def typical_trajectories(
    states,
    coordinates,
    session_starts=None,
    *,
    anterior=0,
    posterior=-1,
    bodyparts=None,
    pre: int = 5,
    post: int = 15,
    min_instances: int = 5,
    max_instances: int | None = 500,
    n_states: int | None = None,
    statistic: str = "mean",
    fps: float | None = None,
    random_state=0,
) -> TypicalTrajectories:
    """Average keypoint trajectory of each syllable around its onsets, in the body frame of the
    onset.

    Parameters
    ----------
    states : int array-like of shape (n_time_bins,)
        Syllables (-1 unlabelled).
    coordinates : array-like of shape (n_time_bins, n_keypoints, n_dims)
        Keypoints (2-D, or 3-D rotated about z) in any unit.
    session_starts : bool mask or start indices, optional
        A window never crosses a session boundary: instances too close to a
        session's start or end are left out.
    anterior, posterior, bodyparts
        Keypoints defining the heading, as in `egocentric_align`.
    pre, post : int, default 5 and 15
        Frames before and after the onset.
    min_instances : int, default 5
        Fewer usable instances give a NaN trajectory.
    max_instances : int or None, default 500
        At most this many instances per syllable, drawn at random without
        replacement (``random_state``).
    n_states : int, optional
        Default: the largest label + 1.
    statistic : {"mean", "median"}, default "mean"
        Frame by frame, over instances.
    fps : float, optional
        Stored with the result (for time axes).
    random_state : int, default 0

    Returns
    -------
    TypicalTrajectories

    Raises
    ------
    ValueError
        For mismatched shapes, negative window sizes or an unknown ``statistic``.
    """
    z = _states(states)
    coords = np.asarray(coordinates, float)
    if coords.ndim != 3 or coords.shape[0] != len(z) or coords.shape[2] not in (2, 3):
        raise ValueError(
            f"coordinates must have shape (n_time_bins={len(z)}, n_keypoints, 2 or 3), got "
            f"{coords.shape}."
        )
    if pre < 0 or post < 0:
        raise ValueError(f"pre and post must be >= 0, got {pre} and {post}.")
    if statistic not in ("mean", "median"):
        raise ValueError(f'statistic must be "mean" or "median", got {statistic!r}.')
    n_states = int(z.max(initial=-1) + 1) if n_states is None else int(n_states)
    offsets = np.arange(-pre, post + 1)
    onsets, labels, _ = syllable_instances(z, session_starts, pre=pre, post=post)
    windows_ok = (
        np.isfinite(coords).all(axis=(1, 2))[onsets[:, None] + offsets[None, :]].all(axis=1)
    )
    onsets, labels = onsets[windows_ok], labels[windows_ok]
    rng = np.random.default_rng(random_state)
    out = np.full((n_states, len(offsets), coords.shape[1], coords.shape[2]), np.nan)
    counts = np.zeros(n_states, int)
    reduce = np.mean if statistic == "mean" else np.median
    for k in range(n_states):
        chosen = onsets[labels == k]
        if max_instances is not None and len(chosen) > max_instances:
            chosen = np.sort(rng.choice(chosen, max_instances, replace=False))
        counts[k] = len(chosen)
        if len(chosen) >= max(min_instances, 1):
            out[k] = reduce(
                _egocentric_windows(coords, chosen, offsets, anterior, posterior, bodyparts), axis=0
            )
    return TypicalTrajectories(out, counts, offsets, fps)


def syllable_similarity(trajectories) -> np.ndarray:
    """Distance between the typical trajectories of every pair of syllables.

    Parameters
    ----------
    trajectories : TypicalTrajectories or ndarray of shape (n_states, n_window, n_keypoints, n_dims)

    Returns
    -------
    ndarray of shape (n_states, n_states)
        Mean over window frames and keypoints of the Euclidean distance
        between the two trajectories (keypoints' units; 0 on the diagonal);
        NaN rows and columns for syllables without a trajectory.
    """
    traj = np.asarray(getattr(trajectories, "trajectories", trajectories), float)
    if traj.ndim != 4:
        raise ValueError(
            "trajectories must have shape (n_states, n_window, n_keypoints, n_dims), got "
            f"{traj.shape}."
        )
    diff = traj[:, None] - traj[None, :]
    return np.linalg.norm(diff, axis=-1).mean(axis=(-2, -1))


def cluster_syllables(distance, *, method: str = "average"):
    """Hierarchical clustering of syllables from their distances (scipy).

    Parameters
    ----------
    distance : array-like of shape (n_states, n_states)
        Symmetric, e.g. from `syllable_similarity`; syllables with NaN
        distances are left out.
    method : str, default "average"
        A ``scipy.cluster.hierarchy.linkage`` method.

    Returns
    -------
    linkage : ndarray of shape (n_kept - 1, 4)
        For ``scipy.cluster.hierarchy.dendrogram`` / ``fcluster``.
    syllables : ndarray of int, shape (n_kept,)
        The clustered syllables (leaf ``i`` of the linkage is ``syllables[i]``).

    Raises
    ------
    ValueError
        If fewer than two syllables have finite distances.
    """
    from scipy.cluster.hierarchy import linkage
    from scipy.spatial.distance import squareform

    d = np.asarray(distance, float)
    if d.ndim != 2 or d.shape[0] != d.shape[1]:
        raise ValueError(f"distance must be square, got shape {d.shape}.")
    keep = np.flatnonzero(np.isfinite(d).sum(axis=1) > 1)
    sub = d[np.ix_(keep, keep)]
    if len(keep) < 2 or not np.isfinite(sub).all():
        raise ValueError("need at least two syllables with finite distances to each other.")
    sub = 0.5 * (sub + sub.T)
    np.fill_diagonal(sub, 0.0)
    return linkage(squareform(sub, checks=False), method=method), keep


def merge_groups(distance, threshold: float, *, method: str = "average") -> list[list[int]]:
    """Groups of syllables to merge: clusters of the dendrogram cut at a distance (automatic
    merging).

    Parameters
    ----------
    distance : array-like of shape (n_states, n_states)
        From `syllable_similarity`.
    threshold : float
        Syllables joined below this distance (``scipy.cluster.hierarchy.fcluster``
        with ``criterion="distance"``) form a group.
    method : str, default "average"
        The linkage method (see `cluster_syllables`).

    Returns
    -------
    list of lists of int
        Groups of two or more syllables, for `merge_syllables`.
    """
    from scipy.cluster.hierarchy import fcluster

    tree, kept = cluster_syllables(distance, method=method)
    cluster = fcluster(tree, t=float(threshold), criterion="distance")
    groups = [sorted(kept[cluster == c].tolist()) for c in np.unique(cluster)]
    return sorted((g for g in groups if len(g) > 1), key=lambda g: g[0])


def syllable_mapping(mapping, n_states: int) -> np.ndarray:
    """A many-to-one mapping of syllables as an array: ``out[old] = new``.

    Parameters
    ----------
    mapping : dict, sequence of sequences, or array-like of shape (n_states,)
        ``{old: new}`` (syllables not named keep their label); groups of
        syllables to merge, e.g. ``[[1, 4], [2, 7, 9]]`` (each group takes its
        smallest label); or the full array.
    n_states : int

    Returns
    -------
    ndarray of int64, shape (n_states,)

    Raises
    ------
    ValueError
        For labels outside ``[0, n_states)`` or a syllable in two groups.
    """
    out = np.arange(n_states)

    def check(labels):
        bad = [s for s in labels if not 0 <= s < n_states]
        if bad:
            raise ValueError(f"mapping: labels must lie in [0, {n_states}), got {bad}.")
        return labels

    if isinstance(mapping, dict):
        for old, new in mapping.items():
            old, new = check([int(old), int(new)])
            out[old] = new
    elif len(mapping) and all(np.ndim(g) == 1 for g in mapping):
        seen: set = set()
        for group in mapping:
            group = check([int(s) for s in group])
            if seen & set(group):
                raise ValueError(
                    f"mapping: syllables {sorted(seen & set(group))} are in two groups."
                )
            seen |= set(group)
            out[group] = min(group)
    else:
        out = np.asarray(mapping, dtype=np.int64).copy()
        if out.shape != (n_states,):
            raise ValueError(f"mapping as an array must have shape ({n_states},), got {out.shape}.")
    if out.min(initial=0) < 0 or out.max(initial=0) >= n_states:
        raise ValueError(f"mapping: labels must lie in [0, {n_states}), got {out.tolist()}.")
    return out.astype(np.int64)


def apply_syllable_mapping(states, mapping) -> np.ndarray:
    """Map syllable labels (``-1`` stays ``-1``).

    Parameters
    ----------
    states : int array-like
    mapping : array-like of int, shape (n_states,)
        ``mapping[old] = new``.

    Returns
    -------
    ndarray of the dtype of ``states``
    """
    z = np.asarray(states)
    m = np.asarray(mapping)
    return np.where(z >= 0, m[np.clip(z, 0, len(m) - 1)], z).astype(z.dtype)


def merge_syllables(model, mapping):
    """A copy of a fitted model whose labels are merged many-to-one.

    The mapping is stored as the fitted attribute ``syllable_mapping_`` (an
    integer array, written to and read from the model file), and applied to
    every label the model produces: ``decode``/``decode_state``/``predict``,
    ``states_``, hence ``apply-keypoints`` results and everything computed
    from them; ``smooth_proba``/``filter_proba`` sum the merged syllables'
    probabilities into the kept label's column (merged-away columns are 0).
    The model's dynamics are unchanged: each original syllable keeps its own
    autoregressive parameters and transitions, decoding runs on the original
    syllables, and the labels are mapped afterwards. ``n_states`` and the
    log-likelihood stay the same. Merging a merged model composes the mappings.

    Parameters
    ----------
    model : fitted ARHMM, KeypointSLDS or GLMHMM
    mapping : dict, sequence of sequences, or array-like
        See `syllable_mapping`.

    Returns
    -------
    estimator

    Examples
    --------
    >>> from behavhmm.datasets import demo_arhmm
    >>> merged = merge_syllables(demo_arhmm(4, 2, 1, seed=0), [[0, 3]])
    >>> merged.syllable_mapping_.tolist()
    [0, 1, 2, 0]
    """
    n_states = int(np.shape(model.initial_prob_)[0])
    new = syllable_mapping(mapping, n_states)
    old = getattr(model, "syllable_mapping_", None)
    out = copy.deepcopy(model)
    out.syllable_mapping_ = new if old is None else new[np.asarray(old)]
    if getattr(model, "states_", None) is not None:
        out.states_ = apply_syllable_mapping(model.states_, new)
    return out
