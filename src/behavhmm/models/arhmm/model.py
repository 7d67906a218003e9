"""ARHMM parameters, data layout, emission log-likelihoods, prediction and simulation programs.

Module-level jitted functions, so every ARHMM instance (and every refit of
the same shapes) reuses the same compiled programs. Transition matrices are
held as ``(n_groups, n_states, n_states)``; with one group the kernels get
the 2-D matrix, so no per-step indexing is paid. The fitting programs are in
`behavhmm.models.arhmm.em` (MAP-EM) and `behavhmm.models.arhmm.gibbs` (Gibbs).

Emissions are Gaussian, or Student-t (``robust``) written as a Gaussian
scale mixture: ``y_t | z_t = k, τ_t ~ N(A_k x_t + b_k, Σ_k / τ_t)`` with
``τ_t ~ Gamma(ν_k/2, ν_k/2)`` (see `behavhmm.observations.student_t`).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from ..._precision import pinned, pinned_jit
from ..._utils import log_gamma_variates
from ...inference import hmm_filter, hmm_viterbi
from ...inference._sessions import SessionPlan
from ...inference.hmm import _smoother_unchecked  # the E-step: inputs come from our programs
from ...observations import MNIWPrior, ar_log_likelihoods

__all__ = [
    "ARData",
    "ARHMMParams",
    "Hyper",
    "emission_log_likelihoods",
    "filter_program",
    "log_likelihood_program",
    "median_duration_program",
    "posterior",
    "run_lengths",
    "simulate_program",
    "viterbi_program",
]


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
    log_evidence: jax.Array | None = None  # (T, K) log e_t(k) of hand labels (behavhmm.labels)
    # sessions side by side for the Gibbs sweep's state sampler (`behavhmm.inference._sessions`)
    rows: SessionPlan | None = None


def _transitions(params: ARHMMParams, data: ARData):
    """The kernels' transition argument: 2-D for one group, else 3-D with groups."""
    if params.transition_prob.shape[0] == 1:
        return params.transition_prob[0], None
    return params.transition_prob, data.groups


def emission_log_likelihoods(params: ARHMMParams, data: ARData, robust: bool):
    """(T, K) emission log-likelihoods, zero on padding."""
    ll = ar_log_likelihoods(
        params.coef,
        params.intercept,
        params.covariances,
        data.y,
        data.x,
        dof=params.dof if robust else None,
    )
    ll = ll if data.log_evidence is None else ll + data.log_evidence
    return jnp.where(data.weights[:, None] > 0, ll, 0.0)


log_likelihood_program = pinned_jit(emission_log_likelihoods, static_argnames=("robust",))


@pinned
def posterior(params: ARHMMParams, data: ARData, robust: bool, method: str):
    """E-step: on CPUs the smoother's two passes run on two threads."""
    ll = log_likelihood_program(params, data, robust=robust)
    trans, groups = _transitions(params, data)
    return _smoother_unchecked(
        params.initial_prob, trans, ll, data.starts, groups=groups, method=method
    )


# ----------------------------------------------------------------------------
# prediction
# ----------------------------------------------------------------------------


@pinned_jit(static_argnames=("robust", "method"))
def filter_program(params: ARHMMParams, data: ARData, robust: bool, method: str):
    ll = emission_log_likelihoods(params, data, robust)
    trans, groups = _transitions(params, data)
    res = hmm_filter(params.initial_prob, trans, ll, data.starts, groups=groups, method=method)
    return res.filtered_probs, res.log_likelihood


@pinned_jit(static_argnames=("robust", "method"))
def viterbi_program(params: ARHMMParams, data: ARData, robust: bool, method: str):
    ll = emission_log_likelihoods(params, data, robust)
    trans, groups = _transitions(params, data)
    return hmm_viterbi(params.initial_prob, trans, ll, data.starts, groups=groups, method=method)


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


@pinned_jit
def median_duration_program(states, starts, weights):
    """Median run length in frames (lower median) of the runs within sessions."""
    lengths = run_lengths(states, starts, weights)
    n_runs = jnp.sum(lengths > 0)
    big = jnp.iinfo(jnp.int32).max
    ordered = jnp.sort(jnp.where(lengths > 0, lengths, big))
    return ordered[jnp.maximum((n_runs - 1) // 2, 0)].astype(jnp.float32)


@pinned_jit(static_argnames=("nlags", "robust"))
def simulate_program(
    key, params: ARHMMParams, starts, groups, init_frames, nlags: int, robust: bool
):
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
        frame = jnp.where(
            conditioning, init_frames[jnp.minimum(position, max(nlags - 1, 0))], mean + noise
        )
        lags = jnp.concatenate([frame[None], lags], axis=0)[:nlags]
        z_out = jnp.where(conditioning, -1, z)
        z_prev = jnp.where(conditioning, z_prev, z)
        return (z_prev, lags, position), (frame, z_out)

    init = (jnp.int32(0), jnp.zeros((nlags, n_features), params.coef.dtype), jnp.int32(0))
    _, (frames, states) = jax.lax.scan(step, init, (starts, groups, keys))
    return frames, states
