"""Parallel-in-time (associative scan) Kalman kernels against the sequential kernels and the dense
joint Gaussian: ragged sessions (one-frame sessions, a session starting on a missing frame), a
missing coordinate, nlags 1 and 3."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_kalman import _args, _dense, _problem, assert_draws_match_dense

from behavhmm.inference import (
    ARDynamics,
    LinearEmission,
    ar_kalman_filter,
    ar_kalman_sample,
    ar_kalman_smoother,
)

parallel_ar_kalman_filter = partial(ar_kalman_filter, method="parallel")
parallel_ar_kalman_smoother = partial(ar_kalman_smoother, method="parallel")
parallel_ar_kalman_sample = partial(ar_kalman_sample, method="parallel")

# sessions [0, 4), [4], [5, 8) (its first frame, 5, is missing: _problem) and [8]
STARTS = (0, 4, 5, 8)
N_TIME_BINS = 9


def _ragged(nlags, seed):
    return _problem(
        np.random.default_rng(seed), nlags=nlags, n_time_bins=N_TIME_BINS, starts=STARTS
    )


def _diagonal_blocks(cov, n_lagged):
    return np.array(
        [
            cov[t * n_lagged : (t + 1) * n_lagged, t * n_lagged : (t + 1) * n_lagged]
            for t in range(N_TIME_BINS)
        ]
    )


@pytest.mark.requires_x64
@pytest.mark.parametrize("nlags", [1, 3])
def test_filter_matches_sequential_filter_and_dense_likelihood(nlags):
    p = _ragged(nlags, seed=nlags)
    ll, _, _, _ = _dense(p)
    args = _args(p)
    par = jax.jit(parallel_ar_kalman_filter)(*args)
    seq = ar_kalman_filter(*args)
    np.testing.assert_allclose(float(par.log_likelihood), ll, rtol=1e-8)
    np.testing.assert_allclose(float(par.log_likelihood), float(seq.log_likelihood), rtol=1e-8)
    np.testing.assert_allclose(
        np.asarray(par.filtered_means), np.asarray(seq.filtered_means), atol=1e-8
    )
    np.testing.assert_allclose(
        np.asarray(par.filtered_covariances), np.asarray(seq.filtered_covariances), atol=1e-8
    )
    # index 0 is a session start whatever session_starts says
    unmarked = jax.jit(parallel_ar_kalman_filter)(*args[:5], args[5].at[0].set(False))
    np.testing.assert_allclose(
        np.asarray(unmarked.filtered_means), np.asarray(par.filtered_means), atol=1e-12
    )


@pytest.mark.requires_x64
@pytest.mark.parametrize("nlags", [1, 3])
def test_smoother_matches_sequential_smoother_and_dense_posterior(nlags):
    p = _ragged(nlags, seed=10 + nlags)
    ll, mean, cov, n_lagged = _dense(p)
    args = _args(p)
    with_cov, means_only = jax.jit(
        lambda *a: (
            parallel_ar_kalman_smoother(*a, return_covariances=True),
            parallel_ar_kalman_smoother(*a),
        )
    )(*args)
    seq = ar_kalman_smoother(*args, return_covariances=True)
    blocks = _diagonal_blocks(cov, n_lagged)
    np.testing.assert_allclose(float(with_cov.log_likelihood), ll, rtol=1e-8)
    for ref_mean, ref_cov in ((mean, blocks), (seq.smoothed_means, seq.smoothed_covariances)):
        np.testing.assert_allclose(np.asarray(with_cov.smoothed_means), ref_mean, atol=1e-8)
        np.testing.assert_allclose(np.asarray(with_cov.smoothed_covariances), ref_cov, atol=1e-8)
    assert means_only.smoothed_covariances is None
    np.testing.assert_allclose(float(means_only.log_likelihood), ll, rtol=1e-8)
    np.testing.assert_allclose(np.asarray(means_only.smoothed_means), mean, atol=1e-8)


@pytest.mark.requires_x64
def test_sampler_moments_match_dense_posterior():
    """Empirical mean and joint covariance (across time and sessions) of 10,000 draws."""
    p = _ragged(2, seed=11)
    ll, mean, cov, n_lagged = _dense(p)
    args = _args(p)
    n_draws = 10000
    draw = jax.jit(jax.vmap(lambda k: parallel_ar_kalman_sample(k, *args)))
    out = draw(jax.random.split(jax.random.key(0), n_draws))
    np.testing.assert_allclose(np.asarray(out.log_likelihood), ll, rtol=1e-8)
    assert_draws_match_dense(np.asarray(out.latents), mean, cov, n_lagged)


def _float32_problem():
    """T = 2,000, five sessions (one of a single frame), d = 3, nlags = 2, three stable dynamics
    (spectral radius < 0.9), 20% missing coordinates and a 20-frame gap."""
    rng = np.random.default_rng(3)
    p = _problem(
        rng,
        latent_dim=3,
        nlags=2,
        obs_dim=8,
        n_time_bins=2000,
        starts=(0, 300, 301, 1200, 1999),
        n_dyn=3,
    )
    for k in range(3):
        p["coef"][k, :, :3] = 0.6 * np.linalg.qr(rng.normal(size=(3, 3)))[0]
        p["coef"][k, :, 3:] = 0.3 * np.linalg.qr(rng.normal(size=(3, 3)))[0]
    p["prec"] = rng.uniform(1.0, 10.0, size=p["prec"].shape)
    p["prec"][rng.random(p["prec"].shape) < 0.2] = 0.0
    p["prec"][700:720] = 0.0
    dyn = ARDynamics(
        *(jnp.asarray(p[k], jnp.float32) for k in ("coef", "intercept", "q", "m0", "p0"))
    )
    em = LinearEmission(jnp.asarray(p["c"], jnp.float32), jnp.asarray(p["bias"], jnp.float32))
    y, prec = jnp.asarray(p["y"], jnp.float32), jnp.asarray(p["prec"], jnp.float32)
    return dyn, em, y, prec, jnp.asarray(p["idx"]), jnp.asarray(p["starts"])


@pytest.mark.slow  # 36 s in the default run (compiling the associative scans at T = 2,000)
def test_float32_long_sequence_is_finite_and_close_to_sequential():
    """Float32, T = 2,000: finite, and within 1e-4 of the scale of the means of the sequential
    float32 kernels (measured: 1.5e-5 on means of scale 8, 3e-6 on covariances; each kernel is
    about 3e-4 from the float64 answer)."""
    args = _float32_problem()
    filt, smooth, draw = jax.jit(
        lambda *a: (
            parallel_ar_kalman_filter(*a),
            parallel_ar_kalman_smoother(*a),
            parallel_ar_kalman_sample(jax.random.key(0), *a),
        )
    )(*args)
    seq = jax.jit(ar_kalman_filter)(*args)
    seq_smooth = jax.jit(ar_kalman_smoother)(*args)
    assert filt.filtered_means.dtype == jnp.float32 and draw.latents.dtype == jnp.float32
    for a in (filt.filtered_means, filt.filtered_covariances, smooth.smoothed_means, draw.latents):
        assert np.all(np.isfinite(np.asarray(a)))
    scale = float(np.max(np.abs(np.asarray(seq.filtered_means))))
    atol = 1e-4 * scale
    np.testing.assert_allclose(filt.filtered_means, seq.filtered_means, rtol=0, atol=atol)
    np.testing.assert_allclose(
        filt.filtered_covariances, seq.filtered_covariances, rtol=0, atol=atol
    )
    np.testing.assert_allclose(smooth.smoothed_means, seq_smooth.smoothed_means, rtol=0, atol=atol)
    np.testing.assert_allclose(float(filt.log_likelihood), float(seq.log_likelihood), rtol=1e-5)
    np.testing.assert_allclose(float(draw.log_likelihood), float(seq.log_likelihood), rtol=1e-5)
    # a draw scatters around the smoothed path by the posterior spread (about 0.2 here)
    assert np.median(np.abs(np.asarray(draw.latents - smooth.smoothed_means[:, :3]))) < 0.3


def test_bad_shapes_raise():
    dyn, em, y, prec, idx, starts = _args(_problem(np.random.default_rng(0)))
    with pytest.raises(ValueError, match="precisions"):
        parallel_ar_kalman_filter(dyn, em, y, prec[:, :2], idx, starts)
    with pytest.raises(ValueError, match="emission matrix"):
        parallel_ar_kalman_smoother(
            dyn, LinearEmission(em.matrix[:2], em.bias[:2]), y, prec, idx, starts
        )
    with pytest.raises(ValueError, match="session_starts"):
        parallel_ar_kalman_sample(jax.random.key(0), dyn, em, y, prec, idx, starts[:-1])
