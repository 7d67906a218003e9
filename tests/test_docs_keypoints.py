"""The keypoints guide's code blocks run as written (in order, in one namespace)."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "guide" / "keypoints.md"


def test_keypoints_guide_code_runs(tmp_path, monkeypatch):
    for module in ("tables", "sleap_io", "pynwb", "ndx_pose", "xarray", "matplotlib"):
        pytest.importorskip(module)
    if not GUIDE.is_file():
        pytest.skip("docs/ is not part of this checkout")
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), re.S)
    assert len(blocks) > 10
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the guide's mkdtemp() lands here
    namespace: dict = {}
    for i, block in enumerate(blocks):
        exec(compile(block, f"{GUIDE.name}, python block {i}", "exec"), namespace)
    # spot checks of values the guide prints in its comments
    assert namespace["clean"].outliers.sum() == 20
    assert namespace["pca"].n_components_ == 2
    assert namespace["syllables"].shape == (1900,)
    assert (Path(namespace["tmp"]) / "scree.png").is_file()
