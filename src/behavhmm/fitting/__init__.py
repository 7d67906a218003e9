"""Fitting loops shared by every model: EM and Gibbs sampling."""

from .em import EMResult, run_em
from .gibbs import GibbsResult, run_gibbs

__all__ = ["EMResult", "GibbsResult", "run_em", "run_gibbs"]
