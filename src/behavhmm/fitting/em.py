"""The expectation-maximisation loop shared by every model.

A model supplies one jitted ``step(params) -> (new_params, log_likelihood,
log_prior)`` that runs the E-step under ``params`` and returns the M-step's
parameters together with the log-likelihood and log prior *of ``params``*.
This loop runs it on the host, one compiled call per iteration, records the
history, shows a tqdm progress bar and stops when the log joint (log-likelihood
plus log prior, the quantity MAP-EM never decreases) changes by less than
``tol`` nats per frame.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from tqdm.auto import tqdm

__all__ = ["EMConvergenceWarning", "EMResult", "run_em"]


class EMConvergenceWarning(ConvergenceWarning, RuntimeWarning):
    """EM stopped at its iteration limit before meeting its tolerance.

    A scikit-learn ``ConvergenceWarning`` and a ``RuntimeWarning`` (the
    category nemos' GLM-HMM uses), so filters for either catch it.
    """


class EMResult(NamedTuple):
    """Outcome of [`run_em`][behavhmm.fitting.em.run_em].

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
        Iterations run.
    converged : bool
        Whether the change in log joint per frame fell below ``tol``.
    """

    params: Any
    log_likelihood_history: np.ndarray
    log_joint_history: np.ndarray
    n_iter: int
    converged: bool


def run_em(
    step: Callable[[Any], tuple[Any, Any, Any]],
    params: Any,
    *,
    n_iter: int,
    tol: float,
    n_frames: int,
    progress_bar: bool = True,
    desc: str = "EM",
) -> EMResult:
    """Iterate an EM step until convergence or ``n_iter`` iterations.

    Parameters
    ----------
    step : callable
        ``step(params) -> (new_params, log_likelihood, log_prior)``.
    params : pytree
        Initial parameters.
    n_iter : int
        Maximum number of iterations.
    tol : float
        Convergence threshold on ``|Δ log joint| / n_frames`` (nats per frame).
    n_frames : int
        Number of modelled frames, to express the change per frame.
    progress_bar : bool, default True
        Show a tqdm progress bar with the log-likelihood per frame.
    desc : str, default "EM"
        Label of the progress bar.

    Returns
    -------
    EMResult

    Raises
    ------
    FloatingPointError
        If the log-likelihood or log prior is NaN, or +inf; ``-inf`` log
        likelihood (data impossible under the current parameters) too.
    """
    ll_hist: list[float] = []
    lj_hist: list[float] = []
    converged = False
    previous = -math.inf
    n_frames = max(int(n_frames), 1)
    with tqdm(total=n_iter, desc=desc, unit="iter", disable=not progress_bar, leave=False) as bar:
        for iteration in range(n_iter):
            new_params, log_lik, log_prior = step(params)
            log_lik, log_prior = float(log_lik), float(log_prior)
            log_joint = log_lik + log_prior
            if not math.isfinite(log_joint):
                raise FloatingPointError(
                    f"EM iteration {iteration} gave a non-finite objective "
                    f"(log-likelihood {log_lik}, log prior {log_prior}). The data may have "
                    "values the model cannot explain (check the scale of X, or use a larger "
                    "covariance prior)."
                )
            ll_hist.append(log_lik)
            lj_hist.append(log_joint)
            bar.update(1)
            bar.set_postfix(ll_per_frame=f"{log_lik / n_frames:.4f}")
            change = abs(log_joint - previous) / n_frames
            params, previous = new_params, log_joint
            if iteration > 0 and change < tol:
                converged = True
                break
    return EMResult(
        params, np.asarray(ll_hist), np.asarray(lj_hist), len(ll_hist), converged
    )
