"""Hand labels as evidence: the log-evidence matrix against brute force, and bad input."""

from __future__ import annotations

import itertools

import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import logsumexp

from behavhmm.inference import hmm_smoother, hmm_viterbi
from behavhmm.labels import (
    check_labels,
    complete_labels,
    label_evidence,
    labelled_initial_proba,
    labelled_transition_proba,
    log_evidence,
    restrict_evidence,
)


def _problem(rng, n_time_bins=6, n_states=3):
    initial = rng.dirichlet(np.ones(n_states))
    trans = rng.dirichlet(np.ones(n_states), size=n_states)
    ll = rng.normal(size=(n_time_bins, n_states)) * 2.0
    mask = np.zeros(n_time_bins, bool)
    mask[[0, 4]] = True  # two sessions
    return initial, trans, ll, mask


def _path_log_joint(initial, trans, ll, mask):
    """Every state path and its log joint ``log p(x, z)``."""
    n_time_bins, n_states = ll.shape
    paths = np.array(list(itertools.product(range(n_states), repeat=n_time_bins)))
    lj = np.zeros(len(paths))
    for t in range(n_time_bins):
        if mask[t]:
            lj += np.log(initial[paths[:, t]])
        else:
            lj += np.log(trans[paths[:, t - 1], paths[:, t]])
        lj += ll[t, paths[:, t]]
    return paths, lj


def _marginals(paths, log_weight, n_states):
    post = np.exp(log_weight - logsumexp(log_weight))
    return np.stack([np.bincount(paths[:, t], post, n_states) for t in range(paths.shape[1])])


@pytest.mark.requires_x64
@pytest.mark.parametrize("method", ["sequential", "parallel"])
def test_clamped_smoother_equals_brute_force_conditioning(rng, method):
    initial, trans, ll, mask = _problem(rng)
    labels = np.array([-1, 2, -1, -1, 0, -1])
    ev = log_evidence(check_labels(labels, 6, 3), 3, 1.0)
    post = hmm_smoother(
        jnp.asarray(initial),
        jnp.asarray(trans),
        jnp.asarray(ll + ev),
        jnp.asarray(mask),
        method=method,
    )
    paths, lj = _path_log_joint(initial, trans, ll, mask)
    consistent = (paths[:, 1] == 2) & (paths[:, 4] == 0)
    exact = _marginals(paths[consistent], lj[consistent], 3)
    np.testing.assert_allclose(post.smoothed_probs, exact, atol=1e-10)
    # the reported log-likelihood is log p(x, z_1 = 2, z_4 = 0)
    np.testing.assert_allclose(post.log_likelihood, logsumexp(lj[consistent]), rtol=1e-10)
    # labelled frames are certain, the Viterbi path passes through them
    np.testing.assert_allclose(post.smoothed_probs[1], [0, 0, 1], atol=1e-12)
    path = np.asarray(
        hmm_viterbi(
            jnp.asarray(initial),
            jnp.asarray(trans),
            jnp.asarray(ll + ev),
            jnp.asarray(mask),
            method=method,
        )
    )
    best = paths[consistent][np.argmax(lj[consistent])]
    np.testing.assert_array_equal(path, best)


@pytest.mark.requires_x64
@pytest.mark.parametrize("weight", [0.3, 0.9])
def test_soft_labels_equal_brute_force_with_evidence(rng, weight):
    initial, trans, ll, mask = _problem(rng)
    labels = np.array([1, -1, -1, 2, -1, 0])
    ev = log_evidence(check_labels(labels, 6, 3), 3, weight)
    post = hmm_smoother(
        jnp.asarray(initial), jnp.asarray(trans), jnp.asarray(ll + ev), jnp.asarray(mask)
    )
    paths, lj = _path_log_joint(initial, trans, ll, mask)
    e = np.ones((6, 3))
    for t, c in enumerate(labels):
        if c >= 0:
            e[t] = 1 - weight
            e[t, c] = 1.0
    lw = lj + np.log(e[np.arange(6), paths]).sum(axis=1)
    np.testing.assert_allclose(post.smoothed_probs, _marginals(paths, lw, 3), atol=1e-10)


@pytest.mark.requires_x64
def test_evidence_array_equals_brute_force(rng):
    initial, trans, ll, mask = _problem(rng)
    evidence = rng.uniform(0.05, 2.0, size=(6, 3))
    evidence[2] = [0.0, 1.0, 0.5]  # an excluded state
    ev = log_evidence(check_labels(evidence, 6, 3), 3)
    post = hmm_smoother(
        jnp.asarray(initial), jnp.asarray(trans), jnp.asarray(ll + ev), jnp.asarray(mask)
    )
    paths, lj = _path_log_joint(initial, trans, ll, mask)
    with np.errstate(divide="ignore"):
        lw = lj + np.log(evidence[np.arange(6), paths]).sum(axis=1)
    np.testing.assert_allclose(post.smoothed_probs, _marginals(paths, lw, 3), atol=1e-10)
    assert post.smoothed_probs[2, 0] == 0.0


@pytest.mark.requires_x64
def test_label_weight_zero_is_unsupervised(rng):
    initial, trans, ll, mask = _problem(rng)
    labels = np.array([1, 1, -1, 2, -1, 0])
    args = (jnp.asarray(initial), jnp.asarray(trans))
    ev = log_evidence(check_labels(labels, 6, 3), 3, 0.0)
    assert np.all(ev == 0)
    near = log_evidence(check_labels(labels, 6, 3), 3, 1e-9)
    free = hmm_smoother(*args, jnp.asarray(ll), jnp.asarray(mask))
    almost = hmm_smoother(*args, jnp.asarray(ll + near), jnp.asarray(mask))
    np.testing.assert_allclose(almost.smoothed_probs, free.smoothed_probs, atol=1e-8)


