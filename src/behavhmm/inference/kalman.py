"""Session-aware Kalman filter, RTS smoother and sampler for autoregressive latent states.

The latent model is a switching vector autoregression of order ``nlags``
observed through a fixed linear map with diagonal noise:

$$
x_t = A_{j_t} [x_{t-1}; \\dots; x_{t-L}] + b_{j_t} + w_t,\\quad w_t \\sim \\mathcal{N}(0, Q_{j_t}),
\\qquad
y_t = C x_t + d + e_t,\\quad e_t \\sim \\mathcal{N}(0, \\mathrm{diag}(1 / \\omega_t)),
$$

where ``j_t`` (``dynamics_index``) picks one of several dynamics for each
step (for the keypoint SLDS: the discrete state, or an "initial" entry) and
``ω_t`` are per-frame, per-coordinate observation precisions (0 means
missing). The Kalman state stacks the lags, ``s_t = [x_t; x_{t-1}; ...;
x_{t-L+1}]`` (dimension ``nlags * latent_dim``). At a session start the
stacked state is reset to its prior ``N(initial_mean, initial_covariance)``;
nothing crosses a session border.

Numerics (float32-safe):

* the observation update never forms ``C P C^T + R``: with ``P_11 = G G^T``
  (Cholesky of the predicted covariance of the newest block) and
  ``Λ = C^T diag(ω) C`` it uses ``S = I + G^T Λ G`` (eigenvalues ≥ 1), so
  missing coordinates (ω = 0) and near-noiseless ones are both fine;
* the updated covariance is the sum of two positive semi-definite terms
  ``P_cond + B S^{-1} B^T`` (no subtraction of nearly equal matrices);
* backward sampling draws only the block that leaves the stacked state, by
  conditioning on the shared blocks and on the next latent through the
  dynamics (Joseph form), then a symmetrised Cholesky with a relative jitter.

Memory: the filter keeps one ``(block_size, S, S)`` block of covariances at a
time when ``block_size`` is given (the sampler and smoother recompute each
block's filter from a stored checkpoint, trading about one extra filtering
pass for memory ``O(block_size S^2 + (T / block_size) S^2)``).

References
----------
R. E. Kalman (1960). A new approach to linear filtering and prediction
problems. J. Basic Engineering 82(1), 35-45.

H. E. Rauch, F. Tung and C. T. Striebel (1965). Maximum likelihood estimates
of linear dynamic systems. AIAA Journal 3(8), 1445-1450.

S. Frühwirth-Schnatter (1994). Data augmentation and dynamic linear models.
J. Time Series Analysis 15(2), 183-202 (forward filtering, backward sampling).

C. K. Carter and R. Kohn (1994). On Gibbs sampling for state space models.
Biometrika 81(3), 541-553.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
from jax import lax
from jaxtyping import Array, Bool, Float, Int

__all__ = [
    "ARDynamics",
    "LinearEmission",
    "KalmanFilterResult",
    "KalmanSmootherResult",
    "KalmanSample",
    "ar_kalman_filter",
    "ar_kalman_smoother",
    "ar_kalman_sample",
    "RandomWalkPosterior",
    "random_walk_smoother",
    "random_walk_sample",
]

_LOG_2PI = 1.8378770664093453
_JITTER_EPS = 10.0  # relative jitter of covariances before a Cholesky factorisation, in machine epsilons


class ARDynamics(NamedTuple):
    """Autoregressive dynamics of the latent state, one entry per dynamics index.

    Attributes
    ----------
    coef : array of shape (n_dynamics, latent_dim, nlags * latent_dim)
        ``A_j``; column block ``l`` multiplies ``x_{t-l-1}`` (newest lag first).
    intercept : array of shape (n_dynamics, latent_dim)
        ``b_j``.
    covariance : array of shape (n_dynamics, latent_dim, latent_dim)
        ``Q_j``, symmetric positive definite.
    initial_mean : array of shape (nlags * latent_dim,)
        Mean of the stacked state ``[x_t; ...; x_{t-L+1}]`` at a session start.
    initial_covariance : array of shape (nlags * latent_dim, nlags * latent_dim)
        Its covariance, positive definite.
    """

    coef: Float[Array, "n_dynamics latent_dim n_lagged"]
    intercept: Float[Array, "n_dynamics latent_dim"]
    covariance: Float[Array, "n_dynamics latent_dim latent_dim"]
    initial_mean: Float[Array, " n_lagged"]
    initial_covariance: Float[Array, "n_lagged n_lagged"]


class LinearEmission(NamedTuple):
    """``y_t = C x_t + d + e_t`` with ``e_t ~ N(0, diag(1 / precisions_t))``.

    Attributes
    ----------
    matrix : array of shape (obs_dim, latent_dim)
        ``C``.
    bias : array of shape (obs_dim,)
        ``d``.
    """

    matrix: Float[Array, "obs_dim latent_dim"]
    bias: Float[Array, " obs_dim"]


class KalmanFilterResult(NamedTuple):
    """Filtered moments of the stacked state.

    Attributes
    ----------
    log_likelihood : scalar
        ``log p(y_{1:T})`` in nats, summed over sessions (missing coordinates
        excluded).
    filtered_means : array of shape (n_time_bins, nlags * latent_dim)
        ``E[s_t | y_{≤t}]`` within the session.
    filtered_covariances : array of shape (n_time_bins, nlags * latent_dim, nlags * latent_dim)
        ``Cov[s_t | y_{≤t}]``.
    """

    log_likelihood: Float[Array, ""]
    filtered_means: Float[Array, "n_time_bins n_lagged"]
    filtered_covariances: Float[Array, "n_time_bins n_lagged n_lagged"]


class KalmanSmootherResult(NamedTuple):
    """Smoothed moments of the stacked state.

    Attributes
    ----------
    log_likelihood : scalar
        As in [`KalmanFilterResult`][behavhmm.inference.kalman.KalmanFilterResult].
    smoothed_means : array of shape (n_time_bins, nlags * latent_dim)
        ``E[s_t | y of its session]``; ``[:, :latent_dim]`` is ``E[x_t | ...]``.
    smoothed_covariances : array of shape (n_time_bins, nlags * latent_dim, nlags * latent_dim) or None
        ``Cov[s_t | y of its session]`` (None unless ``return_covariances``).
    """

    log_likelihood: Float[Array, ""]
    smoothed_means: Float[Array, "n_time_bins n_lagged"]
    smoothed_covariances: Float[Array, "n_time_bins n_lagged n_lagged"] | None


class KalmanSample(NamedTuple):
    """One draw of the latent path from its posterior.

    Attributes
    ----------
    latents : array of shape (n_time_bins, latent_dim)
        ``x_t`` drawn jointly from ``p(x_{1:T} | y_{1:T})`` (session by session).
    log_likelihood : scalar
        ``log p(y_{1:T})`` in nats.
    """

    latents: Float[Array, "n_time_bins latent_dim"]
    log_likelihood: Float[Array, ""]


# ----------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------


def _sym(m):
    return 0.5 * (m + jnp.swapaxes(m, -1, -2))


def _chol(m):
    """Cholesky factor of a symmetrised covariance with a small relative jitter."""
    m = _sym(m)
    n = m.shape[-1]
    scale = jnp.maximum(jnp.trace(m) / n, jnp.finfo(m.dtype).tiny)
    jitter = _JITTER_EPS * jnp.finfo(m.dtype).eps * scale
    return jnp.linalg.cholesky(m + jitter * jnp.eye(n, dtype=m.dtype))


def _predict(m, P, dyn: ARDynamics, j, start):
    """Predicted moments of ``s_t`` from ``s_{t-1}`` (or the prior at a session start)."""
    d = dyn.intercept.shape[-1]
    a, b, q = dyn.coef[j], dyn.intercept[j], dyn.covariance[j]
    top_m = a @ m + b
    ap = a @ P  # (d, S)
    top_left = _sym(ap @ a.T + q)
    m_pred = jnp.concatenate([top_m, m[:-d]])
    upper = jnp.concatenate([top_left, ap[:, :-d]], axis=1)
    lower = jnp.concatenate([ap[:, :-d].T, P[:-d, :-d]], axis=1)
    P_pred = jnp.concatenate([upper, lower], axis=0)
    m_pred = jnp.where(start, dyn.initial_mean, m_pred)
    P_pred = jnp.where(start, dyn.initial_covariance, P_pred)
    return m_pred, _sym(P_pred)


def _information(emission: LinearEmission, y, precision):
    """Per-frame information of the observations about ``x_t``, computed for all frames at once.

    Returns ``Λ_t = C^T W_t C`` (T, d, d), ``η_t = C^T W_t (y_t - d)`` (T, d) and
    the constant ``-0.5 (n_obs log 2π - log|W_t| + (y_t - d)^T W_t (y_t - d))`` (T,)
    of the log-likelihood; coordinates with zero precision are left out.
    """
    observed = precision > 0
    w = jnp.where(observed, precision, 0.0)
    r = jnp.where(observed, y - emission.bias, 0.0)
    c = emission.matrix
    lam = jnp.einsum("oi,to,oj->tij", c, w, c)
    eta = (w * r) @ c
    log_w = jnp.sum(jnp.log(jnp.where(observed, w, 1.0)), axis=1)
    const = -0.5 * (jnp.sum(observed, axis=1) * _LOG_2PI - log_w + jnp.sum(w * r * r, axis=1))
    return lam, eta, const


def _update(m, P, lam, eta, const):
    """Condition the stacked state on one frame's information; returns moments and ``log p(y_t | y_<t)``."""
    d = lam.shape[0]
    m1 = m[:d]
    rho = eta - lam @ m1  # C^T W (y - d - C m1)
    g = jnp.linalg.cholesky(P[:d, :d])  # A P A^T + Q: positive definite without jitter
    s = jnp.eye(d, dtype=m.dtype) + g.T @ lam @ g
    ls = jnp.linalg.cholesky(_sym(s))
    # B = P[:, :d] G^{-T}; its first block is G
    b = jsl.solve_triangular(g, P[:d, :], lower=True).T  # (S, d)
    gt_rho = g.T @ rho
    u = jsl.cho_solve((ls, True), gt_rho)
    m_new = m + b @ u
    ls_inv_bt = jsl.solve_triangular(ls, b.T, lower=True)  # (d, S)
    cond = P - b @ b.T
    cond = cond.at[:d, :].set(0.0).at[:, :d].set(0.0)
    P_new = _sym(cond + ls_inv_bt.T @ ls_inv_bt)
    log_det_s = 2.0 * jnp.sum(jnp.log(jnp.diagonal(ls)))
    z = jsl.solve_triangular(ls, gt_rho, lower=True)
    # e^T W e = (y-d)^T W (y-d) - 2 m1^T η + m1^T Λ m1 (the first term is in ``const``)
    maha = -2.0 * m1 @ eta + m1 @ lam @ m1 - jnp.sum(z * z)
    ll = const - 0.5 * (log_det_s + maha)
    return m_new, P_new, ll


