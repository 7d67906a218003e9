"""Emission models: log-likelihoods, sufficient statistics, M-steps and priors."""

from .autoregressive import (
    ARStatistics,
    MNIWPrior,
    ar_log_likelihoods,
    ar_sufficient_statistics,
    default_mniw_prior,
    mniw_log_prior,
    mniw_map,
)

__all__ = [
    "ARStatistics",
    "MNIWPrior",
    "ar_log_likelihoods",
    "ar_sufficient_statistics",
    "default_mniw_prior",
    "mniw_log_prior",
    "mniw_map",
]
