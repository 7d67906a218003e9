"""Steps of the Kalman kernels (private; see `behavhmm.inference.kalman`).

Prediction through the lagged AR dynamics, the information-form update, input checks,
the blocked filter with checkpoints, the backward recursions' steps and the random-walk
filter. The public kernels in `behavhmm.inference.kalman` are built from these.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
from jax import lax
from jaxtyping import Array, Float

if TYPE_CHECKING:
    from .kalman import ARDynamics, LinearEmission

_LOG_2PI = 1.8378770664093453
_JITTER_EPS = (
    10.0  # relative jitter of covariances before a Cholesky factorisation, in machine epsilons
)


#: Matrices up to this size are factorised by `_cholesky`'s unrolled loop, not LAPACK.
_UNROLLED_CHOLESKY = 32


def _cholesky(a):
    """Lower Cholesky factor of symmetric positive definite ``a`` (..., n, n).

    For ``n <= 32`` an unrolled Cholesky-Crout loop in plain array operations,
    which XLA fuses over any batch; larger matrices go to ``jnp.linalg.cholesky``.
    Like it, a matrix that is not positive definite gives NaN. Only the lower
    triangle of ``a`` is read.

    The unrolled form is used because jaxlib's batched LAPACK Cholesky on the CPU
    (``ParallelBatchMap``) waits for its tasks on XLA's thread pool: two of them
    running at once (independent operations of one program, e.g. two session
    buckets) each hold a pool thread and wait forever on a 2-core machine
    (jaxlib 0.10). On batches of small matrices the fused loop is also faster.
    """
    n = a.shape[-1]
    if n > _UNROLLED_CHOLESKY:
        return jnp.linalg.cholesky(a)
    rows = jnp.arange(n)
    cols = []
    for j in range(n):
        v = a[..., :, j]
        for c in cols:
            v = v - c * c[..., j : j + 1]
        pivot = jnp.sqrt(v[..., j : j + 1])
        cols.append(jnp.where(rows >= j, v / pivot, 0.0))
    return jnp.stack(cols, axis=-1)


def _solve_lower(lower, b):
    """``lower^{-1} b`` for lower-triangular ``lower`` (..., n, n) and ``b`` (..., n, m).

    Unrolled forward substitution for ``n <= 32`` (see `_cholesky` for why not
    LAPACK); larger systems go to ``jax.scipy.linalg.solve_triangular``.
    """
    n = lower.shape[-1]
    if n > _UNROLLED_CHOLESKY:
        return jsl.solve_triangular(lower, b, lower=True)
    xs = []
    for i in range(n):
        v = b[..., i, :]
        for k, x in enumerate(xs):
            v = v - lower[..., i, k : k + 1] * x
        xs.append(v / lower[..., i, i : i + 1])
    return jnp.stack(xs, axis=-2)


def _solve_upper(upper, b):
    """``upper^{-1} b`` for upper-triangular ``upper`` (..., n, n): back substitution."""
    n = upper.shape[-1]
    if n > _UNROLLED_CHOLESKY:
        return jsl.solve_triangular(upper, b, lower=False)
    xs = [None] * n
    for i in reversed(range(n)):
        v = b[..., i, :]
        for k in range(i + 1, n):
            v = v - upper[..., i, k : k + 1] * xs[k]
        xs[i] = v / upper[..., i, i : i + 1]
    return jnp.stack(xs, axis=-2)


def _cho_solve(lower, b):
    """``(L L^T)^{-1} b`` from the lower Cholesky factor ``L``."""
    return _solve_upper(jnp.swapaxes(lower, -1, -2), _solve_lower(lower, b))


def _sym(m):
    return 0.5 * (m + jnp.swapaxes(m, -1, -2))


def _chol(m):
    """Cholesky factor of a covariance (symmetrised by ``cholesky``), small relative jitter."""
    n = m.shape[-1]
    scale = jnp.maximum(jnp.trace(m) / n, jnp.finfo(m.dtype).tiny)
    jitter = _JITTER_EPS * jnp.finfo(m.dtype).eps * scale
    return _cholesky(_sym(m) + jitter * jnp.eye(n, dtype=m.dtype))


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
    """Every frame's observations as a ``latent_dim``-dimensional pseudo-observation (all at once).

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
    factor = _cholesky(jnp.where(informative, lam + jitter[:, None, None] * eye, eye))
    z = _solve_lower(factor, eta[..., None])[..., 0]  # η = 0 where nothing is observed
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
    ls = _cholesky(_sym(s))
    v = z - r @ m[:d]
    sol = _solve_lower(ls, jnp.concatenate([hp, r, v], axis=1))
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
            "coef must have shape (n_dynamics, latent_dim, nlags * latent_dim), "
            f"got {dyn.coef.shape}."
        )
    if dyn.initial_mean.shape != (n_lagged,) or dyn.initial_covariance.shape != (
        n_lagged,
        n_lagged,
    ):
        raise ValueError(
            f"initial_mean and initial_covariance must have shapes ({n_lagged},) and "
            f"({n_lagged}, {n_lagged})."
        )
    if emission.matrix.shape[1] != d or emission.matrix.shape[0] != y.shape[1]:
        raise ValueError(
            f"emission matrix must have shape (obs_dim, latent_dim) = ({y.shape[1]}, {d}), "
            f"got {emission.matrix.shape}."
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
        else:
            # the draw: predicted mean plus simulated error, then the smoothing of the
            # innovation difference
            out = (m_pred[:d, 0] - m_pred[:d, 1], P_pred[:d], zg, mg, e[:, 0] - e[:, 1], ll)
        return (m_new, P_new), out

    return lax.scan(step, carry, block)


class _Draws(NamedTuple):
    """Cholesky factors of the dynamics noise and the session-start prior (simulated errors)."""

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
    """Inputs in block layout and, with several blocks, the filter state at each block start."""
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
    """One step of the backward information recursion.

    De Jong (1989); Durbin and Koopman (2012), sec. 4.4.

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
    """Filter each block from its checkpoint, then run ``backward_step`` over it in reverse.

    Blocks are visited last first.

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
    gain = _cho_solve(lp, cross.T).T
    m_s = m + gain @ (m_next - m_pred)
    P_s = _sym(P + gain @ (P_next - P_pred) @ gain.T)
    m_s = jnp.where(start_next, m, m_s)
    P_s = jnp.where(start_next, P, P_s)
    return (m_s, P_s), (m_s, P_s)


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
