"""The kernel hooks of the models whose states emit autoregressive frames (ARHMM, KeypointSLDS).

`behavhmm.models._predict.PredictionMixin` writes ``score``, ``smooth_proba``,
``filter_proba`` and ``decode_state`` once; these three hooks run the ARHMM
programs of `behavhmm.models.arhmm.model` on ``pred.data.arrays["ar"]``.
"""

from __future__ import annotations

from .._predict import Prediction
from .model import filter_program, posterior, viterbi_program

__all__ = ["ARKernels"]


class ARKernels:
    """``_filter``/``_smooth``/``_viterbi`` on AR data (Student-t emissions when ``robust``)."""

    def _robust_emissions(self) -> bool:
        return bool(getattr(self, "robust", False))

    def _filter(self, pred: Prediction):
        data, robust = pred.data.arrays["ar"], self._robust_emissions()
        return filter_program(pred.params, data, robust=robust, method=self._method())

    def _smooth(self, pred: Prediction):
        data, robust = pred.data.arrays["ar"], self._robust_emissions()
        return posterior(pred.params, data, robust, self._method())

    def _viterbi(self, pred: Prediction):
        data, robust = pred.data.arrays["ar"], self._robust_emissions()
        return viterbi_program(pred.params, data, robust=robust, method=self._method())
