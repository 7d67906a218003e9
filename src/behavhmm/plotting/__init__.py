"""Figures (matplotlib, imported only when a function runs): PCA scree plots; GLM-HMM weights,
psychometric curves, state occupancy and transition matrices.

Needs the ``plot`` extra (``pip install 'behavhmm[plot]'``). Every function
draws on an existing ``ax`` when given one, otherwise on a new figure.
"""

from .glm_hmm import (
    plot_glm_weights,
    plot_psychometric,
    plot_state_occupancy,
    plot_transition_matrix,
)
from .scree import scree_plot

__all__ = ["plot_glm_weights", "plot_psychometric", "plot_state_occupancy", "plot_transition_matrix", "scree_plot"]
