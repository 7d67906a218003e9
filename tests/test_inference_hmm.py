"""HMM kernels against brute-force enumeration, references and each other."""

from __future__ import annotations

import itertools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp

from behavhmm.inference import _hmm_paths, hmm_filter, hmm_sample, hmm_smoother, hmm_viterbi
from behavhmm.inference import hmm as hmm_module

METHODS = ["sequential", "parallel"]


def random_problem(rng, n_states, n_time_bins, starts=(), n_groups=0, scale=1.5):
    initial = rng.dirichlet(np.ones(n_states))
    shape = (n_groups, n_states, n_states) if n_groups else (n_states, n_states)
    trans = rng.dirichlet(np.ones(n_states), size=shape[:-1])
    ll = rng.normal(scale=scale, size=(n_time_bins, n_states))
    mask = np.zeros(n_time_bins, bool)
    mask[0] = True
    mask[list(starts)] = True
    groups = None
    if n_groups:
        session_id = np.cumsum(mask) - 1
        groups = rng.integers(n_groups, size=session_id.max() + 1)[session_id]
    return initial, trans, ll, mask, groups


def brute_force(initial, trans, ll, mask, groups=None):
    """Enumerate every state path: exact log-likelihood, marginals, counts, mode."""
    n_time_bins, n_states = ll.shape
    paths = np.array(list(itertools.product(range(n_states), repeat=n_time_bins)))
    log_joint = np.zeros(len(paths))
    for t in range(n_time_bins):
        if mask[t]:
            log_joint += np.log(initial[paths[:, t]])
        else:
            matrix = trans if groups is None else trans[groups[t]]
            log_joint += np.log(matrix[paths[:, t - 1], paths[:, t]])
        log_joint += ll[t, paths[:, t]]
    log_lik = logsumexp(log_joint)
    post = np.exp(log_joint - log_lik)
    smoothed = np.stack([np.bincount(paths[:, t], post, n_states) for t in range(n_time_bins)])
    n_groups = 1 if groups is None else trans.shape[0]
    counts = np.zeros((n_groups, n_states, n_states))
    for t in range(1, n_time_bins):
        if not mask[t]:
            g = 0 if groups is None else groups[t]
            np.add.at(counts[g], (paths[:, t - 1], paths[:, t]), post)
    if groups is None:
        counts = counts[0]
    # filtered: condition on y_{0:t} only by zeroing later likelihoods
    filtered, prefix = [], []
    for t in range(n_time_bins):
        lj = log_joint - ll[t + 1 :, :][
            np.arange(n_time_bins - t - 1)[:, None], paths[:, t + 1 :].T
        ].sum(0)
        lp = logsumexp(lj)
        prefix.append(lp)
        filtered.append(np.bincount(paths[:, t], np.exp(lj - lp), n_states))
    log_norm = np.diff(np.concatenate([[0.0], prefix]))
    return dict(
        log_lik=log_lik,
        smoothed=smoothed,
        counts=counts,
        initial_counts=smoothed[mask].sum(0),
        filtered=np.stack(filtered),
        log_normalizers=log_norm,
        mode=paths[np.argmax(log_joint)],
        paths=paths,
        path_probs=post,
    )


CASES = [
    dict(n_states=2, n_time_bins=6, starts=(3,)),
    dict(n_states=3, n_time_bins=6, starts=(2, 4)),
    dict(n_states=3, n_time_bins=5, starts=()),
    dict(n_states=3, n_time_bins=6, starts=(3,), n_groups=2),
    # K = 5: the backtrace's max/compare/min argmax (4 <= K <= 32)
    dict(n_states=5, n_time_bins=5, starts=(2,), n_groups=2),
]


