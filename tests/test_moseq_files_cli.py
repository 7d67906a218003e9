"""moseq2 PC-score files, results files, and the learn-model / apply-model / kappa-scan /
count-frames CLI."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
from click.testing import CliRunner

h5py = pytest.importorskip("h5py")
pytest.importorskip("yaml")

from behavhmm import load_model  # noqa: E402
from behavhmm.cli import main  # noqa: E402
from behavhmm.io import (  # noqa: E402
    load_index_groups,
    load_pc_scores,
    read_syllable_results,
    write_syllable_results,
)

PC_FILE = "moseq2-depth-testdata/pca_pca_scores.h5"


@pytest.fixture
def pc_file(tmp_path):
    """Two sessions of 5 PCs; session 'b' has dropped (NaN) rows 3-4 and 9."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(12, 5))
    b = rng.normal(size=(15, 5))
    b[[3, 4, 9]] = np.nan
    path = tmp_path / "pca_scores.h5"
    with h5py.File(path, "w") as f:
        f["scores/b"] = b
        f["scores/a"] = a
    index = tmp_path / "moseq2-index.yaml"
    index.write_text("files:\n- uuid: a\n  group: wt\n- uuid: b\n  group: ko\n")
    return path, index, a, b


def test_pc_scores_interpolate(pc_file):
    path, index, a, b = pc_file
    scores = load_pc_scores(path, n_components=3, index=index)
    assert scores.sessions == ["a", "b"]
    assert scores.scores.shape == (27, 3)
    np.testing.assert_array_equal(np.flatnonzero(scores.session_starts), [0, 12])
    np.testing.assert_array_equal(scores.scores[:12], a[:, :3])
    got_b = scores.scores[12:]
    np.testing.assert_allclose(
        got_b[[3, 4]], [b[2, :3] + (b[5, :3] - b[2, :3]) * f for f in (1 / 3, 2 / 3)]
    )
    np.testing.assert_allclose(got_b[9], (b[8, :3] + b[10, :3]) / 2)
    assert scores.filled.sum() == 3 and np.all(scores.filled[12 + np.array([3, 4, 9])])
    np.testing.assert_array_equal(scores.session_groups, ["wt", "ko"])
    assert np.isfinite(scores.scores).all()


def test_pc_scores_split_at_dropped_frames(pc_file):
    path, index, _, b = pc_file
    scores = load_pc_scores(path, None, sessions=["b"], nan_policy="split", index=index)
    assert scores.scores.shape == (12, 5)
    np.testing.assert_array_equal(np.flatnonzero(scores.session_starts), [0, 3, 7])
    np.testing.assert_array_equal(scores.frame_index, [0, 1, 2, 5, 6, 7, 8, 10, 11, 12, 13, 14])
    np.testing.assert_array_equal(scores.session_groups, ["ko", "ko", "ko"])


def test_pc_scores_errors(pc_file, tmp_path):
    path, _, _, _ = pc_file
    with pytest.raises(FileNotFoundError):
        load_pc_scores(tmp_path / "nope.h5")
    with pytest.raises(ValueError, match="n_components=9"):
        load_pc_scores(path, 9)
    with pytest.raises(ValueError, match="no session"):
        load_pc_scores(path, sessions=["c"])
    with pytest.raises(ValueError, match="nan_policy"):
        load_pc_scores(path, nan_policy="drop")
    empty = tmp_path / "empty.h5"
    h5py.File(empty, "w").close()
    with pytest.raises(ValueError, match="scores"):
        load_pc_scores(empty)
    bad_index = tmp_path / "index.yaml"
    bad_index.write_text("sessions: []\n")
    with pytest.raises(ValueError, match="index file"):
        load_index_groups(bad_index)


def test_results_file_round_trip_is_atomic_and_readable(tmp_path):
    dest = tmp_path / "out" / "results.h5"
    labels = {"s1": np.array([-1, 0, 0, 2]), "s2": np.array([1, 1])}
    write_syllable_results(
        dest, labels, attrs={"kappa": 100.0}, extra={"probs": {"s1": np.ones((4, 3))}}
    )
    back = read_syllable_results(dest)
    assert set(back) == {"s1", "s2"}
    np.testing.assert_array_equal(back["s1"], labels["s1"])
    assert [p.name for p in dest.parent.iterdir()] == ["results.h5"]  # no temporary file left
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o666 & ~umask  # not mkstemp's private 0600
    with pytest.raises(TypeError):  # a failed write leaves the previous file intact
        write_syllable_results(dest, {"s1": object()})
    np.testing.assert_array_equal(read_syllable_results(dest)["s2"], labels["s2"])


