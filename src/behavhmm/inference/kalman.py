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

Numerics and cost (float32-safe, one small factorisation per step):

* every frame's observations are first turned, for all frames at once, into
  a ``latent_dim``-dimensional pseudo-observation ``z_t ~ N(R_t x_t, I)``
  with ``R_t^T R_t = C^T diag(ω_t) C`` (missing coordinates, ω = 0, drop
  out; a frame with nothing observed has ``R_t = 0``);
* the update then factorises only ``S = I + R P_11 R^T`` (eigenvalues ≥ 1,
  so near-noiseless observations are fine) and needs one triangular solve;
* smoothed means come from the backward information recursion (de Jong
  1989), and posterior draws from the simulation smoother of Durbin and
  Koopman (2002) in filter-error form: the backward pass has no
  factorisation, only matrix-vector products. The simulated quantity is a
  filter error, bounded by the filter's covariances, so unstable or
  switching dynamics cannot make it overflow.

Memory: the filter keeps one block of per-step outputs at a time when
``block_size`` is given (the sampler and smoother recompute each block's
filter from a stored checkpoint, trading about one extra filtering pass for
memory ``O(block_size S^2 + (T / block_size) S^2)``).

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

P. de Jong (1989). Smoothing and interpolation with the state-space model.
J. American Statistical Association 84(408), 1085-1088.

J. Durbin and S. J. Koopman (2002). A simple and efficient simulation
smoother for state space time series analysis. Biometrika 89(3), 603-615.

J. Durbin and S. J. Koopman (2012). Time Series Analysis by State Space
Methods, 2nd ed., Oxford University Press (sections 4.4 and 4.9).
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
_JITTER_EPS = (
    10.0  # relative jitter of covariances before a Cholesky factorisation, in machine epsilons
)


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
    """Cholesky factor of a covariance (symmetrised by ``cholesky``) with a small relative jitter."""
    n = m.shape[-1]
    scale = jnp.maximum(jnp.trace(m) / n, jnp.finfo(m.dtype).tiny)
    jitter = _JITTER_EPS * jnp.finfo(m.dtype).eps * scale
    return jnp.linalg.cholesky(m + jitter * jnp.eye(n, dtype=m.dtype))


def _predict(m, P, dyn: ARDynamics, j, start):
    """Predicted moments of ``s_t`` from ``s_{t-1}`` (or the prior at a session start).

    ``m`` is one mean ``(S,)`` or several columns ``(S, n_cols)`` sharing ``P``.
    """
    d = dyn.intercept.shape[-1]
    a, b, q = dyn.coef[j], dyn.intercept[j], dyn.covariance[j]
    m0 = dyn.initial_mean
    if m.ndim == 2:
        b, m0 = b[:, None], m0[:, None]
    m_pred = jnp.concatenate([a @ m + b, m[:-d]])
    ap = a @ P  # (d, S)
    top_left = _sym(ap @ a.T + q)
    upper = jnp.concatenate([top_left, ap[:, :-d]], axis=1)
    lower = jnp.concatenate([ap[:, :-d].T, P[:-d, :-d]], axis=1)
    P_pred = jnp.concatenate([upper, lower], axis=0)
    m_pred = jnp.where(start, m0, m_pred)
    P_pred = jnp.where(start, dyn.initial_covariance, P_pred)
    return m_pred, P_pred


