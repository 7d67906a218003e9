"""Hand-label files: daart one-hot CSVs, BORIS event exports, plain per-frame CSVs."""

from __future__ import annotations

import numpy as np
import pytest

from behavhmm.io import (
    read_boris_events,
    read_daart_labels,
    read_label_file,
    read_plain_labels,
    write_daart_labels,
    write_plain_labels,
)

# daart's documented layout (labels-hand/<session>_labels.csv): an unnamed index column, then
# background and one column per behaviour, one-hot rows.
DAART_CSV = """\
,background,still,walk,groom
0,1,0,0,0
1,0,1,0,0
2,0,1,0,0
3,0,0,1,0
4,0,0,0,1
5,1,0,0,0
"""

# BORIS tabular events export (BORIS >= 8 header; media observation at 10 fps)
BORIS_TABULAR = """\
Observation id,Observation date,Description,Observation duration,Observation type,Source,\
Time offset (s),Media duration (s),FPS,Subject,Behavior,Behavioral category,Behavior type,Time,\
Media file name,Image index,Image file path,Comment
obs1,2024-01-01 10:00:00,,1.0,Media file(s),player #1:v.mp4,0.0,1.0,10.0,No focal subject,\
walk,,START,0.2,v.mp4,2,NA,
obs1,2024-01-01 10:00:00,,1.0,Media file(s),player #1:v.mp4,0.0,1.0,10.0,No focal subject,\
sniff,,POINT,0.3,v.mp4,3,NA,
obs1,2024-01-01 10:00:00,,1.0,Media file(s),player #1:v.mp4,0.0,1.0,10.0,No focal subject,\
walk,,STOP,0.5,v.mp4,5,NA,
obs1,2024-01-01 10:00:00,,1.0,Media file(s),player #1:v.mp4,0.0,1.0,10.0,No focal subject,\
groom,,START,0.7,v.mp4,7,NA,
obs1,2024-01-01 10:00:00,,1.0,Media file(s),player #1:v.mp4,0.0,1.0,10.0,No focal subject,\
groom,,STOP,0.9,v.mp4,9,NA,
"""

BORIS_AGGREGATED = """\
Observation id\tSubject\tBehavior\tBehavior type\tStart (s)\tStop (s)\tDuration (s)
obs1\tNo focal subject\twalk\tSTATE\t0.2\t0.5\t0.3
obs1\tNo focal subject\tsniff\tPOINT\t0.3\t0.3\t0
obs1\tNo focal subject\tgroom\tSTATE\t0.7\t0.9\t0.2
"""


def test_daart_file_in_its_documented_layout(tmp_path):
    path = tmp_path / "s_labels.csv"
    path.write_text(DAART_CSV)
    read = read_daart_labels(path)
    np.testing.assert_array_equal(read.labels, [-1, 0, 0, 1, 2, -1])  # background -> -1
    assert read.class_names == ["still", "walk", "groom"]
    assert read_label_file(path).class_names == read.class_names  # auto-detected as daart


def test_daart_round_trip_of_states(tmp_path):
    rng = np.random.default_rng(0)
    states = rng.integers(-1, 4, size=200)
    path = write_daart_labels(tmp_path / "states.csv", states, ["a", "b", "c", "d"])
    header = path.read_text().splitlines()[0]
    assert header == ",background,a,b,c,d"
    read = read_daart_labels(path)
    np.testing.assert_array_equal(read.labels, states)
    assert read.class_names == ["a", "b", "c", "d"]
    default = read_daart_labels(write_daart_labels(tmp_path / "d.csv", np.array([0, 2, -1])))
    assert default.class_names == ["state_0", "state_1", "state_2"]


@pytest.mark.parametrize(
    "body, message",
    [
        (",background,a\n0,1,1\n", "more than one class"),
        (",background,a\n0,2,0\n", "not 0 or 1"),
        (",background,a\n0,1\n", "has 2 values"),
        (",background\n0,1\n", "at least one class column"),
        ("", "is empty"),
    ],
)
def test_bad_daart_files_are_refused_with_the_file_and_row(tmp_path, body, message):
    path = tmp_path / "bad.csv"
    path.write_text(body)
    with pytest.raises(ValueError, match=message) as info:
        read_daart_labels(path)
    assert str(path) in str(info.value)


