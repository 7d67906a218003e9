"""Sticky Dirichlet priors on transition rows and their MAP updates.

Row ``i`` of the transition matrix gets the prior

$$
\\pi_i \\sim \\mathrm{Dir}(1 + \\alpha / K + \\kappa e_i),
$$

so its posterior mode adds ``alpha / n_states`` pseudo-counts to every entry
and ``kappa`` more to the diagonal:

$$
\\hat\\pi_{ij} = \\frac{N_{ij} + \\alpha / K + \\kappa \\delta_{ij}}
                     {\\sum_{j'} N_{ij'} + \\alpha + \\kappa}.
$$

This equals the posterior mean of the weak-limit sticky HDP-HMM row
``π_i ~ Dir(α β + κ e_i)`` at ``β = 1/K`` (Fox et al., 2011), so ``alpha``
and ``kappa`` mean the same for EM and Gibbs fits.

References
----------
E. B. Fox, E. B. Sudderth, M. I. Jordan and A. S. Willsky (2011). A sticky
HDP-HMM with application to speaker diarization. Ann. Appl. Stat. 5(2A),
1020-1056.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax.scipy.special import gammaln
from jaxtyping import Array, Float

__all__ = [
    "sticky_concentration",
    "sticky_dirichlet_map",
    "initial_dirichlet_map",
    "dirichlet_map",
    "dirichlet_log_density",
]


def sticky_concentration(
    n_states: int, alpha, kappa, dtype=None
) -> Float[Array, "n_states n_states"]:
    """Pseudo-counts ``alpha / K + kappa δ_ij`` added to expected transition counts."""
    eye = jnp.eye(n_states, dtype=dtype)
    return alpha / n_states + kappa * eye


def sticky_dirichlet_map(
    expected_transitions: Float[Array, "... n_states n_states"], alpha, kappa
) -> Float[Array, "... n_states n_states"]:
    """MAP transition matrix (or matrices, one per group) under the sticky prior.

    Parameters
    ----------
    expected_transitions : array of shape (..., n_states, n_states)
        Expected counts ``N_ij`` from the smoother.
    alpha : float
        Total concentration spread evenly over a row (``alpha / n_states`` each).
    kappa : float
        Extra pseudo-counts on the diagonal (stickiness).

    Returns
    -------
    array of shape (..., n_states, n_states)
        Row-stochastic matrices.
    """
    n_states = expected_transitions.shape[-1]
    counts = expected_transitions + sticky_concentration(
        n_states, alpha, kappa, expected_transitions.dtype
    )
    return counts / counts.sum(axis=-1, keepdims=True)


def initial_dirichlet_map(expected_initial_counts: Float[Array, " n_states"], pseudo_count=1.0):
    """MAP initial distribution with ``pseudo_count`` added to every state."""
    counts = expected_initial_counts + pseudo_count
    return counts / counts.sum()


def dirichlet_map(
    expected_counts: Float[Array, "... n"], concentration, fallback: Float[Array, "... n"]
) -> Float[Array, "... n"]:
    """Posterior mode of a Dirichlet with general concentrations (all ``>= 1``).

    ``p_j = (N_j + a_j - 1) / Σ_j' (N_j' + a_j' - 1)`` along the last axis:
    the MAP initial distribution (a vector) or transition matrix (one row per
    state) under ``Dir(a)`` priors, the M-step of nemos' GLM-HMM with
    ``dirichlet_*_proba``. With ``a = 1`` it is the maximum-likelihood
    update.

    Parameters
    ----------
    expected_counts : array of shape (..., n)
        Expected counts from the smoother.
    concentration : array broadcastable to ``expected_counts``
        Dirichlet concentrations ``a``, each ``>= 1``.
    fallback : array of shape (..., n)
        Used for a row whose counts and pseudo-counts are all zero (a state
        never visited under a flat prior), which has no mode; typically the
        current parameters.

    Returns
    -------
    array of shape (..., n)
    """
    counts = expected_counts + (jnp.asarray(concentration, expected_counts.dtype) - 1.0)
    total = counts.sum(axis=-1, keepdims=True)
    return jnp.where(total > 0, counts / jnp.where(total > 0, total, 1.0), fallback)


def dirichlet_log_density(
    probs: Float[Array, "... n"], concentration, *, include_constant: bool = True
) -> Float[Array, ""]:
    """``sum log Dir(probs | concentration)`` over all leading axes, in nats.

    Parameters
    ----------
    probs : array of shape (..., n)
        Points on the simplex (last axis).
    concentration : array broadcastable to ``probs``
        Dirichlet concentrations.
    include_constant : bool, default True
        Include the normaliser ``log Γ(Σa) - Σ log Γ(a)``. Objectives that only
        compare parameter values leave it out: it is constant, and for large
        concentrations (``kappa = 1e6``) it would swamp float32 resolution.

    Returns
    -------
    scalar array
    """
    concentration = jnp.broadcast_to(jnp.asarray(concentration, probs.dtype), probs.shape)
    safe = jnp.where(concentration == 1.0, 0.0, (concentration - 1.0) * jnp.log(probs))
    total = jnp.sum(safe)
    if include_constant:
        total += jnp.sum(gammaln(concentration.sum(-1)) - gammaln(concentration).sum(-1))
    return total
