"""Student-t emissions as Gaussian scale mixtures: updates of the degrees of freedom ν.

A Student-t emission is written ``y | τ ~ N(μ, Σ / τ)`` with ``τ ~ Gamma(ν/2, ν/2)``.
EM (ECME, Liu & Rubin 1995) updates ν by solving a one-dimensional equation in the
expected ``τ`` and ``log τ``; Gibbs sampling draws ν by a Metropolis-Hastings step
given the sampled ``τ`` under a Gamma(2, 0.1) prior (Juárez & Steel 2010). Both keep
ν in `DOF_BOUNDS`.

References
----------
C. Liu and D. B. Rubin (1995). ML estimation of the t distribution using EM
and its extensions, ECM and ECME. Statistica Sinica 5, 19-39.

J. A. Juárez and M. F. J. Steel (2010). Model-based clustering of non-Gaussian
panel data based on skew-t distributions. J. Business & Economic Statistics
28(1), 52-66.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.special import digamma, gammaln

__all__ = ["DOF_BOUNDS", "DOF_PRIOR", "DOF_STEP", "log_gamma_density", "sample_dof", "solve_dof"]

DOF_BOUNDS = (1.0, 1000.0)  # degrees of freedom are kept in this range
DOF_PRIOR = (2.0, 0.1)  # Gamma(shape, rate) prior on ν for Gibbs (Juárez & Steel, 2010)
DOF_STEP = 0.3  # random-walk step of the Metropolis-Hastings update of log ν


def solve_dof(c, lo=DOF_BOUNDS[0], hi=DOF_BOUNDS[1], n_steps=50):
    """EM update of ν: the root in ν of ``log(ν/2) - ψ(ν/2) + 1 + c = 0``, by bisection in log ν.

    Parameters
    ----------
    c : Array of shape (n_states,)
        Per state, ``Σ_t w_t (E[log τ_t] - E[τ_t]) / Σ_t w_t``.
    lo, hi : float
        Bounds on ν; a state whose equation has no root inside gets the nearer bound.
    n_steps : int
        Bisection steps.

    Returns
    -------
    Array of shape (n_states,)
    """
    log_lo = jnp.full_like(c, jnp.log(lo))
    log_hi = jnp.full_like(c, jnp.log(hi))

    def f(log_nu):
        nu = jnp.exp(log_nu)
        return jnp.log(0.5 * nu) - digamma(0.5 * nu) + 1.0 + c

    def body(_, bounds):
        a, b = bounds
        mid = 0.5 * (a + b)
        positive = f(mid) > 0
        return jnp.where(positive, mid, a), jnp.where(positive, b, mid)

    a, b = jax.lax.fori_loop(0, n_steps, body, (log_lo, log_hi))
    root = jnp.exp(0.5 * (a + b))
    # f > 0 everywhere: the data are Gaussian-like at these bounds
    return jnp.where(f(log_hi) > 0, hi, jnp.where(f(log_lo) < 0, lo, root))


def log_gamma_density(tau, shape, rate):
    """``log Gamma(tau; shape, rate)`` (rate parametrisation), elementwise."""
    return shape * jnp.log(rate) - gammaln(shape) + (shape - 1.0) * jnp.log(tau) - rate * tau


def sample_dof(key, dof, states, tau, weights, n_states):
    """Gibbs update of ν: one Metropolis-Hastings step per state given its frames' precisions.

    Parameters
    ----------
    key : jax.random key
    dof : Array of shape (n_states,)
        Current ν.
    states : Array of int, shape (n_frames,)
        State of each frame.
    tau : Array of shape (n_frames,)
        Sampled precision scale of each frame.
    weights : Array of shape (n_frames,)
        1 for modelled frames, 0 for padding.
    n_states : int

    Returns
    -------
    Array of shape (n_states,)
        The new ν (the proposal where accepted).
    """
    w = weights
    n = jnp.zeros(n_states, dof.dtype).at[states].add(w)
    sum_log_tau = jnp.zeros(n_states, dof.dtype).at[states].add(w * jnp.log(tau))
    sum_tau = jnp.zeros(n_states, dof.dtype).at[states].add(w * tau)

    def log_target(nu):
        half = 0.5 * nu
        lik = (
            n * (half * jnp.log(half) - gammaln(half)) + (half - 1.0) * sum_log_tau - half * sum_tau
        )
        prior = (DOF_PRIOR[0] - 1.0) * jnp.log(nu) - DOF_PRIOR[1] * nu
        inside = (nu >= DOF_BOUNDS[0]) & (nu <= DOF_BOUNDS[1])
        return jnp.where(inside, lik + prior, -jnp.inf)

    k_prop, k_acc = jax.random.split(key)
    proposal = dof * jnp.exp(DOF_STEP * jax.random.normal(k_prop, dof.shape, dof.dtype))
    # log-scale random walk: the Jacobian adds log(nu' / nu)
    log_ratio = log_target(proposal) - log_target(dof) + jnp.log(proposal) - jnp.log(dof)
    accept = jnp.log(jax.random.uniform(k_acc, dof.shape, dof.dtype)) < log_ratio
    return jnp.where(accept, proposal, dof)
