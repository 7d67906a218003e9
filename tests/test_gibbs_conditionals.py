"""Each Gibbs conditional alone against its known conjugate posterior (moments)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from behavhmm.observations import (
    ar_mahalanobis,
    ar_state_statistics,
    ar_sufficient_statistics,
    default_mniw_prior,
    mniw_sample,
    sample_inverse_wishart,
)
from behavhmm.observations.autoregressive import _posterior_terms
from behavhmm.transitions import (
    sample_global_weights,
    sample_initial_probs,
    sample_override_counts,
    sample_table_counts,
    sample_transition_rows,
    transition_counts,
)

N_DRAWS = 20000


def mc_close(samples, expected, n_sigma=5.0, axis=0):
    """Monte-Carlo mean within n_sigma standard errors (plus a tiny absolute slack)."""
    samples = np.asarray(samples)
    se = samples.std(axis=axis) / np.sqrt(samples.shape[axis])
    err = np.abs(samples.mean(axis=axis) - expected)
    assert np.all(err <= n_sigma * se + 1e-9), (err.max(), (n_sigma * se).max())


@pytest.mark.requires_x64
def test_inverse_wishart_has_the_closed_form_mean_and_variance():
    dof, p = 20.0, 3
    scale = np.array([[2.0, 0.3, 0.1], [0.3, 1.0, -0.2], [0.1, -0.2, 0.5]])
    keys = jax.random.split(jax.random.key(0), N_DRAWS)
    draws = np.asarray(
        jax.vmap(lambda k: sample_inverse_wishart(k, jnp.array([dof]), scale[None])[0])(keys)
    )
    mc_close(draws, scale / (dof - p - 1))
    d = np.diag(scale)
    var = ((dof - p + 1) * scale**2 + (dof - p - 1) * np.outer(d, d)) / (
        (dof - p) * (dof - p - 1) ** 2 * (dof - p - 3)
    )
    np.testing.assert_allclose(draws.var(0), var, rtol=0.08)
    assert np.all(np.linalg.eigvalsh(draws) > 0)
    # and agrees with scipy's sampler
    ref = stats.invwishart(df=dof, scale=scale).rvs(N_DRAWS, random_state=1)
    np.testing.assert_allclose(draws.mean(0), ref.mean(0), atol=0.01)


@pytest.mark.requires_x64
def test_mniw_posterior_draws_have_the_conjugate_moments(rng):
    n_features, nlags = 2, 1
    y, x = rng.normal(size=(60, 2)), rng.normal(size=(60, 2))
    states = rng.integers(0, 2, size=60)
    st = ar_state_statistics(states, y, x, 2)
    prior = default_mniw_prior(n_features, nlags, scale=0.5, coef_variance=2.0)
    mean, s_n, sxx_n = (np.asarray(a) for a in _posterior_terms(st, prior))
    keys = jax.random.split(jax.random.key(3), N_DRAWS)
    coef, intercept, cov = jax.vmap(lambda k: mniw_sample(k, st, prior))(keys)
    w = np.concatenate([np.asarray(coef), np.asarray(intercept)[..., None]], axis=-1)
    nu_n = float(prior.dof) + np.asarray(st.counts)
    for k in range(2):
        mc_close(w[:, k], mean[k])
        expected_sigma = s_n[k] / (nu_n[k] - n_features - 1)
        mc_close(np.asarray(cov)[:, k], expected_sigma)
        # Cov(vec W) = K_n (x) E[Sigma], with K_n = S'_xx^{-1} (column covariance)
        flat = w[:, k].reshape(N_DRAWS, -1)  # row-major: index d * p + j
        emp = np.cov(flat.T)
        theory = np.kron(expected_sigma, np.linalg.inv(sxx_n[k]))
        np.testing.assert_allclose(emp, theory, atol=0.1 * np.abs(theory).max())


@pytest.mark.requires_x64
def test_empty_state_draws_from_the_prior():
    prior = default_mniw_prior(2, 1, scale=0.3, dof=6.0, coef_variance=1.5)
    st = ar_state_statistics(
        np.zeros(5, int), np.zeros((5, 2)), np.zeros((5, 2)), 2, weights=np.zeros(5)
    )
    keys = jax.random.split(jax.random.key(1), N_DRAWS)
    coef, intercept, cov = jax.vmap(lambda k: mniw_sample(k, st, prior))(keys)
    mc_close(np.asarray(cov)[:, 1], np.asarray(prior.scale) / (6.0 - 2 - 1))
    mc_close(np.asarray(coef)[:, 1], np.asarray(prior.mean)[:, :-1])


@pytest.mark.requires_x64
@pytest.mark.parametrize("chunk", [None, 1, 17, 1000])
def test_state_statistics_equal_one_hot_weighted_statistics(chunk, rng):
    """Frames sorted into one-state blocks = one-hot weighted sums; state 4 has no frames."""
    y, x = rng.normal(size=(301, 3)), rng.normal(size=(301, 6))
    states = np.repeat(rng.integers(0, 4, size=31), 10)[:301]  # runs, as a sticky chain
    w, cw = rng.uniform(size=301), rng.uniform(size=301)
    hard = ar_state_statistics(states, y, x, 5, weights=w, counts_weights=cw, chunk=chunk)
    one_hot = np.eye(5)[states]
    soft = ar_sufficient_statistics(
        one_hot * w[:, None], y, x, counts_weights=one_hot * cw[:, None]
    )
    np.testing.assert_allclose(hard.outer, soft.outer, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(hard.counts, soft.counts, rtol=1e-12)
    assert np.all(np.asarray(hard.outer)[4] == 0) and hard.counts[4] == 0


@pytest.mark.requires_x64
def test_mahalanobis_matches_numpy(rng):
    coef = rng.normal(scale=0.3, size=(3, 2, 4))
    intercept = rng.normal(size=(3, 2))
    root = rng.normal(size=(3, 2, 2))
    cov = root @ np.swapaxes(root, -1, -2) + np.eye(2)
    y, x = rng.normal(size=(20, 2)), rng.normal(size=(20, 4))
    z = rng.integers(0, 3, size=20)
    r = y - np.einsum("tdp,tp->td", coef[z], x) - intercept[z]
    expected = np.einsum("td,tde,te->t", r, np.linalg.inv(cov[z]), r)
    np.testing.assert_allclose(ar_mahalanobis(coef, intercept, cov, y, x, z), expected, rtol=1e-10)


@pytest.mark.requires_x64
def test_table_counts_have_the_crt_mean_and_variance():
    counts = np.array([[[7.0, 0.0, 3.0], [1.0, 40.0, 2.0], [0.0, 5.0, 12.0]]])
    beta = np.array([0.5, 0.3, 0.2])
    alpha, kappa = 4.0, 10.0
    conc = alpha * beta + kappa * np.eye(3)
    keys = jax.random.split(jax.random.key(2), N_DRAWS)
    draws = np.asarray(
        jax.vmap(lambda k: sample_table_counts(k, counts, alpha, beta, kappa, 100))(keys)
    )
    probs = [
        [conc[j, k] / (np.arange(int(counts[0, j, k])) + conc[j, k]) for k in range(3)]
        for j in range(3)
    ]
    mean = np.array([[p.sum() for p in row] for row in probs])
    var = np.array([[(p * (1 - p)).sum() for p in row] for row in probs])
    mc_close(draws[:, 0], mean)
    np.testing.assert_allclose(draws[:, 0].var(0), var, rtol=0.1, atol=1e-3)
    assert np.all(draws <= counts) and np.all(draws[:, counts > 0] >= 1)
    assert np.all(draws == np.round(draws))


@pytest.mark.requires_x64
def test_override_counts_remove_the_sticky_tables_in_expectation():
    tables = np.array([[6.0, 1.0], [2.0, 9.0]])
    beta = np.array([0.7, 0.3])
    alpha, kappa = 3.0, 12.0
    rho = kappa / (alpha + kappa)
    p = rho / (rho + beta * (1 - rho))
    keys = jax.random.split(jax.random.key(5), N_DRAWS)
    draws = np.asarray(
        jax.vmap(lambda k: sample_override_counts(k, tables, alpha, beta, kappa))(keys)
    )
    mc_close(draws[:, 0, 0], 6.0 - 6.0 * p[0])
    mc_close(draws[:, 1, 1], 9.0 - 9.0 * p[1])
    assert np.all(draws[:, 0, 1] == 1.0) and np.all(draws[:, 1, 0] == 2.0)


@pytest.mark.requires_x64
def test_dirichlet_rows_beta_and_initial_probs_have_conjugate_means():
    counts = np.array([[[20.0, 3.0, 1.0], [0.0, 2.0, 0.0], [4.0, 4.0, 30.0]]])
    beta = np.array([0.2, 0.5, 0.3])
    alpha, kappa, gamma = 5.7, 8.0, 3.0
    keys = jax.random.split(jax.random.key(7), N_DRAWS)
    rows = np.asarray(
        jax.vmap(lambda k: sample_transition_rows(k, counts, alpha, beta, kappa))(keys)
    )
    conc = alpha * beta + kappa * np.eye(3) + counts[0]
    mc_close(rows[:, 0], conc / conc.sum(1, keepdims=True))
    np.testing.assert_allclose(rows.sum(-1), 1.0, rtol=1e-12)
    tables = np.array([[[2.0, 1.0, 0.0], [3.0, 0.0, 0.0], [1.0, 0.0, 6.0]]])
    b = np.asarray(jax.vmap(lambda k: sample_global_weights(k, tables, gamma))(keys))
    conc_b = gamma / 3 + tables[0].sum(0)
    mc_close(b, conc_b / conc_b.sum())
    init = np.asarray(
        jax.vmap(lambda k: sample_initial_probs(k, np.array([3.0, 0.0, 1.0]), alpha, beta))(keys)
    )
    conc_i = alpha * beta + np.array([3.0, 0.0, 1.0])
    mc_close(init, conc_i / conc_i.sum())


def test_tiny_concentrations_give_valid_probabilities():
    conc_rows = sample_transition_rows(
        jax.random.key(0), jnp.zeros((1, 4, 4)), 1e-3, jnp.full(4, 1e-6), 0.0
    )
    assert np.all(np.isfinite(conc_rows)) and np.allclose(
        np.asarray(conc_rows).sum(-1), 1.0, atol=1e-5
    )


def test_transition_counts_skip_session_starts_and_padding():
    z = np.array([0, 1, 1, 2, 0, 0, 1])
    starts = np.array([True, False, False, True, False, False, False])
    counts = np.asarray(transition_counts(z, starts, 3))[0]
    expected = np.zeros((3, 3))
    for a, b in [(0, 1), (1, 1), (2, 0), (0, 0), (0, 1)]:
        expected[a, b] += 1
    np.testing.assert_array_equal(counts, expected)
    groups = np.array([0, 0, 0, 1, 1, 1, 1])
    per_group = np.asarray(transition_counts(z, starts, 3, groups=groups, n_groups=2))
    np.testing.assert_array_equal(per_group.sum(0), expected)
    assert per_group[0].sum() == 2 and per_group[1].sum() == 3
    weights = np.array([1, 1, 1, 1, 1, 1, 0.0])
    assert np.asarray(transition_counts(z, starts, 3, weights=weights)).sum() == 4


@pytest.mark.requires_x64
@pytest.mark.parametrize("shape", [1e-3, 0.3, 1.0, 2.5, 40.0, 1e5])
def test_log_gamma_variates_follow_the_gamma_distribution(shape):
    from behavhmm._utils import log_gamma_variates

    log_g = np.asarray(log_gamma_variates(jax.random.key(11), np.full(N_DRAWS, shape)))
    assert np.all(np.isfinite(log_g))
    # compare the distribution of log G with scipy's (KS on a scale that works for tiny shapes)
    ref = stats.loggamma(shape)
    assert stats.kstest(log_g, ref.cdf).pvalue > 1e-3
    mc_close(np.exp(log_g), shape)


@pytest.mark.parametrize("sampler", [jax.random.normal, jax.random.uniform])
def test_flat_random_draws_the_same_values_as_the_sampler(sampler):
    """Flat draws (fast to compile) must not change the chain's random numbers."""
    from behavhmm._utils import flat_random

    key = jax.random.key(5)
    direct = sampler(key, (7, 3, 4), jnp.float32)
    flat = flat_random(sampler, key, (7, 3, 4), jnp.float32)
    assert flat.shape == (7, 3, 4)
    np.testing.assert_array_equal(np.asarray(flat), np.asarray(direct))


