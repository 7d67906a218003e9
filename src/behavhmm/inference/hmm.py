"""Session-aware inference kernels for discrete-state hidden Markov models.

Every kernel works on **one concatenated time axis** holding any number of
sessions, marked by a boolean ``session_starts`` mask. At a session start the
chain is reset: ``p(z_t | z_{t-1}) = initial_probs``, so a reset step behaves
like a transition matrix whose rows all equal ``initial_probs``. That single
rule makes filtering, smoothing, Viterbi decoding and posterior sampling
session-aware with no padding, and the result for several sessions equals the
results of running each session on its own.

All kernels are pure JAX functions of arrays (they can be jitted, vmapped and
differentiated) and return NamedTuples. Two algorithms are provided for each:

``"sequential"``
    A `jax.lax.scan` over time: O(T K^2) work, O(T K) memory. The fastest
    choice on CPUs.
``"parallel"``
    Blocked associative scans (Särkkä & García-Fernández, 2021; Hassan et al.,
    2021): O(log T) depth inside each block, for GPUs and TPUs. Memory is
    O(block_size K^2) per block (O(block_size K^3) for Viterbi), bounded by
    ``block_size``.

``"auto"`` picks ``"parallel"`` on accelerators and ``"sequential"`` on CPUs.

Messages are normalised at every step and likelihoods are shifted by their
per-step maximum before exponentiation, so float32 stays accurate over 10^6+
time steps.

References
----------
L. R. Rabiner (1989). A tutorial on hidden Markov models and selected
applications in speech recognition. Proc. IEEE 77(2), 257-286.

S. Särkkä and Á. F. García-Fernández (2021). Temporal parallelization of
Bayesian smoothers. IEEE Trans. Automatic Control 66(1), 299-306.

S. S. Hassan, S. Särkkä and Á. F. García-Fernández (2021). Temporal
parallelization of inference in hidden Markov models. IEEE Trans. Signal
Processing 69, 4875-4887.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Bool, Float, Int

__all__ = [
    "HMMFilterResult",
    "HMMPosterior",
    "HMMSample",
    "hmm_filter",
    "hmm_smoother",
    "hmm_viterbi",
    "hmm_sample",
    "resolve_method",
    "DEFAULT_BLOCK_BYTES",
]

#: Default memory allowed for one block of the parallel kernels, in bytes.
DEFAULT_BLOCK_BYTES = 2**27

_METHODS = ("auto", "sequential", "parallel")


class HMMFilterResult(NamedTuple):
    """Output of [`hmm_filter`][behavhmm.inference.hmm.hmm_filter].

    Attributes
    ----------
    log_likelihood : scalar array
        Marginal log-likelihood ``log p(y_{0:T})`` summed over all sessions,
        in nats.
    filtered_probs : array of shape (n_time_bins, n_states)
        ``p(z_t | y_{s:t})`` where ``s`` is the start of the session holding
        ``t``.
    log_normalizers : array of shape (n_time_bins,)
        ``log p(y_t | y_{s:t-1})``; they sum to ``log_likelihood``, and their
        sum over one session is that session's log-likelihood.
    """

    log_likelihood: Float[Array, ""]
    filtered_probs: Float[Array, "n_time_bins n_states"]
    log_normalizers: Float[Array, " n_time_bins"]


class HMMPosterior(NamedTuple):
    """Output of [`hmm_smoother`][behavhmm.inference.hmm.hmm_smoother].

    Attributes
    ----------
    log_likelihood : scalar array
        Marginal log-likelihood summed over all sessions, in nats.
    smoothed_probs : array of shape (n_time_bins, n_states)
        ``p(z_t | y)`` given the whole session holding ``t``.
    expected_transitions : array of shape (n_states, n_states) or (n_groups, n_states, n_states)
        ``sum_t p(z_{t-1} = i, z_t = j | y)`` over all steps that are not
        session starts (per transition group when ``transition_matrix`` is
        3-D). Never materialised per time step.
    expected_initial_counts : array of shape (n_states,)
        ``sum_s p(z_s | y)`` over the session starts ``s``.
    log_normalizers : array of shape (n_time_bins,)
        Per-step ``log p(y_t | y_{s:t-1})``, as in [`HMMFilterResult`][behavhmm.inference.hmm.HMMFilterResult].
    """

    log_likelihood: Float[Array, ""]
    smoothed_probs: Float[Array, "n_time_bins n_states"]
    expected_transitions: Float[Array, "... n_states n_states"]
    expected_initial_counts: Float[Array, " n_states"]
    log_normalizers: Float[Array, " n_time_bins"]


class HMMSample(NamedTuple):
    """Output of [`hmm_sample`][behavhmm.inference.hmm.hmm_sample].

    Attributes
    ----------
    states : int32 array of shape (n_time_bins,)
        One draw of the state path from ``p(z | y)``.
    log_likelihood : scalar array
        Marginal log-likelihood of the observations, in nats (a by-product of
        the forward pass, useful for Gibbs samplers' log-joint traces).
    """

    states: Int[Array, " n_time_bins"]
    log_likelihood: Float[Array, ""]


# ----------------------------------------------------------------------------
# input handling
# ----------------------------------------------------------------------------


def resolve_method(method: str) -> str:
    """Resolve ``"auto"`` to ``"sequential"`` (CPU) or ``"parallel"`` (GPU/TPU).

    Parameters
    ----------
    method : {"auto", "sequential", "parallel"}
        Requested algorithm.

    Returns
    -------
    str
        ``"sequential"`` or ``"parallel"``.

    Raises
    ------
    ValueError
        If ``method`` is not one of the three names.
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}.")
    if method == "auto":
        return "sequential" if jax.default_backend() == "cpu" else "parallel"
    return method


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
    """Return ``b = exp(ll - max_k ll)`` and the per-step shift ``max_k ll``."""
    shift = jnp.max(log_likelihoods, axis=1)
    shift = jnp.where(jnp.isfinite(shift), shift, 0.0)
    return jnp.exp(log_likelihoods - shift[:, None]), shift


