"""Figures (matplotlib, imported only when a function runs).

PCA scree plots, syllable durations, usage and transitions, and a fit's
progress. Needs the ``plot`` extra (``pip install 'behavhmm[plot]'``).
"""

from .scree import scree_plot
from .syllables import plot_durations, plot_fit_history, plot_transition_matrix, plot_usage

__all__ = ["scree_plot", "plot_durations", "plot_usage", "plot_transition_matrix", "plot_fit_history"]
