"""MNIW updates of autoregressive emissions that hold in float32 at millions of frames.

The textbook route (`mniw_map`, `mniw_sample` on raw statistics
``sum_t z_t z_t^T`` with ``z_t = [y_t; x_t; 1]``) fails in float32 on long
recordings of smooth trajectories: the lags ``y_{t-1}, ..., y_{t-L}`` are
nearly collinear, so ``S_xx`` is ill-conditioned, and the scatter
``S_0 + S_yy - W S_yx^T`` cancels down to the residual variance (about
``1e-6`` of the total on whitened keypoint PCs), below float32's resolution
once millions of frames are summed. The functions here compute the same
posterior (identical in exact arithmetic) from well-conditioned quantities:

1. **A conditioned regressor basis.** With ``x̃_t = [x_t; 1]``, the
   regressors are ``u_t = T x̃_t = [y_{t-1} - c; y_{t-1} - y_{t-2}; ...;
   y_{t-L+1} - y_{t-L}; 1]``: the newest lag centred on the weighted mean
   ``c`` of the frames, the older lags as differences. The targets are the
   innovations ``e_t = y_t - M_0 x̃_t`` around the prior mean (``y_t - y_{t-1}``
   for the default random-walk prior). In this basis the prior is
   ``MN(0, Σ, (T K_0^{-1} T^T)^{-1})`` on ``Δ = (W - M_0) T^{-1}``, and
   ``W = M_0 + Δ T``.
2. **Blocked sums.** Every sum over frames is a sum of per-block sums
   (``behavhmm._utils.chunked_sum``), ``block_size`` frames per block.
3. **Residual-based scatter.** ``S_n = S_0 + sum_t w_t r_t r_t^T +
   Δ_n K_0'^{-1} Δ_n^T`` with the residuals ``r_t = e_t - Δ_n u_t`` of a second
   pass over the frames, instead of ``S_0 + S_yy' - W S_yx'^T``.

References
----------
E. B. Fox, E. B. Sudderth, M. I. Jordan and A. S. Willsky (2011). Bayesian
nonparametric inference of switching dynamic linear models. IEEE Trans.
Signal Processing 59(4), 1569-1585.

N. J. Higham (2002). Accuracy and Stability of Numerical Algorithms, 2nd ed.,
SIAM (chapter 4, summation; blocked and pairwise sums).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import numpy as np
from jaxtyping import Array, Float

from .._utils import chunked_sum, flat_random, rows_per_chunk
from .autoregressive import (
    _SCATTER_CHUNK_BYTES,
    ARStatistics,
    MNIWPrior,
    ar_state_statistics,
    sample_inverse_wishart,
)

__all__ = ["ConditionedDesign", "conditioned_design", "ar_map_update", "ar_sample_update"]

_HIGHEST = jax.lax.Precision.HIGHEST


class ConditionedDesign(NamedTuple):
    """Frames in the conditioned basis of every state, and the prior in that basis.

    Attributes
    ----------
    innovations : array of shape (n_time_bins, n_features)
        ``e_t = y_t - M_0 x̃_t``.
    newest : array of shape (n_time_bins, n_features)
        The newest lag ``y_{t-1}`` (zeros when ``nlags = 0``).
    differences : array of shape (n_time_bins, (nlags - 1) * n_features)
        ``[y_{t-1} - y_{t-2}; ...; y_{t-L+1} - y_{t-L}]``.
    centres : array of shape (n_states, n_features)
        ``c_k``, the weighted mean of the newest lag in state ``k``.
    transform : array of shape (n_states, n_regressors, n_regressors)
        ``T_k`` with ``u_{tk} = T_k x̃_t = [y_{t-1} - c_k; differences; 1]``.
    prior : MNIWPrior
        The prior on ``Δ_k = (W_k - M_0) T_k^{-1}``: mean 0, column precision
        ``T_k K_0^{-1} T_k^T`` of shape (n_states, n_regressors, n_regressors),
        the same ``S_0`` and ``ν_0``.
    """

    innovations: Float[Array, "n_time_bins n_features"]
    newest: Float[Array, "n_time_bins n_features"]
    differences: Float[Array, "n_time_bins n_diff"]
    centres: Float[Array, "n_states n_features"]
    transform: Float[Array, "n_states n_regressors n_regressors"]
    prior: MNIWPrior


def regressor_transform(centre, nlags: int):
    """``T`` of shape (nlags * D + 1, nlags * D + 1): centred newest lag, differenced older lags."""
    n_features = centre.shape[0]
    q = nlags * n_features + 1
    eye = jnp.eye(n_features, dtype=centre.dtype)
    t = jnp.zeros((q, q), centre.dtype).at[-1, -1].set(1.0)
    if nlags:
        t = t.at[:n_features, :n_features].set(eye).at[:n_features, -1].set(-centre)
    for lag in range(1, nlags):
        rows = slice(lag * n_features, (lag + 1) * n_features)
        t = t.at[rows, (lag - 1) * n_features : lag * n_features].set(eye)
        t = t.at[rows, lag * n_features : (lag + 1) * n_features].set(-eye)
    return t


def conditioned_design(
    y: Float[Array, "n_time_bins n_features"],
    x: Float[Array, "n_time_bins n_lagged"],
    sums_of_newest: Float[Array, "n_states n_features"],
    counts: Float[Array, " n_states"],
    prior: MNIWPrior,
) -> ConditionedDesign:
    """Innovations, the parts of the conditioned regressors, the transforms and the prior.

    Parameters
    ----------
    y : array of shape (n_time_bins, n_features)
        Emitted frames.
    x : array of shape (n_time_bins, nlags * n_features)
        Their lags, newest first.
    sums_of_newest : array of shape (n_states, n_features)
        Weighted sums of the newest lag per state (blocked sums).
    counts : array of shape (n_states,)
        Their weights; states without weight are centred on 0.
    prior : MNIWPrior
        The MNIW prior on ``W = [A, b]``.

    Returns
    -------
    ConditionedDesign
    """
    n_features = y.shape[1]
    nlags = x.shape[1] // n_features
    centres = sums_of_newest / jnp.where(counts > 0, counts, 1.0)[:, None]
    t = jax.vmap(regressor_transform, in_axes=(0, None))(centres, nlags)
    m0 = prior.mean
    e = y - jnp.matmul(x, m0[:, :-1].T, precision=_HIGHEST) - m0[:, -1]
    newest = x[:, :n_features] if nlags else jnp.zeros_like(y)
    differences = x[:, :-n_features] - x[:, n_features:] if nlags > 1 else x[:, :0]
    col = jnp.einsum("kqr,rs,kps->kqp", t, prior.col_precision, t, precision=_HIGHEST)
    prior_t = MNIWPrior(
        jnp.zeros_like(m0), 0.5 * (col + jnp.swapaxes(col, -1, -2)), prior.scale, prior.dof
    )
    return ConditionedDesign(e, newest, differences, centres, t, prior_t)


def _regressors(design: ConditionedDesign, centres, nlags: int):
    """``u`` without its constant: ``[y_{t-1} - c; differences]`` for the given centres."""
    if not nlags:
        return design.differences
    return jnp.concatenate([design.newest - centres, design.differences], axis=-1)


def _cholesky_factor(scaled, shift):
    """``L^{-T}`` of ``scaled + shift I = L L^T`` (batched), NaN where it is not PD."""
    eye = jnp.broadcast_to(jnp.eye(scaled.shape[-1], dtype=scaled.dtype), scaled.shape)
    chol = jnp.linalg.cholesky(scaled + shift[:, None, None] * eye)
    return jnp.swapaxes(jsl.solve_triangular(chol, eye, lower=True), -1, -2)


def _eigen_factor(scaled, floor):
    """``V Λ^{-1/2}`` of ``scaled = V Λ V^T`` with the eigenvalues floored at ``floor``."""
    vals, vecs = jnp.linalg.eigh(scaled)
    return vecs / jnp.sqrt(jnp.maximum(vals, floor[:, None]))[:, None, :]


def _well_conditioned(scaled, factor, norm, eps):
    """Finite factor and ``κ_F(P) = ||P||_F ||P^{-1}||_F`` below ``0.1 / (q ε)``."""
    inverse = jnp.matmul(factor, jnp.swapaxes(factor, -1, -2), precision=_HIGHEST)
    inv_norm = jnp.sqrt(jnp.sum(inverse * inverse, axis=(-2, -1)))
    return jnp.isfinite(inv_norm) & (norm * inv_norm * scaled.shape[-1] * eps < 0.1)


#: At most this fraction of the states (rounded up) goes through the floored eigendecomposition
#: alone; more failing states run it for every state.
_EIGEN_SUBSET = 0.125
#: The same for the residual pass of `ar_map_update`.
_PASS_SUBSET = 1 / 3


def _fix_states(bad, values, recompute, fraction: float):
    """``values`` with the states flagged ``bad`` replaced by ``recompute(indices)``.

    ``recompute`` maps an int array of state indices to their new values. Nothing runs when no
    state is bad; when at most ``ceil(fraction K)`` are, it runs on that many states (the bad
    ones, padded with good ones whose values are kept); otherwise on all of them. Each
    branch is a ``lax.switch`` case, so a fit pays only for the branch it takes.
    """
    n_states = bad.shape[0]
    size = min(n_states, max(1, int(np.ceil(fraction * n_states))))

    def some(v):
        idx = jax.lax.top_k(bad.astype(jnp.int32), size)[1]  # the bad states first, distinct
        keep = bad[idx].reshape((size,) + (1,) * (v.ndim - 1))
        return v.at[idx].set(jnp.where(keep, recompute(idx), v[idx]))

    def every(v):
        mask = bad.reshape((n_states,) + (1,) * (v.ndim - 1))
        return jnp.where(mask, recompute(jnp.arange(n_states)), v)

    n_bad = jnp.sum(bad)
    branch = jnp.where(n_bad == 0, 0, jnp.where(n_bad <= size, 1, 2))
    return jax.lax.switch(branch, [lambda v: v, some, every], values)


def _precision_factor(p):
    """``F`` with ``F F^T = P^{-1}`` for a batch of SPD ``P``, float32-stable and cheap.

    ``P`` is Jacobi-scaled to a unit diagonal (``P_s``). Where ``P_s`` is well
    conditioned (``κ_F q ε < 0.1``) its Cholesky factor gives the exact inverse.
    The others (states with fewer distinct frames than regressors, singular up
    to the weak prior) go through an eigendecomposition with eigenvalues
    floored at ``q ε ||P_s||_F``, the resolution of the dtype. That pass runs
    only when some state needs it, and only on those states while they are
    few (`_fix_states`), so a well-conditioned fit pays one batched Cholesky.
    """
    eps = jnp.finfo(p.dtype).eps
    scale = jnp.sqrt(jnp.diagonal(p, axis1=-2, axis2=-1))  # > 0: the prior is PD
    scaled = p / (scale[:, :, None] * scale[:, None, :])
    scaled = 0.5 * (scaled + jnp.swapaxes(scaled, -1, -2))
    norm = jnp.sqrt(jnp.sum(scaled * scaled, axis=(-2, -1)))
    floor = scaled.shape[-1] * eps * norm
    factor = _cholesky_factor(scaled, jnp.zeros_like(norm))
    ok = _well_conditioned(scaled, factor, norm, eps)

    def eigen(idx):
        return _eigen_factor(scaled[idx], floor[idx])

    factor = _fix_states(~ok, factor, eigen, _EIGEN_SUBSET)
    return factor / scale[:, :, None]  # D^{-1/2} L^{-T}: F F^T = P^{-1}


def _solve(stats: ARStatistics, prior_t: MNIWPrior):
    """``Δ_n = S_eu P^{-1}`` with ``P = S_uu + K_0'^{-1}``, and ``F`` with ``F F^T = P^{-1}``.

    ``F`` comes from `_precision_factor` (Cholesky where ``P`` is well
    conditioned, floored eigenvalues where it is not); in
    float64 the floor is far below any eigenvalue the prior allows.
    """
    n_features = prior_t.mean.shape[0]
    s = stats.outer
    seu = s[:, :n_features, n_features:]
    factor = _precision_factor(s[:, n_features:, n_features:] + prior_t.col_precision)
    left = jnp.matmul(seu, factor, precision=_HIGHEST)
    return jnp.matmul(left, jnp.swapaxes(factor, -1, -2), precision=_HIGHEST), factor


def _scatter(residual_scatter, delta, prior_t: MNIWPrior):
    """``S_n = S_0 + sum_t w_t r_t r_t^T + Δ_n K_0'^{-1} Δ_n^T``, symmetrised."""
    s_n = (
        prior_t.scale
        + residual_scatter
        + jnp.einsum("kiq,kqr,kjr->kij", delta, prior_t.col_precision, delta, precision=_HIGHEST)
    )
    return 0.5 * (s_n + jnp.swapaxes(s_n, -1, -2))


