"""Built-in initializers of the GLM-HMM, with nemos' names, signatures and keyword arguments.

Two protocols, passed by keyword (see
[`HMMInitializer`][behavhmm.models.glm_hmm.HMMInitializer] and
[`GLMInitializer`][behavhmm.models.glm_hmm.GLMInitializer]):

- initial and transition probabilities:
  ``func(n_states, X, y, session_starts, random_key, **kwargs)``;
- GLM weights and scale:
  ``func(n_states, X, y, inverse_link_function, observation_model,
  session_starts, random_key, **kwargs)``.

``X`` is the training design (an array, or a dict of arrays, NaN borders
dropped), ``y`` the observations (class indices ``0 .. n_classes - 1`` for the
categorical family), ``observation_model`` the family's name and
``inverse_link_function`` the resolved callable. The k-means initializers of
one fit share one clustering (passed as ``initializer``).
"""

from __future__ import annotations

import warnings
from typing import Any, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np
import scipy.special
from sklearn.exceptions import ConvergenceWarning

from ..._utils import float_dtype
from ...fitting.regularizers import get_regularizer
from ...fitting.solvers import check_solver_kwargs, default_solver_kwargs, freeze_kwargs
from ...observations.glm import (
    GLMParams,
    exp,
    flatten_design,  # moved to behavhmm.observations.glm; re-exported here for one release
    identity,
    logistic,
    norm_cdf,
    one_over_x,
    softplus,
    unflatten_coef,
)
from .._initializers import (
    dirichlet_initial_proba,
    dirichlet_transition_proba,
    normalized_uniform_initial_proba,
    normalized_uniform_transition_proba,
    sticky_transition_proba,
    uniform_initial_proba,
    uniform_transition_proba,
)
from .em import GLMConfig, GLMHyper, weighted_glm_program

__all__ = [
    "uniform_initial_proba_init",
    "random_initial_proba_init",
    "dirichlet_initial_proba_init",
    "kmeans_initial_proba_init",
    "sticky_transition_proba_init",
    "uniform_transition_proba_init",
    "random_transition_proba_init",
    "dirichlet_transition_proba_init",
    "kmeans_transition_proba_init",
    "random_glm_params_init",
    "kmeans_glm_params_init",
    "constant_scale_init",
    "kmeans_scale_init",
    "KMeansInitializer",
    "flatten_design",
    "unflatten_coef",
    "intercept_matching_mean",
]


# ----------------------------------------------------------------------------
# the two initializer protocols (called by keyword)
# ----------------------------------------------------------------------------

_HMM_KEYWORDS = ("n_states", "X", "y", "session_starts", "random_key")
_GLM_KEYWORDS = (
    "n_states",
    "X",
    "y",
    "inverse_link_function",
    "observation_model",
    "session_starts",
    "random_key",
)


@runtime_checkable
class HMMInitializer(Protocol):
    """Initializer of the initial or transition probabilities, called by keyword.

    ``func(n_states, X, y, session_starts, random_key, **kwargs)`` returns an
    array of shape (n_states,) (initial) or (n_states, n_states)
    (transition, rows summing to 1). Every argument must appear in the
    signature, even if unused (nemos' ``InitFunctionHMM``).
    """

    def __call__(
        self,
        n_states: int,
        X: Any,
        y: np.ndarray,
        session_starts: np.ndarray,
        random_key: jax.Array,
        **kwargs: Any,
    ) -> Any:
        """Return the initial probabilities or the transition matrix."""
        ...


@runtime_checkable
class GLMInitializer(Protocol):
    """Initializer of the GLM weights or the scale, called by keyword.

    ``func(n_states, X, y, inverse_link_function, observation_model,
    session_starts, random_key, **kwargs)``: for ``glm_params_init`` it
    returns ``(coef, intercept)`` (``coef`` with the structure of ``X``),
    for ``scale_init`` the scale array. ``observation_model`` is the family
    name. Every argument must appear in the signature (nemos'
    ``InitFunctionGLM``).
    """

    def __call__(
        self,
        n_states: int,
        X: Any,
        y: np.ndarray,
        inverse_link_function: Any,
        observation_model: str,
        session_starts: np.ndarray,
        random_key: jax.Array,
        **kwargs: Any,
    ) -> Any:
        """Return ``(coef, intercept)`` or the scale."""
        ...


