"""Prediction methods written once for every estimator, on three kernel hooks per model.

Each estimator keeps its public ``score``, ``smooth_proba``, ``filter_proba``
and ``decode_state`` (their signatures and docstrings differ: ``groups`` for
ARHMM, ``y`` for GLMHMM, ``confidence`` for KeypointSLDS) as one-line calls of
the ``_score_of`` / ``_smooth_of`` / ``_filter_of`` / ``_decode_of`` methods
here. A model supplies:

- ``_prediction(*inputs) -> Prediction``: checked parameters and the input on
  the model's time axis (``PreparedData``);
- ``_filter(pred) -> (filtered_probs, log_likelihood)``;
- ``_smooth(pred)``: a posterior with ``smoothed_probs`` (and ``log_likelihood``);
- ``_viterbi(pred)``: the most likely state of each step.
"""

from __future__ import annotations

import numbers
from typing import Any, NamedTuple

import jax
import numpy as np
from sklearn.utils import check_scalar

from ..sessions import session_mask
from .validation import check_random_key

__all__ = ["Prediction", "PredictionMixin"]


class Prediction(NamedTuple):
    """What the prediction methods need from a model for one input.

    Attributes
    ----------
    params : NamedTuple of jax.Array
        Checked parameters in the model's kernel form.
    data : PreparedData
        Input on the model's (padded) time axis.
    n_states : int
        Number of states (columns of probabilities, one-hot width).
    log_lik_offset : float
        Nats added to the HMM's marginal log-likelihood by ``score`` (the
        whitening's log-Jacobian of ARHMM, the keypoint term of KeypointSLDS).
    blank : ndarray of bool, shape (n_frames,), or None
        Modelled steps whose outputs are blanked (NaN probabilities, state -1):
        KeypointSLDS's conditioning frames.
    context : Any
        Model-specific values for the kernel hooks (GLMHMM's spec and arrays).
    """

    params: Any
    data: Any
    n_states: int
    log_lik_offset: float = 0.0
    blank: np.ndarray | None = None
    context: Any = None


class PredictionMixin:
    """``score``/``smooth_proba``/``filter_proba``/``decode_state``/``simulate`` plumbing."""

    # ---------------------------------------------------------------- hooks
    def _prediction(self, *inputs) -> Prediction:  # pragma: no cover - abstract
        raise NotImplementedError

    def _filter(self, pred: Prediction):  # pragma: no cover - abstract
        raise NotImplementedError

    def _smooth(self, pred: Prediction):  # pragma: no cover - abstract
        raise NotImplementedError

    def _viterbi(self, pred: Prediction):  # pragma: no cover - abstract
        raise NotImplementedError

    # ------------------------------------------------------------ the methods
    @staticmethod
    def _blanked(values, pred: Prediction, fill) -> np.ndarray:
        """``values`` on the modelled steps, ``fill`` where ``pred.blank`` is set."""
        if pred.blank is None:
            return values
        values = np.array(np.asarray(values)[: pred.data.n_frames])
        values[pred.blank] = fill
        return values

    def _score_of(self, *inputs) -> float:
        """Marginal log-likelihood (nats) plus the model's offset; body of every ``score``."""
        pred = self._prediction(*inputs)
        _, log_lik = self._filter(pred)
        return float(log_lik) + pred.log_lik_offset

    def _smooth_of(self, *inputs):
        """Smoothed probabilities on the user's time axis; body of every ``smooth_proba``."""
        pred = self._prediction(*inputs)
        probs = self._blanked(self._smooth(pred).smoothed_probs, pred, np.nan)
        return self._proba_output(probs, pred.data, pred.n_states)

    def _filter_of(self, *inputs):
        """Filtered probabilities on the user's time axis; body of every ``filter_proba``."""
        pred = self._prediction(*inputs)
        probs, _ = self._filter(pred)
        return self._proba_output(self._blanked(probs, pred, np.nan), pred.data, pred.n_states)

    def _decode_of(self, *inputs, state_format: str):
        """Viterbi states on the user's time axis; body of every ``decode_state``."""
        self._check_state_format(state_format)
        pred = self._prediction(*inputs)
        states = self._blanked(self._viterbi(pred), pred, -1)
        return self._state_output(states, pred.data, state_format, pred.n_states)

    def _simulation_start(self, random_key, n_time_bins, session_starts):
        """``(params, key, session mask)`` for ``simulate``, after checking the arguments.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit``.
        TypeError
            If ``random_key`` is not a key or int.
        ValueError
            For invalid ``n_time_bins`` or ``session_starts``.
        """
        params = self._validated_params()
        key: jax.Array = check_random_key(random_key)
        check_scalar(n_time_bins, "n_time_bins", numbers.Integral, min_val=1)
        return params, key, session_mask(session_starts, int(n_time_bins))