#: The residual pass of `ar_map_update` is skipped when every state's scatter keeps at least this
#: fraction of its innovations' scatter (``λ_min((S_0 + S_ee)^{-1} S_n)``, bounded from below): the
#: direct formula then loses less than two decimal digits to cancellation.
DIRECT_SCATTER_MIN_RATIO = 0.01


def _prior_subset(prior_t: MNIWPrior, idx):
    """The conditioned prior of the states ``idx`` (the per-state column precisions)."""
    return MNIWPrior(prior_t.mean, prior_t.col_precision[idx], prior_t.scale, prior_t.dof)


def _direct_scatter(stats: ARStatistics, factor, prior_t: MNIWPrior):
    """``S_n = S_0 + S_ee - (S_eu F)(S_eu F)^T`` from the statistics, and whether it is accurate.

    The cancellation of this one-pass formula costs ``1 / λ_min(A^{-1} S_n)``
    digits' worth of accuracy relative to ``A = S_0 + S_ee``; the state is
    accurate when the lower bound ``1 / ||S_n^{-1/2} A S_n^{-1/2}||_F`` of that
    eigenvalue is at least `DIRECT_SCATTER_MIN_RATIO` (and ``S_n`` is PD).
    """
    n_features = prior_t.mean.shape[0]
    s = stats.outer
    total = prior_t.scale + s[:, :n_features, :n_features]
    g = jnp.matmul(s[:, :n_features, n_features:], factor, precision=_HIGHEST)
    s_n = total - jnp.matmul(g, jnp.swapaxes(g, -1, -2), precision=_HIGHEST)
    s_n = 0.5 * (s_n + jnp.swapaxes(s_n, -1, -2))
    m = jsl.solve_triangular(
        jnp.linalg.cholesky(s_n), jnp.linalg.cholesky(total), lower=True
    )  # L_n^{-1} L_A
    inverse = jnp.matmul(jnp.swapaxes(m, -1, -2), m, precision=_HIGHEST)  # L_A^T S_n^{-1} L_A
    norm = jnp.sqrt(jnp.sum(inverse * inverse, axis=(-2, -1)))
    return s_n, jnp.isfinite(norm) & (norm * DIRECT_SCATTER_MIN_RATIO <= 1.0)


