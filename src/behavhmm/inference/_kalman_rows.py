"""The Kalman kernels' bodies on one axis, and the same bodies run side by side (private).

`filter_body`, `smoother_body` and `sample_body` run every session of the
concatenated axis through one scan (sessions reset at their starts). The
``*_rows`` functions run them on the buckets of a `SessionPlan` instead: each
bucket's sessions are padded rows ``(row_length, n_rows)``, the body is ``vmap``-ped
over the rows, and the outputs are gathered back onto the concatenated axis.
Padding steps carry no observation (zero precision) and are one-step sessions, so
they add exactly 0 to the log-likelihood and never reach a real step.

The ``*_rows`` functions are compiled programs; the plan is one of their array
arguments (its shapes are static), so a model can pass it into its own programs.

The sampler's normal draws come from per-session keys (`session_draws`), so a
draw is the same whether it runs on one axis or in rows, whatever the bucketing.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from ._kalman_steps import (
    _backward_mean,
    _chol,
    _Draws,
    _filter_block,
    _filter_then_backward,
    _run_filter,
    _smooth_step,
)
from ._sessions import SessionPlan, from_rows, row_starts, session_draws, to_rows


class KalmanOutputs(NamedTuple):
    """Log-likelihood and per-step outputs of a Kalman body (``second`` may be None)."""

    log_likelihood: jax.Array
    first: jax.Array
    second: jax.Array | None


def _first(tree):
    return jax.tree_util.tree_map(lambda a: a[0], tree)


def filter_body(dyn, emission, y, precisions, dynamics_index, starts) -> KalmanOutputs:
    """Filtered means and covariances of every step, sessions on one axis."""
    checkpoints, blocks, _, _ = _run_filter(
        dyn, emission, y, precisions, dynamics_index, starts, None, "filter"
    )
    _, (ms, ps, lls) = _filter_block(_first(checkpoints), _first(blocks), dyn, "filter")
    return KalmanOutputs(jnp.sum(lls), ms, ps)


def smoother_body(
    dyn, emission, y, precisions, dynamics_index, starts, block_size, return_covariances
) -> KalmanOutputs:
    """Smoothed means (and covariances), sessions on one axis."""
    t = y.shape[0]
    mode = "filter" if return_covariances else "smooth"
    checkpoints, blocks, n_blocks, bs = _run_filter(
        dyn, emission, y, precisions, dynamics_index, starts, block_size, mode
    )
    n_lagged = dyn.coef.shape[-1]
    dtype = y.dtype
    if return_covariances:  # Rauch-Tung-Striebel, carrying the smoothed moments of the next step
        init = (jnp.zeros(n_lagged, dtype), jnp.eye(n_lagged, dtype=dtype))
        (m_s, p_s), ll = _filter_then_backward(
            dyn, blocks, checkpoints, n_blocks, bs, mode, _smooth_step, init
        )
        return KalmanOutputs(ll, m_s[:t], p_s[:t])
    m_s, ll = _filter_then_backward(
        dyn, blocks, checkpoints, n_blocks, bs, mode, _backward_mean, jnp.zeros(n_lagged, dtype)
    )
    return KalmanOutputs(ll, m_s[:t], None)


def _split_noise(noise, d):
    """Per-step normals ``(..., 2 d + n_lagged)``: observation, dynamics and initial noise."""
    return noise[..., :d], noise[..., d : 2 * d], noise[..., 2 * d :]


def sample_noise(key, starts, dyn, dtype):
    """The sampler's normals on the concatenated axis, from per-session keys."""
    d, n_lagged = dyn.intercept.shape[-1], dyn.coef.shape[-1]
    return session_draws(key, starts, dtype, (2 * d + n_lagged,), jax.random.normal)


def _draw_factors(dyn) -> _Draws:
    return _Draws(jax.vmap(_chol)(dyn.covariance), _chol(dyn.initial_covariance))


def sample_body(
    dyn, emission, y, precisions, dynamics_index, starts, noise, block_size, draws=None
) -> KalmanOutputs:
    """One posterior draw of the latents (simulation smoother), sessions on one axis.

    ``noise`` is ``(n_time_bins, 2 latent_dim + n_lagged)`` standard normals;
    ``draws`` the Cholesky factors of the noise covariances (computed if None).
    """
    t = y.shape[0]
    d, n_lagged = dyn.intercept.shape[-1], dyn.coef.shape[-1]
    draws = _draw_factors(dyn) if draws is None else draws
    checkpoints, blocks, n_blocks, bs = _run_filter(
        dyn,
        emission,
        y,
        precisions,
        dynamics_index,
        starts,
        block_size,
        "sample",
        _split_noise(noise, d),
        draws,
    )
    xs, ll = _filter_then_backward(
        dyn,
        blocks,
        checkpoints,
        n_blocks,
        bs,
        "sample",
        _backward_mean,
        jnp.zeros(n_lagged, y.dtype),
        draws,
    )
    return KalmanOutputs(ll, xs[:t], None)


