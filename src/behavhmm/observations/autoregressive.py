"""Gaussian vector-autoregressive emissions with a matrix-normal inverse-Wishart prior.

In state ``k`` a frame follows

$$
y_t = A_k [y_{t-1}; \\dots; y_{t-L}] + b_k + \\varepsilon_t,
\\qquad \\varepsilon_t \\sim \\mathcal{N}(0, \\Sigma_k),
$$

with ``A_k`` of shape ``(n_features, nlags * n_features)`` whose column block
``l`` (0-based) multiplies ``y_{t-l-1}`` (newest lag first). Writing
``W_k = [A_k, b_k]`` and ``x̃_t = [y_{t-1}; ...; y_{t-L}; 1]``, the conjugate
prior is matrix-normal inverse-Wishart (MNIW):

$$
\\Sigma_k \\sim \\mathcal{IW}(\\nu_0, S_0), \\qquad
W_k \\mid \\Sigma_k \\sim \\mathcal{MN}(M_0, \\Sigma_k, K_0),
$$

i.e. ``vec(W_k) ~ N(vec(M_0), K_0 ⊗ Σ_k)``. Everything here is a pure JAX
function of arrays; statistics are accumulated over time in chunks so memory
stays bounded.

References
----------
E. B. Fox, E. B. Sudderth, M. I. Jordan and A. S. Willsky (2011). Bayesian
nonparametric inference of switching dynamic linear models. IEEE Trans.
Signal Processing 59(4), 1569-1585.

A. B. Wiltschko et al. (2015). Mapping sub-second structure in mouse
behavior. Neuron 88(6), 1121-1135.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
from jax.scipy.special import gammaln, multigammaln
from jaxtyping import Array, Float

from .._utils import chunked_sum, flat_random, log_gamma_variates, rows_per_chunk

__all__ = [
    "MNIWPrior",
    "ARStatistics",
    "default_mniw_prior",
    "ar_log_likelihoods",
    "ar_mahalanobis",
    "ar_mahalanobis_all",
    "ar_sufficient_statistics",
    "ar_state_statistics",
    "mniw_map",
    "mniw_sample",
    "sample_inverse_wishart",
    "mniw_log_prior",
    "ar_predict_mean",
]

_LOG_2PI = 1.8378770664093453
#: Bytes of outer products per block of the Gibbs update's scatter-adds (`ar_conditioned`).
_SCATTER_CHUNK_BYTES = 2**24
#: Frames per block of :func:`ar_state_statistics` (its frames sorted by state).
_SORTED_BLOCK = 256


class MNIWPrior(NamedTuple):
    """Matrix-normal inverse-Wishart prior on ``(W, Σ)``.

    Attributes
    ----------
    mean : array of shape (n_features, n_regressors)
        ``M_0``; ``n_regressors = nlags * n_features + 1`` (last column: bias).
    col_precision : array of shape (n_regressors, n_regressors)
        ``K_0^{-1}``, the inverse column covariance.
    scale : array of shape (n_features, n_features)
        ``S_0``, the inverse-Wishart scale matrix.
    dof : scalar array
        ``ν_0``, the inverse-Wishart degrees of freedom (``> n_features - 1``).
    """

    mean: Float[Array, "n_features n_regressors"]
    col_precision: Float[Array, "n_regressors n_regressors"]
    scale: Float[Array, "n_features n_features"]
    dof: Float[Array, ""]


class ARStatistics(NamedTuple):
    """Weighted sufficient statistics per state.

    Attributes
    ----------
    outer : array of shape (n_states, n_features + n_regressors, n_features + n_regressors)
        ``sum_t w_tk z_t z_t^T`` with ``z_t = [y_t; x_t; 1]``.
    counts : array of shape (n_states,)
        ``sum_t w_tk``.
    """

    outer: Float[Array, "n_states n_stat n_stat"]
    counts: Float[Array, " n_states"]


def default_mniw_prior(
    n_features: int,
    nlags: int,
    *,
    scale: float = 0.01,
    dof: float | None = None,
    coef_variance: float = 10.0,
    dtype=None,
) -> MNIWPrior:
    """The MoSeq-style prior: ``ν_0 = D + 2``, ``S_0 = scale I``, ``K_0 = coef_variance I``.

    ``M_0`` is the identity on the newest lag (a random walk) and zero on the
    older lags and the bias.

    Parameters
    ----------
    n_features : int
        ``D``, the dimension of a frame.
    nlags : int
        ``L``, the number of autoregressive lags (0 gives a Gaussian HMM).
    scale : float, default 0.01
        ``S_0 = scale * I`` (in squared units of the data).
    dof : float, optional
        ``ν_0``; default ``n_features + 2``.
    coef_variance : float, default 10.0
        ``K_0 = coef_variance * I``.
    dtype : dtype, optional
        Floating dtype of the arrays.

    Returns
    -------
    MNIWPrior
    """
    n_regressors = nlags * n_features + 1
    mean = jnp.zeros((n_features, n_regressors), dtype)
    if nlags > 0:
        mean = mean.at[:, :n_features].set(jnp.eye(n_features, dtype=dtype))
    dof = n_features + 2.0 if dof is None else float(dof)
    return MNIWPrior(
        mean=mean,
        col_precision=jnp.eye(n_regressors, dtype=dtype) / coef_variance,
        scale=scale * jnp.eye(n_features, dtype=dtype),
        dof=jnp.asarray(dof, dtype),
    )


def _whitened_weights(coef, intercept, covariances):
    """Per-state ``G_k = L_k^{-1} [I, -A_k, -b_k]`` and ``log|Σ_k|``.

    Then ``||G_k [y; x; 1]||^2`` is the Mahalanobis distance of the residual.
    """
    n_states, n_features, _ = coef.shape
    chol = jnp.linalg.cholesky(covariances)
    eye = jnp.broadcast_to(
        jnp.eye(n_features, dtype=coef.dtype), (n_states, n_features, n_features)
    )
    full = jnp.concatenate([eye, -coef, -intercept[..., None]], axis=-1)
    g = jsl.solve_triangular(chol, full, lower=True)
    log_det = 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)
    return g, log_det


def ar_log_likelihoods(
    coef: Float[Array, "n_states n_features n_lagged"],
    intercept: Float[Array, "n_states n_features"],
    covariances: Float[Array, "n_states n_features n_features"],
    y: Float[Array, "n_time_bins n_features"],
    x: Float[Array, "n_time_bins n_lagged"],
    *,
    dof: Float[Array, " n_states"] | None = None,
    chunk: int | None = None,
) -> Float[Array, "n_time_bins n_states"]:
    """``log N(y_t | A_k x_t + b_k, Σ_k)`` (or Student-t) for every frame and state.

    Parameters
    ----------
    coef : array of shape (n_states, n_features, nlags * n_features)
        ``A_k``, newest lag first.
    intercept : array of shape (n_states, n_features)
        ``b_k``.
    covariances : array of shape (n_states, n_features, n_features)
        ``Σ_k``, symmetric positive definite (the scale matrix for Student-t).
    y : array of shape (n_time_bins, n_features)
        Frames to score.
    x : array of shape (n_time_bins, nlags * n_features)
        Their lags, ``[y_{t-1}, ..., y_{t-L}]`` concatenated.
    dof : array of shape (n_states,), optional
        Degrees of freedom ``ν_k``: multivariate Student-t emissions
        ``t_ν(y_t | A_k x_t + b_k, Σ_k)``, the Gaussian scale mixture with
        precision ``τ ~ Gamma(ν/2, ν/2)``. None: Gaussian.
    chunk : int, optional
        Frames per block; by default about 64 MiB of temporaries.

    Returns
    -------
    array of shape (n_time_bins, n_states)
        Log-densities in nats.
    """
    coef, intercept, covariances, y, x = (
        jnp.asarray(a) for a in (coef, intercept, covariances, y, x)
    )
    n_states, n_features, _ = coef.shape
    g, log_det = _whitened_weights(coef, intercept, covariances)
    g_flat = g.reshape(n_states * n_features, -1).T  # (n_stat, K * D)
    z = jnp.concatenate([y, x, jnp.ones((y.shape[0], 1), y.dtype)], axis=1)
    if chunk is None:
        chunk = rows_per_chunk(4 * n_states * n_features * z.dtype.itemsize)
    if dof is None:
        const = -0.5 * (n_features * _LOG_2PI + log_det)

        def one_row(z_t):
            r = (z_t @ g_flat).reshape(n_states, n_features)
            return const - 0.5 * jnp.sum(r * r, axis=-1)

    else:
        dof = jnp.asarray(dof, coef.dtype)
        const = (
            gammaln(0.5 * (dof + n_features))
            - gammaln(0.5 * dof)
            - 0.5 * n_features * jnp.log(dof * jnp.pi)
            - 0.5 * log_det
        )

        def one_row(z_t):
            r = (z_t @ g_flat).reshape(n_states, n_features)
            return const - 0.5 * (dof + n_features) * jnp.log1p(jnp.sum(r * r, axis=-1) / dof)

    return jax.lax.map(one_row, z, batch_size=min(chunk, z.shape[0]))


def ar_mahalanobis_all(coef, intercept, covariances, y, x, *, chunk: int | None = None):
    """Squared Mahalanobis distances of every frame's residual under every state.

    Returns
    -------
    array of shape (n_time_bins, n_states)
    """
    coef, intercept, covariances, y, x = (
        jnp.asarray(a) for a in (coef, intercept, covariances, y, x)
    )
    n_states, n_features, _ = coef.shape
    g, _ = _whitened_weights(coef, intercept, covariances)
    g_flat = g.reshape(n_states * n_features, -1).T
    z = jnp.concatenate([y, x, jnp.ones((y.shape[0], 1), y.dtype)], axis=1)
    if chunk is None:
        chunk = rows_per_chunk(4 * n_states * n_features * z.dtype.itemsize)

    def one_row(z_t):
        r = (z_t @ g_flat).reshape(n_states, n_features)
        return jnp.sum(r * r, axis=-1)

    return jax.lax.map(one_row, z, batch_size=min(chunk, z.shape[0]))


def ar_sufficient_statistics(
    weights: Float[Array, "n_time_bins n_states"],
    y: Float[Array, "n_time_bins n_features"],
    x: Float[Array, "n_time_bins n_lagged"],
    *,
    counts_weights: Float[Array, "n_time_bins n_states"] | None = None,
    chunk: int | None = None,
) -> ARStatistics:
    """Posterior-weighted outer products ``sum_t w_tk z_t z_t^T`` and counts.

    Parameters
    ----------
    weights : array of shape (n_time_bins, n_states)
        ``p(z_t = k | data)`` (zero for frames to ignore).
    y, x : arrays
        Frames and their lags as in
        [`ar_log_likelihoods`][behavhmm.observations.autoregressive.ar_log_likelihoods].
    counts_weights : array of shape (n_time_bins, n_states), optional
        Weights of the counts, if they differ from ``weights`` (Student-t
        emissions: ``weights = p(z) E[τ]`` for the outer products, ``p(z)``
        for the counts).
    chunk : int, optional
        Frames per block of the accumulation.

    Returns
    -------
    ARStatistics
    """
    weights, y, x = (jnp.asarray(a) for a in (weights, y, x))
    z = jnp.concatenate([y, x, jnp.ones((y.shape[0], 1), y.dtype)], axis=1)
    n_states, n_stat = weights.shape[1], z.shape[1]
    if chunk is None:
        chunk = rows_per_chunk(2 * n_states * n_stat * z.dtype.itemsize)

    cw = weights if counts_weights is None else jnp.asarray(counts_weights)

    def block(w, c, zb):
        return ARStatistics(jnp.einsum("tk,ti,tj->kij", w, zb, zb), c.sum(0))

    return chunked_sum(block, (weights, cw, z), chunk)


def ar_state_statistics(
    states, y, x, n_states: int, *, weights=None, counts_weights=None, chunk: int | None = None
) -> ARStatistics:
    """Sufficient statistics for a hard state assignment (Gibbs sampling).

    Equivalent to :func:`ar_sufficient_statistics` with one-hot weights, but
    O(T q^2) instead of O(T K q^2): the frames are sorted by state into blocks that
    each hold one state's frames (a state's last block is padded with zero
    weights), each block's weighted outer products are summed by one matrix
    product, and the blocks' sums are added to their states' totals. On a 2-core CPU
    (T = 983,040, q = 41, K = 100) this takes 0.37 s where a scatter-add of every
    frame's outer product took 0.75 s; on a GPU it avoids a scatter-add whose
    updates collide on K targets.

    Parameters
    ----------
    states : int array of shape (n_time_bins,)
        State of each frame, in ``[0, n_states)``.
    y, x : arrays
        Frames and their lags as in
        [`ar_log_likelihoods`][behavhmm.observations.autoregressive.ar_log_likelihoods].
    n_states : int
        Number of states.
    weights : array of shape (n_time_bins,), optional
        Per-frame weight of the outer products (0 drops a frame; for Student-t
        emissions the auxiliary precisions). Default 1.
    counts_weights : array of shape (n_time_bins,), optional
        Per-frame weight of the counts; default ``weights`` (for Student-t
        emissions pass the 0/1 frame mask).
    chunk : int, optional
        Frames per block of the sorted frames (default 256). A state's frames fill
        ``ceil(n_k / chunk)`` blocks, so the padding is at most ``K (chunk - 1)``
        frames.

    Returns
    -------
    ARStatistics
    """
    states, y, x = (jnp.asarray(a) for a in (states, y, x))
    z = jnp.concatenate([y, x, jnp.ones((y.shape[0], 1), y.dtype)], axis=1)
    n_time_bins, n_stat = z.shape
    w = jnp.ones(n_time_bins, y.dtype) if weights is None else jnp.asarray(weights, y.dtype)
    cw = w if counts_weights is None else jnp.asarray(counts_weights, y.dtype)
    block = _SORTED_BLOCK if chunk is None else max(1, int(chunk))
    states = states.astype(jnp.int32)
    # counting layout: state k owns slots [offset_k, offset_k + n_k), rounded up to blocks
    n_k = jnp.zeros(n_states, jnp.int32).at[states].add(1)
    slots_k = -(-n_k // block) * block
    offset_k = jnp.cumsum(slots_k) - slots_k
    first_k = jnp.cumsum(n_k) - n_k  # where state k begins among the frames sorted by state
    n_slots = -(-(n_time_bins + n_states * (block - 1)) // block) * block
    slot = jnp.arange(n_slots, dtype=jnp.int32)
    owner = jnp.clip(jnp.searchsorted(offset_k, slot, side="right") - 1, 0, n_states - 1)
    rank = slot - offset_k[owner]
    by_state = jnp.argsort(states, stable=True)
    frame = by_state[jnp.clip(first_k[owner] + rank, 0, n_time_bins - 1)]
    w_slot = jnp.where(rank < n_k[owner], w[frame], 0.0).reshape(-1, block, 1)
    z_slot = z[frame].reshape(-1, block, n_stat)
    per_block = jnp.einsum(
        "bti,btj->bij", w_slot * z_slot, z_slot, precision=jax.lax.Precision.HIGHEST
    )
    outer = jnp.zeros((n_states, n_stat, n_stat), z.dtype).at[owner[::block]].add(per_block)
    counts = jnp.zeros(n_states, z.dtype).at[states].add(cw)
    return ARStatistics(outer, counts)


def ar_mahalanobis(coef, intercept, covariances, y, x, states):
    """Squared Mahalanobis distance of each frame's residual under its own state.

    Parameters
    ----------
    coef, intercept, covariances : arrays
        Per-state parameters.
    y, x : arrays of shape (n_time_bins, ...)
        Frames and lags.
    states : int array of shape (n_time_bins,)

    Returns
    -------
    array of shape (n_time_bins,)
        ``(y_t - A x_t - b)^T Σ^{-1} (y_t - A x_t - b)`` under state ``states[t]``.
    """
    g, _ = _whitened_weights(coef, intercept, covariances)
    z = jnp.concatenate([y, x, jnp.ones((y.shape[0], 1), y.dtype)], axis=1)
    r = jnp.einsum("tdq,tq->td", g[states], z)
    return jnp.sum(r * r, axis=-1)


def sample_inverse_wishart(key, dof, scale):
    """Draw ``Σ ~ IW(dof, scale)`` for a batch of states (Bartlett decomposition).

    Parameters
    ----------
    key : jax.random key
    dof : array of shape (n_states,)
        Degrees of freedom (``> n_features - 1``).
    scale : array of shape (n_states, n_features, n_features)
        Scale matrices (symmetric positive definite).

    Returns
    -------
    array of shape (n_states, n_features, n_features)
        ``E[Σ] = scale / (dof - n_features - 1)``.

    Notes
    -----
    ``Σ^{-1} ~ W(dof, scale^{-1})``: with ``scale = U U^T`` and the Bartlett
    factor ``A`` (lower triangular, ``A_ii^2 ~ χ²(dof - i)``, ``A_ij ~ N(0, 1)``
    below the diagonal), ``Σ = (U A^{-T})(U A^{-T})^T``.
    """
    n_states, n_features, _ = scale.shape
    k_chi, k_norm = jax.random.split(key)
    shape_param = 0.5 * (dof[:, None] - jnp.arange(n_features, dtype=scale.dtype))
    chi2 = 2.0 * jnp.exp(log_gamma_variates(k_chi, shape_param))
    normals = flat_random(
        jax.random.normal, k_norm, (n_states, n_features, n_features), scale.dtype
    )
    bartlett = jnp.tril(normals, -1) + jnp.sqrt(chi2)[:, :, None] * jnp.eye(
        n_features, dtype=scale.dtype
    )
    chol = jnp.linalg.cholesky(scale)
    eye = jnp.broadcast_to(jnp.eye(n_features, dtype=scale.dtype), scale.shape)
    a_inv = jsl.solve_triangular(bartlett, eye, lower=True)
    factor = chol @ jnp.swapaxes(a_inv, -1, -2)
    sigma = factor @ jnp.swapaxes(factor, -1, -2)
    return 0.5 * (sigma + jnp.swapaxes(sigma, -1, -2))


def mniw_sample(key, stats: ARStatistics, prior: MNIWPrior):
    """Draw ``(W_k, Σ_k)`` from the MNIW posterior of every state (the Gibbs step).

    Parameters
    ----------
    key : jax.random key
    stats : ARStatistics
        Statistics of the frames assigned to each state.
    prior : MNIWPrior

    Returns
    -------
    coef : array of shape (n_states, n_features, nlags * n_features)
    intercept : array of shape (n_states, n_features)
    covariances : array of shape (n_states, n_features, n_features)

    Notes
    -----
    The posterior is ``Σ ~ IW(ν_0 + n, S_n)`` and
    ``W | Σ ~ MN(M_n, Σ, S'_xx^{-1})`` with ``M_n = S'_yx S'_xx^{-1}`` and
    ``S_n = S_0 + S'_yy - M_n S'_yx^T`` (notation of
    [`mniw_map`][behavhmm.observations.autoregressive.mniw_map]); states with
    no frames draw from the prior.
    """
    n_features, n_regressors = prior.mean.shape
    mean, s_n, sxx_n = _posterior_terms(stats, prior)
    k_sigma, k_w = jax.random.split(key)
    sigma = sample_inverse_wishart(k_sigma, prior.dof + stats.counts, s_n)
    chol_sigma = jnp.linalg.cholesky(sigma)
    chol_x = jnp.linalg.cholesky(sxx_n)
    z = flat_random(jax.random.normal, k_w, mean.shape, mean.dtype)
    # W = M + L_Σ Z L_x^{-1}: row covariance Σ, column covariance S'_xx^{-1}
    right = jnp.swapaxes(
        jsl.solve_triangular(chol_x, jnp.swapaxes(z, -1, -2), lower=True, trans=1), -1, -2
    )
    w = mean + chol_sigma @ right
    return w[..., :-1], w[..., -1], sigma


def _posterior_terms(stats: ARStatistics, prior: MNIWPrior):
    n_features = prior.mean.shape[0]
    s = stats.outer
    syy = s[:, :n_features, :n_features]
    syx = s[:, :n_features, n_features:]
    sxx = s[:, n_features:, n_features:]
    m0k0 = prior.mean @ prior.col_precision
    sxx_n = sxx + prior.col_precision
    syx_n = syx + m0k0
    syy_n = syy + m0k0 @ prior.mean.T
    # W = Syx_n Sxx_n^{-1}, through a Cholesky solve of the symmetric Sxx_n
    chol = jnp.linalg.cholesky(sxx_n)
    w = jnp.swapaxes(jsl.cho_solve((chol, True), jnp.swapaxes(syx_n, -1, -2)), -1, -2)
    s_n = prior.scale + syy_n - w @ jnp.swapaxes(syx_n, -1, -2)
    s_n = 0.5 * (s_n + jnp.swapaxes(s_n, -1, -2))
    return w, s_n, sxx_n


def mniw_map(stats: ARStatistics, prior: MNIWPrior):
    """Joint posterior mode of ``(W_k, Σ_k)`` for every state (the EM M-step).

    Parameters
    ----------
    stats : ARStatistics
        Weighted statistics from
        [`ar_sufficient_statistics`][behavhmm.observations.autoregressive.ar_sufficient_statistics].
    prior : MNIWPrior
        The prior.

    Returns
    -------
    coef : array of shape (n_states, n_features, nlags * n_features)
    intercept : array of shape (n_states, n_features)
    covariances : array of shape (n_states, n_features, n_features)

    Notes
    -----
    With ``S_xx' = S_xx + K_0^{-1}``, ``S_yx' = S_yx + M_0 K_0^{-1}`` and
    ``S_yy' = S_yy + M_0 K_0^{-1} M_0^T``, the mode is ``W = S_yx' S_xx'^{-1}``
    and ``Σ = (S_0 + S_yy' - W S_yx'^T) / (ν_0 + n + D + 1 + p)``, where ``n``
    is the weighted count and ``p`` the number of regressors. It maximises
    the expected complete-data log-likelihood plus the log prior, so MAP-EM
    never decreases the log joint.
    """
    n_features, n_regressors = prior.mean.shape
    w, s_n, _ = _posterior_terms(stats, prior)
    denom = prior.dof + stats.counts + n_features + 1 + n_regressors
    covariances = s_n / denom[:, None, None]
    return w[..., :-1], w[..., -1], covariances


def mniw_log_prior(
    coef, intercept, covariances, prior: MNIWPrior, *, include_constant: bool = True
) -> Float[Array, ""]:
    """``sum_k log MNIW(W_k, Σ_k)`` in nats.

    Parameters
    ----------
    coef, intercept, covariances : arrays
        Per-state parameters as in
        [`ar_log_likelihoods`][behavhmm.observations.autoregressive.ar_log_likelihoods].
    prior : MNIWPrior
        The prior.
    include_constant : bool, default True
        Include the terms that depend on the prior alone (normalisers).

    Returns
    -------
    scalar array
    """
    coef, intercept, covariances = (jnp.asarray(a) for a in (coef, intercept, covariances))
    n_features, n_regressors = prior.mean.shape
    nu = prior.dof
    w = jnp.concatenate([coef, intercept[..., None]], axis=-1)
    chol = jnp.linalg.cholesky(covariances)
    log_det = 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)
    _, log_det_s0 = jnp.linalg.slogdet(prior.scale)
    _, log_det_k0inv = jnp.linalg.slogdet(prior.col_precision)
    # inverse-Wishart
    sigma_inv_s0 = jsl.cho_solve((chol, True), jnp.broadcast_to(prior.scale, covariances.shape))
    log_iw = -0.5 * (nu + n_features + 1) * log_det - 0.5 * jnp.trace(
        sigma_inv_s0, axis1=-2, axis2=-1
    )
    # matrix normal
    diff = w - prior.mean
    quad = jnp.trace(
        prior.col_precision @ jnp.swapaxes(diff, -1, -2) @ jsl.cho_solve((chol, True), diff),
        axis1=-2,
        axis2=-1,
    )
    log_mn = -0.5 * n_regressors * log_det - 0.5 * quad
    total = jnp.sum(log_iw + log_mn)
    if include_constant:
        n_states = coef.shape[0]
        constant = (
            0.5 * nu * log_det_s0
            - 0.5 * nu * n_features * jnp.log(2.0)
            - multigammaln(0.5 * nu, n_features)
            - 0.5 * n_features * n_regressors * _LOG_2PI
            + 0.5 * n_features * log_det_k0inv
        )
        total += n_states * constant
    return total


def ar_predict_mean(coef, intercept, lags):
    """``A_k x + b_k`` for one state's parameters and one lag vector."""
    return coef @ lags + intercept
