"""Figures (matplotlib, imported only when a function runs): PCA scree plots.

Needs the ``plot`` extra (``pip install 'behavhmm[plot]'``).
"""

from .scree import scree_plot

__all__ = ["scree_plot"]
