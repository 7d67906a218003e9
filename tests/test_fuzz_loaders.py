"""Loader errors name the file (issue 20): regression tests, and fuzzed bytes of real files.

Each damaged file either loads with finite-or-NaN coordinates of a consistent
shape (NaN marks missing points) or raises ValueError, TypeError,
FileNotFoundError or ImportError; a ValueError or OSError must name the file.
The real recordings are read from ../shared/data and damaged copies are
written to pytest's temporary folder only.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from behavhmm.io import load_keypoints, load_pc_scores

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
    max_examples=15,
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


# ----------------------------------------------------------------- property-based fuzzing
CASES: dict[str, dict[str, int]] = {}


@pytest.fixture(scope="module", autouse=True)
def _print_case_counts():
    yield
    for suite, counts in sorted(CASES.items()):
        print(f"\nfuzz cases {suite}: {sum(counts.values())} tried, {counts}")


@pytest.fixture(scope="module")
def real_bytes(shared_data):
    """Contents of one real file of each kind (read once)."""

    class Blobs(dict):
        def __repr__(self):
            return f"<{len(self)} real files>"

    return Blobs({kind: (shared_data / rel).read_bytes() for kind, rel in REAL_FILES.items()})


def _damage(blob: bytes, damage) -> bytes:
    kind, where = damage
    if kind == "truncate":
        return blob[: int(len(blob) * where)]
    out = bytearray(blob)
    for w in where:
        i = int(len(out) * w)
        out[i] = (out[i] + 1 + int(w * 1e6) % 255) % 256
    return bytes(out)


DAMAGE = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0.0, 0.9999)),
    st.tuples(st.just("flip"), st.lists(st.floats(0.0, 0.9999), min_size=1, max_size=8)),
)


def _check_loaded(load, path: Path, suite: str) -> None:
    """A damaged file loads with consistent arrays, or fails with an allowed error naming it."""
    counts = CASES.setdefault(suite, {})
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = load(path)
    except (ValueError, FileNotFoundError, OSError) as exc:
        assert path.name in str(exc), f"{type(exc).__name__} does not name the file: {exc}"
        counts[type(exc).__name__] = counts.get(type(exc).__name__, 0) + 1
        return
    except (TypeError, ImportError) as exc:
        assert str(exc).strip()
        counts[type(exc).__name__] = counts.get(type(exc).__name__, 0) + 1
        return
    counts["loaded"] = counts.get("loaded", 0) + 1
    for array in result:
        assert not np.isinf(array).any(), "a loader returned infinite values"
        assert np.all(np.isnan(array) | np.isfinite(array))


def _keypoint_arrays(sessions):
    xy, conf = sessions.coordinates, sessions.confidence
    assert xy.ndim == 3 and xy.shape[2] in (2, 3)
    assert conf.shape == xy.shape[:2]
    assert len(sessions.session_starts) == len(xy)
    finite = conf[np.isfinite(conf)]
    assert np.all((finite >= 0) & (finite <= 1)), "confidence outside [0, 1]"
    return xy, conf


@pytest.mark.parametrize("kind", sorted(k for k in REAL_FILES if k != "moseq_pcs"))
@FUZZ
@given(damage=DAMAGE)
def test_fuzz_keypoint_files(real_bytes, tmp_path_factory, kind, damage):
    name = Path(REAL_FILES[kind]).name
    path = tmp_path_factory.mktemp("fuzz") / f"damaged_{name}"
    path.write_bytes(_damage(real_bytes[kind], damage))
    _check_loaded(lambda p: _keypoint_arrays(load_keypoints(p)), path, f"load_keypoints {kind}")


@FUZZ
@given(damage=DAMAGE)
def test_fuzz_pc_score_file(real_bytes, tmp_path_factory, damage):
    path = tmp_path_factory.mktemp("fuzz") / "damaged_pca_scores.h5"
    path.write_bytes(_damage(real_bytes["moseq_pcs"], damage))
    _check_loaded(lambda p: (load_pc_scores(p).scores,), path, "load_pc_scores")
