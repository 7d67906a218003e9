"""Embedded example data: a known ARHMM to simulate from (used by ``behavhmm demo``)."""

from __future__ import annotations

import jax
import numpy as np

from .models import ARHMM

__all__ = ["demo_arhmm", "simulate_demo_sessions", "demo_keypoint_slds"]


def _rotation(rng, n_features, angle):
    """A rotation by ``angle`` in a random plane of R^n_features (identity in 1-D)."""
    if n_features < 2:
        return np.eye(n_features)
    basis, _ = np.linalg.qr(rng.normal(size=(n_features, 2)))
    u, v = basis[:, 0], basis[:, 1]
    gen = np.outer(v, u) - np.outer(u, v)
    return np.eye(n_features) + np.sin(angle) * gen + (np.cos(angle) - 1.0) * (np.outer(u, u) + np.outer(v, v))


def demo_arhmm(n_states: int = 4, n_features: int = 3, nlags: int = 2, *, stickiness: float = 0.97, seed: int = 0) -> ARHMM:
    """A ground-truth sticky ARHMM with distinct, stable dynamics per state.

    State ``k`` turns the pose around its own fixed point: the newest lag is
    a damped rotation by an angle that grows with ``k``, older lags add small
    corrections, and each state has its own offset and correlated noise.

    Parameters
    ----------
    n_states : int, default 4
    n_features : int, default 3
    nlags : int, default 2
    stickiness : float, default 0.97
        Self-transition probability (mean dwell ``1 / (1 - stickiness)`` frames).
    seed : int, default 0
        Seed of the parameter draw.

    Returns
    -------
    ARHMM
        An estimator whose fitted attributes are the true parameters.
    """
    rng = np.random.default_rng(seed)
    coef = np.zeros((n_states, n_features, nlags * n_features))
    intercept = np.zeros((n_states, n_features))
    cov = np.zeros((n_states, n_features, n_features))
    for k in range(n_states):
        angle = 0.08 + 0.35 * k / max(n_states - 1, 1)
        damping = 0.85 + 0.1 * rng.uniform()
        coef[k, :, :n_features] = damping * _rotation(rng, n_features, angle)
        for lag in range(1, nlags):
            coef[k, :, lag * n_features : (lag + 1) * n_features] = 0.05 * rng.normal(size=(n_features, n_features))
        target = rng.normal(scale=2.0, size=n_features)
        # offset so that the fixed point of the (lag-summed) dynamics is ``target``
        total = coef[k].reshape(n_features, nlags, n_features).sum(axis=1)
        intercept[k] = (np.eye(n_features) - total) @ target
        root = rng.normal(scale=0.15, size=(n_features, n_features))
        cov[k] = root @ root.T + 0.02 * np.eye(n_features)
    off = (1.0 - stickiness) / max(n_states - 1, 1)
    model = ARHMM(n_states=n_states, nlags=nlags)
    model.initial_prob_ = np.full(n_states, 1.0 / n_states)
    model.transition_prob_ = np.full((n_states, n_states), off) + (stickiness - off) * np.eye(n_states)
    model.coef_ = coef
    model.intercept_ = intercept
    model.covariances_ = cov
    return model


def simulate_demo_sessions(
    truth: ARHMM | None = None, n_sessions: int = 4, frames_per_session: int = 2500, *, seed: int = 0
):
    """Simulate several sessions from ``truth`` (default [`demo_arhmm`][behavhmm.datasets.demo_arhmm]).

    Returns
    -------
    X : ndarray of shape (n_sessions * frames_per_session, n_features)
    states : ndarray of int32, same length
        True states, -1 for each session's conditioning frames.
    session_starts : ndarray of bool, same length
    truth : ARHMM
    """
    truth = demo_arhmm() if truth is None else truth
    n_time_bins = n_sessions * frames_per_session
    session_starts = np.zeros(n_time_bins, bool)
    session_starts[::frames_per_session] = True
    X, states = truth.simulate(jax.random.key(seed), n_time_bins, session_starts=session_starts)
    return X, states, session_starts, truth


def demo_keypoint_slds(n_states: int = 3, latent_dim: int = 4, *, stickiness: float = 0.98, seed: int = 0):
    """A ground-truth keypoint SLDS on a 6-keypoint 2-D "mouse" (used by ``behavhmm demo --model keypoints``).

    The body is a fixed outline (snout, two ears, body centre, hips, tail
    base; about 40 pixels long) deformed along ``latent_dim`` random
    orthonormal directions of the centred keypoint space. Every state pulls
    the latent pose towards its own target (``x_t = 0.8 x_{t-1} + 0.2 m_k +
    noise``, nlags 1), so states are distinct postures; the centroid walks
    randomly and the heading drifts when simulated.

    Parameters
    ----------
    n_states : int, default 3
    latent_dim : int, default 4
        At most 10 (= (6 keypoints - 1) x 2 dimensions).
    stickiness : float, default 0.98
        Self-transition probability of every state.
    seed : int, default 0

    Returns
    -------
    KeypointSLDS
        A model with parameters set (``simulate`` works; ``anterior_bodyparts=0``,
        ``posterior_bodyparts=5``).

    Raises
    ------
    ValueError
        If ``latent_dim`` is not in 1..10 or ``n_states`` < 2.
    """
    from .models import KeypointSLDS

    if not 1 <= latent_dim <= 10:
        raise ValueError(f"latent_dim must be in 1..10 for 6 keypoints in 2-D, got {latent_dim}.")
    if n_states < 2:
        raise ValueError(f"n_states must be at least 2, got {n_states}.")
    rng = np.random.default_rng(seed)
    outline = np.array([[2.0, 0.0], [1.2, 0.5], [1.2, -0.5], [0.0, 0.0], [-1.0, 0.0], [-2.0, 0.0]])
    outline -= outline.mean(axis=0)
    basis = rng.normal(size=(6, 2, latent_dim))
    basis -= basis.mean(axis=0)  # deformations keep the centroid
    components = np.linalg.qr(basis.reshape(12, latent_dim))[0].T
    model = KeypointSLDS(n_states=n_states, latent_dim=latent_dim, nlags=1, anterior_bodyparts=0, posterior_bodyparts=5)
    model.pca_components_ = components
    model.pca_mean_ = outline.reshape(-1) / np.sqrt(np.mean(np.sum(outline**2, axis=1)))
    targets = rng.normal(size=(n_states, latent_dim))
    targets *= 0.6 / np.linalg.norm(targets, axis=1, keepdims=True)
    model.coef_ = np.tile(0.8 * np.eye(latent_dim), (n_states, 1, 1))
    model.intercept_ = 0.2 * targets
    model.covariances_ = np.tile(0.003 * np.eye(latent_dim), (n_states, 1, 1))
    model.initial_prob_ = np.full(n_states, 1.0 / n_states)
    off = (1.0 - stickiness) / (n_states - 1)
    model.transition_prob_ = np.full((n_states, n_states), off) + (stickiness - off) * np.eye(n_states)
    model.noise_variance_ = np.full(6, 0.002)
    model.scale_ = 20.0
    model.centroid_variance_ = 0.004
    model.latent_variance_ = np.ones(latent_dim)
    model.n_keypoints_, model.n_dims_ = 6, 2
    return model
