"""Analysis of fitted models: state alignment, choice measures (bits per trial, psychometrics, occupancy)."""

from .alignment import align_states, match_states, permute_states, state_accuracy, state_confusion
from .choice import (
    PsychometricCurves,
    bits_per_trial,
    dwell_times,
    empirical_psychometric,
    fit_one_state_baseline,
    psychometric_curves,
    state_occupancy,
)

__all__ = [
    "PsychometricCurves",
    "align_states",
    "bits_per_trial",
    "dwell_times",
    "empirical_psychometric",
    "fit_one_state_baseline",
    "match_states",
    "permute_states",
    "psychometric_curves",
    "state_accuracy",
    "state_confusion",
    "state_occupancy",
]