def _select(matrix, group):
    """The transition matrix for one step: shared, or indexed by its group."""
    return matrix if matrix.ndim == 2 else matrix[group]


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
        u = jnp.where(start_t, pi, alpha_prev @ _select(A, g_t)) * b_t
        return u / jnp.maximum(u.sum(), tiny), u

    _, u = lax.scan(step, pi, (b, starts, groups))
    c = u.sum(axis=1)
    n_states = b.shape[1]
    # c_t = 0 only if the observation is impossible under the model (log c = -inf)
    alphas = jnp.where((c > 0)[:, None], u / jnp.maximum(c, tiny)[:, None], 1.0 / n_states)
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
    n_states = b.shape[1]
    tiny = jnp.finfo(b.dtype).tiny
    ones = jnp.ones(n_states, b.dtype)

    def step(g_next, x):
        b_t, start_next, group_next = x
        beta = jnp.where(start_next, ones, _select(A, group_next) @ g_next)
        g = beta * b_t
        return g / jnp.maximum(g.sum(), tiny), beta

    g_last = b[-1] / jnp.maximum(b[-1].sum(), tiny)
    xs = (b[:-1], starts[1:], None if groups is None else groups[1:])
    _, betas = lax.scan(step, g_last, xs, reverse=True)
    return jnp.concatenate([betas, ones[None]])


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


# ----------------------------------------------------------------------------
# public kernels
# ----------------------------------------------------------------------------