@pytest.mark.requires_x64
def test_corrected_table_counts_match_the_two_step_sampler():
    from behavhmm.transitions import sample_corrected_table_counts

    counts = np.array([[[30.0, 2.0], [5.0, 60.0]]])
    beta = np.array([0.6, 0.4])
    alpha, kappa = 3.0, 20.0
    keys = jax.random.split(jax.random.key(9), N_DRAWS)
    one = jax.vmap(lambda k: sample_corrected_table_counts(k, counts, alpha, beta, kappa, 100))(
        keys
    )
    tables_a, corrected_a = (np.asarray(a)[:, 0] for a in one)

    def two_step(k):
        k1, k2 = jax.random.split(k)
        tables = sample_table_counts(k1, counts, alpha, beta, kappa, 100)
        return tables, sample_override_counts(k2, tables, alpha, beta, kappa)

    tables_b, corrected_b = (np.asarray(a)[:, 0] for a in jax.vmap(two_step)(keys))
    se = np.sqrt(corrected_a.var(0) / N_DRAWS + corrected_b.var(0) / N_DRAWS) + 1e-9
    assert np.all(np.abs(corrected_a.mean(0) - corrected_b.mean(0)) < 5 * se)
    np.testing.assert_allclose(corrected_a.var(0), corrected_b.var(0), rtol=0.1, atol=1e-3)
    assert np.all(
        np.abs(tables_a.mean(0) - tables_b.mean(0))
        < 5 * np.sqrt(tables_a.var(0) * 2 / N_DRAWS) + 1e-9
    )
    assert np.all(corrected_a <= tables_a) and np.all(corrected_a[:, 0, 1] == tables_a[:, 0, 1])


