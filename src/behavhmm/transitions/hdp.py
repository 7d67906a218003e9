"""Gibbs updates of the weak-limit sticky HDP-HMM transition prior.

The weak-limit approximation of the sticky hierarchical Dirichlet process HMM
(Fox et al., 2011) with ``K`` states is

$$
\\beta \\sim \\mathrm{Dir}(\\gamma / K, \\dots, \\gamma / K), \\qquad
\\pi_j \\mid \\beta \\sim \\mathrm{Dir}(\\alpha \\beta + \\kappa e_j),
$$

where ``β`` is the global state-usage vector, ``π_j`` row ``j`` of the
transition matrix, ``α`` the concentration, ``γ`` the top-level concentration
and ``κ`` the stickiness. Given transition counts ``n_jk`` the rows are
conjugate. ``β`` is resampled through auxiliary *table counts* ``m_jk`` (the
Chinese-restaurant-franchise representation), corrected for the tables that
the sticky bonus ``κ`` created (the *override* variables): with
``ρ = κ / (α + κ)``, ``w_j ~ Binomial(m_jj, ρ / (ρ + β_j (1 - ρ)))`` and
``m̄_jj = m_jj - w_j``, then ``β ~ Dir(γ/K + Σ_j m̄_j·)``.

All functions are pure JAX; each random draw takes its own key.

References
----------
E. B. Fox, E. B. Sudderth, M. I. Jordan and A. S. Willsky (2011). A sticky
HDP-HMM with application to speaker diarization. Ann. Appl. Stat. 5(2A),
1020-1056 (supplement: the sampler with auxiliary variables).

Y. W. Teh, M. I. Jordan, M. J. Beal and D. M. Blei (2006). Hierarchical
Dirichlet processes. JASA 101(476), 1566-1581.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from .._utils import log_gamma_variates
from .dirichlet import dirichlet_log_density

__all__ = [
    "transition_counts",
    "sample_table_counts",
    "sample_corrected_table_counts",
    "sample_override_counts",
    "sample_global_weights",
    "sample_transition_rows",
    "sample_initial_probs",
    "hdp_log_prior",
]


def transition_counts(
    states: Int[Array, " n_time_bins"],
    session_starts,
    n_states: int,
    *,
    groups: Int[Array, " n_time_bins"] | None = None,
    n_groups: int = 1,
    weights=None,
) -> Float[Array, "n_groups n_states n_states"]:
    """Count transitions ``z_{t-1} -> z_t`` within sessions, per transition group.

    Parameters
    ----------
    states : int array of shape (n_time_bins,)
        State path.
    session_starts : bool array of shape (n_time_bins,)
        No transition is counted into a session start.
    n_states : int
        Number of states.
    groups : int array of shape (n_time_bins,), optional
        Group of each step (the matrix used for ``z_{t-1} -> z_t``).
    n_groups : int, default 1
        Number of groups.
    weights : array of shape (n_time_bins,), optional
        Weight of each step (0 drops it, e.g. padding).

    Returns
    -------
    array of shape (n_groups, n_states, n_states)
        ``counts[g, i, j]``.
    """
    starts = jnp.asarray(session_starts, bool).at[0].set(True)
    valid = ~starts[1:]
    if weights is not None:
        valid = valid & (weights[1:] > 0)
    g = jnp.zeros_like(states[1:]) if groups is None else groups[1:]
    flat = (g * n_states + states[:-1]) * n_states + states[1:]
    counts = (
        jnp.zeros(n_groups * n_states * n_states).at[flat].add(valid.astype(jnp.result_type(float)))
    )
    return counts.reshape(n_groups, n_states, n_states)


def sample_table_counts(key, counts, alpha, beta, kappa, max_customers: int):
    """Draw the auxiliary table counts ``m_jk ~ CRT(n_jk, α β_k + κ δ_jk)``.

    ``m_jk`` is the number of tables serving dish ``k`` in restaurant ``j``:
    a sum of ``n_jk`` independent Bernoulli draws with success probabilities
    ``c / (i + c)``, ``i = 0, ..., n_jk - 1``, ``c = α β_k + κ δ_jk``.

    Parameters
    ----------
    key : jax.random key
    counts : array of shape (..., n_states, n_states)
        Integer-valued transition counts ``n_jk`` (per group on leading axes).
    alpha, kappa : float
        Concentration and stickiness.
    beta : array of shape (n_states,)
        Global weights.
    max_customers : int
        Static upper bound on ``Σ n_jk`` (e.g. the number of time bins).

    Returns
    -------
    array of the shape of ``counts``
        Table counts (float, integer-valued).

    Notes
    -----
    The draws are vectorised over customers: customer ``c`` (of the
    ``Σ n_jk`` transitions) belongs to the cell whose cumulative count first
    exceeds ``c`` and has rank ``c - start(cell)`` there, so the work is
    O(max_customers log n_cells) with no ragged loops.
    """
    cell, new_table = _customer_tables(key, counts, alpha, beta, kappa, max_customers)
    tables = jnp.zeros(counts.size, beta.dtype).at[cell].add(new_table.astype(beta.dtype))
    return tables.reshape(counts.shape)


def _customer_tables(key, counts, alpha, beta, kappa, max_customers: int):
    """For every customer: its cell (flat index into ``counts``) and whether it opened a table.

    Customer ``c`` belongs to the cell whose cumulative count first exceeds
    ``c``; with rank ``r`` there it opens a table with probability
    ``conc / (r + conc)``. Customers beyond ``Σ n_jk`` open none.
    """
    n_states = counts.shape[-1]
    conc = alpha * beta + kappa * jnp.eye(n_states, dtype=beta.dtype)
    flat_counts = jnp.round(counts).astype(jnp.int32).reshape(-1)
    flat_conc = jnp.broadcast_to(conc, counts.shape).reshape(-1)
    ends = jnp.cumsum(flat_counts)
    customer = jnp.arange(max_customers)
    cell = jnp.minimum(jnp.searchsorted(ends, customer, side="right"), flat_counts.shape[0] - 1)
    rank = customer - (ends - flat_counts)[cell]
    c = flat_conc[cell]
    u = jax.random.uniform(key, (max_customers,), dtype=beta.dtype)
    return cell, (u * (rank + c) < c) & (customer < ends[-1])


def sample_corrected_table_counts(key, counts, alpha, beta, kappa, max_customers: int):
    """Table counts ``m`` and override-corrected counts ``m̄`` in one pass.

    Equivalent in distribution to
    [`sample_table_counts`][behavhmm.transitions.hdp.sample_table_counts] followed by
    [`sample_override_counts`][behavhmm.transitions.hdp.sample_override_counts]: every table opened
    on the diagonal is, independently, an override table with probability ``ρ / (ρ + β_j (1 - ρ))``,
    so removing each with that probability draws ``w_j ~ Binomial(m_jj, ·)`` exactly, from uniforms
    only.

    Parameters
    ----------
    key : jax.random key
    counts : array of shape (..., n_states, n_states)
    alpha, kappa : float
    beta : array of shape (n_states,)
    max_customers : int
        Static upper bound on ``Σ n_jk``.

    Returns
    -------
    tables, corrected : arrays of the shape of ``counts``
    """
    n_states = counts.shape[-1]
    rho = kappa / (alpha + kappa)
    p_override = rho / (rho + beta * (1.0 - rho))
    n_cells = counts.size
    k_table, k_override = jax.random.split(key)
    cell, new_table = _customer_tables(k_table, counts, alpha, beta, kappa, max_customers)
    row = (cell // n_states) % n_states
    diagonal = row == cell % n_states
    overridden = diagonal & (
        jax.random.uniform(k_override, (max_customers,), dtype=beta.dtype) < p_override[row]
    )
    tables = jnp.zeros(n_cells, beta.dtype).at[cell].add(new_table.astype(beta.dtype))
    corrected = (
        jnp.zeros(n_cells, beta.dtype).at[cell].add((new_table & ~overridden).astype(beta.dtype))
    )
    return tables.reshape(counts.shape), corrected.reshape(counts.shape)


def sample_override_counts(key, table_counts, alpha, beta, kappa):
    """Remove the tables created by the sticky bonus: ``m̄_jj = m_jj - w_j``.

    Parameters
    ----------
    key : jax.random key
    table_counts : array of shape (..., n_states, n_states)
        ``m_jk`` from the table-count step.
    alpha, kappa : float
    beta : array of shape (n_states,)

    Returns
    -------
    array of the shape of ``table_counts``
        ``m̄``: off-diagonal entries unchanged, diagonal reduced by
        ``w_j ~ Binomial(m_jj, ρ / (ρ + β_j (1 - ρ)))``, ``ρ = κ / (α + κ)``.
    """
    n_states = table_counts.shape[-1]
    rho = kappa / (alpha + kappa)
    p = rho / (rho + beta * (1.0 - rho))
    diag = jnp.diagonal(table_counts, axis1=-2, axis2=-1)
    w = jax.random.binomial(key, diag, jnp.broadcast_to(p, diag.shape)).astype(table_counts.dtype)
    return table_counts - w[..., None] * jnp.eye(n_states, dtype=table_counts.dtype)


def sample_global_weights(key, corrected_tables, gamma):
    """``β ~ Dir(γ/K + Σ_j m̄_jk)`` (summed over rows and groups).

    Parameters
    ----------
    key : jax.random key
    corrected_tables : array of shape (..., n_states, n_states)
    gamma : float
        Top-level concentration.

    Returns
    -------
    array of shape (n_states,)
    """
    n_states = corrected_tables.shape[-1]
    dish_counts = corrected_tables.reshape(-1, n_states, n_states).sum(axis=(0, 1))
    return _dirichlet(key, gamma / n_states + dish_counts)


def sample_transition_rows(key, counts, alpha, beta, kappa):
    """``π_j ~ Dir(α β + κ e_j + n_j)`` for every row (and group).

    Parameters
    ----------
    key : jax.random key
    counts : array of shape (..., n_states, n_states)
    alpha, kappa : float
    beta : array of shape (n_states,)

    Returns
    -------
    array of the shape of ``counts``, rows on the simplex
    """
    n_states = counts.shape[-1]
    conc = alpha * beta + kappa * jnp.eye(n_states, dtype=beta.dtype) + counts
    return _dirichlet(key, conc)


def sample_initial_probs(key, initial_counts, alpha, beta):
    """``π_0 ~ Dir(α β + n_0)``, with ``n_0`` the counts of first states.

    Returns
    -------
    array of shape (n_states,)
    """
    return _dirichlet(key, alpha * beta + initial_counts)


def _dirichlet(key, concentration):
    """Dirichlet draws via normalised Gamma draws, stable for tiny concentrations.

    Draws ``log G`` with ``G ~ Gamma(a)`` (loop-free Marsaglia-Tsang, in log
    space), so rows with concentrations near 0 (``α β_k`` for unused states)
    neither underflow to all-zero rows nor produce NaN; probabilities are
    floored at ``tiny**0.8`` of the dtype.
    """
    log_g = log_gamma_variates(key, concentration)
    log_g = log_g - jnp.max(log_g, axis=-1, keepdims=True)
    g = jnp.exp(log_g)
    probs = g / jnp.sum(g, axis=-1, keepdims=True)
    # Floor far above the smallest normal number (~1e-31 in float32, ~1e-247 in
    # float64): every state stays reachable in the filters, whose normalisers
    # would otherwise underflow to 0 (log-likelihood -inf) at a frame that only
    # a state with a flushed-to-zero transition probability explains.
    floor = jnp.finfo(probs.dtype).tiny ** 0.8
    probs = jnp.maximum(probs, floor)
    return probs / jnp.sum(probs, axis=-1, keepdims=True)


def hdp_log_prior(transition_prob, initial_prob, beta, alpha, gamma, kappa) -> Float[Array, ""]:
    """``log p(β) + Σ_j log p(π_j | β) + log p(π_0 | β)`` in nats (with normalisers).

    Parameters
    ----------
    transition_prob : array of shape (..., n_states, n_states)
    initial_prob : array of shape (n_states,)
    beta : array of shape (n_states,)
    alpha, gamma, kappa : float

    Returns
    -------
    scalar array
    """
    n_states = beta.shape[-1]
    lp = dirichlet_log_density(beta, gamma / n_states)
    conc = alpha * beta + kappa * jnp.eye(n_states, dtype=beta.dtype)
    lp += dirichlet_log_density(transition_prob, jnp.broadcast_to(conc, transition_prob.shape))
    lp += dirichlet_log_density(initial_prob, alpha * beta)
    return lp