def test_label_evidence_on_kept_rows_and_warnings():
    values = np.ones((6, 2))
    values[0] = np.nan  # a NaN border, dropped
    keep = ~np.isnan(values).any(axis=1)
    ev = label_evidence(np.array([-1, 1, -1, 0, -1, -1]), 1.0, 3, values, keep)
    assert ev.log_evidence.shape == (5, 3)
    np.testing.assert_array_equal(ev.labels, [1, -1, 0, -1, -1])
    assert ev.n_classes == 2
    assert ev.log_evidence[0, 1] == 0 and np.isneginf(ev.log_evidence[0, 0])
    with pytest.warns(UserWarning, match="1 labelled frame"):
        sub = restrict_evidence(ev, np.arange(1, 5), "the first nlags frames")
    np.testing.assert_array_equal(sub.labels, [-1, 0, -1, -1])
    assert label_evidence(None, 1.0, 3, values, keep) is None
    assert label_evidence(np.array([-1, 1, -1, 0, -1, -1]), 0.0, 3, values, keep) is None


@pytest.mark.parametrize(
    ("labels", "weight", "error", "match"),
    [
        (np.zeros(5, int), 1.0, ValueError, "labels must have n_time_bins=6"),
        (np.array([0, 1, 3, -1, -1, -1]), 1.0, ValueError, r"labels must lie in \[-1, n_states\)"),
        (np.array([0, 1, -2, -1, -1, -1]), 1.0, ValueError, "frame 2 has -2"),
        (np.array([0, 0.5, 0, 0, 0, 0]), 1.0, ValueError, "labels must hold integers"),
        (np.ones(6, bool), 1.0, TypeError, "labels must hold integer labels"),
        (np.array([0, -1, -1, -1, -1, -1]), 1.5, ValueError, r"label_weight must be a number in"),
        (np.array([0, -1, -1, -1, -1, -1]), -0.1, ValueError, "label_weight"),
        (np.array([0, -1, -1, -1, -1, -1]), float("nan"), ValueError, "label_weight"),
        (np.array([0, -1, -1, -1, -1, -1]), True, TypeError, "label_weight"),
        (np.zeros((6, 2)), 1.0, ValueError, "evidence must have shape"),
        (-np.ones((6, 3)), 1.0, ValueError, "non-negative"),
        (np.zeros((6, 3)), 1.0, ValueError, "zero for every state at frame 0"),
        (np.ones((6, 3)), 0.5, ValueError, "label_weight must be 1.0"),
        (np.array([-1, -1, -1, -1, -1, 1]), 1.0, ValueError, "labels frame 5, where X is NaN"),
    ],
)
def test_bad_labels_name_the_argument(labels, weight, error, match):
    values = np.ones((6, 2))
    values[5] = np.nan
    with pytest.raises(error, match=match):
        label_evidence(labels, weight, 3, values, ~np.isnan(values).any(axis=1))


def test_pynapple_labels_must_share_timestamps():
    nap = pytest.importorskip("pynapple")
    X = nap.TsdFrame(t=np.arange(6.0), d=np.ones((6, 2)))
    good = nap.Tsd(t=np.arange(6.0), d=np.array([0, -1, -1, 1, -1, -1.0]))
    values, info = X.values, __import__("behavhmm").sessions.split_pynapple(X)[1]
    ev = label_evidence(good, 1.0, 2, values, np.ones(6, bool), info=info)
    np.testing.assert_array_equal(ev.labels, [0, -1, -1, 1, -1, -1])
    shifted = nap.Tsd(t=np.arange(6.0) + 0.5, d=good.values)
    with pytest.raises(ValueError, match="labels must have the same timestamps as X"):
        label_evidence(shifted, 1.0, 2, values, np.ones(6, bool), info=info)


def test_complete_labels_keeps_labels_and_fills_free_states(rng):
    centers = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    truth = np.repeat([2, 0, 1], 50)
    X = centers[truth] + rng.normal(size=(150, 2)) * 0.3
    labels = np.full(150, -1)
    labels[[5, 60]] = [1, 0]  # cluster of truth 2 is class 1, truth 0 is class 0
    states = complete_labels(X, labels, 3, seed=0)
    np.testing.assert_array_equal(states[:50], 1)
    np.testing.assert_array_equal(states[50:100], 0)
    np.testing.assert_array_equal(states[100:], 2)  # the free state


def test_labelled_chain_initializers():
    labels = np.array([0, 0, 1, 1, -1, 1, 0, 0])
    starts = np.zeros(8, bool)
    starts[[0, 6]] = True
    trans = labelled_transition_proba(2, None, starts, None, labels=labels, pseudo_count=0.0)
    # pairs 0->0, 0->1, 1->1 (1->-1, -1->1 skipped, 1->0 crosses a session start), 0->0
    np.testing.assert_allclose(trans, [[2 / 3, 1 / 3], [0.0, 1.0]])
    pi = labelled_initial_proba(2, None, starts, None, labels=labels, pseudo_count=0.0)
    np.testing.assert_allclose(pi, [1.0, 0.0])
    with pytest.raises(ValueError, match="needs labels"):
        labelled_transition_proba(2, None, starts, None)
