"""Compiled programs of the autoregressive HMM family (EM, Gibbs, prediction, simulation).

Module-level jitted functions, so every ARHMM instance (and every refit of
the same shapes) reuses the same compiled programs. Transition matrices are
held as ``(n_groups, n_states, n_states)``; with one group the kernels get
the 2-D matrix, so no per-step indexing is paid.

Emissions are Gaussian, or Student-t (``robust``) written as a Gaussian
scale mixture: ``y_t | z_t = k, τ_t ~ N(A_k x_t + b_k, Σ_k / τ_t)`` with
``τ_t ~ Gamma(ν_k/2, ν_k/2)``.

References
----------
C. Liu and D. B. Rubin (1995). ML estimation of the t distribution using EM
and its extensions, ECM and ECME. Statistica Sinica 5, 19-39.

J. A. Juárez and M. F. J. Steel (2010). Model-based clustering of non-Gaussian
panel data based on skew-t distributions. J. Business & Economic Statistics
28(1), 52-66 (the Gamma(2, 0.1) prior on degrees of freedom).
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import digamma, gammaln

from .._utils import log_gamma_variates
from ..inference import hmm_filter, hmm_sample, hmm_smoother, hmm_viterbi
from ..observations import (
    MNIWPrior,
    ar_log_likelihoods,
    ar_mahalanobis,
    ar_mahalanobis_all,
    ar_state_statistics,
    ar_sufficient_statistics,
    mniw_log_prior,
    mniw_map,
    mniw_sample,
)
from ..transitions import (
    dirichlet_log_density,
    hdp_log_prior,
    initial_dirichlet_map,
    sample_global_weights,
    sample_initial_probs,
    sample_corrected_table_counts,
    sample_transition_rows,
    sticky_concentration,
    sticky_dirichlet_map,
    transition_counts,
)

DOF_BOUNDS = (1.0, 1000.0)  # degrees of freedom are kept in this range
DOF_PRIOR = (2.0, 0.1)  # Gamma(shape, rate) prior on ν for Gibbs (Juárez & Steel, 2010)
DOF_STEP = 0.3  # random-walk step of the Metropolis-Hastings update of log ν


class ARHMMParams(NamedTuple):
    """Parameters of an ARHMM as JAX arrays (state axis first)."""

    initial_prob: jax.Array  # (K,)
    transition_prob: jax.Array  # (G, K, K)
    coef: jax.Array  # (K, D, L * D)
    intercept: jax.Array  # (K, D)
    covariances: jax.Array  # (K, D, D)
    dof: jax.Array  # (K,), used when robust


class Hyper(NamedTuple):
    """Hyperparameters (traced, so changing them does not recompile)."""

    alpha: jax.Array
    kappa: jax.Array
    gamma: jax.Array
    prior: MNIWPrior


class ARData(NamedTuple):
    """Emitted frames on the model's (padded) time axis."""

    y: jax.Array  # (T, D)
    x: jax.Array  # (T, L * D)
    starts: jax.Array  # (T,) bool
    weights: jax.Array  # (T,) 1 for modelled frames, 0 for padding
    groups: jax.Array  # (T,) int32 transition group of each step


class GibbsState(NamedTuple):
    """State of the Gibbs chain."""

    params: ARHMMParams
    beta: jax.Array  # (K,) global state weights of the HDP
    states: jax.Array  # (T,) int32
    tau: jax.Array  # (T,) auxiliary precisions (ones unless robust)


def _transitions(params: ARHMMParams, data: ARData):
    """The kernels' transition argument: 2-D for one group, else 3-D with groups."""
    if params.transition_prob.shape[0] == 1:
        return params.transition_prob[0], None
    return params.transition_prob, data.groups


def emission_log_likelihoods(params: ARHMMParams, data: ARData, robust: bool):
    """(T, K) emission log-likelihoods, zero on padding."""
    ll = ar_log_likelihoods(
        params.coef, params.intercept, params.covariances, data.y, data.x, dof=params.dof if robust else None
    )
    return jnp.where(data.weights[:, None] > 0, ll, 0.0)


# ----------------------------------------------------------------------------
# EM
# ----------------------------------------------------------------------------

log_likelihood_program = jax.jit(emission_log_likelihoods, static_argnames=("robust",))