def _check(dyn: ARDynamics, emission: LinearEmission, y, precisions, dynamics_index, session_starts):
    t = y.shape[0]
    d = dyn.intercept.shape[-1]
    n_lagged = dyn.coef.shape[-1]
    if n_lagged % d or n_lagged == 0:
        raise ValueError(f"coef must have shape (n_dynamics, latent_dim, nlags * latent_dim), got {dyn.coef.shape}.")
    if dyn.initial_mean.shape != (n_lagged,) or dyn.initial_covariance.shape != (n_lagged, n_lagged):
        raise ValueError(
            f"initial_mean and initial_covariance must have shapes ({n_lagged},) and ({n_lagged}, {n_lagged})."
        )
    if emission.matrix.shape[1] != d or emission.matrix.shape[0] != y.shape[1]:
        raise ValueError(
            f"emission matrix must have shape (obs_dim, latent_dim) = ({y.shape[1]}, {d}), got {emission.matrix.shape}."
        )
    if precisions.shape != y.shape:
        raise ValueError(f"precisions must have the shape of observations {y.shape}, got {precisions.shape}.")
    if dynamics_index.shape != (t,) or session_starts.shape != (t,):
        raise ValueError(f"dynamics_index and session_starts must have shape ({t},).")


def _prepare_blocks(arrays, block_size, n_time_bins):
    """Pad the time axis to whole blocks and reshape; ``arrays[-1]`` are the session starts.

    Padding steps are session starts with no information.
    """
    if block_size is None or block_size >= n_time_bins:
        block_size = n_time_bins
    n_blocks = -(-n_time_bins // block_size)
    n_pad = n_blocks * block_size - n_time_bins
    out = []
    for i, a in enumerate(arrays):
        if n_pad:
            fill = jnp.ones if i == len(arrays) - 1 else jnp.zeros
            a = jnp.concatenate([a, fill((n_pad,) + a.shape[1:], a.dtype)])
        out.append(a.reshape((n_blocks, block_size) + a.shape[1:]))
    return tuple(out), n_blocks, block_size


def _filter_block(carry, block, dyn):
    """Filter one block from ``carry = (m, P)``; returns the new carry and per-step moments."""

    def step(c, inp):
        m, P = c
        lam, eta, const, j, start = inp
        m_pred, P_pred = _predict(m, P, dyn, j, start)
        m_new, P_new, ll = _update(m_pred, P_pred, lam, eta, const)
        return (m_new, P_new), (m_new, P_new, ll)

    return lax.scan(step, carry, block)


def _run_filter(dyn, emission, y, precisions, dynamics_index, session_starts, block_size):
    """Forward pass over blocks; returns the block-start carries and the blocked inputs."""
    t = y.shape[0]
    starts = jnp.asarray(session_starts, bool).at[0].set(True)
    lam, eta, const = _information(emission, y, precisions)
    blocks, n_blocks, bs = _prepare_blocks((lam, eta, const, dynamics_index.astype(jnp.int32), starts), block_size, t)
    n_lagged = dyn.coef.shape[-1]
    init = (jnp.zeros(n_lagged, y.dtype), jnp.eye(n_lagged, dtype=y.dtype))

    if n_blocks == 1:  # nothing to checkpoint: the smoother or sampler filters in its single pass
        checkpoints = jax.tree_util.tree_map(lambda a: a[None], init)
        return checkpoints, blocks, n_blocks, bs

    def outer(carry, block):
        new, _ = _filter_block(carry, block, dyn)
        return new, carry

    _, checkpoints = lax.scan(outer, init, blocks)
    return checkpoints, blocks, n_blocks, bs


# ----------------------------------------------------------------------------
# public kernels
# ----------------------------------------------------------------------------


def ar_kalman_filter(
    dynamics: ARDynamics,
    emission: LinearEmission,
    observations: Float[Array, "n_time_bins obs_dim"],
    precisions: Float[Array, "n_time_bins obs_dim"],
    dynamics_index: Int[Array, " n_time_bins"],
    session_starts: Bool[Array, " n_time_bins"],
) -> KalmanFilterResult:
    """Kalman filter of the stacked autoregressive latent state, session by session.

    Parameters
    ----------
    dynamics : ARDynamics
        Dynamics entries and the stacked-state prior at session starts.
    emission : LinearEmission
        ``C`` and ``d``.
    observations : array of shape (n_time_bins, obs_dim)
        ``y_t`` (values where ``precisions`` is 0 are ignored).
    precisions : array of shape (n_time_bins, obs_dim)
        Observation noise precisions ``ω_t`` (>= 0; 0 for missing).
    dynamics_index : int array of shape (n_time_bins,)
        Dynamics entry used for the step into ``t`` (ignored at session starts).
    session_starts : bool array of shape (n_time_bins,)
        Session starts; the first step is always one.

    Returns
    -------
    KalmanFilterResult

    Raises
    ------
    ValueError
        If the shapes are inconsistent.
    """
    _check(dynamics, emission, observations, precisions, dynamics_index, session_starts)
    starts = jnp.asarray(session_starts, bool).at[0].set(True)
    n_lagged = dynamics.coef.shape[-1]
    init = (jnp.zeros(n_lagged, observations.dtype), jnp.eye(n_lagged, dtype=observations.dtype))
    lam, eta, const = _information(emission, observations, precisions)
    _, (ms, Ps, lls) = _filter_block(init, (lam, eta, const, dynamics_index, starts), dynamics)
    return KalmanFilterResult(jnp.sum(lls), ms, Ps)


def _smooth_step(dyn, carry, inp):
    """One RTS step backwards: ``carry`` holds the smoothed moments of ``s_{t+1}``."""
    m_next, P_next = carry
    m, P, j_next, start_next = inp
    m_pred, P_pred = _predict(m, P, dyn, j_next, False)
    d = dyn.intercept.shape[-1]
    a = dyn.coef[j_next]
    # cross covariance Cov(s_t, s_{t+1}) = P F^T = [P A^T, P[:, :-d]]
    cross = jnp.concatenate([P @ a.T, P[:, :-d]], axis=1)
    lp = _chol(P_pred)
    gain = jsl.cho_solve((lp, True), cross.T).T
    m_s = m + gain @ (m_next - m_pred)
    P_s = _sym(P + gain @ (P_next - P_pred) @ gain.T)
    m_s = jnp.where(start_next, m, m_s)
    P_s = jnp.where(start_next, P, P_s)
    return (m_s, P_s), (m_s, P_s)


def ar_kalman_smoother(
    dynamics: ARDynamics,
    emission: LinearEmission,
    observations: Float[Array, "n_time_bins obs_dim"],
    precisions: Float[Array, "n_time_bins obs_dim"],
    dynamics_index: Int[Array, " n_time_bins"],
    session_starts: Bool[Array, " n_time_bins"],
    *,
    block_size: int | None = None,
    return_covariances: bool = False,
) -> KalmanSmootherResult:
    """Rauch-Tung-Striebel smoother of the stacked latent state, session by session.

    Parameters
    ----------
    dynamics, emission, observations, precisions, dynamics_index, session_starts
        As in [`ar_kalman_filter`][behavhmm.inference.kalman.ar_kalman_filter].
    block_size : int, optional
        Time steps whose filtered covariances are held at once (memory knob;
        default: all).
    return_covariances : bool, default False
        Also return the smoothed covariances (memory ``O(T S^2)``).

    Returns
    -------
    KalmanSmootherResult

    Raises
    ------
    ValueError
        If the shapes are inconsistent.
    """
    _check(dynamics, emission, observations, precisions, dynamics_index, session_starts)
    t = observations.shape[0]
    checkpoints, blocks, n_blocks, bs = _run_filter(
        dynamics, emission, observations, precisions, dynamics_index, session_starts, block_size
    )
    lam_b, eta_b, const_b, idx_b, starts_b = blocks
    # "next" index and start of each step, in block layout
    idx_next = jnp.concatenate([idx_b.reshape(-1)[1:], jnp.zeros(1, jnp.int32)]).reshape(n_blocks, bs)
    start_next = jnp.concatenate([starts_b.reshape(-1)[1:], jnp.ones(1, bool)]).reshape(n_blocks, bs)
    n_lagged = dynamics.coef.shape[-1]
    dtype = observations.dtype

    def outer(carry, inp):
        ck, lam, eta, const, j, st, jn, sn = inp
        _, (ms, Ps, lls) = _filter_block(ck, (lam, eta, const, j, st), dynamics)
        carry, (m_s, P_s) = lax.scan(
            lambda c, x: _smooth_step(dynamics, c, x), carry, (ms, Ps, jn, sn), reverse=True
        )
        return carry, (m_s, P_s if return_covariances else None, jnp.sum(lls))

    init = (jnp.zeros(n_lagged, dtype), jnp.eye(n_lagged, dtype=dtype))
    inputs = (checkpoints, lam_b, eta_b, const_b, idx_b, starts_b, idx_next, start_next)
    if n_blocks == 1:  # one pass: the filter's moments are kept
        _, (m_s, P_s, ll) = outer(init, jax.tree_util.tree_map(lambda a: a[0], inputs))
        m_s, P_s = m_s[None], None if P_s is None else P_s[None]
    else:
        _, (m_s, P_s, lls) = lax.scan(outer, init, inputs, reverse=True)
        ll = jnp.sum(lls)
    m_s = m_s.reshape(-1, n_lagged)[:t]
    if return_covariances:
        P_s = P_s.reshape(-1, n_lagged, n_lagged)[:t]
    return KalmanSmootherResult(ll, m_s, P_s)


def _sample_step(dyn, carry, inp):
    """One backward-sampling step: ``carry`` is the sampled stacked state ``s_{t+1}``."""
    s_next = carry
    m, P, j_next, start_next, key = inp
    d = dyn.intercept.shape[-1]
    n_lagged = m.shape[0]
    k_full, k_block = jax.random.split(key)

    def session_end():  # draw the whole stacked state from the filter
        s = m + _chol(P) @ jax.random.normal(k_full, (n_lagged,), m.dtype)
        return s, s[:d]

    def within():
        s = _draw_oldest_block(dyn, s_next, m, P, j_next, k_block)
        return s, s[:d]

    return lax.cond(start_next, session_end, within)


def _draw_oldest_block(dyn, s_next, m, P, j_next, key):
    """``s_t`` given ``s_{t+1}``: the shared blocks are known, the oldest block ``c`` is drawn."""
    d = dyn.intercept.shape[-1]
    n_lagged = m.shape[0]
    shared = s_next[d:]  # = s_t[:-d]
    mu_c, sig_c = m[-d:], P[-d:, -d:]
    if n_lagged > d:
        la = _chol(P[:-d, :-d])
        p_ac = P[:-d, -d:]
        sol = jsl.cho_solve((la, True), jnp.concatenate([p_ac, (shared - m[:-d])[:, None]], axis=1))
        mu_c = mu_c + p_ac.T @ sol[:, -1]
        sig_c = _sym(sig_c - p_ac.T @ sol[:, :-1])
    a = dyn.coef[j_next]
    a_shared, a_c = a[:, : n_lagged - d], a[:, n_lagged - d :]
    resid = s_next[:d] - dyn.intercept[j_next] - a_shared @ shared
    q = dyn.covariance[j_next]
    s2 = _sym(a_c @ sig_c @ a_c.T + q)  # >= Q: positive definite without jitter
    gain = jsl.cho_solve((jnp.linalg.cholesky(s2), True), a_c @ sig_c).T  # (d, d)
    mu_post = mu_c + gain @ (resid - a_c @ mu_c)
    ikh = jnp.eye(d, dtype=m.dtype) - gain @ a_c
    sig_post = ikh @ sig_c @ ikh.T + gain @ q @ gain.T
    c = mu_post + _chol(sig_post) @ jax.random.normal(key, (d,), m.dtype)
    return jnp.concatenate([shared, c])


def ar_kalman_sample(
    key,
    dynamics: ARDynamics,
    emission: LinearEmission,
    observations: Float[Array, "n_time_bins obs_dim"],
    precisions: Float[Array, "n_time_bins obs_dim"],
    dynamics_index: Int[Array, " n_time_bins"],
    session_starts: Bool[Array, " n_time_bins"],
    *,
    block_size: int | None = None,
) -> KalmanSample:
    """Draw the latent path by forward filtering, backward sampling, session by session.

    Parameters
    ----------
    key : jax.random key
        Randomness of the draw.
    dynamics, emission, observations, precisions, dynamics_index, session_starts
        As in [`ar_kalman_filter`][behavhmm.inference.kalman.ar_kalman_filter].
    block_size : int, optional
        Time steps whose filtered covariances are held at once; memory is
        ``O(block_size S^2 + (T / block_size) S^2)`` at the cost of a second
        filtering pass. Default: all steps at once (one pass).

    Returns
    -------
    KalmanSample

    Raises
    ------
    ValueError
        If the shapes are inconsistent.
    """
    _check(dynamics, emission, observations, precisions, dynamics_index, session_starts)
    t = observations.shape[0]
    d = dynamics.intercept.shape[-1]
    checkpoints, blocks, n_blocks, bs = _run_filter(
        dynamics, emission, observations, precisions, dynamics_index, session_starts, block_size
    )
    lam_b, eta_b, const_b, idx_b, starts_b = blocks
    idx_next = jnp.concatenate([idx_b.reshape(-1)[1:], jnp.zeros(1, jnp.int32)]).reshape(n_blocks, bs)
    start_next = jnp.concatenate([starts_b.reshape(-1)[1:], jnp.ones(1, bool)]).reshape(n_blocks, bs)
    keys = jax.random.split(key, n_blocks * bs).reshape((n_blocks, bs) + jax.random.split(key, 1).shape[1:])
    n_lagged = dynamics.coef.shape[-1]

    def outer(carry, inp):
        ck, lam, eta, const, j, st, jn, sn, kb = inp
        _, (ms, Ps, lls) = _filter_block(ck, (lam, eta, const, j, st), dynamics)
        carry, x = lax.scan(lambda c, v: _sample_step(dynamics, c, v), carry, (ms, Ps, jn, sn, kb), reverse=True)
        return carry, (x, jnp.sum(lls))

    init = jnp.zeros(n_lagged, observations.dtype)
    inputs = (checkpoints, lam_b, eta_b, const_b, idx_b, starts_b, idx_next, start_next, keys)
    if n_blocks == 1:  # one pass: the filter's moments are kept
        _, (xs, ll) = outer(init, jax.tree_util.tree_map(lambda a: a[0], inputs))
    else:
        _, (xs, lls) = lax.scan(outer, init, inputs, reverse=True)
        ll = jnp.sum(lls)
    return KalmanSample(xs.reshape(-1, d)[:t], ll)


# ----------------------------------------------------------------------------
# isotropic Gaussian random walk (the keypoint centroid)
# ----------------------------------------------------------------------------


class RandomWalkPosterior(NamedTuple):
    """Smoothed moments of an isotropic random walk.

    Attributes
    ----------
    means : array of shape (n_time_bins, n_dims)
        ``E[v_t | all observations of its session]``.
    variances : array of shape (n_time_bins,)
        ``Var[v_{t,i} | ...]``, the same for every coordinate ``i``.
    """

    means: Float[Array, "n_time_bins n_dims"]
    variances: Float[Array, " n_time_bins"]


def _random_walk_filter(observations, precisions, step_variance, initial_variance, session_starts):
    starts = jnp.asarray(session_starts, bool).at[0].set(True)
    n_dims = observations.shape[1]

    def step(carry, inp):
        m, p = carry
        y, lam, start = inp
        m_pred = jnp.where(start, jnp.zeros(n_dims, y.dtype), m)
        p_pred = jnp.where(start, initial_variance, p + step_variance)
        gain = p_pred * lam / (1.0 + p_pred * lam)
        m_new = m_pred + gain * (y - m_pred)
        p_new = p_pred / (1.0 + p_pred * lam)
        return (m_new, p_new), (m_new, p_new)

    init = (jnp.zeros(n_dims, observations.dtype), jnp.asarray(initial_variance, observations.dtype))
    _, (ms, ps) = lax.scan(step, init, (observations, precisions, starts))
    start_next = jnp.concatenate([starts[1:], jnp.ones(1, bool)])
    return ms, ps, start_next


def random_walk_smoother(
    observations: Float[Array, "n_time_bins n_dims"],
    precisions: Float[Array, " n_time_bins"],
    step_variance,
    initial_variance,
    session_starts: Bool[Array, " n_time_bins"],
) -> RandomWalkPosterior:
    """RTS smoother of ``v_t = v_{t-1} + N(0, q I)`` observed as ``u_t ~ N(v_t, I / λ_t)``.

    Parameters
    ----------
    observations : array of shape (n_time_bins, n_dims)
        ``u_t`` (any value where ``λ_t = 0``).
    precisions : array of shape (n_time_bins,)
        ``λ_t >= 0``, isotropic observation precisions (0: no observation).
    step_variance : scalar
        ``q``, the variance of a step per coordinate.
    initial_variance : scalar
        Prior variance of ``v`` (mean 0) at a session start.
    session_starts : bool array of shape (n_time_bins,)

    Returns
    -------
    RandomWalkPosterior

    Notes
    -----
    For the keypoint centroid, ``λ_t = Σ_n w_{t,n}`` and ``u_t`` is the
    ``w``-weighted mean of the keypoints minus the rotated pose: the product
    of the keypoints' Gaussians in ``v_t``.
    """
    ms, ps, start_next = _random_walk_filter(observations, precisions, step_variance, initial_variance, session_starts)

    def step(carry, inp):
        m_next, p_next = carry
        m, p, sn = inp
        j = p / (p + step_variance)
        m_s = jnp.where(sn, m, m + j * (m_next - m))
        p_s = jnp.where(sn, p, p + j * j * (p_next - p - step_variance))
        return (m_s, p_s), (m_s, p_s)

    _, (m_s, p_s) = lax.scan(step, (ms[-1], ps[-1]), (ms, ps, start_next), reverse=True)
    return RandomWalkPosterior(m_s, p_s)


def random_walk_sample(
    key,
    observations: Float[Array, "n_time_bins n_dims"],
    precisions: Float[Array, " n_time_bins"],
    step_variance,
    initial_variance,
    session_starts: Bool[Array, " n_time_bins"],
) -> Float[Array, "n_time_bins n_dims"]:
    """Draw the path of an isotropic random walk from its posterior (forward filter, backward sample).

    Parameters
    ----------
    key : jax.random key
    observations, precisions, step_variance, initial_variance, session_starts
        As in [`random_walk_smoother`][behavhmm.inference.kalman.random_walk_smoother].

    Returns
    -------
    array of shape (n_time_bins, n_dims)
    """
    ms, ps, start_next = _random_walk_filter(observations, precisions, step_variance, initial_variance, session_starts)
    noise = jax.random.normal(key, ms.shape, ms.dtype)

    def step(v_next, inp):
        m, p, sn, eps = inp
        j = p / (p + step_variance)
        mean = jnp.where(sn, m, m + j * (v_next - m))
        var = jnp.where(sn, p, p * step_variance / (p + step_variance))
        v = mean + jnp.sqrt(var) * eps
        return v, v

    _, vs = lax.scan(step, jnp.zeros_like(ms[0]), (ms, ps, start_next, noise), reverse=True)
    return vs
