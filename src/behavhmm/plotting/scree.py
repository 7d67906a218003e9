"""Scree plot of a PCA's explained variance."""

from __future__ import annotations

import numpy as np

__all__ = ["scree_plot"]


def scree_plot(pca, ax=None, *, target: float | None = None, max_components: int | None = None):
    """Plot the variance explained by each principal component and its running total.

    Bars show each component's fraction of the variance and the line the
    cumulative fraction. With ``target``, a dashed line marks the target and
    a dotted line the fewest components whose cumulative fraction exceeds it
    (the number `fit_pca` keeps for that target).
    matplotlib is imported only when this function runs.

    Parameters
    ----------
    pca : sklearn.decomposition.PCA or array-like of shape (n_components,)
        A fitted PCA (its ``explained_variance_ratio_`` is plotted), or the
        explained-variance ratios themselves. Fit with ``n_components=None``
        to see every component.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on (default: a new figure's).
    target : float, optional
        A variance fraction in (0, 1] to mark with a horizontal line (for
        example the target given to `fit_pca`).
    max_components : int, optional
        Plot only the first components.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ValueError
        If the ratios are empty, not 1-D, or outside [0, 1], or ``target``
        is outside (0, 1].
    TypeError
        If ``pca`` has no ``explained_variance_ratio_`` and is not an array.

    Examples
    --------
    >>> import numpy as np
    >>> from behavhmm.plotting import scree_plot
    >>> ax = scree_plot(np.array([0.6, 0.25, 0.1, 0.05]), target=0.9)
    >>> ax.get_ylabel()
    'fraction of variance explained'
    """
    import matplotlib.pyplot as plt

    ratios = getattr(pca, "explained_variance_ratio_", pca)
    try:
        ratios = np.asarray(ratios, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            "pca must be a fitted sklearn PCA or an array of variance ratios, got "
            f"{type(pca).__name__}."
        ) from exc
    if ratios.ndim != 1 or ratios.size == 0:
        raise ValueError(
            f"explained-variance ratios must be a non-empty 1-D array, got shape {ratios.shape}."
        )
    if np.any(~np.isfinite(ratios)) or ratios.min() < 0 or ratios.max() > 1 + 1e-9:
        raise ValueError("explained-variance ratios must lie in [0, 1].")
    if target is not None and not 0 < target <= 1:
        raise ValueError(f"target must be a variance fraction in (0, 1], got {target!r}.")
    if max_components is not None:
        ratios = ratios[: int(max_components)]
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    index = np.arange(1, ratios.size + 1)
    cumulative = np.cumsum(ratios)
    ax.bar(index, ratios, color="0.7", label="per component")
    ax.plot(index, cumulative, marker="o", markersize=3, color="C0", label="cumulative")
    if target is not None:
        ax.axhline(target, color="C3", linestyle="--", linewidth=1, label=f"target {target:g}")
        reached = np.flatnonzero(cumulative > target)  # scikit-learn's rule for a variance target
        if reached.size:
            k = int(reached[0]) + 1
            ax.axvline(k, color="C3", linestyle=":", linewidth=1)
            ax.annotate(
                f"{k}", (k, target), textcoords="offset points", xytext=(4, -12), color="C3"
            )
    ax.set_xlabel("principal component")
    ax.set_ylabel("fraction of variance explained")
    ax.set_ylim(0, 1.02)
    ax.set_xlim(0.4, ratios.size + 0.6)
    ax.legend(loc="center right", frameon=False)
    return ax
