"""Loader errors name the file (issue 20): regression tests, and fuzzed bytes of real files.

Each damaged file either loads with finite-or-NaN coordinates of a consistent
shape (NaN marks missing points) or raises ValueError, TypeError,
FileNotFoundError or ImportError; a ValueError or OSError must name the file.
The real recordings are read from ../shared/data and damaged copies are
written to pytest's temporary folder only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from behavhmm.io import load_keypoints

pytestmark = pytest.mark.shared_data

#: One real file of each kind: (relative path, format given to the loader, loader).
REAL_FILES = {
    "dlc_h5": "pose-dlc-openfield-mouse/m3v1mp4DLC_resnet50_openfieldAug20shuffle1_30000.h5",
    "dlc_csv": "dlc_multi_mouse_short/"
    "m3v1mp4shortDLC_effnet_b0_multi_mouseApr12shuffle1_5_el_filtered.csv",
    "sleap_slp": "pose-sleap-courtship-flies/clip_1500f.slp",
    "sleap_h5": "pose-sleap-courtship-flies/courtship_3000f.predictions.analysis.h5",
    "nwb": "pose-dlc-openfield-mouse/m3v1mp4DLC_resnet50_openfieldAug20shuffle1_30000.nwb",
    "moseq_pcs": "moseq2-depth-testdata/pca_pca_scores.h5",
}
DLC_CSV = (
    "pose-bsoid-openfield-mouse/raw_clip1DLC_resnet50_OpenFieldHighResApr8shuffle1_1030000.csv"
)

FUZZ = settings(
    max_examples=12,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _csv_lines(shared_data: Path, n: int = 20) -> list[str]:
    with open(shared_data / DLC_CSV) as handle:
        return [next(handle).rstrip("\n") for _ in range(n)]


# ----------------------------------------------------------------- regressions (items 2 and 4)
def test_dlc_csv_short_first_row_warns_and_keeps_columns(shared_data, tmp_path):
    lines = _csv_lines(shared_data)
    short = ",".join(lines[3].split(",")[:5])  # frame, snout x/y/likelihood, one paw x
    path = tmp_path / "short.csv"
    path.write_text("\n".join([*lines[:3], short, *lines[4:]]) + "\n")
    with pytest.warns(UserWarning, match=r"short\.csv: 1 data row.*line\(s\) 4\)"):
        sessions = load_keypoints(path)
    xy = sessions.coordinates
    assert xy.shape == (17, 6, 2)
    assert np.isnan(xy[0, 1:, :]).sum() == 9  # the short row: NaN where its fields are missing
    assert not np.isnan(xy[1:]).any()  # every other row keeps every column
    reference = load_keypoints(shared_data / DLC_CSV).coordinates
    np.testing.assert_array_equal(xy[1:], reference[1:17])


def test_dlc_csv_long_row_names_file_and_line(shared_data, tmp_path):
    lines = _csv_lines(shared_data)
    path = tmp_path / "long.csv"
    path.write_text("\n".join([*lines[:5], lines[5] + ",1,2", *lines[6:]]) + "\n")
    with pytest.raises(ValueError, match=r"long\.csv: line 6 has more fields"):
        load_keypoints(path)


@pytest.mark.parametrize(
    ("text", "pattern"),
    [('1,"abc\n', "bad.csv"), ("5,abc,1,2\n", "bad.csv")],
    ids=["open-quote", "text-value"],
)
@pytest.mark.filterwarnings("ignore:.*fewer fields than the")
def test_dlc_csv_parse_errors_name_file(shared_data, tmp_path, text, pattern):
    lines = _csv_lines(shared_data)
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines[:6]) + "\n" + text)
    with pytest.raises(ValueError, match=pattern):
        load_keypoints(path)


@pytest.mark.parametrize("kind", ["dlc_h5", "sleap_slp", "sleap_h5", "nwb"])
def test_truncated_hdf5_names_file(shared_data, tmp_path, kind):
    data = (shared_data / REAL_FILES[kind]).read_bytes()
    path = tmp_path / f"cut_{Path(REAL_FILES[kind]).name}"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=str(path.name)):
        load_keypoints(path)


@pytest.mark.parametrize("fmt", ["nwb", "movement", "sleap", "anipose", "deeplabcut"])
def test_text_file_read_as_format_names_file(tmp_path, fmt):
    path = tmp_path / "notes.txt"
    path.write_text("hello,world\n1,2\n")
    with pytest.raises(ValueError, match="notes.txt"):
        load_keypoints(path, format=fmt)


@pytest.mark.parametrize("fmt", ["sleap", "anipose", "nwb", "movement"])
@pytest.mark.parametrize("kind", ["dlc_h5", "dlc_csv"])
def test_dlc_file_read_as_other_format_names_file(shared_data, kind, fmt):
    path = shared_data / REAL_FILES[kind]
    with pytest.raises(ValueError, match=path.name):
        load_keypoints(path, format=fmt)