@partial(jax.jit, static_argnames=("method", "block_size"))
def hmm_filter(
    initial_probs: Float[Array, " n_states"],
    transition_matrix: Float[Array, "... n_states n_states"],
    log_likelihoods: Float[Array, "n_time_bins n_states"],
    session_starts: Bool[Array, " n_time_bins"] | None = None,
    *,
    groups: Int[Array, " n_time_bins"] | None = None,
    method: str = "sequential",
    block_size: int | None = None,
) -> HMMFilterResult:
    """Forward filter: causal state probabilities and the marginal log-likelihood.

    Parameters
    ----------
    initial_probs : array of shape (n_states,)
        ``p(z_s)`` at every session start ``s``.
    transition_matrix : array of shape (n_states, n_states) or (n_groups, n_states, n_states)
        Row-stochastic; ``[i, j] = p(z_t = j | z_{t-1} = i)``. A 3-D array holds
        one matrix per group, selected per step by ``groups``.
    log_likelihoods : array of shape (n_time_bins, n_states)
        ``log p(y_t | z_t = k)`` in nats. ``-inf`` marks an impossible state.
    session_starts : bool array of shape (n_time_bins,), optional
        True where a session begins; the chain resets there. Index 0 is
        always a start. None means one session.
    groups : int array of shape (n_time_bins,), optional
        Index of the transition matrix for ``p(z_t | z_{t-1})``; required
        when ``transition_matrix`` is 3-D.
    method : {"sequential", "parallel", "auto"}, default "sequential"
        Algorithm (see the module notes). Both give the same numbers up to
        floating-point rounding.
    block_size : int, optional
        Time steps per block of the parallel algorithm; by default chosen so
        a block uses about 128 MiB.

    Returns
    -------
    HMMFilterResult
        Log-likelihood, filtered probabilities and per-step log normalizers.

    Raises
    ------
    ValueError
        If shapes disagree or ``method`` is unknown.

    Notes
    -----
    With scaled likelihoods ``b_t = exp(ll_t - max_k ll_t)``, the recursion is
    ``alpha_t ∝ (alpha_{t-1} A) ⊙ b_t``, or ``initial_probs ⊙ b_t`` at a
    session start, normalised each step (Rabiner, 1989). If an observation
    has zero probability under the model its log normalizer is ``-inf`` and
    the filtered probabilities keep the prediction, so no NaN is produced.
    """
    method = resolve_method(method)
    inp = _check_inputs(initial_probs, transition_matrix, log_likelihoods, session_starts, groups)
    alphas, _, log_c, _ = _forward(inp, method, block_size)
    return HMMFilterResult(jnp.sum(log_c), alphas, log_c)


def hmm_smoother(
    initial_probs: Float[Array, " n_states"],
    transition_matrix: Float[Array, "... n_states n_states"],
    log_likelihoods: Float[Array, "n_time_bins n_states"],
    session_starts: Bool[Array, " n_time_bins"] | None = None,
    *,
    groups: Int[Array, " n_time_bins"] | None = None,
    method: str = "sequential",
    block_size: int | None = None,
) -> HMMPosterior:
    """Forward-backward smoother with expected transition counts.

    Parameters are as in [`hmm_filter`][behavhmm.inference.hmm.hmm_filter].

    Returns
    -------
    HMMPosterior
        Log-likelihood, smoothed probabilities ``(n_time_bins, n_states)``,
        expected transition counts summed over time (``(n_states, n_states)``,
        or ``(n_groups, n_states, n_states)`` with groups), expected counts of
        the initial state, and per-step log normalizers.

    Raises
    ------
    ValueError
        If shapes disagree or ``method`` is unknown.

    Notes
    -----
    The backward messages ``beta_t ∝ A (b_{t+1} ⊙ beta_{t+1})`` (uniform at
    the last step of each session) do not depend on the forward messages, so
    the two passes are independent scans. The two-slice marginals are never
    formed per step: with ``w_t = b_t ⊙ beta_t / (c_t <alpha_t, beta_t>)``,
    where ``c_t`` is the forward normaliser, the expected counts are
    ``A ⊙ (alpha_{0:T-1}^T w_{1:T})``, one matrix product over time that skips
    session starts.

    On a CPU, when called with concrete arrays (outside ``jax.jit``) and
    ``method="sequential"``, the forward and backward passes run as two
    compiled programs on two threads, so they use two cores at once; under
    ``jit``, ``vmap`` or on accelerators the smoother is one program built
    from the same pieces, giving the same numbers. Set
    ``behavhmm.inference.hmm.CONCURRENT_PASSES = False`` to always use one
    program.
    """
    method = resolve_method(method)
    args = (initial_probs, transition_matrix, log_likelihoods, session_starts, groups)
    if method == "sequential" and _concurrent_passes_pay_off(args):
        return _smoother_two_threads(*args)
    return _smoother_program(*args, method=method, block_size=block_size)