@pytest.mark.requires_x64
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    "case",
    CASES,
    ids=lambda c: (
        "K{n_states}-T{n_time_bins}-S{starts}".format(**c)
        + ("-groups" if c.get("n_groups") else "")
    ),
)
def test_kernels_equal_brute_force(case, method, rng):
    initial, trans, ll, mask, groups = random_problem(rng, **case)
    exact = brute_force(initial, trans, ll, mask, groups)
    kw = dict(groups=groups, method=method, block_size=2)

    filt = hmm_filter(initial, trans, ll, mask, **kw)
    np.testing.assert_allclose(filt.log_likelihood, exact["log_lik"], rtol=1e-10)
    np.testing.assert_allclose(filt.filtered_probs, exact["filtered"], atol=1e-10)
    np.testing.assert_allclose(filt.log_normalizers, exact["log_normalizers"], atol=1e-10)

    post = hmm_smoother(initial, trans, ll, mask, **kw)
    np.testing.assert_allclose(post.log_likelihood, exact["log_lik"], rtol=1e-10)
    np.testing.assert_allclose(post.smoothed_probs, exact["smoothed"], atol=1e-10)
    np.testing.assert_allclose(post.expected_transitions, exact["counts"], atol=1e-10)
    np.testing.assert_allclose(post.expected_initial_counts, exact["initial_counts"], atol=1e-10)
    np.testing.assert_allclose(post.log_normalizers, exact["log_normalizers"], atol=1e-10)

    mode = hmm_viterbi(initial, trans, ll, mask, **kw)
    assert mode.dtype == jnp.int32
    np.testing.assert_array_equal(mode, exact["mode"])


@pytest.mark.requires_x64
@pytest.mark.parametrize("method", METHODS)
def test_sampler_path_frequencies_match_exact_posterior(method, rng):
    initial, trans, ll, mask, _ = random_problem(rng, 2, 5, starts=(3,), scale=0.7)
    exact = brute_force(initial, trans, ll, mask)
    n_draws = 20000
    keys = jax.random.split(jax.random.key(1), n_draws)
    draw = jax.jit(
        jax.vmap(
            lambda k: hmm_sample(k, initial, trans, ll, mask, method=method, block_size=2).states
        )
    )
    states = np.asarray(draw(keys))
    codes = states @ (2 ** np.arange(4, -1, -1))
    freq = np.bincount(codes, minlength=32) / n_draws
    exact_codes = exact["paths"] @ (2 ** np.arange(4, -1, -1))
    probs = np.zeros(32)
    probs[exact_codes] = exact["path_probs"]
    tol = 4 * np.sqrt(probs * (1 - probs) / n_draws) + 1e-3
    assert np.all(np.abs(freq - probs) <= tol), np.max(np.abs(freq - probs) - tol)


@pytest.mark.requires_x64
def test_sequential_and_parallel_samplers_draw_the_same_path(rng):
    initial, trans, ll, mask, groups = random_problem(
        rng, 4, 300, starts=(50, 120, 121), n_groups=2
    )
    key = jax.random.key(7)
    seq = hmm_sample(key, initial, trans, ll, mask, groups=groups, method="sequential")
    par = hmm_sample(key, initial, trans, ll, mask, groups=groups, method="parallel", block_size=64)
    np.testing.assert_array_equal(seq.states, par.states)
    np.testing.assert_allclose(seq.log_likelihood, par.log_likelihood, rtol=1e-12)


@pytest.mark.requires_x64
@pytest.mark.parametrize("block_size", [1, 7, 64, None])
def test_sequential_equals_parallel(block_size, rng):
    initial, trans, ll, mask, groups = random_problem(
        rng, 5, 203, starts=(1, 40, 41, 150), n_groups=3
    )
    kw = dict(groups=groups)
    seq = hmm_smoother(initial, trans, ll, mask, method="sequential", **kw)
    par = hmm_smoother(initial, trans, ll, mask, method="parallel", block_size=block_size, **kw)
    for a, b in zip(seq, par, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11)
    fs = hmm_filter(initial, trans, ll, mask, method="sequential", **kw)
    fp = hmm_filter(initial, trans, ll, mask, method="parallel", block_size=block_size, **kw)
    np.testing.assert_allclose(fs.filtered_probs, fp.filtered_probs, atol=1e-11)
    vs = hmm_viterbi(initial, trans, ll, mask, method="sequential", **kw)
    vp = hmm_viterbi(initial, trans, ll, mask, method="parallel", block_size=block_size, **kw)
    np.testing.assert_array_equal(vs, vp)


