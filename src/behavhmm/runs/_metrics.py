"""metrics.csv: a fit's history, one row per iteration, plus held-out and label scores."""

from __future__ import annotations

import numpy as np

__all__ = ["fit_metrics", "label_scores"]


def label_scores(labels, states) -> dict:
    """Accuracy and macro F1 of decoded ``states`` on the hand-labelled frames (``labels >= 0``).

    Parameters
    ----------
    labels : array-like of int, shape (n_time_bins,)
        Hand labels, -1 where a frame has none.
    states : array-like of int, shape (n_time_bins,)
        Decoded states (state ``c`` is labelled class ``c``).

    Returns
    -------
    dict
        ``label_accuracy`` and ``label_f1`` (NaN without labelled frames) and
        ``n_labelled``.
    """
    from sklearn.metrics import accuracy_score, f1_score

    labels = np.asarray(labels)
    states = np.asarray(states)
    rows = labels >= 0
    if not rows.any():
        return {"label_accuracy": np.nan, "label_f1": np.nan, "n_labelled": 0}
    return {
        "label_accuracy": float(accuracy_score(labels[rows], states[rows])),
        "label_f1": float(
            f1_score(labels[rows], states[rows], average="macro", labels=np.unique(labels[rows]))
        ),
        "n_labelled": int(rows.sum()),
    }


def fit_metrics(model, *, heldout_log_likelihood=None, scores: dict | None = None):
    """The ``metrics.csv`` table of a fitted estimator.

    Parameters
    ----------
    model : fitted estimator
        Its ``log_likelihood_history_`` gives one row per iteration (EM
        iteration or Gibbs sweep); ``heldout_log_likelihood_history_`` at
        ``check_iterations_`` (ARHMM with ``heldout_fraction``), when present,
        fills ``heldout_log_likelihood`` at those rows.
    heldout_log_likelihood : float, optional
        A held-out log-likelihood of the final model (nats, e.g. summed over
        whole-session CV folds), put on the last row.
    scores : dict, optional
        More final values (``label_accuracy``, ``label_f1``), put on the last row.

    Returns
    -------
    pandas.DataFrame
        Columns ``iteration`` (1, 2, ...), ``log_likelihood`` (nats) and the
        optional columns; NaN where a value was not measured.
    """
    import pandas as pd

    ll = np.asarray(getattr(model, "log_likelihood_history_", np.zeros(0)), dtype=float).ravel()
    if len(ll) == 0:  # no history recorded: one row with nothing measured
        ll = np.full(1, np.nan)
    table = pd.DataFrame({"iteration": np.arange(1, len(ll) + 1), "log_likelihood": ll})
    history = getattr(model, "heldout_log_likelihood_history_", None)
    checks = np.asarray(getattr(model, "check_iterations_", np.zeros(0)), dtype=int)
    column = np.full(len(ll), np.nan)
    if history is not None and len(history) and len(history) == len(checks):
        inside = (checks >= 1) & (checks <= len(ll))
        column[checks[inside] - 1] = np.asarray(history, dtype=float)[inside]
    if heldout_log_likelihood is not None:
        column[-1] = float(heldout_log_likelihood)
    if not np.all(np.isnan(column)):
        table["heldout_log_likelihood"] = column
    for key, value in (scores or {}).items():
        values = np.full(len(ll), np.nan)
        values[-1] = value
        table[key] = values
    return table
