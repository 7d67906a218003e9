"""Pure JAX inference kernels: arrays in, NamedTuples out. No classes, no I/O."""

from .hmm import (
    HMMFilterResult,
    HMMPosterior,
    HMMSample,
    hmm_filter,
    hmm_sample,
    hmm_smoother,
    hmm_viterbi,
    resolve_method,
)
from .kalman import (
    ARDynamics,
    KalmanFilterResult,
    KalmanSample,
    KalmanSmootherResult,
    LinearEmission,
    RandomWalkPosterior,
    ar_kalman_filter,
    ar_kalman_sample,
    ar_kalman_smoother,
    random_walk_sample,
    random_walk_smoother,
)

__all__ = [
    "ARDynamics",
    "KalmanFilterResult",
    "KalmanSample",
    "KalmanSmootherResult",
    "LinearEmission",
    "ar_kalman_filter",
    "ar_kalman_sample",
    "ar_kalman_smoother",
    "RandomWalkPosterior",
    "random_walk_sample",
    "random_walk_smoother",
    "HMMFilterResult",
    "HMMPosterior",
    "HMMSample",
    "hmm_filter",
    "hmm_sample",
    "hmm_smoother",
    "hmm_viterbi",
    "resolve_method",
]
