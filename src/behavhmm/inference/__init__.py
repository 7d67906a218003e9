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

__all__ = [
    "HMMFilterResult",
    "HMMPosterior",
    "HMMSample",
    "hmm_filter",
    "hmm_sample",
    "hmm_smoother",
    "hmm_viterbi",
    "resolve_method",
]
