"""Compiled programs of the Gaussian HMM: E-step, MAP M-step, prediction and simulation.

Module-level jitted functions, so every GaussianHMM instance (and every refit
with the same shapes) reuses the same compiled programs. The covariance
structure is a static argument; hyperparameters are traced, so changing them
does not recompile. The HMM kernels are behavhmm's session-aware ones
(``inference.hmm``), the emission algebra is ``observations.gaussian`` and the
transition update the Dirichlet MAP of ``transitions.dirichlet``.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ..._precision import pinned_jit
from ...inference import hmm_filter, hmm_viterbi
from ...inference.hmm import _smoother_unchecked  # the E-step: inputs come from our programs
from ...observations.gaussian import (
    GaussianPrior,
    full_covariances,
    gaussian_log_likelihoods,
    gaussian_log_prior,
    gaussian_map,
    gaussian_sufficient_statistics,
)
from ...transitions import dirichlet_log_density, dirichlet_map, sticky_concentration
from ..arhmm.model import ARHMMParams, simulate_program

__all__ = [
    "GaussianHMMParams",
    "GaussianData",
    "Hyper",
    "em_step",
    "posterior",
    "filter_program",
    "viterbi_program",
    "log_likelihood_program",
    "simulate",
]


class GaussianHMMParams(NamedTuple):
    """Parameters of a Gaussian HMM as JAX arrays."""

    initial_prob: jax.Array  # (K,)
    transition_prob: jax.Array  # (K, K)
    means: jax.Array  # (K, D)
    covariances: jax.Array  # (K, D, D) | (K, D) | (K,) | (D, D)


class Hyper(NamedTuple):
    """Hyperparameters of the MAP objective (traced)."""

    alpha: jax.Array
    kappa: jax.Array
    prior: GaussianPrior


class GaussianData(NamedTuple):
    """Frames on the model's (padded) time axis."""

    X: jax.Array  # (T, D)
    starts: jax.Array  # (T,) bool; padding steps are starts
    weights: jax.Array  # (T,) 1 for modelled frames, 0 for padding
    log_evidence: jax.Array | None = None  # (T, K) log e_t(k) of hand labels (behavhmm.labels)


def emission_log_likelihoods(params: GaussianHMMParams, data: GaussianData, covariance_type: str):
    """(T, K) emission log-likelihoods, zero on padding."""
    ll = gaussian_log_likelihoods(params.means, params.covariances, data.X, covariance_type)
    ll = ll if data.log_evidence is None else ll + data.log_evidence
    return jnp.where(data.weights[:, None] > 0, ll, 0.0)


log_likelihood_program = pinned_jit(emission_log_likelihoods, static_argnames=("covariance_type",))


def posterior(params: GaussianHMMParams, data: GaussianData, covariance_type: str, method: str):
    """E-step: smoothed posteriors and expected transition counts.

    float32 products are computed at full precision.
    """
    with jax.default_matmul_precision("highest"):
        ll = log_likelihood_program(params, data, covariance_type=covariance_type)
        return _smoother_unchecked(
            params.initial_prob, params.transition_prob, ll, data.starts, method=method
        )


def _concentrations(n_states: int, hyper: Hyper, dtype):
    """Dirichlet concentrations of the initial distribution and of the transition rows."""
    initial = jnp.full(n_states, 1.0, dtype) + hyper.alpha / n_states
    return initial, 1.0 + sticky_concentration(n_states, hyper.alpha, hyper.kappa, dtype)


def log_prior_map(params: GaussianHMMParams, hyper: Hyper, covariance_type: str):
    """Log prior of the MAP objective, up to an additive constant (nats)."""
    n_states = params.initial_prob.shape[0]
    initial_conc, trans_conc = _concentrations(n_states, hyper, params.means.dtype)
    lp = dirichlet_log_density(params.initial_prob, initial_conc, include_constant=False)
    lp += dirichlet_log_density(params.transition_prob, trans_conc, include_constant=False)
    return lp + gaussian_log_prior(params.means, params.covariances, hyper.prior, covariance_type)


log_prior_program = pinned_jit(log_prior_map, static_argnames=("covariance_type",))


@partial(pinned_jit, static_argnames=("covariance_type",))
def m_step_program(
    params: GaussianHMMParams, post, data: GaussianData, hyper: Hyper, covariance_type: str
):
    """Exact MAP M-step from the E-step's posteriors."""
    n_states = params.initial_prob.shape[0]
    gamma = post.smoothed_probs * data.weights[:, None]
    initial_counts = (data.starts & (data.weights > 0)).astype(gamma.dtype) @ post.smoothed_probs
    stats = gaussian_sufficient_statistics(gamma, data.X, params.means, covariance_type)
    means, covariances = gaussian_map(
        stats, params.means, hyper.prior, covariance_type, params.covariances
    )
    initial_conc, trans_conc = _concentrations(n_states, hyper, gamma.dtype)
    return GaussianHMMParams(
        initial_prob=dirichlet_map(initial_counts, initial_conc, params.initial_prob),
        transition_prob=dirichlet_map(
            post.expected_transitions, trans_conc, params.transition_prob
        ),
        means=means,
        covariances=covariances,
    )


def em_step(
    params: GaussianHMMParams, data: GaussianData, hyper: Hyper, covariance_type: str, method: str
):
    """One EM iteration: new parameters, and the log-likelihood and log prior of ``params``."""
    post = posterior(params, data, covariance_type, method)
    with jax.default_matmul_precision("highest"):
        # the log prior's Cholesky factorisations (LAPACK) run to completion before the M-step,
        # whose eigendecompositions (LAPACK) deadlocked on CPU when XLA ran both at once
        log_prior = jax.block_until_ready(
            log_prior_program(params, hyper, covariance_type=covariance_type)
        )
        new = m_step_program(params, post, data, hyper, covariance_type=covariance_type)
    return new, post.log_likelihood, log_prior


@partial(pinned_jit, static_argnames=("covariance_type", "method"))
def filter_program(
    params: GaussianHMMParams, data: GaussianData, covariance_type: str, method: str
):
    ll = emission_log_likelihoods(params, data, covariance_type)
    res = hmm_filter(params.initial_prob, params.transition_prob, ll, data.starts, method=method)
    return res.filtered_probs, res.log_likelihood


@partial(pinned_jit, static_argnames=("covariance_type", "method"))
def viterbi_program(
    params: GaussianHMMParams, data: GaussianData, covariance_type: str, method: str
):
    ll = emission_log_likelihoods(params, data, covariance_type)
    return hmm_viterbi(params.initial_prob, params.transition_prob, ll, data.starts, method=method)


def simulate(key, params: GaussianHMMParams, starts, covariance_type: str):
    """Draw frames and states: the ARHMM simulator with no lags (a Gaussian HMM)."""
    n_states, n_features = params.means.shape
    dtype = params.means.dtype
    ar_params = ARHMMParams(
        initial_prob=params.initial_prob,
        transition_prob=params.transition_prob[None],
        coef=jnp.zeros((n_states, n_features, 0), dtype),
        intercept=params.means,
        covariances=full_covariances(params.covariances, covariance_type, n_states, n_features),
        dof=jnp.full(n_states, jnp.inf, dtype),
    )
    groups = jnp.zeros(starts.shape[0], jnp.int32)
    return simulate_program(
        key, ar_params, starts, groups, jnp.zeros((1, n_features), dtype), 0, False
    )
