"""User errors on the command line: one line naming the file, exit status 1; --debug: traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from behavhmm.cli import main

MODEL_FILES = Path(__file__).parent / "data" / "model_files_v0_1"
POSES = Path(__file__).parent / "data" / "movement_0.15_poses_2d.nc"


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_one_line_error(result, path, *words):
    """Exit status 1, exactly one line of output, naming ``path`` (and ``words``), no traceback."""
    assert result.exit_code == 1, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ")
    assert str(path) in lines[0]
    for word in words:
        assert word in lines[0]
    assert "Traceback" not in result.output


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "notes.h5"
    path.write_text("these are notes,\nnot an HDF5 file\n")
    return path


def test_apply_keypoints_with_an_arhmm_model_file_names_the_file_and_the_kind(tmp_path):
    model = MODEL_FILES / "arhmm_em.npz"
    result = run("apply-keypoints", model, POSES, "--out", tmp_path / "out")
    assert_one_line_error(result, model, "ARHMM", "KeypointSLDS")
    assert not (tmp_path / "out").exists()


def test_apply_model_with_a_keypoint_model_file_names_the_file(tmp_path, text_file):
    model = MODEL_FILES / "keypoint_slds.npz"
    result = run("apply-model", model, text_file, tmp_path / "labels.h5")
    assert_one_line_error(result, model, "KeypointSLDS", "ARHMM")


def test_a_text_file_given_as_a_model_file_names_the_file(tmp_path, text_file):
    result = run("apply-model", text_file, text_file, tmp_path / "labels.h5")
    assert_one_line_error(result, text_file)


def test_merge_syllables_refuses_a_gaussian_hmm_model_file(tmp_path):
    model = MODEL_FILES / "gaussian_hmm.npz"
    result = run("merge-syllables", model, tmp_path / "merged.npz", "--merge", "0,1")
    assert_one_line_error(result, model, "GaussianHMM")


def test_count_frames_on_a_text_file_names_it(text_file):
    assert_one_line_error(run("count-frames", text_file), text_file)


def test_count_frames_on_an_hdf5_file_without_scores_names_it(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["something"] = np.zeros(3)
    assert_one_line_error(run("count-frames", path), path, "'scores'")


def test_learn_model_on_a_text_file_names_it(tmp_path, text_file):
    result = run("learn-model", text_file, tmp_path / "model.npz", "--no-progress")
    assert_one_line_error(result, text_file)
    assert not (tmp_path / "model.npz").exists()


def test_fit_keypoints_on_a_text_file_names_it(tmp_path):
    path = tmp_path / "poses.csv"
    path.write_text("a,b\n1,2\n")
    result = run("fit-keypoints", path, "--out", tmp_path / "out", "--no-progress", "--no-plots")
    assert_one_line_error(result, path)


@pytest.mark.parametrize(
    "command",
    [
        ["segment-motifs", "{dir}", "--out", "{tmp}/motifs"],
        ["select-prototypes", "{dir}", "--fps", "30"],
        ["report", "{dir}", "--out", "{tmp}/report", "--no-movies"],
    ],
)
def test_folder_commands_on_an_empty_folder_name_it(tmp_path, command):
    folder = tmp_path / "empty"
    folder.mkdir()
    args = [a.format(dir=folder, tmp=tmp_path) for a in command]
    assert_one_line_error(run(*args), folder)


def test_debug_shows_the_original_exception(text_file):
    result = run("--debug", "count-frames", text_file)
    assert result.exit_code == 1
    assert isinstance(result.exception, OSError)
    result = run("--debug", "apply-keypoints", MODEL_FILES / "arhmm_em.npz", POSES, "--out", "x")
    assert result.exit_code == 1  # a wrong model kind is the CLI's own one-line error


def test_the_command_prints_a_traceback_only_with_debug(text_file):
    """The installed entry point, as a user runs it: stderr holds one line, or a traceback."""
    command = [sys.executable, "-m", "behavhmm.cli"]
    quiet = subprocess.run(
        [*command, "count-frames", str(text_file)], capture_output=True, text=True
    )
    assert quiet.returncode == 1
    assert quiet.stderr.strip().splitlines() == [quiet.stderr.strip()]
    assert str(text_file) in quiet.stderr and "Traceback" not in quiet.stderr
    loud = subprocess.run(
        [*command, "--debug", "count-frames", str(text_file)], capture_output=True, text=True
    )
    assert loud.returncode == 1
    assert "Traceback (most recent call last)" in loud.stderr
    assert "OSError" in loud.stderr