def _with_one(u):
    return jnp.concatenate([u, jnp.ones(u.shape[:-1] + (1,), u.dtype)], axis=-1)


def _shared_rows(e, diffs):
    """``[e_t; differences; 1]``: the parts of ``z_tk`` that no state changes."""
    return jnp.concatenate([e, _with_one(diffs)], axis=-1)


def _weighted_gram(w, r):
    """``sum_t w_tk r_t r_t^T`` for every state ``k``: (n_states, n, n), symmetric.

    One matrix product of the weights with the ``n (n + 1) / 2`` distinct products
    ``r_ti r_tj`` (``i <= j``), then mirrored: the same sums as
    ``einsum("tk,ti,tj->kij")``, with half the multiplications and in a layout
    the CPU's matrix product runs about twice as fast (K = 100, n = 31).
    """
    n = r.shape[1]
    rows, cols = np.triu_indices(n)
    upper = jnp.matmul(w.T, r[:, rows] * r[:, cols], precision=_HIGHEST)  # (K, n(n+1)/2)
    gram = jnp.zeros((w.shape[1], n, n), r.dtype).at[:, rows, cols].set(upper)
    return gram + jnp.swapaxes(jnp.triu(gram, 1), -1, -2)


def _soft_statistics(weights, counts_weights, design: ConditionedDesign, nlags, chunk):
    """``sum_t w_tk z_tk z_tk^T`` with ``z_tk = [e_t; u_tk; 1]`` (per-state regressors).

    Only the newest lag depends on the state (``y_{t-1} - c_k``); the rest,
    ``r_t = [e_t; differences; 1]``, is shared. The blocks ``r r^T`` and
    ``(y_{t-1} - c_k) r^T`` are single matrix products over all states; only
    the ``D x D`` block of the centred newest lag is a product per state.
    Every term is formed from centred values (no cancellation).
    """
    n_features = design.innovations.shape[1]
    n_new = n_features if nlags else 0
    n_shared = n_features + design.differences.shape[1] + 1
    order = np.r_[:n_features, n_shared : n_shared + n_new, n_features:n_shared]

    def block(w, cw, e, newest, diffs):
        r = _shared_rows(e, diffs)
        rr = _weighted_gram(w, r)
        if not n_new:
            return ARStatistics(rr, cw.sum(0))
        centred = newest[:, None, :] - design.centres[None]  # (t, k, D)
        weighted = w[:, :, None] * centred
        nr = jnp.einsum("tkd,ti->kdi", weighted, r, precision=_HIGHEST)
        nn = jnp.einsum("tkd,tke->kde", weighted, centred, precision=_HIGHEST)
        full = jnp.concatenate(
            [
                jnp.concatenate([rr, jnp.swapaxes(nr, -1, -2)], axis=-1),
                jnp.concatenate([nr, nn], axis=-1),
            ],
            axis=1,
        )  # order [e, differences, 1, newest]
        return ARStatistics(full[:, order][:, :, order], cw.sum(0))

    arrays = (weights, counts_weights, design.innovations, design.newest, design.differences)
    return chunked_sum(block, arrays, chunk)


