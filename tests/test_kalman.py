"""Kalman filter / RTS smoother / FFBS sampler against the dense joint Gaussian on tiny problems."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from behavhmm.inference import ARDynamics, LinearEmission, ar_kalman_filter
from behavhmm.inference import ar_kalman_sample as _sample
from behavhmm.inference import ar_kalman_smoother as _smoother

ar_kalman_smoother = jax.jit(_smoother, static_argnames=("block_size", "return_covariances"))
ar_kalman_sample = jax.jit(_sample, static_argnames=("block_size",))


def _problem(rng, latent_dim=2, nlags=2, obs_dim=3, n_time_bins=7, starts=(0, 4), n_dyn=2):
    d, n_lagged = latent_dim, nlags * latent_dim
    coef = 0.4 * rng.normal(size=(n_dyn, d, n_lagged))
    intercept = rng.normal(size=(n_dyn, d))
    a = rng.normal(size=(n_dyn, d, d))
    q = a @ np.swapaxes(a, -1, -2) * 0.3 + 0.2 * np.eye(d)
    m0 = rng.normal(size=n_lagged)
    b0 = rng.normal(size=(n_lagged, n_lagged))
    p0 = b0 @ b0.T + np.eye(n_lagged)
    c = rng.normal(size=(obs_dim, d))
    bias = rng.normal(size=obs_dim)
    y = rng.normal(size=(n_time_bins, obs_dim)) * 2
    prec = rng.uniform(0.5, 3.0, size=(n_time_bins, obs_dim))
    prec[1, 0] = 0.0  # a missing coordinate
    prec[5] = 0.0  # a missing frame
    idx = rng.integers(0, n_dyn, n_time_bins)
    mask = np.zeros(n_time_bins, bool)
    mask[list(starts)] = True
    return dict(
        coef=coef,
        intercept=intercept,
        q=q,
        m0=m0,
        p0=p0,
        c=c,
        bias=bias,
        y=y,
        prec=prec,
        idx=idx,
        starts=mask,
    )


def _dense(p):
    """Joint Gaussian of the stacked states and the observed coordinates, then condition."""
    coef, intercept, q, m0, p0 = p["coef"], p["intercept"], p["q"], p["m0"], p["p0"]
    n_time_bins = len(p["y"])
    d, n_lagged = coef.shape[1], coef.shape[2]
    obs_dim = p["c"].shape[0]
    n_noise = n_time_bins * n_lagged + n_time_bins * obs_dim
    means, loads = [], []
    col = 0
    for t in range(n_time_bins):
        load = np.zeros((n_lagged, n_noise))
        if p["starts"][t]:
            mean = m0.copy()
            load[:, col : col + n_lagged] = np.linalg.cholesky(p0)
        else:
            j = p["idx"][t]
            f = np.zeros((n_lagged, n_lagged))
            f[:d] = coef[j]
            f[d:, :-d] = np.eye(n_lagged - d)
            mean = f @ means[-1]
            mean[:d] += intercept[j]
            load = f @ loads[-1]
            load[:d, col : col + d] += np.linalg.cholesky(q[j])
        col += n_lagged
        means.append(mean)
        loads.append(load)
    s_mean = np.concatenate(means)
    s_load = np.concatenate(loads)
    obs_vals, y_mean, y_load = [], [], []
    for t in range(n_time_bins):
        for i in range(obs_dim):
            if p["prec"][t, i] > 0:
                row = p["c"][i] @ loads[t][:d]
                row = row.copy()
                row[n_time_bins * n_lagged + t * obs_dim + i] = 1 / np.sqrt(p["prec"][t, i])
                y_load.append(row)
                y_mean.append(p["c"][i] @ means[t][:d] + p["bias"][i])
                obs_vals.append(p["y"][t, i])
    y_load, y_mean, obs_vals = np.array(y_load), np.array(y_mean), np.array(obs_vals)
    syy = y_load @ y_load.T
    ssy = s_load @ y_load.T
    sss = s_load @ s_load.T
    gain = np.linalg.solve(syy, ssy.T).T
    post_mean = s_mean + gain @ (obs_vals - y_mean)
    post_cov = sss - gain @ ssy.T
    resid = obs_vals - y_mean
    ll = -0.5 * (
        len(obs_vals) * np.log(2 * np.pi)
        + np.linalg.slogdet(syy)[1]
        + resid @ np.linalg.solve(syy, resid)
    )
    return ll, post_mean.reshape(n_time_bins, n_lagged), post_cov, n_lagged


def _args(p):
    dyn = ARDynamics(*(jnp.asarray(p[k]) for k in ("coef", "intercept", "q", "m0", "p0")))
    em = LinearEmission(jnp.asarray(p["c"]), jnp.asarray(p["bias"]))
    return (
        dyn,
        em,
        jnp.asarray(p["y"]),
        jnp.asarray(p["prec"]),
        jnp.asarray(p["idx"]),
        jnp.asarray(p["starts"]),
    )


@pytest.mark.requires_x64
@pytest.mark.parametrize(("nlags", "block_size"), [(1, None), (3, 3)])
def test_smoother_and_filter_match_dense_gaussian(nlags, block_size):
    p = _problem(np.random.default_rng(nlags), nlags=nlags)
    ll, mean, cov, n_lagged = _dense(p)
    n_time_bins = len(p["y"])
    res = ar_kalman_smoother(*_args(p), block_size=block_size, return_covariances=True)
    np.testing.assert_allclose(float(res.log_likelihood), ll, rtol=1e-8)
    np.testing.assert_allclose(np.asarray(res.smoothed_means), mean, atol=1e-8)
    blocks = np.array(
        [
            cov[t * n_lagged : (t + 1) * n_lagged, t * n_lagged : (t + 1) * n_lagged]
            for t in range(n_time_bins)
        ]
    )
    np.testing.assert_allclose(np.asarray(res.smoothed_covariances), blocks, atol=1e-8)
    # the means-only path (backward information recursion, no factorisation) gives the same means
    means_only = ar_kalman_smoother(*_args(p), block_size=block_size)
    assert means_only.smoothed_covariances is None
    np.testing.assert_allclose(float(means_only.log_likelihood), ll, rtol=1e-8)
    np.testing.assert_allclose(np.asarray(means_only.smoothed_means), mean, atol=1e-8)
    filt = ar_kalman_filter(*_args(p))
    np.testing.assert_allclose(float(filt.log_likelihood), ll, rtol=1e-8)
    # the last frame of each session: filtered = smoothed
    for t in (3, n_time_bins - 1):
        np.testing.assert_allclose(np.asarray(filt.filtered_means[t]), mean[t], atol=1e-8)


@pytest.mark.requires_x64
def test_sessions_are_independent():
    """Two sessions on one axis: the sum of the log-likelihoods, the same moments as apart."""
    p = _problem(np.random.default_rng(5), n_time_bins=8, starts=(0, 5))
    both = ar_kalman_smoother(*_args(p))
    parts = []
    for sl in (slice(0, 5), slice(5, 8)):
        q = dict(p)
        for k in ("y", "prec", "idx", "starts"):
            q[k] = p[k][sl]
        q["starts"] = q["starts"].copy()
        q["starts"][0] = True
        parts.append(ar_kalman_smoother(*_args(q)))
    np.testing.assert_allclose(
        float(both.log_likelihood), sum(float(r.log_likelihood) for r in parts), rtol=1e-10
    )
    np.testing.assert_allclose(
        np.asarray(both.smoothed_means),
        np.concatenate([np.asarray(r.smoothed_means) for r in parts]),
        atol=1e-10,
    )


@pytest.mark.requires_x64
@pytest.mark.parametrize("block_size", [None, 2])
def test_sampler_moments_match_dense_posterior(block_size):
    p = _problem(np.random.default_rng(11), nlags=2)
    _, mean, cov, n_lagged = _dense(p)
    args = _args(p)
    draw = jax.jit(jax.vmap(lambda k: _sample(k, *args, block_size=block_size).latents))
    n_draws = 10000
    xs = np.asarray(draw(jax.random.split(jax.random.key(0), n_draws)))
    assert_draws_match_dense(xs, mean, cov, n_lagged)


def assert_draws_match_dense(latents, mean, cov, n_lagged):
    """Mean within 5 standard errors; joint covariance across time within 5 % of its largest."""
    n_draws, n_time_bins, d = latents.shape
    xs = latents.reshape(n_draws, -1)
    # the newest block of every stacked state is x_t
    sel = np.concatenate([np.arange(t * n_lagged, t * n_lagged + d) for t in range(n_time_bins)])
    true_mean = mean[:, :d].reshape(-1)
    true_cov = cov[np.ix_(sel, sel)]
    sd = np.sqrt(np.diag(true_cov))
    assert np.all(np.abs(xs.mean(0) - true_mean) < 5 * sd / np.sqrt(n_draws))
    emp = np.cov(xs, rowvar=False)
    # joint covariance, including across time (the path is drawn jointly)
    np.testing.assert_allclose(emp, true_cov, atol=0.05 * np.max(np.diag(true_cov)))


def test_float32_long_sequence_is_finite():
    """Near-noiseless and missing observations over many steps stay finite in float32."""
    rng = np.random.default_rng(3)
    p = _problem(rng, latent_dim=3, nlags=3, obs_dim=8, n_time_bins=1500, starts=(0, 600, 1000))
    p["coef"][:] = 0.0
    p["coef"][:, :, :3] = 0.99 * np.eye(3)
    p["prec"] = rng.uniform(1e3, 1e5, size=p["prec"].shape)
    p["prec"][rng.random(p["prec"].shape) < 0.2] = 0.0
    p["p0"] = 100.0 * np.eye(9)
    args = [
        jnp.asarray(a, jnp.float32) if jnp.issubdtype(a.dtype, jnp.floating) else a
        for a in _args(p)[2:]
    ]
    dyn = ARDynamics(
        *(jnp.asarray(p[k], jnp.float32) for k in ("coef", "intercept", "q", "m0", "p0"))
    )
    em = LinearEmission(jnp.asarray(p["c"], jnp.float32), jnp.asarray(p["bias"], jnp.float32))
    s = ar_kalman_sample(jax.random.key(0), dyn, em, *args, block_size=256)
    sm = ar_kalman_smoother(dyn, em, *args, block_size=256)
    assert s.latents.dtype == jnp.float32
    assert np.all(np.isfinite(np.asarray(s.latents))) and np.isfinite(float(s.log_likelihood))
    assert np.all(np.isfinite(np.asarray(sm.smoothed_means)))
    # with precise observations the draw stays close to the smoothed path
    assert np.median(np.abs(np.asarray(s.latents) - np.asarray(sm.smoothed_means[:, :3]))) < 0.1


def test_float32_draws_stay_finite_under_unstable_switching_dynamics():
    """Explosive dynamics (spectral radius 1.3) over 2,000 steps: a draw simulated from the prior
    would overflow float32; the filter-error simulation smoother stays finite and near the smoothed
    path."""
    rng = np.random.default_rng(4)
    p = _problem(rng, latent_dim=3, nlags=2, obs_dim=8, n_time_bins=2000, starts=(0,), n_dyn=3)
    p["coef"][:] = 0.0
    for k in range(3):
        p["coef"][k, :, :3] = 1.3 * np.linalg.qr(rng.normal(size=(3, 3)))[0]
    p["prec"] = rng.uniform(1.0, 10.0, size=p["prec"].shape)
    p["prec"][500:520] = 0.0  # a gap: the filter covariance grows while nothing is observed
    p["y"] = rng.normal(size=p["y"].shape)
    args = [
        jnp.asarray(a, jnp.float32) if jnp.issubdtype(a.dtype, jnp.floating) else a
        for a in _args(p)[2:]
    ]
    dyn = ARDynamics(
        *(jnp.asarray(p[k], jnp.float32) for k in ("coef", "intercept", "q", "m0", "p0"))
    )
    em = LinearEmission(jnp.asarray(p["c"], jnp.float32), jnp.asarray(p["bias"], jnp.float32))
    sm = ar_kalman_smoother(dyn, em, *args)
    draws = np.stack(
        [np.asarray(ar_kalman_sample(jax.random.key(i), dyn, em, *args).latents) for i in range(20)]
    )
    assert np.all(np.isfinite(draws)) and np.all(np.isfinite(np.asarray(sm.smoothed_means)))
    # the draws scatter around the smoothed path by the posterior spread, not by the prior's
    spread = np.abs(draws.mean(0) - np.asarray(sm.smoothed_means[:, :3]))
    assert np.median(spread) < 0.2 and np.max(spread) < 5.0


def test_bad_shapes_raise():
    p = _problem(np.random.default_rng(0))
    dyn, em, y, prec, idx, starts = _args(p)
    with pytest.raises(ValueError, match="precisions"):
        ar_kalman_filter(dyn, em, y, prec[:, :2], idx, starts)
    with pytest.raises(ValueError, match="emission matrix"):
        ar_kalman_filter(dyn, LinearEmission(em.matrix[:2], em.bias[:2]), y, prec, idx, starts)