@pytest.mark.parametrize("method", METHODS)
def test_concatenated_sessions_equal_separate_runs(method, rng):
    initial, trans, _, _, _ = random_problem(rng, 4, 1)
    lengths = [37, 1, 90, 12]
    ll = rng.normal(size=(sum(lengths), 4)).astype(np.float32)
    edges = np.cumsum([0] + lengths)
    mask = np.zeros(len(ll), bool)
    mask[edges[:-1]] = True
    joint = hmm_smoother(initial, trans, ll, mask, method=method)
    joint_mode = hmm_viterbi(initial, trans, ll, mask, method=method)
    total_ll, total_counts = 0.0, 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        one = hmm_smoother(initial, trans, ll[lo:hi], method=method)
        total_ll += float(one.log_likelihood)
        total_counts = total_counts + np.asarray(one.expected_transitions)
        np.testing.assert_allclose(joint.smoothed_probs[lo:hi], one.smoothed_probs, atol=2e-6)
        np.testing.assert_allclose(
            joint.log_normalizers[lo:hi].sum(), one.log_likelihood, rtol=1e-5
        )
        np.testing.assert_array_equal(
            joint_mode[lo:hi], hmm_viterbi(initial, trans, ll[lo:hi], method=method)
        )
    np.testing.assert_allclose(joint.log_likelihood, total_ll, rtol=1e-5)
    np.testing.assert_allclose(joint.expected_transitions, total_counts, rtol=1e-4, atol=1e-5)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), perm_seed=st.integers(0, 2**31 - 1))
