"""Run directories, `behavhmm fit CONFIG.yaml`, grids, and old fit-keypoints folders."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from behavhmm.cli import main
from behavhmm.io import write_daart_labels
from behavhmm.runs import (
    ConfigError,
    claim_run_dir,
    claim_versions,
    fit_config,
    load_config,
    read_run,
    validate_config,
)
from behavhmm.workflows import read_keypoint_results

OLD_FOLDER = Path(__file__).parent / "data" / "keypoint_results_v0_1"
N_SESSIONS, N_FRAMES = 3, 120


def _write_features(folder: Path) -> list[str]:
    """Three sessions of 2-D features from two well-separated states, and their daart labels."""
    rng = np.random.default_rng(18)
    names = []
    for s in range(N_SESSIONS):
        z = np.repeat(rng.integers(0, 2, N_FRAMES // 10), 10)
        X = np.c_[3.0 * z, -2.0 * z] + rng.normal(0, 0.4, (N_FRAMES, 2))
        pd.DataFrame(X, columns=["a", "b"]).to_csv(folder / f"s{s}.csv", index=False)
        labels = np.where(np.arange(N_FRAMES) < 30, z, -1)  # the first 30 frames labelled
        write_daart_labels(folder / f"s{s}_labels.csv", labels, ["low", "high"])
        names.append(f"s{s}")
    return names


def _config(folder: Path, **extra) -> Path:
    config = {
        "model": {"type": "GaussianHMM", "params": {"n_states": 2, "n_iter": 8}},
        "data": {"kind": "features", "paths": [f"s{s}.csv" for s in range(N_SESSIONS)]},
        "output": "runs",
        **extra,
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def labelled_run(tmp_path_factory):
    """One `behavhmm fit` with hand labels (daart files)."""
    folder = tmp_path_factory.mktemp("fit")
    _write_features(folder)
    labels = {"paths": [f"s{s}_labels.csv" for s in range(N_SESSIONS)], "weight": 1.0}
    path = _config(folder, labels=labels)
    config = yaml.safe_load(path.read_text())
    config["model"]["params"]["n_iter"] = 4
    path.write_text(yaml.safe_dump(config))
    result = CliRunner().invoke(main, ["fit", str(path)])
    assert result.exit_code == 0, result.output
    return folder, result.output


def test_claim_run_dir_never_reuses_a_run(tmp_path):
    out = tmp_path / "out"
    assert claim_run_dir(out) == out  # a fresh folder is the run itself
    (out / "hparams.yaml").write_text("{}")
    assert claim_run_dir(out) == out / "version_1"  # the root counts as version 0
    assert claim_run_dir(out) == out / "version_2"
    assert claim_versions(out, 2) == [out / "version_3", out / "version_4"]
    fresh = tmp_path / "grid"
    assert claim_versions(fresh, 2) == [fresh / "version_0", fresh / "version_1"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError):
        claim_run_dir(tmp_path / "file")


def test_old_style_folder_marks_its_root_as_taken(tmp_path):
    old = tmp_path / "fit"
    shutil.copytree(OLD_FOLDER / "fit", old)
    assert claim_run_dir(old) == old / "version_1"


@pytest.mark.parametrize(
    "change, message",
    [
        (
            {"model": {"type": "GaussianHMM", "params": {"n_states": "a"}}},
            "model.params.n_states: expected an integer in [1, inf], got 'a'",
        ),
        ({"model": {"type": "GaussianHMM", "params": {"n_state": 2}}}, "model.params.n_state: not"),
        ({"model": {"type": "HMM"}}, "model.type: expected one of"),
        ({"model": {"type": "GLMHMM", "params": {}}}, "model.params.n_states: missing"),
        ({"model": {"type": "KeypointSLDS"}}, "data.kind: KeypointSLDS cannot fit 'features'"),
        ({"data": {"kind": "video", "paths": ["s0.csv"]}}, "data.kind: expected one of"),
        ({"data": {"kind": "features", "paths": ["nope.csv"]}}, "data.paths[0]: no such file"),
        (
            {"data": {"kind": "features", "paths": ["s0.csv"], "options": {"keys": 1}}},
            "data.options.keys: unknown option",
        ),
        ({"labels": {"paths": ["s0.csv"], "weight": 2}}, "labels.weight: expected a number"),
        ({"labels": {"paths": ["s0.csv"], "format": "boris"}}, "labels.fps: BORIS"),
        ({"cv": {"n_splits": 1}}, "cv.n_splits: expected an int >= 2"),
        ({"outputs": "x"}, "outputs: unknown key"),
        ({"model": {"type": "GaussianHMM", "params": {"n_iter": []}}}, "model.params.n_iter: an"),
    ],
)
def test_config_errors_name_the_key(tmp_path, change, message):
    (tmp_path / "s0.csv").write_text("a\n1\n")
    raw = {
        "model": {"type": "GaussianHMM"},
        "data": {"kind": "features", "paths": ["s0.csv"]},
        "output": "runs",
        **change,
    }
    with pytest.raises(ConfigError) as info:
        validate_config(raw, base_dir=tmp_path)
    assert str(info.value).startswith(message)


def test_config_grid_defaults_and_yaml_floats(tmp_path):
    (tmp_path / "s0.csv").write_text("a\n1\n")
    path = tmp_path / "c.yaml"
    path.write_text(
        "model: {type: GaussianHMM, params: {n_states: [2, 3], kappa: 1e6, mean_prior: [[0, 1]]}}\n"
        "data: {kind: features, path: s0.csv}\noutput: {dir: out}\n"
    )
    config = load_config(path)
    assert config["model"]["grid"] == {"n_states": [2, 3], "kappa": [1e6], "mean_prior": [[0, 1]]}
    assert config["output"] == str(tmp_path / "out") and config["n_jobs"] == 1
    assert config["labels"] is None and config["cv"] is None
    path.write_text("model: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)


def test_fit_writes_the_run_layout(labelled_run):
    folder, output = labelled_run
    run = folder / "runs"
    for name in ("metrics.csv", "hparams.yaml", "curves.png", "model.npz", "fit.log"):
        assert (run / name).is_file(), name
    assert (run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for s in range(N_SESSIONS):
        probs = np.load(run / f"s{s}_states.npy", allow_pickle=False)
        assert probs.shape == (N_FRAMES, 2) and probs.dtype == np.float32
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
        table = pd.read_csv(run / f"s{s}.csv")
        assert list(table.columns) == ["frame", "state"] and len(table) == N_FRAMES
    metrics = pd.read_csv(run / "metrics.csv")
    assert list(metrics.columns) == ["iteration", "log_likelihood", "label_accuracy", "label_f1"]
    assert metrics["iteration"].tolist() == list(range(1, len(metrics) + 1))
    assert np.all(np.diff(metrics["log_likelihood"]) > -1e-3)  # EM does not go down
    last = metrics.iloc[-1]
    assert last["label_accuracy"] == 1.0 and last["label_f1"] == 1.0  # labels clamp the states
    assert metrics["label_accuracy"].iloc[:-1].isna().all()  # measured once, at the end
    assert "labels: accuracy 1.000, F1 1.000 on 90 frames" in (run / "fit.log").read_text()
    assert "log-likelihood" in output


@pytest.mark.slow
def test_whole_session_cv_gives_the_heldout_log_likelihood(tmp_path):
    from behavhmm import GaussianHMM
    from behavhmm.runs import load_data

    _write_features(tmp_path)
    config = load_config(_config(tmp_path, cv={"n_splits": 3}))
    done = fit_config(config)
    metrics = pd.read_csv(done["runs"][0] / "metrics.csv")
    held = metrics["heldout_log_likelihood"]
    assert held.iloc[:-1].isna().all() and np.isfinite(held.iloc[-1])
    data = load_data(config["data"], "GaussianHMM")  # by hand: fit on two sessions, score one
    expected = 0.0
    for test in range(N_SESSIONS):
        train = data.take([i for i in range(N_SESSIONS) if i != test])
        model = GaussianHMM(n_states=2, n_iter=4, progress_bar=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # 4 EM iterations do not converge
            model.fit(train.X, session_starts=train.session_starts)
        held_out = data.take([test])
        expected += model.score(held_out.X, session_starts=held_out.session_starts)
    np.testing.assert_allclose(held.iloc[-1], expected, rtol=1e-5)
    assert "held-out log-likelihood (3 folds" in (done["runs"][0] / "fit.log").read_text()


def test_hparams_record_parameters_files_and_versions(labelled_run):
    import hashlib

    import jax

    folder, _ = labelled_run
    hparams = yaml.safe_load((folder / "runs" / "hparams.yaml").read_text())
    params = hparams["model"]["params"]
    assert params["n_states"] == 2 and params["n_iter"] == 4 and params["random_state"] == 0
    assert params["covariance_type"] == "full"  # every estimator parameter, defaults too
    for record in hparams["data"]["files"] + hparams["labels"]["files"]:
        digest = hashlib.sha256(Path(record["path"]).read_bytes()).hexdigest()
        assert record["sha256"] == digest
    assert hparams["versions"]["jax"] == jax.__version__
    assert hparams["labels"]["class_names"] is None and "cv" not in hparams


def test_read_run_and_a_second_run_goes_to_version_1(labelled_run):
    folder, _ = labelled_run
    run = read_run(folder / "runs")
    assert sorted(run.probabilities) == ["s0", "s1", "s2"]
    assert run.model.n_states == 2 and run.hparams["model"]["type"] == "GaussianHMM"
    np.testing.assert_array_equal(
        run.labels["s0"][:30], np.argmax(run.probabilities["s0"][:30], axis=1)
    )
    config = load_config(folder / "config.yaml")
    config["labels"] = None
    done = fit_config(config)
    assert done["runs"] == [folder / "runs" / "version_1"]
    assert (folder / "runs" / "model.npz").is_file()  # the first run is untouched


def test_rerun_from_hparams_reproduces_the_model_bit_for_bit(labelled_run, tmp_path):
    folder, _ = labelled_run
    result = CliRunner().invoke(
        main, ["fit", str(folder / "runs" / "hparams.yaml"), "--out", str(tmp_path / "again")]
    )
    assert result.exit_code == 0, result.output
    with (
        np.load(folder / "runs" / "model.npz") as first,
        np.load(tmp_path / "again" / "model.npz") as second,
    ):
        assert sorted(first.files) == sorted(second.files)
        for key in first.files:
            np.testing.assert_array_equal(first[key], second[key], err_msg=key)
    np.testing.assert_array_equal(
        np.load(folder / "runs" / "s1_states.npy"), np.load(tmp_path / "again" / "s1_states.npy")
    )


def test_rerun_warns_when_a_data_file_changed(labelled_run, tmp_path):
    folder, _ = labelled_run
    hparams = yaml.safe_load((folder / "runs" / "hparams.yaml").read_text())
    copy = tmp_path / "s0.csv"
    shutil.copy(hparams["data"]["paths"][0], copy)
    with open(copy, "a") as fh:
        fh.write("0.0,0.0\n")
    hparams["data"]["paths"][0] = hparams["data"]["files"][0]["path"] = str(copy)
    with pytest.warns(UserWarning, match="has changed since the run was recorded"):
        validate_config(hparams)


def test_grid_points_run_in_order_with_one_compiled_program(tmp_path):
    _write_features(tmp_path)
    config = load_config(_config(tmp_path))
    config["model"]["grid"]["random_state"] = [0, 1]  # same shapes: compiled once
    done = fit_config(config)
    out = tmp_path / "runs"
    assert done["runs"] == [out / "version_0", out / "version_1"]
    summary = pd.read_csv(done["summary"])
    assert summary["random_state"].tolist() == [0, 1]
    np.testing.assert_allclose(
        summary["log_likelihood"], [r["log_likelihood"] for r in done["rows"]]
    )
    again = fit_config(config)  # a second grid continues the numbering, the summary grows
    assert again["runs"] == [out / "version_2", out / "version_3"]
    assert pd.read_csv(out / "summary.csv")["version"].tolist() == [
        f"version_{i}" for i in range(4)
    ]


@pytest.mark.slow
def test_grid_of_two_by_two_writes_four_versions_and_a_summary(tmp_path):
    _write_features(tmp_path)
    params = {"n_states": [2, 3], "covariance_type": ["diag", "spherical"], "n_iter": 3}
    path = _config(tmp_path, n_jobs=2)
    config = yaml.safe_load(path.read_text())
    config["model"]["params"] = params
    path.write_text(yaml.safe_dump(config))
    result = CliRunner().invoke(main, ["fit", str(path)])
    assert result.exit_code == 0, result.output
    assert "Grid of 4 fits over covariance_type, n_states." in result.output
    out = tmp_path / "runs"
    summary = pd.read_csv(out / "summary.csv")
    assert summary["version"].tolist() == [f"version_{i}" for i in range(4)]
    assert sorted(zip(summary["n_states"], summary["covariance_type"], strict=True)) == [
        (2, "diag"),
        (2, "spherical"),
        (3, "diag"),
        (3, "spherical"),
    ]
    for _, row in summary.iterrows():
        hparams = yaml.safe_load((out / row["version"] / "hparams.yaml").read_text())
        assert hparams["model"]["params"]["n_states"] == row["n_states"]
        assert hparams["model"]["params"]["covariance_type"] == row["covariance_type"]
        assert np.load(out / row["version"] / "s0_states.npy").shape == (N_FRAMES, row["n_states"])


def test_fit_command_reports_a_bad_config_in_one_line(tmp_path):
    (tmp_path / "s0.csv").write_text("a\n1\n")
    path = tmp_path / "c.yaml"
    path.write_text(
        "model: {type: GaussianHMM, params: {n_states: a}}\n"
        "data: {kind: features, paths: [s0.csv]}\noutput: out\n"
    )
    result = CliRunner().invoke(main, ["fit", str(path)])
    assert result.exit_code == 1
    assert f"Error: {path}: model.params.n_states: expected an integer" in result.output
    assert "Traceback" not in result.output
    help_text = CliRunner().invoke(main, ["fit", "--help"]).output
    assert "hparams.yaml" in help_text and "n_states: [3, 5]" in help_text


def test_old_fit_keypoints_folder_still_loads():
    """tests/data/keypoint_results_v0_1/fit was written by main before the run layout."""
    old = OLD_FOLDER / "fit"
    results = read_keypoint_results(old / "results.h5")
    assert [r.name for r in results] == ["walk"] and len(results[0].syllables) == 150
    run = read_run(old)
    assert run.metrics is None and run.hparams is None
    assert run.model.n_states == 3 and type(run.model).__name__ == "KeypointSLDS"
    np.testing.assert_array_equal(run.labels["walk"], results[0].syllables)
    assert run.probabilities["walk"].shape == (150, 3)
    table = pd.read_csv(old / "walk.csv")
    np.testing.assert_array_equal(table["syllable"], results[0].syllables)


@pytest.mark.slow
def test_apply_keypoints_reads_an_old_model_and_fit_keypoints_versions(tmp_path):
    """apply-keypoints with the old folder's model; fit-keypoints twice into one folder."""
    runner = CliRunner()
    old = OLD_FOLDER / "fit"
    result = runner.invoke(
        main,
        ["apply-keypoints", str(old / "model.npz"), str(OLD_FOLDER / "walk.csv")]
        + ["--out", str(tmp_path / "applied")],
    )
    assert result.exit_code == 0, result.output
    applied = read_keypoint_results(tmp_path / "applied" / "results.h5")
    np.testing.assert_array_equal(
        applied[0].syllables, read_keypoint_results(old / "results.h5")[0].syllables
    )
    args = ["fit-keypoints", str(OLD_FOLDER / "walk.csv"), "--out", str(tmp_path / "fit")]
    args += ["--fps", "30", "--latent-dim", "2", "--n-states", "3", "--ar-iters", "2"]
    args += ["--iters", "2", "--no-plots", "--no-progress"]
    for _ in range(2):
        result = runner.invoke(main, args)
        assert result.exit_code == 0, result.output
    for run_dir in (tmp_path / "fit", tmp_path / "fit" / "version_1"):
        run = read_run(run_dir)
        assert run.hparams["model"]["type"] == "KeypointSLDS"
        assert run.hparams["data"]["options"]["fps"] == 30
        assert run.probabilities["walk"].shape == (150, 3)
        assert len(run.metrics) == 2 and (run_dir / "results.h5").is_file()
        assert (run_dir / "fit.log").read_text().startswith("Read 150 frames")


