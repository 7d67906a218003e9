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
With concrete ``session_starts``, sequential kernels on accelerators (and parallel
Viterbi everywhere) run sessions side by side in length-bucketed rows
(`behavhmm.inference._sessions`); posterior draws use per-session keys.

Messages are normalised at every step and likelihoods are shifted by their
per-step maximum before exponentiation, so float32 stays accurate over 10^6+
time steps.

Called with concrete arrays, the public kernels refuse NaN and ``+inf`` in
``log_likelihoods`` and time bins where every state is ``-inf`` (a ValueError
naming the first such entry); ``-inf`` for some states is allowed. Under
``jax.jit`` the values are tracers and are not checked.

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

import os
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from ._hmm_messages import (
    DEFAULT_BLOCK_BYTES,
    NonFiniteLogLikelihoodError,
    _backward_parallel,
    _backward_program,
    _backward_sequential,
    _check_inputs,
    _combine,
    _combine_program,
    _forward,
    _forward_program,
    _prepare_program,
    check_log_likelihoods,
)
from ._hmm_paths import (
    _sample_parallel,
    _sample_sequential,
    _viterbi_backtrace_parallel,
    _viterbi_backtrace_sequential,
    _viterbi_forward_parallel,
    _viterbi_forward_sequential,
)
from ._hmm_rows import _one_after_the_other, filter_rows, sample_rows, smoother_rows, viterbi_rows
from ._sessions import plan_for, session_draws

__all__ = [
    "HMMFilterResult",
    "HMMPosterior",
    "HMMSample",
    "NonFiniteLogLikelihoodError",
    "hmm_filter",
    "hmm_smoother",
    "hmm_viterbi",
    "hmm_sample",
    "resolve_method",
    "DEFAULT_BLOCK_BYTES",
]

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
        Per-step ``log p(y_t | y_{s:t-1})``, as in
        [`HMMFilterResult`][behavhmm.inference.hmm.HMMFilterResult].
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


# ----------------------------------------------------------------------------
# public kernels
# ----------------------------------------------------------------------------