# ----------------------------------------------------------------------------
# design pytrees
# ----------------------------------------------------------------------------


def _n_outputs(y, observation_model) -> int | None:
    y = np.asarray(y)
    if observation_model == "Categorical":
        return int(y.max()) + 1
    return None if y.ndim == 1 else y.shape[1]


# ----------------------------------------------------------------------------
# initial and transition probabilities
# ----------------------------------------------------------------------------


# nemos passes the protocol arguments by keyword (``X``, ``y``, ``session_starts``,
# ``random_key``); each built-in below maps them onto the shared built-in of
# `behavhmm.models._initializers` (positional ``(n_states, X, session_starts, random_key)``).


def uniform_initial_proba_init(n_states, X=None, y=None, session_starts=None, random_key=None):
    """Every state equally likely at a session start."""
    return uniform_initial_proba(n_states, X, session_starts, random_key)


def random_initial_proba_init(n_states, X=None, y=None, session_starts=None, random_key=None):
    """Uniform random numbers, normalised."""
    return normalized_uniform_initial_proba(n_states, X, session_starts, _key(random_key))


def dirichlet_initial_proba_init(
    n_states, X=None, y=None, session_starts=None, random_key=None, alphas=None
):
    """A draw from ``Dir(alphas)`` (default all ones)."""
    return dirichlet_initial_proba(n_states, X, session_starts, _key(random_key), alphas=alphas)


def sticky_transition_proba_init(
    n_states, X=None, y=None, session_starts=None, random_key=None, stickiness=0.95, **kwargs
):
    """``stickiness`` on the diagonal, the rest spread evenly over the other states.

    ``prob_stay`` (nemos' name) is a deprecated alias of ``stickiness``.

    Warns
    -----
    FutureWarning
        When ``prob_stay`` is passed.
    """
    if "prob_stay" in kwargs:
        warnings.warn(
            "prob_stay is deprecated: pass stickiness (the same number), the keyword of every "
            "behavhmm model's sticky transition initializer.",
            FutureWarning,
            stacklevel=2,
        )
        stickiness = kwargs.pop("prob_stay")
    if kwargs:
        raise TypeError(f"Unexpected keyword arguments {sorted(kwargs)}.")
    return sticky_transition_proba(n_states, X, session_starts, random_key, stickiness=stickiness)


def uniform_transition_proba_init(n_states, X=None, y=None, session_starts=None, random_key=None):
    """Every transition equally likely."""
    return uniform_transition_proba(n_states, X, session_starts, random_key)


def random_transition_proba_init(n_states, X=None, y=None, session_starts=None, random_key=None):
    """Uniform random rows, normalised."""
    return normalized_uniform_transition_proba(n_states, X, session_starts, _key(random_key))


def dirichlet_transition_proba_init(
    n_states, X=None, y=None, session_starts=None, random_key=None, alphas=None
):
    """Rows drawn from ``Dir(alphas[i])`` (default all ones)."""
    return dirichlet_transition_proba(n_states, X, session_starts, _key(random_key), alphas=alphas)


def _key(random_key):
    return jax.random.key(0) if random_key is None else random_key


# ----------------------------------------------------------------------------
# GLM weights and scale
# ----------------------------------------------------------------------------


def _inverse_of_link(link, mean: np.ndarray) -> np.ndarray:
    """``f^{-1}(mean)`` for the built-in links; a numerical root for custom ones."""
    if link is identity:
        return mean
    if link is exp:
        return np.log(mean)
    if link is logistic:
        return scipy.special.logit(mean)
    if link is softplus:
        return np.log(np.expm1(mean))
    if link is one_over_x:
        return 1.0 / mean
    if link is norm_cdf:
        return scipy.special.ndtri(mean)
    from scipy.optimize import brentq

    def invert(m):
        try:
            return brentq(lambda v: float(link(jnp.asarray([v]))[0]) - m, -30.0, 30.0)
        except (ValueError, RuntimeError):
            return 0.0

    return np.vectorize(invert)(mean)