def posterior(params: ARHMMParams, data: ARData, robust: bool, method: str):
    """E-step: on CPUs the smoother's two passes run on two threads."""
    ll = log_likelihood_program(params, data, robust=robust)
    trans, groups = _transitions(params, data)
    return hmm_smoother(params.initial_prob, trans, ll, data.starts, groups=groups, method=method)


def log_prior_map(params: ARHMMParams, hyper: Hyper, robust: bool):
    """Log prior of the MAP objective, up to an additive constant."""
    n_states = params.initial_prob.shape[0]
    conc = 1.0 + sticky_concentration(n_states, hyper.alpha, hyper.kappa, params.coef.dtype)
    lp = dirichlet_log_density(params.transition_prob, conc, include_constant=False)
    lp += dirichlet_log_density(params.initial_prob, 1.0 + hyper.alpha / n_states, include_constant=False)
    lp += mniw_log_prior(params.coef, params.intercept, params.covariances, hyper.prior, include_constant=False)
    return lp


def _solve_dof(c, lo=DOF_BOUNDS[0], hi=DOF_BOUNDS[1], n_steps=50):
    """Root in ν of ``log(ν/2) - ψ(ν/2) + 1 + c = 0`` (decreasing in ν), by bisection in log ν."""
    log_lo = jnp.full_like(c, jnp.log(lo))
    log_hi = jnp.full_like(c, jnp.log(hi))

    def f(log_nu):
        nu = jnp.exp(log_nu)
        return jnp.log(0.5 * nu) - digamma(0.5 * nu) + 1.0 + c

    def body(_, bounds):
        a, b = bounds
        mid = 0.5 * (a + b)
        positive = f(mid) > 0
        return jnp.where(positive, mid, a), jnp.where(positive, b, mid)

    a, b = jax.lax.fori_loop(0, n_steps, body, (log_lo, log_hi))
    root = jnp.exp(0.5 * (a + b))
    # f > 0 everywhere: the data are Gaussian-like at these bounds
    return jnp.where(f(log_hi) > 0, hi, jnp.where(f(log_lo) < 0, lo, root))


@partial(jax.jit, static_argnames=("robust",))
def m_step_program(params: ARHMMParams, post, data: ARData, hyper: Hyper, robust: bool):
    """Exact MAP M-step (conditional maximisation for Student-t), and the old log prior."""
    n_states, n_features = params.coef.shape[0], params.coef.shape[1]
    n_groups = params.transition_prob.shape[0]
    gamma = post.smoothed_probs * data.weights[:, None]
    initial_counts = (data.starts & (data.weights > 0)).astype(gamma.dtype) @ post.smoothed_probs
    if robust:
        delta = ar_mahalanobis_all(params.coef, params.intercept, params.covariances, data.y, data.x)
        e_tau = (params.dof + n_features) / (params.dof + delta)
        e_log_tau = digamma(0.5 * (params.dof + n_features)) - jnp.log(0.5 * (params.dof + delta))
        stats = ar_sufficient_statistics(gamma * e_tau, data.y, data.x, counts_weights=gamma)
        n = jnp.maximum(gamma.sum(0), jnp.finfo(gamma.dtype).tiny)
        c = jnp.sum(gamma * (e_log_tau - e_tau), axis=0) / n
        dof = jnp.where(gamma.sum(0) > 0, _solve_dof(c), params.dof)
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


# ----------------------------------------------------------------------------
# prediction
# ----------------------------------------------------------------------------


@partial(jax.jit, static_argnames=("robust", "method"))
def filter_program(params: ARHMMParams, data: ARData, robust: bool, method: str):
    ll = emission_log_likelihoods(params, data, robust)
    trans, groups = _transitions(params, data)
    res = hmm_filter(params.initial_prob, trans, ll, data.starts, groups=groups, method=method)
    return res.filtered_probs, res.log_likelihood


@partial(jax.jit, static_argnames=("robust", "method"))
def viterbi_program(params: ARHMMParams, data: ARData, robust: bool, method: str):
    ll = emission_log_likelihoods(params, data, robust)
    trans, groups = _transitions(params, data)
    return hmm_viterbi(params.initial_prob, trans, ll, data.starts, groups=groups, method=method)


# ----------------------------------------------------------------------------
# Gibbs
# ----------------------------------------------------------------------------


def _log_gamma_density(tau, shape, rate):
    return shape * jnp.log(rate) - gammaln(shape) + (shape - 1.0) * jnp.log(tau) - rate * tau


