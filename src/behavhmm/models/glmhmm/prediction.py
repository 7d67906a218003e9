"""GLMHMM's prediction methods: public signatures and docstrings, each one line over
`behavhmm.models._predict.PredictionMixin` on the kernel hooks defined here; ``compute_loss``
and ``simulate``.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from ..._utils import float_dtype
from ...sessions import session_mask, wrap_output
from ..base import (
    Prediction,
    check_random_key,
)
from . import em as core
from .validation import (
    _classes,
    _split_design,
)


class GLMHMMPrediction:
    """GLMHMM's kernel hooks, public prediction methods and ``simulate``."""

    # -------------------------------------------------------------- predict
    def _prediction(self, X, y, session_starts) -> Prediction:
        spec = self._spec()
        params = self._validated_params(spec)
        data = self._prepare(X, y, session_starts, reset=False, spec=spec)
        return Prediction(params, data.prepared, spec.n_states, context=(spec, data))

    def _filter(self, pred: Prediction):
        spec, data = pred.context
        return core.filter_program(pred.params, *data.args, spec.family, spec.link, spec.method)

    def _smooth(self, pred: Prediction):
        spec, data = pred.context
        return core.posterior(pred.params, *data.args, spec.family, spec.link, spec.method)

    def _viterbi(self, pred: Prediction):
        spec, data = pred.context
        return core.viterbi_program(pred.params, *data.args, spec.family, spec.link, spec.method)

    def score(self, X, y, session_starts=None) -> float:
        """Marginal log-likelihood ``log p(y | X)`` in nats, summed over time bins and sessions.

        Parameters
        ----------
        X : array-like, pynapple TsdFrame or dict of arrays
            As in [`fit`][behavhmm.GLMHMM.fit].
        y : array-like or pynapple Tsd/TsdFrame
            As in ``fit``.
        session_starts : array-like or pynapple IntervalSet, optional
            As in ``fit``.

        Returns
        -------
        float

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit`` (or hand-set parameters); a ``ValueError``.
        ValueError
            For invalid input, as in ``fit``.
        """
        return self._score_of(X, y, session_starts)

    def compute_loss(self, params, X, y, session_starts=None) -> float:
        """Negative marginal log-likelihood (nats) of ``params`` on ``(X, y)``.

        Parameters
        ----------
        params : tuple
            ``(coef, intercept, scale, initial_prob, transition_prob)``.
        X, y, session_starts
            As in [`fit`][behavhmm.GLMHMM.fit].

        Returns
        -------
        float
            ``-log p(y | X, params)``; the objective ``score`` negates.

        Raises
        ------
        ValueError, TypeError
            For invalid parameters or input.
        """
        spec = self._spec()
        data = self._prepare(
            X, y, session_starts, reset=not hasattr(self, "n_features_in_"), spec=spec
        )
        internal = self._to_internal(params, spec, data)
        pred = Prediction(internal, data.prepared, spec.n_states, context=(spec, data))
        _, log_lik = self._filter(pred)
        return -float(log_lik)

    def smooth_proba(self, X, y, session_starts=None):
        """Posterior state probabilities ``p(z_t | all data of its session)`` (forward-backward).

        Parameters
        ----------
        X, y, session_starts
            As in [`fit`][behavhmm.GLMHMM.fit].

        Returns
        -------
        ndarray of shape (n_time_bins, n_states) or pynapple TsdFrame
            Rows sum to 1; NaN rows for dropped NaN borders.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit``.
        ValueError
            For invalid input (NaN inside a session, inconsistent shapes).
        """
        return self._smooth_of(X, y, session_starts)

    def filter_proba(self, X, y, session_starts=None):
        """Causal state probabilities ``p(z_t | data up to t of its session)``.

        Parameters
        ----------
        X, y, session_starts
            As in [`fit`][behavhmm.GLMHMM.fit].

        Returns
        -------
        ndarray of shape (n_time_bins, n_states) or pynapple TsdFrame
            Rows sum to 1; NaN rows for dropped NaN borders.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit``.
        ValueError
            For invalid input.
        """
        return self._filter_of(X, y, session_starts)

    def decode_state(self, X, y, session_starts=None, state_format: str = "one-hot"):
        """Most likely state sequence (Viterbi), jointly over each session.

        Parameters
        ----------
        X, y, session_starts
            As in [`fit`][behavhmm.GLMHMM.fit].
        state_format : {"one-hot", "index"}, default "one-hot"
            ``"index"``: int32 array of shape (n_time_bins,), -1 for dropped
            NaN rows. ``"one-hot"``: int32 array of shape (n_time_bins,
            n_states), zero rows there.

        Returns
        -------
        ndarray or pynapple Tsd / TsdFrame

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit``.
        ValueError
            For invalid input or an unknown ``state_format``.
        """
        return self._decode_of(X, y, session_starts, state_format=state_format)

    def simulate(
        self, random_key, feedforward_input, state_format: str = "index", session_starts=None
    ):
        """Draw states and observations given a design matrix.

        Parameters
        ----------
        random_key : jax.random key or int
            Randomness; the same key gives the same draw.
        feedforward_input : array-like, pynapple TsdFrame or dict of arrays
            Design matrix, shape (n_time_bins, n_features).
        state_format : {"index", "one-hot"}, default "index"
        session_starts : array-like or pynapple IntervalSet, optional
            The chain restarts (from ``initial_prob_``) at each session start.

        Returns
        -------
        simulated_activity : ndarray of shape (n_time_bins,) or (n_time_bins, n_neurons)
            Observations (class labels from ``classes_`` for Categorical).
        firing_rates : ndarray
            Predicted mean (class probabilities) in the drawn state, of shape
            (n_time_bins,), (n_time_bins, n_neurons) or (n_time_bins, n_classes).
        simulated_states : ndarray of int32, shape (n_time_bins,) or (n_time_bins, n_states)
        Pynapple input gives pynapple outputs on its timestamps.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit``.
        TypeError
            For a bad ``random_key``.
        ValueError
            For NaN in the design or an unknown ``state_format``.
        """
        self._check_state_format(state_format)
        key = check_random_key(random_key)
        spec = self._spec()
        params = self._validated_params(spec)
        X_values, info = _split_design(feedforward_input)
        X_flat, _ = self._validate_design(X_values, reset=False)
        if not np.all(np.isfinite(X_flat)):
            raise ValueError("feedforward_input must be finite (no NaN or inf) to simulate.")
        n_time_bins = X_flat.shape[0]
        mask = session_mask(session_starts, n_time_bins, info=info)
        dtype = float_dtype()
        y, mean, states = core.simulate_program(
            key, params, jnp.asarray(X_flat, dtype), jnp.asarray(mask), spec.family, spec.link
        )
        y, mean, states = np.asarray(y), np.asarray(mean), np.asarray(states, np.int32)
        if spec.family == "Categorical":
            y = _classes(self, params)[y]
        if state_format == "one-hot":
            states = np.eye(spec.n_states, dtype=np.int32)[states]
        return tuple(wrap_output(a, info) for a in (y, mean, states))