def intercept_matching_mean(y, inverse_link_function, observation_model) -> np.ndarray:
    """Intercepts whose predicted mean equals the mean of ``y`` (per output).

    Log class frequencies for Categorical.

    Returns
    -------
    ndarray of shape () , (n_outputs,) or (n_classes,)
    """
    y = np.asarray(y)
    if observation_model == "Categorical":
        counts = np.bincount(y.astype(int), minlength=int(y.max()) + 1) + 1.0
        logp = np.log(counts / counts.sum())
        return logp - logp.mean()
    mean = y.astype(float).mean(axis=0)
    eps = 1e-3
    if observation_model == "Bernoulli":
        mean = np.clip(mean, eps, 1.0 - eps)
    elif observation_model in ("Poisson", "NegativeBinomial", "Gamma"):
        mean = np.maximum(mean, eps)
    out = np.asarray(_inverse_of_link(inverse_link_function, mean), float)
    return np.where(np.isfinite(out), out, 0.0)


def random_glm_params_init(
    n_states,
    X,
    y,
    inverse_link_function,
    observation_model=None,
    session_starts=None,
    random_key=None,
    std_dev=0.001,
):
    """Small Gaussian weights (standard deviation ``std_dev``), intercepts matching ``y``'s mean.

    Returns
    -------
    coef : ndarray or dict
        Structure of ``X``; leaves of shape (n_features, n_states) or
        (n_features, n_outputs, n_states).
    intercept : ndarray of shape (n_states,) or (n_outputs, n_states)
    """
    flat = flatten_design(X)
    n_out = _n_outputs(y, observation_model)
    shape = (flat.shape[1], n_states) if n_out is None else (flat.shape[1], n_out, n_states)
    coef = float(std_dev) * np.asarray(jax.random.normal(_key(random_key), shape), float)
    base = intercept_matching_mean(y, inverse_link_function, observation_model)
    intercept = np.repeat(np.asarray(base)[..., None], n_states, axis=-1)
    return unflatten_coef(X, coef), intercept


def constant_scale_init(
    n_states,
    X,
    y,
    inverse_link_function=None,
    observation_model=None,
    session_starts=None,
    random_key=None,
    scale_val=1.0,
):
    """Every state's scale equal to ``scale_val``.

    The variance for Gaussian, the dispersion for Gamma / NegativeBinomial.

    Returns
    -------
    ndarray of shape (n_states,) or (n_outputs, n_states)
    """
    n_out = None if observation_model == "Categorical" else _n_outputs(y, observation_model)
    shape = (n_states,) if n_out is None else (n_out, n_states)
    return np.full(shape, float(scale_val))


