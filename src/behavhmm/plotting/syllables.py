"""Figures of syllable statistics and of a fit's progress (MoSeq-style summaries)."""

from __future__ import annotations

import numpy as np

from ._common import _axes

__all__ = ["plot_durations", "plot_usage", "plot_transition_matrix", "plot_fit_history"]


def plot_durations(
    states, session_starts=None, fps: float | None = None, ax=None, *, max_duration=None, bins=50
):
    """Histogram of syllable durations with their median marked.

    Parameters
    ----------
    states : int array-like of shape (n_time_bins,)
        Decoded syllables (-1 for unlabelled frames).
    session_starts : bool mask or start indices, optional
        A syllable instance never continues across a session start.
    fps : float, optional
        Frames per second: durations in seconds instead of frames.
    ax : matplotlib.axes.Axes, optional
    max_duration : float, optional
        Leave out longer instances (same unit as the durations); default: the
        99th percentile with at least 200 instances, else none.
    bins : int, default 50

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ValueError
        If no frame is labelled.
    """
    from ..analysis.syllables import syllable_durations

    durations = syllable_durations(states, session_starts, fps)
    if not len(durations):
        raise ValueError("states has no labelled frame (all -1): nothing to plot.")
    ax = _axes(ax, figsize=(5.0, 3.2))
    if max_duration is not None:
        top = float(max_duration)
    # a long tail would squash the histogram: cut at the 99th percentile once there are enough
    # instances
    else:
        top = float(np.quantile(durations, 0.99) if len(durations) >= 200 else durations.max())
    ax.hist(durations[durations <= top], bins=bins, color="0.45")
    med = float(np.median(durations))
    unit = "s" if fps is not None else "frames"
    ax.axvline(med, color="C3", ls="--", label=f"median {med:.3g} {unit}")
    ax.set_xlabel(f"syllable duration ({unit})")
    ax.set_ylabel("syllable instances")
    ax.legend(frameon=False)
    return ax


def plot_usage(usage, ax=None, *, max_syllables: int | None = 30, min_usage: float = 0.0):
    """Bar plot of syllable usage (frequency), one series per session or group.

    Parameters
    ----------
    usage : pandas.DataFrame or array-like
        A table from `behavhmm.analysis.syllable_usage` (rows: sessions or
        groups, columns: syllables), or decoded states of shape
        (n_time_bins,) whose overall usage is then plotted.
    ax : matplotlib.axes.Axes, optional
    max_syllables : int or None, default 30
        Plot only the most used syllables (by mean usage over rows).
    min_usage : float, default 0
        Leave out syllables whose mean usage is below this.

    Returns
    -------
    matplotlib.axes.Axes
    """
    import pandas as pd

    from ..analysis.syllables import syllable_usage

    table = (
        usage if isinstance(usage, pd.DataFrame) else syllable_usage(usage).rename(index={0: "all"})
    )
    mean = table.mean(axis=0)
    order = mean[mean >= min_usage].sort_values(ascending=False).index
    if max_syllables is not None:
        order = order[:max_syllables]
    ax = _axes(ax, figsize=(max(4.0, 0.22 * len(order) + 2), 3.2))
    n_rows = len(table)
    width = 0.8 / max(n_rows, 1)
    x = np.arange(len(order))
    for i, (name, row) in enumerate(table[order].iterrows()):
        ax.bar(x + (i - (n_rows - 1) / 2) * width, row.to_numpy(), width, label=str(name))
    ax.set_xticks(x, [str(c) for c in order], fontsize=7)
    ax.set_xlabel("syllable")
    ax.set_ylabel("usage")
    if 1 < n_rows <= 10:
        ax.legend(frameon=False, fontsize=7)
    return ax


