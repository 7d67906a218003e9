"""segmentation_report: per-class metrics and bouts against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from behavhmm.analysis import segmentation_report


def test_hand_computed_metrics_without_matching():
    y_true = np.array([0, 0, 0, 1, 1, -1, -1, 1, 1, 0])
    y_pred = np.array([0, 0, 1, 1, 1, 0, 0, 1, 0, 0])
    df = segmentation_report(y_true, y_pred, match=None)
    assert list(df.index) == [0, 1]
    # class 0: true frames {0,1,2,9}, predicted {0,1,8,9}: TP 3, FP 1, FN 1
    np.testing.assert_allclose(
        df.loc[0, ["precision", "recall", "f1", "iou"]], [3 / 4, 3 / 4, 3 / 4, 3 / 5]
    )
    # class 1: true {3,4,7,8}, predicted {2,3,4,7}: TP 3
    np.testing.assert_allclose(df.loc[1, ["precision", "recall", "iou"]], [3 / 4, 3 / 4, 3 / 5])
    assert df.loc[0, "support"] == 4
    # bouts over evaluated frames (5-6 unlabelled): true 0 -> [0..2], [9]; 1 -> [3,4], [7,8]
    assert df.loc[0, "n_bouts_true"] == 2 and df.loc[1, "n_bouts_true"] == 2
    assert df.loc[0, "mean_bout_true"] == 2.0
    # predicted 0 -> [0,1], [8,9]; predicted 1 -> [2..4], [7]
    assert df.loc[0, "n_bouts_pred"] == 2 and df.loc[1, "mean_bout_pred"] == 2.0
    assert df.attrs["n_frames"] == 8
    assert df.attrs["accuracy"] == pytest.approx(6 / 8)


def test_hungarian_matching_renames_states():
    y_true = np.repeat([0, 1, 2], 20)
    y_pred = np.repeat([2, 0, 1], 20)  # a perfect segmentation under other names
    raw = segmentation_report(y_true, y_pred, match=None)
    assert raw["f1"].max() == 0.0
    matched = segmentation_report(y_true, y_pred)
    np.testing.assert_allclose(matched["f1"], 1.0)
    np.testing.assert_array_equal(matched.attrs["mapping"], [1, 2, 0])
    assert matched.attrs["accuracy"] == 1.0


def test_background_value_sessions_and_names():
    y_true = np.array([0, 1, 1, 2, 2, 2, 0, 2])  # daart's convention: 0 is background
    y_pred = np.array([5, 1, 1, 2, 2, 2, 1, 2])
    df = segmentation_report(
        y_true,
        y_pred,
        background=0,
        match=None,
        session_starts=[0, 5],
        class_names=["bg", "a", "b"],
    )
    assert list(df.index) == ["a", "b"]
    np.testing.assert_allclose(df["f1"], 1.0)
    # class 2 runs [3,4] | [5] split by the session start at 5, then [7]
    assert df.loc["b", "n_bouts_true"] == 3


def test_bad_input():
    with pytest.raises(ValueError, match="match must be one of"):
        segmentation_report([0, 1], [0, 1], match="greedy")
    with pytest.raises(ValueError, match="same length"):
        segmentation_report([0, 1], [0, 1, 1])
    with pytest.raises(ValueError, match="no frame"):
        segmentation_report([-1, -1], [0, 1])


@pytest.mark.shared_data
def test_bsoid_heuristic_labels_example(shared_data, tmp_path):
    """docs/scripts/labels_bsoid.py: soft heuristic labels beat unsupervised fits in macro F1."""
    import importlib.util
    import json
    from pathlib import Path

    if not (shared_data / "pose-bsoid-openfield-mouse").is_dir():
        pytest.skip("pose-bsoid-openfield-mouse is not in the shared data")
    script = Path(__file__).resolve().parents[1] / "docs" / "scripts" / "labels_bsoid.py"
    spec = importlib.util.spec_from_file_location("labels_bsoid", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.data = shared_data / "pose-bsoid-openfield-mouse"
    module.main(tmp_path / "out.json", tmp_path / "out.png")
    summary = json.loads((tmp_path / "out.json").read_text())
    semi, free = summary["semi_supervised"], summary["unsupervised_hungarian"]
    assert summary["heldout_frames"] == 7200
    assert semi["macro_f1"] > free["macro_f1"] + 0.1
    assert semi["f1"]["still"] > 0.5  # the labelled class keeps its name without matching
