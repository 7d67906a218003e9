"""HMM kernels on sessions side by side (private; see `behavhmm.inference.hmm`).

When the session boundaries are concrete, the sequential filter, smoother,
posterior sampler and Viterbi run every bucket of sessions (`._sessions`) as one
scan over the row length that steps all rows at once, instead of one scan over all
frames. The rows are run by the same step functions as the concatenated path (they
take one ``(K,)`` step or an ``(R, K)`` step of all rows; Viterbi ``vmap``s its own
scan), with
padding marked as one-step sessions, so the results are the concatenated path's
up to floating-point rounding. A row resets at every session start of the input
inside it too, so a plan may put several sessions in one row (a model's plan puts
its one-frame padding sessions after the last session, as the keypoint SLDS does).
Viterbi uses a leaner scan with no reset inside a row (its rows hold one session).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from ._hmm_messages import (
    _backward_sequential,
    _forward_sequential,
    _Inputs,
    _log_c,
    _posterior_terms,
    _scaled_likelihoods,
    _select,
    _smoothed,
)
from ._hmm_paths import _first_argmax, _sample_sequential, _shift_max
from ._sessions import (
    SessionPlan,
    from_rows,
    row_starts,
    session_draws,
    shard_rows,
    to_rows,
)


def _row_inputs(inp: _Inputs, ll_rows, lengths, groups_rows, starts_rows):
    starts = row_starts(lengths, starts_rows.shape[0]) | starts_rows
    return _Inputs(inp.initial_probs, inp.transition_matrix, ll_rows, starts, groups_rows)


def _filtered_rows(inp: _Inputs, ll_rows, lengths, groups_rows, starts_rows):
    """A bucket's row inputs, filtered probabilities and log normalizers."""
    rows = _row_inputs(inp, ll_rows, lengths, groups_rows, starts_rows)
    b, shift = _scaled_likelihoods(ll_rows)
    alphas, c = _forward_sequential(rows, b)
    return rows, alphas, _log_c(c, shift)


@jax.jit
def _filter_rows(inp: _Inputs, ll_rows, lengths, groups_rows, starts_rows):
    return _filtered_rows(inp, ll_rows, lengths, groups_rows, starts_rows)[1:]


@jax.jit
def _prepare_rows(inp: _Inputs, index, lengths, groups_rows, starts_rows):
    """A bucket's row inputs and scaled likelihoods: the gather and the ``exp`` in one pass."""
    rows = _row_inputs(inp, None, lengths, groups_rows, starts_rows)
    b, shift = _scaled_likelihoods(inp.log_likelihoods[index])
    return rows, b, shift


@jax.jit
def _forward_rows(rows: _Inputs, b, shift):
    alphas, c = _forward_sequential(rows, b)
    return alphas, c, _log_c(c, shift)


@jax.jit
def _backward_rows(rows: _Inputs, b):
    return _backward_sequential(rows, b)


@jax.jit
def _combine_rows(rows: _Inputs, alphas, c, b, betas):
    _, expected, norm = _posterior_terms(rows, alphas, c, b, betas)
    return expected, norm


@jax.jit
def _smoothed_back(alphas, betas, norms, back):
    """The smoothed probabilities of every bucket, formed while gathered onto one axis."""
    n_states = alphas[0].shape[-1]
    flat = [
        _smoothed(*parts).reshape(-1, n_states) for parts in zip(alphas, betas, norms, strict=True)
    ]
    return jnp.concatenate(flat)[back]


def _one_after_the_other(forward, backward):
    return forward(), backward()


@jax.jit
def _sample_rows(inp: _Inputs, ll_rows, lengths, groups_rows, starts_rows, uniforms):
    rows, alphas, log_c = _filtered_rows(inp, ll_rows, lengths, groups_rows, starts_rows)
    return _sample_sequential(rows, alphas, uniforms), log_c


def _viterbi_row(log_pi, log_A, ll, groups, length):
    """Viterbi path of one row holding one session of ``length`` steps (then padding)."""
    g_now = None if groups is None else groups[1:]
    d0 = _shift_max(log_pi + ll[0])

    def forward(d, x):
        ll_t, g_t = x
        d = _shift_max(jnp.max(d[:, None] + _select(log_A, g_t), axis=0) + ll_t)
        return d, d

    _, deltas = lax.scan(forward, d0, (ll[1:], g_now))
    deltas = jnp.concatenate([d0[None], deltas])
    n_steps = ll.shape[0]
    g_next = None if groups is None else jnp.concatenate([groups[1:], groups[:1]])
    log_A_T = jnp.swapaxes(log_A, -1, -2)

    def backward(z_next, x):
        d_t, t, g = x
        scores = jnp.where(t + 1 < length, d_t + _select(log_A_T, g)[z_next], d_t)
        z = _first_argmax(scores)
        return z, z

    xs = (deltas, jnp.arange(n_steps), g_next)
    _, path = lax.scan(backward, jnp.int32(0), xs, reverse=True)
    return path


