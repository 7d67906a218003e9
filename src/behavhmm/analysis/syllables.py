"""Syllable statistics from decoded state sequences (the MoSeq workflow).

Every function takes state sequences on the concatenated time axis with
``session_starts``; frames labelled -1 (an AR model's conditioning frames,
dropped NaN borders) are ignored and break runs. Syllables can be relabelled
by usage so that syllable 0 is the most used, as MoSeq users expect.

References
----------
A. B. Wiltschko et al. (2015). Mapping sub-second structure in mouse
behavior. Neuron 88(6), 1121-1135.

C. Weinreb et al. (2024). Keypoint-MoSeq: parsing behavior by linking point
tracking to pose dynamics. Nature Methods 21, 1329-1339.
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.utils import check_scalar

from .._utils import in_caller_precision
from ..sessions import session_bounds, session_ids, session_mask

__all__ = [
    "relabel_by_usage",
    "relabel_states",
    "syllable_durations",
    "median_duration",
    "syllable_usage",
    "transition_matrix",
    "cross_likelihoods",
    "kappa_scan",
]


def _states(states, name="states") -> np.ndarray:
    """Integer state indices of shape (n_time_bins,) from indices or one-hot rows (-1 for all-zero
    rows)."""
    arr = np.asarray(states)
    if arr.ndim == 2:  # one-hot
        arr = np.where(arr.any(axis=1), arr.argmax(axis=1), -1)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(
            f"{name} must be integer state indices of shape (n_time_bins,) or one-hot, got "
            f"{arr.shape}."
        )
    return arr


def _runs(states: np.ndarray, session_starts):
    """(state, length) of every run of equal, non-negative states within sessions."""
    mask = session_mask(session_starts, len(states))
    new = mask | np.r_[True, states[1:] != states[:-1]]
    run_id = np.cumsum(new) - 1
    lengths = np.bincount(run_id)
    first = np.flatnonzero(new)
    labels = states[first]
    keep = labels >= 0
    return labels[keep], lengths[keep], first[keep]


def relabel_by_usage(states, n_states: int | None = None, *, fixed: int = 0):
    """Renumber syllables so that 0 is the most used (by frames), 1 the next, ...

    Parameters
    ----------
    states : int array-like of shape (n_time_bins,) or one-hot
        Decoded states; -1 is kept as -1.
    n_states : int, optional
        Number of states; default ``max(states) + 1``.
    fixed : int, default 0
        States ``0..fixed-1`` keep their numbers and the others follow them
        by usage: the hand-labelled classes of a fit with labels
        (``len(model.class_names_)``).

    Returns
    -------
    relabelled : ndarray of int, shape (n_time_bins,)
    order : ndarray of int, shape (n_states,)
        ``order[new] = old``: the old label of each new syllable, so
        ``model.coef_[order]`` lines parameters up with the new labels.
    """
    z = _states(states)
    n_states = int(z.max(initial=-1) + 1) if n_states is None else int(n_states)
    counts = np.bincount(z[z >= 0], minlength=n_states)
    fixed = min(int(fixed), n_states)
    order = np.r_[np.arange(fixed), fixed + np.argsort(-counts[fixed:], kind="stable")]
    return relabel_states(z, order), order


def relabel_states(states, order) -> np.ndarray:
    """Apply a state permutation to labels: old state ``order[i]`` becomes ``i``; -1 stays -1.

    Parameters
    ----------
    states : int array-like of shape (n_time_bins,)
    order : int array-like of shape (n_states,)
        A permutation, ``order[new] = old`` (as returned by `relabel_by_usage`
        or given to `behavhmm.analysis.permute_states`).

    Returns
    -------
    ndarray of the dtype of ``states``
    """
    z = np.asarray(states)
    order = np.asarray(order, int)
    new_of_old = np.empty_like(order)
    new_of_old[order] = np.arange(len(order))
    return np.where(z >= 0, new_of_old[np.maximum(z, 0)], z).astype(z.dtype)


def syllable_durations(
    states, session_starts=None, fps: float | None = None, *, return_labels: bool = False
):
    """Durations of all syllable instances (runs of one state within a session).

    Parameters
    ----------
    states : int array-like of shape (n_time_bins,) or one-hot
    session_starts : bool mask or start indices, optional
        A run never continues across a session start.
    fps : float, optional
        Frames per second; durations are in seconds when given, else in frames.
    return_labels : bool, default False
        Also return each instance's syllable.

    Returns
    -------
    durations : ndarray of shape (n_instances,)
    labels : ndarray of int, shape (n_instances,)
        Only with ``return_labels=True``.
    """
    z = _states(states)
    labels, lengths, _ = _runs(z, session_starts)
    durations = lengths.astype(float) if fps is None else lengths / float(fps)
    return (durations, labels) if return_labels else durations


def median_duration(states, session_starts=None, fps: float | None = None) -> float:
    """Median syllable duration (frames, or seconds with ``fps``).

    Returns
    -------
    float
        NaN if there is no labelled frame.
    """
    durations = syllable_durations(states, session_starts, fps)
    return float(np.median(durations)) if len(durations) else float("nan")


def syllable_usage(
    states,
    session_starts=None,
    groups=None,
    *,
    n_states: int | None = None,
    by: str = "frames",
    normalize: bool = True,
    session_names=None,
) -> pd.DataFrame:
    """How often each syllable is used, per session or per group.

    Parameters
    ----------
    states : int array-like of shape (n_time_bins,) or one-hot
    session_starts : bool mask or start indices, optional
    groups : array-like, optional
        One label per session; usage is then pooled per group.
    n_states : int, optional
        Number of syllables (columns); default ``max(states) + 1``.
    by : {"frames", "instances"}, default "frames"
        Count frames, or syllable instances (runs), as MoSeq does.
    normalize : bool, default True
        Fractions per row (rows sum to 1) instead of counts.
    session_names : array-like, optional
        Names of the sessions (the index); default 0, 1, ...

    Returns
    -------
    pandas.DataFrame
        Rows: sessions (or groups), columns: syllables.

    Raises
    ------
    ValueError
        If ``by`` is unknown or ``groups`` has the wrong length.
    """
    if by not in ("frames", "instances"):
        raise ValueError(f'by must be "frames" or "instances", got {by!r}.')
    z = _states(states)
    n_states = int(z.max(initial=-1) + 1) if n_states is None else int(n_states)
    mask = session_mask(session_starts, len(z))
    sid = session_ids(mask)
    n_sessions = int(sid[-1]) + 1 if len(z) else 0
    counts = np.zeros((n_sessions, n_states))
    if by == "frames":
        ok = z >= 0
        np.add.at(counts, (sid[ok], z[ok]), 1)
    else:
        labels, _, first = _runs(z, mask)
        np.add.at(counts, (sid[first], labels), 1)
    index = pd.Index(
        np.arange(n_sessions) if session_names is None else list(session_names), name="session"
    )
    table = pd.DataFrame(counts, index=index, columns=pd.RangeIndex(n_states, name="syllable"))
    if groups is not None:
        labels = np.asarray(groups)
        if labels.shape != (n_sessions,):
            raise ValueError(
                f"groups must hold one label per session ({n_sessions}), got shape {labels.shape}."
            )
        table = table.groupby(pd.Index(labels, name="group")).sum()
    if normalize:
        table = table.div(table.sum(axis=1).replace(0, np.nan), axis=0)
    return table


def _bigram_counts(z: np.ndarray, begin, end, n_states: int, collapse_runs: bool) -> np.ndarray:
    """Transition counts of the sessions ``z[begin[i]:end[i]]``, shape (n_sessions, n_states,
    n_states)."""
    counts = np.zeros((len(begin), n_states, n_states))
    for s, (a, b) in enumerate(zip(begin, end, strict=True)):
        seg = z[a:b]
        # a -1 frame breaks the sequence: treat its neighbours as unconnected
        pieces = np.split(seg, np.flatnonzero(seg < 0))
        for piece in pieces:
            piece = piece[piece >= 0]
            if collapse_runs and len(piece):
                piece = piece[np.r_[True, piece[1:] != piece[:-1]]]
            if len(piece) > 1:
                np.add.at(counts[s], (piece[:-1], piece[1:]), 1)
    return counts


def _normalize_counts(counts: np.ndarray, normalize: str | None) -> np.ndarray:
    if normalize == "rows":
        rows = counts.sum(axis=1, keepdims=True)
        return np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    if normalize == "columns":
        cols = counts.sum(axis=0, keepdims=True)
        return np.divide(counts, cols, out=np.zeros_like(counts), where=cols > 0)
    if normalize == "all":
        total = counts.sum()
        return counts / total if total else counts
    return counts


def transition_matrix(
    states,
    session_starts=None,
    *,
    n_states: int | None = None,
    normalize: str | None = "rows",
    collapse_runs: bool = True,
    groups=None,
):
    """Bigram transition matrix between syllables, overall or per group of sessions.

    Parameters
    ----------
    states : int array-like of shape (n_time_bins,) or one-hot
    session_starts : bool mask or start indices, optional
        No transition is counted across a session start or a -1 frame.
    n_states : int, optional
    normalize : {"rows", "columns", "all", None}, default "rows"
        Row-normalise (``p(next | current)``), column-normalise
        (``p(current | next)``: where each syllable is entered from), divide
        by the total, or keep counts.
    collapse_runs : bool, default True
        Count transitions between consecutive syllable instances (MoSeq's
        bigrams, no self-transitions); False counts frame-to-frame transitions.
    groups : array-like, optional
        One label per session: one matrix per group, from the counts pooled
        over the group's sessions.

    Returns
    -------
    ndarray of shape (n_states, n_states), or dict of them
        ``[i, j]``: transitions from syllable ``i`` to ``j``; with ``groups``,
        a dict ``{group: matrix}`` in sorted group order.

    Raises
    ------
    ValueError
        If ``normalize`` is unknown or ``groups`` has the wrong length.
    """
    if normalize not in ("rows", "columns", "all", None):
        raise ValueError(f'normalize must be "rows", "columns", "all" or None, got {normalize!r}.')
    z = _states(states)
    n_states = int(z.max(initial=-1) + 1) if n_states is None else int(n_states)
    begin, end = session_bounds(session_mask(session_starts, len(z)))
    counts = _bigram_counts(z, begin, end, n_states, collapse_runs)
    if groups is None:
        return _normalize_counts(counts.sum(axis=0), normalize)
    labels = np.asarray(groups)
    if labels.shape != (len(begin),):
        raise ValueError(
            f"groups must hold one label per session ({len(begin)}), got shape {labels.shape}."
        )
    return {
        g: _normalize_counts(counts[labels == g].sum(axis=0), normalize)
        for g in sorted(set(labels.tolist()), key=str)
    }


def cross_likelihoods(model, X, session_starts=None, groups=None) -> np.ndarray:
    """How confusable the syllables are: ``[i, j]`` = mean log-likelihood ratio.

    For the frames decoded as syllable ``i``, the mean over frames of
    ``log p(y_t | state j) - log p(y_t | state i)`` under the fitted emissions
    (MoSeq's cross-likelihood analysis). Values near 0 off the diagonal mean
    syllable ``j`` explains ``i``'s frames almost as well: the two are hard to
    tell apart.

    Parameters
    ----------
    model : fitted ARHMM
    X : array-like of shape (n_time_bins, n_features)
    session_starts, groups : optional
        As in the model's methods.

    Returns
    -------
    ndarray of shape (n_states, n_states)
        Nats per frame; NaN rows for syllables that are never decoded.
    """
    ll = model.emission_log_likelihood(X, session_starts=session_starts, groups=groups)
    z = model.predict(X, session_starts=session_starts, groups=groups)
    ll, z = np.asarray(getattr(ll, "values", ll), float), np.asarray(getattr(z, "values", z))
    modelled = ~np.isnan(ll).any(axis=1)  # NaN rows: conditioning frames and dropped NaN borders
    ll, z = ll[modelled], z[modelled]
    n_states = ll.shape[1]
    out = np.full((n_states, n_states), np.nan)
    for i in range(n_states):
        rows = z == i
        if rows.any():
            out[i] = (ll[rows] - ll[rows, i][:, None]).mean(axis=0)
    return out


def _scan_one(model, kappa, X, session_starts, groups):
    import warnings

    fitted = clone(model).set_params(kappa=float(kappa), target_duration=None, progress_bar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted.fit(X, session_starts=session_starts, groups=groups)
    z = fitted.predict(X, session_starts=session_starts, groups=groups)
    used = np.bincount(z[z >= 0], minlength=fitted.n_states)
    return {
        "kappa": float(kappa),
        "median_duration": median_duration(z, session_starts),
        "log_likelihood": float(fitted.log_likelihood_history_[-1]),
        "n_used_states": int(np.sum(used >= 0.005 * max(used.sum(), 1))),
    }


def kappa_scan(
    model,
    X,
    kappas=None,
    *,
    session_starts=None,
    groups=None,
    min_kappa: float = 1e2,
    max_kappa: float = 1e8,
    n_kappas: int = 7,
    scale: str = "log",
    n_jobs: int | None = 1,
    fps: float | None = None,
) -> pd.DataFrame:
    """Fit one model per ``kappa`` and tabulate syllable durations and fit.

    Parameters
    ----------
    model : ARHMM
        The estimator to clone (all its other hyperparameters are kept).
    X : array-like of shape (n_time_bins, n_features)
    kappas : array-like, optional
        The values to try; default ``n_kappas`` values between ``min_kappa``
        and ``max_kappa`` on a ``scale`` grid.
    session_starts, groups : optional
        As in ``model.fit``.
    min_kappa, max_kappa : float
    n_kappas : int, default 7
    scale : {"log", "linear"}, default "log"
    n_jobs : int, optional
        Fits run in parallel through joblib (``-1``: all cores). For a
        cluster, wrap the call in ``joblib.parallel_config(backend="dask")``
        with a ``dask.distributed`` client (e.g. on a ``dask_jobqueue``
        SLURM cluster).
    fps : float, optional
        Adds ``median_duration_s`` (seconds).

    Returns
    -------
    pandas.DataFrame
        Columns ``kappa``, ``median_duration`` (frames), ``log_likelihood``
        (training, nats, last iteration), ``n_used_states`` (states with at
        least 0.5% of the frames), and ``median_duration_s`` with ``fps``;
        one row per kappa, in increasing kappa.

    Raises
    ------
    ValueError
        If ``scale`` is unknown or the range is invalid.
    """
    from joblib import Parallel, delayed

    if kappas is None:
        check_scalar(n_kappas, "n_kappas", numbers.Integral, min_val=1)
        if not 0 < min_kappa <= max_kappa:
            raise ValueError(f"need 0 < min_kappa <= max_kappa, got {min_kappa} and {max_kappa}.")
        if scale == "log":
            kappas = np.logspace(np.log10(min_kappa), np.log10(max_kappa), n_kappas)
        elif scale == "linear":
            kappas = np.linspace(min_kappa, max_kappa, n_kappas)
        else:
            raise ValueError(f'scale must be "log" or "linear", got {scale!r}.')
    kappas = np.sort(np.asarray(kappas, float))
    rows = Parallel(n_jobs=n_jobs)(
        delayed(in_caller_precision(_scan_one))(model, k, X, session_starts, groups) for k in kappas
    )
    table = pd.DataFrame(rows)
    if fps is not None:
        table["median_duration_s"] = table["median_duration"] / float(fps)
    return table
