"""ARHMM's prediction methods: public signatures and docstrings, each one line over
`behavhmm.models._predict.PredictionMixin` (the ``_prediction`` hook is here, the kernel
hooks in ``_hooks.py``), and ``simulate``.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from ...sessions import wrap_output
from ..base import (
    Prediction,
)
from .initialize import AR_PARAMS_REGISTRY as AR_PARAMS_REGISTRY
from .initialize import INITIAL_DOF as INITIAL_DOF
from .initialize import kmeans_ar_params as kmeans_ar_params
from .initialize import lagged_design as lagged_design
from .initialize import random_ar_params as random_ar_params
from .model import (
    log_likelihood_program,
    simulate_program,
)


class ARHMMPrediction:
    """ARHMM's public prediction methods and ``simulate``."""

    # ---------------------------------------------------------- kernel hooks
    def _prediction(self, X, session_starts, groups) -> Prediction:
        params = self._validated_params()
        data = self._prepare(X, session_starts, groups)
        n_states = params.initial_prob.shape[0]
        return Prediction(params, data, n_states, log_lik_offset=data.extra["log_jacobian"])

    # -------------------------------------------------------------- predict
    def score(self, X, y=None, session_starts=None, groups=None) -> float:
        """Marginal log-likelihood of ``X`` summed over its modelled frames.

        Parameters
        ----------
        X : array-like or pynapple TsdFrame of shape (n_time_bins, n_features)
            Data to score; sessions as in [`fit`][behavhmm.ARHMM.fit].
        y : Ignored
        session_starts : array-like or pynapple IntervalSet, optional
            As in [`fit`][behavhmm.ARHMM.fit].
        groups : array-like, optional
            Group label of each session, for models with one transition
            matrix per group.

        Returns
        -------
        float
            ``log p(X | θ)`` in nats, summed over sessions, for ``X`` in its own
            units (whitening's Jacobian included); the first ``nlags`` frames of
            each session condition and are not scored.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit`` (or hand-set parameters).
        ValueError
            For invalid input, as in [`fit`][behavhmm.ARHMM.fit].
        """
        return self._score_of(X, session_starts, groups)

    def smooth_proba(self, X, session_starts=None, groups=None):
        """Posterior state probabilities ``p(z_t | all frames of its session)``.

        Parameters
        ----------
        X : array-like or pynapple TsdFrame of shape (n_time_bins, n_features)
        session_starts : array-like or pynapple IntervalSet, optional
            As in [`fit`][behavhmm.ARHMM.fit].
        groups : array-like, optional
            As in [`score`][behavhmm.ARHMM.score].

        Returns
        -------
        ndarray of shape (n_time_bins, n_states) or pynapple TsdFrame
            Rows sum to 1; NaN rows for the first ``nlags`` frames of each
            session and for dropped NaN borders.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit``.
        ValueError
            For invalid input.
        """
        return self._smooth_of(X, session_starts, groups)

    def emission_log_likelihood(self, X, session_starts=None, groups=None):
        """Log-likelihood of each frame under each state's emission, ``log p(x_t | z_t = k, past)``.

        Parameters
        ----------
        X : array-like or pynapple TsdFrame of shape (n_time_bins, n_features)
        session_starts : array-like or pynapple IntervalSet, optional
            As in [`fit`][behavhmm.ARHMM.fit].
        groups : array-like, optional
            As in [`score`][behavhmm.ARHMM.score].

        Returns
        -------
        ndarray of shape (n_time_bins, n_states) or pynapple TsdFrame
            Nats, float32 (float64 with x64); columns are the fitted states
            (before any `behavhmm.analysis.merge_syllables` mapping). NaN rows
            for the first ``nlags`` frames of each session and for dropped NaN
            borders. With ``whiten``, the whitening's log-Jacobian is not
            included (it is the same for every state).

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit``.
        ValueError
            For invalid input.
        """
        params = self._validated_params()
        data = self._prepare(X, session_starts, groups)
        ll = log_likelihood_program(params, data.arrays["ar"], robust=bool(self.robust))
        full = self._expand(np.asarray(ll), data, np.nan)
        return wrap_output(full, data.info, columns=list(range(full.shape[1])))

    def filter_proba(self, X, session_starts=None, groups=None):
        """Causal state probabilities ``p(z_t | frames up to t of its session)``.

        Parameters
        ----------
        X : array-like or pynapple TsdFrame of shape (n_time_bins, n_features)
        session_starts : array-like or pynapple IntervalSet, optional
            As in [`fit`][behavhmm.ARHMM.fit].
        groups : array-like, optional
            As in [`score`][behavhmm.ARHMM.score].

        Returns
        -------
        ndarray of shape (n_time_bins, n_states) or pynapple TsdFrame
            Rows sum to 1; NaN rows where
            [`smooth_proba`][behavhmm.ARHMM.smooth_proba] has them.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit``.
        ValueError
            For invalid input.
        """
        return self._filter_of(X, session_starts, groups)

    def decode_state(self, X, session_starts=None, state_format: str = "one-hot", groups=None):
        """Most likely state sequence (Viterbi), jointly over each session.

        Parameters
        ----------
        X : array-like or pynapple TsdFrame of shape (n_time_bins, n_features)
        session_starts : array-like or pynapple IntervalSet, optional
            As in [`fit`][behavhmm.ARHMM.fit].
        state_format : {"one-hot", "index"}, default "one-hot"
            ``"index"``: int32 array of shape (n_time_bins,), -1 for the first
            ``nlags`` frames of each session and dropped NaN borders.
            ``"one-hot"``: int32 array of shape (n_time_bins, n_states), zero
            rows there.
        groups : array-like, optional
            As in [`score`][behavhmm.ARHMM.score].

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
        return self._decode_of(X, session_starts, groups, state_format=state_format)

    def predict(self, X, session_starts=None, groups=None):
        """Viterbi state indices; ``decode_state(X, state_format="index")``.

        Parameters
        ----------
        X : array-like of shape (n_time_bins, n_features)
        session_starts : array-like, optional
        groups : array-like, optional

        Returns
        -------
        ndarray of int32, shape (n_time_bins,)
        """
        return self.decode_state(
            X, session_starts=session_starts, state_format="index", groups=groups
        )

    def predict_proba(self, X, session_starts=None, groups=None):
        """Smoothed state probabilities; same as [`smooth_proba`][behavhmm.ARHMM.smooth_proba].

        Parameters
        ----------
        X : array-like of shape (n_time_bins, n_features)
        session_starts : array-like, optional
        groups : array-like, optional

        Returns
        -------
        ndarray of shape (n_time_bins, n_states)
        """
        return self.smooth_proba(X, session_starts=session_starts, groups=groups)

    def simulate(
        self, random_key, n_time_bins: int, session_starts=None, init_frames=None, groups=None
    ):
        """Draw frames and states from the model.

        Parameters
        ----------
        random_key : jax.random key or int
            Randomness of the draw; the same key gives the same output.
        n_time_bins : int
            Number of frames to draw (all sessions together).
        session_starts : array-like, optional
            Boolean mask or start indices of sessions within the
            ``n_time_bins`` frames; default one session.
        init_frames : array-like of shape (nlags, n_features), optional
            The conditioning frames that open every session (oldest first), in
            the model's (whitened) space; default zeros.
        groups : array-like, optional
            Group label of each simulated session (several transition matrices).

        Returns
        -------
        X : ndarray of shape (n_time_bins, n_features)
            Simulated frames, mapped back to the data's units with
            ``whiten="all"`` (left whitened with ``whiten="each"``).
        states : ndarray of int32, shape (n_time_bins,)
            The states that generated them; -1 for the conditioning frames.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit``.
        TypeError
            If ``random_key`` is not a key or int.
        ValueError
            For invalid ``n_time_bins``, ``session_starts``, ``init_frames`` or ``groups``.
        """
        params, key, mask = self._simulation_start(random_key, n_time_bins, session_starts)
        n_features = params.coef.shape[1]
        group_bins = self._group_labels(groups, mask, fitting=False)
        group_bins = np.zeros(int(n_time_bins), np.int32) if group_bins is None else group_bins
        if init_frames is None:
            init = np.zeros((self.nlags, n_features))
        else:
            init = np.asarray(init_frames, float)
            if init.shape != (self.nlags, n_features):
                raise ValueError(
                    f"init_frames must have shape ({self.nlags}, {n_features}), got {init.shape}."
                )
            if not np.all(np.isfinite(init)):
                raise ValueError("init_frames must be finite.")
        # the session's frame at position p < nlags is init_frames[p] (oldest first)
        frames, states = simulate_program(
            key,
            params,
            jnp.asarray(mask),
            jnp.asarray(group_bins),
            jnp.asarray(init, params.coef.dtype),
            self.nlags,
            bool(self.robust),
        )
        frames = np.asarray(frames)
        if self.whiten == "all":
            frames = frames @ np.linalg.inv(np.asarray(self.whiten_matrix_)).T + np.asarray(
                self.whiten_mean_
            )
        return frames, np.asarray(states)
