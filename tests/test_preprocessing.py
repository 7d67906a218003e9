"""Preprocessing: interpolation within sessions, outliers, egocentric alignment, PCA, scaling, "
"scree plot."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from behavhmm.preprocessing import (
    allocentric_from_egocentric,
    apply_pca,
    egocentric_align,
    fit_pca,
    interpolate_nans,
    load_pca,
    pca_from_arrays,
    pca_to_arrays,
    remove_outliers,
    save_pca,
    whiten,
    zscore,
)

OPENFIELD = "pose-dlc-openfield-mouse/m3v1mp4DLC_resnet50_openfieldAug20shuffle1_30000.h5"
DEEPOF_ONE = "pose-deepof-mice/testDLC_square_arena.h5"


def _rotation_z(angle):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _walking_animal(rng, n_time_bins=600, n_dims=2, n_sessions=1):
    """A rigid-ish body (nose on +x) that turns and walks, with small pose noise; returns "
    "keypoints, truth."""
    body = np.array(
        [[3.0, 0.0, 1.0], [1.0, 1.0, 1.2], [1.0, -1.0, 1.2], [0.0, 0.0, 1.0], [-3.0, 0.0, 0.5]]
    )
    body = body[:, :n_dims]
    heading = np.cumsum(rng.normal(0, 0.05, size=n_time_bins)) + rng.uniform(-np.pi, np.pi)
    centre = np.cumsum(rng.normal(0, 0.5, size=(n_time_bins, n_dims)), axis=0) + 100.0
    posture = body + rng.normal(0, 0.05, size=(n_time_bins, *body.shape))
    rot = np.stack([_rotation_z(a)[:n_dims, :n_dims] for a in heading])
    keypoints = np.einsum("tij,tkj->tki", rot, posture) + centre[:, None, :]
    return keypoints, heading, centre, posture


# --- interpolation --------------------------------------------------------------------------------


def test_interpolation_is_linear_with_edge_and_gap_options():
    x = np.array([np.nan, 1.0, np.nan, np.nan, 4.0, np.nan, np.nan, np.nan, np.nan, 9.0, np.nan])
    np.testing.assert_allclose(interpolate_nans(x), [1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9])
    np.testing.assert_allclose(
        interpolate_nans(x, edge="nan"), [np.nan, 1, 2, 3, 4, 5, 6, 7, 8, 9, np.nan]
    )
    np.testing.assert_allclose(
        interpolate_nans(x, max_gap=3), [1, 1, 2, 3, 4, np.nan, np.nan, np.nan, np.nan, 9, 9]
    )
    with pytest.raises(ValueError, match="edge must be one of"):
        interpolate_nans(x, edge="linear")
    with pytest.raises(ValueError, match="max_gap must be a positive integer"):
        interpolate_nans(x, max_gap=0)


def test_interpolation_never_crosses_a_session_start():
    x = np.array([0.0, 1.0, np.nan, np.nan, 100.0, np.nan, 102.0])
    starts = np.zeros(7, bool)
    starts[[0, 4]] = True
    out = interpolate_nans(x, session_starts=starts)
    # without sessions the gap would ramp up towards 100; with them it holds session 0's last value
    np.testing.assert_allclose(out, [0, 1, 1, 1, 100, 101, 102])
    assert not np.allclose(interpolate_nans(x), out)
    np.testing.assert_allclose(interpolate_nans(x, session_starts=[0, 4]), out)


