"""``behavhmm fit CONFIG.yaml``: one run, or a grid of runs, from a validated config."""

from __future__ import annotations

import copy
import time
import warnings
from pathlib import Path

import numpy as np

from .._utils import in_caller_precision
from ._data import FitData, load_data, load_labels
from ._layout import (
    RunLog,
    SessionStates,
    claim_run_dir,
    claim_versions,
    file_record,
    versions,
    write_run,
)
from ._metrics import fit_metrics, label_scores

__all__ = ["fit_config", "grid_points", "make_estimator"]


def grid_points(config: dict) -> list[dict]:
    """The parameter sets of a config's grid (scikit-learn ``ParameterGrid`` order)."""
    from sklearn.model_selection import ParameterGrid

    grid = config["model"]["grid"]
    return list(ParameterGrid(grid)) if grid else [{}]


def make_estimator(model_type: str, params: dict):
    """An unfitted estimator of ``model_type`` with ``params`` (progress bars off unless asked)."""
    from .. import models

    cls = getattr(models, model_type)
    est = cls(**params)
    if "progress_bar" in est.get_params() and "progress_bar" not in params:
        est.set_params(progress_bar=False)
    return est


def _plain(value):
    """``value`` as plain YAML-safe Python (arrays and tuples as lists, numpy scalars unboxed)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)  # e.g. a callable initializer: recorded, not re-runnable


def hparams_for(config: dict, model, run_dir: Path) -> dict:
    """The ``hparams.yaml`` of one run: a config that re-runs it (``behavhmm fit hparams.yaml``).

    Every estimator parameter is written; list values are wrapped in a list of
    one (a list in a config means a grid), so re-running fits this one point.
    """
    params = {
        k: ([_plain(v)] if isinstance(_plain(v), list) else _plain(v))
        for k, v in model.get_params().items()
    }
    data = copy.deepcopy(config["data"])
    data["files"] = [file_record(p) for p in data["paths"]]
    out = {
        "model": {"type": config["model"]["type"], "params": params},
        "data": _plain(data),
        "output": config["output"],
        "versions": versions(),
        "run": {"dir": str(run_dir), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")},
    }
    if config.get("labels"):
        labels = copy.deepcopy(config["labels"])
        labels["files"] = [file_record(p) for p in labels["paths"]]
        out["labels"] = _plain(labels)
    if config.get("cv"):
        out["cv"] = dict(config["cv"])
    return out


def _session_states(model, model_type: str, data: FitData) -> list[SessionStates]:
    probs = np.asarray(data.call(model.smooth_proba, model_type), dtype=np.float64)
    states = np.asarray(
        data.call(model.decode_state, model_type, state_format="index"), dtype=np.int64
    )
    begin, end = data.bounds()
    return [
        SessionStates(name, probs[a:b], states[a:b])
        for name, a, b in zip(data.names, begin, end, strict=True)
    ]


def _quiet(call):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning of short fits: recorded in metrics
        return call()


def _fit(model, model_type: str, data: FitData, labels, label_cfg):
    extra = {}
    if labels is not None:
        extra = {
            "labels": labels[0],
            "label_weight": label_cfg["weight"],
            "class_names": labels[1],
        }
    return _quiet(lambda: data.call(model.fit, model_type, **extra))


def heldout_log_likelihood(model, model_type, data: FitData, labels, label_cfg, n_splits):
    """Whole-session K-fold held-out log-likelihood (nats, every session held out once).

    Each fold refits a clone of ``model`` on the other sessions (with their
    labels) and scores the held-out sessions with ``score`` (no labels).
    """
    from sklearn.base import clone

    from ..model_selection import SessionKFold

    total = 0.0
    folds = SessionKFold(n_splits).split(data.X, session_starts=data.session_starts)
    ids = np.cumsum(data.session_starts) - 1
    for train_rows, test_rows in folds:
        train, test = data.take(np.unique(ids[train_rows])), data.take(np.unique(ids[test_rows]))
        fold_labels = None
        if labels is not None:
            fold_labels = (labels[0][np.isin(ids, np.unique(ids[train_rows]))], labels[1])
        fold = _fit(clone(model), model_type, train, fold_labels, label_cfg)
        total += float(test.call(fold.score, model_type))
    return total


def run_point(config: dict, params: dict, run_dir, data: FitData, labels, echo=None) -> dict:
    """Fit one parameter set and write its run directory.

    Returns
    -------
    dict
        The ``summary.csv`` row: ``version``, the grid parameters,
        ``log_likelihood``, ``heldout_log_likelihood`` (with cv), label scores
        (with labels) and ``fit_seconds``.
    """
    run_dir = Path(run_dir)
    log = RunLog(echo)
    model_type, label_cfg = config["model"]["type"], config.get("labels")
    model = make_estimator(model_type, params)
    log(f"{model_type} {params or ''} on {data.n_frames:,} frames in {len(data.names)} session(s)")
    tic = time.perf_counter()
    _fit(model, model_type, data, labels, label_cfg)
    seconds = time.perf_counter() - tic
    row = {"version": run_dir.name, **params}
    row["log_likelihood"] = float(data.call(model.score, model_type))
    log(f"fitted in {seconds:.1f} s; log-likelihood {row['log_likelihood']:.6g} nats")
    sessions = _session_states(model, model_type, data)
    if config.get("cv"):
        row["heldout_log_likelihood"] = heldout_log_likelihood(
            model, model_type, data, labels, label_cfg, config["cv"]["n_splits"]
        )
        log(
            f"held-out log-likelihood ({config['cv']['n_splits']} folds of whole sessions): "
            f"{row['heldout_log_likelihood']:.6g} nats"
        )
    scores = {}
    if labels is not None:
        decoded = np.concatenate([s.labels for s in sessions])
        scores = label_scores(labels[0], decoded)
        n = scores.pop("n_labelled")
        log(
            f"labels: accuracy {scores['label_accuracy']:.3f}, F1 {scores['label_f1']:.3f} "
            f"on {n} frames"
        )
        row.update(scores)
    metrics = fit_metrics(
        model, heldout_log_likelihood=row.get("heldout_log_likelihood"), scores=scores
    )
    write_run(
        run_dir,
        model=model,
        sessions=sessions,
        metrics=metrics,
        hparams=hparams_for(config, model, run_dir),
        log=log,
    )
    row["fit_seconds"] = seconds
    return row


def _write_summary(out_dir: Path, rows: list[dict]) -> Path:
    """Append ``rows`` to ``out_dir/summary.csv`` (rewritten atomically with the earlier rows)."""
    import pandas as pd

    from .._files import atomic_path

    path = out_dir / "summary.csv"
    table = pd.DataFrame(rows)
    if path.exists():
        table = pd.concat([pd.read_csv(path), table], ignore_index=True)
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)
    return path


def fit_config(config: dict, *, out_dir=None, n_jobs=None, echo=None) -> dict:
    """Run a validated config: one run directory, or one ``version_N`` per grid point.

    Parameters
    ----------
    config : dict
        From `behavhmm.runs.load_config` / `validate_config`.
    out_dir : path-like, optional
        Overrides ``config["output"]``.
    n_jobs : int, optional
        Overrides ``config["n_jobs"]``: grid points fitted in parallel through
        joblib (``-1``: all cores; wrap the call in
        ``joblib.parallel_config(backend="dask")`` for a Dask cluster).
    echo : callable, optional
        Receives each log line (e.g. ``click.echo``); single runs only.

    Returns
    -------
    dict
        ``runs`` (list of run folders), ``rows`` (one summary row per run)
        and ``summary`` (the ``summary.csv`` path of a grid, else None).
    """
    from joblib import Parallel, delayed

    out = Path(out_dir or config["output"])
    model_type = config["model"]["type"]
    data = load_data(config["data"], model_type)
    labels = load_labels(config["labels"], data) if config.get("labels") else None
    points = grid_points(config)
    if len(points) == 1:
        run_dir = claim_run_dir(out)
        row = run_point(config, points[0], run_dir, data, labels, echo)
        return {"runs": [run_dir], "rows": [row], "summary": None}
    dirs = claim_versions(out, len(points))  # claimed here, in order, before any fit starts
    jobs = config["n_jobs"] if n_jobs is None else n_jobs
    rows = Parallel(n_jobs=jobs)(
        delayed(in_caller_precision(run_point))(config, p, d, data, labels)
        for p, d in zip(points, dirs, strict=True)
    )
    return {"runs": dirs, "rows": rows, "summary": _write_summary(out, rows)}
