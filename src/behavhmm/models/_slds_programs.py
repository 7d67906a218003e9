"""Compiled programs of the keypoint SLDS (Gibbs sweep, deterministic decoding, log-likelihoods).

Module-level jitted functions shared by every ``KeypointSLDS`` instance: the
hyperparameters are traced arrays, so refits with the same shapes reuse the
compiled sweep. All quantities are in the model's normalised units
(keypoints divided by ``scale_`` after subtracting a per-call offset).

References
----------
C. Weinreb et al. (2024). Keypoint-MoSeq: parsing behavior by linking point
tracking to pose dynamics. Nature Methods 21, 1329-1339.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ..inference import ARDynamics, LinearEmission, ar_kalman_sample, ar_kalman_smoother
from ..observations.keypoints import (
    heading_conditional,
    keypoint_log_likelihood,
    noise_scale_conditional,
    noise_variance_conditional,
    rotate_xy,
    sample_inverse_gamma,
    sample_von_mises,
)
from ._ar_programs import ARData, ARHMMParams, GibbsState, Hyper, gibbs_sweep, viterbi_program


class KPData(NamedTuple):
    """Keypoints on the model's (padded) frame axis, in normalised units."""

    y: jax.Array  # (N, K, D); missing keypoints hold 0
    observed: jax.Array  # (N, K) 1 observed / 0 missing (and padding)
    prior_scale: jax.Array  # (N, K) s0_{t,n} from the confidence
    starts: jax.Array  # (N,) bool session starts (padding frames are starts)
    position: jax.Array  # (N,) int32 frame index within its session
    valid: jax.Array  # (N,) 1 for real frames, 0 for padding


class KPHyper(NamedTuple):
    """Traced hyperparameters and fixed arrays of the keypoint model."""

    ar: Hyper
    emission: LinearEmission  # C (K*D, latent_dim), d (K*D,)
    latent_mean: jax.Array  # (latent_dim,) prior mean of latents at session starts
    latent_variance: jax.Array  # (latent_dim,) its variance
    noise_dof: jax.Array  # ν_s
    noise_prior_shape: jax.Array  # a_0 of σ²_n
    noise_prior_scale: jax.Array  # b_0 of σ²_n
    centroid_variance: jax.Array  # random-walk variance of the centroid per frame
    centroid_prior_variance: jax.Array  # prior variance of the centroid at a session start


class SLDSState(NamedTuple):
    """State of the keypoint-SLDS Gibbs chain."""

    ar: GibbsState
    latents: jax.Array  # (N, latent_dim)
    heading: jax.Array  # (N,)
    centroid: jax.Array  # (N, D)
    scales: jax.Array  # (N, K) s_{t,n}
    sigmasq: jax.Array  # (K,) σ²_n


def nlags_of(params: ARHMMParams) -> int:
    return params.coef.shape[2] // params.coef.shape[1]


def ar_data(latents, data: KPData, nlags: int) -> ARData:
    """The AR-HMM's view of the latents: the first ``nlags`` frames of a session only condition."""
    n, d = latents.shape
    lags = [jnp.concatenate([jnp.zeros((lag, d), latents.dtype), latents[:-lag]]) for lag in range(1, nlags + 1)]
    emitted = (data.position >= nlags) & (data.valid > 0)
    return ARData(
        y=latents,
        x=jnp.concatenate(lags, axis=1),
        starts=(data.position <= nlags) | ~emitted,
        weights=emitted.astype(latents.dtype),
        groups=jnp.zeros(n, jnp.int32),
    )


def latent_dynamics(params: ARHMMParams, hyper: KPHyper, nlags: int) -> ARDynamics:
    """Per-state AR dynamics plus an "initial" entry (index ``n_states``) for a session's first frames."""
    n_states, d, n_lagged = params.coef.shape
    var = hyper.latent_variance
    coef = jnp.concatenate([params.coef, jnp.zeros((1, d, n_lagged), var.dtype)])
    intercept = jnp.concatenate([params.intercept, hyper.latent_mean[None]])
    cov = jnp.concatenate([params.covariances, jnp.diag(var)[None]])
    return ARDynamics(coef, intercept, cov, jnp.tile(hyper.latent_mean, nlags), jnp.diag(jnp.tile(var, nlags)))


def dynamics_index(states, data: KPData, n_states: int, nlags: int):
    return jnp.where(data.position >= nlags, states, n_states).astype(jnp.int32)


def keypoint_precision(data: KPData, scales, sigmasq):
    return data.observed / (scales * sigmasq[None, :])


def egocentric_observations(data: KPData, heading, centroid):
    """``R(h_t)^T (y_t - v_t)``, flattened to (N, K*D)."""
    n = data.y.shape[0]
    return rotate_xy(data.y - centroid[:, None, :], -heading).reshape(n, -1)


def pose_of(latents, hyper: KPHyper, n_keypoints: int):
    c, d = hyper.emission
    return (latents @ c.T + d).reshape(latents.shape[0], n_keypoints, -1)


