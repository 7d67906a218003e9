"""Figures (matplotlib, imported only when a function runs).

PCA scree plots; syllable durations, usage and transition matrices and a
fit's progress; per-group syllable statistics, transition graphs, typical
keypoint trajectories, dendrograms and keypoints-only grid movies; GLM-HMM
weights, psychometric curves and state occupancy.
Needs the ``plot`` extra (``pip install 'behavhmm[plot]'``). Every function
draws on an existing ``ax`` when given one, otherwise on a new figure.
"""

from .glm_hmm import plot_glm_weights, plot_psychometric, plot_state_occupancy
from .graphs import graph_layout, plot_transition_graph, plot_transition_graph_difference
from .groups import plot_syllable_stats
from .scree import scree_plot
from .syllables import plot_durations, plot_fit_history, plot_transition_matrix, plot_usage
from .trajectories import (
    animate_typical_trajectories,
    grid_movie,
    plot_syllable_dendrogram,
    plot_typical_trajectories,
)

__all__ = [
    "animate_typical_trajectories",
    "grid_movie",
    "plot_syllable_dendrogram",
    "plot_typical_trajectories",
    "graph_layout",
    "plot_durations",
    "plot_fit_history",
    "plot_glm_weights",
    "plot_psychometric",
    "plot_state_occupancy",
    "plot_syllable_stats",
    "plot_transition_graph",
    "plot_transition_graph_difference",
    "plot_transition_matrix",
    "plot_usage",
    "scree_plot",
]
