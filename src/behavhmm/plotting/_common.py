"""Helpers shared by the figure modules."""

from __future__ import annotations


def _axes(ax, figsize=(4.5, 3.2)):
    """``ax``, or the axes of a new figure of ``figsize`` inches (constrained layout)."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax
