"""MAP-EM (ECM for Student-t emissions) for the ARHMM: the M-step and one EM iteration.

References
----------
C. Liu and D. B. Rubin (1995). ML estimation of the t distribution using EM
and its extensions, ECM and ECME. Statistica Sinica 5, 19-39.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax.scipy.special import digamma

from ...observations import (
    ar_mahalanobis_all,
    ar_sufficient_statistics,
    mniw_log_prior,
    mniw_map,
)
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


@partial(jax.jit, static_argnames=("robust",))
def m_step_program(params: ARHMMParams, post, data: ARData, hyper: Hyper, robust: bool):
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
        stats = ar_sufficient_statistics(gamma * e_tau, data.y, data.x, counts_weights=gamma)
        n = jnp.maximum(gamma.sum(0), jnp.finfo(gamma.dtype).tiny)
        c = jnp.sum(gamma * (e_log_tau - e_tau), axis=0) / n
        dof = jnp.where(gamma.sum(0) > 0, solve_dof(c), params.dof)
    else:
        stats = ar_sufficient_statistics(gamma, data.y, data.x)
        dof = params.dof
    coef, intercept, covariances = mniw_map(stats, hyper.prior)
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


def em_step(params: ARHMMParams, data: ARData, hyper: Hyper, robust: bool, method: str):
    """One EM (ECM) iteration: returns new parameters, the log-likelihood and log prior of ``params``."""
    post = posterior(params, data, robust, method)
    new, log_prior = m_step_program(params, post, data, hyper, robust=robust)
    return new, post.log_likelihood, log_prior
