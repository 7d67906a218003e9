"""Prototype motifs among the states of an n_states scan (LISBET's ``select_prototypes``).

Re-exported by `behavhmm.model_selection` (and `behavhmm._motifs`).
"""

from __future__ import annotations

import numbers
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ._files import atomic_path

if TYPE_CHECKING:
    from ._motifs import NStatesScan

__all__ = ["Prototypes", "select_prototypes"]


def _mean_bout(column: np.ndarray, breaks: np.ndarray) -> float:
    """Mean length (frames) of the runs of True in ``column``; runs also end at session starts."""
    c = column.astype(np.int8)
    starts = (c == 1) & ((np.r_[0, c[:-1]] == 0) | breaks)
    n = int(starts.sum())
    return float(c.sum()) / n if n else 0.0


def _silhouette(square, labels, silhouette_score) -> float:
    """Silhouette score; -1 when ``fcluster`` made no 2 ... n - 1 clusters (tied distances)."""
    n_labels = np.unique(labels).size
    if not 1 < n_labels < labels.shape[0]:
        return -1.0
    return float(silhouette_score(square, labels, metric="precomputed"))


def _savgol(y: np.ndarray, n_columns: int) -> np.ndarray:
    from scipy.signal import savgol_filter

    window = max(3, n_columns // 10)
    if y.shape[0] < 3:
        return y
    window = min(window, y.shape[0])
    return savgol_filter(y, window_length=window, polyorder=2)


class Prototypes:
    """Prototype motifs chosen among the states of an n_states scan.

    Built by [`select_prototypes`][behavhmm.model_selection.select_prototypes].

    Attributes
    ----------
    prototypes_ : list of tuple (int, int)
        ``(n_states, state)`` of every prototype, by increasing ``n_states``
        then state.
    annotations_ : ndarray of bool, shape (n_time_bins, n_prototypes)
        Whether each prototype's state is decoded at each frame.
    labels_ : ndarray of int, shape (n_time_bins,)
        The prototype active at each frame (the one from the smallest
        ``n_states`` when several are), -1 when none.
    columns_ : list of tuple (int, int)
        The columns that passed the filters, in the clustering's order.
    cluster_labels_ : ndarray of int, shape (n_columns,)
        Cluster of each kept column (0-based).
    n_clusters_ : int
    silhouette_scores_ : ndarray
        Silhouette score for 2 ... n_columns - 1 clusters.
    n_clusters_tried_ : ndarray of int
    distance_ : ndarray
        Condensed Jaccard distances between the kept columns.
    linkage_ : ndarray
        scipy average-linkage matrix.
    models_ : dict of int to estimator
        The scan's models that own a prototype.
    """

    def __init__(self, **attributes):
        for name, value in attributes.items():
            setattr(self, name, value)

    @property
    def names_(self) -> list[str]:
        """Column names in LISBET's form, ``HMM_{K}_Motif_{state}``."""
        return [f"HMM_{k}_Motif_{s}" for k, s in self.prototypes_]

    def predict(self, X, session_starts=None):
        """Prototype labels of new data from the cached models (Viterbi, deterministic).

        Parameters
        ----------
        X : array-like of shape (n_time_bins, n_features)
        session_starts : optional
            As in the models' ``decode_state``.

        Returns
        -------
        labels : ndarray of int, shape (n_time_bins,)
            As ``labels_``.
        """
        return _first_active(self.predict_annotations(X, session_starts))

    def predict_annotations(self, X, session_starts=None) -> np.ndarray:
        """Boolean prototype columns of new data, as ``annotations_``.

        Returns
        -------
        ndarray of bool, shape (n_time_bins, n_prototypes)

        Raises
        ------
        ValueError
            If the scan had no fitted models (hand-built labels).
        """
        missing = [k for k, m in self.models_.items() if m is None]
        if missing:
            raise ValueError(
                f"the scan these prototypes come from has no model for n_states={missing}; "
                "predict needs the fitted models (scan_n_states or NStatesScan.load)."
            )
        decoded = {
            k: np.asarray(m.decode_state(X, session_starts=session_starts, state_format="index"))
            for k, m in self.models_.items()
        }
        return np.column_stack([decoded[k] == s for k, s in self.prototypes_])

    def save(self, folder: str | os.PathLike, scan: NStatesScan, method: str | None = None) -> Path:
        """Write LISBET's prototype outputs to ``folder``.

        ``prototypes/<sequence>/machineAnnotation_hmm{method}_{min}_{max}.csv``
        (one-hot prototype columns per sequence) and
        ``info_hmm{method}_{min}_{max}.npz`` (distances, linkage, silhouette
        scores, labels, prototype indices), atomically.

        Returns
        -------
        Path
        """
        folder = Path(folder)
        method = method or self.method_
        tag = f"hmm{method}_{int(scan.n_states_.min())}_{int(scan.n_states_.max())}"
        for name, rows in zip(scan.sequence_names_, scan.sequence_slices(), strict=True):
            table = pd.DataFrame(self.annotations_[rows].astype(np.int64), columns=self.names_)
            with atomic_path(folder / "prototypes" / name / f"machineAnnotation_{tag}.csv") as tmp:
                table.to_csv(tmp, index=True)
        index = {c: i for i, c in enumerate(self.columns_)}
        info = {
            "cond_dist_matrix": self.distance_,
            "link_matrix": self.linkage_,
            "all_score": self.silhouette_scores_,
            "all_n_clusters": self.n_clusters_tried_,
            "best_n_clusters": np.array(self.n_clusters_),
            "best_labels": self.cluster_labels_,
            "prototypes": np.array([index[p] for p in self.prototypes_], dtype=np.int64),
            "columns": np.array(self.columns_, dtype=np.int64).reshape(-1, 2),
        }
        with atomic_path(folder / f"info_{tag}.npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **info)
        return folder


def _first_active(annotations: np.ndarray) -> np.ndarray:
    any_on = annotations.any(axis=1)
    return np.where(any_on, np.argmax(annotations, axis=1), -1)


def select_prototypes(
    scan: NStatesScan,
    fps: float,
    *,
    min_frame_fraction: float | None = 0.05,
    min_bout_s: float | None = 0.5,
    max_distance: float | None = 0.6,
    method: str = "best",
) -> Prototypes:
    """Choose prototype motifs among all states of all models of a scan (LISBET's rule).

    1. Every state ``s`` of every model ``K`` is a binary column
       (``labels_[K] == s``), frames of all sessions together.
    2. Columns used in fewer than ``min_frame_fraction`` of the frames, or
       whose mean bout (a run of frames, cut at session starts) is shorter
       than ``min_bout_s`` seconds, are dropped; then columns with no other
       column within Jaccard distance ``max_distance`` (None skips a filter).
    3. The rest are clustered by average linkage on Jaccard distance (scipy,
       optimal leaf ordering). For 2 ... n_columns - 1 clusters the silhouette
       score is computed (scikit-learn); the number of clusters is where the
       Savitzky-Golay-smoothed scores (window ``max(3, n_columns // 10)``,
       order 2) peak.
    4. One column per cluster is kept: ``"best"`` the column with the
       highest silhouette value, ``"min"`` the cluster's first column in
       (K, state) order, i.e. from the smallest model.

    Parameters
    ----------
    scan : NStatesScan
        From [`scan_n_states`][behavhmm.model_selection.scan_n_states] (or
        ``NStatesScan.load``).
    fps : float
        Frames per second (for ``min_bout_s``).
    min_frame_fraction : float or None, default 0.05
    min_bout_s : float or None, default 0.5
        Seconds.
    max_distance : float or None, default 0.6
    method : {"best", "min"}, default "best"

    Returns
    -------
    Prototypes

    Raises
    ------
    ValueError
        For a bad ``fps``, threshold or ``method``, or when no column passes
        the filters.

    Notes
    -----
    With one or two columns left there is no silhouette to compute: they form
    one cluster each (one column) or one cluster (two columns, which are within
    ``max_distance`` of each other).

    References
    ----------
    G. Chindemi, B. Girard, C. Bellone (2023). LISBET. arXiv:2311.04069.
    """
    from scipy.spatial.distance import pdist
    from sklearn.metrics import silhouette_samples

    _check_prototype_options(fps, min_frame_fraction, min_bout_s, max_distance, method)
    columns = [(int(k), s) for k in scan.n_states_ for s in range(int(k))]
    data = np.column_stack([scan.labels_[k] == s for k, s in columns])
    keep = _passing_columns(
        data, scan.session_starts_, fps, min_frame_fraction, min_bout_s, max_distance
    )
    idx = np.flatnonzero(keep)
    if idx.size == 0:
        raise ValueError(
            "No state passes the filters (min_frame_fraction, min_bout_s, max_distance); "
            "loosen them or scan more numbers of states."
        )
    cols = [columns[j] for j in idx]
    distance = pdist(data[:, idx].T, metric="jaccard") if len(cols) > 1 else np.zeros(0)
    link, square, tried, scores, cluster = _cluster_columns(distance, len(cols))
    n_clusters = int(cluster.max()) + 1
    if method == "best" and len(cols) >= 3 and n_clusters > 1:
        samples = silhouette_samples(square, cluster, metric="precomputed")
        picks = [
            int(np.argmax(np.where(cluster == c, samples, -np.inf))) for c in range(n_clusters)
        ]
    else:  # "min", or a single cluster: the first column of each cluster (smallest K)
        picks = [int(np.flatnonzero(cluster == c)[0]) for c in range(n_clusters)]
    prototypes = sorted(cols[p] for p in picks)
    annotations = np.column_stack([scan.labels_[k] == s for k, s in prototypes])
    return Prototypes(
        prototypes_=prototypes,
        annotations_=annotations,
        labels_=_first_active(annotations),
        columns_=cols,
        cluster_labels_=np.asarray(cluster, np.int64),
        n_clusters_=n_clusters,
        silhouette_scores_=scores,
        n_clusters_tried_=np.asarray(tried, np.int64),
        distance_=distance,
        linkage_=link,
        models_={k: scan.models_.get(k) for k in sorted({k for k, _ in prototypes})},
        method_=method,
        fps_=float(fps),
    )


def _check_prototype_options(fps, min_frame_fraction, min_bout_s, max_distance, method):
    """Raise ValueError naming the first bad option of `select_prototypes`."""
    if method not in ("best", "min"):
        raise ValueError(f'method must be "best" or "min", got {method!r}.')
    if not (isinstance(fps, numbers.Real) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps!r}.")
    for name, value in (("min_frame_fraction", min_frame_fraction), ("min_bout_s", min_bout_s)):
        if value is not None and not (isinstance(value, numbers.Real) and value >= 0):
            raise ValueError(f"{name} must be a number >= 0 or None, got {value!r}.")
    if max_distance is not None and not (
        isinstance(max_distance, numbers.Real) and 0 <= max_distance <= 1
    ):
        raise ValueError(f"max_distance must be in [0, 1] or None, got {max_distance!r}.")


def _passing_columns(data, breaks, fps, min_frame_fraction, min_bout_s, max_distance):
    """Columns used often enough, in long enough bouts, with a neighbour within max_distance."""
    from scipy.spatial.distance import pdist, squareform

    keep = np.ones(data.shape[1], bool)
    if min_frame_fraction is not None:
        keep &= data.mean(axis=0) >= min_frame_fraction
    if min_bout_s is not None:
        bouts = np.array([_mean_bout(data[:, j], breaks) for j in range(data.shape[1])]) / float(
            fps
        )
        keep &= bouts >= min_bout_s
    if max_distance is not None and keep.sum() > 0:
        idx = np.flatnonzero(keep)
        dist = squareform(pdist(data[:, idx].T, metric="jaccard"))
        close = (dist < max_distance).sum(axis=0) - 1
        keep[idx[close == 0]] = False
    return keep


def _cluster_columns(distance, n_columns):
    """Average-linkage clusters at the smoothed silhouette peak (one cluster for < 3 columns).

    Returns the linkage, the square distance matrix, the numbers of clusters
    tried, their silhouette scores and the chosen cluster of each column.
    """
    from scipy.cluster import hierarchy
    from scipy.spatial.distance import squareform
    from sklearn.metrics import silhouette_score

    if n_columns < 3:
        square = np.zeros((n_columns, n_columns))
        return (
            np.zeros((0, 4)),
            square,
            np.zeros(0, int),
            np.zeros(0),
            np.zeros(n_columns, np.int64),
        )
    link = hierarchy.linkage(distance, method="average", optimal_ordering=True)
    square = squareform(distance)
    tried = np.arange(2, n_columns)
    candidates = [hierarchy.fcluster(link, n, criterion="maxclust") - 1 for n in tried]
    scores = np.array([_silhouette(square, lab, silhouette_score) for lab in candidates])
    best = int(np.argmax(_savgol(scores, n_columns)))
    return link, square, tried, scores, candidates[best]