def _soft_residual_scatter(weights, design: ConditionedDesign, centres, delta, nlags, chunk):
    """``sum_t w_tk r_tk r_tk^T`` with ``r_tk = e_t - Δ_k u_tk`` (second pass over the frames).

    ``Δ_k u_tk`` is one product of the shared ``[differences; 1]`` with every
    state's coefficients plus the per-state ``D x D`` product of the centred
    newest lag (a fused multiply-reduction: XLA's batched products of ``D x
    D`` blocks are slow on CPU). ``weights``, ``centres`` and ``delta`` may
    hold a subset of the states (`_fix_states`).
    """
    n_features = delta.shape[1]
    n_new = n_features if nlags else 0

    def block(w, e, newest, diffs):
        pred = jnp.einsum(
            "kdq,qt->kdt", delta[:, :, n_new:], _with_one(diffs).T, precision=_HIGHEST
        )
        r = e.T[None] - pred  # (k, D, t)
        if n_new:
            centred = newest.T[None] - centres[:, :, None]  # (k, D, t)
            coef = delta[:, :, :n_new]
            r = r - jnp.sum(coef[:, :, :, None] * centred[:, None], axis=2)
        weighted = w.T[:, None, :] * r
        return jnp.einsum("kdt,ket->kde", weighted, r, precision=_HIGHEST)

    return chunked_sum(
        block, (weights, design.innovations, design.newest, design.differences), chunk
    )


