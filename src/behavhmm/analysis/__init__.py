"""Syllable analysis: state alignment, usage, durations, transitions, confusability, kappa scans."""

from .alignment import match_states, state_accuracy, state_confusion
from .syllables import (
    cross_likelihoods,
    kappa_scan,
    median_duration,
    relabel_by_usage,
    syllable_durations,
    syllable_usage,
    transition_matrix,
)

__all__ = [
    "cross_likelihoods",
    "kappa_scan",
    "match_states",
    "median_duration",
    "relabel_by_usage",
    "state_accuracy",
    "state_confusion",
    "syllable_durations",
    "syllable_usage",
    "transition_matrix",
]
