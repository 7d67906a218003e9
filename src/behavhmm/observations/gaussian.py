"""Gaussian emissions with four covariance structures and a normal-inverse-Wishart-type prior.

In state ``k`` a frame follows ``x_t ~ N(μ_k, Σ_k)``. The covariance
parameters take hmmlearn's shapes per ``covariance_type``:

| covariance_type | stored array | ``Σ_k`` |
|---|---|---|
| ``"full"`` | ``(n_states, n_features, n_features)`` | ``covariances[k]`` |
| ``"diag"`` | ``(n_states, n_features)`` | ``diag(covariances[k])`` |
| ``"spherical"`` | ``(n_states,)`` | ``covariances[k] I`` |
| ``"tied"`` | ``(n_features, n_features)`` | ``covariances`` (shared) |

**Prior.** The MAP objective adds, for every state (once for ``"tied"``),

$$
\\log p(\\mu_k, \\Sigma_k) =
 -\\tfrac{\\lambda_0}{2} (\\mu_k - m_0)^\\top \\Sigma_k^{-1} (\\mu_k - m_0)
 - \\tfrac{a}{2} \\log|\\Sigma_k| - \\tfrac12 \\operatorname{tr}(S_0 \\Sigma_k^{-1}),
$$

up to a constant: the normal-inverse-Wishart ``NIW(m_0, λ_0, ν_0, S_0)`` with
``a = ν_0 + D + 2`` (``a = ν_0 + D + 1`` when ``λ_0 = 0``); its diagonal forms
apply the same terms per feature (inverse-gamma variances), and ``"spherical"``
uses the ``"diag"`` prior with all variances of a state equal. ``a = 0`` and
``S_0 = 0`` give maximum likelihood. Covariances are constrained to
eigenvalues (variances) of at least ``min_covar``; the M-step solves the
constrained problem exactly (eigenvalue clipping, Won et al., 2013), so EM
never decreases the penalised objective.

The M-step with these parameters equals hmmlearn's ``GaussianHMM`` M-step with
``means_prior = m_0``, ``means_weight = λ_0``, ``covars_prior = S_0`` and
``covars_weight`` such that ``a = max(covars_weight - D, 0)`` (``"full"``,
``"tied"``) or ``a = max(covars_weight - 1, 0)`` (``"diag"``, ``"spherical"``).

Statistics are accumulated relative to the current means (centred) in blocks
of frames, and matrix products are pinned to full float32 precision (GPUs
default to TF32), so float32 stays accurate for 10^5+ frames.

References
----------
X. Huang, A. Acero and H.-W. Hon (2001). Spoken Language Processing, pp.
443-445 (the M-step hmmlearn implements).

J.-H. Won, J. Lim, S.-J. Kim and B. Rajaratnam (2013). Condition-number-
regularized covariance estimation. J. R. Statist. Soc. B 75(3), 427-450
(the eigenvalue-constrained maximum).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
from jaxtyping import Array, Float

from .._utils import chunked_sum, rows_per_chunk

__all__ = [
    "COVARIANCE_TYPES",
    "GaussianPrior",
    "GaussianStatistics",
    "full_covariances",
    "gaussian_log_likelihoods",
    "gaussian_sufficient_statistics",
    "gaussian_map",
    "gaussian_log_prior",
]

#: The accepted ``covariance_type`` values (hmmlearn's).
COVARIANCE_TYPES = ("full", "diag", "spherical", "tied")
_LOG_2PI = 1.8378770664093453
_HIGHEST = jax.lax.Precision.HIGHEST


class GaussianPrior(NamedTuple):
    """Prior of the Gaussian emissions (see the module notes).

    Attributes
    ----------
    mean : array of shape (n_features,)
        ``m_0``.
    mean_weight : scalar array
        ``λ_0 >= 0`` (0: flat prior on the means).
    scale : array of shape (n_features, n_features) or (n_features,)
        ``S_0``: a matrix for ``"full"``/``"tied"``, its diagonal for
        ``"diag"``/``"spherical"``.
    weight : scalar array
        ``a >= 0``, the pseudo-count of the covariance prior.
    min_covar : scalar array
        Smallest allowed eigenvalue (variance) of every covariance.
    """

    mean: Float[Array, " n_features"]
    mean_weight: Float[Array, ""]
    scale: Float[Array, " ..."]
    weight: Float[Array, ""]
    min_covar: Float[Array, ""]


class GaussianStatistics(NamedTuple):
    """Posterior-weighted statistics per state, centred at given points ``c_k``.

    Attributes
    ----------
    counts : array of shape (n_states,)
        ``N_k = sum_t w_tk``.
    first : array of shape (n_states, n_features)
        ``sum_t w_tk (x_t - c_k)``.
    second : array of shape (n_states, n_features, n_features) or (n_states, n_features)
        ``sum_t w_tk (x_t - c_k)(x_t - c_k)^T`` (``"full"``, ``"tied"``), or its
        diagonal (``"diag"``, ``"spherical"``).
    """

    counts: Float[Array, " n_states"]
    first: Float[Array, "n_states n_features"]
    second: Float[Array, "n_states ..."]


def _check_type(covariance_type: str):
    if covariance_type not in COVARIANCE_TYPES:
        raise ValueError(
            f"covariance_type must be one of {COVARIANCE_TYPES}, got {covariance_type!r}."
        )


def full_covariances(covariances, covariance_type: str, n_states: int, n_features: int):
    """Covariances in any of the four forms as full matrices.

    The result has shape (n_states, n_features, n_features).
    """
    _check_type(covariance_type)
    covariances = jnp.asarray(covariances)
    eye = jnp.eye(n_features, dtype=covariances.dtype)
    if covariance_type == "full":
        return covariances
    if covariance_type == "tied":
        return jnp.broadcast_to(covariances, (n_states, n_features, n_features))
    if covariance_type == "diag":
        return covariances[:, :, None] * eye
    return covariances[:, None, None] * eye


def _whitener(means, covariances, covariance_type):
    """``r_k(x) = W_k (x - μ_k)`` as a function of a block of frames, and ``log|Σ_k|``.

    ``||r_k(x)||^2`` is the Mahalanobis distance. Full covariances use one
    matrix product for all states (``x W^T`` stacked over states) after
    subtracting a common reference point, the mean of the means, so the
    remaining cancellation is relative to the spread of the states.
    """
    n_states, n_features = means.shape
    ref = means.mean(axis=0)
    centred_means = means - ref
    if covariance_type in ("diag", "spherical"):
        var = (
            covariances
            if covariance_type == "diag"
            else covariances[:, None] * jnp.ones_like(means)
        )
        inv_sd = jax.lax.rsqrt(var)
        log_det = jnp.sum(jnp.log(var), axis=-1)

        def whiten(x):  # (n, D) -> (n, K, D)
            return ((x - ref)[:, None, :] - centred_means[None]) * inv_sd[None]

        return whiten, log_det
    chol = jnp.linalg.cholesky(covariances)
    eye = jnp.eye(n_features, dtype=means.dtype)
    if covariance_type == "tied":
        w = jsl.solve_triangular(chol, eye, lower=True)  # (D, D) = L^{-1}
        m = jnp.matmul(centred_means, w.T, precision=_HIGHEST)  # (K, D)
        log_det = jnp.full(n_states, 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol))))

        def whiten(x):
            y = jnp.matmul(x - ref, w.T, precision=_HIGHEST)
            return y[:, None, :] - m[None]

        return whiten, log_det
    w = jsl.solve_triangular(chol, jnp.broadcast_to(eye, chol.shape), lower=True)  # (K, D, D)
    w_stack = w.reshape(n_states * n_features, n_features).T  # (D, K * D)
    m = jnp.einsum("kij,kj->ki", w, centred_means, precision=_HIGHEST)
    log_det = 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)

    def whiten(x):
        y = jnp.matmul(x - ref, w_stack, precision=_HIGHEST).reshape(
            x.shape[0], n_states, n_features
        )
        return y - m[None]

    return whiten, log_det


def gaussian_log_likelihoods(
    means: Float[Array, "n_states n_features"],
    covariances: Float[Array, " ..."],
    X: Float[Array, "n_time_bins n_features"],
    covariance_type: str = "full",
    *,
    chunk: int | None = None,
) -> Float[Array, "n_time_bins n_states"]:
    """``log N(x_t | μ_k, Σ_k)`` for every frame and state, in nats.

    Parameters
    ----------
    means : array of shape (n_states, n_features)
        ``μ_k``.
    covariances : array
        In the shape of ``covariance_type`` (see the module notes); positive
        definite.
    X : array of shape (n_time_bins, n_features)
        Frames.
    covariance_type : {"full", "diag", "spherical", "tied"}, default "full"
    chunk : int, optional
        Frames per block; by default about 64 MiB of temporaries.

    Returns
    -------
    array of shape (n_time_bins, n_states)

    Raises
    ------
    ValueError
        For an unknown ``covariance_type``.

    Notes
    -----
    Full and tied covariances go through their Cholesky factors
    ``Σ_k = L_k L_k^T``: ``||L_k^{-1}(x_t - μ_k)||^2 + log|Σ_k|``, the whitening
    of a block of frames for all states being one matrix product.
    """
    _check_type(covariance_type)
    means, covariances, X = (jnp.asarray(a) for a in (means, covariances, X))
    n_states, n_features = means.shape
    whiten, log_det = _whitener(means, covariances, covariance_type)
    const = -0.5 * (n_features * _LOG_2PI + log_det)
    if chunk is None:
        chunk = rows_per_chunk(3 * n_states * n_features * X.dtype.itemsize)

    def block(x):
        r = whiten(x)
        return const - 0.5 * jnp.sum(r * r, axis=-1)

    n_time_bins = X.shape[0]
    chunk = max(1, min(int(chunk), n_time_bins))
    n_full = n_time_bins // chunk
    parts = []
    if n_full:
        blocks = X[: n_full * chunk].reshape(n_full, chunk, n_features)
        parts.append(jax.lax.map(block, blocks).reshape(n_full * chunk, n_states))
    if n_full * chunk < n_time_bins:
        parts.append(block(X[n_full * chunk :]))
    return parts[0] if len(parts) == 1 else jnp.concatenate(parts)


def gaussian_sufficient_statistics(
    weights: Float[Array, "n_time_bins n_states"],
    X: Float[Array, "n_time_bins n_features"],
    centers: Float[Array, "n_states n_features"],
    covariance_type: str = "full",
    *,
    chunk: int | None = None,
) -> GaussianStatistics:
    """Weighted counts, first and second moments of the frames about ``centers``.

    Parameters
    ----------
    weights : array of shape (n_time_bins, n_states)
        ``p(z_t = k | data)``; zero for frames to ignore.
    X : array of shape (n_time_bins, n_features)
        Frames.
    centers : array of shape (n_states, n_features)
        Points ``c_k`` the moments are taken about (the current means: then
        the moments are small and float32 sums stay accurate).
    covariance_type : {"full", "diag", "spherical", "tied"}, default "full"
        ``"diag"`` and ``"spherical"`` keep only the diagonal second moments.
    chunk : int, optional
        Frames per block of the accumulation.

    Returns
    -------
    GaussianStatistics
    """
    _check_type(covariance_type)
    weights, X, centers = (jnp.asarray(a) for a in (weights, X, centers))
    n_states, n_features = centers.shape
    full = covariance_type in ("full", "tied")
    if chunk is None:
        per_row = (
            n_states * n_features * (n_features if full else 1) // 4 + 3 * n_states * n_features
        )
        chunk = rows_per_chunk(per_row * X.dtype.itemsize)

    def block(w, x):
        d = x[:, None, :] - centers[None]  # (n, K, D)
        wd = w[:, :, None] * d
        first = wd.sum(axis=0)
        if full:
            second = jnp.einsum("tki,tkj->kij", wd, d, precision=_HIGHEST)
        else:
            second = jnp.sum(wd * d, axis=0)
        return GaussianStatistics(w.sum(axis=0), first, second)

    return chunked_sum(block, (weights, X), chunk)


def _clip_eigenvalues(cov, floor):
    """Nearest matrices (in the M-step's objective) with eigenvalues ``>= floor``.

    The eigendecomposition runs only when some matrix needs it (``Σ - floor I``
    has no Cholesky factor); otherwise ``cov`` is returned unchanged.
    """
    eye = jnp.eye(cov.shape[-1], dtype=cov.dtype)
    needed = jnp.isnan(jnp.linalg.cholesky(cov - floor * eye)).any(axis=(-2, -1))

    def clip(c):
        vals, vecs = jnp.linalg.eigh(c)
        clipped = jnp.einsum(
            "...ij,...j,...kj->...ik", vecs, jnp.maximum(vals, floor), vecs, precision=_HIGHEST
        )
        return jnp.where(
            needed[..., None, None], 0.5 * (clipped + jnp.swapaxes(clipped, -1, -2)), c
        )

    return jax.lax.cond(needed.any(), clip, lambda c: c, cov)


def gaussian_map(
    stats: GaussianStatistics,
    centers: Float[Array, "n_states n_features"],
    prior: GaussianPrior,
    covariance_type: str,
    fallback_covariances: Float[Array, " ..."],
):
    """MAP means and covariances (the EM M-step) under the prior of the module notes.

    Parameters
    ----------
    stats : GaussianStatistics
        From
        [`gaussian_sufficient_statistics`][behavhmm.observations.gaussian.gaussian_sufficient_statistics]
        about ``centers``.
    centers : array of shape (n_states, n_features)
        The points the statistics are centred at; also the means kept for a
        state with no frames under a flat mean prior.
    prior : GaussianPrior
    covariance_type : {"full", "diag", "spherical", "tied"}
    fallback_covariances : array
        Covariances kept for a state whose update is undefined (no frames and
        ``a = 0``), in the shape of ``covariance_type``.

    Returns
    -------
    means : array of shape (n_states, n_features)
    covariances : array in the shape of ``covariance_type``

    Notes
    -----
    ``μ_k = (λ_0 m_0 + Σ_t w_tk x_t) / (λ_0 + N_k)`` and
    ``Σ_k = (S_0 + C_k) / (a + N_k)`` with
    ``C_k = Σ_t w_tk (x_t - μ_k)(x_t - μ_k)^T + λ_0 (μ_k - m_0)(μ_k - m_0)^T``
    (its diagonal for ``"diag"``; averaged over features for
    ``"spherical"``; for ``"tied"``, ``(S_0 + Σ_k C_k) / (a + Σ_k N_k)``),
    then eigenvalues (variances) below ``min_covar`` are raised to it.
    """
    _check_type(covariance_type)
    counts, first, second = stats
    dtype = counts.dtype
    n_states, n_features = centers.shape
    lam, m0 = prior.mean_weight, prior.mean
    denom_mean = lam + counts
    ok_mean = denom_mean > 0
    # shift of the mean away from its centre: μ - c = (λ_0 (m_0 - c) + Σ w (x - c)) / (λ_0 + N)
    delta = jnp.where(
        ok_mean[:, None],
        (lam * (m0 - centers) + first) / jnp.where(ok_mean, denom_mean, 1.0)[:, None],
        0.0,
    )
    means = centers + delta
    prior_diff = means - m0
    if covariance_type in ("full", "tied"):
        outer_d = delta[:, :, None] * delta[:, None, :]
        cross = first[:, :, None] * delta[:, None, :]
        scatter = second - cross - jnp.swapaxes(cross, -1, -2) + counts[:, None, None] * outer_d
        c_n = scatter + lam * prior_diff[:, :, None] * prior_diff[:, None, :]
        if covariance_type == "tied":
            denom = prior.weight + counts.sum()
            cov = (prior.scale + c_n.sum(axis=0)) / jnp.where(denom > 0, denom, 1.0)
            cov = jnp.where(denom > 0, 0.5 * (cov + cov.T), fallback_covariances)
        else:
            denom = prior.weight + counts
            ok = denom > 0
            cov = (prior.scale + c_n) / jnp.where(ok, denom, 1.0)[:, None, None]
            cov = jnp.where(
                ok[:, None, None], 0.5 * (cov + jnp.swapaxes(cov, -1, -2)), fallback_covariances
            )
        return means, _clip_eigenvalues(cov, jnp.asarray(prior.min_covar, dtype))
    scatter = second - 2.0 * first * delta + counts[:, None] * delta * delta
    c_n = scatter + lam * prior_diff * prior_diff
    denom = prior.weight + counts
    ok = denom > 0
    if covariance_type == "diag":
        var = (prior.scale + c_n) / jnp.where(ok, denom, 1.0)[:, None]
        var = jnp.where(ok[:, None], var, fallback_covariances)
    else:
        var = (prior.scale.sum() + c_n.sum(axis=-1)) / (n_features * jnp.where(ok, denom, 1.0))
        var = jnp.where(ok, var, fallback_covariances)
    return means, jnp.maximum(var, jnp.asarray(prior.min_covar, dtype))


def gaussian_log_prior(
    means: Float[Array, "n_states n_features"],
    covariances: Float[Array, " ..."],
    prior: GaussianPrior,
    covariance_type: str,
) -> Float[Array, ""]:
    """The prior's log density of the module notes, summed over states, without constants (nats).

    Parameters
    ----------
    means : array of shape (n_states, n_features)
    covariances : array in the shape of ``covariance_type``
    prior : GaussianPrior
    covariance_type : {"full", "diag", "spherical", "tied"}

    Returns
    -------
    scalar array
    """
    _check_type(covariance_type)
    means, covariances = jnp.asarray(means), jnp.asarray(covariances)
    n_states, n_features = means.shape
    diff = means - prior.mean
    lam, a = prior.mean_weight, prior.weight
    if covariance_type in ("diag", "spherical"):
        var = (
            covariances
            if covariance_type == "diag"
            else covariances[:, None] * jnp.ones_like(means)
        )
        terms = -0.5 * lam * diff * diff / var - 0.5 * a * jnp.log(var) - 0.5 * prior.scale / var
        return jnp.sum(terms)
    cov = covariances[None] if covariance_type == "tied" else covariances
    chol = jnp.linalg.cholesky(cov)
    log_det = 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)
    s_inv = jsl.cho_solve((chol, True), jnp.broadcast_to(prior.scale, cov.shape))
    trace = jnp.trace(s_inv, axis1=-2, axis2=-1)
    chol_k = jnp.broadcast_to(chol, (n_states,) + chol.shape[1:])
    sol = jsl.solve_triangular(chol_k, diff[..., None], lower=True)[..., 0]
    quad = jnp.sum(sol * sol)
    return -0.5 * lam * quad - 0.5 * jnp.sum(a * log_det + trace)