def test_count_frames_on_real_scores(shared_data):
    result = CliRunner().invoke(main, ["count-frames", str(shared_data / PC_FILE)])
    assert result.exit_code == 0, result.output
    assert "total: 1,816 frames (16 NaN) in 2 session(s)" in result.output


def test_learn_and_apply_model_end_to_end_on_real_scores(shared_data, tmp_path):
    source = shared_data / PC_FILE
    model_file = tmp_path / "model.npz"
    runner = CliRunner()
    result = runner.invoke(
        main,
        [
            "learn-model",
            str(source),
            str(model_file),
            "--num-iter",
            "5",
            "--n-states",
            "12",
            "--npcs",
            "6",
            "--no-progress",
            "--checkpoint-every",
            "5",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "16 dropped frames interpolated" in result.output
    assert model_file.exists() and (tmp_path / "model.results.h5").exists()
    labels = read_syllable_results(tmp_path / "model.results.h5")
    assert sorted(labels) == sorted(h5py.File(source, "r")["scores"].keys())
    for z in labels.values():
        assert z.shape == (908,)
        assert np.all(z[:3] == -1) and np.all(
            (z[3:] >= 0) & (z[3:] < 12)
        )  # nlags=3 conditioning frames
    with h5py.File(tmp_path / "model.results.h5", "r") as f:
        order = f["syllable_order/order"][()]
        for name, z in labels.items():
            by_usage = f["labels_by_usage"][name][()]
            np.testing.assert_array_equal(order[by_usage[3:]], z[3:])

    model = load_model(model_file)
    assert model.n_features_in_ == 6 and model.n_states == 12

    applied = tmp_path / "applied.h5"
    result = runner.invoke(main, ["apply-model", str(model_file), str(source), str(applied)])
    assert result.exit_code == 0, result.output
    again = read_syllable_results(applied)
    for name in labels:  # Viterbi under the saved parameters: the same labels
        np.testing.assert_array_equal(again[name], labels[name])

    result = runner.invoke(
        main, ["learn-model", str(source), str(tmp_path / "m2.npz"), "--npcs", "99"]
    )
    assert (
        result.exit_code != 0
        and "n_components=99" in result.output
        and "Traceback" not in result.output
    )


@pytest.mark.slow  # 10-19 s in the default run (CI, 2 cores)
def test_kappa_scan_command(shared_data, tmp_path):
    dest = tmp_path / "scan.csv"
    result = CliRunner().invoke(
        main,
        [
            "kappa-scan",
            str(shared_data / PC_FILE),
            str(dest),
            "--num-iter",
            "3",
            "--n-states",
            "8",
            "--npcs",
            "4",
            "--min-kappa",
            "10",
            "--max-kappa",
            "1e6",
            "--n-kappas",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    import pandas as pd

    table = pd.read_csv(dest)
    np.testing.assert_allclose(table["kappa"], [10, 1e6])
    assert {"median_duration", "log_likelihood", "median_duration_s"} <= set(table.columns)
    assert np.isfinite(table["log_likelihood"]).all()


def test_raw_pc_scores_fit_in_float32_without_whitening(shared_data):
    # moseq2's PC scores reach |x| = 764 (std up to 90). Before issue 14's float32-stable AR
    # updates this fit raised FloatingPointError (the old test asked for whiten="all"); now the
    # raw and the whitened fits both give finite, non-decreasing EM log-likelihoods.
    from behavhmm import ARHMM

    scores = load_pc_scores(shared_data / PC_FILE, 10)
    assert np.abs(scores.scores).max() > 100
    for whiten in ("none", "all"):
        model = ARHMM(n_states=20, algorithm="em", n_iter=5, whiten=whiten, progress_bar=False)
        model.setup(ar_params_init="random")
        model.fit(scores.scores, session_starts=scores.session_starts)
        history = np.asarray(model.log_likelihood_history_)
        assert np.isfinite(history).all(), whiten
        assert np.all(np.diff(history) > -1e-3 * np.abs(history[1:])), (whiten, history)