def plot_transition_matrix(
    matrix, ax=None, *, state_names=None, max_syllables: int | None = 30, log: bool = False
):
    """Heat map of a transition matrix: a fitted model's, or bigram counts / probabilities.

    Parameters
    ----------
    matrix : fitted estimator with ``transition_prob_``, or array-like of shape (n_states, n_states)
        ``[i, j]``: transitions (or probabilities) from state ``i`` to ``j``
        (e.g. `behavhmm.analysis.transition_matrix`, or ``model.transition_prob_``).
    ax : matplotlib.axes.Axes, optional
    state_names : list of str, optional
        Tick labels, one per state (default: the state numbers).
    max_syllables : int or None, default 30
        Show the first states only (relabel syllables by usage first to see
        the most used).
    log : bool, default False
        Colour by log10 of the values (zeros left blank).

    Returns
    -------
    matplotlib.axes.Axes
        With up to 12 states the values are written in the cells.

    Raises
    ------
    ValueError
        If the matrix is not square (per-group matrices: pass one group's),
        or ``state_names`` has the wrong length.
    """
    m = np.asarray(getattr(matrix, "transition_prob_", matrix), float)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"matrix must be square (n_states, n_states), got shape {m.shape}.")
    if max_syllables is not None:
        m = m[:max_syllables, :max_syllables]
    n = m.shape[0]
    if state_names is not None and len(state_names) < n:
        raise ValueError(f"state_names must have {n} entries, got {len(state_names)}.")
    shown = np.where(m > 0, np.log10(np.where(m > 0, m, 1)), np.nan) if log else m
    ax = _axes(ax, figsize=(4.2, 3.6))
    im = ax.imshow(shown, cmap="viridis", interpolation="nearest")
    ax.figure.colorbar(im, ax=ax, label="log10 value" if log else "value")
    if n <= 12 and not log:
        top = np.nanmax(m) if m.size else 0.0
        for i in range(n):
            for j in range(n):
                ax.text(
                    j,
                    i,
                    f"{m[i, j]:.2f}",
                    ha="center",
                    va="center",
                    fontsize="small",
                    color="k" if m[i, j] > 0.6 * top else "w",
                )
    if state_names is not None:
        ax.set_xticks(range(n), list(state_names)[:n], rotation=30, ha="right")
        ax.set_yticks(range(n), list(state_names)[:n])
    ax.set_xlabel("to state")
    ax.set_ylabel("from state")
    return ax


def plot_fit_history(model, axes=None, *, fps: float | None = None):
    """A fit's progress: log-likelihood (train, held-out), log-joint, and median duration per check.

    Parameters
    ----------
    model : fitted ARHMM (or any estimator with the same ``*_history_`` attributes)
        Uses ``log_likelihood_history_`` (one value per iteration), and when present
        ``check_iterations_`` with ``heldout_log_likelihood_history_``,
        ``log_joint_history_`` and ``median_duration_history_`` (frames).
    axes : sequence of two matplotlib.axes.Axes, optional
        Left: log-likelihoods; right: median syllable duration.
    fps : float, optional
        Show the median duration in seconds.

    Returns
    -------
    ndarray of matplotlib.axes.Axes, shape (2,)

    Raises
    ------
    ValueError
        If the model has no ``log_likelihood_history_`` (not fitted).
    """
    import matplotlib.pyplot as plt

    ll = getattr(model, "log_likelihood_history_", None)
    if ll is None:
        raise ValueError("model has no log_likelihood_history_: fit it first.")
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(8.5, 3.2), layout="constrained")
    axes = np.asarray(axes)
    ll = np.asarray(ll)
    checks = np.asarray(getattr(model, "check_iterations_", np.zeros(0)), int)
    ax = axes[0]
    ax.plot(np.arange(1, len(ll) + 1), ll, color="C0", label="training log-likelihood")
    heldout = getattr(model, "heldout_log_likelihood_history_", None)
    if heldout is not None and len(heldout) == len(checks) and len(checks):
        ax.plot(checks, heldout, "o-", color="C1", label="held-out log-likelihood")
    joint = np.asarray(getattr(model, "log_joint_history_", np.zeros(0)))
    if len(joint):
        twin = ax.twinx()
        xj = checks if len(joint) == len(checks) else np.arange(1, len(joint) + 1)
        twin.plot(xj, joint, color="0.5", ls=":", label="log-joint")
        twin.set_ylabel("log-joint (nats)", color="0.4")
    ax.set_xlabel("iteration")
    ax.set_ylabel("log-likelihood (nats)")
    ax.legend(frameon=False, fontsize=8, loc="lower right")
    ax = axes[1]
    durations = np.asarray(getattr(model, "median_duration_history_", np.zeros(0)), float)
    if len(durations) and len(durations) == len(checks):
        scale, unit = (1.0 / fps, "s") if fps else (1.0, "frames")
        ax.plot(checks, durations * scale, "o-", color="C3")
        ax.set_ylabel(f"median syllable duration ({unit})")
    else:
        ax.text(0.5, 0.5, "no duration history", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("iteration")
    return axes
