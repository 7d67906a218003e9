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

from typing import NamedTuple

import jax
import jax.numpy as jnp

from ..._precision import pinned_jit
from ..._utils import GAMMA_PROPOSALS
from ...inference import (
    ARDynamics,
    LinearEmission,
    ar_kalman_sample,
    ar_kalman_smoother,
    random_walk_sample,
    random_walk_smoother,
)
from ...inference._kalman_rows import sample_rows, smoother_rows
from ...inference._sessions import SessionPlan, side_by_side
from ...observations.keypoints import (
    VON_MISES_PROPOSALS,
    draw_by_rows,
    heading_conditional,
    keypoint_log_likelihood,
    noise_scale_conditional,
    noise_variance_conditional,
    rotate_xy,
    sample_inverse_gamma,
    sample_von_mises,
)
from ..arhmm.gibbs import GibbsState, gibbs_sweep
from ..arhmm.model import ARData, ARHMMParams, Hyper, viterbi_program


class KPData(NamedTuple):
    """Keypoints on the model's (padded) frame axis, in normalised units."""

    y: jax.Array  # (N, K, D); missing keypoints hold 0
    observed: jax.Array  # (N, K) 1 observed / 0 missing (and padding)
    prior_scale: jax.Array  # (N, K) s0_{t,n} from the confidence
    starts: jax.Array  # (N,) bool session starts (padding frames are starts)
    position: jax.Array  # (N,) int32 frame index within its session
    valid: jax.Array  # (N,) 1 for real frames, 0 for padding
    log_evidence: jax.Array | None = None  # (N, K) log e_t(k) of hand labels (behavhmm.labels)
    # the sessions bucketed by length (the Kalman kernels run them side by side), or None
    rows: SessionPlan | None = None


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
    lags = [
        jnp.concatenate([jnp.zeros((lag, d), latents.dtype), latents[:-lag]])
        for lag in range(1, nlags + 1)
    ]
    emitted = (data.position >= nlags) & (data.valid > 0)
    return ARData(
        y=latents,
        x=jnp.concatenate(lags, axis=1),
        starts=(data.position <= nlags) | ~emitted,
        weights=emitted.astype(latents.dtype),
        groups=jnp.zeros(n, jnp.int32),
        log_evidence=data.log_evidence,
    )


def latent_dynamics(params: ARHMMParams, hyper: KPHyper, nlags: int) -> ARDynamics:
    """Per-state AR dynamics plus an "initial" entry (index ``n_states``).

    The "initial" entry serves a session's first frames.
    """
    n_states, d, n_lagged = params.coef.shape
    var = hyper.latent_variance
    coef = jnp.concatenate([params.coef, jnp.zeros((1, d, n_lagged), var.dtype)])
    intercept = jnp.concatenate([params.intercept, hyper.latent_mean[None]])
    cov = jnp.concatenate([params.covariances, jnp.diag(var)[None]])
    return ARDynamics(
        coef, intercept, cov, jnp.tile(hyper.latent_mean, nlags), jnp.diag(jnp.tile(var, nlags))
    )


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


def centroid_observations(data: KPData, rotated, precision):
    """Per-frame Gaussian evidence on the centroid.

    Returns the weighted mean of ``y - R p`` and its precision.
    """
    lam = jnp.sum(precision, axis=1)
    u = (
        jnp.sum(precision[..., None] * (data.y - rotated), axis=1)
        / jnp.where(lam > 0, lam, 1.0)[:, None]
    )
    return u, lam


def sample_centroid(key, data: KPData, rotated, precision, hyper: KPHyper):
    """Centroid path from its conditional: FFBS on the Gaussian random walk."""
    u, lam = centroid_observations(data, rotated, precision)
    return random_walk_sample(
        key, u, lam, hyper.centroid_variance, hyper.centroid_prior_variance, data.starts
    )


def smooth_centroid(data: KPData, rotated, precision, hyper: KPHyper):
    u, lam = centroid_observations(data, rotated, precision)
    return random_walk_smoother(
        u, lam, hyper.centroid_variance, hyper.centroid_prior_variance, data.starts
    ).means


def sample_latents(key, data: KPData, dyn, emission, y, precision, idx, block_size):
    """Latent path by Kalman FFBS, the sessions side by side when ``data.rows`` is set."""
    if data.rows is None:
        return ar_kalman_sample(
            key, dyn, emission, y, precision, idx, data.starts, block_size=block_size
        ).latents
    return sample_rows(
        key, data.rows, dyn, emission, y, precision, idx, data.starts, block_size
    ).first


def smooth_latents(data: KPData, dyn, emission, y, precision, idx, block_size):
    """Smoothed means of the stacked latent state, side by side when ``data.rows`` is set."""
    if data.rows is None:
        return ar_kalman_smoother(
            dyn, emission, y, precision, idx, data.starts, block_size=block_size
        ).smoothed_means
    return smoother_rows(data.rows, dyn, emission, y, precision, idx, data.starts, block_size).first


