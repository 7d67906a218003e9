"""Keypoint emissions of the keypoint SLDS: heading, centroid and noise conditionals.

Keypoint ``n`` of frame ``t`` (``n_dims`` = 2 or 3 coordinates) is

$$
y_{t,n} = R(h_t)\\, p_{t,n} + v_t + e_{t,n}, \\qquad
e_{t,n} \\sim \\mathcal{N}(0, s_{t,n} \\sigma^2_n I),
$$

where ``p_t = C x_t + d`` (reshaped to keypoints) is the egocentric pose,
``R(h)`` rotates the x-y plane by the heading ``h`` (about the vertical z
axis in 3-D), ``v_t`` is the centroid, ``σ²_n`` a per-keypoint noise variance
and ``s_{t,n}`` a per-frame scale whose prior follows the tracking confidence:
``s_{t,n} ~ scaled-Inv-χ²(ν_s, s0_{t,n})`` and ``σ²_n ~ Inv-Gamma(a_0, b_0)``.
With a uniform prior, the heading's conditional is von Mises; the scales'
conditionals are inverse gamma.

References
----------
C. Weinreb et al. (2024). Keypoint-MoSeq: parsing behavior by linking point
tracking to pose dynamics. Nature Methods 21, 1329-1339 (and its
supplementary methods).

D. J. Best and N. I. Fisher (1979). Efficient simulation of the von Mises
distribution. J. Royal Statistical Society C 28(2), 152-157.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._precision import blocked_sum
from .._utils import log_gamma_variates, rows_per_chunk

__all__ = [
    "rotate_xy",
    "sample_von_mises",
    "heading_conditional",
    "noise_scale_conditional",
    "noise_variance_conditional",
    "sample_inverse_gamma",
    "keypoint_log_likelihood",
    "draw_by_rows",
]

#: Proposals per variate of the von Mises sampler (acceptance > 0.65 each).
VON_MISES_PROPOSALS = 32
#: Above this concentration the von Mises is drawn as a normal (error below 1e-3 in the variance).
VON_MISES_NORMAL_KAPPA = 1e3


def rotate_xy(
    points: Float[Array, "n_time_bins n_keypoints n_dims"], angle: Float[Array, " n_time_bins"]
):
    """Rotate the x-y components of every frame counter-clockwise by ``angle`` (radians).

    Parameters
    ----------
    points : array of shape (n_time_bins, n_keypoints, n_dims)
        ``n_dims`` 2 or 3 (z is left unchanged).
    angle : array of shape (n_time_bins,)

    Returns
    -------
    array of the shape of ``points``
    """
    c, s = jnp.cos(angle)[:, None], jnp.sin(angle)[:, None]
    x, y = points[..., 0], points[..., 1]
    xy = jnp.stack([c * x - s * y, s * x + c * y], axis=-1)
    return jnp.concatenate([xy, points[..., 2:]], axis=-1)


def sample_von_mises(key, mean, concentration):
    """Draw from von Mises distributions elementwise (Best & Fisher, 1979), without loops.

    Every variate gets :data:`VON_MISES_PROPOSALS` proposals at once and keeps
    the first accepted one (fixed shape, compiles fast). Concentrations above
    :data:`VON_MISES_NORMAL_KAPPA` use the normal limit ``N(mean, 1/κ)``, which
    is float32-safe; concentration 0 gives the uniform distribution.

    Parameters
    ----------
    key : jax.random key
    mean : array
        Mean directions (radians).
    concentration : array
        ``κ >= 0``, broadcast against ``mean``.

    Returns
    -------
    array
        Angles in (-π, π].
    """
    mean, kappa = jnp.broadcast_arrays(
        jnp.asarray(mean), jnp.asarray(concentration, jnp.result_type(mean))
    )
    dtype = mean.dtype
    k_prop, k_acc, k_sign, k_norm = jax.random.split(key, 4)
    small = kappa < VON_MISES_NORMAL_KAPPA
    kap = jnp.where(small, jnp.maximum(kappa, 1e-6), 1.0)
    tau = 1.0 + jnp.sqrt(1.0 + 4.0 * kap * kap)
    rho = (tau - jnp.sqrt(2.0 * tau)) / (2.0 * kap)
    r = (1.0 + rho * rho) / (2.0 * rho)
    shape = (VON_MISES_PROPOSALS,) + mean.shape
    u1 = jax.random.uniform(k_prop, shape, dtype)
    u2 = jax.random.uniform(k_acc, shape, dtype, minval=jnp.finfo(dtype).tiny)
    z = jnp.cos(jnp.pi * u1)
    f = (1.0 + r * z) / (r + z)
    c = kap * (r - f)
    accept = (c * (2.0 - c) - u2 > 0) | (jnp.log(c / u2) + 1.0 - c >= 0)
    first = jnp.argmax(accept, axis=0)
    f_acc = jnp.take_along_axis(f, first[None], axis=0)[0]
    sign = jnp.where(jax.random.uniform(k_sign, mean.shape, dtype) < 0.5, -1.0, 1.0)
    theta = sign * jnp.arccos(jnp.clip(f_acc, -1.0, 1.0))
    theta = jnp.where(jnp.any(accept, axis=0), theta, 0.0)
    normal = jax.random.normal(k_norm, mean.shape, dtype) / jnp.sqrt(jnp.where(small, 1.0, kappa))
    out = mean + jnp.where(small, theta, normal)
    return jnp.arctan2(jnp.sin(out), jnp.cos(out))


def draw_by_rows(draw, key, arrays, *, bytes_per_row: int, chunk: int | None = None):
    """Apply ``draw(key_t, *row_t)`` to every row (frame) in chunks, so memory stays bounded.

    The loop-free samplers hold many proposals per variate; drawing a long
    recording at once would hold ``proposals x n_time_bins x ...`` values.
    Row ``t`` uses ``fold_in(key, t)``, so the result does not depend on the
    chunk size.

    Parameters
    ----------
    draw : callable
        ``draw(key, *rows) -> array`` for one row.
    key : jax.random key
    arrays : sequence of arrays with a leading time axis
    bytes_per_row : int
        Temporary bytes one row needs (to size the chunks).
    chunk : int, optional
        Rows per chunk; default about 64 MiB of temporaries.

    Returns
    -------
    array with the leading time axis
    """
    n = arrays[0].shape[0]
    chunk = min(chunk or rows_per_chunk(bytes_per_row), n)
    rows = jnp.arange(n)
    return jax.lax.map(
        lambda a: draw(jax.random.fold_in(key, a[0]), *a[1:]), (rows, *arrays), batch_size=chunk
    )


def heading_conditional(centred, pose, precision):
    """Von Mises parameters of ``p(h_t | rest)`` under a uniform prior.

    Parameters
    ----------
    centred : array of shape (n_time_bins, n_keypoints, n_dims)
        ``y_{t,n} - v_t``.
    pose : array of shape (n_time_bins, n_keypoints, n_dims)
        Egocentric pose ``p_{t,n}``.
    precision : array of shape (n_time_bins, n_keypoints)
        ``1 / (s_{t,n} σ²_n)`` (0 for missing keypoints).

    Returns
    -------
    mean : array of shape (n_time_bins,)
        ``atan2(S_s, S_c)`` with ``S_c = Σ_n w (a·p)``, ``S_s = Σ_n w (a_y p_x - a_x p_y)``.
    concentration : array of shape (n_time_bins,)
        ``sqrt(S_c² + S_s²)``.

    Notes
    -----
    ``-Σ_n w_n ||a_n - R(h) p_n||² / 2 = const + S_c cos h + S_s sin h``: only the
    x-y components depend on ``h``.
    """
    ax, ay, px, py = centred[..., 0], centred[..., 1], pose[..., 0], pose[..., 1]
    s_c = jnp.sum(precision * (ax * px + ay * py), axis=1)
    s_s = jnp.sum(precision * (ay * px - ax * py), axis=1)
    return jnp.arctan2(s_s, s_c), jnp.hypot(s_c, s_s)


def sample_inverse_gamma(key, shape, scale):
    """``scale / G`` with ``G ~ Gamma(shape, 1)``: an Inv-Gamma(shape, scale) draw, elementwise."""
    shape, scale = jnp.broadcast_arrays(jnp.asarray(shape), jnp.asarray(scale))
    return jnp.exp(jnp.log(scale) - log_gamma_variates(key, shape))


def noise_scale_conditional(sq_resid, sigmasq, prior_scale, prior_dof, observed, n_dims: int):
    """Inverse-gamma parameters of ``p(s_{t,n} | rest)``.

    Parameters
    ----------
    sq_resid : array of shape (n_time_bins, n_keypoints)
        ``||y_{t,n} - R(h_t) p_{t,n} - v_t||²``.
    sigmasq : array of shape (n_keypoints,)
    prior_scale : array of shape (n_time_bins, n_keypoints)
        ``s0_{t,n}`` (from the confidence).
    prior_dof : scalar
        ``ν_s``.
    observed : array of shape (n_time_bins, n_keypoints)
        1 for observed keypoints, 0 for missing (which keep their prior).
    n_dims : int

    Returns
    -------
    shape, scale : arrays of shape (n_time_bins, n_keypoints)
        ``s ~ Inv-Gamma((ν_s + D)/2, (ν_s s0 + ||e||²/σ²)/2)`` where observed.
    """
    shape = 0.5 * (prior_dof + n_dims * observed)
    scale = 0.5 * (prior_dof * prior_scale + observed * sq_resid / sigmasq[None, :])
    return shape, scale


def noise_variance_conditional(sq_resid, scales, observed, prior_shape, prior_scale, n_dims: int):
    """Inverse-gamma parameters of ``p(σ²_n | rest)``.

    Returns
    -------
    shape, scale : arrays of shape (n_keypoints,)
        ``Inv-Gamma(a_0 + D N_n / 2, b_0 + Σ_t ||e_{t,n}||² / (2 s_{t,n}))``.
    """
    shape = prior_shape + 0.5 * n_dims * blocked_sum(observed)
    scale = prior_scale + 0.5 * blocked_sum(observed * sq_resid / scales)
    return shape, scale


def keypoint_log_likelihood(sq_resid, variance, observed, n_dims: int):
    """``Σ log N(y_{t,n} | mean, variance I)`` over observed keypoints, in nats."""
    ll = -0.5 * (n_dims * jnp.log(2 * jnp.pi * variance) + sq_resid / variance)
    return jnp.sum(blocked_sum(jnp.where(observed > 0, ll, 0.0)))
