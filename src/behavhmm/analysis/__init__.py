"""Analysis of fitted models: state alignment; syllable usage, durations, transitions,
confusability, kappa scans; frame tables of kinematics and per-group syllable statistics; choice
measures (bits per trial, psychometric curves, occupancy, dwell times)."""

from .alignment import (
    align_states,
    compare_labelings,
    match_states,
    permute_states,
    state_accuracy,
    state_confusion,
)
from .choice import (
    PsychometricCurves,
    bits_per_trial,
    dwell_times,
    empirical_psychometric,
    fit_one_state_baseline,
    psychometric_curves,
    state_occupancy,
)
from .graphs import transition_graph
from .groups import compare_groups
from .kinematics import frame_table, syllable_stats
from .segmentation import segmentation_report
from .syllables import (
    cross_likelihoods,
    kappa_scan,
    median_duration,
    relabel_by_usage,
    relabel_states,
    syllable_durations,
    syllable_usage,
    transition_matrix,
)
from .trajectories import (
    TypicalTrajectories,
    apply_syllable_mapping,
    cluster_syllables,
    merge_groups,
    merge_syllables,
    syllable_instances,
    syllable_mapping,
    syllable_similarity,
    typical_trajectories,
)

__all__ = [
    "TypicalTrajectories",
    "apply_syllable_mapping",
    "cluster_syllables",
    "merge_groups",
    "merge_syllables",
    "syllable_instances",
    "syllable_mapping",
    "syllable_similarity",
    "typical_trajectories",
    "PsychometricCurves",
    "align_states",
    "bits_per_trial",
    "compare_groups",
    "compare_labelings",
    "cross_likelihoods",
    "dwell_times",
    "empirical_psychometric",
    "fit_one_state_baseline",
    "frame_table",
    "kappa_scan",
    "match_states",
    "median_duration",
    "permute_states",
    "psychometric_curves",
    "relabel_by_usage",
    "relabel_states",
    "segmentation_report",
    "state_accuracy",
    "state_confusion",
    "state_occupancy",
    "syllable_durations",
    "syllable_stats",
    "syllable_usage",
    "transition_graph",
    "transition_matrix",
]
