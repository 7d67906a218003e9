"""The GLM-HMM (nemos' API): estimator, MAP-EM programs, built-in initializers."""

from .estimator import GLMHMM, GLMInitializer, HMMInitializer

__all__ = ["GLMHMM", "GLMInitializer", "HMMInitializer"]