@settings(max_examples=25, deadline=None)
@given(
    data=st.lists(st.one_of(st.none(), st.floats(-100, 100)), min_size=2, max_size=40),
    cuts=st.lists(st.integers(1, 39), max_size=4),
    edge=st.sampled_from(["nearest", "nan"]),
)
def test_concatenated_sessions_equal_separate_runs(data, cuts, edge):
    x = np.array([np.nan if v is None else v for v in data])
    cuts = sorted({c for c in cuts if c < len(x)})
    bounds = [0, *cuts, len(x)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # all-NaN sessions
        together = interpolate_nans(x[:, None], session_starts=[0, *cuts], edge=edge)
        apart = np.concatenate(
            [
                interpolate_nans(x[a:b, None], edge=edge)
                for a, b in zip(bounds[:-1], bounds[1:], strict=True)
            ]
        )
    np.testing.assert_array_equal(together, apart)


def test_interpolation_of_keypoints_and_pynapple_sessions(rng):
    nap = pytest.importorskip("pynapple")
    keypoints, *_ = _walking_animal(rng, n_time_bins=200, n_dims=3)
    holed = keypoints.copy()
    holed[50:53, 2] = np.nan
    holed[99, 1, 0] = np.nan
    holed[100:102, 4] = np.nan  # the first frames of session 2
    t = np.r_[np.arange(100), np.arange(100) + 1000.0] / 30
    tsd = nap.TsdTensor(
        t=t, d=holed, time_support=nap.IntervalSet(start=[t[0], t[100]], end=[t[99], t[199]])
    )
    out = interpolate_nans(tsd)
    assert isinstance(out, nap.TsdTensor) and np.array_equal(out.t, tsd.t)
    values = np.asarray(out.values)
    ramp = holed[49, 2] + (holed[53, 2] - holed[49, 2]) * np.array([1, 2, 3])[:, None] / 4
    np.testing.assert_allclose(values[50:53, 2], ramp)
    assert values[99, 1, 0] == holed[98, 1, 0]  # session end: nearest, not towards session 2
    np.testing.assert_array_equal(values[100:102, 4], np.repeat(holed[102:103, 4], 2, axis=0))
    with pytest.warns(UserWarning, match="1 column"):
        interpolate_nans(np.array([[np.nan, 1.0], [np.nan, 2.0]]))


# --- outliers -------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_dims", [2, 3])
def test_injected_outliers_are_removed_and_interpolated_on_simulated_keypoints(rng, n_dims):
    keypoints, *_ = _walking_animal(rng, n_time_bins=1000, n_dims=n_dims, n_sessions=1)
    noisy = keypoints.copy()
    frames = rng.choice(np.arange(5, 995), size=30, replace=False)
    parts = rng.integers(0, 5, size=30)
    jump = rng.normal(size=(30, n_dims))
    noisy[frames, parts] += 40.0 * jump / np.linalg.norm(jump, axis=1, keepdims=True)
    conf = np.full((1000, 5), 0.9)
    result = remove_outliers(noisy, conf)
    injected = np.zeros((1000, 5), bool)
    injected[frames, parts] = True
    assert result.outliers[injected].all()
    assert result.outliers[~injected].sum() == 0
    np.testing.assert_array_equal(result.confidence, np.where(injected, 0.0, 0.9))
    error = np.linalg.norm(result.coordinates[injected] - keypoints[injected], axis=-1)
    assert error.max() < 2.0  # back within the body (the jump was 40)
    np.testing.assert_array_equal(result.coordinates[~injected], noisy[~injected])
    kept = remove_outliers(noisy, conf, interpolate=False)
    assert np.isnan(kept.coordinates[injected]).all()


@pytest.mark.shared_data
def test_injected_outliers_are_removed_from_real_dlc_keypoints(shared_data, rng):
    pytest.importorskip("tables")
    from behavhmm.io import load_keypoints

    sessions = load_keypoints([shared_data / DEEPOF_ONE, shared_data / OPENFIELD])
    sessions = [
        sessions[0].select_bodyparts(["Nose", "Left_ear", "Right_ear", "Center", "Tail_base"]),
        sessions[1],
    ]
    coords = np.concatenate([s.coordinates[:, :4] for s in sessions])
    starts = np.zeros(len(coords), bool)
    starts[[0, 451]] = True
    clean = remove_outliers(coords, session_starts=starts)
    noisy = coords.copy()
    frames = rng.choice(len(coords), size=40, replace=False)
    parts = rng.integers(0, 4, size=40)
    # a tracking error: the point jumps 150 px away from the mouse (a jump towards the body's
    # centre can land at an ordinary distance, which no distance-to-centre rule can see)
    away = coords[frames, parts] - np.median(coords[frames], axis=1)
    noisy[frames, parts] += 150.0 * away / np.linalg.norm(away, axis=1, keepdims=True)
    result = remove_outliers(noisy, session_starts=starts)
    injected = np.zeros(coords.shape[:2], bool)
    injected[frames, parts] = True
    assert result.outliers[injected].all()
    # the clean recordings have no point this rule calls an outlier; with only 4 keypoints a
    # 150 px jump also drags its frame's median, so a neighbour in the same frame may be flagged
    # too, but no point in any other frame is
    assert clean.outliers.sum() == 0
    extra = result.outliers & ~injected
    assert set(np.flatnonzero(extra.any(axis=1))) <= set(frames)
    assert extra.sum() <= 20
    error = np.linalg.norm(result.coordinates[injected] - coords[injected], axis=-1)
    assert np.median(error) < 10.0


def test_outlier_statistics_per_session_or_pooled(rng):
    small, *_ = _walking_animal(rng, n_time_bins=300)
    big, *_ = _walking_animal(rng, n_time_bins=300)
    big = (big - 100.0) * 8.0  # another camera: everything 8 times larger
    coords = np.concatenate([small, big])
    starts = np.zeros(600, bool)
    starts[[0, 300]] = True
    frames = rng.choice(np.arange(5, 295), size=10, replace=False)
    away = coords[frames, 0] - np.median(coords[frames], axis=1)
    # nose errors of 6 units away from the body: large for the small animal, usual for the big one
    coords[frames, 0] += 6.0 * away / np.linalg.norm(away, axis=1, keepdims=True)
    per_session = remove_outliers(coords, session_starts=starts).outliers
    pooled = remove_outliers(coords, session_starts=starts, per_session=False).outliers
    assert per_session[frames, 0].all() and per_session.sum() == 10
    assert not pooled[frames, 0].any()  # the big session's spread hides them
    with pytest.raises(ValueError, match="threshold must be a positive"):
        remove_outliers(coords, threshold=-1)
    with pytest.raises(ValueError, match=r"confidence must have shape"):
        remove_outliers(coords, np.ones((600, 4)))
    with pytest.raises(
        ValueError, match=r"coordinates must have shape \(n_time_bins, n_keypoints, n_dims\)"
    ):
        remove_outliers(coords[..., 0])


# --- egocentric alignment -------------------------------------------------------------------------


@pytest.mark.parametrize("n_dims", [2, 3])
def test_alignment_recovers_a_known_rotation_and_translation(rng, n_dims):
    keypoints, heading, centre, posture = _walking_animal(rng, n_time_bins=400, n_dims=n_dims)
    out = egocentric_align(keypoints, anterior=0, posterior=4)
    # the heading is the nose-minus-tail angle of the true posture, rotated by the true heading
    body_angle = np.arctan2(
        posture[:, 0, 1] - posture[:, 4, 1], posture[:, 0, 0] - posture[:, 4, 0]
    )
    np.testing.assert_allclose(
        np.angle(np.exp(1j * (out.heading - heading - body_angle))), 0, atol=1e-12
    )
    rot = np.stack([_rotation_z(a)[:n_dims, :n_dims] for a in heading])
    np.testing.assert_allclose(
        out.centroid, np.einsum("tij,tj->ti", rot, posture.mean(axis=1)) + centre
    )
    expected = np.einsum(
        "tij,tkj->tki",
        np.stack([_rotation_z(-b)[:n_dims, :n_dims] for b in body_angle]),
        posture - posture.mean(axis=1, keepdims=True),
    )
    np.testing.assert_allclose(out.coordinates, expected, atol=1e-9)
    # anterior on +x, posterior on -x, and the way back
    np.testing.assert_allclose(out.coordinates[:, 0, 1] - out.coordinates[:, 4, 1], 0, atol=1e-9)
    assert np.all(out.coordinates[:, 0, 0] > out.coordinates[:, 4, 0])
    if n_dims == 3:
        np.testing.assert_allclose(
            out.coordinates[..., 2], posture[..., 2] - posture[..., 2].mean(1, keepdims=True)
        )
    back = allocentric_from_egocentric(out.coordinates, out.centroid, out.heading)
    np.testing.assert_allclose(back, keypoints, atol=1e-9)


def test_alignment_by_name_with_several_points_and_session_aware_unwrapping():
    n = 80
    angle = np.linspace(0, 4 * np.pi, n)  # two full turns
    body = np.array([[2.0, 0.5], [2.0, -0.5], [-2.0, 0.0]])  # two "ears" in front, a tail behind
    rot = np.stack([[[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]] for a in angle])
    keypoints = np.einsum("tij,kj->tki", rot, body)
    out = egocentric_align(
        keypoints,
        anterior=["left_ear", "right_ear"],
        posterior="tail",
        bodyparts=["left_ear", "right_ear", "tail"],
    )
    assert np.all(np.abs(out.heading) <= np.pi)
    np.testing.assert_allclose(np.angle(np.exp(1j * (out.heading - angle))), 0, atol=1e-12)
    unwrapped = egocentric_align(keypoints, anterior=[0, 1], posterior=2, unwrap=True).heading
    np.testing.assert_allclose(unwrapped, angle, atol=1e-12)
    split = egocentric_align(
        keypoints, anterior=[0, 1], posterior=2, unwrap=True, session_starts=[0, 40]
    ).heading
    np.testing.assert_allclose(split[:40], angle[:40], atol=1e-12)
    assert -np.pi < split[40] <= np.pi  # the second session starts afresh
    np.testing.assert_allclose(np.diff(split[40:]), np.diff(angle[40:]), atol=1e-12)
    with pytest.raises(TypeError, match="pass bodyparts"):
        egocentric_align(keypoints, anterior="nose", posterior=2)
    with pytest.raises(ValueError, match="bodypart 'nose' not found"):
        egocentric_align(keypoints, anterior="nose", posterior=2, bodyparts=["a", "b", "c"])
    with pytest.raises(ValueError, match="out of range for 3 keypoints"):
        egocentric_align(keypoints, anterior=5, posterior=2)
    with pytest.raises(ValueError, match="anterior and posterior must be different"):
        egocentric_align(keypoints, anterior=1, posterior=1)


@pytest.mark.shared_data
def test_alignment_puts_the_real_snout_on_plus_x(shared_data):
    pytest.importorskip("tables")
    from behavhmm.io import load_keypoints

    sessions = load_keypoints(shared_data / OPENFIELD, fps=30)
    coords, _ = sessions.to_pynapple()
    out = egocentric_align(
        coords, anterior="snout", posterior="tailbase", bodyparts=sessions.bodyparts
    )
    aligned = np.asarray(out.coordinates.values)
    snout, tail = aligned[:, 0], aligned[:, 3]
    np.testing.assert_allclose(snout[:, 1], tail[:, 1], atol=1e-9)
    assert np.all(snout[:, 0] > tail[:, 0])
    np.testing.assert_array_equal(out.heading.t, coords.t)
    # a mouse body is longer than wide: after alignment the spread is larger along x
    assert np.ptp(aligned[..., 0]) > np.ptp(aligned[..., 1])


# --- PCA ------------------------------------------------------------------------------------------


def _spectrum_data(rng, variances, n_samples=4000):
    q, _ = np.linalg.qr(rng.normal(size=(len(variances), len(variances))))
    return rng.normal(size=(n_samples, len(variances))) * np.sqrt(variances) @ q.T + 5.0


@pytest.mark.parametrize("target", [0.5, 0.8, 0.9, 0.97])
def test_variance_target_picks_the_fewest_components_that_reach_it(rng, target):
    X = _spectrum_data(rng, [8.0, 4.0, 2.0, 1.0, 0.5, 0.25, 0.1, 0.05])
    eigenvalues = np.sort(np.linalg.eigvalsh(np.cov(X.T)))[::-1]
    cumulative = np.cumsum(eigenvalues) / eigenvalues.sum()
    expected = int(np.argmax(cumulative > target)) + 1
    scores, pca = fit_pca(X, n_components=target)
    assert pca.n_components_ == expected and scores.shape == (4000, expected)
    assert cumulative[expected - 1] > target and (
        expected == 1 or cumulative[expected - 2] <= target
    )
    fixed_scores, fixed = fit_pca(X, n_components=3)
    assert fixed.n_components_ == 3
    np.testing.assert_allclose(fixed.explained_variance_, eigenvalues[:3], rtol=1e-10)


@pytest.mark.parametrize("whiten_scores", [False, True])
def test_pca_arrays_round_trip_reproduces_sklearn_exactly(rng, tmp_path, whiten_scores):
    keypoints, *_ = _walking_animal(rng, n_time_bins=500, n_dims=3)
    aligned = egocentric_align(keypoints, anterior=0, posterior=4).coordinates
    scores, pca = fit_pca(aligned, n_components=0.95, whiten=whiten_scores)
    np.testing.assert_allclose(
        scores, pca.transform(aligned.reshape(500, -1)), rtol=1e-12, atol=1e-12
    )
    arrays = pca_to_arrays(pca)
    assert all(isinstance(v, np.ndarray) and v.dtype != object for v in arrays.values())
    rebuilt = pca_from_arrays(arrays)
    new = rng.normal(size=(50, 15))
    np.testing.assert_array_equal(rebuilt.transform(new), pca.transform(new))
    np.testing.assert_array_equal(rebuilt.inverse_transform(scores), pca.inverse_transform(scores))
    path = save_pca(tmp_path / "pca", pca)
    assert path.suffix == ".npz"
    loaded = load_pca(path)
    np.testing.assert_array_equal(loaded.transform(new), pca.transform(new))
    np.testing.assert_allclose(apply_pca(loaded, aligned), scores, rtol=1e-12, atol=1e-12)


def test_pca_missing_frames_and_refused_inputs(rng, tmp_path):
    X = _spectrum_data(rng, [3.0, 2.0, 1.0], n_samples=200)
    X[10, 1] = np.nan
    scores, pca = fit_pca(X, n_components=None)
    assert np.isnan(scores[10]).all() and not np.isnan(np.delete(scores, 10, axis=0)).any()
    assert pca.n_samples_ == 199
    with pytest.raises(ValueError, match="must be in \\(0, 1\\)"):
        fit_pca(X, n_components=1.5)
    with pytest.raises(ValueError, match="between 1 and"):
        fit_pca(X, n_components=4)
    with pytest.raises(TypeError, match="n_components must be"):
        fit_pca(X, n_components="all")
    with pytest.raises(ValueError, match="complete frame"):
        fit_pca(np.full((3, 2), np.nan))
    with pytest.raises(ValueError, match="fitted on 3"):
        apply_pca(pca, np.zeros((2, 4)))
    arrays = pca_to_arrays(pca)
    del arrays["mean_"]
    with pytest.raises(ValueError, match=r"missing \['mean_'\]"):
        pca_from_arrays(arrays)
    arrays = pca_to_arrays(pca)
    arrays["mean_"] = np.zeros(5)
    with pytest.raises(ValueError, match=r"mean_ must have shape \(3,\)"):
        pca_from_arrays(arrays)
    np.savez(tmp_path / "evil.npz", components_=np.array([object()], dtype=object))
    with pytest.raises(ValueError, match="pickle"):
        load_pca(tmp_path / "evil.npz")  # object arrays are never unpickled
    with pytest.raises(TypeError, match="fitted sklearn.decomposition.PCA"):
        pca_to_arrays("pca")
    with pytest.raises(FileNotFoundError):
        load_pca(tmp_path / "none.npz")


# --- scaling --------------------------------------------------------------------------------------


def test_zscore_pooled_or_per_session(rng):
    a = rng.normal(3.0, 2.0, size=(300, 4))
    b = rng.normal(-5.0, 0.5, size=(200, 4))
    X = np.concatenate([a, b])
    X[7, 2] = np.nan
    pooled = zscore(X)
    np.testing.assert_allclose(np.nanmean(pooled, axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(np.nanstd(pooled, axis=0), 1, atol=1e-12)
    per = zscore(X, session_starts=[0, 300], per_session=True)
    for sl in (slice(0, 300), slice(300, 500)):
        np.testing.assert_allclose(np.nanmean(per[sl], axis=0), 0, atol=1e-12)
        np.testing.assert_allclose(np.nanstd(per[sl], axis=0), 1, atol=1e-12)
    assert np.isnan(per[7, 2]) and not np.allclose(pooled[300:], per[300:])
    keypoints = rng.normal(size=(50, 3, 2))
    assert zscore(keypoints).shape == (50, 3, 2)


def test_whitening_gives_identity_covariance_and_handles_rank(rng):
    X = _spectrum_data(rng, [9.0, 3.0, 1.0, 0.2], n_samples=1000)
    zca = whiten(X)
    np.testing.assert_allclose(np.cov(zca.T), np.eye(4), atol=1e-10)
    # ZCA stays close to the original axes: each column correlates most with its own input
    corr = np.corrcoef(zca.T, X.T)[:4, 4:]
    assert np.all(np.argmax(np.abs(corr), axis=1) == np.arange(4))
    pcs = whiten(X, method="pca")
    np.testing.assert_allclose(np.cov(pcs.T), np.eye(4), atol=1e-10)
    deficient = np.c_[X, X[:, 0] + X[:, 1]]  # rank 4 in 5 columns
    assert whiten(deficient, method="pca").shape == (1000, 4)
    per = whiten(X, session_starts=[0, 500], per_session=True)
    np.testing.assert_allclose(np.cov(per[500:].T), np.eye(4), atol=1e-10)
    with pytest.raises(ValueError, match="method must be one of"):
        whiten(X, method="cholesky")
    with pytest.raises(ValueError, match="per_session=True"):
        whiten(X, method="pca", per_session=True)


# --- scree plot -----------------------------------------------------------------------------------


def test_scree_plot_draws_bars_cumulative_line_and_target(rng):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from behavhmm.plotting import scree_plot

    _, pca = fit_pca(_spectrum_data(rng, [8.0, 4.0, 2.0, 1.0, 0.5]), n_components=None)
    fig, ax = plt.subplots()
    out = scree_plot(pca, ax=ax, target=0.9)
    assert out is ax
    heights = [p.get_height() for p in ax.patches]
    np.testing.assert_allclose(heights, pca.explained_variance_ratio_)
    line = ax.get_lines()[0]
    np.testing.assert_allclose(line.get_ydata(), np.cumsum(pca.explained_variance_ratio_))
    vertical = [ln for ln in ax.get_lines() if len(set(np.atleast_1d(ln.get_xdata()))) == 1]
    expected = int(np.argmax(np.cumsum(pca.explained_variance_ratio_) > 0.9)) + 1
    assert vertical and vertical[0].get_xdata()[0] == expected
    plt.close(fig)
    new_ax = scree_plot([0.5, 0.3, 0.2], max_components=2)
    assert len(new_ax.patches) == 2
    plt.close(new_ax.figure)
    with pytest.raises(ValueError, match="lie in \\[0, 1\\]"):
        scree_plot([1.5])
    with pytest.raises(ValueError, match="target must be"):
        scree_plot([0.5], target=2)
    with pytest.raises(TypeError, match="fitted sklearn PCA or an array"):
        scree_plot(object())


def test_pynapple_in_pynapple_out_with_epochs_as_sessions(rng):
    nap = pytest.importorskip("pynapple")
    from behavhmm.io import KeypointData, KeypointSessions

    first, *_ = _walking_animal(rng, n_time_bins=120)
    second, *_ = _walking_animal(rng, n_time_bins=80)
    second = second + 50.0
    sessions = KeypointSessions(
        [
            KeypointData(first, np.ones((120, 5)), list("abcde"), fps=20.0),
            KeypointData(second, np.ones((80, 5)), list("abcde"), fps=20.0),
        ]
    )
    coords, conf = sessions.to_pynapple()
    cleaned = remove_outliers(coords, conf)
    assert isinstance(cleaned.coordinates, nap.TsdTensor)
    assert isinstance(cleaned.confidence, nap.TsdFrame)
    aligned = egocentric_align(coords, anterior="a", posterior="e", bodyparts=sessions.bodyparts)
    assert isinstance(aligned.heading, nap.Tsd) and np.array_equal(aligned.heading.t, coords.t)
    scores, _ = fit_pca(aligned.coordinates, n_components=3)
    assert isinstance(scores, nap.TsdFrame) and len(scores.time_support) == 2
    # the epochs are sessions: per-session z-scoring centres each epoch on its own
    per = np.asarray(zscore(scores, per_session=True).values)
    np.testing.assert_allclose(per[:120].mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(per[120:].mean(axis=0), 0, atol=1e-12)
    centroid = np.asarray(zscore(aligned.centroid, per_session=True).values)
    np.testing.assert_allclose(centroid[120:].mean(axis=0), 0, atol=1e-12)
