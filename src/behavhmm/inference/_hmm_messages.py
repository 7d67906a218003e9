"""Forward and backward messages of the HMM kernels (private; see `behavhmm.inference.hmm`).

Input checking, scaled likelihoods, the sequential and blocked-parallel forward and
backward passes, the posteriors and expected counts formed from their messages, and
the compiled pieces of the two-thread smoother. The public kernels in
`behavhmm.inference.hmm` are built from these.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array

#: Default memory allowed for one block of the parallel kernels, in bytes.
DEFAULT_BLOCK_BYTES = 2**27


class _Inputs(NamedTuple):
    initial_probs: Array  # (K,)
    transition_matrix: Array  # (K, K) or (G, K, K)
    log_likelihoods: Array  # (T, K)
    session_starts: Array  # (T,) bool, [0] forced True
    groups: Array | None  # (T,) int32 or None


def _check_inputs(
    initial_probs, transition_matrix, log_likelihoods, session_starts, groups
) -> _Inputs:
    log_likelihoods = jnp.asarray(log_likelihoods)
    dtype = log_likelihoods.dtype
    if not jnp.issubdtype(dtype, jnp.floating):
        dtype = jnp.result_type(float)
        log_likelihoods = log_likelihoods.astype(dtype)
    if log_likelihoods.ndim != 2:
        raise ValueError(
            "log_likelihoods must have shape (n_time_bins, n_states), "
            f"got shape {log_likelihoods.shape}."
        )
    n_time_bins, n_states = log_likelihoods.shape
    if n_time_bins < 1:
        raise ValueError("log_likelihoods must hold at least one time bin.")
    initial_probs = jnp.asarray(initial_probs, dtype)
    if initial_probs.shape != (n_states,):
        raise ValueError(
            f"initial_probs must have shape ({n_states},) to match log_likelihoods, "
            f"got {initial_probs.shape}."
        )
    transition_matrix = jnp.asarray(transition_matrix, dtype)
    if transition_matrix.ndim not in (2, 3) or transition_matrix.shape[-2:] != (
        n_states,
        n_states,
    ):
        raise ValueError(
            f"transition_matrix must have shape ({n_states}, {n_states}) or "
            f"(n_groups, {n_states}, {n_states}), got {transition_matrix.shape}."
        )
    if transition_matrix.ndim == 3:
        if groups is None:
            raise ValueError("groups is required when transition_matrix is 3-D.")
        groups = jnp.asarray(groups, jnp.int32)
        if groups.shape != (n_time_bins,):
            raise ValueError(f"groups must have shape ({n_time_bins},), got {groups.shape}.")
    elif groups is not None:
        raise ValueError("groups is only used with a 3-D (per-group) transition_matrix.")
    if session_starts is None:
        session_starts = jnp.zeros(n_time_bins, bool)
    else:
        session_starts = jnp.asarray(session_starts)
        if session_starts.shape != (n_time_bins,):
            raise ValueError(
                f"session_starts must be a boolean mask of shape ({n_time_bins},), "
                f"got shape {session_starts.shape}."
            )
        session_starts = session_starts.astype(bool)
    session_starts = session_starts.at[0].set(True)
    return _Inputs(initial_probs, transition_matrix, log_likelihoods, session_starts, groups)


def _scaled_likelihoods(log_likelihoods):
    """Return ``b = exp(ll - max_k ll)`` and the per-step shift ``max_k ll`` (states last)."""
    shift = jnp.max(log_likelihoods, axis=-1)
    shift = jnp.where(jnp.isfinite(shift), shift, 0.0)
    return jnp.exp(log_likelihoods - shift[..., None]), shift


def _select(matrix, group):
    """The transition matrix for one step: shared, or indexed by its group."""
    return matrix if matrix.ndim == 2 else matrix[group]


# The sequential kernels' steps take one time step of a concatenated axis, ``(K,)``,
# or of rows side by side, ``(R, K)`` with starts and groups ``(R,)``: the same code
# runs both, and rows need no ``vmap`` (whose layout changes cost two transposes of
# every output on a CPU).


def _predict(alpha, A, group):
    """``alpha @ A`` for the step's transition matrix (each row its own with groups)."""
    if A.ndim == 2:
        return alpha @ A
    return jnp.einsum("...i,...ij->...j", alpha, A[group])


def _propagate_back(g, A, group):
    """``A @ g`` for the step's transition matrix (each row its own with groups)."""
    if A.ndim == 2:
        return g @ A.T
    return jnp.einsum("...ij,...j->...i", A[group], g)


