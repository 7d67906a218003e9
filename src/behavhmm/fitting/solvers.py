"""Numerical M-step solvers: jaxopt's optimisers behind nemos' solver names.

| name | jaxopt class | penalties |
|---|---|---|
| ``"GradientDescent"`` | ``jaxopt.GradientDescent`` | smooth (UnRegularized, Ridge) |
| ``"BFGS"`` | ``jaxopt.BFGS`` | smooth |
| ``"LBFGS"`` | ``jaxopt.LBFGS`` | smooth |
| ``"NonlinearCG"`` | ``jaxopt.NonlinearCG`` | smooth |
| ``"ProximalGradient"`` | ``jaxopt.ProximalGradient`` (FISTA) | all (proximal operator) |
| ``"Newton"`` | [`GLMNewton`][behavhmm.fitting.solvers.GLMNewton] (exact Hessian) | GLMs (*) |

(*) behavhmm's damped Newton with a line search, for GLMs with one linear predictor per output.

[`minimize`][behavhmm.fitting.solvers.minimize] runs inside ``jax.jit``: the solver's name and
keyword arguments are static (hashable), the data and the penalty's hyperparameters are traced, so
one compiled program serves every fit with the same shapes. EM calls it warm-started from the
previous M-step, so a few iterations per EM step usually suffice; every solver decreases the
objective from its starting point, which keeps EM's objective non-decreasing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import jaxopt
from jax import lax

from .regularizers import regularizer_penalty, regularizer_prox

__all__ = [
    "SOLVERS",
    "SolverInfo",
    "solver_accepted_arguments",
    "check_solver_kwargs",
    "default_solver_kwargs",
    "freeze_kwargs",
    "minimize",
    "GLMNewton",
    "minimize_glm_newton",
    "blocked_frame_sum",
]


@dataclasses.dataclass(frozen=True)
class GLMNewton:
    """Settings of behavhmm's damped Newton solver for one GLM (see
    [`minimize_glm_newton`][behavhmm.fitting.solvers.minimize_glm_newton]).

    Attributes
    ----------
    maxiter : int, default 100
        Newton iterations per M-step.
    tol : float, default 1e-6
        Stop when the gradient norm (per frame) is below ``tol``.
    maxls : int, default 30
        Step halvings of the backtracking (Armijo) line search.
    """

    maxiter: int = 100
    tol: float = 1e-6
    maxls: int = 30


SOLVERS: dict[str, type] = {
    "GradientDescent": jaxopt.GradientDescent,
    "BFGS": jaxopt.BFGS,
    "LBFGS": jaxopt.LBFGS,
    "NonlinearCG": jaxopt.NonlinearCG,
    "ProximalGradient": jaxopt.ProximalGradient,
    "Newton": GLMNewton,
}
"""Solver classes by name: jaxopt's under nemos' names, and behavhmm's GLM Newton solver."""
_INTERNAL = {
    "fun",
    "prox",
    "value_and_grad",
    "has_aux",
    "implicit_diff",
    "implicit_diff_solve",
    "jit",
}


class SolverInfo(NamedTuple):
    """Diagnostics of one call to [`minimize`][behavhmm.fitting.solvers.minimize].

    Attributes
    ----------
    iterations : int array
        Iterations run.
    error : float array
        The solver's stopping criterion at the end (gradient norm, or the
        norm of the proximal-gradient step).
    """

    iterations: Any
    error: Any


def solver_accepted_arguments(solver_name: str) -> set[str]:
    """Keyword arguments ``solver_kwargs`` may set for ``solver_name``."""
    cls = SOLVERS[solver_name]
    return {f.name for f in dataclasses.fields(cls)} - _INTERNAL


