"""Generalized-linear emissions: one GLM per hidden state.

In state ``k`` an observation ``y_t`` (a scalar, a vector of ``n_outputs``
neurons, or a class label) follows a GLM of the design row ``x_t``:

$$
\\eta_{tk} = x_t^\\top W_k + b_k, \\qquad
\\mathbb{E}[y_t \\mid z_t = k] = f(\\eta_{tk}),
\\qquad y_t \\mid z_t = k \\sim \\mathrm{Family}(f(\\eta_{tk}), \\phi_k),
$$

with ``f`` the inverse link and ``φ_k`` the state's scale (dispersion). The
families and what their scale means:

| family | ``y`` | default inverse link | scale ``φ`` |
|---|---|---|---|
| ``"Bernoulli"`` | 0 or 1 | logistic | fixed at 1 |
| ``"Poisson"`` | counts ≥ 0 | exp | fixed at 1 |
| ``"Gaussian"`` | real | identity | variance ``σ²`` |
| ``"Gamma"`` | > 0 | ``1/x`` | ``Var = φ μ²`` (shape ``1/φ``) |
| ``"NegativeBinomial"`` | counts ≥ 0 | exp | ``Var = μ + φ μ²`` (``r = 1/φ``) |
| ``"Categorical"`` | class index | softmax over classes | fixed at 1 |

Parameters keep the state axis **last**, as in nemos: ``coef`` has shape
``(n_features, n_states)`` for one output, ``(n_features, n_outputs,
n_states)`` for a population (or ``n_classes`` logits for the categorical
family), ``intercept`` and ``scale`` have shape ``(n_states,)`` or
``(n_outputs, n_states)``.

Everything here is a pure JAX function of arrays: per-state log-likelihoods
for the E-step, the posterior-weighted objective and the scale updates of the
M-step, and sampling. The family and the inverse link are Python values
(static under ``jax.jit``).

References
----------
P. McCullagh and J. A. Nelder (1989). Generalized Linear Models, 2nd ed.
Chapman & Hall.

Z. C. Ashwood, N. A. Roy, I. R. Stone, The International Brain Laboratory,
A. E. Urai, A. K. Churchland, A. Pouget and J. W. Pillow (2022). Mice
alternate between discrete strategies during perceptual decision-making.
Nature Neuroscience 25, 201-212.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import gammaln
from jaxtyping import Array, Float

from .._utils import flatten_design, unflatten_coef

__all__ = [
    "FAMILIES",
    "DEFAULT_INVERSE_LINKS",
    "INVERSE_LINKS",
    "FIXED_SCALE_FAMILIES",
    "GLMParams",
    "identity",
    "exp",
    "logistic",
    "softplus",
    "one_over_x",
    "norm_cdf",
    "softmax",
    "resolve_inverse_link",
    "inverse_link_name",
    "linear_predictor",
    "glm_log_likelihoods",
    "glm_expected_nll",
    "glm_column_nll",
    "glm_elementwise_log_prob",
    "glm_log_likelihood_constant",
    "gaussian_scale_map",
    "glm_mean",
    "glm_sample",
    "flatten_design",
    "unflatten_coef",
    "observation_family",
]

FAMILIES = ("Bernoulli", "Poisson", "Gamma", "NegativeBinomial", "Gaussian", "Categorical")
"""The observation families, by name."""
FIXED_SCALE_FAMILIES = ("Bernoulli", "Poisson", "Categorical")
"""Families whose scale is fixed at 1 (nothing to estimate)."""


class GLMParams(NamedTuple):
    """Per-state GLM weights, state axis last.

    Attributes
    ----------
    coef : array of shape (n_features, n_states) or (n_features, n_outputs, n_states)
    intercept : array of shape (n_states,) or (n_outputs, n_states)
    """

    coef: Array
    intercept: Array


# ----------------------------------------------------------------------------
# inverse links
# ----------------------------------------------------------------------------


def identity(x):
    """Identity inverse link ``f(η) = η`` (Gaussian default)."""
    return x


def exp(x):
    """Exponential inverse link ``f(η) = e^η`` (Poisson and negative-binomial default)."""
    return jnp.exp(x)


def logistic(x):
    """Logistic (sigmoid) inverse link ``f(η) = 1 / (1 + e^{-η})`` (Bernoulli default)."""
    return jax.nn.sigmoid(x)


def softplus(x):
    """Softplus inverse link ``f(η) = log(1 + e^η)``."""
    return jax.nn.softplus(x)


def one_over_x(x):
    """Reciprocal inverse link ``f(η) = 1 / η`` (Gamma default, the canonical link)."""
    return 1.0 / x


def norm_cdf(x):
    """Probit inverse link: the standard normal CDF."""
    return jax.scipy.stats.norm.cdf(x)


def softmax(x, axis=-2):
    """Softmax over the class axis (categorical default); the class axis precedes the state axis."""
    return jax.nn.softmax(x, axis=axis)


INVERSE_LINKS: dict[str, Callable] = {
    "identity": identity,
    "exp": exp,
    "logistic": logistic,
    "sigmoid": logistic,
    "expit": logistic,
    "softplus": softplus,
    "one_over_x": one_over_x,
    "norm_cdf": norm_cdf,
    "softmax": softmax,
}
"""Built-in inverse links by name (nemos' names and common aliases)."""
#: The default inverse link of each family.
DEFAULT_INVERSE_LINKS = {
    "Bernoulli": "logistic",
    "Poisson": "exp",
    "Gamma": "one_over_x",
    "NegativeBinomial": "exp",
    "Gaussian": "identity",
    "Categorical": "softmax",
}
# functions from elsewhere that are the same link as a built-in (nemos users pass these)
_EQUIVALENT = {
    jnp.exp: exp,
    jax.nn.sigmoid: logistic,
    jax.scipy.special.expit: logistic,
    jax.lax.logistic: logistic,
    jax.nn.softplus: softplus,
    jax.scipy.stats.norm.cdf: norm_cdf,
    jax.nn.softmax: softmax,
}


def resolve_inverse_link(inverse_link_function, family: str) -> Callable:
    """Turn ``None``, a name or a callable into the inverse-link callable.

    Parameters
    ----------
    inverse_link_function : None, str or callable
        ``None`` gives the family's default; a name looks up
        [`INVERSE_LINKS`][behavhmm.observations.glm.INVERSE_LINKS]; a callable must map
        JAX arrays to JAX arrays elementwise and be differentiable.
    family : str
        One of [`FAMILIES`][behavhmm.observations.glm.FAMILIES].

    Returns
    -------
    callable
        A built-in link function, or the user's callable.

    Raises
    ------
    TypeError
        If ``inverse_link_function`` is neither None, a string nor callable.
    ValueError
        For an unknown name, a callable that does not return a JAX array or
        cannot be differentiated, or a custom link for the categorical
        family (which only takes ``"softmax"``).
    """
    if inverse_link_function is None:
        return INVERSE_LINKS[DEFAULT_INVERSE_LINKS[family]]
    if isinstance(inverse_link_function, str):
        if inverse_link_function not in INVERSE_LINKS:
            raise ValueError(
                f"Unknown link function: {inverse_link_function!r}. Link function must be one of "
                f"{sorted(INVERSE_LINKS)}; to use a custom link function, pass it as a callable."
            )
        link = INVERSE_LINKS[inverse_link_function]
    elif callable(inverse_link_function):
        link = _EQUIVALENT.get(inverse_link_function, inverse_link_function)
    else:
        raise TypeError(
            "The `inverse_link_function` function must be a Callable, a name in "
            f"{sorted(INVERSE_LINKS)} or None; got {type(inverse_link_function).__name__}."
        )
    if family == "Categorical":
        if link is not softmax:
            raise ValueError(
                "The Categorical observation model takes only the softmax inverse link "
                "(inverse_link_function=None or 'softmax')."
            )
        return link
    if link is softmax:
        raise ValueError(
            f"The softmax inverse link is for the Categorical observation model, not {family}."
        )
    if link not in INVERSE_LINKS.values():
        try:
            out = link(jnp.array([0.5, 1.0, 2.0]))
            grad = jax.grad(lambda v: jnp.sum(link(v)))(jnp.array([0.5, 1.0, 2.0]))
        except Exception as exc:
            raise ValueError(
                f"The `inverse_link_function` {getattr(link, '__name__', link)!r} "
                "must map JAX arrays to "
                f"JAX arrays and be differentiable with jax.grad: {exc}"
            ) from None
        if not isinstance(out, jax.Array) or out.shape != (3,):
            raise ValueError(
                "The `inverse_link_function` must return a jax.numpy.ndarray of the input's shape "
                "(it is applied elementwise)."
            )
        if not bool(jnp.all(jnp.isfinite(grad))):
            raise ValueError(
                "The `inverse_link_function` has a non-finite derivative at 0.5, 1 or 2."
            )
    return link


def inverse_link_name(link: Callable) -> str | None:
    """The registry name of a built-in link (``None`` for a custom callable)."""
    for name, func in INVERSE_LINKS.items():
        if func is link and name not in ("sigmoid", "expit"):
            return name
    return None


# ----------------------------------------------------------------------------
# log-likelihoods
# ----------------------------------------------------------------------------


def linear_predictor(X: Float[Array, "n_time_bins n_features"], coef, intercept):
    """``η = X W + b`` for every state: shape (n_time_bins, [n_outputs,] n_states)."""
    if coef.ndim == 2:
        return X @ coef + intercept
    n_features = coef.shape[0]
    return (X @ coef.reshape(n_features, -1)).reshape((X.shape[0],) + coef.shape[1:]) + intercept


def _tiny(dtype):
    return jnp.finfo(dtype).tiny


def _elementwise_log_prob(family: str, link: Callable, y, eta, scale, include_constant: bool):
    """``log p(y | η, φ)`` elementwise; ``y`` already broadcast against ``η``."""
    dtype = eta.dtype
    if family == "Bernoulli":
        if link is logistic:
            return y * eta - jax.nn.softplus(eta)
        eps = jnp.finfo(dtype).eps
        p = jnp.clip(link(eta), eps, 1.0 - eps)
        return y * jnp.log(p) + (1.0 - y) * jnp.log1p(-p)
    if family == "Poisson":
        if link is exp:
            out = y * eta - jnp.exp(eta)
        else:
            mu = jnp.clip(link(eta), _tiny(dtype))
            out = y * jnp.log(mu) - mu
        return out - gammaln(y + 1.0) if include_constant else out
    if family == "Gaussian":
        resid = y - link(eta)
        out = -0.5 * (jnp.log(scale) + resid * resid / scale)
        return out - 0.5 * jnp.log(2.0 * jnp.pi) if include_constant else out
    if family == "Gamma":
        mu = jnp.clip(link(eta), _tiny(dtype))
        shape = 1.0 / scale
        log_y = jnp.log(y)
        out = shape * (jnp.log(shape) - jnp.log(mu) - y / mu + log_y) - gammaln(shape)
        return out - log_y if include_constant else out
    if family == "NegativeBinomial":
        r = 1.0 / scale
        log_mu = eta if link is exp else jnp.log(jnp.clip(link(eta), _tiny(dtype)))
        log_r = jnp.log(r)
        log_total = jnp.logaddexp(log_r, log_mu)
        out = r * (log_r - log_total) + y * (log_mu - log_total) + gammaln(y + r) - gammaln(r)
        return out - gammaln(y + 1.0) if include_constant else out
    raise ValueError(
        f"Unknown observation family {family!r}; choose one of {FAMILIES}."
    )  # pragma: no cover


def glm_log_likelihoods(
    family: str,
    link: Callable,
    params: GLMParams,
    scale,
    X: Float[Array, "n_time_bins n_features"],
    y,
    *,
    include_constant: bool = True,
) -> Float[Array, "n_time_bins n_states"]:
    """``log p(y_t | x_t, z_t = k)`` for every time bin and state, in nats.

    Parameters
    ----------
    family : str
        One of [`FAMILIES`][behavhmm.observations.glm.FAMILIES].
    link : callable
        Inverse link (from
        [`resolve_inverse_link`][behavhmm.observations.glm.resolve_inverse_link]).
    params : GLMParams
        ``coef`` of shape (n_features, [n_outputs,] n_states), ``intercept``
        of shape ([n_outputs,] n_states).
    scale : array of shape ([n_outputs,] n_states)
        Per-state scale (ignored by the fixed-scale families).
    X : array of shape (n_time_bins, n_features)
        Design matrix.
    y : array of shape (n_time_bins,) or (n_time_bins, n_outputs)
        Observations; class indices (integers) for ``"Categorical"``.
    include_constant : bool, default True
        Include terms that depend on ``y`` only (``log y!``, ``log 2π``, ...).
        Objectives that only compare parameter values leave them out.

    Returns
    -------
    array of shape (n_time_bins, n_states)
        Summed over outputs (neurons are conditionally independent given
        the state).
    """
    eta = linear_predictor(X, params.coef, params.intercept)
    if family == "Categorical":
        log_p = jax.nn.log_softmax(eta, axis=1)  # (T, C, K)
        return jnp.take_along_axis(log_p, y.astype(jnp.int32)[:, None, None], axis=1)[:, 0, :]
    yb = y[..., None].astype(eta.dtype)
    out = _elementwise_log_prob(family, link, yb, eta, scale, include_constant)
    return out.sum(axis=1) if out.ndim == 3 else out


def glm_expected_nll(
    family: str,
    link: Callable,
    params: GLMParams,
    scale,
    X,
    y,
    posteriors: Float[Array, "n_time_bins n_states"],
    normalizer,
):
    """Posterior-weighted negative log-likelihood divided by ``normalizer``.

    ``-Σ_t Σ_k γ_tk log p(y_t | x_t, z_t = k) / normalizer`` without the
    terms that do not depend on ``params`` or ``scale``: the GLM part of the
    M-step objective. ``posteriors`` already carries the frame weights (0 for
    padding). Dividing by the number of frames keeps solver tolerances
    meaningful for any amount of data without moving the minimiser.
    """
    ll = glm_log_likelihoods(family, link, params, scale, X, y, include_constant=False)
    return -jnp.sum(posteriors * ll) / normalizer


def glm_elementwise_log_prob(family: str, link: Callable, y, eta, scale):
    """``log p(y_t | η_t, φ)`` for every element, without the terms that depend on ``y`` only.

    Parameters
    ----------
    family : str
        A scalar-output family (not ``"Categorical"``).
    link : callable
        The inverse link.
    y, eta : arrays of the same shape
        Observations and linear predictors.
    scale : scalar array
        ``φ`` (ignored by Bernoulli and Poisson).

    Returns
    -------
    array of the shape of ``eta``
    """
    return _elementwise_log_prob(
        family, link, y.astype(eta.dtype), eta, scale, include_constant=False
    )


def glm_column_nll(family: str, link: Callable, coef, intercept, scale, X, y, weights, normalizer):
    """Weighted negative log-likelihood of **one** state's GLM for one output.

    The sum is divided by ``normalizer``. The M-step objective separates
    over states (and over the neurons of a population):
    ``Σ_k Σ_c f_kc(W_kc, b_kc)``. This is one term, so each can be minimised
    as its own small problem.

    Parameters
    ----------
    coef : array of shape (n_features,), or (n_features, n_classes) for Categorical
    intercept : scalar array, or (n_classes,) for Categorical
    scale : scalar array
    X : array of shape (n_time_bins, n_features)
    y : array of shape (n_time_bins,)
        One output (one neuron), or class indices.
    weights : array of shape (n_time_bins,)
        The state's posterior weights (0 on padding).
    normalizer : scalar

    Returns
    -------
    scalar array
        Without the terms that depend on ``y`` only.
    """
    eta = X @ coef + intercept
    if family == "Categorical":
        log_p = jax.nn.log_softmax(eta, axis=1)
        ll = jnp.take_along_axis(log_p, y.astype(jnp.int32)[:, None], axis=1)[:, 0]
    else:
        ll = _elementwise_log_prob(
            family, link, y.astype(eta.dtype), eta, scale, include_constant=False
        )
    return -jnp.sum(weights * ll) / normalizer


def glm_log_likelihood_constant(family: str, y) -> Array:
    """Per-time-bin terms of ``log p(y_t | ...)`` that depend on ``y`` only, summed over outputs.

    ``glm_log_likelihoods(..., include_constant=True)`` equals
    ``glm_log_likelihoods(..., include_constant=False) + constant[:, None]``;
    computing it once per data set saves the E-step the work.

    Returns
    -------
    array of shape (n_time_bins,)
    """
    y = jnp.asarray(y)
    if family in ("Poisson", "NegativeBinomial"):
        c = -gammaln(y + 1.0)
    elif family == "Gaussian":
        c = jnp.full(y.shape, -0.5 * jnp.log(2.0 * jnp.pi), y.dtype)
    elif family == "Gamma":
        c = -jnp.log(y)
    else:
        return jnp.zeros(y.shape[0], jnp.result_type(float))
    return c.reshape(y.shape[0], -1).sum(axis=1)


def gaussian_scale_map(link: Callable, params: GLMParams, X, y, posteriors, floor):
    """Closed-form variance update ``σ²_k = Σ_t γ_tk (y_t - μ_tk)² / Σ_t γ_tk``.

    Parameters
    ----------
    floor : scalar
        Lower bound on the variance (a state with no data keeps a finite
        likelihood).

    Returns
    -------
    array of shape ([n_outputs,] n_states)
    """
    mean = link(linear_predictor(X, params.coef, params.intercept))
    sq = (y[..., None] - mean) ** 2
    if sq.ndim == 3:
        num = jnp.einsum("tk,tck->ck", posteriors, sq)
        den = posteriors.sum(0)[None, :]
    else:
        num = jnp.sum(posteriors * sq, axis=0)
        den = posteriors.sum(0)
    return jnp.maximum(num / jnp.maximum(den, floor), floor)


# ----------------------------------------------------------------------------
# means and sampling
# ----------------------------------------------------------------------------


def glm_mean(family: str, link: Callable, params: GLMParams, X):
    """Predicted mean per state: ``f(η)`` of shape (n_time_bins, [n_outputs,] n_states).

    For ``"Categorical"`` these are class probabilities of shape
    (n_time_bins, n_classes, n_states).
    """
    eta = linear_predictor(X, params.coef, params.intercept)
    if family == "Categorical":
        return jax.nn.softmax(eta, axis=1)
    return link(eta)


def glm_sample(family: str, key, mean, scale):
    """Draw one observation per entry of ``mean``.

    For Categorical, ``mean`` holds class probabilities on the last axis.

    Parameters
    ----------
    family : str
    key : jax.random key
    mean : array
        Predicted mean (probability for Bernoulli); for ``"Categorical"``,
        class probabilities with classes on the last axis.
    scale : array broadcastable to ``mean``
        The family's scale.

    Returns
    -------
    array
        Same shape as ``mean`` (without the class axis for Categorical).
    """
    dtype = mean.dtype
    if family == "Bernoulli":
        return jax.random.bernoulli(key, mean).astype(dtype)
    if family == "Poisson":
        return jax.random.poisson(key, mean).astype(dtype)
    if family == "Gaussian":
        return mean + jnp.sqrt(scale) * jax.random.normal(key, mean.shape, dtype)
    if family == "Gamma":
        shape = 1.0 / scale
        return (
            jax.random.gamma(key, jnp.broadcast_to(shape, mean.shape), dtype=dtype) * mean / shape
        )
    if family == "NegativeBinomial":
        r = 1.0 / scale
        k_gamma, k_poisson = jax.random.split(key)
        rate = jax.random.gamma(k_gamma, jnp.broadcast_to(r, mean.shape), dtype=dtype) * mean / r
        return jax.random.poisson(k_poisson, rate).astype(dtype)
    if family == "Categorical":
        return jax.random.categorical(key, jnp.log(jnp.clip(mean, _tiny(dtype)))).astype(jnp.int32)
    raise ValueError(
        f"Unknown observation family {family!r}; choose one of {FAMILIES}."
    )  # pragma: no cover


# ----------------------------------------------------------------------------
# family names (shared by the GLM-HMM and behavhmm.analysis); the design pytree
# helpers flatten_design and unflatten_coef live in behavhmm._utils
# ----------------------------------------------------------------------------


def observation_family(observation_model) -> str:
    """The family name (one of ``FAMILIES``) of a GLM-HMM ``observation_model``.

    Parameters
    ----------
    observation_model : str or nemos Observations instance
        ``"Bernoulli"``, ... or e.g. ``nemos.observation_models.BernoulliObservations()``.

    Returns
    -------
    str

    Raises
    ------
    ValueError
        For an unknown family name.
    TypeError
        For anything else.
    """
    if isinstance(observation_model, str):
        if observation_model not in FAMILIES:
            raise ValueError(
                f"Unknown observation model: {observation_model!r}. Choose one of {FAMILIES}."
            )
        return observation_model
    name = type(observation_model).__name__
    if name.endswith("Observations") and name[: -len("Observations")] in FAMILIES:
        return name[: -len("Observations")]
    raise TypeError(
        f"observation_model must be one of {FAMILIES} "
        "(or a nemos Observations instance of one of them), "
        f"got {type(observation_model).__name__}."
    )