@jax.jit
def _viterbi_rows(log_pi, log_A, ll_rows, lengths, groups_rows):
    g_axis = None if groups_rows is None else 1
    return jax.vmap(_viterbi_row, in_axes=(None, None, 1, g_axis, 0), out_axes=1)(
        log_pi, log_A, ll_rows, groups_rows, lengths
    )


# ----------------------------------------------------------------------------
# the kernels on a plan (called from `behavhmm.inference.hmm` with checked inputs)
# ----------------------------------------------------------------------------


def _bucket_args(inp: _Inputs, bucket, gather: bool = True):
    """A bucket's row arguments: log-likelihoods in rows, lengths, groups and starts in rows.

    With ``gather=False`` the time-major row index comes first instead, for a program
    that gathers the log-likelihoods itself (fused with what it does next).
    """
    first = (
        to_rows(inp.log_likelihoods, bucket) if gather else shard_rows(jnp.asarray(bucket.index.T))
    )
    groups_rows = to_rows(inp.groups, bucket)
    starts_rows = to_rows(inp.session_starts, bucket)
    return first, jnp.asarray(bucket.lengths), groups_rows, starts_rows


def filter_rows(inp: _Inputs, plan: SessionPlan):
    """The fields of `HMMFilterResult`, in order, bucket by bucket."""
    outs = [_filter_rows(inp, *_bucket_args(inp, bucket)) for bucket in plan.buckets]
    alphas = from_rows([o[0] for o in outs], plan)
    log_c = from_rows([o[1] for o in outs], plan)
    return jnp.sum(log_c), alphas, log_c


def smoother_rows(inp: _Inputs, plan: SessionPlan, run_passes=_one_after_the_other):
    """The fields of `HMMPosterior`, in order, bucket by bucket.

    Each bucket runs as compiled pieces: gather and scale, the forward and backward
    passes (independent: ``run_passes(forward, backward)`` runs the two calls, on two
    threads on a CPU), and the posteriors and expected counts, all in the row layout
    (the counts are one matrix product over every row step); the smoothed
    probabilities are then gathered back onto the concatenated axis.
    """
    alphas_rows, betas_rows, norms, log_c_rows, expected = [], [], [], [], None
    for bucket in plan.buckets:
        rows, b, shift = _prepare_rows(inp, *_bucket_args(inp, bucket, gather=False))
        (alphas, c, log_c), betas = run_passes(
            lambda rows=rows, b=b, shift=shift: _forward_rows(rows, b, shift),
            lambda rows=rows, b=b: _backward_rows(rows, b),
        )
        counts, norm = _combine_rows(rows, alphas, c, b, betas)
        alphas_rows.append(alphas)
        betas_rows.append(betas)
        norms.append(norm)
        log_c_rows.append(log_c)
        expected = counts if expected is None else expected + counts
    smoothed = _smoothed_back(alphas_rows, betas_rows, norms, jnp.asarray(plan.back))
    log_c = from_rows(log_c_rows, plan)
    initial_counts = inp.session_starts.astype(smoothed.dtype) @ smoothed
    return jnp.sum(log_c), smoothed, expected, initial_counts, log_c


def sample_rows(key, inp: _Inputs, plan: SessionPlan):
    """Posterior draw ``(T,)`` int32 and the log-likelihood, with per-session uniforms.

    Also under ``jit``, with the plan's arrays as arguments (its shapes are static).
    The uniforms are the concatenated path's (`session_draws` of
    ``inp.session_starts``) laid out in rows, so any plan, including rows that hold
    several sessions, draws the one-scan path's states.
    """
    uniforms = session_draws(key, inp.session_starts, inp.log_likelihoods.dtype)
    outs = []
    for bucket in plan.buckets:
        u_rows = to_rows(uniforms, bucket)  # (L, R)
        outs.append(_sample_rows(inp, *_bucket_args(inp, bucket), u_rows))
    states = from_rows([o[0] for o in outs], plan)
    log_c = from_rows([o[1] for o in outs], plan)
    return states.astype(jnp.int32), jnp.sum(log_c)


def viterbi_rows(inp: _Inputs, plan: SessionPlan):
    """Viterbi path ``(T,)`` int32, every session decoded in its own row."""
    log_pi = jnp.log(inp.initial_probs)
    log_A = jnp.log(inp.transition_matrix)
    outs = [_viterbi_rows(log_pi, log_A, *_bucket_args(inp, bucket)[:3]) for bucket in plan.buckets]
    return from_rows(outs, plan)
