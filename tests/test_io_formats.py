"""Keypoint formats: round trips through files we write, fixtures written by other libraries, "
"detection, errors."""

from __future__ import annotations

import datetime
import warnings
from pathlib import Path

import numpy as np
import pytest

from behavhmm.io import KeypointData, KeypointSessions, detect_format, load_keypoints

DATA = Path(__file__).parent / "data"
REACHING_3D = "pose-dlc2kinematics-reaching/reachingDEMO_3D.h5"
DEEPOF_TWO = "pose-deepof-mice/testDLC_h5_table_madlc.h5"
FLIES_SLP = "pose-sleap-courtship-flies/courtship_3000f.predictions.slp"


def _dlc_frame(
    values, bodyparts, individuals=None, coords=("x", "y", "likelihood"), scorer="DLC_test"
):
    """A DeepLabCut-style DataFrame from an array (frames, [individuals,] bodyparts, coords)."""
    pd = pytest.importorskip("pandas")
    if individuals is None:
        cols = pd.MultiIndex.from_product(
            [[scorer], bodyparts, coords], names=["scorer", "bodyparts", "coords"]
        )
    else:
        cols = pd.MultiIndex.from_product(
            [[scorer], individuals, bodyparts, coords],
            names=["scorer", "individuals", "bodyparts", "coords"],
        )
    return pd.DataFrame(values.reshape(len(values), -1), columns=cols)


# --- DeepLabCut -----------------------------------------------------------------------------------


@pytest.mark.parametrize("multi", [False, True])
def test_dlc_csv_with_three_or_four_header_rows_round_trips(tmp_path, rng, multi):
    individuals = ["a", "b"] if multi else None
    shape = (20, 2, 3, 3) if multi else (20, 3, 3)
    values = rng.uniform(0, 500, size=shape)
    values[..., 2] = rng.uniform(0, 1, size=shape[:-1])
    values[5, ..., 0, :] = np.nan  # a missing point (NaN row in the table)
    df = _dlc_frame(values, ["nose", "ear", "tail"], individuals)
    df.to_csv(tmp_path / "pred.csv")
    with open(tmp_path / "pred.csv") as handle:
        n_header = sum(
            1
            for line in handle
            if line.split(",")[0] in ("scorer", "individuals", "bodyparts", "coords")
        )
    assert n_header == (4 if multi else 3)
    assert detect_format(tmp_path / "pred.csv") == "deeplabcut"
    sessions = load_keypoints(tmp_path / "pred.csv")
    assert sessions.individuals == (["a", "b"] if multi else ["id_0"])
    got = np.stack([s.coordinates for s in sessions], axis=1) if multi else sessions[0].coordinates
    want = values[..., :2]
    np.testing.assert_allclose(got, want, rtol=1e-15, equal_nan=True)
    conf = np.stack([s.confidence for s in sessions], axis=1) if multi else sessions[0].confidence
    np.testing.assert_allclose(conf, np.nan_to_num(values[..., 2], nan=0.0), rtol=1e-15)


def test_dlc_labelled_data_csv_with_three_index_columns(tmp_path, rng):
    pd = pytest.importorskip("pandas")
    values = rng.uniform(0, 100, size=(4, 2, 2))
    cols = pd.MultiIndex.from_product(
        [["me"], ["nose", "tail"], ["x", "y"]], names=["scorer", "bodyparts", "coords"]
    )
    index = pd.MultiIndex.from_tuples(
        [("labeled-data", "vid", f"img{i:03d}.png") for i in range(4)]
    )
    pd.DataFrame(values.reshape(4, -1), index=index, columns=cols).to_csv(
        tmp_path / "CollectedData_me.csv"
    )
    (data,) = load_keypoints(tmp_path / "CollectedData_me.csv")
    np.testing.assert_allclose(data.coordinates, values, rtol=1e-15)
    np.testing.assert_array_equal(data.confidence, 1.0)  # labels carry no likelihood
    np.testing.assert_array_equal(data.frames, np.arange(4))  # image paths are no frame numbers


