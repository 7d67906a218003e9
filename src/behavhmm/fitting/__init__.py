"""Fitting loops shared by every model (EM now; Gibbs sampling slots in beside it)."""

from .em import EMResult, run_em

__all__ = ["EMResult", "run_em"]
