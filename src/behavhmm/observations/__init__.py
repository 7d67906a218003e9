"""Emission models: log-likelihoods, sufficient statistics, M-steps and priors."""

from .autoregressive import (
    ARStatistics,
    MNIWPrior,
    ar_log_likelihoods,
    ar_mahalanobis,
    ar_mahalanobis_all,
    ar_state_statistics,
    ar_sufficient_statistics,
    default_mniw_prior,
    mniw_log_prior,
    mniw_map,
    mniw_sample,
    sample_inverse_wishart,
)
from .gaussian import (
    COVARIANCE_TYPES,
    GaussianPrior,
    GaussianStatistics,
    full_covariances,
    gaussian_log_likelihoods,
    gaussian_log_prior,
    gaussian_map,
    gaussian_sufficient_statistics,
)

__all__ = [
    "COVARIANCE_TYPES",
    "GaussianPrior",
    "GaussianStatistics",
    "full_covariances",
    "gaussian_log_likelihoods",
    "gaussian_log_prior",
    "gaussian_map",
    "gaussian_sufficient_statistics",
    "ARStatistics",
    "MNIWPrior",
    "ar_log_likelihoods",
    "ar_mahalanobis",
    "ar_mahalanobis_all",
    "ar_state_statistics",
    "ar_sufficient_statistics",
    "default_mniw_prior",
    "mniw_log_prior",
    "mniw_map",
    "mniw_sample",
    "sample_inverse_wishart",
]
