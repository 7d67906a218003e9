"""n_states scans and prototype selection (LISBET's unsupervised half)."""

import warnings

import jax
import numpy as np
import pandas as pd
import pytest

from behavhmm import GaussianHMM
from behavhmm.model_selection import NStatesScan, scan_n_states, select_prototypes

STARTS = np.arange(0, 1200, 200)


def _truth():
    t = GaussianHMM(n_states=3, covariance_type="full")
    t.initial_prob_ = np.ones(3) / 3
    t.transition_prob_ = np.full((3, 3), 0.025) + np.eye(3) * 0.925
    t.means_ = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]])
    t.covariances_ = np.tile(np.eye(2), (3, 1, 1))
    return t


@pytest.fixture(scope="module")
def data():
    X, _ = _truth().simulate(jax.random.key(0), n_time_bins=1200, session_starts=STARTS)
    return np.asarray(X, float)


@pytest.fixture(scope="module")
def scan(data):
    est = GaussianHMM(covariance_type="full", n_iter=30)
    return scan_n_states(est, data, STARTS, n_states=[2, 3, 4], cv=3, n_jobs=1)


def test_scan_picks_true_k_by_heldout_and_bic(scan):
    assert list(scan.n_states_) == [2, 3, 4]
    assert scan.best_n_states("heldout_log_likelihood") == 3
    assert scan.best_n_states("bic") == 3
    m = scan.metrics_
    for col in (
        "n_states",
        "log_likelihood",
        "aic",
        "bic",
        "heldout_log_likelihood",
        "fit_seconds",
    ):
        assert col in m.columns
    assert {"heldout_log_likelihood_fold0", "heldout_log_likelihood_fold2"} <= set(m.columns)
    # hmmlearn's parameter count for full covariances, D = 2
    k, d = m["n_states"].to_numpy(), 2
    p = (k - 1) + k * (k - 1) + k * d + k * d * (d + 1) / 2
    np.testing.assert_allclose(m["aic"], -2 * m["log_likelihood"] + 2 * p)
    np.testing.assert_allclose(m["bic"], -2 * m["log_likelihood"] + p * np.log(1200))
    assert m["log_likelihood"].is_monotonic_increasing


