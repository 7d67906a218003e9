"""The keypoint workflow: fit-keypoints / apply-keypoints end to end on a real file, results files,
relabelling."""

from __future__ import annotations

import json

import jax
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

h5py = pytest.importorskip("h5py")
pytest.importorskip("tables")
pytest.importorskip("matplotlib")

from behavhmm import load_model  # noqa: E402
from behavhmm.analysis import permute_states  # noqa: E402
from behavhmm.cli import main  # noqa: E402
from behavhmm.datasets import demo_keypoint_slds  # noqa: E402
from behavhmm.workflows import KeypointResults, read_keypoint_results, write_keypoint_results  # noqa: E402

DLC_FILE = "pose-dlc-openfield-mouse/m3v1mp4DLC_resnet50_openfieldAug20shuffle1_30000.h5"


@pytest.mark.slow  # 10-19 s in the default run (CI, 2 cores)
def test_fit_and_apply_keypoints_end_to_end_on_a_real_file(shared_data, tmp_path):
    source = shared_data / DLC_FILE
    out = tmp_path / "fit"
    runner = CliRunner()
    result = runner.invoke(
        main,
        [
            "fit-keypoints",
            str(source),
            "--out",
            str(out),
            "--fps",
            "30",
            "--latent-dim",
            "3",
            "--n-states",
            "8",
            "--ar-iters",
            "3",
            "--iters",
            "3",
            "--checkpoint-every",
            "2",
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    with np.load(out / "model.checkpoint.npz") as ck:  # written after sweeps 2 and 3
        assert json.loads(str(ck["__metadata__"][()]))["iteration"] == 3
    assert "Read 2,330 frames x 4 keypoints (2-D) in 1 session(s) at 30 fps" in result.output
    assert "median duration" in result.output and "ms" in result.output
    for name in (
        "model.npz",
        "results.h5",
        "syllable_usage.png",
        "syllable_durations.png",
        "fit_progress.png",
    ):
        assert (out / name).is_file(), name
    (res,) = read_keypoint_results(out / "results.h5")
    assert res.syllables.shape == (2330,) and res.fps == 30.0
    np.testing.assert_allclose(res.timestamps[:3], [0, 1 / 30, 2 / 30])
    assert np.all(res.syllables[:3] == -1) and np.all(
        (res.syllables[3:] >= 0) & (res.syllables[3:] < 8)
    )
    for field in ("latents", "centroid", "heading"):  # no NaN anywhere in the results
        assert np.isfinite(getattr(res, field)).all(), field
    assert np.isfinite(res.probabilities[3:]).all()
    np.testing.assert_allclose(res.probabilities[3:].sum(axis=1), 1.0, atol=1e-4)
    # syllable 0 is the most used, and the usage is non-increasing in the label
    usage = np.bincount(res.syllables[res.syllables >= 0], minlength=8)
    assert np.all(np.diff(usage) <= 0)
    table = pd.read_csv(out / f"{res.name}.csv")
    assert list(table.columns[:6]) == [
        "frame",
        "time_s",
        "syllable",
        "centroid_x",
        "centroid_y",
        "heading",
    ]
    np.testing.assert_array_equal(table["syllable"], res.syllables)
    # centroid in pixels near the tracked keypoints' mean
    with h5py.File(out / "results.h5", "r") as f:
        assert f.attrs["kappa"] == 1e6

    model = load_model(out / "model.npz")
    assert model.n_states == 8
    # the chain continues from its checkpoint (one more sweep)
    resumed = runner.invoke(
        main,
        [
            "fit-keypoints",
            str(source),
            "--out",
            str(tmp_path / "resumed"),
            "--fps",
            "30",
            "--latent-dim",
            "3",
            "--n-states",
            "8",
            "--ar-iters",
            "3",
            "--iters",
            "4",
            "--resume",
            "--no-plots",
            "--no-progress",
        ],
    )
    assert resumed.exit_code != 0 and "no checkpoint" in resumed.output  # another --out holds none
    (out / "model.checkpoint.npz").rename(tmp_path / "resumed" / "model.checkpoint.npz")
    resumed = runner.invoke(
        main,
        [
            "fit-keypoints",
            str(source),
            "--out",
            str(tmp_path / "resumed"),
            "--fps",
            "30",
            "--latent-dim",
            "3",
            "--n-states",
            "8",
            "--ar-iters",
            "3",
            "--iters",
            "4",
            "--resume",
            "--no-plots",
            "--no-progress",
        ],
    )
    assert resumed.exit_code == 0, resumed.output
    with np.load(tmp_path / "resumed" / "model.checkpoint.npz") as ck:
        assert json.loads(str(ck["__metadata__"][()]))["iteration"] == 4
    applied = tmp_path / "applied"
    result = runner.invoke(
        main,
        [
            "apply-keypoints",
            str(out / "model.npz"),
            str(source),
            "--out",
            str(applied),
            "--fps",
            "30",
        ],
    )
    assert result.exit_code == 0, result.output
    (again,) = read_keypoint_results(applied / "results.h5")
    np.testing.assert_array_equal(
        again.syllables, res.syllables
    )  # deterministic, same labels as the fit
    np.testing.assert_allclose(again.centroid, res.centroid, atol=1e-3)

    result = runner.invoke(
        main, ["fit-keypoints", str(source), "--out", str(tmp_path / "x"), "--anterior", "nose"]
    )
    assert result.exit_code != 0 and "not one of the bodyparts" in result.output


def test_permute_states_relabels_a_keypoint_model_consistently():
    truth = demo_keypoint_slds(3, seed=1)
    starts = np.zeros(600, bool)
    starts[[0, 300]] = True
    sim = truth.simulate(jax.random.key(0), 600, session_starts=starts)
    before = truth.decode(sim.keypoints, session_starts=starts).states
    probs_before = truth.smooth_proba(sim.keypoints, session_starts=starts)
    once = truth.decode(
        sim.keypoints, session_starts=starts, smoothed_proba=True
    )  # one decoding for both
    np.testing.assert_allclose(once.smoothed_probs, probs_before, atol=1e-6)
    assert once.log_likelihood == pytest.approx(
        truth.score(sim.keypoints, session_starts=starts), rel=1e-5
    )
    np.testing.assert_array_equal(once.states, before)
    order = np.array([2, 0, 1])
    truth = permute_states(truth, order)
    after = truth.decode(sim.keypoints, session_starts=starts).states
    ok = before >= 0
    np.testing.assert_array_equal(order[after[ok]], before[ok])
    np.testing.assert_allclose(
        truth.smooth_proba(sim.keypoints, session_starts=starts)[ok],
        probs_before[ok][:, order],
        atol=1e-5,
    )
    with pytest.raises(ValueError, match="permutation"):
        permute_states(truth, [0, 0, 1])


def test_results_round_trip_and_pynapple(tmp_path):
    rng = np.random.default_rng(0)
    res = [
        KeypointResults(
            name=f"s{i}",
            source=None,
            fps=25.0,
            timestamps=np.arange(n) / 25.0,
            syllables=rng.integers(-1, 4, n).astype(np.int32),
            latents=rng.normal(size=(n, 3)),
            centroid=rng.normal(size=(n, 2)),
            heading=rng.uniform(-3, 3, n),
            probabilities=rng.dirichlet(np.ones(4), n),
        )
        for i, n in enumerate((50, 30))
    ]
    paths = write_keypoint_results(res, tmp_path, attrs={"bodyparts": ["a", "b"]})
    back = read_keypoint_results(paths["h5"])
    assert [r.name for r in back] == ["s0", "s1"]
    for a, b in zip(res, back, strict=True):
        for field in ("timestamps", "syllables", "latents", "centroid", "heading", "probabilities"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "results.h5",
        "s0.csv",
        "s1.csv",
    ]  # no temporary files
    nap_objects = res[0].to_pynapple()
    np.testing.assert_allclose(nap_objects["syllables"].t, res[0].timestamps)
    assert nap_objects["centroid"].shape == (50, 2) and list(nap_objects["centroid"].columns) == [
        "x",
        "y",
    ]


@pytest.mark.slow  # 10-19 s in the default run (CI, 2 cores)
def test_keypoint_demo_command_reports_recovery():
    result = CliRunner().invoke(
        main,
        [
            "demo",
            "--simulated",
            "--model",
            "keypoints",
            "--n-states",
            "3",
            "--sessions",
            "2",
            "--frames",
            "800",
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if x.startswith("State recovery"))
    assert float(line.split(":")[1].split("%")[0]) > 90.0


def test_load_and_clean_drops_never_seen_keypoints_and_empty_tracks(shared_data):
    from behavhmm.workflows import load_and_clean

    with pytest.warns(
        UserWarning, match=r"never observed in any session: \['L_Finger4', 'Left_elbow'\]"
    ):
        sessions, coords, conf, names = load_and_clean(
            shared_data / "pose-dlc2kinematics-reaching/reachingDEMO_3D.h5"
        )
    assert "Left_elbow" not in sessions.bodyparts and coords.shape == (
        800,
        len(sessions.bodyparts),
        3,
    )
    assert np.isfinite(coords).all() and conf.shape == coords.shape[:2]
    pytest.importorskip("sleap_io")
    with pytest.warns(UserWarning, match="dropped centered_pair_predictions.slp"):
        sessions, coords, _, names = load_and_clean(
            shared_data / "pose-sleap-courtship-flies/centered_pair_predictions.slp"
        )
    assert len(names) == sessions.n_sessions < 27 and len(set(names)) == len(names)
    assert np.isfinite(coords).all()


def test_keypoint_slds_setup_initializers_and_model_file(tmp_path):
    from behavhmm import KeypointSLDS, load_model

    truth = demo_keypoint_slds(3, seed=2)
    starts = np.zeros(600, bool)
    starts[[0, 300]] = True
    sim = truth.simulate(jax.random.key(1), 600, session_starts=starts)
    calls = []

    def my_trans(n_states, X, session_starts, random_key, **kwargs):
        calls.append(X.shape)
        return np.full((n_states, n_states), 0.02 / (n_states - 1)) + (
            0.98 - 0.02 / (n_states - 1)
        ) * np.eye(n_states)

    model = KeypointSLDS(
        n_states=3,
        latent_dim=4,
        nlags=1,
        n_iter_ar=2,
        n_iter=2,
        anterior_bodyparts=0,
        posterior_bodyparts=5,
        progress_bar=False,
    )
    model.setup(ar_params_init="random", transition_proba_init=my_trans)
    model.fit(sim.keypoints, session_starts=starts)
    assert calls == [(600, 4)]  # the AR-only stage's initializer saw the PC scores of every frame
    path = model.save_params(tmp_path / "kp.npz")
    back = load_model(path, mapping_dict={"my_trans": my_trans})
    assert back.initialization_funcs["ar_params_init"] == "random"
    np.testing.assert_array_equal(
        back.decode(sim.keypoints, session_starts=starts).states,
        model.decode(sim.keypoints, session_starts=starts).states,
    )
    with pytest.raises(ValueError, match="transition_proba_init"):
        KeypointSLDS(
            n_states=3, latent_dim=4, nlags=1, n_iter_ar=1, n_iter=1, progress_bar=False
        ).setup(transition_proba_init=lambda n, X, s, k, **kw: np.ones((2, 2))).fit(
            sim.keypoints, session_starts=starts
        )
