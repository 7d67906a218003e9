"""Run the keypoint tutorial's command (docs/guide/tutorial.md) and copy its figures into the docs.

Run from the repository root:  python docs/scripts/keypoint_tutorial.py [OUT_DIR]
The B-SOiD recordings are GPL-3.0: only the derived figures are committed.
"""

import shutil
import subprocess
import sys
import time
from pathlib import Path

root = Path(__file__).resolve().parents[2]
data = root.parent / "shared" / "data" / "pose-bsoid-openfield-mouse"
out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/tmp/bsoid-syllables")
files = sorted(str(p) for p in data.glob("raw_clip*_1030000.h5"))
cmd = [
    sys.executable,
    "-m",
    "behavhmm.cli",
    "fit-keypoints",
    *files,
    "--out",
    str(out),
    "--fps",
    "60",
    "--anterior",
    "Snout",
    "--posterior",
    "Butt/Proximal Tail",
    "--latent-dim",
    "6",
    "--target-duration",
    "0.4",
    "--no-progress",
]
tic = time.perf_counter()
subprocess.run(cmd, check=True)
print(f"wall time {time.perf_counter() - tic:.0f} s")
for name in ("syllable_usage", "syllable_durations", "fit_progress"):
    shutil.copy(out / f"{name}.png", root / "docs" / "guide" / "img" / f"tutorial-{name}.png")
