"""Numerical M-step solvers: jaxopt's optimisers behind nemos' solver names.

| name | jaxopt class | penalties |
|---|---|---|
| ``"GradientDescent"`` | ``jaxopt.GradientDescent`` | smooth (UnRegularized, Ridge) |
| ``"BFGS"`` | ``jaxopt.BFGS`` | smooth |
| ``"LBFGS"`` | ``jaxopt.LBFGS`` | smooth |
| ``"NonlinearCG"`` | ``jaxopt.NonlinearCG`` | smooth |
| ``"ProximalGradient"`` | ``jaxopt.ProximalGradient`` (FISTA) | all, through the penalty's proximal operator |

[`minimize`][behavhmm.fitting.solvers.minimize] runs inside ``jax.jit``: the solver's name and keyword
arguments are static (hashable), the data and the penalty's hyperparameters
are traced, so one compiled program serves every fit with the same shapes.
EM calls it warm-started from the previous M-step, so a few iterations per
EM step usually suffice; every solver decreases the objective from its
starting point, which keeps EM's objective non-decreasing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax.numpy as jnp
import jaxopt

from .regularizers import regularizer_penalty, regularizer_prox

__all__ = [
    "SOLVERS",
    "SolverInfo",
    "solver_accepted_arguments",
    "check_solver_kwargs",
    "default_solver_kwargs",
    "freeze_kwargs",
    "minimize",
]

SOLVERS: dict[str, type] = {
    "GradientDescent": jaxopt.GradientDescent,
    "BFGS": jaxopt.BFGS,
    "LBFGS": jaxopt.LBFGS,
    "NonlinearCG": jaxopt.NonlinearCG,
    "ProximalGradient": jaxopt.ProximalGradient,
}
"""jaxopt classes by nemos' solver names."""
_INTERNAL = {"fun", "prox", "value_and_grad", "has_aux", "implicit_diff", "implicit_diff_solve", "jit"}


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
        Frozen keyword arguments of the solver (see [`freeze_kwargs`][behavhmm.fitting.solvers.freeze_kwargs]).
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
