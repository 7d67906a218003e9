"""Fitting loops shared by every model (EM now; Gibbs sampling slots in beside it), and M-step solvers."""

from .em import EMConvergenceWarning, EMResult, run_em
from .regularizers import ElasticNet, GroupLasso, Lasso, Regularizer, Ridge, UnRegularized

__all__ = [
    "EMConvergenceWarning",
    "EMResult",
    "ElasticNet",
    "GroupLasso",
    "Lasso",
    "Regularizer",
    "Ridge",
    "UnRegularized",
    "run_em",
]
