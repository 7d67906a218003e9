"""Figures (matplotlib, imported only when a function runs; install the ``plot`` extra).

Every function draws on an existing ``ax`` when given one, otherwise on a new
figure, and returns the axes.
"""

from .glm_hmm import (
    plot_glm_weights,
    plot_psychometric,
    plot_state_occupancy,
    plot_transition_matrix,
)

__all__ = ["plot_glm_weights", "plot_psychometric", "plot_state_occupancy", "plot_transition_matrix"]