def _hard_residual_scatter(states, w, e, u, delta, chunk):
    n_states, n_features = delta.shape[0], delta.shape[1]

    def block(s, wb, eb, ub):
        r = eb - jnp.einsum("tdq,tq->td", delta[s], _with_one(ub), precision=_HIGHEST)
        outer = (wb[:, None, None] * r[:, :, None]) * r[:, None, :]
        return jnp.zeros((n_states, n_features, n_features), e.dtype).at[s].add(outer)

    return chunked_sum(block, (states, w, e, u), chunk)


def _to_original(delta, design: ConditionedDesign, prior: MNIWPrior):
    w = prior.mean + jnp.matmul(delta, design.transform, precision=_HIGHEST)
    return w[..., :-1], w[..., -1]


def ar_map_update(
    weights: Float[Array, "n_time_bins n_states"],
    y: Float[Array, "n_time_bins n_features"],
    x: Float[Array, "n_time_bins n_lagged"],
    prior: MNIWPrior,
    *,
    counts_weights: Float[Array, "n_time_bins n_states"] | None = None,
    chunk: int | None = None,
):
    """Joint MNIW posterior mode of every state's ``(A_k, b_k, Σ_k)``, float32-stable (EM M-step).

    Equal in exact arithmetic to ``mniw_map(ar_sufficient_statistics(weights, y,
    x), prior)``; see the module notes for how it is computed.

    Parameters
    ----------
    weights : array of shape (n_time_bins, n_states)
        Weight of each frame in each state's statistics (0 for padding).
    y : array of shape (n_time_bins, n_features)
        Emitted frames.
    x : array of shape (n_time_bins, nlags * n_features)
        Their lags, newest first.
    prior : MNIWPrior
        The prior.
    counts_weights : array of shape (n_time_bins, n_states), optional
        Weights of the counts if they differ from ``weights`` (Student-t ECM).
    chunk : int, optional
        Frames per block of the accumulations (the memory knob); by default
        about 64 MiB of temporaries per block.

    Returns
    -------
    coef : array of shape (n_states, n_features, nlags * n_features)
    intercept : array of shape (n_states, n_features)
    covariances : array of shape (n_states, n_features, n_features)
    """
    weights = jnp.asarray(weights)  # indexed by traced state subsets below
    cw = weights if counts_weights is None else counts_weights
    n_states, n_features = weights.shape[1], y.shape[1]
    nlags, q = x.shape[1] // n_features, x.shape[1] + 1
    if chunk is None:
        chunk = rows_per_chunk(4 * n_states * (q + n_features) * y.dtype.itemsize)
    newest = x[:, :n_features] if nlags else jnp.zeros_like(y)

    def sums(w, nb):
        return jnp.einsum("tk,td->kd", w, nb, precision=_HIGHEST), w.sum(0)

    sum_newest, n_newest = chunked_sum(sums, (weights, newest), chunk)
    design = conditioned_design(y, x, sum_newest, n_newest, prior)
    stats = _soft_statistics(weights, cw, design, nlags, chunk)
    delta, factor = _solve(stats, design.prior)
    s_n, accurate = _direct_scatter(stats, factor, design.prior)

    def second_pass(idx):
        w_sub, d_sub = weights[:, idx], delta[idx]
        resid = _soft_residual_scatter(w_sub, design, design.centres[idx], d_sub, nlags, chunk)
        return _scatter(resid, d_sub, _prior_subset(design.prior, idx))

    s_n = _fix_states(~accurate, s_n, second_pass, _PASS_SUBSET)
    denom = prior.dof + stats.counts + n_features + 1 + q
    coef, intercept = _to_original(delta, design, prior)
    return coef, intercept, s_n / denom[:, None, None]


