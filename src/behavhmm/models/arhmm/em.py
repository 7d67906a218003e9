"""MAP-EM (ECM for Student-t emissions) for the ARHMM: the M-step and one EM iteration.

References
----------
C. Liu and D. B. Rubin (1995). ML estimation of the t distribution using EM
and its extensions, ECM and ECME. Statistica Sinica 5, 19-39.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax.scipy.special import digamma

from ..._precision import pinned, pinned_jit
from ...observations import ar_mahalanobis_all, mniw_log_prior
from ...observations.ar_conditioned import ar_map_update
from ...observations.student_t import solve_dof
from ...transitions import (
    dirichlet_log_density,
    initial_dirichlet_map,
    sticky_concentration,
    sticky_dirichlet_map,
)
from .model import ARData, ARHMMParams, Hyper, posterior

__all__ = ["em_step", "log_prior_map", "m_step_program"]


def log_prior_map(params: ARHMMParams, hyper: Hyper, robust: bool):
    """Log prior of the MAP objective, up to an additive constant."""
    n_states = params.initial_prob.shape[0]
    conc = 1.0 + sticky_concentration(n_states, hyper.alpha, hyper.kappa, params.coef.dtype)
    lp = dirichlet_log_density(params.transition_prob, conc, include_constant=False)
    lp += dirichlet_log_density(
        params.initial_prob, 1.0 + hyper.alpha / n_states, include_constant=False
    )
    lp += mniw_log_prior(
        params.coef, params.intercept, params.covariances, hyper.prior, include_constant=False
    )
    return lp


@pinned_jit(static_argnames=("robust", "block_size"))
def m_step_program(
    params: ARHMMParams, post, data: ARData, hyper: Hyper, robust: bool, block_size=None
):
    """Exact MAP M-step (conditional maximisation for Student-t), and the old log prior."""
    n_states, n_features = params.coef.shape[0], params.coef.shape[1]
    n_groups = params.transition_prob.shape[0]
    gamma = post.smoothed_probs * data.weights[:, None]
    initial_counts = (data.starts & (data.weights > 0)).astype(gamma.dtype) @ post.smoothed_probs
    if robust:
        delta = ar_mahalanobis_all(
            params.coef, params.intercept, params.covariances, data.y, data.x
        )
        e_tau = (params.dof + n_features) / (params.dof + delta)
        e_log_tau = digamma(0.5 * (params.dof + n_features)) - jnp.log(0.5 * (params.dof + delta))
        weights, counts_weights = gamma * e_tau, gamma
        n = jnp.maximum(gamma.sum(0), jnp.finfo(gamma.dtype).tiny)
        c = jnp.sum(gamma * (e_log_tau - e_tau), axis=0) / n
        dof = jnp.where(gamma.sum(0) > 0, solve_dof(c), params.dof)
    else:
        weights, counts_weights = gamma, gamma
        dof = params.dof
    coef, intercept, covariances = ar_map_update(
        weights, data.y, data.x, hyper.prior, counts_weights=counts_weights, chunk=block_size
    )
    expected = post.expected_transitions.reshape(n_groups, n_states, n_states)
    new = ARHMMParams(
        initial_prob=initial_dirichlet_map(initial_counts, hyper.alpha / n_states),
        transition_prob=sticky_dirichlet_map(expected, hyper.alpha, hyper.kappa),
        coef=coef,
        intercept=intercept,
        covariances=covariances,
        dof=dof,
    )
    return new, log_prior_map(params, hyper, robust)


@pinned
def em_step(
    params: ARHMMParams,
    data: ARData,
    hyper: Hyper,
    robust: bool,
    method: str,
    block_size: int | None = None,
):
    """One EM (ECM) iteration: new parameters, the log-likelihood and log prior of ``params``.

    Runs at full float32 matmul precision (`behavhmm._precision`); ``block_size``
    frames per block of the M-step's sums (None: about 64 MiB per block).
    """
    post = posterior(params, data, robust, method)
    new, log_prior = m_step_program(params, post, data, hyper, robust=robust, block_size=block_size)
    return new, post.log_likelihood, log_prior
