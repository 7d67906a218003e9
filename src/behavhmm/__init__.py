"""behavhmm: hidden Markov and switching state-space models for behaviour and neural data.

The estimators follow scikit-learn's API and accept NumPy, JAX or pynapple
input; sessions are marked with ``session_starts``. See
https://behavhmm.readthedocs.io for the user guide.
"""

from . import analysis, datasets, inference, io, model_selection, plotting, preprocessing
from ._version import __version__
from .models import ARHMM, GLMHMM, GaussianHMM, KeypointSLDS, load_model

__all__ = [
    "ARHMM",
    "GLMHMM",
    "GaussianHMM",
    "KeypointSLDS",
    "__version__",
    "analysis",
    "datasets",
    "inference",
    "io",
    "load_model",
    "model_selection",
    "plotting",
    "preprocessing",
]
