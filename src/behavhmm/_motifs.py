"""Behaviour motifs: a scan over the number of states and prototype selection.

The unsupervised half of LISBET (Chindemi et al.), on behavhmm estimators:
[`scan_n_states`][behavhmm.model_selection.scan_n_states] fits one model per
number of states, [`select_prototypes`][behavhmm.model_selection.select_prototypes]
turns every state of every model into a binary column and keeps one
representative column per cluster of similar columns. Both are re-exported by
``behavhmm.model_selection``.
"""

from __future__ import annotations

import json
import numbers
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import clone

from ._files import atomic_path, read_npz
from .sessions import session_ids, session_mask

__all__ = ["NStatesScan", "Prototypes", "scan_n_states", "select_prototypes"]


# --------------------------------------------------------------------------- helpers
def _as_frames(X, name: str = "X") -> np.ndarray:
    arr = np.asarray(X, dtype=float)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_time_bins, n_features), got shape {arr.shape}.")
    if arr.shape[0] < 2:
        raise ValueError(f"{name} has {arr.shape[0]} frame(s); a scan needs at least 2.")
    return arr


def _take(X: np.ndarray, mask: np.ndarray, ids: np.ndarray, keep) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the sessions in ``keep`` (and their session-start mask)."""
    rows = np.isin(ids, np.asarray(keep))
    return X[rows], mask[rows]


def _n_parameters(model, n_features: int) -> float:
    """Free parameters of a fitted Gaussian HMM (hmmlearn's count); NaN for other estimators."""
    k = int(model.n_states)
    cov = getattr(model, "covariance_type", None)
    if not hasattr(model, "means_") or cov is None:
        return float("nan")
    d = n_features
    n_cov = {"full": k * d * (d + 1) / 2, "diag": k * d, "spherical": k, "tied": d * (d + 1) / 2}[
        cov
    ]
    return float((k - 1) + k * (k - 1) + k * d + n_cov)


def _quiet_fit(model, X, starts):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 10 EM iterations rarely converge; that is the point
        model.fit(X, session_starts=starts)
    return model


def _fit_one(estimator, k, X, mask, ids, fit_sessions, folds):
    model = clone(estimator).set_params(n_states=int(k))
    if "progress_bar" in model.get_params():
        model.set_params(progress_bar=False)
    X_fit, m_fit = (X, mask) if fit_sessions is None else _take(X, mask, ids, fit_sessions)
    t0 = time.perf_counter()
    _quiet_fit(model, X_fit, m_fit)
    seconds = time.perf_counter() - t0
    row = {
        "n_states": int(k),
        "log_likelihood": float(model.score(X, session_starts=mask)),
        "fit_seconds": seconds,
    }
    heldout = []
    for train, test in folds:
        fold_model = _quiet_fit(clone(model), *_take(X, mask, ids, train))
        heldout.append(float(fold_model.score(*_take(X, mask, ids, test))))
    if folds:
        row["heldout_log_likelihood"] = float(np.sum(heldout))
        for i, value in enumerate(heldout):
            row[f"heldout_log_likelihood_fold{i}"] = value
    labels = np.asarray(
        model.decode_state(X, session_starts=mask, state_format="index"), dtype=np.int64
    )
    return model, row, labels


# --------------------------------------------------------------------------- scan
class NStatesScan:
    """Result of [`scan_n_states`][behavhmm.model_selection.scan_n_states].

    Attributes
    ----------
    n_states_ : ndarray of int
        The numbers of states tried, increasing.
    models_ : dict of int to estimator
        The fitted model for every number of states.
    metrics_ : pandas.DataFrame
        One row per number of states: ``n_states``, ``log_likelihood`` (nats,
        all frames), ``n_parameters``, ``aic``, ``bic``, ``fit_seconds``, and
        with ``cv`` ``heldout_log_likelihood`` (nats, every frame held out
        once, summed over folds) and ``heldout_log_likelihood_fold{i}``.
    labels_ : dict of int to ndarray of int, shape (n_time_bins,)
        Most likely state of every frame (Viterbi) for every number of
        states; -1 on dropped NaN rows.
    history_ : dict of int to ndarray
        Training log-likelihood per EM iteration.
    session_starts_ : ndarray of bool, shape (n_time_bins,)
    sequence_names_ : list of str
        One name per session.
    """

    def __init__(self, models, metrics, labels, session_starts, sequence_names):
        self.models_ = dict(models)
        self.labels_ = dict(labels)
        self.n_states_ = np.array(sorted(self.labels_), dtype=int)
        self.metrics_ = metrics
        self.session_starts_ = np.asarray(session_starts, bool)
        self.sequence_names_ = list(sequence_names)
        self.history_ = {
            k: np.asarray(getattr(m, "log_likelihood_history_", np.array([])))
            for k, m in self.models_.items()
        }

    def best_n_states(self, criterion: str = "bic") -> int:
        """Number of states that is best by ``criterion``.

        Parameters
        ----------
        criterion : {"bic", "aic", "heldout_log_likelihood", "log_likelihood"}

        Returns
        -------
        int
            Lowest AIC/BIC, or highest (held-out) log-likelihood.

        Raises
        ------
        ValueError
            If the criterion is unknown or was not computed.
        """
        if criterion not in self.metrics_.columns or criterion in ("n_states", "fit_seconds"):
            raise ValueError(f"criterion must be one of the metrics columns, got {criterion!r}.")
        values = self.metrics_[criterion].to_numpy(float)
        pick = np.nanargmin(values) if criterion in ("aic", "bic") else np.nanargmax(values)
        return int(self.metrics_["n_states"].iloc[pick])

    def sequence_slices(self) -> list[slice]:
        """Frame range of every session, in order."""
        starts = np.flatnonzero(self.session_starts_)
        ends = np.append(starts[1:], self.session_starts_.shape[0])
        return [slice(int(a), int(b)) for a, b in zip(starts, ends, strict=True)]

    def save(self, folder: str | os.PathLike) -> Path:
        """Write the scan to ``folder``, LISBET's layout plus behavhmm's models.

        Writes ``models/hmm{K}.npz`` (``save_params``: .npz, no pickle),
        ``history_hmm{K}.csv``, ``metrics_hmm{K}.yaml``, ``metrics.csv``,
        ``labels.npz`` (labels, session starts, names) and one
        ``<sequence>/machineAnnotation_hmm{K}.csv`` one-hot table
        (``Motif_0`` ... columns, frame index) per sequence and K, the files
        LISBET's ``select_prototypes`` reads. Every file is written atomically.

        Parameters
        ----------
        folder : str or path-like

        Returns
        -------
        Path
            The folder.
        """
        folder = Path(folder)
        for k, model in self.models_.items():
            model.save_params(folder / "models" / f"hmm{k}.npz")
            _write_csv(pd.DataFrame({"History": self.history_[k]}), folder / f"history_hmm{k}.csv")
            row = self.metrics_.loc[self.metrics_["n_states"] == k].iloc[0]
            text = "".join(
                f"{name}: {float(row[name])!r}\n"
                for name in ("log_likelihood", "aic", "bic")
                if name in row
            )
            with atomic_path(folder / f"metrics_hmm{k}.yaml") as tmp:
                tmp.write_text(text.replace("log_likelihood", "ll"), encoding="utf-8")
            for name, rows in zip(self.sequence_names_, self.sequence_slices(), strict=True):
                onehot = _one_hot(self.labels_[k][rows], k)
                table = pd.DataFrame(onehot, columns=[f"Motif_{i}" for i in range(k)])
                _write_csv(table, folder / name / f"machineAnnotation_hmm{k}.csv")
        _write_csv(self.metrics_, folder / "metrics.csv", index=False)
        arrays = {f"labels_{k}": v for k, v in self.labels_.items()}
        arrays["session_starts"] = self.session_starts_
        arrays["sequence_names"] = np.array(json.dumps(self.sequence_names_))
        with atomic_path(folder / "labels.npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike) -> NStatesScan:
        """Read a scan written by [`save`][behavhmm.model_selection.NStatesScan.save] (no pickle).

        Raises
        ------
        FileNotFoundError
            If ``folder`` has no ``labels.npz`` or ``metrics.csv``.
        """
        from .models import load_model

        folder = Path(folder)
        for name in ("labels.npz", "metrics.csv"):
            if not (folder / name).is_file():
                raise FileNotFoundError(
                    f"{folder} is not a scan folder: {name} is missing (run scan_n_states().save)."
                )
        arrays = read_npz(
            folder / "labels.npz", string_keys=("sequence_names",), what="scan labels file"
        )
        names = json.loads(str(arrays.pop("sequence_names")))
        starts = arrays.pop("session_starts").astype(bool)
        labels = {int(key.split("_")[1]): np.asarray(v, np.int64) for key, v in arrays.items()}
        models = {k: load_model(folder / "models" / f"hmm{k}.npz") for k in labels}
        metrics = pd.read_csv(folder / "metrics.csv")
        return cls(models, metrics, labels, starts, names)


def _one_hot(labels: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros((labels.shape[0], k), dtype=np.int64)
    ok = labels >= 0
    out[np.flatnonzero(ok), labels[ok]] = 1
    return out


def _write_csv(table: pd.DataFrame, path: Path, index: bool = True) -> None:
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=index)


def scan_n_states(
    estimator,
    X,
    session_starts=None,
    *,
    n_states=range(2, 33),
    fit_fraction: float | None = None,
    cv=None,
    n_jobs: int | None = None,
    random_state: int | None = 0,
    sequence_names=None,
) -> NStatesScan:
    """Fit one model per number of states (LISBET's ``segment_hmm``).

    Every model is a clone of ``estimator`` with only ``n_states`` changed, so
    all of them start from the same seed (``estimator.random_state``). The
    models are fitted on all sessions or on a random ``fit_fraction`` of them,
    scored and decoded on all of them.

    Parameters
    ----------
    estimator : behavhmm estimator
        E.g. ``GaussianHMM(covariance_type="full", n_iter=10, tol=1e-3)``;
        any estimator with ``n_states``, ``fit``, ``score`` and
        ``decode_state``.
    X : array-like of shape (n_time_bins, n_features)
        Features or embeddings, sessions concatenated in time.
    session_starts : bool array-like of shape (n_time_bins,) or int array-like, optional
        Session starts of ``X`` (default: one session).
    n_states : iterable of int, default range(2, 33)
        Numbers of states to try (each >= 1).
    fit_fraction : float in (0, 1], optional
        Fit on ``ceil(fit_fraction * n_sessions)`` sessions drawn without
        replacement (LISBET's ``fit_frac`` draws with replacement).
    cv : int or cross-validator, optional
        Also fit on the training sessions of every fold and score the held-out
        sessions: an int ``n`` means ``SessionKFold(n)``; any splitter whose
        ``split(X, groups=session_labels)`` keeps sessions whole works.
    n_jobs : int, optional
        Numbers of states run in parallel with joblib (threads by default:
        JAX releases the GIL; ``-1`` uses all cores). For a cluster, wrap the
        call in ``joblib.parallel_config(backend="dask")``. On a CPU one fit
        already uses every core, so threads help little there; one run with
        2 threads on 100,000 frames (float64, 2 shared cores) stopped making
        progress (all threads asleep) and was not diagnosed: keep the default
        (sequential) for large CPU scans.
    random_state : int or None, default 0
        Seed of the ``fit_fraction`` draw.
    sequence_names : list of str, optional
        One name per session (default ``seq0``, ``seq1``, ...), used by
        [`NStatesScan.save`][behavhmm.model_selection.NStatesScan.save].

    Returns
    -------
    NStatesScan
        With ``models_``, ``metrics_``, ``labels_`` and ``history_``.

    Raises
    ------
    ValueError
        For an empty or invalid ``n_states``, a ``fit_fraction`` outside
        (0, 1], too few sessions for ``cv``, or ``sequence_names`` of the
        wrong length.
    TypeError
        If ``estimator`` has no ``n_states`` parameter.

    Notes
    -----
    AIC and BIC use hmmlearn's count of free parameters for Gaussian HMMs
    (``K-1 + K(K-1) + KD +`` the covariance entries) and the number of finite
    frames; for other estimators they are NaN. The log-likelihood is
    ``estimator.score`` on all frames.

    References
    ----------
    G. Chindemi, B. Girard, C. Bellone (2023). LISBET: a machine learning
    model for the automatic segmentation of social behavior motifs.
    arXiv:2311.04069.
    """
    from joblib import Parallel, delayed

    from .model_selection import SessionKFold

    if "n_states" not in estimator.get_params():
        raise TypeError(
            f"estimator must have an n_states parameter, got {type(estimator).__name__}."
        )
    X = _as_frames(X)
    requested = list(n_states)
    if not requested or any(
        not isinstance(k, numbers.Integral) or isinstance(k, bool) or k < 1 for k in requested
    ):
        raise ValueError(
            f"n_states must be a non-empty collection of integers >= 1, got {requested!r}."
        )
    ks = sorted({int(k) for k in requested})
    mask = session_mask(session_starts, X.shape[0])
    ids = session_ids(mask)
    n_sessions = int(ids.max()) + 1
    if sequence_names is None:
        sequence_names = [f"seq{i}" for i in range(n_sessions)]
    sequence_names = [str(s) for s in sequence_names]
    if len(sequence_names) != n_sessions:
        raise ValueError(
            f"sequence_names has {len(sequence_names)} names for {n_sessions} sessions."
        )
    fit_sessions = None
    if fit_fraction is not None:
        if not 0 < float(fit_fraction) <= 1:
            raise ValueError(f"fit_fraction must be in (0, 1], got {fit_fraction!r}.")
        rng = np.random.default_rng(random_state)
        n_fit = int(np.ceil(float(fit_fraction) * n_sessions))
        fit_sessions = np.sort(rng.choice(n_sessions, size=n_fit, replace=False))
    folds = []
    if cv is not None:
        splitter = SessionKFold(int(cv)) if isinstance(cv, numbers.Integral) else cv
        for train, test in splitter.split(X, groups=ids):
            folds.append((np.unique(ids[train]), np.unique(ids[test])))
    results = Parallel(n_jobs=n_jobs, prefer="threads")(
        delayed(_fit_one)(estimator, k, X, mask, ids, fit_sessions, folds) for k in ks
    )
    n_finite = int(np.isfinite(X).all(axis=1).sum())
    rows, models, labels = [], {}, {}
    for model, row, lab in results:
        k = row["n_states"]
        p = _n_parameters(model, X.shape[1])
        row["n_parameters"] = p
        row["aic"] = -2 * row["log_likelihood"] + 2 * p
        row["bic"] = -2 * row["log_likelihood"] + p * np.log(n_finite)
        rows.append(row)
        models[k], labels[k] = model, lab
    columns = ["n_states", "log_likelihood", "n_parameters", "aic", "bic"]
    metrics = pd.DataFrame(rows)
    metrics = metrics[columns + [c for c in metrics.columns if c not in columns]]
    return NStatesScan(
        models, metrics.sort_values("n_states").reset_index(drop=True), labels, mask, sequence_names
    )


# --------------------------------------------------------------------------- prototypes
def _mean_bout(column: np.ndarray, breaks: np.ndarray) -> float:
    """Mean length (frames) of the runs of True in ``column``; a run also ends at a session start."""
    c = column.astype(np.int8)
    starts = (c == 1) & ((np.r_[0, c[:-1]] == 0) | breaks)
    n = int(starts.sum())
    return float(c.sum()) / n if n else 0.0


def _silhouette(square, labels, silhouette_score) -> float:
    """Silhouette score; -1 when ``fcluster`` could not make 2 ... n - 1 clusters (tied distances)."""
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
            _write_csv(table, folder / "prototypes" / name / f"machineAnnotation_{tag}.csv")
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
    from scipy.cluster import hierarchy
    from scipy.spatial.distance import pdist, squareform
    from sklearn.metrics import silhouette_samples, silhouette_score

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

    breaks = scan.session_starts_
    columns = [(int(k), s) for k in scan.n_states_ for s in range(int(k))]
    data = np.column_stack([scan.labels_[k] == s for k, s in columns])
    keep = np.ones(len(columns), bool)
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
    idx = np.flatnonzero(keep)
    if idx.size == 0:
        raise ValueError(
            "No state passes the filters (min_frame_fraction, min_bout_s, max_distance); loosen them "
            "or scan more numbers of states."
        )
    cols = [columns[j] for j in idx]
    kept = data[:, idx]
    distance = pdist(kept.T, metric="jaccard") if len(cols) > 1 else np.zeros(0)
    if len(cols) >= 3:
        link = hierarchy.linkage(distance, method="average", optimal_ordering=True)
        square = squareform(distance)
        tried = np.arange(2, len(cols))
        candidates = [hierarchy.fcluster(link, n, criterion="maxclust") - 1 for n in tried]
        scores = np.array([_silhouette(square, lab, silhouette_score) for lab in candidates])
        best = int(np.argmax(_savgol(scores, len(cols))))
        cluster = candidates[best]
        n_clusters = int(cluster.max()) + 1
    else:
        link = np.zeros((0, 4))
        square = np.zeros((len(cols), len(cols)))
        tried, scores = np.zeros(0, int), np.zeros(0)
        cluster = np.zeros(len(cols), np.int64)
        n_clusters = 1
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
