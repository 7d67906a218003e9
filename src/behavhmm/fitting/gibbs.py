"""The Gibbs-sampling loop shared by every Bayesian model.

A model supplies one jitted ``sweep(state, key) -> (new_state, log_likelihood)``
(one full pass over all conditionals, returning the marginal log-likelihood
of the parameters that entered the sweep) and, optionally, an
``evaluate(state) -> dict`` of diagnostics (log joint, held-out
log-likelihood, median syllable duration, ...) run every ``check_every``
sweeps. The key of sweep ``i`` is ``jax.random.fold_in(key, i)``, so a chain
resumed from a checkpoint at iteration ``i`` draws exactly the same random
numbers as the uninterrupted chain: resuming is bit-for-bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import numpy as np

from ._progress import progress

__all__ = ["GibbsResult", "run_gibbs"]


class GibbsResult(NamedTuple):
    """Outcome of :func:`run_gibbs`.

    Attributes
    ----------
    state : pytree
        The chain's state after the last sweep.
    history : dict of str to ndarray
        ``"iteration"`` (the sweeps at which diagnostics were taken, 1-based
        count of completed sweeps), ``"log_likelihood"`` (marginal, nats, of
        the parameters entering every sweep, one per sweep), and one array per
        diagnostic returned by ``evaluate``.
    n_iter : int
        Total number of sweeps completed (including those before a resume).
    """

    state: Any
    history: dict
    n_iter: int


def run_gibbs(
    sweep: Callable[[Any, jax.Array], tuple[Any, Any]],
    state: Any,
    key: jax.Array,
    *,
    n_iter: int,
    start_iteration: int = 0,
    history: dict | None = None,
    check_every: int = 1,
    evaluate: Callable[[Any], dict] | None = None,
    n_frames: int = 1,
    progress_bar: bool = True,
    desc: str = "Gibbs",
    checkpoint: Callable[[Any, int, dict], None] | None = None,
    checkpoint_every: int | None = None,
) -> GibbsResult:
    """Run sweeps ``start_iteration, ..., n_iter - 1`` of a Gibbs sampler.

    Parameters
    ----------
    sweep : callable
        ``sweep(state, key) -> (new_state, log_likelihood)``.
    state : pytree
        State entering sweep ``start_iteration``.
    key : jax.random key
        Base key of the chain; sweep ``i`` uses ``fold_in(key, i)``.
    n_iter : int
        Total number of sweeps of the chain (not of this call).
    start_iteration : int, default 0
        Sweeps already done (when resuming).
    history : dict, optional
        History of the sweeps already done (when resuming).
    check_every : int, default 1
        Run ``evaluate`` after every ``check_every``-th sweep (and the last).
    evaluate : callable, optional
        ``evaluate(state) -> dict of floats``.
    n_frames : int
        Modelled frames, to show the log-likelihood per frame.
    progress_bar : bool, default True
        Report progress: a tqdm bar on a terminal, a plain line every 10 % of
        ``n_iter`` otherwise (logs, CI).
    desc : str
        Progress label.
    checkpoint : callable, optional
        ``checkpoint(state, n_done, history)``, called every
        ``checkpoint_every`` sweeps and after the last one.
    checkpoint_every : int, optional
        Default: only after the last sweep.

    Returns
    -------
    GibbsResult

    Raises
    ------
    FloatingPointError
        If a sweep's log-likelihood is NaN (a numerical failure of the chain).
    """
    hist: dict[str, list] = {k: list(v) for k, v in (history or {}).items()}
    hist.setdefault("log_likelihood", [])
    hist.setdefault("iteration", [])
    n_frames = max(int(n_frames), 1)
    postfix: dict[str, str] = {}
    with progress(
        total=n_iter, initial=start_iteration, desc=desc, unit="sweep", disable=not progress_bar
    ) as bar:

        def record(iteration, state_after, log_lik):
            done = iteration + 1
            _record_sweep(hist, iteration, log_lik, n_frames, postfix)
            if evaluate is not None and (done % check_every == 0 or done == n_iter):
                _record_diagnostics(hist, done, evaluate(state_after), postfix)
            bar.set_postfix(postfix, refresh=False)
            bar.update(1)
            if checkpoint is not None and (
                (checkpoint_every and done % checkpoint_every == 0) or done == n_iter
            ):
                checkpoint(state_after, done, {k: np.asarray(v) for k, v in hist.items()})

        # One sweep in flight: sweep i+1 is dispatched before sweep i's results are read on the
        # host, so the Python bookkeeping overlaps the computation (JAX dispatches asynchronously).
        pending = None
        for iteration in range(start_iteration, n_iter):
            new_state, log_lik = sweep(state, jax.random.fold_in(key, iteration))
            if pending is not None:
                record(*pending)
            pending = (iteration, new_state, log_lik)
            state = new_state
        if pending is not None:
            record(*pending)
    return GibbsResult(state, {k: np.asarray(v) for k, v in hist.items()}, n_iter)


def _record_sweep(hist: dict, iteration: int, log_lik, n_frames: int, postfix: dict) -> None:
    """Append one sweep's log-likelihood (a host sync); a NaN means the chain failed."""
    log_lik = float(log_lik)
    if math.isnan(log_lik):
        raise FloatingPointError(
            f"Gibbs sweep {iteration} gave a NaN log-likelihood; the chain failed "
            "numerically (check the scale of X, or use a larger covariance prior)."
        )
    hist["log_likelihood"].append(log_lik)
    postfix["ll_per_frame"] = f"{log_lik / n_frames:.4f}"


def _record_diagnostics(hist: dict, done: int, diagnostics: dict, postfix: dict) -> None:
    """Append the diagnostics taken after ``done`` sweeps; show the median duration."""
    hist["iteration"].append(done)
    for name, value in diagnostics.items():
        hist.setdefault(name, []).append(float(value))
    if "median_duration" in diagnostics:
        postfix["median_dur"] = f"{float(diagnostics['median_duration']):.1f}"