def test_transition_draws_keep_every_state_reachable_in_float32():
    """Rows drawn with near-zero concentrations are floored, so a frame that only an
    unlikely state explains gives a finite log-likelihood instead of -inf (float32 underflow)."""
    from behavhmm.inference import hmm_filter

    n_states = 4
    beta = jnp.asarray([1.0 - 3e-12, 1e-12, 1e-12, 1e-12], jnp.float32)
    counts = jnp.zeros((n_states, n_states), jnp.float32).at[0, 0].set(1000.0)
    rows = sample_transition_rows(jax.random.key(0), counts, 5.7, beta, 1e6)
    assert rows.dtype == jnp.float32
    floor = np.finfo(np.float32).tiny ** 0.8
    assert np.all(np.asarray(rows) >= 0.5 * floor)
    np.testing.assert_allclose(np.asarray(rows).sum(axis=1), 1.0, rtol=1e-6)
    # states 0 and 1 share every frame except frame 5, which only state 3 explains (by 500 nats)
    counts = counts.at[1, 1].set(1000.0)
    rows = sample_transition_rows(
        jax.random.key(1), counts, 5.7, beta.at[1].set(0.3).at[0].set(0.7 - 2e-12), 1e6
    )
    ll = np.zeros((10, n_states), np.float32)
    ll[:, 2:] = -500.0
    ll[5] = [-500.0, -500.0, -500.0, 0.0]
    pi = jnp.asarray([0.5, 0.5, 0.0, 0.0], jnp.float32)
    out = hmm_filter(pi, rows, jnp.asarray(ll))
    assert np.isfinite(float(out.log_likelihood))
    assert (
        float(out.log_likelihood) > -500.0
    )  # the jump to state 3 costs less than staying in state 0