def _centroid_model(hyper: KPHyper, n_keypoints: int, n_dims: int, dtype):
    eye = jnp.eye(n_dims, dtype=dtype)
    dyn = ARDynamics(
        eye[None], jnp.zeros((1, n_dims), dtype), (hyper.centroid_variance * eye)[None],
        jnp.zeros(n_dims, dtype), hyper.centroid_prior_variance * eye,
    )
    return dyn, LinearEmission(jnp.tile(eye, (n_keypoints, 1)), jnp.zeros(n_keypoints * n_dims, dtype))


def _centroid_inputs(data: KPData, rotated, precision):
    n, k, dims = data.y.shape
    obs = (data.y - rotated).reshape(n, k * dims)
    prec = jnp.repeat(precision, dims, axis=1)
    return obs, prec, jnp.zeros(n, jnp.int32), data.starts


def sample_centroid(key, data: KPData, rotated, precision, hyper: KPHyper, block_size):
    """Centroid path from its conditional: a Kalman FFBS on the Gaussian random walk."""
    n, k, dims = data.y.shape
    dyn, em = _centroid_model(hyper, k, dims, data.y.dtype)
    return ar_kalman_sample(key, dyn, em, *_centroid_inputs(data, rotated, precision), block_size=block_size).latents


def smooth_centroid(data: KPData, rotated, precision, hyper: KPHyper, block_size):
    n, k, dims = data.y.shape
    dyn, em = _centroid_model(hyper, k, dims, data.y.dtype)
    res = ar_kalman_smoother(dyn, em, *_centroid_inputs(data, rotated, precision), block_size=block_size)
    return res.smoothed_means


def residuals(data: KPData, latents, heading, centroid, hyper: KPHyper):
    """Rotated pose and squared residual of every keypoint."""
    pose = pose_of(latents, hyper, data.y.shape[1])
    rotated = rotate_xy(pose, heading)
    resid = data.y - rotated - centroid[:, None, :]
    return pose, rotated, jnp.sum(resid * resid, axis=-1)


@partial(jax.jit, static_argnames=("method", "block_size"))
def slds_sweep(state: SLDSState, key, data: KPData, hyper: KPHyper, method: str, block_size: int | None):
    """One Gibbs sweep: AR-HMM (states, HDP, transitions, AR parameters), latents, heading, centroid, noise.

    Returns the new state and ``log p(y | x, h, v, s, σ²) + log p(x | θ)`` (states
    marginalised) of the values that entered the sweep.
    """
    params = state.ar.params
    nlags = nlags_of(params)
    n_states = params.coef.shape[0]
    n, n_kp, n_dims = data.y.shape
    keys = jax.random.split(key, 6)
    # discrete states and AR parameters given the latents
    ar_state, hmm_ll = gibbs_sweep(state.ar, keys[0], ar_data(state.latents, data, nlags), hyper.ar, False, method)
    _, _, sq0 = residuals(data, state.latents, state.heading, state.centroid, hyper)
    kp_ll = keypoint_log_likelihood(sq0, state.scales * state.sigmasq[None, :], data.observed, n_dims)
    # latent pose by Kalman FFBS
    precision = keypoint_precision(data, state.scales, state.sigmasq)
    dyn = latent_dynamics(ar_state.params, hyper, nlags)
    idx = dynamics_index(ar_state.states, data, n_states, nlags)
    latents = ar_kalman_sample(
        keys[1], dyn, hyper.emission, egocentric_observations(data, state.heading, state.centroid),
        jnp.repeat(precision, n_dims, axis=1), idx, data.starts, block_size=block_size,
    ).latents
    # heading (von Mises)
    pose = pose_of(latents, hyper, n_kp)
    mu, kappa = heading_conditional(data.y - state.centroid[:, None, :], pose, precision)
    heading = sample_von_mises(keys[2], mu, kappa)
    # centroid (Kalman on the random walk)
    rotated = rotate_xy(pose, heading)
    centroid = sample_centroid(keys[3], data, rotated, precision, hyper, block_size)
    # noise scales and variances
    resid = data.y - rotated - centroid[:, None, :]
    sq = jnp.sum(resid * resid, axis=-1)
    shape, scale = noise_scale_conditional(sq, state.sigmasq, data.prior_scale, hyper.noise_dof, data.observed, n_dims)
    scales = sample_inverse_gamma(keys[4], shape, scale)
    shape, scale = noise_variance_conditional(sq, scales, data.observed, hyper.noise_prior_shape, hyper.noise_prior_scale, n_dims)
    sigmasq = sample_inverse_gamma(keys[5], shape, scale)
    new = SLDSState(ar_state, latents, heading, centroid, scales, sigmasq)
    return new, hmm_ll + kp_ll


# ----------------------------------------------------------------------------
# deterministic decoding
# ----------------------------------------------------------------------------


