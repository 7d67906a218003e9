"""The MoSeq guide's code blocks run as written on the real PC scores (with short chains)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "guide" / "moseq.md"


@pytest.mark.slow  # over ~15 s; CI runs it in its slow step
def test_moseq_guide_code_runs(shared_data):
    matplotlib = pytest.importorskip("matplotlib")
    pytest.importorskip("h5py")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not GUIDE.is_file():
        pytest.skip("docs/ is not part of this checkout")
    text = GUIDE.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) >= 6
    namespace: dict = {}
    for i, block in enumerate(blocks):
        # same code, shorter chains and a smaller scan, so that the test takes seconds
        block = block.replace('"../shared/data', f'"{shared_data}')
        block = re.sub(r"n_iter=\d+", "n_iter=3", block)
        block = block.replace("n_kappas=7", "n_kappas=2").replace(
            "target_duration=0.4 * 30", "target_duration=9"
        )
        block = block.replace("n_states=20", "n_states=12")
        exec(compile(block, f"{GUIDE.name}, python block {i}", "exec"), namespace)
    plt.close("all")
    assert namespace["X"].shape == (1816, 10)
    assert int(namespace["starts"].sum()) == 2
    z = namespace["z"]
    assert z.shape == (1816,) and np.all(z[namespace["starts"]] == -1)
    assert list(namespace["table"]["kappa"]) == [10.0, 1e7]
    assert namespace["grouped"].transition_prob_.shape == (2, 12, 12)
    assert np.isfinite(namespace["model"].heldout_log_likelihood_history_).all()
