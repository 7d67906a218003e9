"""The Gaussian HMM.

Estimator (``estimator.py``), prediction methods (``prediction.py``), EM programs (``em.py``),
initializers (``initialize.py``).
"""

from .em import GaussianHMMParams
from .estimator import GaussianHMM
from .initialize import kmeans_gaussian_params, random_gaussian_params

__all__ = ["GaussianHMM", "GaussianHMMParams", "kmeans_gaussian_params", "random_gaussian_params"]
