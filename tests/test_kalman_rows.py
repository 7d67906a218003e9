"""Kalman kernels with sessions side by side (bucketed rows) equal the one-axis path."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_kalman import _args, _problem

from behavhmm.inference import (
    _sessions,
    ar_kalman_filter,
    ar_kalman_sample,
    ar_kalman_smoother,
)
from behavhmm.inference._kalman_rows import sample_rows, smoother_rows

LENGTHS = [9, 1, 12, 40, 33, 1]


def _ragged(seed=0, nlags=2, lengths=LENGTHS):
    edges = np.cumsum([0] + list(lengths))
    p = _problem(np.random.default_rng(seed), nlags=nlags, n_time_bins=edges[-1], starts=edges[:-1])
    p["prec"][30:33] = 0.0  # missing frames inside a session (the fourth)
    return p


@pytest.mark.requires_x64
@pytest.mark.parametrize(
    "nlags",
    [1, pytest.param(3, marks=pytest.mark.slow)],  # nlags=3: 46 s, in the slow run
)
def test_rows_equal_the_one_axis_kernels(nlags, monkeypatch):
    """Filter, smoother (means, covariances, blocked), sampler: rows = one axis, ragged sessions."""
    args = _args(_ragged(nlags, nlags=nlags))
    assert len(_sessions.session_plan(np.asarray(args[-1])).buckets) >= 3
    key = jax.random.key(3)
    calls = {
        "filter": (ar_kalman_filter, {}),
        "smoother": (ar_kalman_smoother, {"return_covariances": True}),
        "means, blocks of 8": (ar_kalman_smoother, {"block_size": 8}),
        "sample": (partial(ar_kalman_sample, key), {}),
        "sample, blocks of 8": (partial(ar_kalman_sample, key), {"block_size": 8}),
    }
    monkeypatch.setattr(_sessions, "SIDE_BY_SIDE", True)
    for name, (kernel, options) in calls.items():
        ref = jax.jit(partial(kernel, **options))(*args)  # traced session starts: one axis
        rows = kernel(*args, **options)
        for a, b in zip(ref, rows, strict=True):
            if a is None:
                assert b is None, name
            else:
                np.testing.assert_allclose(np.asarray(b), np.asarray(a), atol=1e-9, err_msg=name)
    # a session's result does not depend on the sessions around it
    p = _ragged(nlags, nlags=nlags)
    lo, hi = sum(LENGTHS[:3]), sum(LENGTHS[:4])
    alone = dict(p)
    for k in ("y", "prec", "idx", "starts"):
        alone[k] = p[k][lo:hi]
    sm_all = ar_kalman_smoother(*args)
    sm_alone = jax.jit(ar_kalman_smoother)(*_args(alone))
    np.testing.assert_allclose(sm_alone.smoothed_means, sm_all.smoothed_means[lo:hi], atol=1e-10)


@pytest.mark.requires_x64
def test_draws_do_not_depend_on_bucketing_or_jit(monkeypatch):
    """Per-session normals: one axis, jit (traced starts), any bucketing give one draw."""
    args = _args(_ragged(5))
    key = jax.random.key(8)
    monkeypatch.setattr(_sessions, "SIDE_BY_SIDE", True)
    first = ar_kalman_sample(key, *args).latents
    monkeypatch.setattr(_sessions, "MIN_ROW_LENGTH", 64)  # every longer session in one bucket
    assert [b.index.shape[1] for b in _sessions.session_plan(np.asarray(args[-1])).buckets] == [
        1,
        64,
    ]
    second = ar_kalman_sample(key, *args).latents
    jitted = jax.jit(ar_kalman_sample)(key, *args).latents  # traced starts: one axis
    np.testing.assert_allclose(second, first, atol=1e-10)
    np.testing.assert_allclose(jitted, first, atol=1e-10)
    # the plan passed into a compiled program (as the keypoint SLDS does) gives the same draw
    plan = _sessions.session_plan(np.asarray(args[-1]))
    inside = jax.jit(lambda k, pl, *a: sample_rows(k, pl, *a, None).first)(key, plan, *args)
    np.testing.assert_allclose(inside, first, atol=1e-10)
    sm = jax.jit(lambda pl, *a: smoother_rows(pl, *a).first)(plan, *args)
    np.testing.assert_allclose(sm, ar_kalman_smoother(*args).smoothed_means, atol=1e-10)
    # a plan whose rows hold several sessions (the keypoint SLDS's padding frames share the
    # last session's row): the row's inner session starts still reset the filter
    joined = np.asarray(args[-1]).copy()
    joined[sum(LENGTHS[:-2])] = False  # the last two sessions in one row
    plan2 = _sessions.session_plan(joined)
    assert plan2.n_sessions == plan.n_sessions - 1
    sm2 = jax.jit(lambda pl, *a: smoother_rows(pl, *a).first)(plan2, *args)
    np.testing.assert_allclose(sm2, sm, atol=1e-10)
    # other keys give other draws
    assert not np.allclose(ar_kalman_sample(jax.random.key(9), *args).latents, first)


def test_float32_rows_match_float64(monkeypatch):
    """float32 rows stay close to the float64 one-axis smoother on 30 sessions of 200 frames."""
    lengths = [200] * 30
    p = _ragged(2, nlags=2, lengths=lengths)
    p["coef"] *= 0.5  # stable dynamics
    args64 = _args(p)
    with jax.enable_x64(True):
        ref = np.asarray(jax.jit(ar_kalman_smoother)(*args64).smoothed_means)
    monkeypatch.setattr(_sessions, "SIDE_BY_SIDE", True)
    args32 = jax.tree_util.tree_map(
        lambda a: a.astype(jnp.float32) if jnp.issubdtype(a.dtype, jnp.floating) else a, args64
    )
    got = np.asarray(ar_kalman_smoother(*args32).smoothed_means)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, ref, atol=1e-3 * np.abs(ref).max())


@pytest.mark.requires_x64
@pytest.mark.parametrize("n", [1, 5, 32, 40])
def test_unrolled_cholesky_and_triangular_solves_match_lapack(n):
    """The Kalman steps' own Cholesky and substitutions (no LAPACK batch calls up to n = 32)."""
    from behavhmm.inference._kalman_steps import _cho_solve, _cholesky, _solve_lower, _solve_upper

    rng = np.random.default_rng(n)
    a = rng.normal(size=(3, n, n))
    spd = a @ np.swapaxes(a, -1, -2) + n * np.eye(n)
    b = rng.normal(size=(3, n, 4))
    low = np.linalg.cholesky(spd)
    np.testing.assert_allclose(_cholesky(jnp.asarray(spd)), low, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        _solve_lower(jnp.asarray(low), b), np.linalg.solve(low, b), atol=1e-10
    )
    up = np.swapaxes(low, -1, -2)
    np.testing.assert_allclose(_solve_upper(jnp.asarray(up), b), np.linalg.solve(up, b), atol=1e-10)
    np.testing.assert_allclose(_cho_solve(jnp.asarray(low), b), np.linalg.solve(spd, b), atol=1e-10)
    # not positive definite: NaN, as jnp.linalg.cholesky gives
    if n > 1:
        assert np.isnan(np.asarray(_cholesky(jnp.asarray(-spd)))).any()
