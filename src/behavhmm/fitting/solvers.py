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


_HESSIAN_CHUNK = 1 << 23  # elements of the per-frame outer products formed at once


def _gram_operator(X):
    """``h -> X̃^T diag(h) X̃`` with ``X̃ = [X, 1]``, through the frames' outer products ``x̃_t x̃_t^T``.

    The outer products are formed once (in row chunks of bounded size when
    they would be large) and each call is one matrix product, ``h^T [x̃_t
    x̃_t^T]_t``; under ``jax.vmap`` over problems sharing ``X`` it becomes
    one matrix-matrix product for all problems.
    """
    n_time_bins, n_features = X.shape
    xt = jnp.concatenate([X, jnp.ones((n_time_bins, 1), X.dtype)], axis=1)
    p = n_features + 1
    rows = max(1, min(n_time_bins, _HESSIAN_CHUNK // (p * p)))
    n_chunks = -(-n_time_bins // rows)
    if n_chunks == 1:
        outer = (xt[:, :, None] * xt[:, None, :]).reshape(n_time_bins, p * p)
        return lambda h: (h @ outer).reshape(p, p)
    pad = n_chunks * rows - n_time_bins
    xc = jnp.pad(xt, ((0, pad), (0, 0))).reshape(n_chunks, rows, p)

    def apply(h):
        hc = jnp.pad(h, (0, pad)).reshape(n_chunks, rows)

        def add(acc, chunk):
            x, w = chunk
            return acc + w @ (x[:, :, None] * x[:, None, :]).reshape(rows, p * p), None

        total, _ = lax.scan(add, jnp.zeros(p * p, X.dtype), (xc, hc))
        return total.reshape(p, p)

    return apply


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

    Parameters
    ----------
    log_prob : callable
        ``log_prob(eta) -> array of shape (n_time_bins,)``: elementwise
        ``log p(y_t | η_t)`` (the data and scale closed over); differentiated
        twice with JAX.
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
    dtype = coef.dtype
    n_features = coef.shape[0]
    gram = _gram_operator(X)  # formed once, outside the iterations
    ones = jnp.ones(X.shape[0], dtype)

    def penalty(w):
        return regularizer_penalty(regularizer, w, hyper)

    pen_grad, pen_hess = jax.grad(penalty), jax.hessian(penalty)

    def value(eta, w):
        return -jnp.sum(weights * log_prob(eta)) / normalizer + penalty(w)

    def score(e):  # elementwise d log p / dη
        return jax.grad(lambda v: jnp.sum(log_prob(v)))(e)

    def derivatives(eta, w):
        """Gradient of the objective and the elementwise curvature ``d²log p/dη²`` (one pass)."""
        d1, d2 = jax.jvp(score, (eta,), (jnp.ones_like(eta),))
        r = weights * d1
        g = jnp.concatenate([-(r @ X) / normalizer + pen_grad(w), -jnp.sum(r)[None] / normalizer])
        return g, d2

    def body(state):
        w, b, eta, f, g, d2, _, it, _ = state
        H = gram(-weights * d2) / normalizer
        H = H.at[:n_features, :n_features].add(pen_hess(w))
        # eigenvalues floored at a small positive value: the exact Newton step where the Hessian is
        # positive definite (always, for canonical links), a descent direction where it is not
        lam, vecs = jnp.linalg.eigh(H)  # symmetrises its input
        floor = jnp.maximum(
            10.0 * jnp.finfo(dtype).eps * jnp.max(jnp.abs(lam)), jnp.finfo(dtype).tiny
        )
        step = -vecs @ ((vecs.T @ g) / jnp.maximum(jnp.abs(lam), floor))
        step = jnp.where(jnp.all(jnp.isfinite(step)), step, -g)
        dw, db = step[:n_features], step[n_features]
        d_eta = X @ dw + db * ones
        slope = g @ step

        # the full step is taken when it lowers the objective enough, or changes it by no more than
        # rounding (near the optimum the objective cannot tell steps apart, the gradient still can);
        # otherwise the step is halved until it lowers the objective by a measurable amount (Armijo)
        resolution = 10.0 * jnp.finfo(dtype).eps * jnp.abs(f)

        def armijo(t, f_new):
            return (f_new <= f + 1e-4 * t * slope) & (f - f_new > resolution)

        def ls_body(c):
            t, _, k = c
            t = 0.5 * t
            return t, value(eta + t * d_eta, w + t * dw), k + 1

        f_full = value(eta + d_eta, w + dw)
        full = (f_full <= f + 1e-4 * slope) | (f_full <= f + resolution)
        t, f_new, _ = lax.while_loop(
            lambda c: (~full) & (~armijo(c[0], c[1])) & (c[2] < opts.maxls),
            ls_body,
            (jnp.asarray(1.0, dtype), f_full, 0),
        )
        ok = full | armijo(t, f_new)
        w = jnp.where(ok, w + t * dw, w)
        b = jnp.where(ok, b + t * db, b)
        eta = jnp.where(ok, eta + t * d_eta, eta)
        f = jnp.where(ok, f_new, f)
        g, d2 = derivatives(eta, w)  # for the convergence test and the next step's Hessian
        return w, b, eta, f, g, d2, jnp.sqrt(g @ g), it + 1, ~ok

    def cond(state):
        *_, gnorm, it, failed = state
        return (gnorm > opts.tol) & (it < opts.maxiter) & ~failed

    b0 = jnp.asarray(intercept, dtype)
    eta0 = X @ coef + b0 * ones
    g0, d2_0 = derivatives(eta0, coef)
    init = (
        coef,
        b0,
        eta0,
        value(eta0, coef),
        g0,
        d2_0,
        jnp.sqrt(g0 @ g0),
        jnp.asarray(0, jnp.int32),
        jnp.asarray(False),
    )
    w, b, _, _, _, _, gnorm, it, _ = lax.while_loop(cond, body, init)
    return (w, b), SolverInfo(it, gnorm)


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
