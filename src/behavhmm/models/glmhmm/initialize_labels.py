"""GLMHMM's "labels" initializers: each labelled class's GLM from its hand-labelled frames.

``fit(..., labels=...)`` makes these the defaults of the ``glm_params_init``
and ``scale_init`` slots (and the shared ``labelled_initial_proba`` /
``labelled_transition_proba`` of `behavhmm.labels` those of the chain slots)
unless ``setup()`` chose others; ``setup(glm_params_init="labels")`` asks for
them by name.
"""

from __future__ import annotations

import numpy as np

from .initialize import (
    constant_scale_init,
    fit_weighted_glms,
    flatten_design,
    random_glm_params_init,
    unflatten_coef,
)

__all__ = ["labels_glm_params_init", "labels_scale_init"]

#: Weight of every frame in a class's fit, as a fraction of the class's labelled frames: keeps the
#: intercept finite when all labelled responses of a class are equal (Bernoulli all 0 or all 1).
BACKGROUND = 0.1


def _labelled_fit(n_states, X, y, inverse_link_function, observation_model, labels, glm_kwargs):
    """``(classes, coef, intercept, scale)`` of the GLMs fitted to each labelled class's frames.

    State ``c`` gets weight 1 on the frames labelled ``c`` and
    ``BACKGROUND * n_c / n_frames`` on every frame (``n_c`` labelled frames);
    ``classes`` lists the states that have labelled frames.

    Raises
    ------
    ValueError
        If no labels were passed, or their length is not the number of frames.
    """
    if labels is None:
        raise ValueError('glm_params_init="labels" needs labels: call fit(..., labels=...).')
    labels = np.asarray(labels)
    flat = flatten_design(X)
    if labels.shape != (len(flat),):
        raise ValueError(
            f"labels must have one entry per frame of X ({len(flat)}), got shape {labels.shape}."
        )
    counts = np.bincount(labels[labels >= 0], minlength=n_states)[:n_states].astype(float)
    gamma = np.broadcast_to(BACKGROUND * counts / len(flat), (len(flat), n_states)).copy()
    rows = np.flatnonzero(labels >= 0)
    gamma[rows, labels[rows]] += 1.0
    coef, intercept, scale = fit_weighted_glms(
        gamma, flat, y, inverse_link_function, observation_model, dict(glm_kwargs or {})
    )
    return np.flatnonzero(counts > 0), coef, intercept, scale


def labels_glm_params_init(
    n_states,
    X,
    y,
    inverse_link_function,
    observation_model,
    session_starts=None,
    random_key=None,
    labels=None,
    glm_kwargs=None,
    std_dev=0.001,
):
    """Each labelled class's GLM from its labelled frames; the free states as ``"random"`` does.

    Parameters
    ----------
    labels : ndarray of int of shape (n_frames,)
        Hand labels on the frames of ``X`` (-1: unlabelled); the model passes
        them when ``fit`` has labels.
    glm_kwargs : dict, optional
        ``regularizer`` (default ``"Ridge"``), ``regularizer_strength``,
        ``solver_name`` and ``solver_kwargs`` of the per-class fits (as in
        ``"kmeans"``).
    std_dev : float, default 0.001
        Spread of the free states' random weights (``"random"``).

    Returns
    -------
    coef : ndarray of shape (n_features, [n_outputs,] n_states), or a dict for a dict ``X``
    intercept : ndarray of shape ([n_outputs,] n_states)

    Raises
    ------
    ValueError
        If no labels were passed (``fit`` without ``labels``).
    """
    classes, coef, intercept, _ = _labelled_fit(
        n_states, X, y, inverse_link_function, observation_model, labels, glm_kwargs
    )
    coef0, intercept0 = random_glm_params_init(
        n_states,
        flatten_design(X),
        y,
        inverse_link_function,
        observation_model,
        session_starts,
        random_key,
        std_dev=std_dev,
    )
    coef0 = np.array(coef0, float)
    coef0[..., classes] = coef[..., classes]
    intercept0[..., classes] = intercept[..., classes]
    return unflatten_coef(X, coef0), intercept0


def labels_scale_init(
    n_states,
    X,
    y,
    inverse_link_function,
    observation_model,
    session_starts=None,
    random_key=None,
    labels=None,
    glm_kwargs=None,
    scale_val=1.0,
):
    """The scale of each labelled class's GLM; ``scale_val`` (``"constant"``) for the free states.

    Raises
    ------
    ValueError
        If no labels were passed (``fit`` without ``labels``).
    """
    classes, _, _, scale = _labelled_fit(
        n_states, X, y, inverse_link_function, observation_model, labels, glm_kwargs
    )
    out = np.array(
        constant_scale_init(
            n_states, X, y, inverse_link_function, observation_model, scale_val=scale_val
        ),
        float,
    )
    out[..., classes] = scale[..., classes]
    return out