def residuals(data: KPData, latents, heading, centroid, hyper: KPHyper):
    """Rotated pose and squared residual of every keypoint."""
    pose = pose_of(latents, hyper, data.y.shape[1])
    rotated = rotate_xy(pose, heading)
    resid = data.y - rotated - centroid[:, None, :]
    return pose, rotated, jnp.sum(resid * resid, axis=-1)


@pinned_jit(static_argnames=("block_size",))
def continuous_sweep(state: SLDSState, key, data: KPData, hyper: KPHyper, block_size: int | None):
    """Gibbs updates of the continuous variables given the discrete states and AR parameters.

    Draws, in order, the latent path (Kalman FFBS), the heading (von Mises),
    the centroid (random-walk FFBS), the noise scales and the noise variances.
    Returns the new state and ``log p(y | x, h, v, s, σ²)`` of the values that
    entered.
    """
    params = state.ar.params
    nlags = nlags_of(params)
    n_states = params.coef.shape[0]
    n, n_kp, n_dims = data.y.shape
    keys = jax.random.split(key, 5)
    _, _, sq0 = residuals(data, state.latents, state.heading, state.centroid, hyper)
    kp_ll = keypoint_log_likelihood(
        sq0, state.scales * state.sigmasq[None, :], data.observed, n_dims
    )
    # latent pose by Kalman FFBS
    precision = keypoint_precision(data, state.scales, state.sigmasq)
    dyn = latent_dynamics(params, hyper, nlags)
    idx = dynamics_index(state.ar.states, data, n_states, nlags)
    latents = sample_latents(
        keys[0],
        data,
        dyn,
        hyper.emission,
        egocentric_observations(data, state.heading, state.centroid),
        jnp.repeat(precision, n_dims, axis=1),
        idx,
        block_size,
    )
    # heading (von Mises)
    pose = pose_of(latents, hyper, n_kp)
    mu, kappa = heading_conditional(data.y - state.centroid[:, None, :], pose, precision)
    itemsize = mu.dtype.itemsize
    heading = draw_by_rows(
        sample_von_mises, keys[1], (mu, kappa), bytes_per_row=8 * VON_MISES_PROPOSALS * itemsize
    )
    # centroid (random walk)
    rotated = rotate_xy(pose, heading)
    centroid = sample_centroid(keys[2], data, rotated, precision, hyper)
    # noise scales and variances
    resid = data.y - rotated - centroid[:, None, :]
    sq = jnp.sum(resid * resid, axis=-1)
    shape, scale = noise_scale_conditional(
        sq, state.sigmasq, data.prior_scale, hyper.noise_dof, data.observed, n_dims
    )
    scales = draw_by_rows(
        sample_inverse_gamma,
        keys[3],
        (shape, scale),
        bytes_per_row=8 * GAMMA_PROPOSALS * n_kp * itemsize,
    )
    shape, scale = noise_variance_conditional(
        sq, scales, data.observed, hyper.noise_prior_shape, hyper.noise_prior_scale, n_dims
    )
    sigmasq = sample_inverse_gamma(keys[4], shape, scale)
    return SLDSState(state.ar, latents, heading, centroid, scales, sigmasq), kp_ll


ar_data_program = pinned_jit(ar_data, static_argnames=("nlags",))


def sweep_ar_data(latents, data: KPData, nlags: int, n_states: int) -> ARData:
    """`ar_data` for the Gibbs sweep: with the sessions' plan for its state sampler where
    that runs side by side (the rows reset at every start of the AR-HMM's own starts)."""
    ardata = ar_data_program(latents, data, nlags)
    if data.rows is not None and side_by_side("hmm_sample", n_states):
        ardata = ardata._replace(rows=data.rows)
    return ardata


def slds_sweep(
    state: SLDSState, key, data: KPData, hyper: KPHyper, method: str, block_size: int | None
):
    """One Gibbs sweep of the keypoint SLDS: two compiled programs shared by every instance.

    First the AR-HMM's sweep (states, HDP auxiliary variables, β, transitions,
    AR parameters) on the current latents -- the same compiled program as the
    AR-only stage -- then [`continuous_sweep`][behavhmm.models._slds_programs.continuous_sweep].
    Returns the new state and ``log p(y | x, h, v, s, σ²) + log p(x | θ)``
    (states marginalised) of the values that entered the sweep.

    Not wrapped in `pinned`: its programs pin their own precision, and a call under
    ``jax.default_matmul_precision`` would not hit the cache entry of ``gibbs_sweep``
    compiled by the AR-only stage (one more 4.5 s compile in the first full sweep).
    """
    k_ar, k_cont = jax.random.split(key)
    nlags = nlags_of(state.ar.params)
    ar_state, hmm_ll = gibbs_sweep(
        state.ar,
        k_ar,
        sweep_ar_data(state.latents, data, nlags, state.ar.params.coef.shape[0]),
        hyper.ar,
        False,
        method,
        block_size,
    )
    # the continuous updates never read the label evidence: without it, fits with and without
    # labels share this compiled program
    unlabelled = data._replace(log_evidence=None)
    new, kp_ll = continuous_sweep(
        state._replace(ar=ar_state), k_cont, unlabelled, hyper, block_size
    )
    return new, hmm_ll + kp_ll


