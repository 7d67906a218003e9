"""Write the old-style fit-keypoints folder of ``tests/data/keypoint_results_v0_1/``.

Run once, by main at commit d7b8259 (before the run-directory layout of issue 18), from this
folder: ``python make_folder.py``. Do not re-run it on newer code (that would defeat the test).
The pose file is synthetic (a random walk of 4 keypoints, 150 frames, MIT like the repository).
"""

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from click.testing import CliRunner

from behavhmm.cli import main

here = Path(__file__).resolve().parent
rng = np.random.default_rng(18)
n, parts = 150, ["nose", "left_ear", "right_ear", "tail_base"]
centre = np.cumsum(rng.normal(0, 1.5, size=(n, 2)), axis=0) + 200
heading = np.cumsum(rng.normal(0, 0.1, size=n))
body = np.array([[12.0, 0.0], [6.0, 4.0], [6.0, -4.0], [-12.0, 0.0]])
rot = np.stack([[np.cos(heading), -np.sin(heading)], [np.sin(heading), np.cos(heading)]])
xy = centre[:, None, :] + np.einsum("ijt,kj->tki", rot, body) + rng.normal(0, 0.5, (n, 4, 2))
columns = pd.MultiIndex.from_product(
    [["synthetic"], parts, ["x", "y", "likelihood"]], names=["scorer", "bodyparts", "coords"]
)
values = np.concatenate([xy, np.full((n, 4, 1), 0.99)], axis=2).reshape(n, -1).round(3)
pd.DataFrame(values, columns=columns).to_csv(here / "walk.csv")
out = here / "fit"
shutil.rmtree(out, ignore_errors=True)
args = ["fit-keypoints", str(here / "walk.csv"), "--out", str(out), "--fps", "30"]
args += ["--latent-dim", "2", "--n-states", "3", "--ar-iters", "2", "--iters", "2"]
result = CliRunner().invoke(main, args + ["--no-plots", "--no-progress"])
print(result.output)
assert result.exit_code == 0
