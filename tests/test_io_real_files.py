"""Every loader on every real recording in ../shared/data, checked against the numbers in its "
"README."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from behavhmm.io import detect_format, load_keypoints

pd = pytest.importorskip("pandas")
pytest.importorskip("tables")

pytestmark = pytest.mark.shared_data

BSOID = "pose-bsoid-openfield-mouse/raw_clip{}DLC_resnet50_OpenFieldHighResApr8shuffle1_1030000"
OPENFIELD = "pose-dlc-openfield-mouse/m3v1mp4DLC_resnet50_openfieldAug20shuffle1_30000"
FLIES = "pose-sleap-courtship-flies/"
DEEPOF_ONE = "pose-deepof-mice/testDLC_square_arena.h5"
DEEPOF_TWO = "pose-deepof-mice/testDLC_h5_table_madlc.h5"
REACHING = "pose-dlc2kinematics-reaching/reachingDEMO_{}.h5"
GOLDEN = "dlc_golden_mouse/golden_mouseDLC_dlcrnetms5_golden_mouseOct19shuffle1_2000.h5"
MULTI_SHORT = "dlc_multi_mouse_short/m3v1mp4shortDLC_effnet_b0_multi_mouseApr12shuffle1_5_el"
FLY_NODES = [
    "head",
    "thorax",
    "abdomen",
    "wingL",
    "wingR",
    "forelegL4",
    "forelegR4",
    "midlegL4",
    "midlegR4",
    "hindlegL4",
    "hindlegR4",
    "eyeL",
    "eyeR",
]
DEEPOF_BODYPARTS = [
    "Nose",
    "Left_ear",
    "Right_ear",
    "Left_fhip",
    "Right_fhip",
    "Left_bhip",
    "Right_bhip",
    "Spine_1",
    "Center",
    "Spine_2",
    "Tail_base",
    "Tail_1",
    "Tail_2",
    "Tail_tip",
]


def _raw_dlc(path):
    """(frames, individuals, bodyparts, 3) straight from pandas, for comparisons."""
    return pd.read_hdf(path)


@pytest.mark.parametrize(
    ("relative", "expected"),
    [
        (BSOID.format(1) + ".h5", "deeplabcut"),
        (BSOID.format(1) + ".csv", "deeplabcut"),
        (OPENFIELD + ".nwb", "nwb"),
        (FLIES + "courtship_3000f.predictions.slp", "sleap"),
        (FLIES + "courtship_3000f.predictions.analysis.h5", "sleap"),
        (DEEPOF_TWO, "deeplabcut"),
        (REACHING.format("3D"), "deeplabcut"),
        (MULTI_SHORT + "_filtered.csv", "deeplabcut"),
    ],
)
def test_detect_format_on_real_files(shared_data, relative, expected):
    assert detect_format(shared_data / relative) == expected


def test_bsoid_h5_and_csv_agree_and_clips_become_sessions(shared_data):
    h5 = load_keypoints(shared_data / (BSOID.format(1) + ".h5"))
    csv = load_keypoints(shared_data / (BSOID.format(1) + ".csv"), format="dlc")
    (one,) = h5
    assert one.coordinates.shape == (7200, 6, 2)
    assert one.bodyparts == (
        "Snout",
        "Front Paw R",
        "Front Paw L",
        "Hind Paw R",
        "Hind Paw L",
        "Butt/Proximal Tail",
    )
    assert one.format == "deeplabcut" and one.fps is None and one.timestamps is None
    assert not np.isnan(one.coordinates).any()
    np.testing.assert_array_equal(csv[0].coordinates, one.coordinates)
    np.testing.assert_array_equal(csv[0].confidence, one.confidence)
    raw = pd.read_hdf(shared_data / (BSOID.format(1) + ".h5")).to_numpy().reshape(7200, 6, 3)
    np.testing.assert_array_equal(one.coordinates, raw[..., :2])
    np.testing.assert_array_equal(one.confidence, raw[..., 2])
    assert np.mean(one.confidence < 0.9) == pytest.approx(0.035, abs=0.0006)

    both = load_keypoints([shared_data / (BSOID.format(c) + ".h5") for c in (1, 2)], fps=60)
    assert len(both) == 2 and both.coordinates.shape == (14400, 6, 2)
    assert np.flatnonzero(both.session_starts).tolist() == [0, 7200]
    assert np.mean(both[1].confidence < 0.9) == pytest.approx(0.120, abs=0.0006)
    np.testing.assert_allclose(both[1].timestamps[:3], [0, 1 / 60, 2 / 60])


def test_openfield_nwb_matches_its_dlc_file_and_frames_are_not_seconds(shared_data):
    pytest.importorskip("pynwb")
    pytest.importorskip("ndx_pose")
    dlc = load_keypoints(shared_data / (OPENFIELD + ".h5"))[0]
    assert dlc.coordinates.shape == (2330, 4, 2) and dlc.bodyparts == (
        "snout",
        "leftear",
        "rightear",
        "tailbase",
    )
    low = dlc.confidence < 0.9
    assert low.mean() == pytest.approx(0.001, abs=0.0005)
    # the README says "ears only"; in fact 10 of the 11 low points are ears and 1 is the snout
    assert low.sum(axis=0).tolist() == [1, 5, 5, 0]

    with pytest.warns(UserWarning, match="frame numbers"):
        nwb = load_keypoints(shared_data / (OPENFIELD + ".nwb"))[0]
    assert nwb.individual == "ind1" and nwb.bodyparts == dlc.bodyparts
    assert nwb.fps is None and nwb.timestamps is None
    np.testing.assert_array_equal(nwb.frames, np.arange(2330))
    np.testing.assert_array_equal(nwb.coordinates, dlc.coordinates)
    np.testing.assert_array_equal(nwb.confidence, dlc.confidence)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # with fps there is nothing to warn about
        timed = load_keypoints(shared_data / (OPENFIELD + ".nwb"), fps=30)[0]
    assert timed.fps == 30.0
    np.testing.assert_allclose(timed.timestamps, np.arange(2330) / 30)


def test_sleap_slp_and_analysis_h5_agree(shared_data):
    pytest.importorskip("sleap_io")
    slp = load_keypoints(shared_data / FLIES / "courtship_3000f.predictions.slp")
    h5 = load_keypoints(shared_data / FLIES / "courtship_3000f.predictions.analysis.h5")
    assert slp.individuals == h5.individuals == ["track_0", "track_1"]
    assert slp.bodyparts == h5.bodyparts == tuple(FLY_NODES)
    assert slp.coordinates.shape == (6000, 13, 2)
    np.testing.assert_array_equal(slp.coordinates, h5.coordinates)
    missing = np.isnan(slp.coordinates[..., 0])
    assert missing.mean() == pytest.approx(0.020, abs=0.0005)
    worst = missing.mean(axis=0)
    assert FLY_NODES[int(np.argmax(worst))] == "hindlegR4" and worst.max() == pytest.approx(
        0.062, abs=0.0005
    )
    # scores: clipped to [0, 1], 0 where missing; the analysis file has none (ones where tracked)
    assert slp.confidence.max() <= 1.0 and np.all(slp.confidence[missing] == 0)
    assert np.median(slp.confidence[~missing]) == pytest.approx(0.79, abs=0.01)
    assert np.mean(slp.confidence < 0.5) == pytest.approx(
        0.12, abs=0.005
    )  # missing points count as 0
    np.testing.assert_array_equal(h5.confidence, (~missing).astype(float))


def test_sleap_user_labels_and_fragmented_tracks(shared_data):
    pytest.importorskip("sleap_io")
    clip = load_keypoints(shared_data / FLIES / "clip_1500f.slp", fps=25)
    assert clip.individuals == ["female", "male"] and clip.coordinates.shape == (3000, 13, 2)
    missing = np.isnan(clip.coordinates[..., 0])
    assert missing.mean() == pytest.approx(0.016, abs=0.0005)
    np.testing.assert_array_equal(
        clip.confidence, (~missing).astype(float)
    )  # user labels: no scores
    assert clip[1].timestamps[-1] == pytest.approx(1499 / 25)

    pair = load_keypoints(shared_data / FLIES / "centered_pair_predictions.slp")
    assert len(pair) == 27 and pair[0].coordinates.shape == (1100, 24, 2)
    assert np.isnan(pair.coordinates[..., 0]).mean() == pytest.approx(0.93, abs=0.005)
    two = load_keypoints(
        shared_data / FLIES / "centered_pair_predictions.slp", individuals=["1", "2"]
    )
    assert two.individuals == ["1", "2"]
    assert np.isnan(two.coordinates[..., 0]).mean() == pytest.approx(0.082, abs=0.001)
    assert two.bodyparts[:4] == ("head", "neck", "thorax", "abdomen")


def test_deepof_multi_animal_zeros_become_nan_and_bodyparts_reorder(shared_data):
    single = load_keypoints(shared_data / DEEPOF_ONE)
    assert single.bodyparts == tuple(DEEPOF_BODYPARTS) and single.coordinates.shape == (451, 14, 2)
    assert not np.isnan(single.coordinates).any()
    assert np.mean(single.confidence < 0.9) == pytest.approx(0.003, abs=0.001)

    raw = pd.read_hdf(shared_data / DEEPOF_TWO)
    file_order = raw.columns.get_level_values("bodyparts").unique().tolist()
    assert file_order != DEEPOF_BODYPARTS  # the quirk this test is about

    multi = load_keypoints(shared_data / DEEPOF_TWO, bodyparts=DEEPOF_BODYPARTS)
    assert multi.individuals == ["mouse_black_tail", "mouse_white_tail"]
    assert multi.bodyparts == tuple(DEEPOF_BODYPARTS) and multi.coordinates.shape == (200, 14, 2)
    missing = np.isnan(multi.coordinates[..., 0])
    assert missing.mean() == pytest.approx(0.25, abs=0.005)
    assert np.all(multi.confidence[missing] == 0)
    per_part = dict(zip(DEEPOF_BODYPARTS, missing.mean(axis=0), strict=True))
    for name in ("Spine_1", "Left_fhip", "Right_fhip"):
        assert per_part[name] == pytest.approx(0.5, abs=0.02)
    # every value sits under its own name, whatever the column order
    scorer = raw.columns.get_level_values(0)[0]
    nose_y = raw[(scorer, "mouse_white_tail", "Nose", "y")].to_numpy()
    got = multi.select(individuals=["mouse_white_tail"])[0].coordinates[:, 0, 1]
    np.testing.assert_array_equal(got[~np.isnan(got)], nose_y[~np.isnan(got)])
    zeros = (raw.to_numpy().reshape(100, 2, 14, 3) == 0).all(axis=-1)
    assert zeros.mean() == pytest.approx(missing.mean())

    # two files listing the same bodyparts in different orders share one axis automatically
    together = load_keypoints([shared_data / DEEPOF_ONE, shared_data / DEEPOF_TWO])
    assert together.bodyparts == tuple(DEEPOF_BODYPARTS) and together.coordinates.shape == (
        651,
        14,
        2,
    )
    np.testing.assert_array_equal(together.coordinates[451:551], multi.coordinates[:100])


def test_reaching_2d_and_3d(shared_data):
    two = load_keypoints(shared_data / REACHING.format("2D"))[0]
    three = load_keypoints(shared_data / REACHING.format("3D"))[0]
    assert two.coordinates.shape == (800, 33, 2) and three.coordinates.shape == (800, 33, 3)
    assert two.bodyparts == three.bodyparts and two.bodyparts[:2] == ("nose", "Left_wrist")
    np.testing.assert_array_equal(two.frames, np.arange(42150, 42950))
    assert not np.isnan(two.coordinates).any()
    assert np.mean(two.confidence < 0.8) == pytest.approx(0.18, abs=0.005)
    assert np.mean(two.confidence[:, two.bodyparts.index("Left_elbow")] < 0.8) == 1.0
    missing = np.isnan(three.coordinates).any(axis=2)
    assert missing.mean() == pytest.approx(0.175, abs=0.001)
    for name in ("Left_elbow", "L_Finger4"):
        assert missing[:, three.bodyparts.index(name)].all()
    np.testing.assert_array_equal(
        three.confidence, (~missing).astype(float)
    )  # 3-D DLC has no likelihood
    assert np.nanmin(three.coordinates) > -3.5 and np.nanmax(three.coordinates) < 11.5


def test_golden_mouse_and_the_tail_free_subset(shared_data):
    (mouse,) = load_keypoints(shared_data / GOLDEN, fps=30)
    assert mouse.coordinates.shape == (4860, 27, 2) and not np.isnan(mouse.coordinates).any()
    assert (
        mouse.bodyparts[:3] == ("nose", "left_ear", "right_ear")
        and mouse.bodyparts[-1] == "head_midpoint"
    )
    assert np.median(mouse.confidence) == pytest.approx(0.95, abs=0.01)
    assert np.mean(mouse.confidence < 0.3) == pytest.approx(0.059, abs=0.001)
    keep = [
        "nose",
        "left_ear",
        "right_ear",
        "neck",
        "mid_back",
        "mouse_center",
        "mid_backend",
        "mid_backend2",
        "mid_backend3",
        "tail_base",
        "left_shoulder",
        "left_midside",
        "left_hip",
        "right_shoulder",
        "right_midside",
        "right_hip",
    ]
    body = load_keypoints(shared_data / GOLDEN, bodyparts=keep)
    assert body.coordinates.shape == (4860, 16, 2)
    np.testing.assert_array_equal(
        body.coordinates[:, 9], mouse.coordinates[:, mouse.bodyparts.index("tail_base")]
    )


def test_dlc_multi_animal_toy_project_h5_and_four_row_csv(shared_data):
    h5 = load_keypoints(shared_data / (MULTI_SHORT + ".h5"))
    assert h5.individuals == ["individual1", "individual2", "individual3"]
    assert h5.bodyparts == ("bodypart1", "bodypart2", "bodypart3") and h5.coordinates.shape == (
        93,
        3,
        2,
    )
    per_point = np.isnan(h5.coordinates[..., 0]).reshape(3, 31, 3).mean(axis=1)
    assert per_point.min() >= 0.35 and per_point.max() <= 0.43
    assert h5.confidence.max() == pytest.approx(0.93, abs=0.005)
    corners = load_keypoints(shared_data / (MULTI_SHORT + ".h5"), individuals=["single"])
    assert corners.bodyparts == ("corner1", "corner2") and not np.isnan(corners.coordinates).any()

    csv = load_keypoints(shared_data / (MULTI_SHORT + "_filtered.csv"))
    assert csv.individuals == h5.individuals and csv.coordinates.shape == (93, 3, 2)
    raw = pd.read_csv(
        shared_data / (MULTI_SHORT + "_filtered.csv"), header=[0, 1, 2, 3], index_col=0
    )
    overall = np.isnan(raw.to_numpy()).mean()
    assert overall == pytest.approx(0.311, abs=0.001)
    assert not np.array_equal(
        csv.coordinates, h5.coordinates, equal_nan=True
    )  # filtered: values differ


def test_sessions_to_pynapple_feed_the_estimators_session_logic(shared_data):
    from behavhmm.models._sessions import session_mask, split_pynapple

    sessions = load_keypoints(shared_data / DEEPOF_TWO, fps=30)
    coords, conf = sessions.to_pynapple()
    assert coords.shape == (200, 14, 2) and list(conf.columns) == list(sessions.bodyparts)
    assert len(coords.time_support) == 2
    values, info = split_pynapple(coords)
    np.testing.assert_array_equal(values, sessions.coordinates)
    np.testing.assert_array_equal(session_mask(None, 200, info=info), sessions.session_starts)
    t = np.asarray(coords.t)
    assert np.all(np.diff(t) > 0) and t[100] - t[99] == pytest.approx(1.0)  # the default gap


@pytest.mark.parametrize(
    "relpath",
    [
        BSOID.format(1) + ".h5",
        BSOID.format(2) + ".h5",
        OPENFIELD + ".h5",
        DEEPOF_ONE,
        DEEPOF_TWO,  # pandas' "fixed" layout; the others are "table"
        REACHING.format("2D"),
        REACHING.format("3D"),
        GOLDEN,
        MULTI_SHORT + ".h5",
    ],
)
def test_h5py_reader_of_dlc_files_equals_pandas(shared_data, relpath):
    """The h5py reader (nothing unpickled) rebuilds exactly the DataFrame pandas/PyTables reads."""
    from behavhmm.io._deeplabcut import read_dlc_h5

    ours = read_dlc_h5(shared_data / relpath)
    theirs = pd.read_hdf(shared_data / relpath)  # these trusted files only
    assert list(ours.columns) == list(theirs.columns)
    assert list(ours.columns.names) == list(theirs.columns.names)
    np.testing.assert_array_equal(ours.index.to_numpy(), theirs.index.to_numpy())
    np.testing.assert_array_equal(ours.to_numpy(np.float64), theirs.to_numpy(np.float64))
