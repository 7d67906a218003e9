"""Crafted files never run code or write where they should not.

Every payload here would create a marker file if Python's unpickler (or an
unsafe YAML loader) ever saw it; ``test_payloads_are_live`` proves that they do.
Each test then hands the payload to a reader, through the API and the CLI,
and asserts the marker never appears and the reader either loads the file
cleanly or raises a ``ValueError`` naming it. Model files and checkpoints
are checked against their schema: damaged or crafted files give a
``ValueError`` naming the file, and no path stored in a file is written to.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import tracemalloc
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

h5py = pytest.importorskip("h5py")
pd = pytest.importorskip("pandas")

from behavhmm import ARHMM, load_model  # noqa: E402
from behavhmm._files import atomic_path, read_npz, remove_stale_temporaries  # noqa: E402
from behavhmm.cli import main  # noqa: E402
from behavhmm.datasets import demo_arhmm, demo_keypoint_slds, simulate_demo_sessions  # noqa: E402
from behavhmm.io import load_keypoints  # noqa: E402
from behavhmm.io._pandas_hdf5 import UnsafePickleError, load_plain_pickle  # noqa: E402
from behavhmm.models._serialization import write_npz_atomic  # noqa: E402

REAL_DLC_TABLE = "pose-deepof-mice/testDLC_square_arena.h5"
REAL_DLC_FIXED = "pose-deepof-mice/testDLC_h5_table_madlc.h5"


# --- payloads -------------------------------------------------------------------------------------


class _Opener:
    """Pickles to ``open(marker, "w")``: unpickling it creates the marker."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _payloads(marker) -> dict[str, bytes]:
    marker = str(marker)
    return {
        # the reproducer: pickletools cannot parse "I0x10", the C unpickler can
        "reproducer": b"I0x10\n0cbuiltins\nopen\n(V" + marker.encode() + b"\nVw\ntR.",
        "protocol0": pickle.dumps(_Opener(marker), protocol=0),
        "protocol2": pickle.dumps(_Opener(marker), protocol=2),
        "protocol5": pickle.dumps(_Opener(marker), protocol=5),
        "exec": f"cbuiltins\nexec\n(Vopen({marker!r}, 'w').close()\ntR.".encode(),
    }


@pytest.mark.parametrize("kind", ["reproducer", "protocol0", "protocol2", "protocol5", "exec"])
def test_payloads_are_live(tmp_path, kind):
    marker = tmp_path / "ran"
    payload = _payloads(marker)[kind]
    try:
        pickle.loads(payload)  # noqa: S301 - our own payload, to prove the other tests mean something
    except Exception:
        pass
    assert marker.exists()
    marker.unlink()
    with pytest.raises(UnsafePickleError, match="builtins|_io|io"):
        load_plain_pickle(payload, "attr")
    assert not marker.exists()


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_restricted_unpickler_reads_plain_data_only(protocol):
    data = [
        (1, ["scorer", "nose", "x"]),
        {"names": ["a", None], 1: {"type": "MultiIndex"}},
        2.5,
        {3},
        frozenset("a"),
    ]
    assert load_plain_pickle(pickle.dumps(data, protocol=protocol), "attr") == data
    for forbidden in (np.float64(1.0), np.zeros(2), Path("x"), print):
        with pytest.raises(
            UnsafePickleError, match="attr holds pickled metadata that behavhmm does not decode"
        ):
            load_plain_pickle(pickle.dumps(forbidden, protocol=protocol), "attr")
    with pytest.raises(ValueError, match="attr holds pickled metadata that cannot be read"):
        load_plain_pickle(b"(lp0\n(I0x1", "attr")


# --- pose files -----------------------------------------------------------------------------------


