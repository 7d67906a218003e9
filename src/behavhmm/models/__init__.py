"""The estimators: scikit-learn shells around the inference kernels."""

from ._initializers import Initializer, MissingInitializer
from ._serialization import load_model
from .arhmm import ARHMM
from .base import BaseHMM
from .gaussian_hmm import GaussianHMM
from .glmhmm import GLMHMM, GLMInitializer, HMMInitializer
from .keypoint_slds import KeypointSLDS

__all__ = [
    "ARHMM",
    "BaseHMM",
    "GLMHMM",
    "GLMInitializer",
    "GaussianHMM",
    "HMMInitializer",
    "Initializer",
    "KeypointSLDS",
    "MissingInitializer",
    "load_model",
]
