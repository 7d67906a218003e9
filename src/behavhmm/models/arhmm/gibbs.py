"""Gibbs sampling for the sticky-HDP ARHMM (MoSeq): one sweep, and the chain's log joint.

References
----------
E. B. Fox, E. B. Sudderth, M. I. Jordan and A. S. Willsky (2011). A sticky
HDP-HMM with application to speaker diarization. Annals of Applied Statistics 5(2A).

J. A. Juárez and M. F. J. Steel (2010). Model-based clustering of non-Gaussian
panel data based on skew-t distributions. J. Business & Economic Statistics
28(1), 52-66 (the Gamma(2, 0.1) prior on degrees of freedom).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from ..._precision import pinned_jit
from ..._utils import log_gamma_variates
from ...inference import hmm_sample
from ...inference.hmm import resolve_method, sample_on_plan
from ...observations import ar_mahalanobis, mniw_log_prior
from ...observations.ar_conditioned import ar_sample_update
from ...observations.student_t import DOF_PRIOR, log_gamma_density, sample_dof
from ...transitions import (
    hdp_log_prior,
    sample_corrected_table_counts,
    sample_global_weights,
    sample_initial_probs,
    sample_transition_rows,
    transition_counts,
)
from .model import ARData, ARHMMParams, Hyper, _transitions, emission_log_likelihoods

__all__ = ["GibbsState", "gibbs_sweep", "log_joint_program"]


class GibbsState(NamedTuple):
    """State of the Gibbs chain."""

    params: ARHMMParams
    beta: jax.Array  # (K,) global state weights of the HDP
    states: jax.Array  # (T,) int32
    tau: jax.Array  # (T,) auxiliary precisions (ones unless robust)


@pinned_jit(static_argnames=("robust", "method", "block_size"))
def gibbs_sweep(
    state: GibbsState,
    key,
    data: ARData,
    hyper: Hyper,
    robust: bool,
    method: str,
    block_size: int | None = None,
):
    """One sweep: states, HDP auxiliary variables, β, transitions, (precisions), AR parameters, (ν).

    Returns the new state and the marginal log-likelihood of the parameters
    that entered the sweep (a by-product of forward filtering). Traced at full
    float32 matmul precision; the AR parameters are drawn by the float32-stable
    `behavhmm.observations.ar_conditioned.ar_sample_update`
    with ``block_size`` frames per block of its sums (None: the default budget).
    """
    params = state.params
    n_states, n_features = params.coef.shape[0], params.coef.shape[1]
    n_groups = params.transition_prob.shape[0]
    keys = jax.random.split(key, 8)
    ll = emission_log_likelihoods(params, data, robust)
    trans, groups = _transitions(params, data)
    if data.rows is not None and resolve_method(method) == "sequential":
        draw = sample_on_plan(
            keys[0], params.initial_prob, trans, ll, data.starts, data.rows, groups=groups
        )
    else:
        draw = hmm_sample(
            keys[0], params.initial_prob, trans, ll, data.starts, groups=groups, method=method
        )
    z = draw.states
    valid = data.weights > 0
    counts = transition_counts(
        z, data.starts, n_states, groups=data.groups, n_groups=n_groups, weights=data.weights
    )
    initial_counts = jnp.zeros(n_states, ll.dtype).at[z].add((data.starts & valid).astype(ll.dtype))
    _, corrected = sample_corrected_table_counts(
        keys[1], counts, hyper.alpha, state.beta, hyper.kappa, z.shape[0]
    )
    beta = sample_global_weights(keys[2], corrected, hyper.gamma)
    transition_prob = sample_transition_rows(keys[3], counts, hyper.alpha, beta, hyper.kappa)
    initial_prob = sample_initial_probs(keys[4], initial_counts, hyper.alpha, beta)
    if robust:
        delta = ar_mahalanobis(params.coef, params.intercept, params.covariances, data.y, data.x, z)
        nu = params.dof[z]
        tau = jnp.exp(log_gamma_variates(keys[5], 0.5 * (nu + n_features))) / (0.5 * (nu + delta))
        tau = jnp.where(valid, tau, 1.0)
        weights = data.weights * tau
    else:
        tau, weights = state.tau, data.weights
    coef, intercept, covariances = ar_sample_update(
        keys[6],
        z,
        data.y,
        data.x,
        n_states,
        hyper.prior,
        weights=weights,
        counts_weights=data.weights,
        chunk=block_size,
    )
    dof = sample_dof(keys[7], params.dof, z, tau, data.weights, n_states) if robust else params.dof
    new_params = ARHMMParams(initial_prob, transition_prob, coef, intercept, covariances, dof)
    return GibbsState(new_params, beta, z, tau), draw.log_likelihood


@pinned_jit(static_argnames=("robust",))
def log_joint_program(state: GibbsState, data: ARData, hyper: Hyper, robust: bool):
    """``log p(y, z, τ, θ)`` of the chain's current state, in nats (with normalisers)."""
    params, z = state.params, state.states
    n_features = params.coef.shape[1]
    w = data.weights
    delta = ar_mahalanobis(params.coef, params.intercept, params.covariances, data.y, data.x, z)
    log_det = jnp.linalg.slogdet(params.covariances)[1][z]
    tau = state.tau if robust else jnp.ones_like(delta)
    log_lik = -0.5 * (
        n_features * jnp.log(2 * jnp.pi) + log_det - n_features * jnp.log(tau) + tau * delta
    )
    total = jnp.sum(w * log_lik)
    if robust:
        nu = params.dof[z]
        total += jnp.sum(w * log_gamma_density(tau, 0.5 * nu, 0.5 * nu))
        total += jnp.sum(log_gamma_density(params.dof, DOF_PRIOR[0], DOF_PRIOR[1]))
    # states
    starts = data.starts.at[0].set(True)
    trans = params.transition_prob[data.groups[1:], z[:-1], z[1:]]
    total += jnp.sum(jnp.where(starts[1:] | (w[1:] == 0), 0.0, jnp.log(trans)))
    total += jnp.sum(jnp.where(starts & (w > 0), jnp.log(params.initial_prob[z]), 0.0))
    # priors
    total += hdp_log_prior(
        params.transition_prob,
        params.initial_prob,
        state.beta,
        hyper.alpha,
        hyper.gamma,
        hyper.kappa,
    )
    total += mniw_log_prior(params.coef, params.intercept, params.covariances, hyper.prior)
    return total
