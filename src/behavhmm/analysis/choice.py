"""Choice-model analysis for GLM-HMMs: bits per trial, psychometric curves, occupancy, dwell times.

The measures follow Ashwood et al. (2022): a fitted GLM-HMM is compared with
a one-state GLM (the classic psychometric model) by the gain in held-out
log-likelihood, in bits per trial; each state is described by its weights,
its psychometric curve and its expected dwell time; and each session by the
fraction of trials spent in each state.

References
----------
Z. C. Ashwood et al. (2022). Mice alternate between discrete strategies
during perceptual decision-making. Nature Neuroscience 25, 201-212.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted

from ..models import GLMHMM
from ..observations.glm import flatten_design, observation_family, resolve_inverse_link
from ..sessions import session_ids, session_mask

__all__ = [
    "bits_per_trial",
    "fit_one_state_baseline",
    "PsychometricCurves",
    "psychometric_curves",
    "empirical_psychometric",
    "state_occupancy",
    "dwell_times",
]

_LN2 = float(np.log(2.0))


def bits_per_trial(log_likelihood: float, baseline_log_likelihood: float, n_trials: int) -> float:
    """Log-likelihood gain over a baseline in bits per trial.

    ``(LL - LL_0) / (n_trials · ln 2)``: how many bits per trial a model
    predicts choices better than the baseline (Ashwood et al. 2022 use a
    one-state GLM as baseline, on held-out sessions).

    Parameters
    ----------
    log_likelihood : float
        Log-likelihood of the model (nats), e.g. ``model.score(X, y)``.
    baseline_log_likelihood : float
        Log-likelihood of the baseline on the same trials (nats).
    n_trials : int
        Number of trials scored.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If ``n_trials`` is not positive.
    """
    if n_trials <= 0:
        raise ValueError(f"n_trials must be positive, got {n_trials}.")
    return (float(log_likelihood) - float(baseline_log_likelihood)) / (n_trials * _LN2)


def fit_one_state_baseline(model: GLMHMM, X, y, session_starts=None) -> GLMHMM:
    """A one-state copy of ``model`` (same family, link, penalty) fitted to ``(X, y)``.

    Parameters
    ----------
    model : GLMHMM
        Its hyperparameters are copied (``n_states`` becomes 1; Dirichlet
        priors are dropped, they have no meaning for one state).
    X, y, session_starts
        Training data, as in [`GLMHMM.fit`][behavhmm.GLMHMM.fit].

    Returns
    -------
    GLMHMM
        The fitted one-state model: a plain GLM.
    """
    base = clone(model).set_params(
        n_states=1, dirichlet_initial_proba=None, dirichlet_transition_proba=None, n_init=1
    )
    return base.fit(X, y, session_starts=session_starts)


class PsychometricCurves(NamedTuple):
    """Per-state psychometric curves.

    Attributes
    ----------
    stimulus : ndarray of shape (n_points,)
        Stimulus values.
    probability : ndarray of shape (n_points, n_states) or (n_points, n_classes, n_states)
        Predicted ``p(y = 1)`` (Bernoulli) or class probabilities
        (Categorical) in each state, other regressors held fixed.
    """

    stimulus: np.ndarray
    probability: np.ndarray


def _feature_index(model: GLMHMM, stimulus) -> int:
    names = getattr(model, "feature_names_in_", None)
    if isinstance(stimulus, str):
        if names is None or stimulus not in list(names):
            raise ValueError(f"stimulus={stimulus!r} is not a feature name of the model ({names}).")
        return list(names).index(stimulus)
    return int(stimulus)


def psychometric_curves(
    model: GLMHMM, stimulus=0, values=None, *, other=None
) -> PsychometricCurves:
    """Each state's predicted choice probability as a function of one regressor.

    Parameters
    ----------
    model : GLMHMM
        A fitted Bernoulli or Categorical GLM-HMM with an array design.
    stimulus : int or str, default 0
        Column of ``X`` (index, or name when ``X`` was a DataFrame) to vary.
    values : array-like, optional
        Stimulus values; default 101 points over [-1, 1].
    other : array-like of shape (n_features,), optional
        Values of the other regressors (the stimulus entry is ignored);
        default zeros, i.e. the curve through the state's bias.

    Returns
    -------
    PsychometricCurves

    Raises
    ------
    ValueError
        For other families, a dict design, or an unknown column.
    """
    check_is_fitted(model, ("coef_", "intercept_"))
    family = observation_family(model.observation_model)
    if family not in ("Bernoulli", "Categorical"):
        raise ValueError(
            f"psychometric curves need a Bernoulli or Categorical model, not {family}."
        )
    if isinstance(model.coef_, dict):
        raise ValueError("psychometric_curves needs a model fitted on an array X (not a dict).")
    n_features = np.shape(model.coef_)[0]
    col = _feature_index(model, stimulus)
    if not 0 <= col < n_features:
        raise ValueError(f"stimulus column {col} is outside [0, {n_features}).")
    values = np.linspace(-1.0, 1.0, 101) if values is None else np.asarray(values, float)
    base = np.zeros(n_features) if other is None else np.asarray(other, float).copy()
    if base.shape != (n_features,):
        raise ValueError(f"other must have shape ({n_features},), got {base.shape}.")
    design = np.repeat(base[None], len(values), axis=0)
    design[:, col] = values
    coef, intercept = np.asarray(model.coef_, float), np.asarray(model.intercept_, float)
    if coef.shape[-1] != intercept.shape[-1] or coef.ndim != intercept.ndim + 1:
        raise ValueError(
            f"coef_ {coef.shape} and intercept_ {intercept.shape} do not describe the same states."
        )
    eta = np.einsum("td,d...k->t...k", design, coef) + intercept
    if family == "Bernoulli":
        prob = np.asarray(resolve_inverse_link(model.inverse_link_function, family)(eta), float)
    else:
        eta = eta - eta.max(axis=1, keepdims=True)
        prob = np.exp(eta) / np.exp(eta).sum(axis=1, keepdims=True)
    return PsychometricCurves(values, prob)


def empirical_psychometric(model: GLMHMM, X, y, stimulus=0, session_starts=None) -> dict[str, Any]:
    """Observed choice fractions per stimulus level, each trial weighted by its state posterior.

    Parameters
    ----------
    model : GLMHMM
        A fitted Bernoulli GLM-HMM.
    X, y, session_starts
        Data, as in [`GLMHMM.fit`][behavhmm.GLMHMM.fit].
    stimulus : int or str, default 0
        Column of ``X`` holding the stimulus.

    Returns
    -------
    dict
        ``"stimulus"``: the distinct stimulus values (n_levels,);
        ``"fraction"``: posterior-weighted fraction of ``y = 1`` per level and
        state (n_levels, n_states), NaN where a state has no weight;
        ``"weight"``: the summed posterior weight behind each fraction.
    """
    proba = np.asarray(model.smooth_proba(X, y, session_starts=session_starts), float)
    Xv = flatten_design(X.values if hasattr(X, "time_support") else X)
    yv = np.asarray(y.values if hasattr(y, "time_support") else y, float)
    col = _feature_index(model, stimulus)
    ok = np.all(np.isfinite(proba), axis=1)
    levels = np.unique(Xv[ok, col])
    frac = np.full((len(levels), proba.shape[1]), np.nan)
    weight = np.zeros((len(levels), proba.shape[1]))
    for i, level in enumerate(levels):
        rows = ok & (Xv[:, col] == level)
        w = proba[rows]
        weight[i] = w.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            frac[i] = (w * yv[rows, None]).sum(axis=0) / weight[i]
    return {"stimulus": levels, "fraction": frac, "weight": weight}


def state_occupancy(probabilities, session_starts=None) -> np.ndarray:
    """Fraction of time bins in each state, per session.

    Parameters
    ----------
    probabilities : array-like of shape (n_time_bins, n_states)
        Posterior probabilities (``smooth_proba``) or one-hot states
        (``decode_state``); NaN (or all-zero) rows are ignored.
    session_starts : array-like, optional
        Session starts (as in ``fit``); default one session.

    Returns
    -------
    ndarray of shape (n_sessions, n_states)
        Rows sum to 1 (NaN for a session with no valid row).
    """
    p = np.asarray(getattr(probabilities, "values", probabilities), float)
    if p.ndim != 2:
        raise ValueError(f"probabilities must have shape (n_time_bins, n_states), got {p.shape}.")
    valid = np.all(np.isfinite(p), axis=1) & (np.nansum(p, axis=1) > 0)
    sid = session_ids(session_mask(session_starts, p.shape[0]))
    n_sessions = int(sid.max()) + 1 if len(sid) else 0
    out = np.zeros((n_sessions, p.shape[1]))
    np.add.at(out, sid[valid], p[valid])
    totals = out.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore"):
        return out / totals


def dwell_times(transition_prob) -> np.ndarray:
    """Expected number of consecutive time bins in each state, ``1 / (1 - A_kk)``.

    Parameters
    ----------
    transition_prob : array-like of shape (n_states, n_states)
        E.g. ``model.transition_prob_``.

    Returns
    -------
    ndarray of shape (n_states,)
        ``inf`` for an absorbing state.
    """
    diag = np.diag(np.asarray(transition_prob, float))
    with np.errstate(divide="ignore"):
        return 1.0 / (1.0 - diag)
