"""`behavhmm report` and `merge-syllables` on a small real fit (DeepOF's MIT-licensed mice, three
sessions)."""

from __future__ import annotations

from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

pytest.importorskip("h5py")
pytest.importorskip("tables")
pytest.importorskip("matplotlib")
pytest.importorskip("networkx")
pytest.importorskip("scikit_posthocs")
pytest.importorskip("statsmodels")

from behavhmm.cli import main  # noqa: E402
from behavhmm.workflows import read_keypoint_results  # noqa: E402

pytestmark = pytest.mark.shared_data
SINGLE = "pose-deepof-mice/testDLC_square_arena.h5"
PAIR = "pose-deepof-mice/testDLC_h5_table_madlc.h5"
SESSIONS = {
    "testDLC_square_arena": "A",
    "testDLC_h5_table_madlc_mouse_black_tail": "B",
    "testDLC_h5_table_madlc_mouse_white_tail": "B",
}


@pytest.fixture(scope="module")
def fitted(shared_data, tmp_path_factory):
    """One small keypoint fit of the three DeepOF sessions (single mouse + the pair), shared by the
    tests."""
    out = tmp_path_factory.mktemp("deepof") / "fit"
    result = CliRunner().invoke(
        main,
        [
            "fit-keypoints",
            str(shared_data / SINGLE),
            str(shared_data / PAIR),
            "--out",
            str(out),
            "--fps",
            "25",
            "--anterior",
            "Nose",
            "--posterior",
            "Tail_base",
            "--latent-dim",
            "4",
            "--n-states",
            "10",
            "--ar-iters",
            "5",
            "--iters",
            "5",
            "--no-progress",
            "--no-plots",
        ],
    )
    assert result.exit_code == 0, result.output
    return out


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links = []

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key in ("src", "href"):
                self.links.append(value)


def test_report_writes_tables_figures_and_a_page_whose_links_all_exist(fitted, tmp_path):
    index = tmp_path / "index.csv"
    pd.DataFrame({"session": list(SESSIONS), "group": list(SESSIONS.values())}).to_csv(
        index, index=False
    )
    out = tmp_path / "report"
    result = CliRunner().invoke(
        main,
        ["report", str(fitted), "--groups", str(index), "--out", str(out), "--max-syllables", "10"],
    )
    assert result.exit_code == 0, result.output
    parser = _Links()
    parser.feed((out / "index.html").read_text())
    assert len(parser.links) >= 10
    for link in parser.links:
        assert "://" not in link and (out / link).is_file(), link
    for name in (
        "frame_table.csv",
        "syllable_stats.csv",
        "group_tests.csv",
        "transitions_A.csv",
        "transition_graph_B.png",
        "transition_difference_A_B.png",
        "syllable_frequency.png",
    ):
        assert name in parser.links, name
    frames = pd.read_csv(out / "frame_table.csv")
    results = read_keypoint_results(fitted / "results.h5")
    assert len(frames) == sum(len(r.syllables) for r in results) == 651
    assert dict(frames.groupby("session")["group"].first()) == SESSIONS
    stats = pd.read_csv(out / "syllable_stats.csv")
    assert len(stats) == 3 * 10 and np.allclose(stats.groupby("session")["usage"].sum(), 1.0)
    tests = pd.read_csv(out / "group_tests.csv")
    assert {"syllable", "comparison", "p_value", "p_adjusted", "statistic_name"} <= set(
        tests.columns
    )
    matrix = pd.read_csv(out / "transitions_A.csv", index_col=0).to_numpy()
    assert matrix.shape == (10, 10) and np.all(
        (matrix.sum(axis=1) == 0) | np.isclose(matrix.sum(axis=1), 1)
    )
    # a session missing from the index is an error naming it
    pd.DataFrame({"session": ["testDLC_square_arena"], "group": ["A"]}).to_csv(index, index=False)
    bad = CliRunner().invoke(
        main, ["report", str(fitted), "--groups", str(index), "--out", str(tmp_path / "x")]
    )
    assert bad.exit_code != 0 and "mouse_black_tail" in bad.output


def test_merged_model_applied_to_a_real_file_gives_the_merged_labels(fitted, shared_data, tmp_path):
    from behavhmm import load_model

    runner = CliRunner()
    merged = tmp_path / "merged.npz"
    result = runner.invoke(
        main,
        [
            "merge-syllables",
            str(fitted / "model.npz"),
            str(merged),
            "--merge",
            "0,2",
            "--merge",
            "1,3",
        ],
    )
    assert result.exit_code == 0, result.output
    assert load_model(merged).syllable_mapping_.tolist()[:4] == [0, 1, 0, 1]
    outputs = {}
    for name, model in (("plain", fitted / "model.npz"), ("merged", merged)):
        result = runner.invoke(
            main,
            [
                "apply-keypoints",
                str(model),
                str(shared_data / SINGLE),
                "--out",
                str(tmp_path / name),
                "--fps",
                "25",
            ],
        )
        assert result.exit_code == 0, result.output
        (outputs[name],) = read_keypoint_results(tmp_path / name / "results.h5")
    plain, mapped = outputs["plain"].syllables, outputs["merged"].syllables
    expected = np.where(
        plain >= 0, np.array([0, 1, 0, 1, 4, 5, 6, 7, 8, 9])[np.maximum(plain, 0)], -1
    )
    np.testing.assert_array_equal(mapped, expected)
    assert not np.isin(mapped, [2, 3]).any()
    ok = np.isfinite(outputs["plain"].probabilities).all(axis=1)
    np.testing.assert_allclose(
        outputs["merged"].probabilities[ok, 0],
        outputs["plain"].probabilities[ok, 0] + outputs["plain"].probabilities[ok, 2],
        atol=1e-6,
    )
    # the report of apply-keypoints results finds the model they name: its 10 syllables, 2 and 3
    # never used
    from behavhmm.report import write_report

    write_report(tmp_path / "merged", tmp_path / "report", keypoints=False)
    stats = pd.read_csv(tmp_path / "report" / "syllable_stats.csv")
    assert sorted(stats["syllable"]) == list(range(10))
    assert (stats.loc[stats["syllable"].isin([2, 3]), "n_instances"] == 0).all()
    bad = runner.invoke(
        main,
        ["merge-syllables", str(fitted / "model.npz"), str(tmp_path / "x.npz"), "--merge", "0,99"],
    )
    assert bad.exit_code != 0 and "--merge" in bad.output


def test_report_frame_table_names_the_animals_of_a_multi_animal_file(fitted, tmp_path):
    from behavhmm.report import write_report

    write_report(fitted, tmp_path / "r", keypoints=True, movies=False)
    frames = pd.read_csv(tmp_path / "r" / "frame_table.csv", keep_default_na=False)
    animals = frames.groupby("session")["individual"].first()
    assert animals["testDLC_h5_table_madlc_mouse_black_tail"] == "mouse_black_tail"
    assert animals["testDLC_h5_table_madlc_mouse_white_tail"] == "mouse_white_tail"
    page = (tmp_path / "r" / "index.html").read_text()
    assert "one group only" in page and "group_tests.csv" not in page


@pytest.mark.parametrize(
    ("statistic", "expected"),
    [
        ("frequency", "syllable_frequency.png"),
        ("usage", "syllable_usage_per_group.png"),
        ("speed_mean", "syllable_speed_mean.png"),
    ],
)
def test_the_statistic_figure_never_overwrites_the_usage_figure(statistic, expected):
    from behavhmm.report import _statistic_figure_name

    assert _statistic_figure_name(statistic) == expected