def _combine(inp: _Inputs, alphas, c, log_c, b, betas) -> HMMPosterior:
    """Posteriors and expected counts from the two passes' messages."""
    n_states = b.shape[1]
    uniform = jnp.full(n_states, 1.0 / n_states, b.dtype)
    smoothed, norm = _safe_normalize(alphas * betas, uniform)
    starts = inp.session_starts
    denom = c * norm
    ok = (denom > 0) & ~starts
    # weights of step t + 1, stored at row t, so that the expected counts are one
    # time-aligned product sum_t alphas[t] (x) next_weights[t] (no shifted copies)
    next_weights = jnp.concatenate(
        [
            jnp.where(
                ok[1:, None], b[1:] * betas[1:] / jnp.where(ok[1:], denom[1:], 1.0)[:, None], 0.0
            ),
            jnp.zeros((1, n_states), b.dtype),
        ]
    )
    A = inp.transition_matrix
    if A.ndim == 2:
        expected = A * _sum_outer(alphas, next_weights)
    else:
        g_next = jnp.concatenate([inp.groups[1:], jnp.full(1, -1, inp.groups.dtype)])
        expected = jnp.stack(
            [
                A[g] * _sum_outer(alphas, jnp.where((g_next == g)[:, None], next_weights, 0.0))
                for g in range(A.shape[0])
            ]
        )
    initial_counts = starts.astype(smoothed.dtype) @ smoothed
    return HMMPosterior(jnp.sum(log_c), smoothed, expected, initial_counts, log_c)


@partial(jax.jit, static_argnames=("method", "block_size"))
def _smoother_program(
    initial_probs,
    transition_matrix,
    log_likelihoods,
    session_starts,
    groups,
    *,
    method,
    block_size=None,
):
    inp = _check_inputs(initial_probs, transition_matrix, log_likelihoods, session_starts, groups)
    alphas, c, log_c, b = _forward(inp, method, block_size)
    if method == "sequential":
        betas = _backward_sequential(inp, b)
    else:
        betas = _backward_parallel(inp, b, block_size)
    return _combine(inp, alphas, c, log_c, b, betas)


# ----------------------------------------------------------------------------
# two passes on two threads (CPU, concrete inputs)
# ----------------------------------------------------------------------------

#: Run the smoother's independent forward and backward passes concurrently on
#: CPUs when it is called with concrete arrays. Set to False to always run one
#: compiled program.
CONCURRENT_PASSES = True
_MIN_CONCURRENT_SIZE = 2**16  # time bins x states below which one program is faster
_POOL: ThreadPoolExecutor | None = None


def _concurrent_passes_pay_off(args) -> bool:
    if not CONCURRENT_PASSES or (os.cpu_count() or 1) < 2 or jax.default_backend() != "cpu":
        return False
    if any(isinstance(a, jax.core.Tracer) for a in args):
        return False
    shape = jnp.shape(args[2])
    return len(shape) == 2 and shape[0] * shape[1] >= _MIN_CONCURRENT_SIZE


def _thread_pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="behavhmm-pass")
    return _POOL


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