def _information(emission: LinearEmission, y, precision):
    """Every frame's observations as a ``latent_dim``-dimensional pseudo-observation, for all frames at once.

    With ``Λ_t = C^T W_t C = R_t^T R_t`` (``R_t`` upper triangular: the
    Cholesky factor of ``Λ_t`` plus a relative jitter of a few machine
    epsilons) and ``η_t = C^T W_t (y_t - d)``, frame ``t`` tells the same
    about ``x_t`` as ``z_t = R_t^{-T} η_t ~ N(R_t x_t, I)``; ``const_t`` is the
    rest of ``log p(y_t | x_t)`` (coordinates with zero precision left out),
    so that ``log p(y_t | x_t) = const_t + log N(z_t; R_t x_t, I)``.
    Returns ``R`` (T, d, d), ``z`` (T, d) and ``const`` (T,).
    """
    observed = precision > 0
    w = jnp.where(observed, precision, 0.0)
    r = jnp.where(observed, y - emission.bias, 0.0)
    c = emission.matrix
    d = c.shape[1]
    lam = jnp.einsum("oi,to,oj->tij", c, w, c)
    eta = (w * r) @ c
    trace = jnp.trace(lam, axis1=1, axis2=2)
    informative = (trace > 0)[:, None, None]
    eye = jnp.eye(d, dtype=lam.dtype)
    jitter = _JITTER_EPS * jnp.finfo(lam.dtype).eps * trace
    factor = jnp.linalg.cholesky(jnp.where(informative, lam + jitter[:, None, None] * eye, eye))
    z = jsl.solve_triangular(factor, eta[..., None], lower=True)[
        ..., 0
    ]  # η = 0 where nothing is observed
    lower = jnp.where(informative, factor, 0.0)  # a frame with nothing observed: R = 0, z = 0
    log_w = jnp.sum(jnp.log(jnp.where(observed, w, 1.0)), axis=1)
    # the part of (y - d)^T W (y - d) that no latent explains (>= 0)
    unexplained = jnp.maximum(jnp.sum(w * r * r, axis=1) - jnp.sum(z * z, axis=1), 0.0)
    const = -0.5 * (jnp.sum(observed, axis=1) * _LOG_2PI - log_w + unexplained)
    return jnp.swapaxes(lower, -1, -2), z, const


def _update(m, P, r, z, const):
    """Condition on one pseudo-observation ``z ~ N(R x_t, I)`` with one factorisation.

    ``m`` (S, n_cols) are predicted means sharing the predicted covariance
    ``P``; ``z`` (d, n_cols) their pseudo-observations. With ``H = [R, 0]``,
    ``S = I + H P H^T = L L^T`` (eigenvalues >= 1, so it factorises in float32
    whatever the observation noise; missing frames give ``R = 0``, ``S = I``).
    Returns the updated means and covariance, ``log p(y_t | y_<t)`` of the
    first column, and ``(Z, M, e) = L^{-1} (H P, R, z - H m)`` for the
    backward recursion.
    """
    d = r.shape[0]
    n_lagged = P.shape[0]
    hp = r @ P[:d]  # (d, S)
    s = jnp.eye(d, dtype=P.dtype) + hp[:, :d] @ r.T
    ls = jnp.linalg.cholesky(s)  # symmetrises its input
    v = z - r @ m[:d]
    sol = jsl.solve_triangular(ls, jnp.concatenate([hp, r, v], axis=1), lower=True)
    zg, mg, e = sol[:, :n_lagged], sol[:, n_lagged : n_lagged + d], sol[:, n_lagged + d :]
    m_new = m + zg.T @ e
    P_new = _sym(P - zg.T @ zg)
    ll = const - jnp.sum(jnp.log(jnp.diagonal(ls))) - 0.5 * jnp.sum(e[:, 0] * e[:, 0])
    return m_new, P_new, ll, (zg, mg, e)


def _check(
    dyn: ARDynamics, emission: LinearEmission, y, precisions, dynamics_index, session_starts
):
    t = y.shape[0]
    d = dyn.intercept.shape[-1]
    n_lagged = dyn.coef.shape[-1]
    if n_lagged % d or n_lagged == 0:
        raise ValueError(
            f"coef must have shape (n_dynamics, latent_dim, nlags * latent_dim), got {dyn.coef.shape}."
        )
    if dyn.initial_mean.shape != (n_lagged,) or dyn.initial_covariance.shape != (
        n_lagged,
        n_lagged,
    ):
        raise ValueError(
            f"initial_mean and initial_covariance must have shapes ({n_lagged},) and ({n_lagged}, {n_lagged})."
        )
    if emission.matrix.shape[1] != d or emission.matrix.shape[0] != y.shape[1]:
        raise ValueError(
            f"emission matrix must have shape (obs_dim, latent_dim) = ({y.shape[1]}, {d}), got {emission.matrix.shape}."
        )
    if precisions.shape != y.shape:
        raise ValueError(
            f"precisions must have the shape of observations {y.shape}, got {precisions.shape}."
        )
    if dynamics_index.shape != (t,) or session_starts.shape != (t,):
        raise ValueError(f"dynamics_index and session_starts must have shape ({t},).")