def test_relabelling_states_permutes_outputs(seed, perm_seed):
    rng = np.random.default_rng(seed)
    initial, trans, ll, mask, _ = random_problem(rng, 4, 30, starts=(11, 20))
    perm = np.random.default_rng(perm_seed).permutation(4)
    a = hmm_smoother(initial, trans, ll, mask)
    b = hmm_smoother(initial[perm], trans[np.ix_(perm, perm)], ll[:, perm], mask)
    np.testing.assert_allclose(a.log_likelihood, b.log_likelihood, rtol=1e-5)
    np.testing.assert_allclose(a.smoothed_probs[:, perm], b.smoothed_probs, atol=1e-5)
    np.testing.assert_allclose(
        a.expected_transitions[np.ix_(perm, perm)], b.expected_transitions, atol=1e-4
    )
    np.testing.assert_allclose(np.sum(a.smoothed_probs, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(a.expected_transitions.sum(), len(ll) - mask.sum(), rtol=1e-5)


@pytest.mark.requires_x64
@pytest.mark.parametrize("method", ["sequential", "parallel"])
def test_agrees_with_dynamax(method, rng):
    dyn = pytest.importorskip("dynamax.hidden_markov_model.inference")
    initial, trans, ll, _, _ = random_problem(rng, 4, 200)
    ours = hmm_smoother(initial, trans, ll, method=method)
    ref = dyn.hmm_smoother(jnp.asarray(initial), jnp.asarray(trans), jnp.asarray(ll))
    np.testing.assert_allclose(ours.log_likelihood, ref.marginal_loglik, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours.smoothed_probs, ref.smoothed_probs, atol=1e-5)
    np.testing.assert_allclose(ours.expected_transitions, ref.trans_probs, atol=1e-5)
    filt = hmm_filter(initial, trans, ll, method=method)
    np.testing.assert_allclose(filt.filtered_probs, ref.filtered_probs, atol=1e-5)
    mode = dyn.hmm_posterior_mode(jnp.asarray(initial), jnp.asarray(trans), jnp.asarray(ll))
    np.testing.assert_array_equal(hmm_viterbi(initial, trans, ll, method=method), mode)


@pytest.mark.requires_x64
def test_agrees_with_hmmlearn_on_several_sessions(rng):
    hmmlearn = pytest.importorskip("hmmlearn.hmm")
    lengths = [120, 80, 150]
    n_states, n_features = 3, 2
    model = hmmlearn.GaussianHMM(n_components=n_states, covariance_type="diag")
    model.startprob_ = rng.dirichlet(np.ones(n_states))
    model.transmat_ = rng.dirichlet(np.ones(n_states) * 2, size=n_states)
    model.means_ = rng.normal(scale=1.5, size=(n_states, n_features))
    model.covars_ = rng.uniform(0.5, 2.0, size=(n_states, n_features))
    X, _ = model.sample(sum(lengths), random_state=0)
    ll = model._compute_log_likelihood(X)
    mask = np.zeros(len(X), bool)
    mask[np.cumsum([0] + lengths[:-1])] = True
    ours = hmm_smoother(model.startprob_, model.transmat_, ll, mask)
    ref_ll, ref_post = model.score_samples(X, lengths)
    np.testing.assert_allclose(ours.log_likelihood, ref_ll, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours.smoothed_probs, ref_post, atol=1e-5)
    _, ref_mode = model.decode(X, lengths, algorithm="viterbi")
    np.testing.assert_array_equal(
        hmm_viterbi(model.startprob_, model.transmat_, ll, mask), ref_mode
    )
    # expected transition counts and initial counts from hmmlearn's compiled kernels
    hmmc = pytest.importorskip("hmmlearn._hmmc")
    counts, start = np.zeros((n_states, n_states)), np.zeros(n_states)
    edges = np.cumsum([0] + lengths)
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        _, fwd = hmmc.forward_log(model.startprob_, model.transmat_, ll[lo:hi])
        bwd = hmmc.backward_log(model.startprob_, model.transmat_, ll[lo:hi])
        counts += np.exp(hmmc.compute_log_xi_sum(fwd, model.transmat_, bwd, ll[lo:hi]))
        start += ref_post[lo]
    np.testing.assert_allclose(ours.expected_transitions, counts, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.expected_initial_counts, start, atol=1e-6)


@pytest.mark.requires_x64
def test_float32_stays_accurate_over_a_million_steps(rng):
    n_time_bins = 1_000_000
    initial, trans, _, _, _ = random_problem(rng, 3, 1)
    trans = 0.9 * np.eye(3) + 0.1 * trans
    ll = rng.normal(scale=3.0, size=(n_time_bins, 3))
    mask = np.zeros(n_time_bins, bool)
    mask[[0, 400_000]] = True
    ref = hmm_smoother(initial, trans, ll, mask)
    ref_mode = hmm_viterbi(initial, trans, ll, mask)
    jax.config.update("jax_enable_x64", False)
    args = (initial.astype(np.float32), trans.astype(np.float32), ll.astype(np.float32), mask)
    got = hmm_smoother(*args)
    assert got.smoothed_probs.dtype == jnp.float32
    np.testing.assert_allclose(got.log_likelihood, ref.log_likelihood, rtol=1e-6)
    assert np.max(np.abs(np.asarray(got.smoothed_probs) - np.asarray(ref.smoothed_probs))) < 1e-4
    np.testing.assert_allclose(got.expected_transitions, ref.expected_transitions, rtol=1e-4)
    agree = np.mean(np.asarray(hmm_viterbi(*args)) == np.asarray(ref_mode))
    assert agree > 0.9999


def test_impossible_observation_gives_minus_inf_not_nan():
    initial = np.array([1.0, 0.0], np.float32)
    trans = np.eye(2, dtype=np.float32)
    ll = np.array([[0.0, 0.0], [-np.inf, 0.0], [0.0, 0.0]], np.float32)
    post = hmm_smoother(initial, trans, ll)
    assert post.log_likelihood == -np.inf
    assert np.all(np.isfinite(post.smoothed_probs))
    assert np.all(np.isfinite(post.expected_transitions))


def test_all_states_impossible_at_one_step_is_finite_elsewhere_under_jit():
    """Compiled callers (no check): a time bin with no possible state gives -inf, never NaN."""
    initial = np.array([0.5, 0.5], np.float32)
    trans = np.array([[0.9, 0.1], [0.1, 0.9]], np.float32)
    ll = np.zeros((4, 2), np.float32)
    ll[2] = -np.inf
    smoother = jax.jit(lambda *a, method: hmm_smoother(*a, method=method), static_argnames="method")
    viterbi = jax.jit(lambda *a, method: hmm_viterbi(*a, method=method), static_argnames="method")
    for method in METHODS:
        res = smoother(initial, trans, ll, method=method)
        assert res.log_likelihood == -np.inf
        assert np.all(np.isfinite(res.smoothed_probs))
        assert np.all(np.isin(np.asarray(viterbi(initial, trans, ll, method=method)), [0, 1]))


@pytest.mark.parametrize("n_states", [3, 5])
def test_viterbi_decodes_a_session_after_an_impossible_one_as_if_alone(n_states, rng):
    """Compiled callers (no check): a session with no possible path leaves the next one intact.

    Sequential scan only: the parallel max-plus scan still carries the all--inf message across
    the reset (its reset element is a rank-one max-plus matrix) and decodes the next session as
    all 0, as both methods did before.
    """
    initial, trans, _, _, _ = random_problem(rng, n_states, 1)
    ll = rng.normal(size=(30, n_states)).astype(np.float32)
    ll[4] = -np.inf  # session 1 (steps 0-9) has no possible path
    mask = np.zeros(30, bool)
    mask[[0, 10]] = True
    viterbi = jax.jit(lambda *a, method: hmm_viterbi(*a, method=method), static_argnames="method")
    joint = np.asarray(viterbi(initial, trans, ll, mask, method="sequential"))
    np.testing.assert_array_equal(joint[10:], hmm_viterbi(initial, trans, ll[10:]))


@pytest.mark.parametrize("n_states", [3, 4, 10, 32, 33])
def test_backtrace_argmax_takes_the_first_maximum_and_state_0_without_one(n_states, rng):
    """The backtrace's argmax (max/compare/min for 4 <= K <= 32) = numpy's, ties included."""
    scores = rng.integers(-3, 1, size=(200, n_states)).astype(np.float32)  # many ties
    scores[0] = -np.inf
    scores[1] = np.nan
    scores[2, -1] = np.inf
    got = jax.vmap(_hmm_paths._first_argmax)(jnp.asarray(scores))
    assert got.dtype == jnp.int32
    want = np.argmax(np.where(np.isnan(scores), -np.inf, scores), axis=1)  # NaN row: state 0
    np.testing.assert_array_equal(got, want)


@pytest.mark.requires_x64
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n_states", [1, 3, 16, 17, 100, 101])
def test_inverse_cdf_equals_a_search_of_the_cumulative_sums(n_states, dtype, rng):
    """The sampler's inverse CDF (two-level for K > 16) = numpy's search; never a zero weight."""
    n = 3000
    weights = rng.dirichlet(np.ones(n_states), n) * rng.integers(0, 2, (n, n_states))
    weights[:, 0] += weights.sum(1) == 0  # every row has a positive weight
    u = rng.uniform(size=n)
    u[:200] = np.nextafter(1.0, 0.0)  # u * total rounds to the total
    weights, u = weights.astype(dtype), u.astype(dtype)
    got = np.asarray(jax.vmap(_hmm_paths._inverse_cdf)(jnp.asarray(weights), jnp.asarray(u)))
    assert np.all(weights[np.arange(n), got] > 0)
    if dtype == np.float64:
        cdf = np.cumsum(weights, axis=1)
        want = np.sum(cdf <= (u * cdf[:, -1])[:, None], axis=1)
        last = np.array([np.flatnonzero(row > 0)[-1] for row in weights])
        np.testing.assert_array_equal(got, np.minimum(want, last))


def call_kernel(kernel, initial, trans, ll, method="sequential"):
    if kernel == "sample":
        return hmm_sample(jax.random.key(0), initial, trans, ll, method=method)
    return {"filter": hmm_filter, "smoother": hmm_smoother, "viterbi": hmm_viterbi}[kernel](
        initial, trans, ll, method=method
    )


KERNELS = ["filter", "smoother", "viterbi", "sample"]


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("value, name", [(np.inf, "+inf"), (np.nan, "NaN")])
def test_kernels_refuse_nan_and_plus_inf_naming_the_first_entry(kernel, value, name):
    """Issue 20 item 3: +inf gave NaN probabilities, NaN gave -inf and a Viterbi path."""
    initial = np.array([0.5, 0.5], np.float32)
    trans = np.array([[0.9, 0.1], [0.1, 0.9]], np.float32)
    ll = np.zeros((6, 2), np.float32)
    ll[3, 1] = value
    ll[5, 0] = value
    for method in METHODS:
        with pytest.raises(ValueError, match=rf"log_likelihoods\[3, 1\] .*is {re.escape(name)}"):
            call_kernel(kernel, initial, trans, ll, method)
    # a JAX array on the device is checked the same way
    with pytest.raises(ValueError, match=r"log_likelihoods\[3, 1\]"):
        call_kernel(kernel, initial, trans, jnp.asarray(ll))
    # also a FloatingPointError: a model whose emissions overflowed adds its own hint to it
    with pytest.raises(FloatingPointError, match=r"log_likelihoods\[3, 1\]"):
        call_kernel(kernel, initial, trans, ll)


@pytest.mark.parametrize("kernel", KERNELS)
def test_kernels_refuse_a_time_bin_where_no_state_is_possible(kernel):
    initial = np.array([0.5, 0.5], np.float32)
    trans = np.array([[0.9, 0.1], [0.1, 0.9]], np.float32)
    ll = np.zeros((5, 2), np.float32)
    ll[1, 0] = -np.inf  # one impossible state is fine
    ll[2] = -np.inf
    with pytest.raises(ValueError, match=r"log_likelihoods\[2\] is -inf for every state"):
        call_kernel(kernel, initial, trans, ll)


def test_minus_inf_clamps_states_as_a_semi_supervised_fit_does(rng):
    """-inf evidence on all states but one (a hand label) forces that state, with finite outputs."""
    initial, trans, ll, mask, _ = random_problem(rng, 3, 6, starts=(4,))
    clamped = ll.copy()
    clamped[[1, 4], :] = -np.inf
    clamped[1, 2] = ll[1, 2]
    clamped[4, 0] = ll[4, 0]
    with np.errstate(invalid="ignore"):  # the brute force's filtered part subtracts -inf
        ref = brute_force(initial, trans, clamped, mask)["log_lik"]
    for method in METHODS:
        post = hmm_smoother(initial, trans, clamped, mask, method=method)
        np.testing.assert_allclose(post.log_likelihood, ref, rtol=1e-5)
        np.testing.assert_allclose(
            np.asarray(post.smoothed_probs)[[1, 4]], np.eye(3)[[2, 0]], atol=1e-6
        )
        assert np.all(np.isfinite(post.smoothed_probs))
        assert np.all(np.isfinite(post.expected_transitions))
        path = np.asarray(hmm_viterbi(initial, trans, clamped, mask, method=method))
        assert path[1] == 2 and path[4] == 0
        draw = hmm_sample(jax.random.key(3), initial, trans, clamped, mask, method=method)
        assert draw.states[1] == 2 and draw.states[4] == 0


def test_the_check_leaves_the_numbers_unchanged(rng):
    """Public kernels equal the unchecked compiled programs on valid input.

    With concrete session starts the public kernels run the sessions side by side
    (bucketed rows), so the numbers agree up to float32 rounding; paths are equal.
    """
    initial, trans, ll, mask, _ = random_problem(rng, 4, 300, starts=(120,))
    args = tuple(np.asarray(a, np.float32) for a in (initial, trans, ll)) + (mask,)
    for got, want in [
        (hmm_filter(*args), hmm_module._filter_program(*args)),
        (hmm_smoother(*args), hmm_module._smoother_program(*args, None, method="sequential")),
        ((hmm_viterbi(*args),), (hmm_module._viterbi_program(*args),)),
        (
            hmm_sample(jax.random.key(1), *args),
            hmm_module._sample_program(jax.random.key(1), *args),
        ),
    ]:
        for a, b in zip(got, want, strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(ll=np.zeros(5)), "log_likelihoods must have shape"),
        (dict(initial=np.ones(3) / 3), r"initial_probs must have shape \(2,\)"),
        (dict(trans=np.ones((2, 3))), "transition_matrix must have shape"),
        (dict(mask=np.ones(4, bool)), "session_starts must be a boolean mask of shape"),
        (dict(trans=np.ones((2, 2, 2)) / 2), "groups is required"),
        (dict(groups=np.zeros(5, int)), "groups is only used"),
        (dict(method="fast"), "method must be one of"),
    ],
)
def test_kernel_input_errors(kwargs, match):
    args = dict(
        initial=np.ones(2) / 2,
        trans=np.ones((2, 2)) / 2,
        ll=np.zeros((5, 2)),
        mask=None,
        groups=None,
        method="sequential",
    )
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        hmm_smoother(
            args["initial"],
            args["trans"],
            args["ll"],
            args["mask"],
            groups=args["groups"],
            method=args["method"],
        )


