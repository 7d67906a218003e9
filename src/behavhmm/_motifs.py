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
from ._prototypes import Prototypes, select_prototypes
from ._utils import in_caller_precision
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
        Numbers of states run in parallel with joblib, in separate processes
        (joblib's default backend, as `behavhmm.analysis.kappa_scan`; ``-1`` uses
        all cores). For a cluster, wrap the call in
        ``joblib.parallel_config(backend="dask")``. Not threads: with two
        threads on a 2-core CPU, jaxlib 0.10's batched Cholesky (which splits a
        batch over XLA's intra-op thread pool) waited forever for pool threads
        held by the other fit (diagnosed with gdb on 100,000 frames x 32
        features).
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
    sequence_names = _sequence_names(sequence_names, int(ids.max()) + 1)
    fit_sessions = _fit_sessions(fit_fraction, int(ids.max()) + 1, random_state)
    folds = _folds(cv, X, ids)
    results = Parallel(n_jobs=n_jobs)(
        delayed(in_caller_precision(_fit_one))(estimator, k, X, mask, ids, fit_sessions, folds)
        for k in ks
    )
    models = {row["n_states"]: model for model, row, _ in results}
    labels = {row["n_states"]: lab for _, row, lab in results}
    return NStatesScan(models, _metrics_table(results, X), labels, mask, sequence_names)


def _sequence_names(sequence_names, n_sessions: int) -> list[str]:
    if sequence_names is None:
        sequence_names = [f"seq{i}" for i in range(n_sessions)]
    sequence_names = [str(s) for s in sequence_names]
    if len(sequence_names) != n_sessions:
        raise ValueError(
            f"sequence_names has {len(sequence_names)} names for {n_sessions} sessions."
        )
    return sequence_names


def _fit_sessions(fit_fraction, n_sessions: int, random_state):
    """Sessions drawn without replacement for ``fit_fraction`` (None: all of them)."""
    if fit_fraction is None:
        return None
    if not 0 < float(fit_fraction) <= 1:
        raise ValueError(f"fit_fraction must be in (0, 1], got {fit_fraction!r}.")
    rng = np.random.default_rng(random_state)
    n_fit = int(np.ceil(float(fit_fraction) * n_sessions))
    return np.sort(rng.choice(n_sessions, size=n_fit, replace=False))


def _folds(cv, X, ids) -> list:
    """(training sessions, held-out sessions) of every fold of ``cv``."""
    from .model_selection import SessionKFold

    if cv is None:
        return []
    splitter = SessionKFold(int(cv)) if isinstance(cv, numbers.Integral) else cv
    return [
        (np.unique(ids[train]), np.unique(ids[test]))
        for train, test in splitter.split(X, groups=ids)
    ]


def _metrics_table(results, X) -> pd.DataFrame:
    """One row per number of states: log-likelihoods, free parameters, AIC and BIC."""
    n_finite = int(np.isfinite(X).all(axis=1).sum())
    rows = []
    for model, row, _ in results:
        p = _n_parameters(model, X.shape[1])
        row["n_parameters"] = p
        row["aic"] = -2 * row["log_likelihood"] + 2 * p
        row["bic"] = -2 * row["log_likelihood"] + p * np.log(n_finite)
        rows.append(row)
    columns = ["n_states", "log_likelihood", "n_parameters", "aic", "bic"]
    metrics = pd.DataFrame(rows)
    metrics = metrics[columns + [c for c in metrics.columns if c not in columns]]
    return metrics.sort_values("n_states").reset_index(drop=True)


# --------------------------------------------------------------------------- prototypes