def mean_dynamics(params: ARHMMParams, weights):
    """One AR model: the ``weights``-average of the states' coefficients, intercepts and covariances."""
    w = weights / jnp.sum(weights)
    return ARHMMParams(
        params.initial_prob, params.transition_prob, jnp.einsum("k,kij->ij", w, params.coef)[None],
        jnp.einsum("k,ki->i", w, params.intercept)[None], jnp.einsum("k,kij->ij", w, params.covariances)[None],
        params.dof[:1],
    )


@partial(jax.jit, static_argnames=("method", "block_size", "n_rounds"))
def decode_program(
    params: ARHMMParams, weights, sigmasq, data: KPData, hyper: KPHyper, heading0, centroid0,
    method: str, block_size: int | None, n_rounds: int,
):
    """Latents, heading, centroid and Viterbi states by deterministic alternation.

    Round 0 smooths the latents under the ``weights``-averaged dynamics; each
    later round decodes the states (Viterbi) and smooths the latents under
    those states' dynamics. After each latent smoothing, the heading is set to
    its conditional mode, the centroid to its Kalman-smoothed mean, and the
    noise scales to their conditional means.
    """
    nlags = nlags_of(params)
    n_states = params.coef.shape[0]
    n, n_kp, n_dims = data.y.shape
    heading, centroid = heading0, centroid0
    nu = hyper.noise_dof
    scales = data.prior_scale
    states = jnp.zeros(n, jnp.int32)
    latents = None
    for r in range(n_rounds + 1):
        precision = keypoint_precision(data, scales, sigmasq)
        if r == 0:
            dyn = latent_dynamics(mean_dynamics(params, weights), hyper, nlags)
            idx = jnp.where(data.position >= nlags, 0, 1).astype(jnp.int32)
        else:
            dyn = latent_dynamics(params, hyper, nlags)
            idx = dynamics_index(states, data, n_states, nlags)
        sm = ar_kalman_smoother(
            dyn, hyper.emission, egocentric_observations(data, heading, centroid),
            jnp.repeat(precision, n_dims, axis=1), idx, data.starts, block_size=block_size,
        )
        latents = sm.smoothed_means[:, : params.coef.shape[1]]
        pose = pose_of(latents, hyper, n_kp)
        mu, kappa = heading_conditional(data.y - centroid[:, None, :], pose, precision)
        heading = jnp.where(kappa > 0, mu, heading)
        rotated = rotate_xy(pose, heading)
        centroid = smooth_centroid(data, rotated, precision, hyper, block_size)
        resid = data.y - rotated - centroid[:, None, :]
        sq = jnp.sum(resid * resid, axis=-1)
        shape, scale = noise_scale_conditional(sq, sigmasq, data.prior_scale, nu, data.observed, n_dims)
        scales = scale / jnp.maximum(shape - 1.0, 0.5)
        states = viterbi_program(params, ar_data(latents, data, nlags), robust=False, method=method)
    _, _, sq = residuals(data, latents, heading, centroid, hyper)
    kp_ll = keypoint_log_likelihood(sq, scales * sigmasq[None, :], data.observed, n_dims)
    return latents, heading, centroid, states, kp_ll


@partial(jax.jit, static_argnames=("nlags",))
def simulate_poses_program(key, latents, heading_step, centroid_variance, sigmasq, noise_scale, noise_dof, starts,
                           hyper: KPHyper, nlags: int):
    """Heading and centroid random walks, and noisy keypoints around the rotated poses."""
    n = latents.shape[0]
    n_kp = sigmasq.shape[0]
    n_dims = hyper.emission.matrix.shape[0] // n_kp
    k_h, k_v, k_s, k_e, k_h0 = jax.random.split(key, 5)
    dh = heading_step * jax.random.normal(k_h, (n,), latents.dtype)
    h0 = jax.random.uniform(k_h0, (n,), latents.dtype, -jnp.pi, jnp.pi)
    dh = jnp.where(starts, h0, dh)
    dv = jnp.sqrt(centroid_variance) * jax.random.normal(k_v, (n, n_dims), latents.dtype)
    dv = jnp.where(starts[:, None], 0.0, dv)

    def seg_cumsum(v):
        total = jnp.cumsum(v, axis=0)
        offsets = jnp.where(starts[(...,) + (None,) * (v.ndim - 1)], total - v, 0.0)
        base = jax.lax.cummax(jnp.where(starts, jnp.arange(n), 0))
        return total - offsets[base]

    heading = seg_cumsum(dh)
    heading = jnp.arctan2(jnp.sin(heading), jnp.cos(heading))
    centroid = seg_cumsum(dv)
    scales = sample_inverse_gamma(k_s, 0.5 * noise_dof, 0.5 * noise_dof * noise_scale * jnp.ones((n, n_kp), latents.dtype))
    pose = pose_of(latents, hyper, n_kp)
    noise = jnp.sqrt(scales * sigmasq[None, :])[..., None] * jax.random.normal(k_e, pose.shape, latents.dtype)
    return rotate_xy(pose, heading) + centroid[:, None, :] + noise, heading, centroid