def test_kernels_jit_and_do_not_retrace(rng):
    initial, trans, ll, mask, _ = random_problem(rng, 3, 50, starts=(20,))
    traces = []

    @jax.jit
    def run(initial, trans, ll, mask):
        traces.append(1)
        return hmm_smoother(initial, trans, ll, mask).log_likelihood

    a = run(initial, trans, ll, mask)
    b = run(initial * 1.0, trans, ll + 1.0, ~mask)
    assert len(traces) == 1
    assert np.isfinite(a) and np.isfinite(b)


@pytest.mark.parametrize("kernel", ["filter", "smoother", "viterbi", "sample"])
@pytest.mark.parametrize("method", METHODS)
def test_memory_never_scales_with_time_times_states_squared(kernel, method):
    """Compiled temporaries stay O(T K) (+ one bounded block); a (T, K, K) array would be 2 GB."""
    n_time_bins, n_states = 100_000, 50
    pi = jnp.ones(n_states) / n_states
    trans = jnp.ones((n_states, n_states)) / n_states
    ll = jnp.zeros((n_time_bins, n_states))
    starts = jnp.zeros(n_time_bins, bool)
    fn, args = {
        "filter": (hmm_filter, (pi, trans, ll, starts)),
        "smoother": (hmm_module._smoother_program, (pi, trans, ll, starts, None)),
        "viterbi": (hmm_viterbi, (pi, trans, ll, starts)),
        "sample": (hmm_sample, (jax.random.key(0), pi, trans, ll, starts)),
    }[kernel]
    compiled = fn.lower(*args, method=method).compile()
    analysis = compiled.memory_analysis()
    if analysis is None:
        pytest.skip("this backend reports no memory analysis")
    one_tk_array = n_time_bins * n_states * 4
    budget = 8 * one_tk_array + (3 * 2**27 if method == "parallel" else 0)
    assert analysis.temp_size_in_bytes < budget


def test_two_thread_smoother_equals_one_program(rng, monkeypatch):
    # one session (several run side by side instead, see test_inference_sessions.py)
    initial, trans, ll, mask, groups = random_problem(rng, 8, 20_000, n_groups=2)
    args = tuple(np.asarray(a, np.float32) for a in (initial, trans, ll)) + (mask, groups)
    assert hmm_module._concurrent_passes_pay_off(args)
    threaded = hmm_smoother(*args[:4], groups=groups)
    one = hmm_module._smoother_program(*args, method="sequential", block_size=None)
    for a, b in zip(threaded, one, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    monkeypatch.setattr(hmm_module, "CONCURRENT_PASSES", False)
    assert not hmm_module._concurrent_passes_pay_off(args)
    np.testing.assert_allclose(
        hmm_smoother(*args[:4], groups=groups).smoothed_probs, one.smoothed_probs, rtol=1e-6
    )
