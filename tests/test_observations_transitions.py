"""Emission and transition building blocks against scipy and numerical optimisation."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from scipy import optimize, stats

from behavhmm.observations import (
    ar_log_likelihoods,
    ar_sufficient_statistics,
    default_mniw_prior,
    mniw_log_prior,
    mniw_map,
)
from behavhmm.transitions import dirichlet_log_density, sticky_dirichlet_map


def random_ar(rng, n_states=3, n_features=2, nlags=2):
    coef = rng.normal(scale=0.3, size=(n_states, n_features, nlags * n_features))
    intercept = rng.normal(size=(n_states, n_features))
    root = rng.normal(size=(n_states, n_features, n_features))
    cov = root @ np.swapaxes(root, -1, -2) + 0.5 * np.eye(n_features)
    return coef, intercept, cov


@pytest.mark.requires_x64
def test_ar_log_likelihoods_match_scipy(rng):
    coef, intercept, cov = random_ar(rng)
    y = rng.normal(size=(37, 2))
    x = rng.normal(size=(37, 4))
    got = ar_log_likelihoods(coef, intercept, cov, y, x, chunk=8)
    for k in range(3):
        mean = x @ coef[k].T + intercept[k]
        want = [stats.multivariate_normal(mean[t], cov[k]).logpdf(y[t]) for t in range(37)]
        np.testing.assert_allclose(got[:, k], want, rtol=1e-10)


@pytest.mark.requires_x64
def test_sufficient_statistics_match_numpy_in_chunks(rng):
    w = rng.dirichlet(np.ones(3), size=53)
    y, x = rng.normal(size=(53, 2)), rng.normal(size=(53, 4))
    got = ar_sufficient_statistics(w, y, x, chunk=10)
    z = np.concatenate([y, x, np.ones((53, 1))], axis=1)
    np.testing.assert_allclose(got.outer, np.einsum("tk,ti,tj->kij", w, z, z), rtol=1e-12)
    np.testing.assert_allclose(got.counts, w.sum(0), rtol=1e-12)


@pytest.mark.requires_x64
def test_mniw_log_prior_matches_scipy(rng):
    coef, intercept, cov = random_ar(rng, n_states=2, n_features=2, nlags=1)
    prior = default_mniw_prior(2, 1, scale=0.5, dof=5.0, coef_variance=3.0)
    got = mniw_log_prior(coef, intercept, cov, prior)
    want = 0.0
    for k in range(2):
        w = np.concatenate([coef[k], intercept[k][:, None]], axis=1)
        want += stats.invwishart(df=5.0, scale=np.asarray(prior.scale)).logpdf(cov[k])
        want += stats.matrix_normal(
            mean=np.asarray(prior.mean), rowcov=cov[k], colcov=3.0 * np.eye(3)
        ).logpdf(w)
    np.testing.assert_allclose(got, want, rtol=1e-10)
    # dropping the constant changes the value by a parameter-free amount only
    shift = got - mniw_log_prior(coef, intercept, cov, prior, include_constant=False)
    coef2, intercept2, cov2 = random_ar(rng, n_states=2, n_features=2, nlags=1)
    shift2 = mniw_log_prior(coef2, intercept2, cov2, prior) - mniw_log_prior(
        coef2, intercept2, cov2, prior, include_constant=False
    )
    np.testing.assert_allclose(shift, shift2, rtol=1e-12)


@pytest.mark.requires_x64
def test_mniw_map_maximises_the_expected_log_joint(rng):
    """The closed-form M-step equals numerical maximisation of Q(W, Σ) + log prior."""
    n_features, nlags, n_time_bins = 2, 1, 40
    y, x = (
        rng.normal(size=(n_time_bins, n_features)),
        rng.normal(size=(n_time_bins, n_features * nlags)),
    )
    w = rng.uniform(size=(n_time_bins, 1))
    prior = default_mniw_prior(n_features, nlags, scale=0.3, coef_variance=2.0)
    coef, intercept, cov = (
        np.asarray(a)[0] for a in mniw_map(ar_sufficient_statistics(w, y, x), prior)
    )

    import jax

    @jax.jit
    def objective(theta):
        W = theta[: n_features * (nlags * n_features + 1)].reshape(n_features, -1)
        L = (
            jnp.zeros((n_features, n_features))
            .at[jnp.tril_indices(n_features)]
            .set(theta[W.size :])
        )
        S = L @ L.T + 1e-12 * jnp.eye(n_features)
        ll = ar_log_likelihoods(W[None, :, :-1], W[None, :, -1], S[None], y, x)[:, 0]
        lp = mniw_log_prior(W[None, :, :-1], W[None, :, -1], S[None], prior)
        return -(jnp.sum(w[:, 0] * ll) + lp)

    grad = jax.jit(jax.grad(objective))
    W_ours = np.concatenate([coef, intercept[:, None]], axis=1)
    L_ours = np.linalg.cholesky(cov)[np.tril_indices(n_features)]
    theta0 = np.concatenate([W_ours.ravel() + 0.1, L_ours * 1.2])
    res = optimize.minimize(
        lambda t: float(objective(t)),
        theta0,
        jac=lambda t: np.asarray(grad(t)),
        method="BFGS",
        options={"gtol": 1e-9, "maxiter": 2000},
    )
    ours = float(objective(np.concatenate([W_ours.ravel(), L_ours])))
    assert ours <= res.fun + 1e-7
    W_num = res.x[: W_ours.size].reshape(W_ours.shape)
    np.testing.assert_allclose(W_num, W_ours, atol=1e-4)


@pytest.mark.requires_x64
def test_mniw_map_reduces_to_weighted_least_squares_without_prior(rng):
    from sklearn.linear_model import LinearRegression

    y, x = rng.normal(size=(200, 2)), rng.normal(size=(200, 4))
    y = y + x @ rng.normal(size=(4, 2))
    w = rng.uniform(size=(200, 1))
    prior = default_mniw_prior(2, 2, scale=1e-10, dof=1.0 + 1e-9, coef_variance=1e10)
    coef, intercept, cov = mniw_map(ar_sufficient_statistics(w, y, x), prior)
    reg = LinearRegression().fit(x, y, sample_weight=w[:, 0])
    np.testing.assert_allclose(coef[0], reg.coef_, atol=1e-6)
    np.testing.assert_allclose(intercept[0], reg.intercept_, atol=1e-6)
    resid = y - reg.predict(x)
    n = w.sum()
    expected_cov = (w * resid).T @ resid / (n + 1.0 + 2 + 1 + 5)  # mode: / (nu + n + D + 1 + p)
    np.testing.assert_allclose(cov[0], expected_cov, rtol=1e-6)


@pytest.mark.requires_x64
def test_sticky_dirichlet_map_equals_numerical_maximum(rng):
    counts = rng.uniform(0, 20, size=(3, 3))
    alpha, kappa = 2.0, 5.0
    got = np.asarray(sticky_dirichlet_map(counts, alpha, kappa))
    conc = 1.0 + alpha / 3 + kappa * np.eye(3)

    def neg(theta):
        logits = theta.reshape(3, 3)
        probs = np.exp(logits - logits.max(1, keepdims=True))
        probs /= probs.sum(1, keepdims=True)
        return -(
            np.sum(counts * np.log(probs)) + float(dirichlet_log_density(jnp.asarray(probs), conc))
        )

    res = optimize.minimize(neg, np.zeros(9), method="BFGS", options={"gtol": 1e-10})
    num = np.exp(res.x.reshape(3, 3))
    num /= num.sum(1, keepdims=True)
    np.testing.assert_allclose(got, num, atol=1e-5)
    np.testing.assert_allclose(got.sum(1), 1.0)


@pytest.mark.requires_x64
def test_dirichlet_log_density_matches_scipy(rng):
    probs = rng.dirichlet(np.ones(4), size=3)
    conc = rng.uniform(0.5, 3.0, size=(3, 4))
    want = sum(stats.dirichlet(conc[i]).logpdf(probs[i]) for i in range(3))
    np.testing.assert_allclose(dirichlet_log_density(probs, conc), want, rtol=1e-10)


@pytest.mark.requires_x64
def test_student_t_log_likelihoods_match_scipy(rng):
    coef, intercept, cov = random_ar(rng)
    dof = np.array([2.5, 5.0, 30.0])
    y = rng.normal(size=(15, 2))
    x = rng.normal(size=(15, 4))
    got = ar_log_likelihoods(coef, intercept, cov, y, x, dof=dof)
    for k in range(3):
        mean = x @ coef[k].T + intercept[k]
        want = [stats.multivariate_t(mean[t], cov[k], df=dof[k]).logpdf(y[t]) for t in range(15)]
        np.testing.assert_allclose(got[:, k], want, rtol=1e-10)