def test_dlc_zero_triples_are_undetected_but_real_zero_coordinates_are_kept(tmp_path):
    pytest.importorskip("tables")
    values = np.ones((3, 2, 3))
    values[0, 0] = (0.0, 0.0, 0.0)  # undetected (multi-animal DLC convention)
    values[1, 1] = (0.0, 0.0, 0.7)  # a real detection at the corner, with a likelihood
    _dlc_frame(values, ["nose", "tail"]).to_hdf(tmp_path / "p.h5", key="df_with_missing", mode="w")
    (data,) = load_keypoints(tmp_path / "p.h5")
    assert np.isnan(data.coordinates[0, 0]).all() and data.confidence[0, 0] == 0
    np.testing.assert_array_equal(data.coordinates[1, 1], [0.0, 0.0])
    assert data.confidence[1, 1] == 0.7


def test_dlc_h5_with_several_tables_picks_the_predictions_or_says_which(tmp_path):
    pytest.importorskip("tables")
    df = _dlc_frame(np.ones((2, 1, 3)), ["nose"])
    df.to_hdf(tmp_path / "two.h5", key="df_with_missing", mode="w")
    df.to_hdf(tmp_path / "two.h5", key="other", mode="a")
    assert load_keypoints(tmp_path / "two.h5")[0].coordinates.shape == (2, 1, 2)
    df.to_hdf(tmp_path / "odd.h5", key="a", mode="w")
    df.to_hdf(tmp_path / "odd.h5", key="b", mode="a")
    with pytest.raises(ValueError, match="several pandas tables"):
        load_keypoints(tmp_path / "odd.h5")


# --- movement -------------------------------------------------------------------------------------


def test_movement_fixture_written_by_movement_2d():
    pytest.importorskip("xarray")
    rng = np.random.default_rng(7)  # the generator that made the file (tests/data/README.md)
    pos = rng.normal(100, 20, size=(12, 2, 3, 2)).round(3)
    pos[4, :, 1, 0] = np.nan
    conf = rng.uniform(0, 1, size=(12, 3, 2)).round(3)
    path = DATA / "movement_0.15_poses_2d.nc"
    assert detect_format(path) == "movement"
    sessions = load_keypoints(path)
    assert sessions.individuals == ["mouse_a", "mouse_b"] and sessions.bodyparts == (
        "nose",
        "neck",
        "tail",
    )
    assert sessions[0].fps == 25.0
    np.testing.assert_allclose(sessions[0].timestamps, np.arange(12) / 25)
    np.testing.assert_array_equal(sessions[0].frames, np.arange(12))
    np.testing.assert_array_equal(sessions[0].coordinates[0, 0], [100.025, 101.203])  # spot check
    for i, s in enumerate(sessions):
        np.testing.assert_array_equal(s.coordinates, pos[..., i].transpose(0, 2, 1))
    expected_conf = conf[..., 0].copy()
    expected_conf[4, 1] = 0.0  # the NaN point
    np.testing.assert_array_equal(sessions[0].confidence, expected_conf)


def test_movement_fixture_written_by_movement_3d_without_confidence_or_fps():
    pytest.importorskip("xarray")
    (fly,) = load_keypoints(DATA / "movement_0.15_poses_3d.nc")
    assert fly.individual == "fly" and fly.coordinates.shape == (8, 4, 3) and fly.fps is None
    assert fly.timestamps is None
    np.testing.assert_array_equal(fly.coordinates[0, 0], [1.296, -4.303, -8.217])
    np.testing.assert_array_equal(fly.coordinates[7, 3], [2.778, 8.014, -5.545])
    np.testing.assert_array_equal(fly.confidence, 1.0)  # movement's all-NaN confidence means "none"
    timed = load_keypoints(DATA / "movement_0.15_poses_3d.nc", fps=10)[0]
    np.testing.assert_allclose(timed.timestamps, np.arange(8) / 10)


