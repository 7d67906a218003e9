"""``behavhmm demo``: the keypoint workflow on the recording bundled with the package."""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from behavhmm import load_model
from behavhmm.analysis import median_duration
from behavhmm.cli import main
from behavhmm.datasets import DEMO_KEYPOINT_SETTINGS, DEMO_RECORDING_FPS, demo_recording
from behavhmm.workflows import read_keypoint_results

CSV = "m3v1mp4DLC_resnet50_openfieldAug20shuffle1_30000.csv"
FILES = sorted(
    [
        "fit_progress.png",
        CSV,
        "model.npz",
        "results.h5",
        "syllable_durations.png",
        "syllable_usage.png",
        # the run-directory files (issue 18)
        CSV.replace(".csv", "_states.npy"),
        "curves.png",
        "fit.log",
        "hparams.yaml",
        "metrics.csv",
    ]
)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """The demo run twice with the default seed, into two folders."""
    root = tmp_path_factory.mktemp("demo")
    outputs = []
    for name in ("first", "second"):
        result = CliRunner().invoke(main, ["demo", "--out", str(root / name), "--no-progress"])
        assert result.exit_code == 0, result.output
        outputs.append((root / name, result.output))
    return outputs


def test_the_bundled_recording_ships_with_its_licence():
    path = demo_recording()
    assert path.stat().st_size > 200_000
    assert "MIT License" in (path.parent / "LICENSE-MIT.txt").read_text()
    readme = (path.parent / "README.md").read_text()
    assert "DeepLabCut/DLC2NWB" in readme and "0dd3d16e240f45518e8fe040a9f8779c2c8f60fc" in readme


def test_demo_writes_the_workflow_files_with_moseq_like_syllables(two_runs):
    out, output = two_runs[0]
    assert sorted(p.name for p in out.iterdir()) == FILES  # no temporary files left
    table = pd.read_csv(out / CSV)
    assert len(table) == 2330
    assert np.isfinite(table.to_numpy(dtype=float)).all()
    np.testing.assert_allclose(table["time_s"], np.arange(2330) / DEMO_RECORDING_FPS)
    syllables = table["syllable"].to_numpy()
    nlags = DEMO_KEYPOINT_SETTINGS["nlags"]
    assert (syllables[:nlags] == -1).all() and (syllables[nlags:] >= 0).all()
    usage = np.bincount(syllables[nlags:]) / (len(syllables) - nlags)
    assert np.sum(usage >= 0.02) >= 4
    starts = np.zeros(len(syllables), bool)
    starts[0] = True
    median_ms = 1000 * median_duration(syllables, starts) / DEMO_RECORDING_FPS
    assert 150 <= median_ms <= 700
    # the summary reports what the files hold
    assert "Frames: 2,330 (78 s at 30 fps)" in output
    assert f"Syllables used: {int(np.sum(usage >= 0.02))} in at least 2 % of the frames" in output
    assert f"Median syllable duration: {median_ms:.0f} ms" in output
    assert str(out) in output
    # the model file is the fitted model, its syllables numbered by usage
    model = load_model(out / "model.npz")
    assert (
        model.kappa == DEMO_KEYPOINT_SETTINGS["kappa"]
        and model.latent_dim == DEMO_KEYPOINT_SETTINGS["latent_dim"]
    )
    for name in (
        "transition_prob_",
        "coef_",
        "intercept_",
        "covariances_",
        "pca_components_",
        "noise_variance_",
    ):
        assert np.isfinite(getattr(model, name)).all(), name
    (res,) = read_keypoint_results(out / "results.h5")
    np.testing.assert_array_equal(res.syllables, syllables)
    assert (
        np.isfinite(res.probabilities[nlags:]).all() and np.isnan(res.probabilities[:nlags]).all()
    )
    np.testing.assert_allclose(res.probabilities[nlags:].sum(axis=1), 1.0, atol=1e-4)
    with h5py.File(out / "results.h5") as f:
        assert (
            f.attrs["model"] == "model.npz"
            and float(f.attrs["kappa"]) == DEMO_KEYPOINT_SETTINGS["kappa"]
        )


def test_demo_files_are_identical_for_the_same_seed(two_runs):
    """Every file, byte for byte: CSV, HDF5, the model (.npz) and the PNG figures."""
    (first, _), (second, _) = two_runs
    for name in FILES:
        if name in ("hparams.yaml", "fit.log"):  # they name the folder, the time and durations
            continue
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    import yaml

    one, two = (yaml.safe_load((d / "hparams.yaml").read_text()) for d in (first, second))
    assert one["model"] == two["model"] and one["data"] == two["data"]


def test_demo_options_belong_to_their_mode(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["demo", "--model", "keypoints"])
    assert (
        result.exit_code == 2
        and "--model describes the simulated demo: add --simulated" in result.output
    )
    result = runner.invoke(main, ["demo", "--n-states", "3", "--frames", "100"])
    assert (
        result.exit_code == 2
        and "--n-states, --frames describe the simulated demo" in result.output
    )
    result = runner.invoke(main, ["demo", "--simulated", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "--simulated writes no files" in result.output