class KMeansInitializer:
    """One k-means clustering of ``[X, y]`` shared by the k-means initializers of a fit.

    Columns are z-scored; scikit-learn's ``KMeans`` is fitted on at most
    ``max_samples`` random rows and labels every row. From the labels:
    initial and transition probabilities (counts plus ``minimum_prob``) and
    one GLM per cluster, fitted with the model's family and link, each on
    its own cluster with weight 1 and on the other rows with weight
    ``0.1 / n_states`` (so a cluster whose responses are all equal still gets
    finite weights).

    Parameters
    ----------
    n_states : int
    X : ndarray or dict of ndarrays
    y : ndarray
    session_starts : ndarray of bool
    random_key : jax.random key
    max_samples : int, default 20000
    """

    def __init__(self, n_states, X, y, session_starts, random_key, max_samples: int = 20000):
        from sklearn.cluster import KMeans

        flat = flatten_design(X)
        yy = np.asarray(y, float)
        feats = np.concatenate([flat, yy.reshape(len(yy), -1)], axis=1)
        sd = feats.std(axis=0)
        feats = (feats - feats.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
        seed = int(jax.random.bits(_key(random_key), (), jnp.uint32))
        rng = np.random.default_rng(seed)
        subset = (
            feats
            if len(feats) <= max_samples
            else feats[rng.choice(len(feats), max_samples, replace=False)]
        )
        if len(subset) < n_states:
            raise ValueError(
                f"k-means initialisation needs at least n_states={n_states} samples, got "
                f"{len(subset)}."
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            km = KMeans(n_clusters=n_states, n_init=1, random_state=seed).fit(subset)
        self.n_states = n_states
        self.labels = km.predict(feats)
        self.session_starts = np.asarray(session_starts, bool)
        self._glm: dict[Any, tuple] = {}

    def initial_probability(self, minimum_prob: float = 0.02) -> np.ndarray:
        """State frequencies at session starts, plus ``minimum_prob``, normalised."""
        counts = np.bincount(self.labels[self.session_starts], minlength=self.n_states).astype(
            float
        )
        p = counts / max(counts.sum(), 1.0) + minimum_prob
        return p / p.sum()

    def transition_probability(self, minimum_prob: float = 0.02) -> np.ndarray:
        """Label transition frequencies within sessions, plus ``minimum_prob``, row-normalised."""
        within = ~self.session_starts[1:]
        counts = np.zeros((self.n_states, self.n_states))
        np.add.at(counts, (self.labels[:-1][within], self.labels[1:][within]), 1.0)
        rows = counts.sum(axis=1, keepdims=True)
        p = (
            np.where(rows > 0, counts / np.where(rows > 0, rows, 1.0), 1.0 / self.n_states)
            + minimum_prob
        )
        return p / p.sum(axis=1, keepdims=True)

    def glm_fit(self, X, y, inverse_link_function, observation_model, glm_kwargs=None):
        """Per-cluster GLM weights and scales (cached per ``glm_kwargs``).

        Returns
        -------
        coef : ndarray of shape (n_features, [n_outputs,] n_states)
        intercept, scale : ndarrays of shape ([n_outputs,] n_states)
        """
        glm_kwargs = dict(glm_kwargs or {})
        cache_key = repr(sorted(glm_kwargs.items()))
        if cache_key not in self._glm:
            self._glm[cache_key] = _fit_cluster_glms(
                self.labels,
                self.n_states,
                X,
                y,
                inverse_link_function,
                observation_model,
                glm_kwargs,
            )
        return self._glm[cache_key]


def _fit_cluster_glms(labels, n_states, X, y, link, family, glm_kwargs):
    gamma = np.full((len(labels), n_states), 0.1 / n_states)
    gamma[np.arange(len(labels)), labels] += 1.0
    return fit_weighted_glms(gamma, X, y, link, family, glm_kwargs)


def fit_weighted_glms(gamma, X, y, link, family, glm_kwargs):
    """One GLM per state fitted to the frame weights ``gamma`` (n_frames, n_states)."""
    n_states = gamma.shape[1]
    unknown = set(glm_kwargs) - {
        "regularizer",
        "regularizer_strength",
        "solver_name",
        "solver_kwargs",
    }
    if unknown:
        raise ValueError(
            "glm_kwargs accepts regularizer, regularizer_strength, solver_name and solver_kwargs; "
            f"got {sorted(unknown)}."
        )
    dtype = float_dtype()
    flat = flatten_design(X)
    regularizer = get_regularizer(glm_kwargs.get("regularizer", "Ridge"))
    solver = glm_kwargs.get("solver_name") or regularizer.default_solver
    regularizer.check_solver(solver)
    user_kwargs = dict(glm_kwargs.get("solver_kwargs") or {})
    check_solver_kwargs(solver, user_kwargs)
    kwargs = {**default_solver_kwargs(solver, dtype), "maxiter": 500, **user_kwargs}
    coef0, intercept0 = random_glm_params_init(n_states, flat, y, link, family, std_dev=0.0)
    if family == "Categorical":
        scale0 = np.ones(n_states)
    elif family == "Gaussian":
        variance = np.asarray(np.var(np.asarray(y, float), axis=0))[..., None]
        scale0 = np.maximum(np.broadcast_to(variance, intercept0.shape), 1e-6)
    else:
        scale0 = np.ones(intercept0.shape)
    n = float(len(flat))
    reg = regularizer.hyperparameters(
        glm_kwargs.get("regularizer_strength", 1.0), coef0.shape, dtype
    )
    reg = {k: (v / n if k == "strength" else v) for k, v in reg.items()}
    config = GLMConfig(
        family=family,
        link=link,
        regularizer=regularizer.name,
        solver=solver,
        solver_kwargs=freeze_kwargs(kwargs),
        scale_solver_kwargs=freeze_kwargs(default_solver_kwargs("LBFGS", dtype)),
    )
    hyper = GLMHyper(
        reg=reg,
        normalizer=jnp.asarray(n, dtype),
        scale_floor=jnp.asarray(1e-8, dtype),
        alpha_initial=jnp.ones(n_states, dtype),
        alpha_transition=jnp.ones((n_states, n_states), dtype),
    )
    y_arr = jnp.asarray(y, jnp.int32 if family == "Categorical" else dtype)
    glm, scale, _ = weighted_glm_program(
        GLMParams(jnp.asarray(coef0, dtype), jnp.asarray(intercept0, dtype)),
        jnp.asarray(scale0, dtype),
        jnp.asarray(gamma, dtype),
        jnp.asarray(flat, dtype),
        y_arr,
        hyper,
        config,
    )
    return np.asarray(glm.coef, float), np.asarray(glm.intercept, float), np.asarray(scale, float)


def _kmeans(initializer, n_states, X, y, session_starts, random_key):
    return (
        initializer
        if initializer is not None
        else KMeansInitializer(n_states, X, y, session_starts, random_key)
    )


def kmeans_initial_proba_init(
    n_states, X, y, session_starts=None, random_key=None, minimum_prob=0.02, initializer=None
):
    """Frequency of each k-means cluster at session starts (plus ``minimum_prob``)."""
    return _kmeans(initializer, n_states, X, y, session_starts, random_key).initial_probability(
        minimum_prob
    )


def kmeans_transition_proba_init(
    n_states, X, y, session_starts=None, random_key=None, minimum_prob=0.02, initializer=None
):
    """Transition frequencies between k-means clusters (plus ``minimum_prob``)."""
    return _kmeans(initializer, n_states, X, y, session_starts, random_key).transition_probability(
        minimum_prob
    )


def kmeans_glm_params_init(
    n_states,
    X,
    y,
    inverse_link_function,
    observation_model,
    session_starts=None,
    random_key=None,
    glm_kwargs=None,
    initializer=None,
):
    """One GLM per k-means cluster of ``[X, y]``.

    See [`KMeansInitializer`][behavhmm.models.glm_hmm.KMeansInitializer].

    Parameters
    ----------
    glm_kwargs : dict, optional
        ``regularizer`` (default ``"Ridge"``), ``regularizer_strength``
        (default 1.0), ``solver_name`` and ``solver_kwargs`` of the
        per-cluster fits.
    initializer : KMeansInitializer, optional
        A clustering to reuse (the model passes one shared by all k-means slots).
    """
    init = _kmeans(initializer, n_states, X, y, session_starts, random_key)
    coef, intercept, _ = init.glm_fit(X, y, inverse_link_function, observation_model, glm_kwargs)
    return unflatten_coef(X, coef), intercept


def kmeans_scale_init(
    n_states,
    X,
    y,
    inverse_link_function,
    observation_model,
    session_starts=None,
    random_key=None,
    glm_kwargs=None,
    initializer=None,
):
    """The scale of each k-means cluster's GLM (ones for fixed-scale families)."""
    init = _kmeans(initializer, n_states, X, y, session_starts, random_key)
    _, _, scale = init.glm_fit(X, y, inverse_link_function, observation_model, glm_kwargs)
    return scale


INITIAL_REGISTRY = {
    "uniform": uniform_initial_proba_init,
    "random": random_initial_proba_init,
    "dirichlet": dirichlet_initial_proba_init,
    "kmeans": kmeans_initial_proba_init,
}
TRANSITION_REGISTRY = {
    "sticky": sticky_transition_proba_init,
    "uniform": uniform_transition_proba_init,
    "random": random_transition_proba_init,
    "dirichlet": dirichlet_transition_proba_init,
    "kmeans": kmeans_transition_proba_init,
}
GLM_PARAMS_REGISTRY = {"random": random_glm_params_init, "kmeans": kmeans_glm_params_init}
SCALE_REGISTRY = {"constant": constant_scale_init, "kmeans": kmeans_scale_init}
KMEANS_FUNCTIONS = (
    kmeans_initial_proba_init,
    kmeans_transition_proba_init,
    kmeans_glm_params_init,
    kmeans_scale_init,
)
