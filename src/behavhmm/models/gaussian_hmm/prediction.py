"""GaussianHMM's prediction methods: public signatures and docstrings, each one line over
`behavhmm.models._predict.PredictionMixin`, on the hooks ``_prediction``, ``_filter``,
``_smooth`` and ``_viterbi`` defined here; and ``simulate``.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from ..base import (
    Prediction,
)
from .em import (
    filter_program,
    posterior,
    simulate,
    viterbi_program,
)


class GaussianHMMPrediction:
    """GaussianHMM's kernel hooks, public prediction methods and ``simulate``."""

    # ---------------------------------------------------------- kernel hooks
    def _prediction(self, X, session_starts) -> Prediction:
        params = self._validated_params()
        return Prediction(params, self._prepare(X, session_starts), self.n_states)

    def _filter(self, pred: Prediction):
        data = pred.data.arrays["gaussian"]
        return filter_program(pred.params, data, self.covariance_type, self._method())

    def _smooth(self, pred: Prediction):
        data = pred.data.arrays["gaussian"]
        return posterior(pred.params, data, self.covariance_type, self._method())

    def _viterbi(self, pred: Prediction):
        data = pred.data.arrays["gaussian"]
        return viterbi_program(pred.params, data, self.covariance_type, self._method())

    # -------------------------------------------------------------- predict
    def score(self, X, y=None, session_starts=None) -> float:
        """Marginal log-likelihood of ``X`` summed over its frames.

        Parameters
        ----------
        X : array-like or pynapple TsdFrame of shape (n_time_bins, n_features)
            Data to score; sessions as in [`fit`][behavhmm.GaussianHMM.fit].
        y : Ignored
        session_starts : array-like or pynapple IntervalSet, optional
            As in [`fit`][behavhmm.GaussianHMM.fit].

        Returns
        -------
        float
            ``log p(X | θ)`` in nats, summed over sessions (dropped NaN borders
            are not scored).

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit`` (or hand-set parameters).
        ValueError
            For invalid input, as in [`fit`][behavhmm.GaussianHMM.fit].
        """
        return self._score_of(X, session_starts)

    def smooth_proba(self, X, session_starts=None):
        """Posterior state probabilities ``p(z_t | all frames of its session)``.

        Parameters
        ----------
        X : array-like or pynapple TsdFrame of shape (n_time_bins, n_features)
        session_starts : array-like or pynapple IntervalSet, optional
            As in [`fit`][behavhmm.GaussianHMM.fit].

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
        return self._smooth_of(X, session_starts)

    def filter_proba(self, X, session_starts=None):
        """Causal state probabilities ``p(z_t | frames up to t of its session)``.

        Parameters
        ----------
        X : array-like or pynapple TsdFrame of shape (n_time_bins, n_features)
        session_starts : array-like or pynapple IntervalSet, optional
            As in [`fit`][behavhmm.GaussianHMM.fit].

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
        return self._filter_of(X, session_starts)

    def decode_state(self, X, session_starts=None, state_format: str = "one-hot"):
        """Most likely state sequence (Viterbi), jointly over each session.

        Parameters
        ----------
        X : array-like or pynapple TsdFrame of shape (n_time_bins, n_features)
        session_starts : array-like or pynapple IntervalSet, optional
            As in [`fit`][behavhmm.GaussianHMM.fit].
        state_format : {"one-hot", "index"}, default "one-hot"
            ``"index"``: int32 array of shape (n_time_bins,), -1 for dropped
            NaN borders. ``"one-hot"``: int32 array of shape
            (n_time_bins, n_states), zero rows there.

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
        return self._decode_of(X, session_starts, state_format=state_format)

    def predict(self, X, session_starts=None):
        """Viterbi state indices; ``decode_state(X, state_format="index")``.

        Parameters
        ----------
        X : array-like of shape (n_time_bins, n_features)
        session_starts : array-like, optional

        Returns
        -------
        ndarray of int32, shape (n_time_bins,)
        """
        return self.decode_state(X, session_starts=session_starts, state_format="index")

    def predict_proba(self, X, session_starts=None):
        """Smoothed state probabilities.

        The same as [`smooth_proba`][behavhmm.GaussianHMM.smooth_proba].

        Parameters
        ----------
        X : array-like of shape (n_time_bins, n_features)
        session_starts : array-like, optional

        Returns
        -------
        ndarray of shape (n_time_bins, n_states)
        """
        return self.smooth_proba(X, session_starts=session_starts)

    def simulate(self, random_key, n_time_bins: int, session_starts=None):
        """Draw frames and states from the model.

        Parameters
        ----------
        random_key : jax.random key or int
            Randomness of the draw; the same key gives the same output.
        n_time_bins : int
            Number of frames to draw (all sessions together).
        session_starts : array-like, optional
            Boolean mask or start indices of sessions within the
            ``n_time_bins`` frames (the chain restarts from ``initial_prob_``
            there); default one session.

        Returns
        -------
        X : ndarray of shape (n_time_bins, n_features)
            Simulated frames.
        states : ndarray of int32, shape (n_time_bins,)
            The states that generated them.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit``.
        TypeError
            If ``random_key`` is not a key or int.
        ValueError
            For invalid ``n_time_bins`` or ``session_starts``.
        """
        params, key, mask = self._simulation_start(random_key, n_time_bins, session_starts)
        frames, states = simulate(key, params, jnp.asarray(mask), self.covariance_type)
        return np.asarray(frames), np.asarray(states)