def _sample_dof(key, dof, states, tau, weights, n_states):
    """Metropolis-Hastings update of each state's ν given its frames' precisions."""
    w = weights
    n = jnp.zeros(n_states, dof.dtype).at[states].add(w)
    sum_log_tau = jnp.zeros(n_states, dof.dtype).at[states].add(w * jnp.log(tau))
    sum_tau = jnp.zeros(n_states, dof.dtype).at[states].add(w * tau)

    def log_target(nu):
        half = 0.5 * nu
        lik = n * (half * jnp.log(half) - gammaln(half)) + (half - 1.0) * sum_log_tau - half * sum_tau
        prior = (DOF_PRIOR[0] - 1.0) * jnp.log(nu) - DOF_PRIOR[1] * nu
        inside = (nu >= DOF_BOUNDS[0]) & (nu <= DOF_BOUNDS[1])
        return jnp.where(inside, lik + prior, -jnp.inf)

    k_prop, k_acc = jax.random.split(key)
    proposal = dof * jnp.exp(DOF_STEP * jax.random.normal(k_prop, dof.shape, dof.dtype))
    # log-scale random walk: the Jacobian adds log(nu' / nu)
    log_ratio = log_target(proposal) - log_target(dof) + jnp.log(proposal) - jnp.log(dof)
    accept = jnp.log(jax.random.uniform(k_acc, dof.shape, dof.dtype)) < log_ratio
    return jnp.where(accept, proposal, dof)


@partial(jax.jit, static_argnames=("robust", "method"))
def gibbs_sweep(state: GibbsState, key, data: ARData, hyper: Hyper, robust: bool, method: str):
    """One sweep: states, HDP auxiliary variables, β, transitions, (precisions), AR parameters, (ν).

    Returns the new state and the marginal log-likelihood of the parameters
    that entered the sweep (a by-product of forward filtering).
    """
    params = state.params
    n_states, n_features = params.coef.shape[0], params.coef.shape[1]
    n_groups = params.transition_prob.shape[0]
    keys = jax.random.split(key, 8)
    ll = emission_log_likelihoods(params, data, robust)
    trans, groups = _transitions(params, data)
    draw = hmm_sample(keys[0], params.initial_prob, trans, ll, data.starts, groups=groups, method=method)
    z = draw.states
    valid = data.weights > 0
    counts = transition_counts(z, data.starts, n_states, groups=data.groups, n_groups=n_groups, weights=data.weights)
    initial_counts = jnp.zeros(n_states, ll.dtype).at[z].add((data.starts & valid).astype(ll.dtype))
    _, corrected = sample_corrected_table_counts(keys[1], counts, hyper.alpha, state.beta, hyper.kappa, z.shape[0])
    beta = sample_global_weights(keys[2], corrected, hyper.gamma)
    transition_prob = sample_transition_rows(keys[3], counts, hyper.alpha, beta, hyper.kappa)
    initial_prob = sample_initial_probs(keys[4], initial_counts, hyper.alpha, beta)
    if robust:
        delta = ar_mahalanobis(params.coef, params.intercept, params.covariances, data.y, data.x, z)
        nu = params.dof[z]
        tau = jnp.exp(log_gamma_variates(keys[5], 0.5 * (nu + n_features))) / (0.5 * (nu + delta))
        tau = jnp.where(valid, tau, 1.0)
        stats = ar_state_statistics(z, data.y, data.x, n_states, weights=data.weights * tau, counts_weights=data.weights)
    else:
        tau = state.tau
        stats = ar_state_statistics(z, data.y, data.x, n_states, weights=data.weights)
    coef, intercept, covariances = mniw_sample(keys[6], stats, hyper.prior)
    dof = _sample_dof(keys[7], params.dof, z, tau, data.weights, n_states) if robust else params.dof
    new_params = ARHMMParams(initial_prob, transition_prob, coef, intercept, covariances, dof)
    return GibbsState(new_params, beta, z, tau), draw.log_likelihood