@pytest.mark.slow  # about 14 s on a loaded 2-core machine (compiling the fit is most of it)
@pytest.mark.shared_data
def test_fit_a_grid_on_a_real_pose_file(shared_data, tmp_path):
    """`behavhmm fit` on deepof's square-arena mouse (DLC .h5, MIT): 2 x 2 grid, 4 runs."""
    source = shared_data / "pose-deepof-mice" / "testDLC_square_arena.h5"
    config = {
        "model": {
            "type": "GaussianHMM",
            # two fields that keep the shapes, so the 4 fits share one compiled program
            "params": {"n_states": 3, "kappa": [0.0, 50.0], "alpha": [1.0, 2.0], "n_iter": 5},
        },
        "data": {
            "kind": "keypoints",
            "paths": [str(source)],
            "options": {"bodyparts": ["Nose", "Center", "Tail_base"], "fps": 30.0},
        },
        "output": str(tmp_path / "runs"),
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    result = CliRunner().invoke(main, ["fit", str(path)])
    assert result.exit_code == 0, result.output
    out = tmp_path / "runs"
    summary = pd.read_csv(out / "summary.csv")
    assert summary["version"].tolist() == [f"version_{i}" for i in range(4)]
    assert sorted(zip(summary["kappa"], summary["alpha"], strict=True)) == [
        (0.0, 1.0),
        (0.0, 2.0),
        (50.0, 1.0),
        (50.0, 2.0),
    ]
    assert np.all(np.isfinite(summary["log_likelihood"]))
    for _, row in summary.iterrows():
        run = read_run(out / row["version"])
        (name,) = run.probabilities
        assert run.probabilities[name].shape == (451, 3)
        assert run.hparams["model"]["params"]["kappa"] == row["kappa"]
        assert run.hparams["model"]["params"]["alpha"] == row["alpha"]
        assert run.hparams["data"]["files"][0]["sha256"] == hashlib_sha256(source)
        assert len(run.metrics) >= 1 and (out / row["version"] / "curves.png").is_file()


def hashlib_sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_choice_tables_load_by_session_and_labels_must_match_sessions(tmp_path):
    from behavhmm.runs import load_data, load_labels

    table = pd.DataFrame(
        {
            "session": [1, 1, 1, 2, 2],
            "stim": [0.5, -0.5, 1.0, 0.0, -1.0],
            "right": [1, 0, 1, 0, 0],
        }
    )
    table.to_csv(tmp_path / "trials.csv", index=False)
    raw = {
        "model": {"type": "GLMHMM", "params": {"n_states": 2}},
        "data": {
            "kind": "choice",
            "paths": ["trials.csv"],
            "options": {"y": "right", "X": ["stim"], "session": "session"},
        },
        "output": "runs",
    }
    config = validate_config(raw, base_dir=tmp_path)
    data = load_data(config["data"], "GLMHMM")
    assert data.X.shape == (5, 1) and data.y.tolist() == [1, 0, 1, 0, 0]
    assert data.session_starts.tolist() == [True, False, False, True, False]
    assert data.names == ["trials_1", "trials_2"]
    assert data.take([1]).X[:, 0].tolist() == [0.0, -1.0]
    raw["data"]["options"]["X"] = ["stimulus"]
    with pytest.raises(ValueError, match=r"no column\(s\) \['stimulus'\]"):
        load_data(validate_config(raw, base_dir=tmp_path)["data"], "GLMHMM")
    del raw["data"]["options"]["y"]
    with pytest.raises(ConfigError, match="data.options.y: missing"):
        validate_config(raw, base_dir=tmp_path)
    write_daart_labels(tmp_path / "l.csv", np.array([0, -1, 1]), ["a", "b"])
    labels = validate_config(
        {**raw, "data": config["data"], "labels": {"paths": ["l.csv"]}}, base_dir=tmp_path
    )["labels"]
    with pytest.raises(ValueError, match=r"labels.paths: 1 file\(s\) for 2 session\(s\)"):
        load_labels(labels, data)
    labels["paths"] = [str(tmp_path / "l.csv")] * 2
    with pytest.raises(ValueError, match="3 frames, its session has 2"):
        load_labels(labels, data)
    labels["paths"] = [str(tmp_path / "l.csv"), str(tmp_path / "l.csv")]
    one = data.take([0])
    one_labels, names = load_labels({**labels, "paths": labels["paths"][:1]}, one)
    assert one_labels.tolist() == [0, -1, 1] and names == ["a", "b"]


@pytest.mark.slow
def test_fit_a_keypoint_slds_from_a_config(tmp_path):
    config = {
        "model": {
            "type": "KeypointSLDS",
            "params": {"n_states": 3, "latent_dim": 2, "n_iter_ar": 2, "n_iter": 2},
        },
        "data": {
            "kind": "keypoints",
            "paths": [str(OLD_FOLDER / "walk.csv")],
            "options": {"fps": 30},
        },
        "output": str(tmp_path / "runs"),
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    result = CliRunner().invoke(main, ["fit", str(path)])
    assert result.exit_code == 0, result.output
    run = read_run(tmp_path / "runs")
    assert run.probabilities["walk"].shape == (150, 3)
    assert type(run.model).__name__ == "KeypointSLDS" and len(run.metrics) == 2


@pytest.mark.slow
def test_learn_model_writes_a_run_directory(tmp_path):
    import h5py

    rng = np.random.default_rng(3)
    with h5py.File(tmp_path / "pca_scores.h5", "w") as f:
        for uuid in ("aaa", "bbb"):
            f.create_dataset(f"scores/{uuid}", data=rng.normal(size=(200, 4)).cumsum(axis=0) / 10)
    args = ["learn-model", str(tmp_path / "pca_scores.h5"), str(tmp_path / "model.npz")]
    args += ["--algorithm", "em", "--num-iter", "3", "--n-states", "3", "--npcs", "2"]
    for _ in range(2):
        result = CliRunner().invoke(main, args + ["--no-progress"])
        assert result.exit_code == 0, result.output
    for run_dir in (tmp_path / "model_run", tmp_path / "model_run" / "version_1"):
        run = read_run(run_dir)
        assert sorted(run.probabilities) == ["aaa", "bbb"]
        assert run.probabilities["aaa"].shape == (200, 3)
        assert np.isnan(run.probabilities["aaa"][:3]).all()  # nlags=3 conditioning frames
        assert (run.labels["aaa"][:3] == -1).all() and (run.labels["aaa"][3:] >= 0).all()
        assert run.hparams["data"]["kind"] == "pc_scores" and len(run.metrics) >= 1
    again = CliRunner().invoke(
        main, ["fit", str(tmp_path / "model_run" / "hparams.yaml"), "--out", str(tmp_path / "re")]
    )
    assert again.exit_code == 0, again.output
    np.testing.assert_array_equal(
        read_run(tmp_path / "re").model.coef_, read_run(tmp_path / "model_run").model.coef_
    )