@pytest.mark.shared_data
@pytest.mark.parametrize("plural", [False, True])
def test_movement_netcdf_written_from_a_real_dlc_file_round_trips(shared_data, tmp_path, plural):
    """The documented layout: position (time, space, keypoint, individual), confidence, attrs."""
    xr = pytest.importorskip("xarray")
    pytest.importorskip("tables")
    dlc = load_keypoints(shared_data / DEEPOF_TWO, fps=30)
    kp, ind = ("keypoints", "individuals") if plural else ("keypoint", "individual")
    position = np.stack([s.coordinates for s in dlc], axis=-1).transpose(
        0, 2, 1, 3
    )  # time, space, kp, ind
    confidence = np.stack([s.confidence for s in dlc], axis=-1)
    ds = xr.Dataset(
        {
            "position": (("time", "space", kp, ind), position),
            "confidence": (("time", kp, ind), confidence),
        },
        coords={
            "time": np.arange(100) / 30,
            "space": ["x", "y"],
            kp: list(dlc.bodyparts),
            ind: dlc.individuals,
        },
        attrs={
            "fps": 30.0,
            "time_unit": "seconds",
            "source_software": "DeepLabCut",
            "ds_type": "poses",
        },
    )
    # store position in another dimension order: the reader must go by names, not positions
    ds["position"] = ds["position"].transpose(ind, "space", "time", kp)
    ds.to_netcdf(tmp_path / "poses.nc")
    assert detect_format(tmp_path / "poses.nc") == "movement"
    back = load_keypoints(tmp_path / "poses.nc")
    assert back.individuals == dlc.individuals and back.bodyparts == dlc.bodyparts
    assert back[0].fps == 30.0 and back[0].format == "movement"
    np.testing.assert_array_equal(back.coordinates, dlc.coordinates)
    np.testing.assert_array_equal(back.confidence, dlc.confidence)
    np.testing.assert_allclose(back[1].timestamps, dlc[1].timestamps)
    # in memory, too
    again = load_keypoints(ds)
    np.testing.assert_array_equal(again.coordinates, dlc.coordinates)


def test_movement_bboxes_and_foreign_netcdf_are_refused(tmp_path):
    xr = pytest.importorskip("xarray")
    boxes = xr.Dataset(
        {"position": (("time", "space", "individual"), np.zeros((3, 2, 1)))},
        attrs={"ds_type": "bboxes"},
    )
    with pytest.raises(ValueError, match="'bboxes' dataset"):
        load_keypoints(boxes)
    other = xr.Dataset({"temperature": (("time",), np.zeros(3))})
    other.to_netcdf(tmp_path / "weather.nc")
    with pytest.raises(ValueError, match="no 'position' variable"):
        load_keypoints(tmp_path / "weather.nc", format="movement")


# --- Anipose --------------------------------------------------------------------------------------


@pytest.mark.shared_data
def test_anipose_csv_written_from_real_3d_reaching_data(shared_data, tmp_path, rng):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("tables")
    (dlc,) = load_keypoints(shared_data / REACHING_3D)
    missing = np.isnan(dlc.coordinates).any(axis=2)
    score = np.where(missing, np.nan, rng.uniform(0.3, 1.0, size=missing.shape))
    columns = {}
    for k, bp in enumerate(dlc.bodyparts):  # Anipose's triangulate output, column for column
        for d, axis in enumerate("xyz"):
            columns[f"{bp}_{axis}"] = dlc.coordinates[:, k, d]
        columns[f"{bp}_error"] = np.where(
            missing[:, k], np.nan, rng.uniform(0, 5, size=dlc.n_frames)
        )
        columns[f"{bp}_ncams"] = np.where(missing[:, k], np.nan, 2.0)
        columns[f"{bp}_score"] = score[:, k]
    for i in range(3):
        for j in range(3):
            columns[f"M_{i}{j}"] = float(i == j)
    for i in range(3):
        columns[f"center_{i}"] = 0.0
    columns["fnum"] = np.arange(dlc.n_frames)
    pd.DataFrame(columns).to_csv(tmp_path / "reach.csv", index=False)

    assert detect_format(tmp_path / "reach.csv") == "anipose"
    (back,) = load_keypoints(tmp_path / "reach.csv")
    assert (
        back.format == "anipose" and back.bodyparts == dlc.bodyparts
    )  # no M/center/fnum bodyparts
    assert back.coordinates.shape == (800, 33, 3)
    np.testing.assert_allclose(back.coordinates, dlc.coordinates, rtol=1e-15, equal_nan=True)
    np.testing.assert_allclose(back.confidence, np.nan_to_num(score, nan=0.0), rtol=1e-15)
    np.testing.assert_array_equal(back.frames, np.arange(800))