def _smoother_two_threads(
    initial_probs, transition_matrix, log_likelihoods, session_starts, groups
):
    inp, b, shift = jax.block_until_ready(
        _prepare_program(initial_probs, transition_matrix, log_likelihoods, session_starts, groups)
    )
    pool = _thread_pool()
    forward = pool.submit(lambda: jax.block_until_ready(_forward_program(inp, b, shift)))
    backward = pool.submit(lambda: jax.block_until_ready(_backward_program(inp, b)))
    alphas, c, log_c = forward.result()
    return _combine_program(inp, alphas, c, log_c, b, backward.result())


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


@partial(jax.jit, static_argnames=("method", "block_size"))
def hmm_viterbi(
    initial_probs: Float[Array, " n_states"],
    transition_matrix: Float[Array, "... n_states n_states"],
    log_likelihoods: Float[Array, "n_time_bins n_states"],
    session_starts: Bool[Array, " n_time_bins"] | None = None,
    *,
    groups: Int[Array, " n_time_bins"] | None = None,
    method: str = "sequential",
    block_size: int | None = None,
) -> Int[Array, " n_time_bins"]:
    """Most likely state path (Viterbi), jointly over each session.

    Parameters are as in [`hmm_filter`][behavhmm.inference.hmm.hmm_filter]; for ``"parallel"`` the default
    block size bounds the ``(block_size, n_states, n_states, n_states)``
    temporaries of max-plus matrix products.

    Returns
    -------
    int32 array of shape (n_time_bins,)
        ``argmax_z p(z | y)`` computed per session (sessions are independent).

    Raises
    ------
    ValueError
        If shapes disagree or ``method`` is unknown.

    Notes
    -----
    The forward pass keeps only the normalised max-product messages
    ``delta_t``; the backtrace recomputes ``argmax_i delta_t[i] + log A[i, z_{t+1}]``
    (O(K) per step) instead of storing back-pointers from an O(K^2) argmax.
    Ties go to the lowest state index.
    """
    method = resolve_method(method)
    inp = _check_inputs(initial_probs, transition_matrix, log_likelihoods, session_starts, groups)
    log_pi = jnp.log(inp.initial_probs)
    log_A = jnp.log(inp.transition_matrix)
    if method == "sequential":
        deltas = _viterbi_forward_sequential(inp, log_pi, log_A)
        return _viterbi_backtrace_sequential(inp, deltas, log_A)
    deltas = _viterbi_forward_parallel(inp, log_pi, log_A, block_size)
    return _viterbi_backtrace_parallel(inp, deltas, log_A, block_size)


def _shift_max(x):
    mx = jnp.max(x, axis=-1, keepdims=True)
    return x - jnp.where(jnp.isfinite(mx), mx, 0.0)


def _viterbi_forward_sequential(inp: _Inputs, log_pi, log_A):
    ll, starts, groups = inp.log_likelihoods, inp.session_starts, inp.groups

    def step(delta_prev, x):
        ll_t, start_t, g_t = x
        best = jnp.max(delta_prev[:, None] + _select(log_A, g_t), axis=0)
        best = jnp.where(start_t, jnp.max(delta_prev) + log_pi, best)
        delta = _shift_max(best + ll_t)
        return delta, delta

    init = jnp.zeros_like(log_pi)
    _, deltas = lax.scan(step, init, (ll, starts, groups))
    return deltas


def _viterbi_backtrace_sequential(inp: _Inputs, deltas, log_A):
    starts, groups = inp.session_starts, inp.groups
    last = jnp.argmax(deltas[-1]).astype(jnp.int32)

    def step(z_next, x):
        delta_t, start_next, g_next = x
        scores = jnp.where(start_next, delta_t, delta_t + _select(log_A, g_next)[:, z_next])
        z = jnp.argmax(scores).astype(jnp.int32)
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


def _next_step_inputs(starts, groups):
    """Session-start flags and groups of step ``t + 1``, aligned with step ``t``."""
    s_next = jnp.concatenate([starts[1:], jnp.ones(1, bool)])
    g_next = None if groups is None else jnp.concatenate([groups[1:], jnp.zeros(1, jnp.int32)])
    return s_next, g_next


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