@partial(jax.jit, static_argnames=("robust",))
def log_joint_program(state: GibbsState, data: ARData, hyper: Hyper, robust: bool):
    """``log p(y, z, τ, θ)`` of the chain's current state, in nats (with normalisers)."""
    params, z = state.params, state.states
    n_features = params.coef.shape[1]
    w = data.weights
    delta = ar_mahalanobis(params.coef, params.intercept, params.covariances, data.y, data.x, z)
    log_det = jnp.linalg.slogdet(params.covariances)[1][z]
    tau = state.tau if robust else jnp.ones_like(delta)
    log_lik = -0.5 * (n_features * jnp.log(2 * jnp.pi) + log_det - n_features * jnp.log(tau) + tau * delta)
    total = jnp.sum(w * log_lik)
    if robust:
        nu = params.dof[z]
        total += jnp.sum(w * _log_gamma_density(tau, 0.5 * nu, 0.5 * nu))
        total += jnp.sum(_log_gamma_density(params.dof, DOF_PRIOR[0], DOF_PRIOR[1]))
    # states
    starts = data.starts.at[0].set(True)
    trans = params.transition_prob[data.groups[1:], z[:-1], z[1:]]
    total += jnp.sum(jnp.where(starts[1:] | (w[1:] == 0), 0.0, jnp.log(trans)))
    total += jnp.sum(jnp.where(starts & (w > 0), jnp.log(params.initial_prob[z]), 0.0))
    # priors
    total += hdp_log_prior(params.transition_prob, params.initial_prob, state.beta, hyper.alpha, hyper.gamma, hyper.kappa)
    total += mniw_log_prior(params.coef, params.intercept, params.covariances, hyper.prior)
    return total


# ----------------------------------------------------------------------------
# durations and simulation
# ----------------------------------------------------------------------------


def run_lengths(states, starts, weights=None):
    """Lengths of the runs of equal states within sessions (JAX, fixed shape).

    Returns
    -------
    lengths : array of shape (T,)
        The length of the run starting at ``t`` where one starts, else 0.
    """
    starts = starts.at[0].set(True)
    valid = jnp.ones(states.shape, bool) if weights is None else weights > 0
    new_run = starts | jnp.concatenate([jnp.ones(1, bool), states[1:] != states[:-1]])
    run_id = jnp.cumsum(new_run) - 1
    lengths = jnp.zeros(states.shape[0], jnp.int32).at[run_id].add(valid.astype(jnp.int32))
    # place each run's length at its first step
    return jnp.where(new_run & valid, lengths[run_id], 0)


@jax.jit
def median_duration_program(states, starts, weights):
    """Median run length in frames (lower median) of the runs within sessions."""
    lengths = run_lengths(states, starts, weights)
    n_runs = jnp.sum(lengths > 0)
    big = jnp.iinfo(jnp.int32).max
    ordered = jnp.sort(jnp.where(lengths > 0, lengths, big))
    return ordered[jnp.maximum((n_runs - 1) // 2, 0)].astype(jnp.float32)


@partial(jax.jit, static_argnames=("nlags", "robust"))
def simulate_program(key, params: ARHMMParams, starts, groups, init_frames, nlags: int, robust: bool):
    """Draw frames and states; the first ``nlags`` frames of each session copy ``init_frames``."""
    n_states, n_features, _ = params.coef.shape
    chol = jnp.linalg.cholesky(params.covariances)
    log_pi = jnp.log(params.initial_prob)
    log_a = jnp.log(params.transition_prob)
    keys = jax.random.split(key, starts.shape[0])

    def step(carry, inp):
        z_prev, lags, position = carry
        start, group, k = inp
        position = jnp.where(start, 0, position + 1)
        k_state, k_noise, k_tau = jax.random.split(k, 3)
        logits = jnp.where(position == nlags, log_pi, log_a[group, z_prev])
        z = jax.random.categorical(k_state, logits).astype(jnp.int32)
        mean = params.coef[z] @ lags.reshape(-1) + params.intercept[z]
        noise = chol[z] @ jax.random.normal(k_noise, (n_features,), mean.dtype)
        if robust:
            half = 0.5 * params.dof[z]
            noise = noise / jnp.sqrt(jnp.exp(log_gamma_variates(k_tau, half)) / half)
        conditioning = position < nlags
        frame = jnp.where(conditioning, init_frames[jnp.minimum(position, max(nlags - 1, 0))], mean + noise)
        lags = jnp.concatenate([frame[None], lags], axis=0)[:nlags]
        z_out = jnp.where(conditioning, -1, z)
        z_prev = jnp.where(conditioning, z_prev, z)
        return (z_prev, lags, position), (frame, z_out)

    init = (jnp.int32(0), jnp.zeros((nlags, n_features), params.coef.dtype), jnp.int32(0))
    _, (frames, states) = jax.lax.scan(step, init, (starts, groups, keys))
    return frames, states
