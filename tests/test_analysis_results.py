"""After the fit: frame tables, syllable statistics, group tests, label comparison, transitions,
merging."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from behavhmm.analysis import frame_table, syllable_stats


def _circle(n, radius, omega, half_length=2.0, phase=0.3):
    """Two sessions' worth of keypoints moving on a circle, facing along the tangent
    (counter-clockwise)."""
    theta = phase + omega * np.arange(n)
    centre = radius * np.c_[np.cos(theta), np.sin(theta)]
    heading = theta + np.pi / 2
    direction = np.c_[np.cos(heading), np.sin(heading)]
    coords = np.stack(
        [centre + half_length * direction, centre, centre - half_length * direction], axis=1
    )
    return coords, centre, np.angle(np.exp(1j * heading))


def test_frame_table_kinematics_match_hand_computed_values_on_a_circle():
    fps, radius, omega = 30.0, 5.0, 0.1
    coords, centre, heading = _circle(40, radius, omega)
    states = np.r_[-1, -1, np.zeros(18, int), np.ones(20, int)]
    table = frame_table(states, coords, fps, anterior=0, posterior=2, smooth_sigma=0)
    assert list(table.columns) == [
        "session",
        "individual",
        "group",
        "frame",
        "time",
        "syllable",
        "onset",
        "centroid_x",
        "centroid_y",
        "heading",
        "speed",
        "angular_velocity",
    ]
    inner = table.iloc[2:-1]
    # central difference of a point on a circle: chord / 2 frames = R sin(omega) per frame
    np.testing.assert_allclose(inner["speed"], radius * np.sin(omega) * fps, rtol=1e-9)
    np.testing.assert_allclose(inner["angular_velocity"], omega * fps, rtol=1e-9)
    np.testing.assert_allclose(inner["heading"], heading[2:-1], atol=1e-12)
    np.testing.assert_allclose(inner[["centroid_x", "centroid_y"]], centre[2:-1], atol=1e-12)
    # the last frame: a one-sided difference, a full chord per frame
    assert table["speed"].iloc[-1] == pytest.approx(2 * radius * np.sin(omega / 2) * fps)
    np.testing.assert_allclose(table["time"], np.arange(40) / fps)
    assert table["onset"].tolist() == [False, False, True] + [False] * 17 + [True] + [False] * 19
    assert table.loc[:1, ["heading", "speed", "angular_velocity", "centroid_x"]].isna().all().all()


def test_frame_table_heading_wraps_and_sessions_and_nan_keypoints():
    fps, omega = 10.0, 0.4  # turns several times: the heading crosses +-pi
    coords, _, heading = _circle(60, 3.0, omega)
    coords[30, 1] = np.nan
    starts = np.zeros(60, bool)
    starts[25] = True
    table = frame_table(
        np.zeros(60, int),
        coords,
        fps,
        posterior=2,
        session_starts=starts,
        groups=["a", "b"],
        session_names=["s1", "s2"],
        individuals=["m1", "m1"],
        smooth_sigma=0,
    )
    assert table["heading"].dropna().between(-np.pi, np.pi).all()
    assert table["session"].tolist() == ["s1"] * 25 + ["s2"] * 35
    assert (
        table["group"].iloc[-1] == "b"
        and table["frame"].iloc[25] == 0
        and table["time"].iloc[25] == 0
    )
    assert (
        table["onset"].sum() == 2
    )  # one instance per session: a run never crosses a session start
    # the missing keypoint gives NaN at its frame and at its neighbours' central differences
    assert np.isnan(
        table.loc[30, ["centroid_x", "heading", "speed", "angular_velocity"]].astype(float)
    ).all()
    assert np.isnan(table.loc[[29, 31], "speed"]).all()
    ok = table["angular_velocity"].notna()
    np.testing.assert_allclose(table.loc[ok, "angular_velocity"], omega * fps, rtol=1e-9)
    # smoothing a constant turn keeps it constant away from the session ends
    smooth = frame_table(
        np.zeros(60, int), _circle(60, 3.0, omega)[0], fps, posterior=2, smooth_sigma=1.5
    )
    np.testing.assert_allclose(smooth["angular_velocity"].iloc[10:-10], omega * fps, rtol=1e-6)


def test_frame_table_from_results_objects_and_errors():
    from behavhmm.workflows import KeypointResults

    rng = np.random.default_rng(0)
    results = []
    for name, n in (("a", 30), ("b", 20)):
        t = np.arange(n)
        results.append(
            KeypointResults(
                name=name,
                source=None,
                fps=20.0,
                timestamps=t / 20.0,
                syllables=rng.integers(0, 3, n).astype(np.int32),
                latents=np.zeros((n, 2)),
                centroid=np.c_[2.0 * t, 0 * t],
                heading=np.full(n, 0.5),
                probabilities=np.zeros((n, 3)),
            )
        )
    table = frame_table(results, groups=["g1", "g2"], smooth_sigma=0)
    assert table["session"].unique().tolist() == ["a", "b"]
    np.testing.assert_allclose(table["speed"], 40.0)
    np.testing.assert_allclose(table["angular_velocity"], 0.0)
    with pytest.raises(ValueError, match="fps must be a positive"):
        frame_table(np.zeros(5, int), np.zeros((5, 2, 2)), 0.0)
    with pytest.raises(ValueError, match="coordinates must have shape"):
        frame_table(np.zeros(5, int), np.zeros((4, 2, 2)), 30.0)
    with pytest.raises(ValueError, match="groups must hold one entry per session"):
        frame_table(results, groups=["g1"])


def _random_table(rng, n_sessions=6, n=300):
    states, coords, starts, groups = [], [], [], []
    for i in range(n_sessions):
        runs = rng.integers(2, 15, size=n)
        z = np.repeat(rng.integers(0, 5, size=n), runs)[:n]
        z[:2] = -1
        states.append(z)
        walk = np.cumsum(rng.normal(size=(n, 1, 2)), axis=0) + rng.normal(scale=0.5, size=(n, 4, 2))
        coords.append(walk)
        groups.append("ctrl" if i % 2 else "drug")
    z = np.concatenate(states)
    starts = np.arange(n_sessions) * n
    return frame_table(
        z,
        np.concatenate(coords),
        30.0,
        session_starts=starts,
        groups=groups,
        session_names=[f"s{i}" for i in range(n_sessions)],
    )


def test_syllable_stats_match_pandas_groupby(rng):
    table = _random_table(rng)
    stats = syllable_stats(table, n_states=6)
    assert len(stats) == 6 * 6  # every session x syllable, syllable 5 never used
    unused = stats[stats["syllable"] == 5]
    assert (unused["frequency"] == 0).all() and unused["duration_mean"].isna().all()
    lab = table[table["syllable"] >= 0].copy()
    lab["run"] = lab["onset"].cumsum()
    runs = lab.groupby(["session", "syllable", "run"]).size().rename("frames").reset_index()
    seconds = lab.groupby("session").size() / 30.0
    expected_n = runs.groupby(["session", "syllable"]).size()
    got = stats.set_index(["session", "syllable"])
    for (session, syllable), count in expected_n.items():
        row = got.loc[(session, syllable)]
        assert row["n_instances"] == count
        assert row["frequency"] == pytest.approx(count / seconds[session])
        assert row["usage"] == pytest.approx(count / expected_n[session].sum())
        durations = runs.query("session == @session and syllable == @syllable")["frames"] / 30.0
        assert row["duration_mean"] == pytest.approx(durations.mean())
        assert row["duration_median"] == pytest.approx(durations.median())
    kin = lab.groupby(["session", "syllable"])["speed"].agg(["mean", "std", "min", "max"])
    for how in ("mean", "std", "min", "max"):
        np.testing.assert_allclose(got.loc[kin.index, f"speed_{how}"], kin[how])
    np.testing.assert_allclose(stats.groupby("session")["usage"].sum(), 1.0)
    assert set(stats["group"]) == {"ctrl", "drug"}
    with pytest.raises(ValueError, match="lacks the columns"):
        syllable_stats(table.drop(columns="onset"))


def test_compare_labelings_of_a_permutation_is_perfect_and_of_noise_is_not(rng):
    from sklearn.metrics import adjusted_rand_score

    from behavhmm.analysis import compare_labelings

    a = np.repeat(rng.integers(0, 6, 200), rng.integers(1, 10, 200))
    a[:3] = -1
    perm = rng.permutation(6)
    b = np.where(a >= 0, perm[np.maximum(a, 0)], -1)
    out = compare_labelings(a, b)
    assert out["adjusted_rand"] == pytest.approx(1.0) and out["nmi"] == pytest.approx(1.0)
    assert out["accuracy"] == 1.0 and out["n_frames"] == int((a >= 0).sum())
    confusion = out["confusion"]
    assert np.count_nonzero(confusion - np.diag(np.diag(confusion))) == 0
    np.testing.assert_array_equal(np.diag(confusion), np.bincount(a[a >= 0], minlength=6))
    np.testing.assert_array_equal(out["matching"], perm)
    noisy = b.copy()
    flip = rng.random(len(b)) < 0.3
    noisy[flip & (b >= 0)] = rng.integers(0, 6, int((flip & (b >= 0)).sum()))
    worse = compare_labelings(a, noisy)
    assert worse["adjusted_rand"] < 0.9 and worse["accuracy"] < 1.0
    ok = a >= 0
    assert worse["adjusted_rand"] == pytest.approx(adjusted_rand_score(a[ok], noisy[ok]))
    with pytest.raises(ValueError, match="same length"):
        compare_labelings(a, b[:-1])


def test_compare_groups_equals_scipy_and_statsmodels_on_the_same_numbers(rng):
    sp = pytest.importorskip("scikit_posthocs")
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    from scipy import stats as st

    from behavhmm.analysis import compare_groups

    rows = []
    for g, shift in (("a", 0.0), ("b", 0.0), ("c", 1.5)):
        for s in range(5):
            for k in range(4):
                rows.append((g, f"{g}{s}", k, rng.normal(loc=shift * (k == 0))))
    stats = pd.DataFrame(rows, columns=["group", "session", "syllable", "frequency"])
    table = compare_groups(stats, "frequency")
    omni = table[table["comparison"] == "omnibus"].set_index("syllable")
    expected_p = []
    for k in range(4):
        block = stats[stats["syllable"] == k]
        samples = [block.loc[block["group"] == g, "frequency"].to_numpy() for g in "abc"]
        res = st.kruskal(*samples)
        assert omni.loc[k, "statistic"] == pytest.approx(res.statistic)
        assert omni.loc[k, "p_value"] == pytest.approx(res.pvalue)
        expected_p.append(res.pvalue)
        dunn = sp.posthoc_dunn(
            stats.query("syllable == @k"), val_col="frequency", group_col="group"
        )
        pairs = table.query("comparison == 'posthoc' and syllable == @k").set_index(
            ["group1", "group2"]
        )
        for a, b in (("a", "b"), ("a", "c"), ("b", "c")):
            assert pairs.loc[(a, b), "p_value"] == pytest.approx(dunn.loc[a, b])
    np.testing.assert_allclose(
        omni["p_adjusted"], multitest.multipletests(expected_p, method="fdr_bh")[1]
    )
    post = table[table["comparison"] == "posthoc"]
    np.testing.assert_allclose(
        post["p_adjusted"], multitest.multipletests(post["p_value"], method="fdr_bh")[1]
    )
    assert omni.loc[0, "significant"]  # the shifted syllable
    # Welch's t-test and ANOVA with a permutation p-value
    welch = compare_groups(
        stats, method="anova", posthoc="ttest", correction="bonferroni", n_permutations=199
    )
    block = stats[stats["syllable"] == 0]
    k0 = [block.loc[block["group"] == g, "frequency"].to_numpy() for g in "abc"]
    row = welch.query(
        "comparison == 'posthoc' and syllable == 0 and group1 == 'a' and group2 == 'c'"
    ).iloc[0]
    assert row["statistic"] == pytest.approx(st.ttest_ind(k0[0], k0[2], equal_var=False).statistic)
    omni0 = welch.query("comparison == 'omnibus' and syllable == 0").iloc[0]
    assert omni0["statistic"] == pytest.approx(st.f_oneway(*k0).statistic)
    assert 1 / 200 <= omni0["p_value"] <= 0.05
    with pytest.raises(ValueError, match="at least two groups"):
        compare_groups(stats[stats["group"] == "a"])
    with pytest.raises(ValueError, match="method must be"):
        compare_groups(stats, method="chi2")


def test_plot_syllable_stats_marks_significant_syllables(rng):
    pytest.importorskip("matplotlib")
    pytest.importorskip("scikit_posthocs")
    import matplotlib

    matplotlib.use("Agg")
    from behavhmm.analysis import compare_groups
    from behavhmm.plotting import plot_syllable_stats

    stats = syllable_stats(_random_table(rng))
    stats.loc[(stats["group"] == "drug") & (stats["syllable"] == 1), "frequency"] += 5.0
    tests = compare_groups(stats, correction=None, posthoc=None)
    ax = plot_syllable_stats(stats, tests=tests, alpha=0.2)
    marks = [t for t in ax.texts if t.get_text() == "*"]
    significant = tests.query("comparison == 'omnibus' and p_adjusted < 0.2")["syllable"].tolist()
    assert 1 in significant and len(marks) == len(significant)
    assert len(ax.get_legend().get_texts()) == 2
    import matplotlib.pyplot as plt

    plt.close("all")


def test_transition_matrix_columns_and_per_group():
    from behavhmm.analysis import transition_matrix

    z = np.array([0, 0, 1, 2, 2, 0, 1, 1, 2, 0, 2])
    starts = [0, 5]
    counts = transition_matrix(z, starts, normalize=None)
    # session 1: 0->1, 1->2; session 2: 0->1, 1->2, 2->0, 0->2
    np.testing.assert_array_equal(counts, [[0, 2, 1], [0, 0, 2], [1, 0, 0]])
    cols = transition_matrix(z, starts, normalize="columns")
    np.testing.assert_allclose(cols, counts / counts.sum(axis=0, keepdims=True))
    per = transition_matrix(z, starts, normalize=None, groups=["x", "y"])
    assert list(per) == ["x", "y"]
    np.testing.assert_array_equal(per["x"], [[0, 1, 0], [0, 0, 1], [0, 0, 0]])
    np.testing.assert_array_equal(per["x"] + per["y"], counts)
    with pytest.raises(ValueError, match="normalize must be"):
        transition_matrix(z, normalize="diag")
    with pytest.raises(ValueError, match="one label per session"):
        transition_matrix(z, starts, groups=["x"])


def test_transition_graphs_sizes_and_difference():
    pytest.importorskip("networkx")
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from behavhmm.analysis import transition_graph
    from behavhmm.plotting import (
        graph_layout,
        plot_transition_graph,
        plot_transition_graph_difference,
    )

    a = np.array([[0, 0.7, 0.3], [0.5, 0, 0.5], [0.02, 0.98, 0]])
    graph = transition_graph(a, [0.5, 0.3, 0.2], threshold=0.05)
    assert sorted(graph.edges) == [(0, 1), (0, 2), (1, 0), (1, 2), (2, 1)]
    assert graph.nodes[0]["usage"] == 0.5 and graph.edges[2, 1]["weight"] == 0.98
    pos = graph_layout(graph, "spring")
    ax = plot_transition_graph(a, [0.5, 0.3, 0.2], pos=pos)
    sizes = ax.collections[0].get_sizes()
    np.testing.assert_allclose(sizes, 600 * np.array([0.5, 0.3, 0.2]) / 0.5)
    b = a.copy()
    b[0] = [0, 0.2, 0.8]
    ax = plot_transition_graph_difference(a, b, [0.5, 0.3, 0.2], [0.4, 0.3, 0.3], threshold=0.1)
    assert "red: more in b" in ax.get_title()
    diff = transition_graph(b - a, threshold=0.1)
    assert sorted(diff.edges) == [(0, 1), (0, 2)] and diff.edges[0, 1]["weight"] < 0
    plt.close("all")


def _walkers(rng, n_instances=40, length=12):
    """Keypoints of instances of two syllables: 0 walks forward at 1 unit/frame, 1 turns on the
    spot.

    Each instance starts at a random place and heading; three keypoints on the body axis (nose,
    centre, tail).
    """
    coords, states = [], []
    for i in range(n_instances):
        k = i % 2
        start, heading = rng.uniform(-50, 50, 2), rng.uniform(-np.pi, np.pi)
        t = np.arange(length)
        h = heading + (0.2 * t if k else 0 * t)
        centre = start + (
            np.c_[np.cos(heading), np.sin(heading)] * t[:, None] if k == 0 else 0 * t[:, None]
        )
        direction = np.c_[np.cos(h), np.sin(h)]
        coords.append(np.stack([centre + 2 * direction, centre, centre - 2 * direction], axis=1))
        states.append(np.full(length, k))
    return np.concatenate(states), np.concatenate(coords), np.arange(n_instances) * length


def test_typical_trajectories_in_the_onset_body_frame_and_similarity(rng):
    from behavhmm.analysis import (
        cluster_syllables,
        merge_groups,
        syllable_similarity,
        typical_trajectories,
    )

    states, coords, starts = _walkers(rng)
    traj = typical_trajectories(
        states, coords, starts, anterior=0, posterior=2, pre=0, post=8, min_instances=5
    )
    assert traj.trajectories.shape == (2, 9, 3, 2) and traj.n_instances.tolist() == [20, 20]
    # syllable 0: the centre walks along +x from the origin; the nose stays 2 units ahead
    np.testing.assert_allclose(
        traj.trajectories[0, :, 1], np.c_[np.arange(9), np.zeros(9)], atol=1e-9
    )
    np.testing.assert_allclose(
        traj.trajectories[0, :, 0], np.c_[np.arange(9) + 2, np.zeros(9)], atol=1e-9
    )
    # syllable 1: the nose turns counter-clockwise by 0.2 rad per frame about a still centre
    angles = 0.2 * np.arange(9)
    np.testing.assert_allclose(
        traj.trajectories[1, :, 0], 2 * np.c_[np.cos(angles), np.sin(angles)], atol=1e-9
    )
    # a window never crosses a session: pre=1 drops every instance (each starts its session)
    none = typical_trajectories(states, coords, starts, posterior=2, pre=1, post=3)
    assert none.n_instances.tolist() == [0, 0] and np.isnan(none.trajectories).all()
    d = syllable_similarity(traj)
    assert d[0, 0] == 0 and d[0, 1] == d[1, 0] > 1
    tree, kept = cluster_syllables(d)
    assert kept.tolist() == [0, 1] and tree.shape == (1, 4)
    assert (
        merge_groups(d, threshold=d[0, 1] + 1) == [[0, 1]] and merge_groups(d, threshold=0.5) == []
    )


def test_merge_syllables_maps_every_output_and_survives_the_model_file(rng, tmp_path):
    from behavhmm import load_model
    from behavhmm.analysis import apply_syllable_mapping, merge_syllables, syllable_mapping
    from behavhmm.datasets import demo_arhmm, simulate_demo_sessions

    model = demo_arhmm(4, 2, 1, seed=0)
    X, _, starts, _ = simulate_demo_sessions(model, 2, 300, seed=1)
    merged = merge_syllables(model, {3: 0, 2: 1})
    assert merged.syllable_mapping_.tolist() == [0, 1, 1, 0] and not hasattr(
        model, "syllable_mapping_"
    )
    z = model.predict(X, session_starts=starts)
    zm = merged.predict(X, session_starts=starts)
    np.testing.assert_array_equal(zm, apply_syllable_mapping(z, [0, 1, 1, 0]))
    assert set(np.unique(zm[zm >= 0])) <= {0, 1}
    p, pm = (
        model.smooth_proba(X, session_starts=starts),
        merged.smooth_proba(X, session_starts=starts),
    )
    ok = np.isfinite(p).all(axis=1)
    np.testing.assert_allclose(pm[ok][:, 0], p[ok][:, 0] + p[ok][:, 3], rtol=1e-6)
    assert np.all(pm[ok][:, 2:] == 0)
    assert merged.score(X, session_starts=starts) == model.score(
        X, session_starts=starts
    )  # dynamics unchanged
    merged.save_params(tmp_path / "merged.npz")
    again = load_model(tmp_path / "merged.npz")
    np.testing.assert_array_equal(again.syllable_mapping_, [0, 1, 1, 0])
    np.testing.assert_array_equal(again.predict(X, session_starts=starts), zm)
    # merging again composes; groups take their smallest label
    assert merge_syllables(merged, [[0, 1]]).syllable_mapping_.tolist() == [0, 0, 0, 0]
    assert syllable_mapping([[2, 5], [1, 3]], 6).tolist() == [0, 1, 2, 1, 4, 2]
    with pytest.raises(ValueError, match="in two groups"):
        syllable_mapping([[1, 2], [2, 3]], 4)
    with pytest.raises(ValueError, match="must lie in"):
        syllable_mapping({1: 7}, 4)


def test_merged_labels_keep_every_table_consistent(rng):
    from behavhmm.analysis import apply_syllable_mapping, syllable_usage, transition_matrix

    table = _random_table(rng)
    mapping = np.array([0, 1, 0, 3, 1])
    merged = table.copy()
    merged["syllable"] = apply_syllable_mapping(table["syllable"].to_numpy(), mapping)
    # onsets of the merged labels: a run of 0 then 2 is one instance of the merged 0
    starts = np.flatnonzero(merged["frame"].to_numpy() == 0)
    z = merged["syllable"].to_numpy()
    again = frame_table(
        z,
        np.zeros((len(z), 2, 2)),
        30.0,
        session_starts=starts,
        groups=table.groupby("session", sort=False)["group"].first().tolist(),
        session_names=list(table["session"].unique()),
    )
    before, after = syllable_stats(table, n_states=5), syllable_stats(again, n_states=5)
    b = before.set_index(["session", "syllable"])["frame_fraction"].unstack()
    a = after.set_index(["session", "syllable"])["frame_fraction"].unstack()
    np.testing.assert_allclose(a[0], b[0] + b[2])
    np.testing.assert_allclose(a[1], b[1] + b[4])
    assert (a[[2, 4]] == 0).all().all()
    assert (
        after.groupby("session")["n_instances"].sum()
        <= before.groupby("session")["n_instances"].sum()
    ).all()
    # usage and frame-to-frame transitions of the merged labels are the originals' summed over
    # blocks
    zo = table["syllable"].to_numpy()
    onto = np.zeros((5, 5))
    onto[np.arange(5), mapping] = 1
    np.testing.assert_allclose(
        syllable_usage(z, starts, n_states=5, normalize=False).to_numpy(),
        syllable_usage(zo, starts, n_states=5, normalize=False).to_numpy() @ onto,
    )
    t_before = transition_matrix(zo, starts, n_states=5, normalize=None, collapse_runs=False)
    t_after = transition_matrix(z, starts, n_states=5, normalize=None, collapse_runs=False)
    np.testing.assert_allclose(t_after, onto.T @ t_before @ onto)


def test_trajectory_figures_dendrogram_and_grid_movie(rng, tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    from behavhmm.analysis import syllable_similarity, typical_trajectories
    from behavhmm.plotting import (
        animate_typical_trajectories,
        grid_movie,
        plot_syllable_dendrogram,
        plot_typical_trajectories,
    )

    states, coords, starts = _walkers(rng)
    traj = typical_trajectories(states, coords, starts, posterior=2, pre=0, post=8, fps=10.0)
    fig = plot_typical_trajectories(traj, edges=[(0, 1), (1, 2)], n_poses=3)
    assert [ax.get_title() for ax in fig.axes] == ["syllable 0 (n=20)", "syllable 1 (n=20)"]
    assert len(fig.axes[0].collections) == 3  # one scatter per pose
    gif = animate_typical_trajectories(traj, tmp_path / "typical.gif")
    with Image.open(gif) as im:
        assert im.n_frames == 9
    movie = grid_movie(
        states, coords, 1, tmp_path / "grid.gif", starts, posterior=2, pre=0, post=5, n_examples=4
    )
    with Image.open(movie) as im:
        assert im.n_frames == 6
    assert not list(tmp_path.glob(".*partial*"))
    with pytest.raises(ValueError, match="no instance"):
        grid_movie(states, coords, 1, tmp_path / "none.gif", starts, posterior=2, pre=3)
    with pytest.raises(ValueError, match=".gif or .mp4"):
        animate_typical_trajectories(traj, tmp_path / "typical.avi")
    ax = plot_syllable_dendrogram(syllable_similarity(traj))
    assert [t.get_text() for t in ax.get_xticklabels()] in (["0", "1"], ["1", "0"])
    plt.close("all")


def test_frame_table_from_a_fitted_keypoint_model_and_missing_extra_message(monkeypatch):
    from types import SimpleNamespace

    from behavhmm.analysis import _optional

    t = np.arange(10.0)
    model = SimpleNamespace(
        states_=np.r_[-1, np.zeros(9, np.int32)],
        centroids_=np.c_[3 * t, 4 * t],
        headings_=np.full(10, np.pi / 4),
    )
    table = frame_table(model, fps=2.0, session_starts=[0, 5], smooth_sigma=0)
    assert table["session"].tolist() == [0] * 5 + [1] * 5
    np.testing.assert_allclose(table["speed"].iloc[1:], 10.0)  # 5 units per frame at 2 fps
    assert np.isnan(table["speed"].iloc[0]) and table["onset"].sum() == 2

    def refuse(name):
        raise ImportError(name)

    monkeypatch.setattr(_optional.importlib, "import_module", refuse)
    with pytest.raises(ImportError, match=r"pip install 'behavhmm\[analysis\]'"):
        _optional.optional_import("networkx")
