"""Transition graphs (networkx layouts): one group's, and the difference between two groups."""

from __future__ import annotations

import numpy as np

from ..analysis._optional import optional_import
from ._common import _axes

__all__ = ["plot_transition_graph", "plot_transition_graph_difference", "graph_layout"]


def graph_layout(graph, layout: str = "circular", seed: int = 0) -> dict:
    """Node positions of a graph: ``"circular"``, ``"spring"`` (seeded) or ``"kamada_kawai"``.

    Returns
    -------
    dict
        ``{node: (x, y)}``; pass it as ``pos`` to draw several graphs with the
        nodes in the same places.
    """
    nx = optional_import("networkx")

    if layout == "circular":
        return nx.circular_layout(graph)
    if layout == "spring":
        return nx.spring_layout(graph, seed=seed, weight="weight")
    if layout == "kamada_kawai":
        return nx.kamada_kawai_layout(graph)
    raise ValueError(f'layout must be "circular", "spring" or "kamada_kawai", got {layout!r}.')


def _draw(graph, pos, ax, node_sizes, node_colors, edge_widths, edge_colors, cmap=None):
    nx = optional_import("networkx")

    nx.draw_networkx_nodes(
        graph,
        pos,
        ax=ax,
        node_size=node_sizes,
        node_color=node_colors,
        cmap=cmap,
        edgecolors="0.2",
        linewidths=0.5,
    )
    nx.draw_networkx_labels(graph, pos, ax=ax, font_size=7)
    if graph.number_of_edges():
        nx.draw_networkx_edges(
            graph,
            pos,
            ax=ax,
            width=edge_widths,
            edge_color=edge_colors,
            arrows=True,
            arrowsize=8,
            connectionstyle="arc3,rad=0.15",
            node_size=node_sizes,
        )
    ax.set_axis_off()


def plot_transition_graph(
    matrix,
    usage=None,
    ax=None,
    *,
    threshold: float = 0.05,
    max_syllables: int | None = 20,
    layout="circular",
    pos: dict | None = None,
    max_width: float = 4.0,
    max_node_size: float = 600.0,
    min_usage: float = 0.005,
):
    """Draw syllable transitions as a graph: nodes sized by usage, edges as wide as their
    probability.

    Parameters
    ----------
    matrix : array-like of shape (n_states, n_states)
        Bigram probabilities, e.g. `behavhmm.analysis.transition_matrix`.
    usage : array-like of shape (n_states,), optional
        Node sizes (usage fractions); default equal.
    ax : matplotlib.axes.Axes, optional
    threshold : float, default 0.05
        Hide edges with a probability at or below this.
    max_syllables : int or None, default 20
        The first syllables only.
    layout : {"circular", "spring", "kamada_kawai"}, default "circular"
    pos : dict, optional
        Node positions (from `graph_layout`), to reuse across groups.
    max_width, max_node_size : float
        Width (points) of the most probable edge, area (points²) of the most used node.
    min_usage : float, default 0.005
        With ``usage``, leave out syllables used less (a syllable seen once
        has transition probabilities of 0 or 1 that say little).

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ImportError
        Without networkx (``pip install 'behavhmm[analysis]'``).
    """
    from ..analysis.graphs import transition_graph

    m = np.asarray(matrix, float)
    keep = np.arange(m.shape[0] if max_syllables is None else min(m.shape[0], max_syllables))
    if usage is not None:
        keep = keep[np.asarray(usage, float)[keep] >= min_usage]
    graph = transition_graph(m, usage, threshold=threshold, syllables=keep)
    pos = graph_layout(graph, layout) if pos is None else pos
    ax = _axes(ax, figsize=(4.5, 4.5))
    sizes = np.array([graph.nodes[k]["usage"] for k in graph.nodes])
    sizes = (
        max_node_size * sizes / sizes.max()
        if sizes.size and sizes.max() > 0
        else np.full(len(sizes), 100.0)
    )
    weights = np.array([w for _, _, w in graph.edges(data="weight")])
    widths = max_width * weights / weights.max() if weights.size else []
    _draw(graph, pos, ax, np.maximum(sizes, 20), "0.85", widths, "0.3")
    return ax


def plot_transition_graph_difference(
    matrix_a,
    matrix_b,
    usage_a=None,
    usage_b=None,
    ax=None,
    *,
    threshold: float = 0.02,
    max_syllables: int | None = 20,
    layout="circular",
    pos: dict | None = None,
    labels=("a", "b"),
    max_width: float = 4.0,
    max_node_size: float = 600.0,
    min_usage: float = 0.005,
):
    """Draw ``b - a``: edges and nodes coloured by the sign of the change, sized by its magnitude.

    Parameters
    ----------
    matrix_a, matrix_b : array-like of shape (n_states, n_states)
        Transition probabilities of two groups.
    usage_a, usage_b : array-like of shape (n_states,), optional
        Usage of the two groups; nodes are then coloured by ``usage_b - usage_a``.
    ax : matplotlib.axes.Axes, optional
    threshold : float, default 0.02
        Hide edges whose absolute difference is at or below this.
    max_syllables, layout, pos, max_width, max_node_size, min_usage
        As in `plot_transition_graph` (``min_usage``: in either group).
    labels : pair of str
        Names of the groups, for the title.

    Returns
    -------
    matplotlib.axes.Axes
        Red: more in ``b``; blue: less in ``b``.

    Raises
    ------
    ValueError
        If the matrices differ in shape.
    """
    from ..analysis.graphs import transition_graph

    a, b = np.asarray(matrix_a, float), np.asarray(matrix_b, float)
    if a.shape != b.shape:
        raise ValueError(f"matrix_a and matrix_b differ in shape: {a.shape} and {b.shape}.")
    n = a.shape[0]
    diff_usage = (
        None
        if usage_a is None or usage_b is None
        else np.asarray(usage_b, float) - np.asarray(usage_a, float)
    )
    keep = np.arange(n if max_syllables is None else min(n, max_syllables))
    if usage_a is not None and usage_b is not None:
        used = np.maximum(np.asarray(usage_a, float), np.asarray(usage_b, float))
        keep = keep[used[keep] >= min_usage]
    graph = transition_graph(
        b - a,
        None if diff_usage is None else np.abs(diff_usage),
        threshold=threshold,
        syllables=keep,
    )
    pos = graph_layout(graph, layout) if pos is None else pos
    ax = _axes(ax, figsize=(4.5, 4.5))
    nodes = list(graph.nodes)
    if diff_usage is None:
        sizes, colors = np.full(len(nodes), 150.0), "0.85"
    else:
        mag = np.abs(diff_usage[nodes])
        sizes = max_node_size * mag / mag.max() if mag.max() > 0 else np.full(len(nodes), 100.0)
        colors = ["#d6604d" if diff_usage[k] > 0 else "#4393c3" for k in nodes]
    weights = np.array([w for _, _, w in graph.edges(data="weight")])
    widths = max_width * np.abs(weights) / np.abs(weights).max() if weights.size else []
    edge_colors = ["#b2182b" if w > 0 else "#2166ac" for w in weights]
    _draw(graph, pos, ax, np.maximum(sizes, 20), colors, widths, edge_colors)
    ax.set_title(f"{labels[1]} - {labels[0]} (red: more in {labels[1]})", fontsize=8)
    return ax
