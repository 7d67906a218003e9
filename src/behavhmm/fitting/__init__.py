"""Fitting loops shared by every model (EM and Gibbs sampling); the GLM M-step's regularizers."""

from .em import EMConvergenceWarning, EMResult, run_em
from .gibbs import GibbsResult, run_gibbs
from .regularizers import ElasticNet, GroupLasso, Lasso, Regularizer, Ridge, UnRegularized

__all__ = [
    "EMConvergenceWarning",
    "EMResult",
    "ElasticNet",
    "GibbsResult",
    "GroupLasso",
    "Lasso",
    "Regularizer",
    "Ridge",
    "UnRegularized",
    "run_em",
    "run_gibbs",
]