def _prepare_blocks(arrays, block_size, n_time_bins):
    """Pad the time axis to whole blocks and reshape; ``arrays[4]`` are the session starts.

    Padding steps are session starts with no information.
    """
    if block_size is None or block_size >= n_time_bins:
        block_size = n_time_bins
    n_blocks = -(-n_time_bins // block_size)
    n_pad = n_blocks * block_size - n_time_bins
    out = []
    for i, a in enumerate(arrays):
        if n_pad:
            fill = jnp.ones if i == 4 else jnp.zeros
            a = jnp.concatenate([a, fill((n_pad,) + a.shape[1:], a.dtype)])
        out.append(a.reshape((n_blocks, block_size) + a.shape[1:]))
    return tuple(out), n_blocks, block_size


def _filter_block(carry, block, dyn, mode, draws=None):
    """Filter one block from ``carry = (m, P)``; returns the new carry and per-step outputs.

    ``mode`` picks the outputs: ``"filter"`` the filtered moments;
    ``"smooth"`` what the backward mean recursion needs; ``"sample"`` the
    same for the difference between the data's innovations and those of a
    simulated filter error, carried as the second column of ``m``.
    """

    def step(c, inp):
        m, P = c
        r, z, const, j, start, *noise = inp
        d = r.shape[0]
        m_pred, P_pred = _predict(m, P, dyn, j, start)
        if mode == "sample":
            # column 1 is minus the filter's prediction error of a path simulated from the model:
            # its "observation" is the simulated observation noise, and it takes the dynamics noise
            # instead of the intercept (the prior draw instead of the prior mean at a session start)
            e_obs, e_dyn, e_init = noise
            u = m[:, 1]
            u_pred = jnp.concatenate([dyn.coef[j] @ u - draws.chol_q[j] @ e_dyn, u[:-d]])
            u_pred = jnp.where(start, -(draws.chol_p0 @ e_init), u_pred)
            m_pred = m_pred.at[:, 1].set(u_pred)
            z = jnp.stack([z, e_obs], axis=1)
        else:
            z = z[:, None]
        m_new, P_new, ll, (zg, mg, e) = _update(m_pred, P_pred, r, z, const)
        if mode == "filter":
            out = (m_new[:, 0], P_new, ll)
        elif mode == "smooth":
            out = (m_pred[:, 0], P_pred, zg, mg, e[:, 0], ll)
        else:  # the draw: predicted mean plus simulated error, then the smoothing of the innovation difference
            out = (m_pred[:d, 0] - m_pred[:d, 1], P_pred[:d], zg, mg, e[:, 0] - e[:, 1], ll)
        return (m_new, P_new), out

    return lax.scan(step, carry, block)


class _Draws(NamedTuple):
    """Cholesky factors of the dynamics noise and of the session-start prior, for the simulated errors."""

    chol_q: Float[Array, "n_dynamics latent_dim latent_dim"]
    chol_p0: Float[Array, "n_lagged n_lagged"]


def _initial_carry(n_lagged, n_cols, dtype):
    return (jnp.zeros((n_lagged, n_cols), dtype), jnp.eye(n_lagged, dtype=dtype))


def _run_filter(
    dyn,
    emission,
    y,
    precisions,
    dynamics_index,
    session_starts,
    block_size,
    mode,
    noise=(),
    draws=None,
):
    """Inputs in block layout and, when there are several blocks, the filter state at each block start."""
    t = y.shape[0]
    starts = jnp.asarray(session_starts, bool).at[0].set(True)
    r, z, const = _information(emission, y, precisions)
    arrays = (r, z, const, dynamics_index.astype(jnp.int32), starts) + tuple(noise)
    blocks, n_blocks, bs = _prepare_blocks(arrays, block_size, t)
    init = _initial_carry(dyn.coef.shape[-1], 2 if mode == "sample" else 1, y.dtype)
    if n_blocks == 1:  # nothing to checkpoint: the second pass filters in its single pass
        return jax.tree_util.tree_map(lambda a: a[None], init), blocks, n_blocks, bs

    def outer(carry, block):
        new, _ = _filter_block(carry, block, dyn, mode, draws)
        return new, carry

    _, checkpoints = lax.scan(outer, init, blocks)
    return checkpoints, blocks, n_blocks, bs


def _backward_mean(dyn, r_next, inp):
    """One step of the backward information recursion (de Jong 1989; Durbin and Koopman 2012, sec. 4.4).

    ``r_next`` is ``r_t``; returns ``r_{t-1} = H^T S^{-1} v_t + (I - K_t H)^T F_{t+1}^T r_t``
    and the smoothed mean ``a_t + P_t r_{t-1}`` of the stored rows.
    """
    a_pred, p_rows, zg, mg, e, j_next, start_next = inp
    d = e.shape[0]
    w = dyn.coef[j_next].T @ r_next[:d] + jnp.concatenate([r_next[d:], jnp.zeros(d, r_next.dtype)])
    w = jnp.where(start_next, 0.0, w)  # nothing crosses a session border
    r = w.at[:d].add(mg.T @ (e - zg @ w))
    return r, a_pred + p_rows @ r


def _next_step_inputs(blocks, n_blocks, bs):
    """Dynamics index and session-start flag of the step after each step, in block layout."""
    idx_b, starts_b = blocks[3], blocks[4]
    idx_next = jnp.concatenate([idx_b.reshape(-1)[1:], jnp.zeros(1, jnp.int32)]).reshape(
        n_blocks, bs
    )
    start_next = jnp.concatenate([starts_b.reshape(-1)[1:], jnp.ones(1, bool)]).reshape(
        n_blocks, bs
    )
    return idx_next, start_next


def _filter_then_backward(
    dyn, blocks, checkpoints, n_blocks, bs, mode, backward_step, init, draws=None
):
    """Filter each block from its checkpoint and run ``backward_step`` over it in reverse, last block first.

    ``backward_step(dyn, carry, (*filter outputs, j_next, start_next))`` is
    scanned with the carry crossing block borders. Returns its per-step
    outputs on the padded time axis and the log-likelihood.
    """
    idx_next, start_next = _next_step_inputs(blocks, n_blocks, bs)

    def outer(carry, inp):
        ck, block, jn, sn = inp
        _, (*stored, lls) = _filter_block(ck, block, dyn, mode, draws)
        carry, out = lax.scan(
            lambda c, v: backward_step(dyn, c, v), carry, (*stored, jn, sn), reverse=True
        )
        return carry, (out, jnp.sum(lls))

    inputs = (checkpoints, blocks, idx_next, start_next)
    if n_blocks == 1:  # one pass: the filter's outputs are kept
        _, (out, ll) = outer(init, jax.tree_util.tree_map(lambda a: a[0], inputs))
        return out, ll
    _, (out, lls) = lax.scan(outer, init, inputs, reverse=True)
    return jax.tree_util.tree_map(
        lambda a: a.reshape((n_blocks * bs,) + a.shape[2:]), out
    ), jnp.sum(lls)


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
    checkpoints, blocks, _, _ = _run_filter(
        dynamics, emission, observations, precisions, dynamics_index, session_starts, None, "filter"
    )
    init = jax.tree_util.tree_map(lambda a: a[0], checkpoints)
    _, (ms, Ps, lls) = _filter_block(
        init, jax.tree_util.tree_map(lambda a: a[0], blocks), dynamics, "filter"
    )
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
    """Smoothed moments of the stacked latent state, session by session.

    The means come from the backward information recursion of de Jong (1989)
    (no factorisation on the way back); with ``return_covariances`` the
    Rauch-Tung-Striebel recursion gives means and covariances.

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
    mode = "filter" if return_covariances else "smooth"
    checkpoints, blocks, n_blocks, bs = _run_filter(
        dynamics,
        emission,
        observations,
        precisions,
        dynamics_index,
        session_starts,
        block_size,
        mode,
    )
    n_lagged = dynamics.coef.shape[-1]
    dtype = observations.dtype
    if return_covariances:  # Rauch-Tung-Striebel, carrying the smoothed moments of the next step
        init = (jnp.zeros(n_lagged, dtype), jnp.eye(n_lagged, dtype=dtype))
        (m_s, P_s), ll = _filter_then_backward(
            dynamics, blocks, checkpoints, n_blocks, bs, mode, _smooth_step, init
        )
        return KalmanSmootherResult(ll, m_s[:t], P_s[:t])
    m_s, ll = _filter_then_backward(
        dynamics,
        blocks,
        checkpoints,
        n_blocks,
        bs,
        mode,
        _backward_mean,
        jnp.zeros(n_lagged, dtype),
    )
    return KalmanSmootherResult(ll, m_s[:t], None)


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
    """Draw the latent path from its posterior with a simulation smoother, session by session.

    Durbin and Koopman's (2002) simulation smoother in filter-error form: a
    draw is the smoothed mean plus a simulated smoothing error, which is the
    filter's prediction error of a path simulated from the model minus its
    smoothed value. The filter carries the data's mean and the simulated
    error as two columns under one covariance recursion (one ``latent_dim``
    Cholesky factorisation per step); the backward pass is the
    factorisation-free mean recursion of de Jong (1989) applied to the
    difference of the two innovation sequences. The draw has exactly the
    law of forward-filtering backward-sampling (Frühwirth-Schnatter 1994;
    Carter and Kohn 1994). The simulated quantity is a filter error, bounded
    by the filter's covariances, so unstable or switching dynamics do not
    make it grow (a path simulated from the prior would).

    Parameters
    ----------
    key : jax.random key
        Randomness of the draw.
    dynamics, emission, observations, precisions, dynamics_index, session_starts
        As in [`ar_kalman_filter`][behavhmm.inference.kalman.ar_kalman_filter].
    block_size : int, optional
        Time steps whose filter outputs are held at once; memory is
        ``O(block_size S d + (T / block_size) S^2)`` at the cost of a second
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
    n_lagged = dynamics.coef.shape[-1]
    dtype = observations.dtype
    k_obs, k_dyn, k_init = jax.random.split(key, 3)
    noise = (
        jax.random.normal(k_obs, (t, d), dtype),
        jax.random.normal(k_dyn, (t, d), dtype),
        jax.random.normal(k_init, (t, n_lagged), dtype),
    )
    draws = _Draws(jax.vmap(_chol)(dynamics.covariance), _chol(dynamics.initial_covariance))
    checkpoints, blocks, n_blocks, bs = _run_filter(
        dynamics,
        emission,
        observations,
        precisions,
        dynamics_index,
        session_starts,
        block_size,
        "sample",
        noise,
        draws,
    )
    xs, ll = _filter_then_backward(
        dynamics,
        blocks,
        checkpoints,
        n_blocks,
        bs,
        "sample",
        _backward_mean,
        jnp.zeros(n_lagged, dtype),
        draws,
    )
    return KalmanSample(xs[:t], ll)


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

    init = (
        jnp.zeros(n_dims, observations.dtype),
        jnp.asarray(initial_variance, observations.dtype),
    )
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
    ms, ps, start_next = _random_walk_filter(
        observations, precisions, step_variance, initial_variance, session_starts
    )

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
    ms, ps, start_next = _random_walk_filter(
        observations, precisions, step_variance, initial_variance, session_starts
    )
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
