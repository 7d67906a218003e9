"""nemos' solver-level API of GLMHMM: ``initialize_params``, ``initialize_optimizer_and_state``
and ``update`` (one EM step at a time), with the ``EMState`` it carries.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from . import em as core


class NemosSolverAPI:
    """nemos' step-by-step EM interface of GLMHMM."""

    # ------------------------------------------------------ nemos' solver API
    def initialize_params(self, X, y, session_starts=None):
        """Initial parameters from the configured initializers (nemos' ``initialize_params``).

        Parameters
        ----------
        X, y, session_starts
            As in [`fit`][behavhmm.GLMHMM.fit].

        Returns
        -------
        tuple
            ``(coef, intercept, scale, initial_prob, transition_prob)``.
        """
        spec = self._spec()
        data = self._prepare(X, y, session_starts, reset=True, spec=spec)
        params = self._initial_params(spec, data, spec.key)
        return self._to_user(params, data.X_kept if isinstance(data.X_kept, Mapping) else None)

    def initialize_optimizer_and_state(self, init_params, X, y, session_starts=None) -> EMState:
        """Check ``init_params`` against the data and return the starting EM state (for ``update``).

        Parameters
        ----------
        init_params : tuple
            ``(coef, intercept, scale, initial_prob, transition_prob)``.
        X, y, session_starts
            As in [`fit`][behavhmm.GLMHMM.fit].

        Returns
        -------
        EMState
            No iterations yet (log-likelihoods ``-inf``, history NaN).

        Raises
        ------
        ValueError, TypeError
            For inconsistent parameters or input.
        """
        spec = self._spec()
        data = self._prepare(
            X, y, session_starts, reset=not hasattr(self, "n_features_in_"), spec=spec
        )
        self._to_internal(init_params, spec, data)
        return EMState(-np.inf, -np.inf, np.full(int(self.maxiter), np.nan), 0, False)

    def update(
        self, params, opt_state: EMState, X, y, *args, session_starts=None, n_samples=None, **kwargs
    ):
        """Run one EM iteration from ``params`` and store the result as the fitted attributes.

        Parameters
        ----------
        params : tuple
            ``(coef, intercept, scale, initial_prob, transition_prob)``.
        opt_state : EMState
            From [`initialize_optimizer_and_state`][behavhmm.GLMHMM.initialize_optimizer_and_state]
            or the previous ``update``.
        X, y
            As in [`fit`][behavhmm.GLMHMM.fit].
        session_starts : optional
            As in ``fit``.
        n_samples : int, optional
            Number of samples for ``dof_resid_`` (default: the time bins of ``X``).

        Returns
        -------
        params : tuple
            The updated parameters.
        state : EMState
            ``data_log_likelihood`` is the log-likelihood of the parameters
            passed in; ``converged`` compares it with the previous state's
            (change per time bin below ``tol``).

        Raises
        ------
        TypeError
            If ``n_samples`` is not None or an int.
        ValueError
            For inconsistent parameters or input.
        """
        if n_samples is not None and (
            not isinstance(n_samples, numbers.Integral) or isinstance(n_samples, bool)
        ):
            raise TypeError(
                f"`n_samples` must either `None` or of type `int`. Type {type(n_samples)} provided "
                "instead!"
            )
        spec = self._spec()
        data = self._prepare(
            X, y, session_starts, reset=not hasattr(self, "n_features_in_"), spec=spec
        )
        internal = self._to_internal(params, spec, data)
        hyper = self._hyper(spec, data, internal.coef.shape)
        new, log_lik, _ = core.em_step(internal, *data.args, hyper, self._config(spec), spec.method)
        log_lik = float(log_lik)
        previous = float(opt_state.data_log_likelihood)
        iterations = int(opt_state.iterations) + 1
        history = np.array(opt_state.log_likelihood_history, float, copy=True)
        if iterations <= history.shape[0]:
            history[iterations - 1] = log_lik
        converged = bool(
            np.isfinite(previous)
            and abs(log_lik - previous) / max(data.prepared.n_frames, 1) < self.tol
        )
        state = EMState(log_lik, previous, history, iterations, converged)
        template = data.X_kept if isinstance(data.X_kept, Mapping) else None
        self._set_params_attributes(new, template)
        self.solver_state_ = state
        dof = self._dof_resid(spec, data, new)
        if n_samples is not None:
            dof = dof + (n_samples - data.prepared.n_frames)
        self.dof_resid_ = dof
        return self._to_user(new, template), state


class EMState(NamedTuple):
    """State of the EM iterations, as nemos' ``EMState``.

    The fitted ``solver_state_``, and the state ``update`` carries.

    Attributes
    ----------
    data_log_likelihood : float
        Marginal log-likelihood (nats) of the parameters that entered the
        latest iteration.
    previous_data_log_likelihood : float
        The same for the iteration before.
    log_likelihood_history : ndarray of shape (maxiter,)
        Log-likelihood per iteration, NaN after the last one.
    iterations : int
        Iterations run.
    converged : bool
        Whether the change in the EM objective per frame fell below ``tol``.
    """

    data_log_likelihood: float
    previous_data_log_likelihood: float
    log_likelihood_history: np.ndarray
    iterations: int
    converged: bool
