"""Sessions side by side: bucketed rows equal the concatenated path."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from behavhmm.inference import _sessions, hmm_filter, hmm_sample, hmm_smoother, hmm_viterbi
from behavhmm.inference import hmm as hmm_module

LENGTHS = [37, 1, 2, 300, 17, 16, 90, 5, 130]


@pytest.fixture(autouse=True)
def _side_by_side(monkeypatch):
    """Bucketed rows are the default on accelerators only; these tests force them on."""
    monkeypatch.setattr(_sessions, "SIDE_BY_SIDE", True)


def test_rows_are_off_on_cpus_by_default_except_for_parallel_viterbi(rng, monkeypatch):
    """HMM rows are on by default on accelerators, and on CPUs for the sampler and smoother
    from `MIN_CPU_ROW_STATES` states; Kalman rows on every backend."""
    monkeypatch.setattr(_sessions, "SIDE_BY_SIDE", None)
    _, _, ll, starts, _ = ragged_problem(rng)
    on_cpu = jax.default_backend() == "cpu"
    assert (_sessions.plan_for(starts, ll) is None) == on_cpu
    assert _sessions.plan_for(starts, ll, kernel="kalman") is not None
    many = np.zeros((len(starts), _sessions.MIN_CPU_ROW_STATES))
    for kernel in ("hmm_sample", "hmm_smoother"):
        assert (_sessions.plan_for(starts, ll, kernel=kernel) is None) == on_cpu  # K = 4
        assert _sessions.plan_for(starts, many, kernel=kernel) is not None
    assert (_sessions.plan_for(starts, many) is None) == on_cpu  # filter, Viterbi
    assert _sessions.plan_for(starts, ll, always=True) is not None
    assert _sessions.plan_for(jax.numpy.asarray(starts), ll, always=True) is not None
    monkeypatch.setattr(_sessions, "SIDE_BY_SIDE", False)
    assert _sessions.plan_for(starts, ll) is None
    assert _sessions.plan_for(starts[:5], ll, always=True) is None  # shape mismatch: no plan


def ragged_problem(rng, n_states=4, lengths=LENGTHS, n_groups=0):
    edges = np.cumsum([0] + list(lengths))
    starts = np.zeros(edges[-1], bool)
    starts[edges[:-1]] = True
    initial = rng.dirichlet(np.ones(n_states))
    shape = (n_groups, n_states, n_states) if n_groups else (n_states, n_states)
    trans = rng.dirichlet(np.ones(n_states), size=shape[:-1]) + 2 * np.eye(n_states)
    trans /= trans.sum(-1, keepdims=True)
    ll = rng.normal(scale=1.5, size=(edges[-1], n_states))
    groups = rng.integers(n_groups, size=edges[-1]) if n_groups else None
    return initial, trans, ll, starts, groups


def test_row_counts_waste_little():
    """Rows: the grid or the next multiple of 8, whichever is smaller (200 sessions: 200 rows)."""
    assert [_sessions.row_count(n) for n in (1, 3, 9, 200, 201)] == [1, 3, 10, 200, 208]


def test_grid_sizes_round_up_by_less_than_a_quarter():
    sizes = [_sessions.grid_size(n) for n in range(1, 5000)]
    assert all(s >= n for n, s in zip(range(1, 5000), sizes, strict=True))
    assert max(s / n for n, s in zip(range(1, 5000), sizes, strict=True)) <= 1.25
    assert len(set(sizes[1000:2000])) <= 5  # four sizes per octave
    assert _sessions.grid_size(10_000) == 10_240
    assert _sessions.grid_size(3, minimum=16) == 16


def test_plan_round_trips_the_concatenated_axis(rng):
    _, _, ll, starts, _ = ragged_problem(rng)
    plan = _sessions.session_plan(starts)
    assert plan.n_sessions == len(LENGTHS)
    assert len(plan.buckets) > 2  # the lengths above fall into several buckets
    rows = [_sessions.to_rows(ll, b) for b in plan.buckets]
    for b, r in zip(plan.buckets, rows, strict=True):
        assert r.shape[:2] == b.index.shape[::-1]  # time-major rows
        n_real = int(np.count_nonzero(b.lengths))
        assert b.index.shape[0] == _sessions.row_count(n_real)
    np.testing.assert_array_equal(_sessions.from_rows(rows, plan), ll.astype(rows[0].dtype))
    assert sorted(np.concatenate([b.lengths for b in plan.buckets]).tolist()) == sorted(
        LENGTHS + [0] * (sum(b.index.shape[0] for b in plan.buckets) - len(LENGTHS))
    )


@pytest.mark.requires_x64
@pytest.mark.parametrize("n_groups", [0, pytest.param(3, marks=pytest.mark.slow)])
def test_rows_equal_the_concatenated_path(n_groups, rng):
    """Filter, smoother, Viterbi and FFBS on bucketed rows = the one-scan programs (float64)."""
    initial, trans, ll, starts, groups = ragged_problem(rng, n_groups=n_groups)
    args = (initial, trans, ll, starts)
    kw = dict(groups=groups)
    assert _sessions.plan_for(starts, ll) is not None
    got = hmm_filter(*args, **kw)
    want = hmm_module._filter_program(*args, **kw)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    got = hmm_smoother(*args, **kw)
    want = hmm_module._smoother_program(*args, groups, method="sequential")
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    want_path = hmm_module._viterbi_program(*args, **kw)
    for method in ("sequential", "parallel"):
        np.testing.assert_array_equal(hmm_viterbi(*args, method=method, **kw), want_path)
    key = jax.random.key(3)
    draw = hmm_sample(key, *args, **kw)
    ref = hmm_module._sample_program(key, *args, **kw)
    np.testing.assert_array_equal(draw.states, ref.states)
    np.testing.assert_allclose(draw.log_likelihood, ref.log_likelihood, rtol=1e-12)
    par = hmm_sample(key, *args, method="parallel", block_size=32, **kw)
    np.testing.assert_array_equal(par.states, ref.states)


@pytest.mark.requires_x64
def test_rebucketing_and_jit_draw_the_same_paths(rng, monkeypatch):
    """FFBS uniforms come from per-session keys: any bucketing, or none, gives one draw."""
    initial, trans, ll, starts, _ = ragged_problem(rng, n_states=3)
    key = jax.random.key(11)
    first = hmm_sample(key, initial, trans, ll, starts)
    monkeypatch.setattr(_sessions, "MIN_ROW_LENGTH", 512)  # one bucket (and the one-frame session)
    row_lengths = [b.index.shape[1] for b in _sessions.plan_for(starts, ll).buckets]
    assert row_lengths == [1, 512]
    second = hmm_sample(key, initial, trans, ll, starts)
    jitted = jax.jit(hmm_sample)(key, initial, trans, ll, starts)  # traced starts: one scan
    np.testing.assert_array_equal(first.states, second.states)
    np.testing.assert_array_equal(first.states, jitted.states)
    assert len(np.unique(first.states)) == 3
    # a session's draw does not depend on the lengths of the sessions after it
    lo, hi = 0, LENGTHS[0] + LENGTHS[1] + LENGTHS[2] + LENGTHS[3]
    head = hmm_sample(key, initial, trans, ll[lo:hi], starts[lo:hi])
    np.testing.assert_array_equal(head.states, first.states[lo:hi])


def test_viterbi_rows_float32_match_float64_on_a_long_session(rng):
    initial, trans, ll, starts, _ = ragged_problem(rng, n_states=3, lengths=[5000, 3000])
    args32 = [np.asarray(a, np.float32) for a in (initial, trans, ll)]
    fast = hmm_viterbi(*args32, starts)
    slow = hmm_module._viterbi_program(*args32, starts)
    assert np.mean(np.asarray(fast) == np.asarray(slow)) > 0.999
    single = hmm_viterbi(*args32)
    assert single.shape == (8000,) and single.dtype == np.int32


@pytest.mark.requires_x64
@pytest.mark.parametrize("n_groups", [0, 2])
def test_sampler_on_a_plan_joining_sessions_draws_the_one_scan_path(n_groups, rng):
    """A model's plan may hold several sessions in a row (every start still resets): the
    draw is the one-scan sampler's, under jit too, with the plan's arrays as arguments."""
    initial, trans, ll, starts, groups = ragged_problem(rng, n_states=5, n_groups=n_groups)
    coarse = starts.copy()
    coarse[np.flatnonzero(starts)[1::2]] = False  # every other session joins the one before
    plan = _sessions.session_plan(coarse)
    assert plan.n_sessions < np.count_nonzero(starts)
    key = jax.random.key(5)
    want = hmm_module._sample_program(key, initial, trans, ll, starts, groups=groups)
    got = hmm_module.sample_on_plan(key, initial, trans, ll, starts, plan, groups=groups)
    np.testing.assert_array_equal(got.states, want.states)
    np.testing.assert_allclose(got.log_likelihood, want.log_likelihood, rtol=1e-12)
    plan_arrays = jax.tree_util.tree_map(jax.numpy.asarray, plan)
    jitted = jax.jit(hmm_module.sample_on_plan)(
        key, initial, trans, ll, starts, plan_arrays, groups
    )
    np.testing.assert_array_equal(jitted.states, want.states)