def test_anipose_center_x_columns_are_not_a_bodypart(tmp_path):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(
        {
            "nose_x": [1.0],
            "nose_y": [2.0],
            "nose_z": [3.0],
            "nose_score": [0.5],
            "center_x": [9.0],
            "center_y": [9.0],
            "center_z": [9.0],
        }
    )
    df.to_csv(tmp_path / "a.csv", index=False)
    (data,) = load_keypoints(tmp_path / "a.csv")
    assert data.bodyparts == ("nose",)


# --- NWB ------------------------------------------------------------------------------------------


def _write_ndx_pose_nwb(path, individuals, *, rate=None, timestamps=None):
    """One PoseEstimation per individual (movement's layout), ndx-pose >= 0.2 API."""
    pynwb = pytest.importorskip("pynwb")
    ndx_pose = pytest.importorskip("ndx_pose")
    nwb = pynwb.NWBFile(
        session_description="synthetic",
        identifier="behavhmm-test",
        session_start_time=datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC),
    )
    module = nwb.create_processing_module(name="behavior", description="pose")
    skeletons = []
    for name, (xy, conf, bodyparts) in individuals.items():
        skeleton = ndx_pose.Skeleton(name=f"{name}_skeleton", nodes=list(bodyparts))
        skeletons.append(skeleton)
        series = [
            ndx_pose.PoseEstimationSeries(
                name=bp,
                description=f"{bp} of {name}",
                data=xy[:, k],
                unit="pixels",
                reference_frame="top left",
                confidence=conf[:, k],
                **({"rate": rate, "starting_time": 0.0} if rate else {"timestamps": timestamps}),
            )
            for k, bp in enumerate(bodyparts)
        ]
        module.add(
            ndx_pose.PoseEstimation(
                name=name,
                pose_estimation_series=series,
                skeleton=skeleton,
                source_software="synthetic",
            )
        )
    module.add(ndx_pose.Skeletons(skeletons=skeletons))
    with pynwb.NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)