def check_solver_kwargs(solver_name: str, solver_kwargs: Mapping[str, Any] | None) -> None:
    """Check ``solver_kwargs`` against the solver's arguments.

    Raises
    ------
    ValueError
        If ``solver_name`` is not a known solver.
    TypeError
        If ``solver_kwargs`` is not a dict.
    NameError
        For an argument the solver does not take (nemos' error type).
    """
    if solver_name not in SOLVERS:
        raise ValueError(f"Unknown solver {solver_name!r}; choose one of {sorted(SOLVERS)}.")
    if solver_kwargs is None:
        return
    if not isinstance(solver_kwargs, Mapping):
        raise TypeError(f"solver_kwargs must be a dict, got {type(solver_kwargs).__name__}.")
    undefined = set(solver_kwargs) - solver_accepted_arguments(solver_name)
    if undefined:
        raise NameError(
            f"kwargs {undefined} in solver_kwargs not a kwarg for {SOLVERS[solver_name].__name__}! "
            f"Accepted: {sorted(solver_accepted_arguments(solver_name))}."
        )


def default_solver_kwargs(solver_name: str, dtype) -> dict[str, Any]:
    """behavhmm's defaults for one warm-started M-step (the user's ``solver_kwargs`` override them).

    The objective is the posterior-weighted negative log-likelihood *per
    frame*, so ``tol`` (on the gradient norm) means the same for any amount
    of data: ``1e-6`` in float64, ``1e-4`` in float32 (its resolution).
    ``maxiter`` is 100 per M-step; EM continues from where the solver
    stopped. L-BFGS stops when its line search fails (at the limit of
    floating-point resolution) instead of spinning until ``maxiter``.
    """
    tol = 1e-6 if jnp.dtype(dtype) == jnp.float64 else 1e-4
    out: dict[str, Any] = {"maxiter": 100, "tol": tol}
    if solver_name == "LBFGS":
        out["stop_if_linesearch_fails"] = True
    return out