@partial(jax.jit, static_argnames=("method", "block_size"))
def hmm_sample(
    key: Array,
    initial_probs: Float[Array, " n_states"],
    transition_matrix: Float[Array, "... n_states n_states"],
    log_likelihoods: Float[Array, "n_time_bins n_states"],
    session_starts: Bool[Array, " n_time_bins"] | None = None,
    *,
    groups: Int[Array, " n_time_bins"] | None = None,
    method: str = "sequential",
    block_size: int | None = None,
) -> HMMSample:
    """Draw a state path from the posterior by forward-filter backward-sample.

    Parameters
    ----------
    key : jax.random key
        Randomness for this draw; the same key gives the same path. Both
        methods turn the key into the same uniforms, so they draw the same
        path up to floating-point rounding.
    initial_probs, transition_matrix, log_likelihoods, session_starts, groups, method, block_size
        As in [`hmm_filter`][behavhmm.inference.hmm.hmm_filter].

    Returns
    -------
    HMMSample
        ``states`` (int32, shape (n_time_bins,)) and the marginal
        log-likelihood.

    Raises
    ------
    ValueError
        If shapes disagree or ``method`` is unknown.

    Notes
    -----
    Backward sampling draws ``z_t ~ alpha_t ⊙ A[:, z_{t+1}]`` (Chib, 1996;
    Frühwirth-Schnatter, 1994), or ``z_t ~ alpha_t`` at the last step of a
    session, by inverting the cumulative distribution at a uniform ``u_t``.
    The parallel method writes each step as a map ``z_{t+1} -> z_t`` and
    composes the maps with an associative scan.
    """
    method = resolve_method(method)
    inp = _check_inputs(initial_probs, transition_matrix, log_likelihoods, session_starts, groups)
    alphas, _, log_c, _ = _forward(inp, method, block_size)
    n_time_bins, n_states = alphas.shape
    uniforms = jax.random.uniform(key, (n_time_bins,), dtype=alphas.dtype)
    A, starts, groups = inp.transition_matrix, inp.session_starts, inp.groups
    if method == "sequential":
        last = _inverse_cdf(alphas[-1], uniforms[-1])

        def step(z_next, x):
            alpha_t, u_t, start_next, g_next = x
            weights = jnp.where(start_next, alpha_t, alpha_t * _select(A, g_next)[:, z_next])
            z = _inverse_cdf(weights, u_t)
            return z, z

        xs = (alphas[:-1], uniforms[:-1], starts[1:], None if groups is None else groups[1:])
        _, path = lax.scan(step, last, xs, reverse=True)
        states = jnp.concatenate([path, last[None]])
    else:
        block_size = _block_size(block_size, n_time_bins, 3 * n_states**2 * alphas.dtype.itemsize)
        s_next, g_next = _next_step_inputs(starts, groups)
        per_column = jax.vmap(jax.vmap(_inverse_cdf, in_axes=(1, None)), in_axes=(0, 0))

        def make_maps(alpha_b, u_b, s_b, g_b):
            trans = A[None] if A.ndim == 2 else A[g_b]
            weights = jnp.where(
                s_b[:, None, None], alpha_b[:, :, None], alpha_b[:, :, None] * trans
            )
            return per_column(weights, u_b)

        states = _compose_backwards(
            make_maps,
            (alphas, uniforms, s_next, g_next),
            (0.0, 0.0, True, 0),
            block_size,
            n_time_bins,
        )
    return HMMSample(states.astype(jnp.int32), jnp.sum(log_c))


def _inverse_cdf(weights, u):
    """Index ``k`` with ``cdf[k-1] <= u * total < cdf[k]`` for unnormalised weights."""
    cdf = jnp.cumsum(weights)
    k = jnp.sum(cdf <= u * cdf[-1])
    return jnp.minimum(k, weights.shape[0] - 1).astype(jnp.int32)
