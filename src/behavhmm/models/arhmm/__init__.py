"""The autoregressive HMM: estimator, MAP-EM, Gibbs sampling (sticky HDP), shared programs."""

from .estimator import ARHMM

__all__ = ["ARHMM"]
