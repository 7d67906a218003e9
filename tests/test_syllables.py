"""Syllable statistics (behavhmm.analysis.syllables) against brute-force loops."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from behavhmm.analysis import (
    cross_likelihoods,
    kappa_scan,
    median_duration,
    relabel_by_usage,
    syllable_durations,
    syllable_usage,
    transition_matrix,
)


def _random_labels(rng, n=400, n_states=5, p_stay=0.8):
    z = np.empty(n, int)
    z[0] = rng.integers(n_states)
    for t in range(1, n):
        z[t] = z[t - 1] if rng.random() < p_stay else rng.integers(n_states)
    z[rng.random(n) < 0.03] = -1  # conditioning / dropped frames
    starts = np.zeros(n, bool)
    starts[[0, 97, 250, 251]] = True
    return z, starts


def _brute_runs(z, starts):
    """Runs by an explicit loop: (label, length) of every run of one non-negative state."""
    runs = []
    current, length = None, 0
    for t, s in enumerate(z):
        if starts[t] or s != current or s < 0:
            if current is not None and current >= 0 and length:
                runs.append((current, length))
            current, length = s, 1
        else:
            length += 1
    if current is not None and current >= 0:
        runs.append((current, length))
    return runs


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_durations_match_a_loop_and_break_at_sessions(seed):
    rng = np.random.default_rng(seed)
    z, starts = _random_labels(rng)
    durations, labels = syllable_durations(z, starts, return_labels=True)
    expected = _brute_runs(z, starts)
    assert list(zip(labels.tolist(), durations.astype(int).tolist(), strict=True)) == expected
    assert median_duration(z, starts) == np.median([d for _, d in expected])
    assert median_duration(z, starts, fps=30.0) == pytest.approx(
        np.median([d for _, d in expected]) / 30
    )
    # ignoring the session starts merges runs across them: never fewer frames, maybe fewer runs
    assert syllable_durations(z).sum() == durations.sum()


def test_median_duration_of_nothing_is_nan():
    assert np.isnan(median_duration(np.full(5, -1)))


def test_relabel_by_usage_orders_by_frames_and_keeps_unlabelled():
    z = np.array([2, 2, 2, 0, -1, 1, 1, 2, 0, 0, 0, 0])  # counts: 0 -> 5, 2 -> 4, 1 -> 2
    new, order = relabel_by_usage(z, n_states=4)
    np.testing.assert_array_equal(order, [0, 2, 1, 3])
    np.testing.assert_array_equal(new, [1, 1, 1, 0, -1, 2, 2, 1, 0, 0, 0, 0])
    # order[new] = old for every labelled frame
    np.testing.assert_array_equal(order[new[new >= 0]], z[z >= 0])


def test_one_hot_states_are_accepted():
    z = np.array([0, 0, 1, 1, 1])
    assert median_duration(np.eye(2, dtype=int)[z]) == 2.5


def test_bad_states_raise():
    with pytest.raises(ValueError, match="states must be integer"):
        syllable_durations(np.array([0.5, 1.5]))


def test_usage_by_frames_instances_and_groups():
    z = np.array([0, 0, 1, 1, 1, -1, 2, 0, 0, 1])
    starts = np.zeros(10, bool)
    starts[[0, 5]] = True
    frames = syllable_usage(z, starts, normalize=False)
    np.testing.assert_array_equal(frames.to_numpy(), [[2, 3, 0], [2, 1, 1]])
    inst = syllable_usage(z, starts, by="instances", normalize=False)
    np.testing.assert_array_equal(inst.to_numpy(), [[1, 1, 0], [1, 1, 1]])
    frac = syllable_usage(z, starts, session_names=["a", "b"])
    assert list(frac.index) == ["a", "b"]
    np.testing.assert_allclose(frac.sum(axis=1), 1.0)
    pooled = syllable_usage(z, starts, groups=["wt", "wt"], normalize=False)
    assert isinstance(pooled, pd.DataFrame)
    np.testing.assert_array_equal(pooled.loc["wt"].to_numpy(), [4, 4, 1])
    with pytest.raises(ValueError, match="one label per session"):
        syllable_usage(z, starts, groups=["wt"])
    with pytest.raises(ValueError, match="by must be"):
        syllable_usage(z, starts, by="seconds")


@pytest.mark.parametrize("collapse", [True, False])
def test_transition_matrix_matches_a_loop(collapse):
    rng = np.random.default_rng(3)
    z, starts = _random_labels(rng, n_states=4)
    counts = transition_matrix(z, starts, n_states=4, normalize=None, collapse_runs=collapse)
    expected = np.zeros((4, 4))
    for t in range(1, len(z)):
        a, b = z[t - 1], z[t]
        if starts[t] or a < 0 or b < 0:
            continue
        if collapse and a == b:
            continue
        expected[a, b] += 1
    np.testing.assert_array_equal(counts, expected)
    if collapse:
        assert np.all(np.diag(counts) == 0)
    rows = transition_matrix(z, starts, n_states=4, collapse_runs=collapse)
    np.testing.assert_allclose(rows.sum(axis=1), 1.0)
    assert transition_matrix(
        z, starts, n_states=4, normalize="all", collapse_runs=collapse
    ).sum() == pytest.approx(1)


def _sticky_ar_data(seed=0, n_states=3, n_sessions=3, frames=600, p_stay=0.97):
    from behavhmm.datasets import demo_arhmm, simulate_demo_sessions

    truth = demo_arhmm(n_states, 2, 1, seed=seed)
    X, z, starts, _ = simulate_demo_sessions(truth, n_sessions, frames, seed=seed)
    return truth, X, z, starts


def test_cross_likelihoods_diagonal_zero_and_separated_states_are_unlikely():
    from behavhmm import ARHMM

    _, X, _, starts = _sticky_ar_data()
    model = ARHMM(
        n_states=3, nlags=1, algorithm="em", n_iter=30, kappa=100.0, progress_bar=False
    ).fit(X, session_starts=starts)
    cl = cross_likelihoods(model, X, session_starts=starts)
    assert cl.shape == (3, 3)
    used = ~np.isnan(cl).all(axis=1)
    assert used.sum() >= 2
    np.testing.assert_allclose(np.diag(cl)[used], 0.0, atol=1e-6)
    off = cl[used][:, used][~np.eye(used.sum(), dtype=bool)]
    # the demo's states are distinct dynamics: another state explains a syllable's frames worse
    assert np.all(off < -0.5)


def test_kappa_scan_longer_durations_with_larger_kappa():
    from behavhmm import ARHMM

    _, X, _, starts = _sticky_ar_data(seed=1)
    model = ARHMM(n_states=6, nlags=1, algorithm="gibbs", n_iter=25, progress_bar=False)
    table = kappa_scan(model, X, [1e6, 1.0], session_starts=starts, fps=30.0)
    assert list(table.columns) == [
        "kappa",
        "median_duration",
        "log_likelihood",
        "n_used_states",
        "median_duration_s",
    ]
    np.testing.assert_array_equal(table["kappa"], [1.0, 1e6])
    assert table["median_duration"].iloc[1] > table["median_duration"].iloc[0]
    assert np.isfinite(table["log_likelihood"]).all()
    np.testing.assert_allclose(table["median_duration_s"], table["median_duration"] / 30)
    with pytest.raises(ValueError, match="scale"):
        kappa_scan(model, X, session_starts=starts, scale="cubic")
    with pytest.raises(ValueError, match="min_kappa"):
        kappa_scan(model, X, session_starts=starts, min_kappa=10, max_kappa=1)


# --- figures --------------------------------------------------------------------------------------


@pytest.fixture
def plt():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    yield plt
    plt.close("all")


def test_plot_durations_marks_the_median(plt):
    from behavhmm.plotting import plot_durations

    z = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 2, 2])  # durations 3, 2, 6
    ax = plot_durations(z, fps=2.0)
    (line,) = ax.get_lines()
    assert line.get_xdata()[0] == pytest.approx(1.5)  # median 3 frames at 2 fps
    assert sum(p.get_height() for p in ax.patches) == 3  # three instances in the histogram
    assert "(s)" in ax.get_xlabel()
    with pytest.raises(ValueError, match="no labelled frame"):
        plot_durations(np.full(4, -1))


def test_plot_usage_bars_sorted_by_usage(plt):
    from behavhmm.plotting import plot_usage

    z = np.array([2, 2, 2, 1, 0, 0])
    ax = plot_usage(z)
    heights = [p.get_height() for p in ax.patches]
    np.testing.assert_allclose(heights, [0.5, 2 / 6, 1 / 6])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2", "0", "1"]
    table = syllable_usage(z, [0, 3], session_names=["a", "b"])
    ax = plot_usage(table, max_syllables=2)
    assert len(ax.patches) == 4  # two sessions x two syllables


def test_plot_transition_matrix_and_fit_history(plt):
    from behavhmm.plotting import plot_fit_history, plot_transition_matrix

    with pytest.raises(ValueError, match="square"):
        plot_transition_matrix(np.ones((2, 3)))
    ax = plot_transition_matrix(np.array([[0.0, 1.0], [0.5, 0.5]]), log=True)
    shown = ax.images[0].get_array()
    assert np.ma.is_masked(shown[0, 0]) or np.isnan(shown[0, 0])

    class Unfitted:
        pass

    with pytest.raises(ValueError, match="fit it first"):
        plot_fit_history(Unfitted())

    class Fitted:
        log_likelihood_history_ = np.array([-10.0, -8.0, -7.5, -7.4])
        check_iterations_ = np.array([2, 4])
        heldout_log_likelihood_history_ = np.array([-3.0, -2.9])
        log_joint_history_ = np.array([-20.0, -19.0])
        median_duration_history_ = np.array([6.0, 9.0])

    left, right = plot_fit_history(Fitted(), fps=30.0)
    train, heldout = left.get_lines()
    np.testing.assert_array_equal(train.get_xdata(), [1, 2, 3, 4])
    np.testing.assert_array_equal(heldout.get_xdata(), [2, 4])
    np.testing.assert_allclose(right.get_lines()[0].get_ydata(), [0.2, 0.3])


def test_permute_states_handles_per_group_transitions_and_hdp_weights():
    from behavhmm import ARHMM
    from behavhmm.analysis import permute_states, relabel_states

    _, X, _, starts = _sticky_ar_data(seed=2)
    groups = np.array(["a", "b", "a"])
    model = ARHMM(
        n_states=3, nlags=1, algorithm="gibbs", separate_trans=True, n_iter=3, progress_bar=False
    )
    model.fit(X, session_starts=starts, groups=groups)
    order = np.array([1, 2, 0])
    moved = permute_states(model, order)
    assert moved.transition_prob_.shape == (2, 3, 3)
    np.testing.assert_array_equal(
        moved.transition_prob_, model.transition_prob_[:, order][:, :, order]
    )
    np.testing.assert_array_equal(moved.beta_, model.beta_[order])
    before = model.predict(X, session_starts=starts, groups=groups)
    after = moved.predict(X, session_starts=starts, groups=groups)
    np.testing.assert_array_equal(after, relabel_states(before, order))
    np.testing.assert_array_equal(relabel_states(np.array([-1, 0, 1, 2]), order), [-1, 2, 0, 1])
