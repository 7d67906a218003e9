"""State paths of the HMM kernels (private; see `behavhmm.inference.hmm`).

Viterbi's max-product forward pass and backtrace, and the backward-sampling pass of
forward-filter backward-sample, each sequential or blocked-parallel.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import lax

from ._hmm_messages import _block_size, _blocked_scan, _Inputs, _next_step_inputs, _select


def _shift_max(x):
    mx = jnp.max(x, axis=-1, keepdims=True)
    return x - jnp.where(jnp.isfinite(mx), mx, 0.0)


def _shift_max_fast(x):
    """`_shift_max` without the guard: a step where no state is possible gives NaN, not -inf.

    For the sequential Viterbi scans, where the guard cost 40-60 % of the step at K = 10 on a
    CPU. NaN then fills the messages up to the next session start (which resets to ``log_pi``),
    and the backtrace's argmax picks state 0 there, as it does on all--inf scores: the same path.
    """
    return x - jnp.max(x, axis=-1, keepdims=True)


def _viterbi_forward_sequential(inp: _Inputs, log_pi, log_A):
    ll, starts, groups = inp.log_likelihoods, inp.session_starts, inp.groups

    def step(delta_prev, x):
        ll_t, start_t, g_t = x
        best = jnp.max(delta_prev[:, None] + _select(log_A, g_t), axis=0)
        # a session starts afresh: log_pi, not max(delta_prev) + log_pi (the same after the shift,
        # one reduction less per step, and an impossible session does not void the next one)
        delta = _shift_max_fast(jnp.where(start_t, log_pi, best) + ll_t)
        return delta, delta

    init = jnp.zeros_like(log_pi)
    _, deltas = lax.scan(step, init, (ll, starts, groups))
    return deltas


def _first_argmax(scores):
    """``argmax`` of a (K,) vector, ties to the lowest index, all-NaN to 0 (as ``jnp.argmax``).

    For 4 <= K <= 32, a max, a compare and a min: on a CPU, 1.5-2x faster than XLA's
    argmax reduction inside a sequential scan (K = 10: 41 -> 26 ms for 1e6 steps);
    ``jnp.argmax`` elsewhere, where it measured faster.
    """
    n_states = scores.shape[-1]
    if not 4 <= n_states <= 32:
        return jnp.argmax(scores).astype(jnp.int32)
    index = jnp.arange(n_states, dtype=jnp.int32)
    first = jnp.min(jnp.where(scores == jnp.max(scores), index, n_states))
    return first % n_states  # no maximum (NaN scores): state 0


def _viterbi_backtrace_sequential(inp: _Inputs, deltas, log_A):
    starts, groups = inp.session_starts, inp.groups
    last = jnp.argmax(deltas[-1]).astype(jnp.int32)
    log_A_T = jnp.swapaxes(log_A, -1, -2)  # a row per next state: a contiguous gather

    def step(z_next, x):
        delta_t, start_next, g_next = x
        scores = jnp.where(start_next, delta_t, delta_t + _select(log_A_T, g_next)[z_next])
        z = _first_argmax(scores)
        return z, z

    xs = (deltas[:-1], starts[1:], None if groups is None else groups[1:])
    _, path = lax.scan(step, last, xs, reverse=True)
    return jnp.concatenate([path, last[None]])


def _viterbi_forward_parallel(inp: _Inputs, log_pi, log_A, block_size):
    ll = inp.log_likelihoods
    n_time_bins, n_states = ll.shape
    block_size = _block_size(block_size, n_time_bins, 2 * n_states**3 * ll.dtype.itemsize)

    def max_plus_product(x, y):
        prod = jnp.max(x[..., :, :, None] + y[..., None, :, :], axis=-2)
        flat = prod.reshape(prod.shape[:-2] + (n_states * n_states,))
        return _shift_max(flat).reshape(prod.shape)

    def block(delta_in, x):
        ll_blk, s_blk, g_blk = x
        trans = (
            jnp.broadcast_to(log_A, (block_size, n_states, n_states))
            if log_A.ndim == 2
            else log_A[g_blk]
        )
        trans = jnp.where(
            s_blk[:, None, None], jnp.broadcast_to(log_pi, (n_states, n_states)), trans
        )
        elems = trans + ll_blk[:, None, :]
        # the block's first step absorbs the incoming message: all its rows are equal
        first = jnp.where(
            s_blk[0], jnp.max(delta_in) + log_pi, jnp.max(delta_in[:, None] + trans[0], axis=0)
        )
        elems = elems.at[0].set(jnp.broadcast_to(first + ll_blk[0], (n_states, n_states)))
        deltas = _shift_max(lax.associative_scan(max_plus_product, elems)[:, 0, :])
        return deltas[-1], deltas

    return _blocked_scan(
        block,
        jnp.zeros(n_states, ll.dtype),
        (ll, inp.session_starts, inp.groups),
        (0.0, True, 0),
        block_size,
        n_time_bins,
    )


def _compose_backwards(make_maps, xs, pad_values, block_size, n_time_bins):
    """Resolve ``z_t = maps[t][z_{t+1}]`` for all t by composing maps block by block.

    ``make_maps(*block_of_xs)`` returns the maps of one block, shape
    ``(block_size, n_states)``: ``maps[t][j]`` is the state at ``t`` given
    state ``j`` at ``t + 1``. Maps are built inside each block, so memory
    stays O(block_size K^2). Padding (``pad_values``) must give constant maps.
    """

    def compose(later, earlier):
        # suffix composition: (earlier ∘ later)[j] = earlier[later[j]]
        return jnp.take_along_axis(earlier, later, axis=-1)

    def block(z_in, blk):
        m_blk = make_maps(*blk)
        m_blk = m_blk.at[-1].set(jnp.full_like(m_blk[-1], m_blk[-1][z_in]))
        states = lax.associative_scan(compose, m_blk, reverse=True)[:, 0]
        return states[0], states

    return _blocked_scan(block, jnp.int32(0), xs, pad_values, block_size, n_time_bins, reverse=True)


def _viterbi_backtrace_parallel(inp: _Inputs, deltas, log_A, block_size):
    n_time_bins, n_states = deltas.shape
    block_size = _block_size(block_size, n_time_bins, 3 * n_states**2 * deltas.dtype.itemsize)
    s_next, g_next = _next_step_inputs(inp.session_starts, inp.groups)

    def make_maps(delta_b, s_b, g_b):
        trans = log_A[None] if log_A.ndim == 2 else log_A[g_b]
        scores = jnp.where(s_b[:, None, None], delta_b[:, :, None], delta_b[:, :, None] + trans)
        return jnp.argmax(scores, axis=1).astype(jnp.int32)

    return _compose_backwards(
        make_maps, (deltas, s_next, g_next), (0.0, True, 0), block_size, n_time_bins
    )


def _sample_sequential(inp: _Inputs, alphas, uniforms):
    """Backward sampling by a reverse scan: ``z_t`` at ``uniforms[t]`` given ``z_{t+1}``.

    One axis, ``alphas`` ``(T, K)``, or rows side by side, ``(L, R, K)`` with
    uniforms, starts and groups ``(L, R)``.
    """
    A, starts, groups = inp.transition_matrix, inp.session_starts, inp.groups
    A_T = jnp.swapaxes(A, -1, -2)  # a row per next state: a contiguous gather
    inverse_cdf = jnp.vectorize(_inverse_cdf, signature="(k),()->()")
    last = inverse_cdf(alphas[-1], uniforms[-1])

    def step(z_next, x):
        alpha_t, u_t, start_next, g_next = x
        column = A_T[z_next] if A.ndim == 2 else A_T[g_next, z_next]
        weights = jnp.where(start_next[..., None], alpha_t, alpha_t * column)
        z = inverse_cdf(weights, u_t)
        return z, z

    xs = (alphas[:-1], uniforms[:-1], starts[1:], None if groups is None else groups[1:])
    _, path = lax.scan(step, last, xs, reverse=True)
    return jnp.concatenate([path, last[None]])


def _sample_parallel(inp: _Inputs, alphas, uniforms, block_size):
    """Backward sampling as maps ``z_{t+1} -> z_t`` composed by blocked associative scans."""
    A, starts, groups = inp.transition_matrix, inp.session_starts, inp.groups
    n_time_bins, n_states = alphas.shape
    block_size = _block_size(block_size, n_time_bins, 3 * n_states**2 * alphas.dtype.itemsize)
    s_next, g_next = _next_step_inputs(starts, groups)
    per_column = jax.vmap(jax.vmap(_inverse_cdf, in_axes=(1, None)), in_axes=(0, 0))

    def make_maps(alpha_b, u_b, s_b, g_b):
        trans = A[None] if A.ndim == 2 else A[g_b]
        weights = jnp.where(s_b[:, None, None], alpha_b[:, :, None], alpha_b[:, :, None] * trans)
        return per_column(weights, u_b)

    return _compose_backwards(
        make_maps,
        (alphas, uniforms, s_next, g_next),
        (0.0, 0.0, True, 0),
        block_size,
        n_time_bins,
    )


def _inverse_cdf(weights, u):
    """Index ``k`` with ``cdf[k-1] <= u * total < cdf[k]`` for unnormalised (K,) weights.

    Where rounding puts ``u * total`` at or past the last cumulative sum, the last
    state of positive weight (never a state of zero weight). For K > 16 the search
    is two-level: over sums of blocks of about ``sqrt(K)`` states, then inside the
    chosen block. XLA's cumulative sum costs K^2 per call on a CPU, and the
    backward-sampling scan is one such call per step (K = 100, 1e6 steps: 1.10 ->
    0.62 s on one axis, 0.53 -> 0.17 s for 200 sessions side by side).
    """
    n_states = weights.shape[0]
    if n_states <= 16:
        return _search(weights, u * jnp.sum(weights), 0.0)
    size = math.isqrt(n_states - 1) + 1
    n_blocks = -(-n_states // size)
    blocks = jnp.pad(weights, (0, n_blocks * size - n_states)).reshape(n_blocks, size)
    block_sums = jnp.sum(blocks, axis=1)
    block_cdf = jnp.cumsum(block_sums)
    threshold = u * block_cdf[-1]
    block = _search(block_sums, threshold, 0.0, block_cdf)
    before = jnp.where(block > 0, block_cdf[jnp.maximum(block - 1, 0)], 0.0)
    return block * size + _search(blocks[block], threshold, before)


def _search(weights, threshold, before, cdf=None):
    """Count of ``before + cumsum(weights) <= threshold``, at most the last positive index."""
    if cdf is None:
        cdf = before + jnp.cumsum(weights)
    count = jnp.sum(cdf <= threshold).astype(jnp.int32)
    index = jnp.arange(weights.shape[0], dtype=jnp.int32)
    return jnp.minimum(count, jnp.max(jnp.where(weights > 0, index, 0)))
