"""Compiled programs of the GLM-HMM: E-step likelihoods, the M-step, and simulation.

Programs are module-level ``jax.jit`` functions whose static arguments are
hashable descriptions of the model (family, inverse link, regularizer and
solver names, frozen solver keyword arguments). Every ``GLMHMM`` instance
with the same description and data shapes reuses the same compiled program,
and data lengths are padded to bucket sizes (see ``behavhmm._utils.bucket_length``),
so refits, cross-validation folds and ``n_init`` restarts do not recompile.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import jaxopt

from ..._precision import pinned, pinned_jit
from ...fitting.regularizers import regularizer_penalty
from ...fitting.solvers import (
    SolverInfo,
    block_start,
    blocked_frame_sum,
    even_blocks,
    minimize,
    minimize_glm_newton,
)
from ...inference import hmm_filter, hmm_viterbi
from ...inference.hmm import _smoother_unchecked  # the E-step: inputs come from our programs
from ...observations.glm import (
    FIXED_SCALE_FAMILIES,
    GLMParams,
    gaussian_scale_map,
    glm_column_nll,
    glm_elementwise_log_prob,
    glm_expected_nll,
    glm_log_likelihoods,
    glm_mean,
    glm_sample,
)
from ...transitions import dirichlet_log_density, dirichlet_map

__all__ = ["GLMHMMParams", "GLMConfig", "GLMHyper"]


class GLMHMMParams(NamedTuple):
    """All GLM-HMM parameters as JAX arrays (features flattened, state axis last)."""

    initial_prob: jax.Array  # (n_states,)
    transition_prob: jax.Array  # (n_states, n_states)
    coef: jax.Array  # (n_features, [n_outputs,] n_states)
    intercept: jax.Array  # ([n_outputs,] n_states)
    scale: jax.Array  # ([n_outputs,] n_states)


class GLMConfig(NamedTuple):
    """Static description of the emission model and its M-step (hashable)."""

    family: str
    link: Callable
    regularizer: str
    solver: str
    solver_kwargs: tuple[tuple[str, Any], ...]
    scale_solver_kwargs: tuple[tuple[str, Any], ...]
    block_size: int | None = None  # frames per block of the M-step's sums (None: M_STEP_BLOCK)


class GLMHyper(NamedTuple):
    """Traced hyperparameters of the M-step.

    ``reg`` holds the penalty's hyperparameters with strengths divided by
    ``normalizer`` (the objective is per frame); ``alpha_*`` are the Dirichlet
    concentrations (all ones for a flat prior).
    """

    reg: dict
    normalizer: jax.Array
    scale_floor: jax.Array
    alpha_initial: jax.Array
    alpha_transition: jax.Array


#: Frames per block of the M-step's sums when ``block_size`` is None (temporaries of about
#: ``b ((F + 1)(K + 1) + 7 K)`` bytes per frame: 21 MiB for F = 10, K = 4 in float32).
M_STEP_BLOCK = 1 << 16


def _m_block(config: GLMConfig) -> int:
    return M_STEP_BLOCK if config.block_size is None else config.block_size


def _glm(params: GLMHMMParams) -> GLMParams:
    return GLMParams(params.coef, params.intercept)


# ----------------------------------------------------------------------------
# E-step pieces
# ----------------------------------------------------------------------------


def _blocked_rows(fn, arrays, block_size: int | None):
    """``fn(*arrays)`` computed ``block_size`` rows at a time, into one output (no input copies).

    Blocks are read with ``lax.dynamic_slice``; ``ceil(n / block_size)`` blocks
    of equal length (at most ``block_size`` rows), the last one the last rows
    (it rewrites fewer rows than there are blocks, with the same values).
    """
    n = arrays[0].shape[0]
    if block_size is None or block_size >= n:
        return fn(*arrays)
    n_blocks, rows = even_blocks(n, block_size)

    def block(i):
        start = block_start(i, rows, n)
        return start, fn(*(jax.lax.dynamic_slice_in_dim(a, start, rows) for a in arrays))

    _, first = block(0)
    out = jnp.zeros((n,) + first.shape[1:], first.dtype).at[:rows].set(first)

    def write(i, acc):
        start, values = block(i)
        return jax.lax.dynamic_update_slice_in_dim(acc, values, start, axis=0)

    return jax.lax.fori_loop(1, n_blocks, write, out)


def masked_log_likelihoods(
    params: GLMHMMParams,
    X,
    y,
    ll_const,
    weights,
    family: str,
    link: Callable,
    block_size: int | None = None,
):
    """Per-state log-likelihoods, 0 on padding rows (weight 0).

    ``ll_const`` holds the terms that depend on ``y`` only (see
    ``glm_log_likelihood_constant``), computed once per data set; shape
    (T,), or (T, K) when it also holds the log-evidence of hand labels;
    ``block_size`` rows are computed at a time (None: all).
    """

    def rows(xb, yb):
        glm = _glm(params)
        return glm_log_likelihoods(family, link, glm, params.scale, xb, yb, include_constant=False)

    ll = _blocked_rows(rows, (X, y), block_size)
    const = ll_const if ll_const.ndim == 2 else ll_const[:, None]
    return jnp.where(weights[:, None] > 0, ll + const, 0.0)


log_likelihood_program = pinned_jit(
    masked_log_likelihoods, static_argnames=("family", "link", "block_size")
)


@pinned
def posterior(
    params: GLMHMMParams,
    X,
    y,
    ll_const,
    starts,
    weights,
    family: str,
    link: Callable,
    method: str,
    block_size: int | None = None,
):
    """E-step: smoothed posteriors and expected counts (two CPU threads when it pays off)."""
    ll = log_likelihood_program(params, X, y, ll_const, weights, family, link, block_size)
    return _smoother_unchecked(
        params.initial_prob, params.transition_prob, ll, starts, method=method
    )


@pinned_jit(static_argnames=("family", "link", "method"))
def filter_program(
    params: GLMHMMParams, X, y, ll_const, starts, weights, family: str, link: Callable, method: str
):
    """Filtered probabilities and the marginal log-likelihood."""
    ll = masked_log_likelihoods(params, X, y, ll_const, weights, family, link)
    res = hmm_filter(params.initial_prob, params.transition_prob, ll, starts, method=method)
    return res.filtered_probs, res.log_likelihood


@pinned_jit(static_argnames=("family", "link", "method"))
def viterbi_program(
    params: GLMHMMParams, X, y, ll_const, starts, weights, family: str, link: Callable, method: str
):
    """Most likely state path."""
    ll = masked_log_likelihoods(params, X, y, ll_const, weights, family, link)
    return hmm_viterbi(params.initial_prob, params.transition_prob, ll, starts, method=method)


# ----------------------------------------------------------------------------
# M-step
# ----------------------------------------------------------------------------


def _objective(glm: GLMParams, scale, X, y, gamma, normalizer, family, link, block_size):
    def block(g, xb, yb):
        return glm_expected_nll(family, link, glm, scale, xb, yb, g, normalizer)

    return blocked_frame_sum(block, gamma, (X, y), block_size)


def _separable(config: GLMConfig, hyper: GLMHyper) -> bool:
    """The penalty splits over states and outputs (all but a group Lasso with a full-shape mask)."""
    return config.regularizer != "GroupLasso" or hyper.reg["mask"].ndim == 2


def glm_m_step(glm: GLMParams, scale, gamma, X, y, hyper: GLMHyper, config: GLMConfig):
    """Coordinate M-step of the emissions: weights at the current scale, then the scale.

    Each block maximises the expected complete-data log-likelihood (plus the
    penalty) with the other fixed, so the EM objective never decreases. The
    objective is a sum of one term per state (and per neuron of a
    population); unless the penalty couples them, each term is minimised by
    its own solver, all of them vectorised with ``jax.vmap``: a small,
    well-conditioned problem converges in a few iterations, where one solver
    on the joint problem needs many. (Measured on a Poisson population,
    T=50,000, 20 neurons, 4 states, float64: about 10 L-BFGS iterations per
    M-step and 3.5-4 s, against 50-70 iterations and about 5 s for one
    solver on the joint problem or one per state; the default Newton solver
    needs 0-5 iterations and about 0.1-0.55 s per M-step on the same problem.)
    Every sum over frames is accumulated ``config.block_size`` frames at a
    time (``M_STEP_BLOCK`` when None; see
    [`blocked_frame_sum`][behavhmm.fitting.solvers.blocked_frame_sum]).

    Returns
    -------
    glm : GLMParams
    scale : array of shape ([n_outputs,] n_states)
    info : SolverInfo
        Iterations (the largest over states and outputs) and final error of
        the weights' solver.
    """
    if _separable(config, hyper):
        return _columnwise_m_step(glm, scale, gamma, X, y, hyper, config)
    family, link = config.family, config.link
    objective = partial(_objective, family=family, link=link, block_size=_m_block(config))
    new_glm, info = minimize(
        objective,
        glm,
        (scale, X, y, gamma, hyper.normalizer),
        solver_name=config.solver,
        solver_kwargs=config.solver_kwargs,
        regularizer=config.regularizer,
        hyper=hyper.reg,
    )
    if family in FIXED_SCALE_FAMILIES:
        new_scale = scale
    elif family == "Gaussian":
        new_scale = gaussian_scale_map(link, new_glm, X, y, gamma, hyper.scale_floor)
    else:  # Gamma, NegativeBinomial: no closed form; L-BFGS on log(scale)

        def scale_objective(log_scale):
            return objective(new_glm, jnp.exp(log_scale), X, y, gamma, hyper.normalizer)

        solver = jaxopt.LBFGS(fun=scale_objective, **dict(config.scale_solver_kwargs))
        new_scale = jnp.exp(solver.run(jnp.log(scale)).params)
    return new_glm, new_scale, info


def _column_nll(config: GLMConfig, X, normalizer):
    """``nll(coef, intercept, scale, y, weights)`` of one column, summed in blocks of frames."""
    family, link = config.family, config.link

    def nll(coef, intercept, s, yc, g):
        def block(gb, xb, yb):
            return glm_column_nll(family, link, coef, intercept, s, xb, yb, gb, normalizer)

        return blocked_frame_sum(block, g, (X, yc), _m_block(config))

    return nll


def _solve_column_weights(w, b, s, g, yc, reg_col, X, hyper: GLMHyper, config: GLMConfig):
    """The weights of one state's (and output's) GLM at a fixed scale."""
    family, link = config.family, config.link
    if config.solver == "Newton":
        return minimize_glm_newton(
            lambda eta, yb: glm_elementwise_log_prob(family, link, yb, eta, s),
            w,
            b,
            X,
            g,
            hyper.normalizer,
            regularizer=config.regularizer,
            hyper=reg_col,
            solver_kwargs=config.solver_kwargs,
            data=(yc.astype(X.dtype),),  # once, outside the solver's loop
            block_size=_m_block(config),
        )
    nll = _column_nll(config, X, hyper.normalizer)
    params, info = minimize(
        lambda p, s_, yc_, g_: nll(p.coef, p.intercept, s_, yc_, g_),
        GLMParams(w, b),
        (s, yc, g),
        solver_name=config.solver,
        solver_kwargs=config.solver_kwargs,
        regularizer=config.regularizer,
        hyper=reg_col,
    )
    return (params.coef, params.intercept), info


def _solve_column_scale(coef, intercept, s, g, yc, X, hyper: GLMHyper, config: GLMConfig):
    """The scale of one column at fixed weights: kept, closed form (Gaussian), or L-BFGS."""
    family, link = config.family, config.link
    if family in FIXED_SCALE_FAMILIES:
        return s
    if family == "Gaussian":

        def block(gb, xb, yb):
            resid = yb - link(xb @ coef + intercept)
            return jnp.sum(gb * resid * resid), jnp.sum(gb)

        num, den = blocked_frame_sum(block, g, (X, yc), _m_block(config))
        return jnp.maximum(num / jnp.maximum(den, hyper.scale_floor), hyper.scale_floor)
    nll = _column_nll(config, X, hyper.normalizer)
    return jnp.exp(
        jaxopt.LBFGS(
            fun=lambda log_s: nll(coef, intercept, jnp.exp(log_s), yc, g),
            **dict(config.scale_solver_kwargs),
        )
        .run(jnp.log(s))
        .params
    )


def _columnwise_m_step(glm: GLMParams, scale, gamma, X, y, hyper: GLMHyper, config: GLMConfig):
    """The M-step solved per state (and output), vectorised over them."""
    elementwise = config.regularizer != "GroupLasso"
    reg = (
        {k: jnp.broadcast_to(v, glm.coef.shape) for k, v in hyper.reg.items()}
        if elementwise
        else hyper.reg
    )

    def solve(w, b, s, g, yc, reg_col):
        (cw, cb), info = _solve_column_weights(w, b, s, g, yc, reg_col, X, hyper, config)
        return cw, cb, _solve_column_scale(cw, cb, s, g, yc, X, hyper, config), info

    reg_axes = lambda axis: {k: (axis if elementwise else None) for k in reg}  # noqa: E731
    if config.family == "Categorical" or glm.coef.ndim == 2:
        # one problem per state: coef[..., k], intercept[..., k], scale[k], gamma[:, k]
        axis = glm.coef.ndim - 1
        solve_states = jax.vmap(
            solve,
            in_axes=(axis, axis - 1, 0, 1, None, reg_axes(axis)),
            out_axes=(axis, axis - 1, 0, 0),
        )
        coef, intercept, new_scale, info = solve_states(
            glm.coef, glm.intercept, scale, gamma, y, reg
        )
    else:
        # population: one problem per (neuron, state); gamma is shared by a state's neurons
        solve_neurons = jax.vmap(
            solve, in_axes=(1, 0, 0, None, 1, reg_axes(1)), out_axes=(1, 0, 0, 0)
        )
        solve_all = jax.vmap(
            solve_neurons, in_axes=(2, 1, 1, 1, None, reg_axes(2)), out_axes=(2, 1, 1, 0)
        )
        coef, intercept, new_scale, info = solve_all(glm.coef, glm.intercept, scale, gamma, y, reg)
    info = SolverInfo(jnp.max(info.iterations), jnp.max(info.error))
    return GLMParams(coef, intercept), new_scale, info


def log_prior(params: GLMHMMParams, hyper: GLMHyper, config: GLMConfig):
    """Log prior up to a constant: Dirichlet terms minus the (unscaled) penalty."""
    lp = dirichlet_log_density(params.initial_prob, hyper.alpha_initial, include_constant=False)
    lp += dirichlet_log_density(
        params.transition_prob, hyper.alpha_transition, include_constant=False
    )
    return lp - hyper.normalizer * regularizer_penalty(config.regularizer, params.coef, hyper.reg)


@pinned_jit(static_argnames=("config",))
def m_step_program(
    params: GLMHMMParams, post, X, y, ll_const, starts, weights, hyper: GLMHyper, config: GLMConfig
):
    """MAP M-step; also returns the log prior of the parameters that entered it."""
    gamma = post.smoothed_probs * weights[:, None]
    initial_counts = (starts & (weights > 0)).astype(gamma.dtype) @ post.smoothed_probs
    glm, scale, info = glm_m_step(_glm(params), params.scale, gamma, X, y, hyper, config)
    new = GLMHMMParams(
        initial_prob=dirichlet_map(initial_counts, hyper.alpha_initial, params.initial_prob),
        transition_prob=dirichlet_map(
            post.expected_transitions, hyper.alpha_transition, params.transition_prob
        ),
        coef=glm.coef,
        intercept=glm.intercept,
        scale=scale,
    )
    return new, log_prior(params, hyper, config), info


@pinned
def em_step(
    params: GLMHMMParams,
    X,
    y,
    ll_const,
    starts,
    weights,
    hyper: GLMHyper,
    config: GLMConfig,
    method: str,
    block_size: int | None = None,
):
    """One EM iteration (E-step programs, then the M-step program), at full matmul precision."""
    family, link = config.family, config.link
    post = posterior(params, X, y, ll_const, starts, weights, family, link, method, block_size)
    new, lp, _ = m_step_program(params, post, X, y, ll_const, starts, weights, hyper, config)
    return new, post.log_likelihood, lp


@pinned_jit(static_argnames=("config",))
def weighted_glm_program(glm: GLMParams, scale, gamma, X, y, hyper: GLMHyper, config: GLMConfig):
    """Fit each state's GLM to fixed weights ``gamma``.

    Used by the k-means initialisation and the 1-state baselines.
    """
    return glm_m_step(glm, scale, gamma, X, y, hyper, config)


# ----------------------------------------------------------------------------
# simulation
# ----------------------------------------------------------------------------


@pinned_jit(static_argnames=("family", "link"))
def simulate_program(key, params: GLMHMMParams, X, starts, family: str, link: Callable):
    """Draw states (resetting at session starts) and one observation per time bin.

    Returns
    -------
    y : array of shape (n_time_bins,) or (n_time_bins, n_outputs)
        Class indices for the categorical family.
    mean : array of shape (n_time_bins,), (n_time_bins, n_outputs) or (n_time_bins, n_classes)
        The predicted mean (class probabilities) in the drawn state.
    states : int32 array of shape (n_time_bins,)
    """
    n_time_bins = X.shape[0]
    k_states, k_obs = jax.random.split(key)
    log_pi = jnp.log(params.initial_prob)
    log_a = jnp.log(params.transition_prob)

    def step(z_prev, inp):
        start, k = inp
        z = jax.random.categorical(k, jnp.where(start, log_pi, log_a[z_prev])).astype(jnp.int32)
        return z, z

    _, states = jax.lax.scan(step, jnp.int32(0), (starts, jax.random.split(k_states, n_time_bins)))
    mean_all = glm_mean(family, link, _glm(params), X)  # (T, [C,] K)
    pick = states.reshape((n_time_bins,) + (1,) * (mean_all.ndim - 1))
    mean = jnp.take_along_axis(mean_all, pick, axis=-1)[..., 0]
    scale = jnp.moveaxis(params.scale, -1, 0)[states]  # (T, [C])
    y = glm_sample(family, k_obs, mean, scale)
    return y, mean, states
