"""Multi-animal poses: stacked layout, social features, states written back on the poses' time."""

import numpy as np
import pandas as pd
import pytest

xr = pytest.importorskip("xarray")

from behavhmm.io import (  # noqa: E402
    load_keypoints,
    load_states,
    save_states,
    states_to_dataset,
    write_annotation_csvs,
)
from behavhmm.preprocessing import social_features  # noqa: E402


def _dataset(plural=False, order=("time", "space", "keypoint", "individual")):
    rng = np.random.default_rng(0)
    pos = rng.normal(size=(12, 2, 3, 2))  # time, space, keypoint, individual
    pos[3, :, 1, 0] = np.nan
    conf = rng.uniform(size=(12, 3, 2))
    kp, ind = ("keypoints", "individuals") if plural else ("keypoint", "individual")
    dims = ("time", "space", kp, ind)
    ds = xr.Dataset(
        {"position": (dims, pos), "confidence": (("time", kp, ind), conf)},
        coords={
            "time": np.arange(12) / 30,
            "space": ["x", "y"],
            kp: ["nose", "neck", "tail"],
            ind: ["f", "m"],
        },
        attrs={"fps": 30.0, "time_unit": "seconds", "ds_type": "poses", "source_software": "SLEAP"},
    )
    rename = {"keypoint": kp, "individual": ind}
    return ds.transpose(*[rename.get(d, d) for d in order]), pos


@pytest.mark.parametrize("plural", [False, True])
@pytest.mark.parametrize(
    "order",
    [("time", "space", "keypoint", "individual"), ("individual", "keypoint", "time", "space")],
)
def test_stack_and_separate_hold_the_same_coordinates(plural, order):
    ds, pos = _dataset(plural, order)
    sep = load_keypoints(ds)
    stack = load_keypoints(ds, individual_layout="stack")
    assert [s.individual for s in sep] == ["f", "m"]
    assert len(stack) == 1 and stack[0].individual == "f+m"
    assert list(stack[0].bodyparts) == ["f/nose", "f/neck", "f/tail", "m/nose", "m/neck", "m/tail"]
    np.testing.assert_array_equal(
        stack.coordinates, np.concatenate([sep[0].coordinates, sep[1].coordinates], axis=1)
    )
    np.testing.assert_array_equal(stack.confidence[:, 3:], sep[1].confidence)
    # against the raw array: time, keypoint, space for individual m
    np.testing.assert_array_equal(
        stack.coordinates[:, 3:], np.transpose(pos[:, :, :, 1], (0, 2, 1))
    )
    swapped = load_keypoints(ds, individual_layout="stack", individuals=["m", "f"])
    np.testing.assert_array_equal(swapped.coordinates[:, :3], stack.coordinates[:, 3:])
    np.testing.assert_allclose(stack[0].timestamps, np.arange(12) / 30)


def test_stack_bad_input(tmp_path):
    ds, _ = _dataset()
    with pytest.raises(ValueError, match="individual_layout"):
        load_keypoints(ds, individual_layout="wide")
    nan = ds.copy(deep=True)
    nan["position"].loc[{"individual": "m"}] = np.nan
    with pytest.raises(ValueError, match="'m' is never tracked"):
        load_keypoints(nan, individual_layout="stack")
    assert len(load_keypoints(nan, individual_layout="stack", individuals=["f"])) == 1
    other = ds.assign_coords(keypoint=["nose", "neck", "tailbase"])
    with pytest.raises(ValueError, match="different animals or keypoints"):
        load_keypoints([ds, other], individual_layout="stack")
    with pytest.raises(ValueError, match="dimensions"):
        load_keypoints(ds.rename({"space": "coord"}))