@partial(jax.jit, static_argnames=("method", "block_size"))
def _filter_program(
    initial_probs: Float[Array, " n_states"],
    transition_matrix: Float[Array, "... n_states n_states"],
    log_likelihoods: Float[Array, "n_time_bins n_states"],
    session_starts: Bool[Array, " n_time_bins"] | None = None,
    *,
    groups: Int[Array, " n_time_bins"] | None = None,
    method: str = "sequential",
    block_size: int | None = None,
) -> HMMFilterResult:
    """`hmm_filter` for callers under ``jax.jit``: no check of ``log_likelihoods``."""
    method = resolve_method(method)
    inp = _check_inputs(initial_probs, transition_matrix, log_likelihoods, session_starts, groups)
    alphas, _, log_c, _ = _forward(inp, method, block_size)
    return HMMFilterResult(jnp.sum(log_c), alphas, log_c)


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
        ``log p(y_t | z_t = k)`` in nats: finite, or ``-inf`` for an
        impossible state (every time bin needs one possible state).
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
        If shapes disagree or ``method`` is unknown; if ``log_likelihoods``
        holds NaN or ``+inf`` (the message names the first ``[t, k]``), or a
        time bin where every state is ``-inf`` (this error is also a
        FloatingPointError, as a model's numerical failures are). The values are checked when
        the kernel is called with concrete arrays (one reduction and one host
        synchronisation), not under ``jax.jit``, where they are tracers.

    Notes
    -----
    With scaled likelihoods ``b_t = exp(ll_t - max_k ll_t)``, the recursion is
    ``alpha_t ∝ (alpha_{t-1} A) ⊙ b_t``, or ``initial_probs ⊙ b_t`` at a
    session start, normalised each step (Rabiner, 1989). If an observation
    has zero probability under the model (its possible states are ruled out
    by the transitions) its log normalizer is ``-inf`` and the filtered
    probabilities keep the prediction, so no NaN is produced.
    """
    log_likelihoods = check_log_likelihoods(log_likelihoods)
    args = (initial_probs, transition_matrix, log_likelihoods, session_starts, groups)
    if resolve_method(method) == "sequential" and (plan := plan_for(session_starts, args[2])):
        return HMMFilterResult(*filter_rows(_check_inputs(*args), plan))
    return _filter_program(
        initial_probs,
        transition_matrix,
        log_likelihoods,
        session_starts,
        groups=groups,
        method=method,
        block_size=block_size,
    )


hmm_filter.lower = _filter_program.lower  # ahead-of-time lowering, as for any jitted function


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
        If shapes disagree or ``method`` is unknown; if ``log_likelihoods``
        holds NaN or ``+inf`` (the message names the first ``[t, k]``), or a
        time bin where every state is ``-inf`` (this error is also a
        FloatingPointError, as a model's numerical failures are). The values are checked when
        the kernel is called with concrete arrays (one reduction and one host
        synchronisation), not under ``jax.jit``, where they are tracers.

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
    program. With concrete session starts, the sessions run side by side (each
    step one matrix product over the sessions) on accelerators, and on CPUs from
    24 states (see "Sessions side by side" in the inference guide).
    """
    log_likelihoods = check_log_likelihoods(log_likelihoods)
    return _smoother_unchecked(
        initial_probs,
        transition_matrix,
        log_likelihoods,
        session_starts,
        groups=groups,
        method=method,
        block_size=block_size,
    )


def _smoother_unchecked(
    initial_probs,
    transition_matrix,
    log_likelihoods,
    session_starts=None,
    *,
    groups=None,
    method="sequential",
    block_size=None,
) -> HMMPosterior:
    """`hmm_smoother` without the check of ``log_likelihoods`` (for the models' E-steps)."""
    method = resolve_method(method)
    args = (initial_probs, transition_matrix, log_likelihoods, session_starts, groups)
    if method == "sequential" and (
        plan := plan_for(session_starts, log_likelihoods, kernel="hmm_smoother")
    ):
        runner = _two_threads if _concurrent_passes_pay_off(args) else _one_after_the_other
        return HMMPosterior(*smoother_rows(_check_inputs(*args), plan, runner))
    if method == "sequential" and _concurrent_passes_pay_off(args):
        return _smoother_two_threads(*args)
    return _smoother_program(*args, method=method, block_size=block_size)


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
    return HMMPosterior(*_combine(inp, alphas, c, log_c, b, betas))


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


def _two_threads(forward, backward):
    """Run two independent compiled calls at once; return both results."""
    pool = _thread_pool()
    first = pool.submit(lambda: jax.block_until_ready(forward()))
    second = pool.submit(lambda: jax.block_until_ready(backward()))
    return first.result(), second.result()


def _smoother_two_threads(
    initial_probs, transition_matrix, log_likelihoods, session_starts, groups
):
    inp, b, shift = jax.block_until_ready(
        _prepare_program(initial_probs, transition_matrix, log_likelihoods, session_starts, groups)
    )
    (alphas, c, log_c), betas = _two_threads(
        lambda: _forward_program(inp, b, shift), lambda: _backward_program(inp, b)
    )
    return HMMPosterior(*_combine_program(inp, alphas, c, log_c, b, betas))


@partial(jax.jit, static_argnames=("method", "block_size"))
def _viterbi_program(
    initial_probs: Float[Array, " n_states"],
    transition_matrix: Float[Array, "... n_states n_states"],
    log_likelihoods: Float[Array, "n_time_bins n_states"],
    session_starts: Bool[Array, " n_time_bins"] | None = None,
    *,
    groups: Int[Array, " n_time_bins"] | None = None,
    method: str = "sequential",
    block_size: int | None = None,
) -> Int[Array, " n_time_bins"]:
    """`hmm_viterbi` for callers under ``jax.jit``: no check of ``log_likelihoods``."""
    method = resolve_method(method)
    inp = _check_inputs(initial_probs, transition_matrix, log_likelihoods, session_starts, groups)
    log_pi = jnp.log(inp.initial_probs)
    log_A = jnp.log(inp.transition_matrix)
    if method == "sequential":
        deltas = _viterbi_forward_sequential(inp, log_pi, log_A)
        return _viterbi_backtrace_sequential(inp, deltas, log_A)
    deltas = _viterbi_forward_parallel(inp, log_pi, log_A, block_size)
    return _viterbi_backtrace_parallel(inp, deltas, log_A, block_size)


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

    Parameters are as in [`hmm_filter`][behavhmm.inference.hmm.hmm_filter]; for
    ``"parallel"`` the default block size bounds the ``(block_size, n_states, n_states, n_states)``
    temporaries of max-plus matrix products.

    Returns
    -------
    int32 array of shape (n_time_bins,)
        ``argmax_z p(z | y)`` computed per session (sessions are independent).

    Raises
    ------
    ValueError
        If shapes disagree or ``method`` is unknown; if ``log_likelihoods``
        holds NaN or ``+inf`` (the message names the first ``[t, k]``), or a
        time bin where every state is ``-inf`` (this error is also a
        FloatingPointError, as a model's numerical failures are). The values are checked when
        the kernel is called with concrete arrays (one reduction and one host
        synchronisation), not under ``jax.jit``, where they are tracers.

    Notes
    -----
    The forward pass keeps only the normalised max-product messages
    ``delta_t``; the backtrace recomputes ``argmax_i delta_t[i] + log A[i, z_{t+1}]``
    (O(K) per step) instead of storing back-pointers from an O(K^2) argmax.
    Ties go to the lowest state index.
    """
    log_likelihoods = check_log_likelihoods(log_likelihoods)
    parallel = resolve_method(method) == "parallel"
    args = (initial_probs, transition_matrix, log_likelihoods, session_starts, groups)
    if plan := plan_for(session_starts, args[2], min_sessions=1, always=parallel):
        return viterbi_rows(_check_inputs(*args), plan)
    return _viterbi_program(
        initial_probs,
        transition_matrix,
        log_likelihoods,
        session_starts,
        groups=groups,
        method=method,
        block_size=block_size,
    )


hmm_viterbi.lower = _viterbi_program.lower  # ahead-of-time lowering, as for any jitted function


@partial(jax.jit, static_argnames=("method", "block_size"))
def _sample_program(
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
    """`hmm_sample` for callers under ``jax.jit``: no check of ``log_likelihoods``."""
    method = resolve_method(method)
    inp = _check_inputs(initial_probs, transition_matrix, log_likelihoods, session_starts, groups)
    alphas, _, log_c, _ = _forward(inp, method, block_size)
    uniforms = session_draws(key, inp.session_starts, alphas.dtype)
    if method == "sequential":
        states = _sample_sequential(inp, alphas, uniforms)
    else:
        states = _sample_parallel(inp, alphas, uniforms, block_size)
    return HMMSample(states.astype(jnp.int32), jnp.sum(log_c))


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
        If shapes disagree or ``method`` is unknown; if ``log_likelihoods``
        holds NaN or ``+inf`` (the message names the first ``[t, k]``), or a
        time bin where every state is ``-inf`` (this error is also a
        FloatingPointError, as a model's numerical failures are). The values are checked when
        the kernel is called with concrete arrays (one reduction and one host
        synchronisation), not under ``jax.jit``, where they are tracers.

    Notes
    -----
    Backward sampling draws ``z_t ~ alpha_t ⊙ A[:, z_{t+1}]`` (Chib, 1996;
    Frühwirth-Schnatter, 1994), or ``z_t ~ alpha_t`` at the last step of a
    session, by inverting the cumulative distribution at a uniform ``u_t``.
    The parallel method writes each step as a map ``z_{t+1} -> z_t`` and
    composes the maps with an associative scan.
    """
    log_likelihoods = check_log_likelihoods(log_likelihoods)
    args = (initial_probs, transition_matrix, log_likelihoods, session_starts, groups)
    if resolve_method(method) == "sequential" and (
        plan := plan_for(session_starts, args[2], kernel="hmm_sample")
    ):
        return sample_on_plan(key, *args[:4], plan, groups)
    return _sample_program(
        key,
        initial_probs,
        transition_matrix,
        log_likelihoods,
        session_starts,
        groups=groups,
        method=method,
        block_size=block_size,
    )


hmm_sample.lower = _sample_program.lower  # ahead-of-time lowering, as for any jitted function


def sample_on_plan(
    key,
    initial_probs,
    transition_matrix,
    log_likelihoods,
    session_starts,
    plan,
    groups=None,
) -> HMMSample:
    """`hmm_sample`, sequential, with the sessions side by side as ``plan`` lays them out.

    For models' compiled programs, which build their `SessionPlan` once on the host
    and pass it in (its arrays as arguments, its shapes static). A row may hold
    several sessions of ``session_starts``: each start resets. The draw is
    `hmm_sample`'s (the same per-session uniforms) up to floating-point rounding.
    No check of ``log_likelihoods`` (see `hmm_sample`).
    """
    inp = _check_inputs(initial_probs, transition_matrix, log_likelihoods, session_starts, groups)
    return HMMSample(*sample_rows(key, inp, plan))