def ar_sample_update(
    key,
    states,
    y: Float[Array, "n_time_bins n_features"],
    x: Float[Array, "n_time_bins n_lagged"],
    n_states: int,
    prior: MNIWPrior,
    *,
    weights: Float[Array, " n_time_bins"] | None = None,
    counts_weights: Float[Array, " n_time_bins"] | None = None,
    chunk: int | None = None,
):
    """Draw every state's ``(A_k, b_k, Σ_k)`` from its MNIW posterior, float32-stable (Gibbs).

    The same distribution as ``mniw_sample(key, ar_state_statistics(states,
    y, x, n_states, ...), prior)``; states without frames draw from the prior.

    Parameters
    ----------
    key : jax.random key
    states : int array of shape (n_time_bins,)
        State of each frame.
    y, x : arrays
        Frames and their lags as in `ar_map_update`.
    n_states : int
        Number of states.
    prior : MNIWPrior
        The prior.
    weights : array of shape (n_time_bins,), optional
        Per-frame weight of the outer products (0 drops a frame; Student-t:
        the auxiliary precisions). Default 1.
    counts_weights : array of shape (n_time_bins,), optional
        Per-frame weight of the counts; default ``weights``.
    chunk : int, optional
        Frames per block of the scatter-adds.

    Returns
    -------
    coef : array of shape (n_states, n_features, nlags * n_features)
    intercept : array of shape (n_states, n_features)
    covariances : array of shape (n_states, n_features, n_features)
    """
    n_features = y.shape[1]
    nlags = x.shape[1] // n_features
    w = jnp.ones(y.shape[0], y.dtype) if weights is None else jnp.asarray(weights, y.dtype)
    cw = w if counts_weights is None else jnp.asarray(counts_weights, y.dtype)
    q = x.shape[1] + 1
    if chunk is None:
        chunk = rows_per_chunk(2 * q * q * y.dtype.itemsize, budget=_SCATTER_CHUNK_BYTES)
    newest = x[:, :n_features] if nlags else jnp.zeros_like(y)

    def sums(s, wb, nb):
        zero = jnp.zeros((n_states, n_features), y.dtype)
        return zero.at[s].add(wb[:, None] * nb), jnp.zeros(n_states, y.dtype).at[s].add(wb)

    sum_newest, n_newest = chunked_sum(sums, (states, cw, newest), chunk)
    design = conditioned_design(y, x, sum_newest, n_newest, prior)
    e = design.innovations
    u = _regressors(design, design.centres[states], nlags)
    stats = ar_state_statistics(states, e, u, n_states, weights=w, counts_weights=cw)
    delta, factor = _solve(stats, design.prior)
    s_n, accurate = _direct_scatter(stats, factor, design.prior)

    def second_pass(_):
        resid = _hard_residual_scatter(states, w, e, u, delta, chunk)
        return _scatter(resid, delta, design.prior)

    s_n = jax.lax.cond(jnp.all(accurate), lambda s: s, second_pass, s_n)
    k_sigma, k_w = jax.random.split(key)
    sigma = sample_inverse_wishart(k_sigma, prior.dof + stats.counts, s_n)
    chol_sigma = jnp.linalg.cholesky(sigma)
    z = flat_random(jax.random.normal, k_w, delta.shape, delta.dtype)
    # Δ = Δ_n + L_Σ Z F^T: row covariance Σ, column covariance F F^T = (S_uu + K_0'^{-1})^{-1}
    right = jnp.matmul(z, jnp.swapaxes(factor, -1, -2), precision=_HIGHEST)
    draw = delta + jnp.matmul(chol_sigma, right, precision=_HIGHEST)
    coef, intercept = _to_original(draw, design, prior)
    return coef, intercept, sigma
