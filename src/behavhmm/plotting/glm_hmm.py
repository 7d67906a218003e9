"""GLM-HMM figures: per-state weights and psychometric curves, state occupancy, transitions."""

from __future__ import annotations

import numpy as np

from ..analysis.choice import PsychometricCurves
from ._common import _axes

__all__ = ["plot_glm_weights", "plot_psychometric", "plot_state_occupancy"]


def _state_colors(n_states):
    import matplotlib.pyplot as plt

    cmap = plt.get_cmap("tab10")
    return [cmap(k % 10) for k in range(n_states)]


def _labels(n_states, state_names):
    if state_names is None:
        return [f"state {k + 1}" for k in range(n_states)]
    if len(state_names) != n_states:
        raise ValueError(f"state_names must have {n_states} entries, got {len(state_names)}.")
    return list(state_names)


def plot_glm_weights(model, feature_names=None, state_names=None, ax=None):
    """Each state's GLM weights (Bernoulli or single-output models), one line per state.

    Parameters
    ----------
    model : GLMHMM
        A fitted GLM-HMM with one output (``coef_`` of shape (n_features, n_states)).
    feature_names : list of str, optional
        Default: ``feature_names_in_`` or ``x0, x1, ...``; the intercept is
        plotted last as ``"bias"``.
    state_names : list of str, optional
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes

    Raises
    ------
    ValueError
        For a population or categorical model (weights with an output axis).
    """
    coef = model.coef_
    if isinstance(coef, dict):
        names = [f"{k}[{i}]" for k in sorted(coef) for i in range(np.shape(coef[k])[0])]
        coef = np.concatenate([np.asarray(coef[k]) for k in sorted(coef)], axis=0)
    else:
        coef = np.asarray(coef)
        names = list(getattr(model, "feature_names_in_", [f"x{i}" for i in range(coef.shape[0])]))
    if coef.ndim != 2:
        raise ValueError("plot_glm_weights draws single-output models; coef_ has an output axis.")
    names = list(feature_names) if feature_names is not None else names
    weights = np.concatenate([coef, np.asarray(model.intercept_)[None, :]], axis=0)
    labels = _labels(coef.shape[1], state_names)
    ax = _axes(ax)
    positions = np.arange(weights.shape[0])
    for k, color in enumerate(_state_colors(coef.shape[1])):
        ax.plot(positions, weights[:, k], "o-", color=color, label=labels[k])
    ax.axhline(0.0, color="0.6", lw=0.8, ls="--")
    ax.set_xticks(positions)
    ax.set_xticklabels(names + ["bias"], rotation=30, ha="right")
    ax.set_ylabel("GLM weight")
    ax.legend(frameon=False, fontsize="small")
    return ax


def plot_psychometric(
    curves: PsychometricCurves, empirical=None, state_names=None, ax=None, xlabel="stimulus"
):
    """Per-state psychometric curves, optionally with posterior-weighted choice fractions.

    Parameters
    ----------
    curves : PsychometricCurves
        From [`psychometric_curves`][behavhmm.analysis.choice.psychometric_curves]
        (Bernoulli: probability of ``y = 1``).
    empirical : dict, optional
        From [`empirical_psychometric`][behavhmm.analysis.choice.empirical_psychometric]; drawn as
        dots.
    state_names : list of str, optional
    ax : matplotlib Axes, optional
    xlabel : str, default "stimulus"

    Returns
    -------
    matplotlib Axes
    """
    prob = np.asarray(curves.probability)
    if prob.ndim != 2:
        raise ValueError("plot_psychometric draws Bernoulli curves of shape (n_points, n_states).")
    labels = _labels(prob.shape[1], state_names)
    ax = _axes(ax)
    for k, color in enumerate(_state_colors(prob.shape[1])):
        ax.plot(curves.stimulus, prob[:, k], color=color, label=labels[k])
        if empirical is not None:
            ax.plot(empirical["stimulus"], empirical["fraction"][:, k], "o", color=color, ms=4)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("p(choice = 1)")
    ax.legend(frameon=False, fontsize="small")
    return ax


def plot_state_occupancy(occupancy, state_names=None, ax=None, xlabel="session"):
    """Fraction of trials in each state per session, as stacked bars.

    Parameters
    ----------
    occupancy : array-like of shape (n_sessions, n_states)
        From [`state_occupancy`][behavhmm.analysis.choice.state_occupancy].
    state_names : list of str, optional
    ax : matplotlib Axes, optional
    xlabel : str, default "session"

    Returns
    -------
    matplotlib Axes
    """
    occ = np.asarray(occupancy, float)
    if occ.ndim != 2:
        raise ValueError(f"occupancy must have shape (n_sessions, n_states), got {occ.shape}.")
    labels = _labels(occ.shape[1], state_names)
    ax = _axes(ax, figsize=(max(4.5, 0.3 * occ.shape[0] + 2), 3.2))
    bottom = np.zeros(occ.shape[0])
    sessions = np.arange(occ.shape[0])
    for k, color in enumerate(_state_colors(occ.shape[1])):
        ax.bar(
            sessions,
            np.nan_to_num(occ[:, k]),
            bottom=bottom,
            color=color,
            label=labels[k],
            width=0.85,
        )
        bottom += np.nan_to_num(occ[:, k])
    ax.set_xlabel(xlabel)
    ax.set_ylabel("fraction of trials")
    ax.set_ylim(0, 1)
    ax.legend(frameon=False, fontsize="small", loc="upper right")
    return ax