def test_scan_models_match_a_single_fit(scan, data):
    est = GaussianHMM(n_states=3, covariance_type="full", n_iter=30, progress_bar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        single = est.fit(data, session_starts=STARTS)
    np.testing.assert_allclose(scan.models_[3].means_, single.means_, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(
        scan.labels_[3], single.decode_state(data, STARTS, state_format="index")
    )


def test_scan_parallel_and_fit_fraction(data):
    est = GaussianHMM(covariance_type="diag", n_iter=5)
    a = scan_n_states(est, data, STARTS, n_states=[2, 3], n_jobs=1)
    b = scan_n_states(est, data, STARTS, n_states=[3, 2], n_jobs=2)
    np.testing.assert_allclose(
        a.metrics_["log_likelihood"], b.metrics_["log_likelihood"], rtol=1e-6
    )
    c = scan_n_states(est, data, STARTS, n_states=[2, 3], fit_fraction=0.5, random_state=1)
    # fitted on 3 of 6 sessions: a different model, still scored on all frames
    assert not np.allclose(c.models_[3].means_, a.models_[3].means_)
    assert c.labels_[3].shape == (1200,)


@pytest.mark.requires_x64
def test_scan_worker_processes_compute_in_the_callers_precision(data):
    """joblib worker processes start in float32; a float64 session gets float64 fits from them."""
    est = GaussianHMM(covariance_type="diag", n_iter=3)
    one = scan_n_states(est, data.astype(np.float64), STARTS, n_states=[2, 3], n_jobs=1)
    two = scan_n_states(est, data.astype(np.float64), STARTS, n_states=[2, 3], n_jobs=2)
    for k in (2, 3):
        assert np.asarray(two.models_[k].means_).dtype == np.float64
        np.testing.assert_allclose(two.models_[k].means_, one.models_[k].means_, rtol=1e-12)


def test_scan_save_load_round_trip(scan, data, tmp_path):
    scan.save(tmp_path)
    assert (tmp_path / "models" / "hmm3.npz").is_file()
    assert (tmp_path / "metrics_hmm3.yaml").read_text().startswith("ll: ")
    onehot = pd.read_csv(tmp_path / "seq1" / "machineAnnotation_hmm4.csv", index_col=0)
    assert list(onehot.columns) == ["Motif_0", "Motif_1", "Motif_2", "Motif_3"]
    assert onehot.shape == (200, 4) and (onehot.sum(axis=1) == 1).all()
    np.testing.assert_array_equal(onehot.to_numpy().argmax(1), scan.labels_[4][200:400])
    back = NStatesScan.load(tmp_path)
    assert back.sequence_names_ == scan.sequence_names_
    for k in (2, 3, 4):
        np.testing.assert_array_equal(back.labels_[k], scan.labels_[k])
        np.testing.assert_array_equal(
            back.models_[k].decode_state(data, STARTS, state_format="index"), scan.labels_[k]
        )
    with pytest.raises(FileNotFoundError, match="labels.npz"):
        NStatesScan.load(tmp_path / "seq0")


def test_prototypes_predict_reuses_cached_models(scan, data):
    protos = select_prototypes(scan, fps=30, min_bout_s=0.1)
    np.testing.assert_array_equal(protos.predict(data, STARTS), protos.labels_)
    X_new, _ = _truth().simulate(jax.random.key(7), n_time_bins=300)
    X_new = np.asarray(X_new, float)
    expected = np.column_stack(
        [
            scan.models_[k].decode_state(X_new, state_format="index") == s
            for k, s in protos.prototypes_
        ]
    )
    np.testing.assert_array_equal(protos.predict_annotations(X_new), expected)
    lab = protos.predict(X_new)
    np.testing.assert_array_equal(lab, np.where(expected.any(1), expected.argmax(1), -1))
    np.testing.assert_array_equal(protos.predict(X_new), lab)  # deterministic


# ---------------------------------------------------------------- hand-built columns
def _hand_scan(seed=0):
    """Three behaviours A, B, C in 60-frame bouts; K=3 late, K=4 exact plus a rare state, K=5
    permuted."""
    rng = np.random.default_rng(seed)
    truth = np.repeat(rng.permutation(np.tile([0, 1, 2], 20)), 60)  # 3600 frames
    noisy = np.r_[truth[:5], truth[:-5]]  # bouts detected 5 frames late
    k4 = truth.copy()
    k4[rng.choice(truth.size, 20, replace=False)] = 3  # rare state: under 5% of frames
    perm = np.array([4, 0, 2])  # K=5: A->4, B->0, C->2; states 1 and 3 unused
    k5 = perm[truth]
    labels = {3: noisy, 4: k4, 5: k5}
    starts = np.zeros(truth.size, bool)
    starts[0] = True
    return NStatesScan({}, pd.DataFrame({"n_states": [3, 4, 5]}), labels, starts, ["s0"]), truth


def test_select_prototypes_hand_built_clusters():
    scan, truth = _hand_scan()
    best = select_prototypes(scan, fps=30, method="best")
    assert best.n_clusters_ == 3
    assert set(best.columns_) == {
        (3, 0),
        (3, 1),
        (3, 2),
        (4, 0),
        (4, 1),
        (4, 2),
        (5, 4),
        (5, 0),
        (5, 2),
    }
    groups = {}
    for col, c in zip(best.columns_, best.cluster_labels_, strict=True):
        groups.setdefault(int(c), set()).add(col)
    assert sorted(map(sorted, groups.values())) == sorted(
        map(sorted, [{(3, 0), (4, 0), (5, 4)}, {(3, 1), (4, 1), (5, 0)}, {(3, 2), (4, 2), (5, 2)}])
    )
    # "best": the exact columns (K=5, highest silhouette); "min": the smallest K
    assert best.prototypes_ == [(5, 0), (5, 2), (5, 4)]
    assert select_prototypes(scan, fps=30, method="min").prototypes_ == [(3, 0), (3, 1), (3, 2)]
    np.testing.assert_array_equal(best.labels_, np.array([0, -1, 1, -1, 2])[scan.labels_[5]])
    assert best.names_ == ["HMM_5_Motif_0", "HMM_5_Motif_2", "HMM_5_Motif_4"]
    assert best.annotations_.shape == (truth.size, 3) and best.annotations_.dtype == bool


def test_select_prototypes_filters_and_errors():
    scan, _ = _hand_scan()
    # bouts of 60 frames (a few merged runs of 120-180) at 30 fps last 2-6 s: 30 s drops every
    # column
    with pytest.raises(ValueError, match="No state passes"):
        select_prototypes(scan, fps=30, min_bout_s=30.0)
    # at 1 fps they last 60 s or more and all pass
    assert select_prototypes(scan, fps=1, min_bout_s=30.0).n_clusters_ == 3
    # the rare K=4 state passes the bout filter only when it is switched off, never the frame filter
    assert (4, 3) not in select_prototypes(scan, fps=30, min_bout_s=None).columns_
    with pytest.raises(ValueError, match="method"):
        select_prototypes(scan, fps=30, method="median")
    with pytest.raises(ValueError, match="fps"):
        select_prototypes(scan, fps=0)
    with pytest.raises(ValueError, match="max_distance"):
        select_prototypes(scan, fps=30, max_distance=2.0)
    with pytest.raises(ValueError, match="no model"):
        select_prototypes(scan, fps=30).predict(np.zeros((5, 2)))


def test_scan_bad_input(data):
    est = GaussianHMM(n_iter=2)
    with pytest.raises(ValueError, match="n_states"):
        scan_n_states(est, data, n_states=[])
    with pytest.raises(ValueError, match="n_states"):
        scan_n_states(est, data, n_states=[2.5])
    with pytest.raises(ValueError, match="fit_fraction"):
        scan_n_states(est, data, n_states=[2], fit_fraction=0.0)
    with pytest.raises(ValueError, match="at least 2"):
        scan_n_states(est, data[:1], n_states=[2])
    with pytest.raises(ValueError, match="sequence_names"):
        scan_n_states(est, data, STARTS, n_states=[2], sequence_names=["a"])
    with pytest.raises(ValueError, match="2-D"):
        scan_n_states(est, data[:, 0], n_states=[2])


# ---------------------------------------------------------------- load_features
def test_load_features_lisbet_layout_and_plain_files(tmp_path):
    from behavhmm.io import load_features

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(7, 3)), rng.normal(size=(5, 3))
    root = tmp_path / "embeddings" / "lisbet32x4"
    for key, arr in (("exp1/mouseB", b), ("exp1/mouseA", a)):
        (root / key).mkdir(parents=True)
        pd.DataFrame(arr).to_csv(root / key / "features_lisbet32x4_embedding.csv")
    (root / "notes.csv").write_text("x\n1\n")  # ignored: not LISBET's file name
    feats = load_features(root)
    assert feats.names == ["exp1/mouseA", "exp1/mouseB"]
    np.testing.assert_allclose(feats.X, np.vstack([a, b]))
    np.testing.assert_array_equal(np.flatnonzero(feats.session_starts), [0, 7])
    assert feats.columns == ["0", "1", "2"]

    plain = tmp_path / "plain"
    plain.mkdir()
    np.save(plain / "s1.npy", a)
    import h5py

    with h5py.File(plain / "s2.h5", "w") as fh:
        fh["features"] = b
    feats = load_features(plain)
    assert feats.names == ["s1", "s2"]
    np.testing.assert_allclose(feats.X, np.vstack([a, b]))
    np.save(plain / "s3.npy", rng.normal(size=(4, 2)))
    with pytest.raises(ValueError, match="same"):
        load_features(plain)
    with pytest.raises(FileNotFoundError):
        load_features(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no feature file"):
        load_features(tmp_path / "empty")
    pd.DataFrame({"x": ["a", "b"]}).to_csv(tmp_path / "text.csv", index=False)
    with pytest.raises(ValueError, match="numeric"):
        load_features(tmp_path / "text.csv")


# ---------------------------------------------------------------- CLI
def _real_features_folder(root):
    """LISBET-layout folder of egocentric features of the bundled DeepLabCut mouse, cut in 3
    sequences."""
    from behavhmm.datasets import demo_recording
    from behavhmm.io import load_keypoints
    from behavhmm.preprocessing import egocentric_align, interpolate_nans

    kp = load_keypoints(demo_recording())
    coords = interpolate_nans(kp.coordinates.reshape(kp.coordinates.shape[0], -1)).reshape(
        kp.coordinates.shape
    )
    ego = egocentric_align(coords, "snout", "tailbase", bodyparts=kp.bodyparts)
    feats = np.asarray(ego.coordinates).reshape(coords.shape[0], -1)[:1500]
    feats = (feats - feats.mean(0)) / feats.std(0).clip(1e-6)
    feats = feats[:, feats.std(0) > 0]
    for i, block in enumerate(np.array_split(feats, 3)):
        folder = root / "embeddings" / "demo" / f"mouse{i}"
        folder.mkdir(parents=True)
        pd.DataFrame(block).to_csv(folder / "features_demo_embedding.csv")
    return root / "embeddings" / "demo", feats


def test_cli_segment_motifs_and_select_prototypes_end_to_end(tmp_path):
    from click.testing import CliRunner

    from behavhmm.cli import main

    features, feats = _real_features_folder(tmp_path)
    out = tmp_path / "motifs"
    runner = CliRunner()
    res = runner.invoke(
        main,
        [
            "segment-motifs",
            str(features),
            "--min-n-states",
            "2",
            "--max-n-states",
            "4",
            "--n-iter",
            "5",
            "--covariance-type",
            "diag",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "best by BIC" in res.output
    for k in (2, 3, 4):
        assert (out / "models" / f"hmm{k}.npz").is_file()
        table = pd.read_csv(out / "mouse1" / f"machineAnnotation_hmm{k}.csv", index_col=0)
        assert table.shape == (500, k) and (table.sum(axis=1) == 1).all()
    metrics = pd.read_csv(out / "metrics.csv")
    assert list(metrics["n_states"]) == [2, 3, 4]
    assert (out / "metrics_vs_n_states.png").stat().st_size > 1000
    res = runner.invoke(main, ["select-prototypes", str(out), "--fps", "30", "--min-bout-s", "0.1"])
    assert res.exit_code == 0, res.output
    protos = pd.read_csv(out / "prototypes.csv")
    annot = pd.read_csv(
        out / "prototypes" / "mouse0" / "machineAnnotation_hmmbest_2_4.csv", index_col=0
    )
    assert list(annot.columns) == list(protos["name"]) and annot.shape[0] == 500
    assert (out / "info_hmmbest_2_4.npz").is_file() and (out / "prototype_dendrogram.png").is_file()
    assert (out / "ethogram_mouse0.png").is_file()
    # the saved models relabel the features exactly as the CSVs say
    from behavhmm import load_model

    model = load_model(out / "models" / "hmm3.npz")
    onehot = pd.read_csv(out / "mouse2" / "machineAnnotation_hmm3.csv", index_col=0).to_numpy()
    starts = np.zeros(1500, bool)
    starts[[0, 500, 1000]] = True
    np.testing.assert_array_equal(
        model.decode_state(feats, starts, state_format="index")[1000:], onehot.argmax(1)
    )
    # errors are one line, not a traceback
    res = runner.invoke(main, ["select-prototypes", str(tmp_path), "--fps", "30"])
    assert res.exit_code != 0 and "labels.npz" in res.output
    res = runner.invoke(
        main, ["segment-motifs", str(tmp_path / "empty_dir_missing"), "--out", str(out)]
    )
    assert res.exit_code != 0
    assert "Examples" in runner.invoke(main, ["segment-motifs", "--help"]).output