def test_social_features_hand_computed():
    # a at the origin facing +x; b at (3, 4) facing +y (head at +1 along its heading)
    t = np.array([0.0, 1.0])
    a = np.stack(
        [np.stack([t * 0 + 1, t * 0], -1), np.stack([t * 0 - 1, t * 0], -1)], axis=1
    )  # head, tail
    b = np.stack(
        [np.stack([t * 0 + 3, t * 0 + 5], -1), np.stack([t * 0 + 3, t * 0 + 3], -1)], axis=1
    )
    b[1] = [[2.0, 4.0], [4.0, 4.0]]  # frame 1: b faces -x, centre (3, 4)
    coords = np.stack([a, b], axis=1)  # (T, 2 animals, 2 keypoints, 2)
    f = social_features(coords, "head", "tail", bodyparts=["head", "tail"], individuals=["a", "b"])
    np.testing.assert_allclose(f["distance_a_b"], [5.0, 5.0])
    np.testing.assert_allclose(f["relative_heading_a_b"], [np.pi / 2, np.pi])
    np.testing.assert_allclose(f["facing_angle_a_b"], np.arctan2(4, 3))
    np.testing.assert_allclose(f["x_b_in_a"], [3.0, 3.0])
    np.testing.assert_allclose(f["y_b_in_a"], [4.0, 4.0])
    # a seen from b: frame 0, b faces +y, a is at (-3, -4) relative: ahead -4, left +3
    np.testing.assert_allclose(f["x_a_in_b"][0], -4.0, atol=1e-12)
    np.testing.assert_allclose(f["y_a_in_b"][0], 3.0, atol=1e-12)
    np.testing.assert_allclose(f["relative_heading_b_a"], [-np.pi / 2, np.pi])
    # the stacked layout gives the same table
    stacked = coords.reshape(2, 4, 2)
    pd.testing.assert_frame_equal(
        social_features(stacked, 0, 1, n_individuals=2, individuals=["a", "b"]), f
    )
    with pytest.raises(ValueError, match="n_individuals"):
        social_features(stacked, 0, 1)
    with pytest.raises(ValueError, match="two individuals"):
        social_features(coords[:, :1], 0, 1)
    coords[:, 1] = np.nan
    with pytest.raises(ValueError, match="never tracked"):
        social_features(coords, 0, 1)


def test_states_round_trip_netcdf_and_csv(tmp_path):
    rng = np.random.default_rng(1)
    z = rng.integers(0, 3, size=(12, 2))
    z[0, 0] = -1
    p = rng.dirichlet(np.ones(3), size=(12, 2))
    ds = states_to_dataset(z, p, time=np.arange(12) / 30, individuals=["f", "m"], fps=30)
    path = save_states(tmp_path / "states.nc", ds)
    back = load_states(path)
    np.testing.assert_array_equal(back["state"].sel(individual="m").values, z[:, 1])
    np.testing.assert_allclose(back["state_probability"].values, p)
    np.testing.assert_allclose(back["time"].values, np.arange(12) / 30)
    assert back.attrs["ds_type"] == "states" and back.attrs["fps"] == 30.0
    files = write_annotation_csvs(
        tmp_path / "annot", z[:, 0], 3, session_starts=[0, 5], names=["s0", "s1"]
    )
    first = pd.read_csv(files[0], index_col=0)
    assert list(first.columns) == ["Motif_0", "Motif_1", "Motif_2"] and first.shape == (5, 3)
    assert first.iloc[0].sum() == 0  # -1: no state
    np.testing.assert_array_equal(pd.read_csv(files[1], index_col=0).to_numpy().argmax(1), z[5:, 0])
    with pytest.raises(ValueError, match="individuals"):
        states_to_dataset(z, individuals=["f"])
    with pytest.raises(ValueError, match="'state'"):
        xr.Dataset({"x": ("t", [1])}).to_netcdf(tmp_path / "x.nc")
        load_states(tmp_path / "x.nc")


@pytest.mark.shared_data
@pytest.mark.parametrize(
    "relpath, nodes, n_frames",
    [
        (
            "pose-sleap-courtship-flies/courtship_3000f.predictions.slp",
            ["head", "thorax", "abdomen"],
            3000,
        ),
        ("pose-deepof-mice/testDLC_h5_table_madlc.h5", ["Nose", "Center", "Tail_base"], 100),
    ],
)
def test_real_two_animal_files_stack_and_social_features(shared_data, relpath, nodes, n_frames):
    sep = load_keypoints(shared_data / relpath, bodyparts=nodes)
    stack = load_keypoints(shared_data / relpath, bodyparts=nodes, individual_layout="stack")
    assert len(sep) == 2 and len(stack) == 1 and stack.coordinates.shape == (n_frames, 6, 2)
    np.testing.assert_array_equal(stack.coordinates[:, 3:], sep[1].coordinates)
    f = social_features(stack.coordinates, nodes[0], nodes[-1], bodyparts=nodes, n_individuals=2)
    both = np.isfinite(sep[0].coordinates).all(axis=(1, 2)) & np.isfinite(sep[1].coordinates).all(
        axis=(1, 2)
    )
    c0, c1 = np.nanmean(sep[0].coordinates, axis=1), np.nanmean(sep[1].coordinates, axis=1)
    np.testing.assert_allclose(f["distance_0_1"][both], np.linalg.norm(c1 - c0, axis=1)[both])