def _safe_normalize(u, fallback):
    """Normalise ``u`` to sum 1; where the sum is not positive use ``fallback``."""
    total = u.sum(axis=-1, keepdims=True)
    ok = total > 0
    return jnp.where(ok, u / jnp.where(ok, total, 1.0), fallback), total[..., 0]


def _pad_time(arrays, n_pad, values):
    """Append ``n_pad`` steps holding ``values`` to each array's time axis."""
    out = []
    for array, value in zip(arrays, values, strict=True):
        if array is None:
            out.append(None)
            continue
        pad = jnp.full((n_pad,) + array.shape[1:], value, array.dtype)
        out.append(jnp.concatenate([array, pad]))
    return out


def _n_blocks(n_time_bins, block_size):
    return -(-n_time_bins // block_size)


def _block_size(block_size, n_time_bins, bytes_per_step):
    if block_size is None:
        block_size = max(1, DEFAULT_BLOCK_BYTES // max(1, bytes_per_step))
    block_size = int(block_size)
    if block_size < 1:
        raise ValueError(f"block_size must be a positive integer, got {block_size}.")
    return min(block_size, n_time_bins)


def _to_blocks(array, block_size):
    return None if array is None else array.reshape((-1, block_size) + array.shape[1:])


def _from_blocks(array, n_time_bins):
    return array.reshape((-1,) + array.shape[2:])[:n_time_bins]


# ----------------------------------------------------------------------------
# forward and backward messages
# ----------------------------------------------------------------------------


def _forward_sequential(inp: _Inputs, b):
    """Scaled forward pass. Returns normalised ``alphas`` and normalisers ``c``.

    The scan body is kept minimal (it runs once per time step): it emits the
    unnormalised ``u_t = pred_t ⊙ b_t`` and carries ``u_t / sum(u_t)``;
    normalisers and filtered probabilities are formed afterwards, vectorised.
    """
    pi, A, starts, groups = inp.initial_probs, inp.transition_matrix, inp.session_starts, inp.groups
    tiny = jnp.finfo(b.dtype).tiny

    def step(alpha_prev, x):
        b_t, start_t, g_t = x
        u = jnp.where(start_t[..., None], pi, _predict(alpha_prev, A, g_t)) * b_t
        return u / jnp.maximum(u.sum(axis=-1, keepdims=True), tiny), u

    _, u = lax.scan(step, jnp.broadcast_to(pi, b.shape[1:]), (b, starts, groups))
    c = u.sum(axis=-1)
    n_states = b.shape[-1]
    # c_t = 0 only if the observation is impossible under the model (log c = -inf)
    alphas = jnp.where((c > 0)[..., None], u / jnp.maximum(c, tiny)[..., None], 1.0 / n_states)
    return alphas, c


def _log_normalizers(inp: _Inputs, alphas, b):
    """Per-step ``log p(y_t | y_{s:t-1})`` from filtered messages, vectorised over time."""
    pi, A, starts, groups = inp.initial_probs, inp.transition_matrix, inp.session_starts, inp.groups
    prev = jnp.concatenate([pi[None], alphas[:-1]])
    if A.ndim == 2:
        pred = prev @ A
    else:
        pred = jnp.zeros_like(prev)
        for g in range(A.shape[0]):
            pred = jnp.where((groups == g)[:, None], prev @ A[g], pred)
    pred = jnp.where(starts[:, None], pi, pred)
    c = jnp.sum(pred * b, axis=1)
    return c


def _block_elements(pi, A, b_blk, s_blk, g_blk):
    """Per-step matrices ``M_t[i, j] = p(z_t = j, y_t | z_{t-1} = i)`` of one block.

    At a session start every row is ``initial_probs ⊙ b_t`` (the reset rule).
    """
    n_steps, n_states = b_blk.shape
    trans = jnp.broadcast_to(A, (n_steps, n_states, n_states)) if A.ndim == 2 else A[g_blk]
    trans = jnp.where(s_blk[:, None, None], jnp.broadcast_to(pi, (n_states, n_states)), trans)
    return trans * b_blk[:, None, :]


def _rescaled_product(left, right):
    """``left @ right`` divided by its largest entry (scale is irrelevant here)."""
    prod = left @ right
    scale = jnp.max(prod, axis=(-2, -1), keepdims=True)
    return prod / jnp.where(scale > 0, scale, 1.0)


def _blocked_scan(block, init, arrays, pad_values, block_size, n_time_bins, reverse=False):
    """Run ``block`` over consecutive blocks of the (padded) time axis."""
    n_pad = _n_blocks(n_time_bins, block_size) * block_size - n_time_bins
    padded = _pad_time(arrays, n_pad, pad_values)
    _, out = lax.scan(
        block, init, tuple(_to_blocks(a, block_size) for a in padded), reverse=reverse
    )
    return _from_blocks(out, n_time_bins)


def _forward_parallel(inp: _Inputs, b, block_size):
    pi, A = inp.initial_probs, inp.transition_matrix
    n_time_bins, n_states = b.shape
    block_size = _block_size(block_size, n_time_bins, 3 * n_states * n_states * b.dtype.itemsize)
    uniform = jnp.full(n_states, 1.0 / n_states, b.dtype)

    def block(alpha_in, x):
        b_blk, s_blk, g_blk = x
        elems = _block_elements(pi, A, b_blk, s_blk, g_blk)
        # the block's first step absorbs the incoming message: all its rows are equal
        first = (
            jnp.where(s_blk[0], pi, alpha_in @ _select(A, None if g_blk is None else g_blk[0]))
            * b_blk[0]
        )
        elems = elems.at[0].set(jnp.broadcast_to(first, (n_states, n_states)))
        prefix = lax.associative_scan(_rescaled_product, elems)
        alphas, _ = _safe_normalize(prefix[:, 0, :], uniform)
        return alphas[-1], alphas

    alphas = _blocked_scan(
        block, pi, (b, inp.session_starts, inp.groups), (1.0, True, 0), block_size, n_time_bins
    )
    return alphas, _log_normalizers(inp, alphas, b)


def _log_c(c, shift):
    """``log c_t + shift_t``, with ``-inf`` where ``c_t`` underflowed to zero."""
    return jnp.where(c > 0, jnp.log(jnp.where(c > 0, c, 1.0)), -jnp.inf) + shift


def _forward(inp: _Inputs, method: str, block_size):
    b, shift = _scaled_likelihoods(inp.log_likelihoods)
    if method == "sequential":
        alphas, c = _forward_sequential(inp, b)
    else:
        alphas, c = _forward_parallel(inp, b, block_size)
    return alphas, c, _log_c(c, shift), b


def _backward_sequential(inp: _Inputs, b):
    """Backward messages ``beta_t ∝ A (b_{t+1} ⊙ beta_{t+1})``, ones at session ends.

    The scan carries ``g_t = b_t ⊙ beta_t`` (normalised) and emits
    ``beta_t = A g_{t+1}`` unnormalised (its scale cancels wherever it is
    used), mirroring the forward pass so each step is one matrix-vector
    product followed by elementwise work.
    """
    A, starts, groups = inp.transition_matrix, inp.session_starts, inp.groups
    tiny = jnp.finfo(b.dtype).tiny
    ones = jnp.ones(b.shape[1:], b.dtype)

    def step(g_next, x):
        b_t, start_next, group_next = x
        beta = jnp.where(start_next[..., None], ones, _propagate_back(g_next, A, group_next))
        g = beta * b_t
        return g / jnp.maximum(g.sum(axis=-1, keepdims=True), tiny), beta

    # every step emits its beta (no copy to append the last): the last step is a session end
    s_next, g_next = _next_step_inputs(starts, groups)
    _, betas = lax.scan(step, ones, (b, s_next, g_next), reverse=True)
    return betas


def _backward_parallel(inp: _Inputs, b, block_size):
    pi, A = inp.initial_probs, inp.transition_matrix
    n_time_bins, n_states = b.shape
    block_size = _block_size(block_size, n_time_bins, 3 * n_states * n_states * b.dtype.itemsize)
    # Element t maps beta_{t+1} to beta_t, so it uses the inputs of step t + 1.
    b_next = jnp.concatenate([b[1:], jnp.ones((1, n_states), b.dtype)])
    s_next, g_next = _next_step_inputs(inp.session_starts, inp.groups)
    uniform = jnp.full(n_states, 1.0 / n_states, b.dtype)

    def suffix_product(later, earlier):
        # reverse scan: ``later`` holds steps after ``earlier``
        return _rescaled_product(earlier, later)

    def block(beta_in, x):
        b_blk, s_blk, g_blk = x
        elems = _block_elements(pi, A, b_blk, s_blk, g_blk)
        # the block's last step absorbs the incoming message: all its columns are equal
        last = elems[-1] @ beta_in
        elems = elems.at[-1].set(jnp.broadcast_to(last[:, None], (n_states, n_states)))
        suffix = lax.associative_scan(suffix_product, elems, reverse=True)
        betas, _ = _safe_normalize(suffix[:, :, 0], uniform)
        return betas[0], betas

    return _blocked_scan(
        block,
        uniform,
        (b_next, s_next, g_next),
        (1.0, True, 0),
        block_size,
        n_time_bins,
        reverse=True,
    )


def _next_step_inputs(starts, groups):
    """Start flags and groups of step ``t + 1``, aligned with step ``t`` (time on axis 0)."""
    s_next = jnp.concatenate([starts[1:], jnp.ones((1,) + starts.shape[1:], bool)])
    g_next = (
        None
        if groups is None
        else jnp.concatenate([groups[1:], jnp.zeros((1,) + groups.shape[1:], groups.dtype)])
    )
    return s_next, g_next


def _combine(inp: _Inputs, alphas, c, log_c, b, betas):
    """Posteriors and expected counts from the two passes' messages.

    Returns the fields of `HMMPosterior`, in order, as a tuple.
    """
    smoothed, expected, _ = _posterior_terms(inp, alphas, c, b, betas)
    initial_counts = inp.session_starts.astype(smoothed.dtype) @ smoothed
    return jnp.sum(log_c), smoothed, expected, initial_counts, log_c


def _posterior_terms(inp: _Inputs, alphas, c, b, betas):
    """Smoothed probabilities, expected transition counts summed over time, and ``<alpha, beta>``.

    Messages have time on axis 0 and the states last: ``(T, K)`` on one axis, or
    ``(L, R, K)`` for rows side by side (starts and groups ``(L, R)``).
    """
    n_states = b.shape[-1]
    norm = jnp.sum(alphas * betas, axis=-1)
    smoothed = _smoothed(alphas, betas, norm)
    starts = inp.session_starts
    denom = c * norm
    ok = (denom > 0) & ~starts
    # weights of step t + 1, stored at row t, so that the expected counts are one
    # time-aligned product sum_t alphas[t] (x) next_weights[t] (no shifted copies)
    next_weights = jnp.concatenate(
        [
            jnp.where(
                ok[1:, ..., None],
                b[1:] * betas[1:] / jnp.where(ok[1:], denom[1:], 1.0)[..., None],
                0.0,
            ),
            jnp.zeros((1,) + b.shape[1:], b.dtype),
        ]
    )
    A = inp.transition_matrix
    flat_alphas = alphas.reshape(-1, n_states)
    if A.ndim == 2:
        expected = A * _sum_outer(flat_alphas, next_weights.reshape(-1, n_states))
    else:
        groups = inp.groups
        g_next = jnp.concatenate([groups[1:], jnp.full((1,) + groups.shape[1:], -1, groups.dtype)])
        expected = jnp.stack(
            [
                A[g]
                * _sum_outer(
                    flat_alphas,
                    jnp.where((g_next == g)[..., None], next_weights, 0.0).reshape(-1, n_states),
                )
                for g in range(A.shape[0])
            ]
        )
    return smoothed, expected, norm


def _smoothed(alphas, betas, norm):
    """``alphas ⊙ betas / norm``, uniform where ``norm`` is 0 (as `_safe_normalize`)."""
    uniform = 1.0 / alphas.shape[-1]
    ok = (norm > 0)[..., None]
    return jnp.where(ok, alphas * betas / jnp.where(ok, norm[..., None], 1.0), uniform)


def _sum_outer(left, right, chunk=4096):
    """``left.T @ right`` summed over time in chunks, so float32 error stays small.

    One long product accumulates all ``n_time_bins`` terms in one running sum;
    summing per-chunk products instead keeps the relative error near float32
    resolution for 10^6+ steps at the same cost. Chunks are dynamic slices of
    the inputs, so nothing is copied or padded.
    """
    n_time_bins = left.shape[0]
    n_full = n_time_bins // chunk
    if n_full == 0:
        return left.T @ right

    def body(i, total):
        lo = i * chunk
        blk_left = lax.dynamic_slice_in_dim(left, lo, chunk)
        blk_right = lax.dynamic_slice_in_dim(right, lo, chunk)
        return total + blk_left.T @ blk_right

    zeros = jnp.zeros((left.shape[1], right.shape[1]), jnp.result_type(left, right))
    total = lax.fori_loop(0, n_full, body, zeros)
    tail = n_full * chunk
    if tail < n_time_bins:
        total = total + left[tail:].T @ right[tail:]
    return total


# ----------------------------------------------------------------------------
# compiled pieces of the two-thread smoother (CPU, concrete inputs)
# ----------------------------------------------------------------------------


@jax.jit
def _prepare_program(initial_probs, transition_matrix, log_likelihoods, session_starts, groups):
    inp = _check_inputs(initial_probs, transition_matrix, log_likelihoods, session_starts, groups)
    b, shift = _scaled_likelihoods(inp.log_likelihoods)
    return inp, b, shift


@jax.jit
def _forward_program(inp: _Inputs, b, shift):
    alphas, c = _forward_sequential(inp, b)
    return alphas, c, _log_c(c, shift)


@jax.jit
def _backward_program(inp: _Inputs, b):
    return _backward_sequential(inp, b)


@jax.jit
def _combine_program(inp: _Inputs, alphas, c, log_c, b, betas):
    return _combine(inp, alphas, c, log_c, b, betas)


# ----------------------------------------------------------------------------
# the public kernels' check of the log-likelihoods (outside jit)
# ----------------------------------------------------------------------------


class NonFiniteLogLikelihoodError(ValueError, FloatingPointError):
    """``log_likelihoods`` hold NaN, ``+inf``, or a time bin where no state is possible.

    Both a ValueError (a bad argument of a kernel) and a FloatingPointError (a
    numerical failure, when a model's emission log-likelihoods overflowed), so a
    caller that catches either sees it.
    """


@jax.jit
def _row_max_range(log_likelihoods):
    """Largest and smallest row maximum: NaN if any entry is NaN, +inf / -inf flag the rest.

    One pass over the data (a row reduction), so the check costs about a copy; the
    location of a bad entry is searched for only once one is known to exist.
    """
    row_max = jnp.max(log_likelihoods, axis=1)
    return jnp.max(row_max), jnp.min(row_max)


@jax.jit
def _non_finite_summary(log_likelihoods):
    """Whether any entry is NaN or +inf and the first one (flat index); same for all -inf rows."""
    bad = (jnp.isnan(log_likelihoods) | (log_likelihoods == jnp.inf)).reshape(-1)
    empty = jnp.all(log_likelihoods == -jnp.inf, axis=1)
    return jnp.any(bad), jnp.argmax(bad), jnp.any(empty), jnp.argmax(empty)


def check_log_likelihoods(log_likelihoods):
    """Refuse NaN, +inf and all -inf rows in concrete log-likelihoods; pass tracers through.

    ``-inf`` marks an impossible state and is allowed, as long as every time bin
    keeps one possible state. The check is one row reduction and one host sync; under
    ``jax.jit`` (a tracer) nothing is checked, so compiled callers pay nothing.

    Parameters
    ----------
    log_likelihoods : array-like of shape (n_time_bins, n_states)
        ``log p(y_t | z_t = k)`` in nats.

    Returns
    -------
    jax.Array or tracer
        ``log_likelihoods`` as a JAX array (unchanged if it is a tracer, or if its
        shape is not 2-D: the kernels' own shape check reports that).

    Raises
    ------
    NonFiniteLogLikelihoodError
        A ValueError and FloatingPointError: if an entry is NaN or +inf (naming
        the first, ``[t, k]``), or if every state of some time bin ``t`` is
        ``-inf`` (naming the first such ``t``).
    """
    if isinstance(log_likelihoods, jax.core.Tracer):
        return log_likelihoods
    # concrete values closed over by a jitted function are checked too, eagerly, while it traces
    with jax.ensure_compile_time_eval():
        ll = jnp.asarray(log_likelihoods)
        if ll.ndim != 2 or ll.size == 0 or not jnp.issubdtype(ll.dtype, jnp.floating):
            return ll
        top, bottom = (float(v) for v in jax.device_get(_row_max_range(ll)))
        if np.isfinite(top) and bottom > -np.inf:
            return ll
        any_bad, first_bad, any_empty, first_empty = jax.device_get(_non_finite_summary(ll))
        if any_bad:
            t, k = divmod(int(first_bad), ll.shape[1])
            nan = bool(jnp.isnan(ll[t, k]))
    if any_bad:
        what = "NaN" if nan else "+inf"
        raise NonFiniteLogLikelihoodError(
            f"log_likelihoods must be finite or -inf (an impossible state), but "
            f"log_likelihoods[{t}, {k}] (time bin {t}, state {k}) is {what}."
        )
    if any_empty:
        t = int(first_empty)
        raise NonFiniteLogLikelihoodError(
            f"log_likelihoods[{t}] is -inf for every state: no state is possible at time bin {t}."
        )
    return ll
