"""Segmentation metrics against hand labels: per-class precision, recall, F1, IoU and bouts."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import jaccard_score, precision_recall_fscore_support

from .alignment import match_states
from .syllables import _runs, _states

__all__ = ["segmentation_report"]

_MATCHES = ("hungarian", None)


def _bout_stats(states: np.ndarray, classes, session_starts) -> dict[str, np.ndarray]:
    """Number, mean and median length (frames) of the runs of each class."""
    labels, lengths, _ = _runs(states, session_starts)
    out = {"n_bouts": [], "mean_bout": [], "median_bout": []}
    for c in classes:
        runs = lengths[labels == c]
        out["n_bouts"].append(len(runs))
        out["mean_bout"].append(runs.mean() if len(runs) else np.nan)
        out["median_bout"].append(np.median(runs) if len(runs) else np.nan)
    return out


def segmentation_report(
    y_true,
    y_pred,
    background: int = -1,
    match: str | None = "hungarian",
    *,
    session_starts=None,
    class_names=None,
) -> pd.DataFrame:
    """Per-class agreement of a segmentation with reference labels (hand labels, heuristics).

    Frames whose reference is ``background`` (unlabelled) or whose prediction
    is negative (not modelled) are left out. With ``match="hungarian"`` the
    predicted states are first renamed to the reference classes that
    maximise the number of agreeing frames
    ([`match_states`][behavhmm.analysis.match_states]), as an unsupervised fit
    needs; with ``match=None`` states are compared as they are (a
    semi-supervised fit whose states ``0..C-1`` are the labelled classes).

    Parameters
    ----------
    y_true : array-like of int, shape (n_time_bins,) (or one-hot)
        Reference labels; ``background`` marks unlabelled frames.
    y_pred : array-like of int, shape (n_time_bins,) (or one-hot)
        Predicted states (e.g. ``model.predict(X)``); negative: not modelled.
    background : int, default -1
        The reference value of unlabelled frames (daart uses 0).
    match : {"hungarian", None}, default "hungarian"
        How predicted states are named before comparing.
    session_starts : array-like, optional
        Session starts (mask or indices); bouts do not run across them.
    class_names : sequence of str, optional
        Names of classes ``0..n-1``, used as the index.

    Returns
    -------
    pandas.DataFrame
        One row per reference class (index ``class``), columns
        ``precision``, ``recall``, ``f1``, ``iou`` (Jaccard index),
        ``support`` (reference frames), ``n_bouts_true``, ``n_bouts_pred``,
        ``mean_bout_true``, ``mean_bout_pred``, ``median_bout_true`` and
        ``median_bout_pred`` (bout = run of frames of one class, in frames,
        over the evaluated frames). ``attrs`` holds ``accuracy`` (fraction of
        evaluated frames that agree), ``n_frames`` (evaluated frames) and
        ``mapping`` (``mapping[state]`` = class the state was renamed to).

    Raises
    ------
    ValueError
        For labelings of different lengths, non-integer labels, an unknown
        ``match``, or no frame left to evaluate.

    References
    ----------
    M. R. Whiteway et al. (2021). Semi-supervised sequence modeling for
    improved behavioral segmentation. bioRxiv 2021.06.16.448685 (daart).
    """
    if match not in _MATCHES:
        raise ValueError(f"match must be one of {_MATCHES}, got {match!r}.")
    ref, pred = _states(y_true, "y_true"), _states(y_pred, "y_pred")
    if ref.shape != pred.shape:
        raise ValueError(
            f"y_true and y_pred must have the same length, got {ref.shape} and {pred.shape}."
        )
    valid = (ref != background) & (ref >= 0) & (pred >= 0)
    if not valid.any():
        raise ValueError("no frame has both a reference label (not background) and a prediction.")
    n = int(max(ref[valid].max(), pred[valid].max()) + 1)
    mapping = np.arange(n)
    if match == "hungarian":
        perm = match_states(np.where(valid, ref, -1), np.where(valid, pred, -1), n)
        mapping = np.argsort(perm)
    renamed = np.where(pred >= 0, mapping[np.clip(pred, 0, n - 1)], -1)
    classes = np.unique(ref[valid])
    r, p = ref[valid], renamed[valid]
    precision, recall, f1, support = precision_recall_fscore_support(
        r, p, labels=classes, zero_division=0
    )
    iou = jaccard_score(r, p, labels=classes, average=None, zero_division=0)
    true_bouts = _bout_stats(np.where(valid, ref, -1), classes, session_starts)
    pred_bouts = _bout_stats(np.where(valid, renamed, -1), classes, session_starts)
    table = {"precision": precision, "recall": recall, "f1": f1, "iou": iou, "support": support}
    for key in ("n_bouts", "mean_bout", "median_bout"):
        table[f"{key}_true"] = true_bouts[key]
        table[f"{key}_pred"] = pred_bouts[key]
    index = [class_names[c] for c in classes] if class_names is not None else classes
    df = pd.DataFrame(table, index=pd.Index(index, name="class"))
    df.attrs.update(accuracy=float(np.mean(r == p)), n_frames=int(valid.sum()), mapping=mapping)
    return df