# ----------------------------------------------------------------------------
# side by side
# ----------------------------------------------------------------------------


def _bucket_inputs(bucket, y, precisions, dynamics_index, starts):
    """A bucket's rows ``(row_length, n_rows, ...)``; padding steps observe nothing.

    A row's session starts are its first step, its padding, and every start of
    ``starts`` inside it (a plan may put several sessions in one row, as the keypoint
    SLDS does with its one-frame padding sessions after the last session).
    """
    row_length = bucket.index.shape[1]
    valid = jnp.arange(row_length)[:, None] < jnp.asarray(bucket.lengths)[None, :]
    w = jnp.where(valid[..., None], to_rows(precisions, bucket), 0.0)
    starts = row_starts(bucket.lengths, row_length) | to_rows(starts, bucket)
    return to_rows(y, bucket), w, to_rows(dynamics_index, bucket), starts


def _row_block(block_size, n_rows):
    """Steps per block of each row, so that a block holds about ``block_size`` steps in all."""
    return None if block_size is None else max(1, int(block_size) // int(n_rows))


def _run_rows(plan: SessionPlan, body, arrays, extra=None, after=None) -> KalmanOutputs:
    """``body(bucket, y, w, idx, starts, extra_rows)`` vmapped over each bucket's rows.

    The buckets run one after the other, and the first after ``after`` (any arrays):
    on the CPU, XLA runs independent operations at once, and two of jaxlib's batched
    Cholesky factorisations (``_information`` of two buckets, or one and the
    factors of the noise covariances) then wait forever for each other's pool
    threads (seen on 2 cores with jaxlib 0.10).
    """
    lls, firsts, seconds = [], [], []
    out = after
    for bucket in plan.buckets:
        rows = _bucket_inputs(bucket, *arrays)
        more = None if extra is None else extra(bucket)
        if out is not None:
            (rows, more), _ = lax.optimization_barrier(((rows, more), out))
        out = body(bucket, *rows, more)
        lls.append(jnp.sum(out.log_likelihood))
        firsts.append(out.first)
        seconds.append(out.second)
    second = None if seconds[0] is None else from_rows(seconds, plan)
    return KalmanOutputs(sum(lls), from_rows(firsts, plan), second)


@jax.jit
def filter_rows(plan: SessionPlan, dyn, emission, y, precisions, dynamics_index, starts):
    """`filter_body` on the sessions side by side."""

    def body(bucket, yr, wr, ir, sr, _):
        one = lambda *a: filter_body(dyn, emission, *a)  # noqa: E731
        return jax.vmap(one, in_axes=1, out_axes=KalmanOutputs(0, 1, 1))(yr, wr, ir, sr)

    return _run_rows(plan, body, (y, precisions, dynamics_index, starts))


@partial(jax.jit, static_argnames=("block_size", "return_covariances"))
def smoother_rows(
    plan: SessionPlan,
    dyn,
    emission,
    y,
    precisions,
    dynamics_index,
    starts,
    block_size=None,
    return_covariances=False,
):
    """`smoother_body` on the sessions side by side (``block_size`` steps over all rows)."""

    def body(bucket, yr, wr, ir, sr, _):
        bs = _row_block(block_size, bucket.index.shape[0])
        one = lambda *a: smoother_body(dyn, emission, *a, bs, return_covariances)  # noqa: E731
        axes = KalmanOutputs(0, 1, 1 if return_covariances else None)
        return jax.vmap(one, in_axes=1, out_axes=axes)(yr, wr, ir, sr)

    return _run_rows(plan, body, (y, precisions, dynamics_index, starts))


@partial(jax.jit, static_argnames=("block_size",))
def sample_rows(
    key, plan: SessionPlan, dyn, emission, y, precisions, dynamics_index, starts, block_size
):
    """`sample_body` on the sessions side by side, with the one-axis path's normals.

    The normals are drawn on the concatenated axis (`sample_noise`) and laid out in
    rows, so any plan, rows holding several sessions of ``starts`` included (see
    `_bucket_inputs`), draws the one-axis path's latents.
    """
    eps = sample_noise(key, starts, dyn, y.dtype)
    draws = _draw_factors(dyn)

    def body(bucket, yr, wr, ir, sr, nr):
        bs = _row_block(block_size, bucket.index.shape[0])
        one = lambda *a: sample_body(dyn, emission, *a, bs, draws)  # noqa: E731
        return jax.vmap(one, in_axes=1, out_axes=KalmanOutputs(0, 1, None))(yr, wr, ir, sr, nr)

    noise = partial(to_rows, eps)
    return _run_rows(plan, body, (y, precisions, dynamics_index, starts), noise, after=draws)


__all__ = [
    "KalmanOutputs",
    "filter_body",
    "filter_rows",
    "sample_body",
    "sample_noise",
    "sample_rows",
    "smoother_body",
    "smoother_rows",
]