def test_nwb_ndx_pose_current_layout_with_rate_and_with_timestamps(tmp_path, rng):
    xy = rng.uniform(0, 100, size=(50, 3, 2))
    xy[7, 1] = np.nan
    conf = rng.uniform(0, 1, size=(50, 3))
    other = rng.uniform(0, 100, size=(50, 3, 2))
    animals = {
        "mouse_b": (other, conf, ["tail", "nose", "ear"]),
        "mouse_a": (xy, conf, ["nose", "ear", "tail"]),
    }
    _write_ndx_pose_nwb(tmp_path / "rate.nwb", animals, rate=40.0)
    assert detect_format(tmp_path / "rate.nwb") == "nwb"
    sessions = load_keypoints(tmp_path / "rate.nwb")
    assert sessions.individuals == ["mouse_a", "mouse_b"]  # sorted by name
    assert sessions.bodyparts == ("nose", "ear", "tail")  # mouse_b follows mouse_a's order by name
    a, b = sessions
    assert a.fps == pytest.approx(40.0) and a.timestamps[-1] == pytest.approx(49 / 40)
    np.testing.assert_array_equal(a.coordinates, xy)
    expected = conf.copy()
    expected[7, 1] = 0.0
    np.testing.assert_array_equal(a.confidence, expected)
    np.testing.assert_array_equal(b.coordinates, other[:, [1, 2, 0]])

    t = np.cumsum(rng.uniform(0.009, 0.011, size=50)) + 100.0  # a real, jittery clock in seconds
    _write_ndx_pose_nwb(
        tmp_path / "clock.nwb", {"m": (xy, conf, ["nose", "ear", "tail"])}, timestamps=t
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (m,) = load_keypoints(tmp_path / "clock.nwb")
    np.testing.assert_array_equal(m.timestamps, t)
    assert m.fps == pytest.approx(1 / np.median(np.diff(t)))


@pytest.mark.shared_data
@pytest.mark.filterwarnings(
    "ignore::DeprecationWarning"
)  # sleap-io's writer uses old ndx-pose arguments
def test_nwb_written_by_sleap_io_with_dropped_frames_matches_the_slp(shared_data, tmp_path):
    sio = pytest.importorskip("sleap_io")
    pytest.importorskip("pynwb")
    labels = sio.load_slp(str(shared_data / FLIES_SLP))
    sio.save_nwb(labels, str(tmp_path / "flies.nwb"), nwb_format="predictions")
    slp = load_keypoints(shared_data / FLIES_SLP)
    with pytest.warns(UserWarning, match="frame numbers"):
        nwb = load_keypoints(tmp_path / "flies.nwb")
    assert nwb.individuals == slp.individuals and nwb.bodyparts == slp.bodyparts
    np.testing.assert_array_equal(nwb.coordinates, slp.coordinates)
    np.testing.assert_allclose(nwb.confidence, slp.confidence, rtol=1e-6)


# --- SLEAP analysis -------------------------------------------------------------------------------


@pytest.mark.parametrize("matlab_order", [True, False])
def test_sleap_analysis_h5_with_point_scores_in_both_orientations(tmp_path, rng, matlab_order):
    h5py = pytest.importorskip("h5py")
    xy = rng.uniform(0, 1000, size=(30, 2, 4, 2))  # frames, tracks, nodes, xy
    xy[3, 1, 2] = np.nan
    scores = rng.uniform(0, 1.2, size=(30, 2, 4))
    with h5py.File(tmp_path / "a.analysis.h5", "w") as f:
        if matlab_order:
            f["tracks"] = xy.transpose(1, 3, 2, 0)
            f["point_scores"] = scores.transpose(1, 2, 0)
        else:
            f["tracks"] = xy.transpose(0, 2, 3, 1)
            f["point_scores"] = scores.transpose(0, 2, 1)
        f["node_names"] = np.array([b"head", b"thorax", b"abdomen", b"tip"])
        f["track_names"] = np.array([b"male", b"female"])
    sessions = load_keypoints(tmp_path / "a.analysis.h5")
    assert sessions.individuals == ["male", "female"]
    np.testing.assert_array_equal(sessions[1].coordinates, xy[:, 1])
    expected = np.clip(scores[:, 1], 0, 1)
    expected[3, 2] = 0.0
    np.testing.assert_array_equal(sessions[1].confidence, expected)


# --- containers -----------------------------------------------------------------------------------


def _session(n, bodyparts=("a", "b"), n_dims=2, **kwargs):
    return KeypointData(
        np.zeros((n, len(bodyparts), n_dims)), np.ones((n, len(bodyparts))), bodyparts, **kwargs
    )


def test_sessions_concatenate_with_starts_and_refuse_mismatches():
    sessions = KeypointSessions([_session(3), _session(4)]) + _session(2)
    assert sessions.coordinates.shape == (9, 2, 2) and sessions.confidence.shape == (9, 2)
    np.testing.assert_array_equal(np.flatnonzero(sessions.session_starts), [0, 3, 7])
    np.testing.assert_array_equal(sessions.session_lengths, [3, 4, 2])
    assert isinstance(sessions[1:], KeypointSessions) and len(sessions[1:]) == 2
    with pytest.raises(ValueError, match="another order.*bodyparts="):
        _ = KeypointSessions([_session(3), _session(3, ("b", "a"))]).coordinates
    with pytest.raises(ValueError, match=r"only in session 0: \['b'\], only in session 1: \['c'\]"):
        _ = KeypointSessions([_session(3), _session(3, ("a", "c"))]).bodyparts
    with pytest.raises(ValueError, match="2-D keypoints but session 1 has 3-D"):
        _ = KeypointSessions([_session(3), _session(3, n_dims=3)]).coordinates
    with pytest.raises(ValueError, match="no timestamps and no fps"):
        KeypointSessions([_session(3)]).to_pynapple()
    with pytest.raises(TypeError, match=r"sessions\[1\] must be a KeypointData"):
        KeypointSessions([_session(1), np.zeros(3)])


def test_pynapple_epochs_one_per_session_even_for_one_frame_sessions():
    sessions = KeypointSessions([_session(1, fps=10.0), _session(5, fps=20.0)])
    coords, conf = sessions.to_pynapple(gap=2.0)
    assert len(coords.time_support) == 2 and coords.shape == (6, 2, 2)
    t = np.asarray(coords.t)
    np.testing.assert_allclose(t, [0.0, 2.0, 2.05, 2.1, 2.15, 2.2])
    assert list(conf.columns) == ["a", "b"]
    with pytest.raises(ValueError, match="gap must be a positive"):
        sessions.to_pynapple(gap=0)


def test_keypoint_data_validates_and_marks_missing_points():
    coords = np.zeros((2, 2, 2))
    coords[1, 0, 1] = np.nan
    data = KeypointData(coords, np.full((2, 2), 1.5), ["a", "b"], fps=5)
    np.testing.assert_array_equal(
        data.confidence, [[1.0, 1.0], [0.0, 1.0]]
    )  # clipped, 0 where missing
    np.testing.assert_allclose(data.timestamps, [0.0, 0.2])
    with pytest.raises(
        ValueError, match=r"coordinates must have shape \(n_frames, n_keypoints, n_dims\)"
    ):
        KeypointData(np.zeros((2, 2)), np.ones((2, 2)), ["a", "b"])
    with pytest.raises(ValueError, match=r"confidence must have shape"):
        KeypointData(coords, np.ones((2, 3)), ["a", "b"])
    with pytest.raises(ValueError, match="bodyparts has 3 names but coordinates has 2 keypoints"):
        KeypointData(coords, np.ones((2, 2)), ["a", "b", "c"])
    with pytest.raises(ValueError, match=r"bodyparts must be unique, got duplicates \['a'\]"):
        KeypointData(coords, np.ones((2, 2)), ["a", "a"])
    with pytest.raises(ValueError, match="fps must be a positive"):
        KeypointData(coords, np.ones((2, 2)), ["a", "b"], fps=0)
    with pytest.raises(
        ValueError, match=r"bodyparts \['z'\] not found .* available bodyparts: \['a', 'b'\]"
    ):
        data.select_bodyparts(["a", "z"])


# --- detection and errors -------------------------------------------------------------------------


def test_errors_name_the_argument_and_what_was_expected(tmp_path):
    with pytest.raises(FileNotFoundError, match="keypoint file not found"):
        load_keypoints(tmp_path / "nope.h5")
    with pytest.raises(FileNotFoundError):
        detect_format(tmp_path / "nope.h5")
    (tmp_path / "notes.txt").write_text("hello, world\n1, 2\n")
    with pytest.raises(ValueError, match="could not tell the keypoint format.*Pass format="):
        load_keypoints(tmp_path / "notes.txt")
    (tmp_path / "fake.h5").write_text("not hdf5")
    with pytest.raises(ValueError, match="not an HDF5 file"):
        detect_format(tmp_path / "fake.h5")
    with pytest.raises(
        ValueError, match=r"format='openpose' is not supported; use one of \['anipose'"
    ):
        load_keypoints(tmp_path / "notes.txt", format="openpose")
    with pytest.raises(TypeError, match="format must be a string"):
        load_keypoints(tmp_path / "notes.txt", format=3)
    with pytest.raises(
        TypeError, match="bodyparts must be a sequence of names, got the string 'nose'"
    ):
        load_keypoints(tmp_path / "notes.txt", bodyparts="nose")
    with pytest.raises(TypeError, match="path must be a file path"):
        load_keypoints(42)
    with pytest.raises(ValueError, match="path is an empty sequence"):
        load_keypoints([])
    with pytest.raises(ValueError, match="fps must be a positive"):
        load_keypoints(tmp_path / "notes.txt", fps=-1)
    with pytest.raises(ValueError, match="not a DeepLabCut CSV"):
        load_keypoints(tmp_path / "notes.txt", format="dlc")


def test_missing_individuals_and_bodyparts_are_reported_with_what_exists(tmp_path):
    pytest.importorskip("tables")
    values = np.ones((4, 2, 2, 3))
    _dlc_frame(values, ["nose", "tail"], ["m1", "m2"]).to_hdf(
        tmp_path / "ma.h5", key="tracks", mode="w"
    )
    with pytest.raises(
        ValueError, match=r"individuals \['m3'\] not found in .*ma.h5; it holds \['m1', 'm2'\]"
    ):
        load_keypoints(tmp_path / "ma.h5", individuals=["m3"])
    with pytest.raises(ValueError, match=r"bodyparts \['ear'\] not found for individual 'm1'"):
        load_keypoints(tmp_path / "ma.h5", bodyparts=["nose", "ear"])
    two = load_keypoints(tmp_path / "ma.h5", individuals=["m2"], bodyparts=["tail"])
    assert two.individuals == ["m2"] and two.bodyparts == ("tail",)
    with pytest.raises(ValueError, match=r"individuals \['m9'\] not found; the sessions hold"):
        two.select(individuals=["m9"])


def test_sleap_slp_without_tracks_is_one_animal_unless_frames_hold_several(tmp_path):
    sio = pytest.importorskip("sleap_io")
    skeleton = sio.Skeleton(["a", "b"])
    video = sio.Video(filename="fake.mp4", open_backend=False)
    frames = [
        sio.LabeledFrame(
            video=video,
            frame_idx=i,
            instances=[
                sio.Instance.from_numpy(np.array([[i, 1.0], [2.0, np.nan]]), skeleton=skeleton)
            ],
        )
        for i in range(5)
    ]
    labels = sio.Labels(labeled_frames=frames, skeletons=[skeleton], videos=[video])
    sio.save_slp(labels, str(tmp_path / "one.slp"))
    (data,) = load_keypoints(tmp_path / "one.slp", fps=50)
    assert data.individual == "id_0" and data.video == "fake.mp4"
    np.testing.assert_array_equal(data.coordinates[:, 0, 0], np.arange(5))
    np.testing.assert_array_equal(data.confidence, [[1.0, 0.0]] * 5)
    frames[2].instances.append(sio.Instance.from_numpy(np.full((2, 2), 9.0), skeleton=skeleton))
    sio.save_slp(labels, str(tmp_path / "two.slp"))
    with pytest.raises(ValueError, match="up to 2 untracked instances per frame"):
        load_keypoints(tmp_path / "two.slp")


def test_dlc_h5_metadata_pickles_are_never_unpickled(tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("tables")
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "evil.h5"
    marker = tmp_path / "ran"
    _dlc_frame(np.ones((3, 1, 3)), ["nose"]).to_hdf(
        path, key="df_with_missing", mode="w", format="table"
    )
    payload = f"cbuiltins\nexec\n(Vopen({str(marker)!r}, 'w').close()\ntR.".encode()
    with h5py.File(path, "a") as f:
        f["df_with_missing"].attrs["data_columns"] = np.bytes_(payload)
    (data,) = load_keypoints(path)  # an attribute the reader does not need is never decoded
    np.testing.assert_array_equal(data.coordinates, 1.0)
    assert not marker.exists()
    with h5py.File(path, "a") as f:
        f["df_with_missing"].attrs["non_index_axes"] = np.bytes_(payload)
    with pytest.raises(ValueError, match=r"evil\.h5.*builtins\.exec"):
        load_keypoints(path)
    assert not marker.exists()
    try:  # the danger is real: pandas' PyTables backend unpickles that attribute
        pd.read_hdf(path)
    except Exception:
        pass
    assert marker.exists()

    df = pd.DataFrame({"a": [1, 2], "b": [{"x": 1}, [2]]})  # object column: a node of pickles
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df.to_hdf(tmp_path / "objects.h5", key="df", format="fixed", mode="w")
    with pytest.raises(ValueError, match="node of pickled Python objects"):
        load_keypoints(tmp_path / "objects.h5", format="dlc")
