"""Transition graphs: syllables as nodes (sized by usage), bigram probabilities as directed edges
(networkx)."""

from __future__ import annotations

import numpy as np

from ._optional import optional_import as _optional

__all__ = ["transition_graph"]


def transition_graph(matrix, usage=None, *, threshold: float = 0.0, syllables=None):
    """A directed graph of syllable transitions.

    Parameters
    ----------
    matrix : array-like of shape (n_states, n_states)
        ``[i, j]``: probability (or count, or difference) of the transition
        ``i -> j``, e.g. from `transition_matrix`.
    usage : array-like of shape (n_states,), optional
        Node weights (e.g. a row of `syllable_usage`); default: equal.
    threshold : float, default 0
        Keep edges with ``|matrix[i, j]| > threshold`` (self-transitions are
        always dropped).
    syllables : sequence of int, optional
        Nodes to keep (default: all).

    Returns
    -------
    networkx.DiGraph
        Node attribute ``usage``; edge attribute ``weight`` (the matrix entry).

    Raises
    ------
    ValueError
        If the matrix is not square or ``usage`` has the wrong length.
    ImportError
        Without networkx (``pip install 'behavhmm[analysis]'``).
    """
    nx = _optional("networkx")
    m = np.asarray(matrix, float)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"matrix must be square (n_states, n_states), got shape {m.shape}.")
    n = m.shape[0]
    weights = np.ones(n) if usage is None else np.asarray(usage, float)
    if weights.shape != (n,):
        raise ValueError(f"usage must have shape ({n},), got {weights.shape}.")
    keep = list(range(n)) if syllables is None else [int(s) for s in syllables]
    graph = nx.DiGraph()
    for i in keep:
        graph.add_node(i, usage=float(weights[i]))
    for i in keep:
        for j in keep:
            if i != j and np.isfinite(m[i, j]) and abs(m[i, j]) > threshold:
                graph.add_edge(i, j, weight=float(m[i, j]))
    return graph
