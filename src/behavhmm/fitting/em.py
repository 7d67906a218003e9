"""The expectation-maximisation loop shared by every model.

A model supplies ``step(params) -> (new_params, log_likelihood, log_prior)``
that runs the E-step under ``params`` and returns the M-step's parameters
together with the log-likelihood and log prior *of ``params``*. This loop runs
it on the host, one call per iteration, records the history, reports progress
(a tqdm bar on a terminal, plain lines in a log) and stops when the log joint
(log-likelihood plus log prior, the quantity MAP-EM never decreases) changes
by less than ``tol`` nats per frame. Optional diagnostics (e.g. held-out
log-likelihood) run every ``check_every`` iterations, and a checkpoint
callback lets a fit resume where it stopped.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from ._progress import progress

__all__ = ["EMConvergenceWarning", "EMResult", "run_em"]


class EMConvergenceWarning(ConvergenceWarning, RuntimeWarning):
    """EM stopped at its iteration limit before meeting its tolerance.

    A scikit-learn ``ConvergenceWarning`` and a ``RuntimeWarning`` (the
    category nemos' GLM-HMM uses), so filters for either catch it.
    """


class EMResult(NamedTuple):
    """Outcome of :func:`run_em`.

    Attributes
    ----------
    params : pytree
        Parameters after the last M-step.
    log_likelihood_history : ndarray of shape (n_iter,)
        Marginal log-likelihood (nats) of the parameters entering each iteration.
    log_joint_history : ndarray of shape (n_iter,)
        Log-likelihood plus log prior of the same parameters; non-decreasing
        for exact MAP-EM.
    n_iter : int
        Iterations run (including those before a resume).
    converged : bool
        Whether the change in log joint per frame fell below ``tol``.
    history : dict of str to ndarray
        ``"iteration"`` (iterations after which diagnostics ran) and one array
        per diagnostic returned by ``evaluate``.
    """

    params: Any
    log_likelihood_history: np.ndarray
    log_joint_history: np.ndarray
    n_iter: int
    converged: bool
    history: dict = {}


def run_em(
    step: Callable[[Any], tuple[Any, Any, Any]],
    params: Any,
    *,
    n_iter: int,
    tol: float,
    n_frames: int,
    progress_bar: bool = True,
    desc: str = "EM",
    check_every: int = 1,
    evaluate: Callable[[Any], dict] | None = None,
    start_iteration: int = 0,
    history: dict | None = None,
    checkpoint: Callable[[Any, int, dict], None] | None = None,
    checkpoint_every: int | None = None,
) -> EMResult:
    """Iterate an EM step until convergence or ``n_iter`` iterations.

    Parameters
    ----------
    step : callable
        ``step(params) -> (new_params, log_likelihood, log_prior)``.
    params : pytree
        Parameters entering iteration ``start_iteration``.
    n_iter : int
        Maximum total number of iterations.
    tol : float
        Convergence threshold on ``|Δ log joint| / n_frames`` (nats per frame).
    n_frames : int
        Number of modelled frames, to express the change per frame.
    progress_bar : bool, default True
        Report progress with the log-likelihood per frame: a tqdm bar on a
        terminal, a plain line every 10 % of ``n_iter`` otherwise (logs, CI).
    desc : str, default "EM"
        Label of the progress bar.
    check_every : int, default 1
        Run ``evaluate`` on the new parameters every ``check_every`` iterations
        (and after the last).
    evaluate : callable, optional
        ``evaluate(params) -> dict of floats``.
    start_iteration : int, default 0
        Iterations already done (when resuming).
    history : dict, optional
        History of a resumed fit: ``"log_likelihood"``, ``"log_joint"`` and
        the diagnostics.
    checkpoint : callable, optional
        ``checkpoint(params, n_done, history)``; called every
        ``checkpoint_every`` iterations and at the end.
    checkpoint_every : int, optional

    Returns
    -------
    EMResult

    Raises
    ------
    FloatingPointError
        If the log-likelihood or log prior is NaN or infinite.
    """
    hist: dict[str, list] = {k: list(v) for k, v in (history or {}).items()}
    hist.setdefault("log_likelihood", [])
    lj_hist = hist.setdefault("log_joint", [])
    hist.setdefault("iteration", [])
    converged = False
    previous = lj_hist[-1] if lj_hist else -math.inf
    n_frames = max(int(n_frames), 1)
    done = start_iteration
    with progress(
        total=n_iter, initial=start_iteration, desc=desc, unit="iter", disable=not progress_bar
    ) as bar:
        for iteration in range(start_iteration, n_iter):
            new_params, log_lik, log_prior = step(params)
            log_joint = _record_objective(hist, iteration, log_lik, log_prior)
            change = abs(log_joint - previous) / n_frames
            params, previous = new_params, log_joint
            done = iteration + 1
            converged = iteration > 0 and change < tol
            last = done == n_iter or converged
            postfix = {"ll_per_frame": f"{hist['log_likelihood'][-1] / n_frames:.4f}"}
            if evaluate is not None and (done % check_every == 0 or last):
                _record_diagnostics(hist, done, evaluate(params), postfix)
            bar.set_postfix(postfix, refresh=False)
            bar.update(1)
            if checkpoint is not None and (
                (checkpoint_every and done % checkpoint_every == 0) or last
            ):
                checkpoint(params, done, {k: np.asarray(v) for k, v in hist.items()})
            if converged:
                break
    arrays = {k: np.asarray(v) for k, v in hist.items()}
    extra = {k: v for k, v in arrays.items() if k not in ("log_likelihood", "log_joint")}
    return EMResult(params, arrays["log_likelihood"], arrays["log_joint"], done, converged, extra)


def _record_objective(hist: dict, iteration: int, log_lik, log_prior) -> float:
    """Append one iteration's log-likelihood and log joint (a host sync); refuse non-finite ones."""
    log_lik, log_prior = float(log_lik), float(log_prior)
    log_joint = log_lik + log_prior
    if not math.isfinite(log_joint):
        raise FloatingPointError(
            f"EM iteration {iteration} gave a non-finite objective "
            f"(log-likelihood {log_lik}, log prior {log_prior}). The data may have "
            "values the model cannot explain (check the scale of X, or use a larger "
            "covariance prior)."
        )
    hist["log_likelihood"].append(log_lik)
    hist["log_joint"].append(log_joint)
    return log_joint


def _record_diagnostics(hist: dict, done: int, diagnostics: dict, postfix: dict) -> None:
    """Append the diagnostics taken after ``done`` iterations; show the median duration."""
    hist["iteration"].append(done)
    for name, value in diagnostics.items():
        hist.setdefault(name, []).append(float(value))
        if name == "median_duration":
            postfix["median_dur"] = f"{float(value):.1f}"