def even_blocks(n_time_bins: int, block_size: int) -> tuple[int, int]:
    """``(n_blocks, rows)``: ceil(n / block_size) blocks of ceil(n / n_blocks) frames each."""
    n_blocks = -(-n_time_bins // int(block_size))
    return n_blocks, -(-n_time_bins // n_blocks)


def block_start(i, rows: int, n_time_bins: int):
    """First frame of block ``i`` of `even_blocks`; the last block ends at the last frame."""
    return jnp.minimum(i * rows, n_time_bins - rows)


def blocked_frame_sum(fn, weights, arrays, block_size: int | None):
    """``Σ_blocks fn(weights_b, *arrays_b)``: a sum over frames, ``block_size`` frames at a time.

    Blocks are read in place (``lax.dynamic_slice``), never copied or padded.
    The frames are split into ``n_blocks = ceil(n_time_bins / block_size)``
    blocks of equal length ``ceil(n_time_bins / n_blocks) <= block_size``;
    the last block is the last frames, with the weights of the (fewer than
    ``n_blocks``) frames an earlier block already counted set to 0. Equal
    blocks matter: a last block of ``block_size`` frames made T=100,000
    with 65,536-frame blocks read 131,072 frames, and the Bernoulli GLM-HMM
    M-step took about 1.5x longer than unblocked (measured, float64). The
    temporaries of ``fn`` are bounded by one block, and the block sums are
    added one after the other (in float32 an error of about
    ``(block_size + n_blocks) ε`` instead of ``n_time_bins ε``).

    Parameters
    ----------
    fn : callable
        ``fn(weights_block, *array_blocks) -> pytree`` of sums over the
        block's frames; a frame of weight 0 must add zero (its term must be
        finite: it is a real frame).
    weights : array of shape (n_time_bins, ...)
        Frame weights (or posteriors).
    arrays : tuple of arrays of shape (n_time_bins, ...)
        Per-frame data.
    block_size : int or None
        Frames per block; None (or at least ``n_time_bins``) sums all frames
        at once.

    Returns
    -------
    pytree
        The sum over all frames.
    """
    n_time_bins = weights.shape[0]
    if block_size is None or block_size >= n_time_bins:
        return fn(weights, *arrays)
    n_blocks, rows = even_blocks(n_time_bins, block_size)

    def block(i):
        begin = i * rows
        start = block_start(i, rows, n_time_bins)
        counted = start + jnp.arange(rows) < begin  # frames an earlier block already summed
        wb = lax.dynamic_slice_in_dim(weights, start, rows)
        wb = jnp.where(counted.reshape((rows,) + (1,) * (wb.ndim - 1)), 0, wb)
        return fn(wb, *(lax.dynamic_slice_in_dim(a, start, rows) for a in arrays))

    def add(i, total):
        return jax.tree_util.tree_map(jnp.add, total, block(i))

    return lax.fori_loop(1, n_blocks, add, block(0))


class _NewtonState(NamedTuple):
    """What one Newton iteration carries: the point, its objective, gradient and Hessian."""

    w: Any
    b: Any
    f: Any
    g: Any
    H: Any
    gnorm: Any
    it: Any
    failed: Any


def _glm_sums(log_prob, X, weights, data, normalizer, penalty, block_size):
    """``value(w, b)`` and ``derivatives(w, b) -> (f, g, H)`` of the per-frame GLM objective.

    Both are sums over frames accumulated ``block_size`` frames at a time
    ([`blocked_frame_sum`][behavhmm.fitting.solvers.blocked_frame_sum]); the
    Hessian of a block is ``X̃_b^T diag(h_b) X̃_b`` with ``X̃ = [X, 1]``, so no
    per-frame ``(n_features + 1)^2`` outer products are held.
    """
    pen_grad, pen_hess = jax.grad(penalty), jax.hessian(penalty)

    def block_value(wb, xb, *db, w, b):
        return -jnp.sum(wb * log_prob(xb @ w + b, *db))

    def block_derivatives(wb, xb, *db, w, b):
        eta = xb @ w + b

        def score(e):  # elementwise d log p / dη
            return jax.grad(lambda v: jnp.sum(log_prob(v, *db)))(e)

        d1, d2 = jax.jvp(score, (eta,), (jnp.ones_like(eta),))
        xt = jnp.concatenate([xb, jnp.ones((xb.shape[0], 1), xb.dtype)], axis=1)
        g = -(wb * d1) @ xt
        H = (xt * (-wb * d2)[:, None]).T @ xt
        return -jnp.sum(wb * log_prob(eta, *db)), g, H

    def value(w, b):
        f = blocked_frame_sum(partial(block_value, w=w, b=b), weights, (X, *data), block_size)
        return f / normalizer + penalty(w)

    def derivatives(w, b):
        f, g, H = blocked_frame_sum(
            partial(block_derivatives, w=w, b=b), weights, (X, *data), block_size
        )
        n_features = w.shape[0]
        g = g / normalizer
        g = g.at[:n_features].add(pen_grad(w))
        H = (H / normalizer).at[:n_features, :n_features].add(pen_hess(w))
        return f / normalizer + penalty(w), g, H

    return value, derivatives


def _newton_direction(H, g):
    """``-|H|^{-1} g`` with the eigenvalues of ``H`` replaced by their absolute values, floored.

    The exact Newton step where the Hessian is positive definite (always, for
    canonical links), a descent direction where it is not; ``-g`` if the
    step is not finite.
    """
    dtype = g.dtype
    lam, vecs = jnp.linalg.eigh(H)  # symmetrises its input
    floor = jnp.maximum(10.0 * jnp.finfo(dtype).eps * jnp.max(jnp.abs(lam)), jnp.finfo(dtype).tiny)
    step = -vecs @ ((vecs.T @ g) / jnp.maximum(jnp.abs(lam), floor))
    return jnp.where(jnp.all(jnp.isfinite(step)), step, -g)


def _line_search(value, state: _NewtonState, dw, db, maxls: int):
    """Backtracking (Armijo) along ``(dw, db)``: returns ``(accepted, t, f_new)``.

    The full step is taken when it lowers the objective enough, or changes it
    by no more than rounding (near the optimum the objective cannot tell
    steps apart, the gradient still can); otherwise the step is halved until
    it lowers the objective by a measurable amount.
    """
    f, dtype = state.f, state.g.dtype
    slope = state.g @ jnp.concatenate([dw, db[None]])
    resolution = 10.0 * jnp.finfo(dtype).eps * jnp.abs(f)

    def armijo(t, f_new):
        return (f_new <= f + 1e-4 * t * slope) & (f - f_new > resolution)

    def ls_body(c):
        t, _, k = c
        t = 0.5 * t
        return t, value(state.w + t * dw, state.b + t * db), k + 1

    f_full = value(state.w + dw, state.b + db)
    full = (f_full <= f + 1e-4 * slope) | (f_full <= f + resolution)
    t, f_new, _ = lax.while_loop(
        lambda c: (~full) & (~armijo(c[0], c[1])) & (c[2] < maxls),
        ls_body,
        (jnp.asarray(1.0, dtype), f_full, 0),
    )
    return full | armijo(t, f_new), t, f_new


def minimize_glm_newton(
    log_prob: Callable,
    coef,
    intercept,
    X,
    weights,
    normalizer,
    *,
    regularizer: str,
    hyper: Mapping[str, Any],
    solver_kwargs: tuple[tuple[str, Any], ...] = (),
    data: tuple = (),
    block_size: int | None = None,
):
    """Minimise ``-Σ_t w_t log p(y_t | η_t) / n + P(coef)`` over one GLM by damped Newton steps.

    ``η_t = x_t^T coef + intercept``. The Hessian is exact: ``X̃^T diag(h) X̃ / n``
    plus the penalty's, with ``h_t = -w_t ∂²log p/∂η²`` (for canonical links,
    ``w_t`` times the variance, so the step is iteratively reweighted least
    squares). Its eigenvalues are replaced by their absolute values, floored
    at a small positive value (Newton's method with eigenvalue modification),
    so every step is a descent direction, and the exact Newton step wherever
    the Hessian is positive definite (always, for canonical links). A backtracking (Armijo) line
    search halves the step until the objective decreases enough; the objective therefore never
    increases (EM stays monotone), and from EM's warm start the full step is usually accepted and
    convergence is quadratic (a few iterations against tens for L-BFGS, whose curvature memory
    restarts every M-step).

    The objective, gradient and Hessian are sums over frames accumulated
    ``block_size`` frames at a time, so the memory of the solver's
    temporaries is bounded by one block (``(block_size, n_features + 1)``).

    Parameters
    ----------
    log_prob : callable
        ``log_prob(eta, *data) -> array`` of the shape of ``eta``:
        elementwise ``log p(y_t | η_t)`` (the scale closed over);
        differentiated twice with JAX. With ``data=()`` it may close over
        ``y`` too, but then ``block_size`` must be None.
    coef : array of shape (n_features,)
    intercept : scalar array
    X : array of shape (n_time_bins, n_features)
    weights : array of shape (n_time_bins,)
        Posterior weights ``w_t >= 0`` (0 on padding).
    normalizer : scalar
        ``n``; the objective is per frame.
    regularizer : str
        A smooth penalty (``"UnRegularized"`` or ``"Ridge"``) on ``coef``.
    hyper : dict of arrays
        Its hyperparameters, already divided by ``n``.
    solver_kwargs : tuple of (str, value)
        Frozen [`GLMNewton`][behavhmm.fitting.solvers.GLMNewton] settings.
    data : tuple of arrays of shape (n_time_bins, ...), default ()
        Per-frame arguments of ``log_prob`` (``y``), cut into blocks with ``X``.
    block_size : int, optional
        Frames per block of the sums (None: all at once). Changes memory,
        not results (up to rounding).

    Returns
    -------
    (coef, intercept) : tuple of arrays
    info : SolverInfo
        Newton iterations and the final gradient norm.

    References
    ----------
    P. McCullagh and J. A. Nelder (1989). Generalized Linear Models, 2nd ed.,
    Chapman and Hall, section 2.5 (iteratively reweighted least squares).
    J. Nocedal and S. J. Wright (2006). Numerical Optimization, 2nd ed.,
    Springer, chapters 3.1 and 3.4 (backtracking, Newton with modification).
    """
    opts = GLMNewton(**dict(solver_kwargs))
    n_features = coef.shape[0]
    value, derivatives = _glm_sums(
        log_prob,
        X,
        weights,
        tuple(data),
        normalizer,
        lambda w: regularizer_penalty(regularizer, w, hyper),
        block_size,
    )

    def body(state: _NewtonState) -> _NewtonState:
        step = _newton_direction(state.H, state.g)
        dw, db = step[:n_features], step[n_features]
        ok, t, _ = _line_search(value, state, dw, db, opts.maxls)
        w = jnp.where(ok, state.w + t * dw, state.w)
        b = jnp.where(ok, state.b + t * db, state.b)
        f, g, H = derivatives(w, b)  # for the convergence test and the next step
        f = jnp.where(ok, f, state.f)
        return _NewtonState(w, b, f, g, H, jnp.sqrt(g @ g), state.it + 1, ~ok)

    def cond(state: _NewtonState):
        return (state.gnorm > opts.tol) & (state.it < opts.maxiter) & ~state.failed

    b0 = jnp.asarray(intercept, coef.dtype)
    f0, g0, H0 = derivatives(coef, b0)
    init = _NewtonState(
        coef, b0, f0, g0, H0, jnp.sqrt(g0 @ g0), jnp.asarray(0, jnp.int32), jnp.asarray(False)
    )
    final = lax.while_loop(cond, body, init)
    return (final.w, final.b), SolverInfo(final.it, final.gnorm)


def freeze_kwargs(kwargs: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """Sorted ``(name, value)`` pairs, hashable, for static arguments of ``jit``.

    Raises
    ------
    TypeError
        If a value is not hashable (for example an array).
    """
    items = []
    for key in sorted(kwargs):
        value = kwargs[key]
        if isinstance(value, list):
            value = tuple(value)
        try:
            hash(value)
        except TypeError:
            raise TypeError(
                f"solver_kwargs[{key!r}] must be hashable (a number, string, tuple or function), "
                f"got {type(value).__name__}."
            ) from None
        items.append((key, value))
    return tuple(items)


def minimize(
    objective: Callable,
    init_params,
    args: tuple,
    *,
    solver_name: str,
    solver_kwargs: tuple[tuple[str, Any], ...],
    regularizer: str,
    hyper: Mapping[str, Any],
):
    """Minimise ``objective(params, *args) + P(params[0])`` with a jaxopt solver.

    Parameters
    ----------
    objective : callable
        Smooth part, ``objective(params, *args) -> scalar``.
    init_params : tuple or NamedTuple of arrays
        Starting point (warm start); its first element (the coefficients) is
        penalised.
    args : tuple
        Extra arguments of ``objective`` (traced).
    solver_name : str
        A key of [`SOLVERS`][behavhmm.fitting.solvers.SOLVERS].
    solver_kwargs : tuple of (str, value)
        Frozen keyword arguments of the solver (see
        [`freeze_kwargs`][behavhmm.fitting.solvers.freeze_kwargs]).
    regularizer : str
        Name of the penalty (see [`behavhmm.fitting.regularizers`][behavhmm.fitting.regularizers]).
    hyper : dict of arrays
        The penalty's hyperparameters (already scaled like ``objective``).

    Returns
    -------
    params : pytree
        The solution, same structure as ``init_params``.
    info : SolverInfo
    """
    cls = SOLVERS[solver_name]
    kwargs = dict(solver_kwargs)
    if solver_name == "ProximalGradient":

        def prox(params, hyperparams, scaling=1.0):
            leaves = [regularizer_prox(regularizer, params[0], hyperparams, scaling), *params[1:]]
            return type(params)(*leaves) if hasattr(params, "_fields") else tuple(leaves)

        solver = cls(fun=objective, prox=prox, **kwargs)
        result = solver.run(init_params, hyper, *args)
    else:

        def fun(params, *fargs):
            return objective(params, *fargs) + regularizer_penalty(regularizer, params[0], hyper)

        solver = cls(fun=fun, **kwargs)
        result = solver.run(init_params, *args)
    return result.params, SolverInfo(result.state.iter_num, jnp.asarray(result.state.error))