def _dlc_frame(n_frames=40, bodyparts=("nose", "ear", "tail"), individuals=None, seed=0):
    rng = np.random.default_rng(seed)
    levels = [
        ["DLC_test"],
        *([list(individuals)] if individuals else []),
        list(bodyparts),
        ["x", "y", "likelihood"],
    ]
    names = ["scorer", *(["individuals"] if individuals else []), "bodyparts", "coords"]
    cols = pd.MultiIndex.from_product(levels, names=names)
    values = rng.uniform(0, 100, size=(n_frames, len(cols)))
    values[:, 2::3] = rng.uniform(0.5, 1.0, size=(n_frames, len(cols) // 3))
    return pd.DataFrame(values, columns=cols)


@pytest.fixture(scope="module")
def dlc_files(tmp_path_factory):
    """Synthetic DeepLabCut files in both pandas layouts (single- and multi-animal)."""
    pytest.importorskip("tables")
    folder = tmp_path_factory.mktemp("dlc")
    files = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _dlc_frame().to_hdf(folder / "table.h5", key="df_with_missing", mode="w", format="table")
        _dlc_frame(individuals=("m1", "m2")).to_hdf(
            folder / "fixed.h5", key="tracks", mode="w", format="fixed"
        )
    files["table"] = folder / "table.h5"
    files["fixed"] = folder / "fixed.h5"
    return files


def _attributes(path) -> list[tuple[str, str]]:
    found = []
    with h5py.File(path, "r") as f:

        def visit(name, node):
            found.extend((name, key) for key in node.attrs)

        visit("/", f)
        f.visititems(visit)
    return found


def _poison(source, dest, node, key, payload):
    shutil.copy(source, dest)
    with h5py.File(dest, "r+") as f:
        f[node].attrs[key] = np.bytes_(payload)
    return dest


def _load_safely(path, marker, **kwargs):
    """Load ``path``: a clean load or a ValueError naming it; never the marker."""
    try:
        load_keypoints(path, **kwargs)
    except ValueError as exc:
        assert str(path) in str(exc), str(exc)
    assert not marker.exists(), f"{path} ran code"


def test_synthetic_layouts_load_as_pandas_reads_them(dlc_files):
    for layout, path in dlc_files.items():
        df = pd.read_hdf(path)  # our own clean file
        sessions = load_keypoints(path)
        for s in sessions:
            prefix = ("DLC_test",) + ((s.individual,) if layout == "fixed" else ())
            for k, bp in enumerate(s.bodyparts):
                np.testing.assert_array_equal(
                    s.coordinates[:, k, 0], df[prefix + (bp, "x")].to_numpy()
                )
                np.testing.assert_array_equal(
                    s.confidence[:, k], df[prefix + (bp, "likelihood")].to_numpy()
                )
            np.testing.assert_array_equal(s.frames, np.arange(40))
        assert sessions.individuals == (["m1", "m2"] if layout == "fixed" else ["id_0"])


@pytest.mark.parametrize("layout", ["table", "fixed"])
@pytest.mark.parametrize("kind", ["reproducer", "protocol0", "protocol2", "exec"])
def test_a_payload_in_any_attribute_of_a_dlc_file_never_runs(dlc_files, tmp_path, layout, kind):
    marker = tmp_path / "ran"
    payload = _payloads(marker)[kind]
    source = dlc_files[layout]
    attributes = _attributes(source)
    assert len(attributes) > 20
    refused = 0
    for i, (node, key) in enumerate(attributes):
        path = _poison(source, tmp_path / f"evil{i}.h5", node, key, payload)
        try:
            load_keypoints(path)
        except ValueError as exc:
            assert str(path) in str(exc), str(exc)
            refused += 1
        assert not marker.exists(), f"{node}@{key} ran code"
        path.unlink()
    assert refused > 0  # the attributes the reader decodes are refused, not skipped


@pytest.mark.shared_data
@pytest.mark.parametrize("kind", ["reproducer", "protocol0", "protocol2", "protocol5"])
@pytest.mark.parametrize(
    "node, key, refused",
    [
        ("df_with_missing", "data_columns", False),  # the reproducer: never decoded, loads
        ("df_with_missing", "non_index_axes", True),
        ("df_with_missing", "info", True),
        ("df_with_missing", "values_cols", True),
        ("df_with_missing/table", "values_block_0_kind", True),  # the table node's attributes
        ("df_with_missing/table", "index_kind", True),
        ("df_with_missing/table", "FIELD_0_NAME", False),
    ],
)
def test_real_dlc_file_with_payloads(shared_data, tmp_path, kind, node, key, refused):
    marker = tmp_path / "ran"
    path = _poison(
        shared_data / REAL_DLC_TABLE, tmp_path / "evil.h5", node, key, _payloads(marker)[kind]
    )
    if refused:
        with pytest.raises(ValueError, match="evil.h5"):
            load_keypoints(path)
    else:
        before = load_keypoints(shared_data / REAL_DLC_TABLE)
        after = load_keypoints(path)
        np.testing.assert_array_equal(after.coordinates, before.coordinates)
    assert not marker.exists()


@pytest.mark.shared_data
def test_real_fixed_layout_with_payload_in_each_attribute(shared_data, tmp_path):
    marker = tmp_path / "ran"
    source = shared_data / REAL_DLC_FIXED
    for i, (node, key) in enumerate(_attributes(source)):
        path = _poison(source, tmp_path / f"evil{i}.h5", node, key, _payloads(marker)["reproducer"])
        _load_safely(path, marker)
        path.unlink()


def test_dlc_object_node_and_bad_structure_are_refused(dlc_files, tmp_path):
    marker = tmp_path / "ran"
    df = pd.DataFrame(
        {"a": [1, 2], "b": [_Opener(marker), [2]]}
    )  # an object column: a node of pickles
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df.to_hdf(tmp_path / "objects.h5", key="df", format="fixed", mode="w")
    with pytest.raises(ValueError, match=r"objects\.h5.*pickled Python objects"):
        load_keypoints(tmp_path / "objects.h5", format="dlc")
    assert not marker.exists()
    # plain data of the wrong shape in the pickled labels: a clear error, not a traceback
    path = _poison(
        dlc_files["table"],
        tmp_path / "odd.h5",
        "df_with_missing",
        "non_index_axes",
        pickle.dumps({"not": "a list"}, protocol=0),
    )
    with pytest.raises(ValueError, match=r"odd\.h5.*non_index_axes"):
        load_keypoints(path)
    path = _poison(dlc_files["fixed"], tmp_path / "codes.h5", "tracks", "axis0_nlevels", b"x")
    with pytest.raises(ValueError, match=r"codes\.h5"):
        load_keypoints(path)


@pytest.mark.shared_data
@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(
    "relpath",
    [
        "pose-dlc-openfield-mouse/m3v1mp4DLC_resnet50_openfieldAug20shuffle1_30000.nwb",
        "pose-sleap-courtship-flies/clip_1500f.slp",
    ],
)
def test_payloads_in_sleap_and_nwb_files_never_run(shared_data, tmp_path, relpath):
    """Third-party readers (pynwb, sleap-io) never unpickle; whatever they raise, no code runs."""
    marker = tmp_path / "ran"
    source = shared_data / relpath
    targets = []
    with h5py.File(source, "r") as f:

        def visit(name, node):
            for key in node.attrs:
                try:
                    value = node.attrs[key]
                except Exception:
                    continue
                if isinstance(value, bytes | str):
                    targets.append((name, key))

        visit("/", f)
        f.visititems(visit)
    assert targets
    for i, (node, key) in enumerate(targets):
        path = _poison(
            source, tmp_path / f"evil{i}{source.suffix}", node, key, _payloads(marker)["reproducer"]
        )
        try:
            load_keypoints(path)
        except Exception:  # noqa: BLE001 - the readers' own errors; what matters is the marker
            pass
        assert not marker.exists(), f"{node}@{key} ran code"
        path.unlink()


@pytest.mark.shared_data
def test_payloads_in_sleap_analysis_strings_never_run(shared_data, tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.analysis.h5"
    shutil.copy(
        shared_data / "pose-sleap-courtship-flies/courtship_3000f.predictions.analysis.h5", path
    )
    with h5py.File(path, "r+") as f:
        for name in ("node_names", "track_names"):
            n = len(f[name])
            del f[name]
            f[name] = np.array([_payloads(marker)["protocol0"]] * n)
    _load_safely(path, marker)


def test_payloads_in_movement_netcdf_never_run(tmp_path):
    pytest.importorskip("xarray")
    marker = tmp_path / "ran"
    source = Path(__file__).parent / "data" / "movement_0.15_poses_2d.nc"
    for i, (node, key) in enumerate(_attributes(source)):
        with h5py.File(source, "r") as f:
            if not isinstance(f[node].attrs[key], bytes | str):
                continue
        path = _poison(source, tmp_path / f"evil{i}.nc", node, key, _payloads(marker)["protocol0"])
        try:
            load_keypoints(path)
        except Exception:  # noqa: BLE001 - xarray's own errors; what matters is the marker
            pass
        assert not marker.exists(), f"{node}@{key} ran code"


def test_moseq_index_yaml_with_python_tags_is_refused(tmp_path):
    from behavhmm.io import load_index_groups

    marker = tmp_path / "ran"
    index = tmp_path / "index.yaml"
    index.write_text(f"files: !!python/object/apply:builtins.open ['{marker}', 'w']\n")
    with pytest.raises(ValueError, match=r"index\.yaml is not a readable YAML"):
        load_index_groups(index)
    assert not marker.exists()


# --- the CLI --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keypoint_model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "model.npz"
    demo_keypoint_slds(3, seed=1).save_params(path)
    return path


@pytest.mark.parametrize("kind", ["reproducer", "protocol2"])
def test_cli_never_runs_payloads(dlc_files, keypoint_model_file, tmp_path, kind):
    marker = tmp_path / "ran"
    payload = _payloads(marker)[kind]
    evil = _poison(
        dlc_files["table"], tmp_path / "evil.h5", "df_with_missing", "non_index_axes", payload
    )
    runner = CliRunner()
    fit = runner.invoke(
        main,
        ["fit-keypoints", str(evil), "--out", str(tmp_path / "fit"), "--no-progress", "--no-plots"],
    )
    assert fit.exit_code != 0 and "evil.h5" in fit.output and isinstance(fit.exception, SystemExit)
    applied = runner.invoke(
        main,
        [
            "apply-keypoints",
            str(keypoint_model_file),
            str(evil),
            "--out",
            str(tmp_path / "applied"),
        ],
    )
    assert (
        applied.exit_code != 0
        and "evil.h5" in applied.output
        and isinstance(applied.exception, SystemExit)
    )
    # a model file holding a pickled object array
    evil_model = tmp_path / "evil_model.npz"
    np.savez(evil_model, __metadata__=np.array([_Opener(marker)], dtype=object))
    applied = runner.invoke(
        main,
        [
            "apply-keypoints",
            str(evil_model),
            str(dlc_files["table"]),
            "--out",
            str(tmp_path / "applied"),
        ],
    )
    assert (
        applied.exit_code != 0 and "evil_model.npz" in applied.output and "pickle" in applied.output
    )
    assert isinstance(applied.exception, SystemExit)
    assert not marker.exists()


# --- .npz / .npy files ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    truth = demo_arhmm(n_states=2, n_features=2, nlags=1, seed=3)
    X, _, starts, _ = simulate_demo_sessions(truth, n_sessions=2, frames_per_session=150, seed=1)
    kw = dict(n_states=2, nlags=1, kappa=50.0, tol=0.0, progress_bar=False, random_state=0)
    folder = tmp_path_factory.mktemp("fit")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = ARHMM(n_iter=4, checkpoint_path=folder / "ck.npz", checkpoint_every=2, **kw).fit(
            X, session_starts=starts
        )
    model_file = folder / "m.npz"
    model.save_params(model_file)
    return {
        "model": model,
        "X": X,
        "starts": starts,
        "kw": kw,
        "model_file": model_file,
        "checkpoint": folder / "ck.npz",
    }


def _npz_members(path):
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def _rewrite_meta(source, dest, edit, arrays_edit=None):
    arrays = _npz_members(source)
    meta = json.loads(str(arrays.pop("__metadata__")[()]))
    result = edit(meta)
    meta = meta if result is None else result
    if arrays_edit:
        arrays_edit(arrays)
    np.savez(dest, __metadata__=np.asarray(json.dumps(meta)), **arrays)
    return dest


def test_pickled_object_arrays_in_npz_and_npy_never_run(fitted, tmp_path):
    from behavhmm.preprocessing import load_pca

    marker = tmp_path / "ran"
    evil = np.array([_Opener(marker)], dtype=object)
    np.savez(tmp_path / "meta.npz", __metadata__=evil)
    arrays = _npz_members(fitted["model_file"])
    arrays["coef_"] = evil
    np.savez(tmp_path / "coef.npz", **arrays)
    np.save(tmp_path / "evil.npy", evil)
    for name in ("meta.npz", "coef.npz", "evil.npy"):
        with pytest.raises(ValueError, match=rf"{name}.*(pickle|not a zip)"):
            load_model(tmp_path / name)
    with pytest.raises(ValueError, match=r"coef\.npz.*pickle"):
        load_pca(tmp_path / "coef.npz")
    ck = _npz_members(fitted["checkpoint"])
    ck["state_0"] = evil
    np.savez(tmp_path / "ck.npz", **ck)
    model = ARHMM(n_iter=6, checkpoint_path=tmp_path / "ck.npz", **fitted["kw"])
    with pytest.raises(ValueError, match=r"ck\.npz.*pickle"):
        model.fit(fitted["X"], session_starts=fitted["starts"], resume=True)
    assert not marker.exists()


# --- model files ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case, edit, match",
    [
        ("list", lambda m: [m], "metadata is a list"),
        ("unknown key", lambda m: {**m, "extra": 1}, r"unknown metadata keys \['extra'\]"),
        (
            "missing arrays",
            lambda m: {k: v for k, v in m.items() if k != "arrays"},
            "lacks 'arrays'",
        ),
        ("params type", lambda m: {**m, "params": [1]}, "'params' must be of type dict"),
        (
            "version type",
            lambda m: {**m, "format_version": "1"},
            "'format_version' must be of type int",
        ),
        (
            "scalar setattr",
            lambda m: {**m, "scalars": {**m["scalars"], "predict": 1}},
            "unknown fitted scalar 'predict'",
        ),
        (
            "scalar type",
            lambda m: {**m, "scalars": {**m["scalars"], "converged_": "yes"}},
            "converged_ must be of type bool",
        ),
        (
            "negative scalar",
            lambda m: {**m, "scalars": {**m["scalars"], "n_iter_": -1}},
            "n_iter_ must be of type int",
        ),
        (
            "misplaced scalar",
            lambda m: {**m, "params": {**m["params"], "n_iter_": 3}},
            r"parameters \['n_iter_'\]",
        ),
        (
            "misplaced param",
            lambda m: {**m, "scalars": {"n_states": 3}},
            "unknown fitted scalar 'n_states'",
        ),
        (
            "array entry",
            lambda m: {**m, "arrays": {**m["arrays"], "coef_": {"dtype": "float32"}}},
            "exactly the keys",
        ),
        (
            "array shape",
            lambda m: {**m, "arrays": {**m["arrays"], "coef_": {"shape": [-1], "dtype": "f"}}},
            "invalid shape",
        ),
        (
            "array dtype",
            lambda m: {
                **m,
                "arrays": {**m["arrays"], "coef_": {**m["arrays"]["coef_"], "dtype": "int8"}},
            },
            "coef_ has dtype",
        ),
    ],
)
def test_crafted_metadata_is_refused_naming_the_file(fitted, tmp_path, case, edit, match):
    path = _rewrite_meta(fitted["model_file"], tmp_path / "crafted.npz", edit)
    with pytest.raises(ValueError, match=match) as info:
        load_model(path)
    assert str(path) in str(info.value)


def test_unreadable_metadata_and_archives_name_the_file(fitted, tmp_path):
    arrays = _npz_members(fitted["model_file"])
    arrays["__metadata__"] = np.asarray("{not json")
    np.savez(tmp_path / "json.npz", **arrays)
    arrays["__metadata__"] = np.asarray("[" * 100_000 + "]" * 100_000)
    np.savez(tmp_path / "deep.npz", **arrays)
    arrays["__metadata__"] = np.zeros(3)
    np.savez(tmp_path / "numbers.npz", **arrays)
    good = fitted["model_file"].read_bytes()
    (tmp_path / "empty.npz").write_bytes(b"")
    (tmp_path / "truncated.npz").write_bytes(good[: len(good) // 2])
    flipped = bytearray(good)
    flipped[len(good) // 3] ^= 0xFF
    (tmp_path / "flipped.npz").write_bytes(bytes(flipped))
    for name in (
        "json.npz",
        "deep.npz",
        "numbers.npz",
        "empty.npz",
        "truncated.npz",
        "flipped.npz",
    ):
        with pytest.raises(ValueError) as info:
            load_model(tmp_path / name)
        assert str(tmp_path / name) in str(info.value), (name, info.value)


def test_a_small_file_cannot_make_the_loader_allocate_much(fitted, tmp_path):
    arrays = _npz_members(fitted["model_file"])
    meta = json.loads(str(arrays["__metadata__"][()]))
    big = np.zeros((12_500_000,), np.float64)  # 100 MB of zeros compress to 0.1 MB
    meta["arrays"]["log_likelihood_history_"] = {"shape": [big.size], "dtype": "float64"}
    arrays["__metadata__"] = np.asarray(json.dumps(meta))
    arrays["log_likelihood_history_"] = big
    np.savez_compressed(tmp_path / "bomb.npz", **arrays)
    del big, arrays
    assert (tmp_path / "bomb.npz").stat().st_size < 2_000_000
    # a member whose .npy header claims far more data than it holds (numpy would allocate it first)
    header = tmp_path / "header.npz"
    with zipfile.ZipFile(fitted["model_file"]) as src, zipfile.ZipFile(header, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "coef_.npy":
                start, end = data.index(b"{"), data.index(b"\n")
                crafted = re.sub(
                    rb"'shape': \([^)]*\)", b"'shape': (900000000,)", data[start:end].rstrip()
                )
                data = data[:start] + crafted.ljust(end - start) + data[end:]
            dst.writestr(info, data)
    tracemalloc.start()
    try:
        for name, match in (("bomb.npz", "expand"), ("header.npz", "damaged|declares")):
            with pytest.raises(ValueError, match=match) as info:
                load_model(tmp_path / name)
            assert name in str(info.value)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20_000_000, peak


def test_no_path_stored_in_a_model_file_is_written(fitted, tmp_path):
    target = tmp_path / "victim" / "overwritten.npz"
    path = _rewrite_meta(
        fitted["model_file"],
        tmp_path / "paths.npz",
        lambda m: {
            **m,
            "params": {**m["params"], "checkpoint_path": str(target), "checkpoint_every": 1},
        },
    )
    loaded = load_model(path)
    assert (
        loaded.checkpoint_path is None and loaded.checkpoint_every is None
    )  # documented: never restored
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded.set_params(n_iter=2).fit(fitted["X"], session_starts=fitted["starts"])
    assert not target.exists() and not target.parent.exists()
    # and save_params does not write the user's checkpoint path into a model file
    with_path = ARHMM(**fitted["kw"], checkpoint_path=str(target))
    for name in ("initial_prob_", "transition_prob_", "coef_", "intercept_", "covariances_"):
        setattr(with_path, name, getattr(fitted["model"], name))
    with_path.n_features_in_ = 2
    with_path.save_params(tmp_path / "saved.npz")
    meta = json.loads(str(_npz_members(tmp_path / "saved.npz")["__metadata__"][()]))
    assert meta["params"]["checkpoint_path"] is None


# --- checkpoints ----------------------------------------------------------------------------------


def _resume(fitted, path, n_iter=6):
    model = ARHMM(n_iter=n_iter, checkpoint_path=path, **fitted["kw"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(fitted["X"], session_starts=fitted["starts"], resume=True)


def test_damaged_and_crafted_checkpoints_name_the_file(fitted, tmp_path):
    good = fitted["checkpoint"].read_bytes()
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0x01
    damaged = {
        "empty.npz": b"",
        "truncated.npz": good[: len(good) // 2],
        "flipped.npz": bytes(flipped),
        "junk.npz": b"PK\x03\x04junk",
    }
    for name, content in damaged.items():
        (tmp_path / name).write_bytes(content)
    crafted = {
        "negative.npz": lambda m: {**m, "iteration": -5},
        "text.npz": lambda m: {**m, "iteration": "5"},
        "missing.npz": lambda m: {k: v for k, v in m.items() if k != "iteration"},
        "history.npz": lambda m: {**m, "iteration": 3},  # 4 log-likelihoods recorded
        "format.npz": lambda m: {**m, "format": "other"},
    }
    for name, edit in crafted.items():
        _rewrite_meta(fitted["checkpoint"], tmp_path / name, edit)
    _rewrite_meta(
        fitted["checkpoint"], tmp_path / "nokey.npz", lambda m: None, lambda a: a.pop("key")
    )
    for name in [*damaged, *crafted, "nokey.npz"]:
        with pytest.raises(ValueError) as info:
            _resume(fitted, tmp_path / name)
        assert str(tmp_path / name) in str(info.value), (name, info.value)


def test_resume_semantics_for_n_iter(fitted, tmp_path):
    """A resumed fit runs up to n_iter in all: fewer than the checkpoint holds is refused, equal
    stops."""
    with pytest.raises(
        ValueError, match=r"holds 4 iterations, more than n_iter=3.*n_iter >= 4"
    ) as info:
        _resume(fitted, fitted["checkpoint"], n_iter=3)
    assert str(fitted["checkpoint"]) in str(info.value)
    same = _resume(fitted, fitted["checkpoint"], n_iter=4)
    assert same.n_iter_ == 4 and len(same.log_likelihood_history_) == 4
    np.testing.assert_array_equal(same.coef_, fitted["model"].coef_)


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated"])
def test_cli_resume_with_a_damaged_checkpoint_is_a_clean_error(dlc_files, tmp_path, content):
    out = tmp_path / "fit"
    out.mkdir()
    (out / "model.checkpoint.npz").write_bytes(content)
    result = CliRunner().invoke(
        main,
        [
            "fit-keypoints",
            str(dlc_files["table"]),
            "--out",
            str(out),
            "--fps",
            "30",
            "--latent-dim",
            "2",
            "--n-states",
            "3",
            "--ar-iters",
            "1",
            "--iters",
            "2",
            "--resume",
            "--no-plots",
            "--no-progress",
        ],
    )
    assert result.exit_code != 0 and isinstance(result.exception, SystemExit), result.output
    assert "model.checkpoint.npz is not a readable behavhmm checkpoint" in result.output


# --- temporary files ------------------------------------------------------------------------------

_WRITER = """
import importlib.util, sys, time
spec = importlib.util.spec_from_file_location("files", sys.argv[1])
files = importlib.util.module_from_spec(spec)
spec.loader.exec_module(files)
with files.atomic_path(sys.argv[2]) as tmp:
    with open(tmp, "wb") as fh:
        fh.write(b"half a checkpoint")
        fh.flush()
        print(tmp, flush=True)
        time.sleep(60)
"""


def test_temporary_file_of_a_killed_writer_is_removed_by_the_next_write(tmp_path):
    import behavhmm._files

    dest = tmp_path / "model.checkpoint.npz"
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, behavhmm._files.__file__, str(dest)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        tmp = Path(proc.stdout.readline().strip())
        assert (
            tmp.is_file()
            and tmp.parent == tmp_path
            and tmp.name.startswith(".model.checkpoint.npz.")
        )
        proc.send_signal(signal.SIGKILL)  # killed mid-write: no cleanup runs
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
    assert tmp.is_file() and not dest.exists()
    kept = tmp_path / f".model.checkpoint.npz.{os.getpid()}-x.tmp"  # a live process's (this one's)
    kept.write_bytes(b"in use")
    write_npz_atomic(dest, {"a": np.arange(4)})  # the next write removes the dead writer's file
    assert not tmp.exists() and kept.exists()
    np.testing.assert_array_equal(read_npz(dest)["a"], np.arange(4))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([dest.name, kept.name])
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    planted = tmp_path / f".model.checkpoint.npz.{int(dead.stdout)}-abc.tmp"
    planted.write_bytes(b"stale")
    (tmp_path / ".other.npz.1-abc.tmp").write_bytes(b"another destination's")
    assert remove_stale_temporaries(dest) == [planted]
    with atomic_path(dest) as own:
        assert own.name.startswith(f".model.checkpoint.npz.{os.getpid()}-") and own.suffix == ".tmp"
