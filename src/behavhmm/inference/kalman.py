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
from jax import lax
from jaxtyping import Array, Bool, Float, Int

from ._kalman_parallel import parallel_ar_kalman_filter as parallel_filter
from ._kalman_parallel import parallel_ar_kalman_sample as parallel_sample
from ._kalman_parallel import parallel_ar_kalman_smoother as parallel_smoother
from ._kalman_rows import (
    filter_body,
    filter_rows,
    sample_body,
    sample_noise,
    sample_rows,
    smoother_body,
    smoother_rows,
)
from ._kalman_steps import _check, _random_walk_filter
from ._sessions import plan_for
from .hmm import resolve_method

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
    smoothed_covariances : array of shape (n_time_bins, n_lagged, n_lagged), or None
        ``Cov[s_t | y of its session]``, with ``n_lagged = nlags * latent_dim``
        (None unless ``return_covariances``).
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
# public kernels
# ----------------------------------------------------------------------------


def _method(method: str, block_size) -> str:
    """``"auto"`` resolved: parallel on accelerators unless ``block_size`` bounds the memory."""
    resolved = resolve_method(method)
    if method == "auto" and block_size is not None:
        return "sequential"
    return resolved


def ar_kalman_filter(
    dynamics: ARDynamics,
    emission: LinearEmission,
    observations: Float[Array, "n_time_bins obs_dim"],
    precisions: Float[Array, "n_time_bins obs_dim"],
    dynamics_index: Int[Array, " n_time_bins"],
    session_starts: Bool[Array, " n_time_bins"],
    *,
    method: str = "auto",
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
    method : {"auto", "sequential", "parallel"}, default "auto"
        ``"sequential"``: one scan over time, the sessions side by side in
        length-bucketed rows when ``session_starts`` is concrete (see
        docs/guide/scale.md). ``"parallel"``: associative scans of O(log T)
        depth (Särkkä and García-Fernández 2021), O(T S^3) work and
        O(T S^2) memory, ``S = nlags * latent_dim``. ``"auto"``: parallel on
        GPUs and TPUs, sequential on CPUs (and whenever ``block_size`` is given).

    Returns
    -------
    KalmanFilterResult

    Raises
    ------
    ValueError
        If the shapes are inconsistent, or ``method`` is not one of the three.
    """
    args = (dynamics, emission, observations, precisions, dynamics_index)
    _check(*args, session_starts)
    if _method(method, None) == "parallel":
        return KalmanFilterResult(*parallel_filter(*args, session_starts))
    if plan := plan_for(session_starts, observations, kernel="kalman"):
        return KalmanFilterResult(*filter_rows(plan, *args, session_starts))
    return KalmanFilterResult(*filter_body(*args, session_starts))


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
    method: str = "auto",
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
    method : {"auto", "sequential", "parallel"}, default "auto"
        As in [`ar_kalman_filter`][behavhmm.inference.kalman.ar_kalman_filter]
        (``"parallel"`` ignores ``block_size``).

    Returns
    -------
    KalmanSmootherResult

    Raises
    ------
    ValueError
        If the shapes are inconsistent, or ``method`` is not one of the three.
    """
    args = (dynamics, emission, observations, precisions, dynamics_index)
    _check(*args, session_starts)
    if _method(method, block_size) == "parallel":
        return KalmanSmootherResult(
            *parallel_smoother(*args, session_starts, return_covariances=return_covariances)
        )
    if plan := plan_for(session_starts, observations, kernel="kalman"):
        return KalmanSmootherResult(
            *smoother_rows(plan, *args, session_starts, block_size, return_covariances)
        )
    return KalmanSmootherResult(
        *smoother_body(*args, session_starts, block_size, return_covariances)
    )


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
    method: str = "auto",
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
    method : {"auto", "sequential", "parallel"}, default "auto"
        As in [`ar_kalman_filter`][behavhmm.inference.kalman.ar_kalman_filter].
        ``"parallel"`` draws by backward sampling as an associative scan of
        affine maps (the same law; other numbers for the same key) and ignores
        ``block_size``.

    Returns
    -------
    KalmanSample

    Raises
    ------
    ValueError
        If the shapes are inconsistent, or ``method`` is not one of the three.
    """
    args = (dynamics, emission, observations, precisions, dynamics_index)
    _check(*args, session_starts)
    if _method(method, block_size) == "parallel":
        out = parallel_sample(key, *args, session_starts)
    elif plan := plan_for(session_starts, observations, kernel="kalman"):
        out = sample_rows(key, plan, *args, session_starts, block_size)
    else:
        noise = sample_noise(key, session_starts, dynamics, observations.dtype)
        out = sample_body(*args, session_starts, noise, block_size)
    return KalmanSample(out.first, out.log_likelihood)


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
    """Draw the path of an isotropic random walk from its posterior (filter, backward sample).

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