def test_daart_writer_refuses_bad_labels(tmp_path):
    with pytest.raises(ValueError, match="integer"):
        write_daart_labels(tmp_path / "x.csv", np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match="class names"):
        write_daart_labels(tmp_path / "x.csv", np.array([0, 3]), ["a"])
    with pytest.raises(ValueError, match="background"):
        write_daart_labels(tmp_path / "x.csv", np.array([0]), ["background"])


@pytest.mark.parametrize("text, name", [(BORIS_TABULAR, "t.csv"), (BORIS_AGGREGATED, "a.tsv")])
def test_boris_exports_give_per_frame_labels(tmp_path, text, name):
    path = tmp_path / name
    path.write_text(text)
    read = read_boris_events(path, fps=10.0, n_frames=12)
    assert read.class_names == ["groom", "walk"]  # state events only, sorted; POINT ignored
    expected = np.full(12, -1)
    expected[2:5] = 1  # walk from 0.2 s (frame 2) up to, not including, 0.5 s
    expected[7:9] = 0
    np.testing.assert_array_equal(read.labels, expected)
    auto = read_label_file(path, fps=10.0, n_frames=12, class_names=["walk", "groom"])
    assert auto.class_names == ["walk", "groom"]
    np.testing.assert_array_equal(auto.labels[2:5], 0)
    assert len(read_boris_events(path, fps=10.0).labels) == 9  # default: up to the last stop


def test_bad_boris_files_are_refused(tmp_path):
    path = tmp_path / "b.csv"
    path.write_text("Behavior,Behavior type,Time\nwalk,START,0.1\n")
    with pytest.raises(ValueError, match="never stopped"):
        read_boris_events(path, fps=30)
    path.write_text("Behavior,Behavior type,Time\nwalk,STOP,0.1\n")
    with pytest.raises(ValueError, match="not started"):
        read_boris_events(path, fps=30)
    path.write_text("Behavior,Behavior type,Time\nwalk,START,soon\n")
    with pytest.raises(ValueError, match="not a number"):
        read_boris_events(path, fps=30)
    path.write_text("Behavior,Time\nwalk,0.1\n")
    with pytest.raises(ValueError, match="Behavior type"):
        read_boris_events(path, fps=30)
    with pytest.raises(ValueError, match="fps"):
        read_boris_events(path, fps=0)
    with pytest.raises(ValueError, match="give fps"):
        read_label_file(path)
    path.write_text(BORIS_AGGREGATED.replace("\t", ","))
    with pytest.raises(ValueError, match="not in class_names"):
        read_boris_events(path, fps=10, class_names=["walk"])


def test_plain_label_round_trips(tmp_path):
    labels = np.array([-1, 0, 0, 2, 1, -1])
    read = read_plain_labels(write_plain_labels(tmp_path / "p.csv", labels))
    np.testing.assert_array_equal(read.labels, labels)
    assert read.class_names == ["0", "1", "2"]
    names = ["rest", "run", "rear"]
    read = read_plain_labels(
        write_plain_labels(tmp_path / "n.csv", labels, names), class_names=names
    )
    np.testing.assert_array_equal(read.labels, labels)
    assert read_label_file(tmp_path / "n.csv").class_names == ["rear", "rest", "run"]  # sorted


def test_bad_plain_files_are_refused(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("frame,label\n0,1.5\n")
    with pytest.raises(ValueError, match="whole numbers"):
        read_plain_labels(path)
    path.write_text("frame,what\n0,1\n")
    with pytest.raises(ValueError, match="no label column"):
        read_plain_labels(path)
    with pytest.raises(FileNotFoundError):
        read_plain_labels(tmp_path / "missing.csv")
    with pytest.raises(ValueError, match="format"):
        read_label_file(path, format="excel")