# ----------------------------------------------------------------------------
# deterministic decoding
# ----------------------------------------------------------------------------


def mean_dynamics(params: ARHMMParams, weights):
    """One AR model: the ``weights``-average of the states' parameters.

    Coefficients, intercepts and covariances are averaged.
    """
    w = weights / jnp.sum(weights)
    return ARHMMParams(
        params.initial_prob,
        params.transition_prob,
        jnp.einsum("k,kij->ij", w, params.coef)[None],
        jnp.einsum("k,ki->i", w, params.intercept)[None],
        jnp.einsum("k,kij->ij", w, params.covariances)[None],
        params.dof[:1],
    )


@pinned_jit(static_argnames=("method", "block_size", "n_rounds"))
def decode_program(
    params: ARHMMParams,
    weights,
    sigmasq,
    data: KPData,
    hyper: KPHyper,
    heading0,
    centroid0,
    method: str,
    block_size: int | None,
    n_rounds: int,
):
    """Latents, heading, centroid and Viterbi states by deterministic alternation.

    Round 0 smooths the latents under the ``weights``-averaged dynamics; each
    later round decodes the states (Viterbi) and smooths the latents under
    those states' dynamics. After each latent smoothing, the heading is set to
    its conditional mode, the centroid to its smoothed mean, and the noise
    scales to their conditional means. One loop body is compiled for all rounds.
    """
    nlags = nlags_of(params)
    n_states, latent_dim = params.coef.shape[0], params.coef.shape[1]
    n, n_kp, n_dims = data.y.shape
    nu = hyper.noise_dof
    # entries 0..K-1: states; K: the averaged dynamics; K+1: a session's first frames
    avg = mean_dynamics(params, weights)
    both = ARHMMParams(
        params.initial_prob,
        params.transition_prob,
        jnp.concatenate([params.coef, avg.coef]),
        jnp.concatenate([params.intercept, avg.intercept]),
        jnp.concatenate([params.covariances, avg.covariances]),
        params.dof,
    )
    dyn = latent_dynamics(both, hyper, nlags)

    def one_round(r, carry):
        heading, centroid, scales, states, _ = carry
        precision = keypoint_precision(data, scales, sigmasq)
        idx = jnp.where(r == 0, n_states, states)
        idx = jnp.where(data.position >= nlags, idx, n_states + 1).astype(jnp.int32)
        smoothed = smooth_latents(
            data,
            dyn,
            hyper.emission,
            egocentric_observations(data, heading, centroid),
            jnp.repeat(precision, n_dims, axis=1),
            idx,
            block_size,
        )
        latents = smoothed[:, :latent_dim]
        pose = pose_of(latents, hyper, n_kp)
        mu, kappa = heading_conditional(data.y - centroid[:, None, :], pose, precision)
        heading = jnp.where(kappa > 0, mu, heading)
        rotated = rotate_xy(pose, heading)
        centroid = smooth_centroid(data, rotated, precision, hyper)
        resid = data.y - rotated - centroid[:, None, :]
        sq = jnp.sum(resid * resid, axis=-1)
        shape, scale = noise_scale_conditional(
            sq, sigmasq, data.prior_scale, nu, data.observed, n_dims
        )
        scales = scale / jnp.maximum(shape - 1.0, 0.5)
        states = viterbi_program(params, ar_data(latents, data, nlags), robust=False, method=method)
        return heading, centroid, scales, states.astype(jnp.int32), latents

    init = (
        heading0,
        centroid0,
        data.prior_scale,
        jnp.zeros(n, jnp.int32),
        jnp.zeros((n, latent_dim), heading0.dtype),
    )
    heading, centroid, scales, states, latents = jax.lax.fori_loop(0, n_rounds + 1, one_round, init)
    _, _, sq = residuals(data, latents, heading, centroid, hyper)
    kp_ll = keypoint_log_likelihood(sq, scales * sigmasq[None, :], data.observed, n_dims)
    return latents, heading, centroid, states, kp_ll


@pinned_jit(static_argnames=("nlags",))
def simulate_poses_program(
    key,
    latents,
    heading_step,
    centroid_variance,
    sigmasq,
    noise_scale,
    noise_dof,
    starts,
    hyper: KPHyper,
    nlags: int,
):
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
    scales = sample_inverse_gamma(
        k_s, 0.5 * noise_dof, 0.5 * noise_dof * noise_scale * jnp.ones((n, n_kp), latents.dtype)
    )
    pose = pose_of(latents, hyper, n_kp)
    noise = jnp.sqrt(scales * sigmasq[None, :])[..., None] * jax.random.normal(
        k_e, pose.shape, latents.dtype
    )
    return rotate_xy(pose, heading) + centroid[:, None, :] + noise, heading, centroid
