"""How the kappa of ``behavhmm demo`` was chosen for its bundled recording (reproduces the choice).

Run from the repository root:  python docs/scripts/demo_kappa.py [--seeds 0 1 2] [--out FILE.json]

keypoint-moseq's tutorial picks kappa so that the median syllable duration is
about 400 ms; it scans kappa (or, here, bisects it: ``fit-keypoints
--target-duration 0.4``). This script does both on the demo's recording with
the demo's settings (`behavhmm.datasets.DEMO_KEYPOINT_SETTINGS`, kappa aside):

1. the library's bisection (`behavhmm.workflows.fit_keypoints` with
   ``target_duration`` = 0.4 s x 30 fps = 12 frames), which tunes kappa on an
   AR-HMM of the PCA scores (the AR-only stage) and then fits the full model;
2. a scan of the full keypoint SLDS over kappa = 10^0 ... 10^4 (half decades),
   for several seeds, reporting what the demo reports: the median duration of
   the decoded syllables (deterministic decoding) and the syllables used in at
   least 2 % of the frames.

It prints a table and writes it as JSON. Took 7 min on a shared 2-core machine (30 fits).
"""

import argparse
import json
import time

import numpy as np

from behavhmm.analysis import median_duration
from behavhmm.datasets import DEMO_KEYPOINT_SETTINGS, DEMO_RECORDING_FPS, demo_recording
from behavhmm.models import KeypointSLDS
from behavhmm.workflows import fit_keypoints, load_and_clean

parser = argparse.ArgumentParser()
parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
parser.add_argument(
    "--log10-kappas", type=float, nargs="+", default=list(np.arange(0.0, 4.01, 0.5))
)
parser.add_argument(
    "--target-s", type=float, default=0.4, help="Target median duration of the bisection, seconds."
)
parser.add_argument("--out", default="/tmp/demo_kappa_scan.json")
args = parser.parse_args()

sessions, coords, conf, names = load_and_clean(demo_recording(), fps=DEMO_RECORDING_FPS)
starts = sessions.session_starts
fps = DEMO_RECORDING_FPS


def summary(model):
    states = np.asarray(model.decode(coords, conf, session_starts=starts).states)
    labelled = states[states >= 0]
    usage = np.bincount(labelled, minlength=model.n_states) / len(labelled)
    med = float(median_duration(states, starts))
    return {
        "median_frames": med,
        "median_ms": 1000 * med / fps,
        "n_used_2pct": int(np.sum(usage >= 0.02)),
    }


rows = []
settings = {k: v for k, v in DEMO_KEYPOINT_SETTINGS.items() if k != "kappa"}
print(f"settings: {settings}; {len(coords)} frames at {fps:g} fps")

# 1. the library's bisection (fit-keypoints --target-duration)
for seed in args.seeds:
    model = KeypointSLDS(**settings, kappa=1e6, random_state=seed, progress_bar=False)
    tic = time.perf_counter()
    fit_keypoints(model, coords, conf, starts, target_duration=args.target_s * fps)
    row = {
        "method": "bisection",
        "seed": seed,
        "kappa": float(model.kappa),
        **summary(model),
        "seconds": time.perf_counter() - tic,
    }
    rows.append(row)
    print(row, flush=True)

# 2. the scan of the full model
for log_k in args.log10_kappas:
    for seed in args.seeds:
        model = KeypointSLDS(**settings, kappa=10.0**log_k, random_state=seed, progress_bar=False)
        tic = time.perf_counter()
        model.fit(coords, confidence=conf, session_starts=starts)
        row = {
            "method": "scan",
            "seed": seed,
            "kappa": 10.0**log_k,
            **summary(model),
            "seconds": time.perf_counter() - tic,
        }
        rows.append(row)
        print(row, flush=True)

print("\n| method | kappa | seed | median duration (frames) | (ms) | syllables >= 2 % |")
print("|---|---|---|---|---|---|")
for r in rows:
    print(
        f"| {r['method']} | {r['kappa']:.3g} | {r['seed']} | {r['median_frames']:.1f} | "
        f"{r['median_ms']:.0f} | {r['n_used_2pct']} |"
    )
with open(args.out, "w") as fh:
    json.dump({"settings": settings, "fps": fps, "rows": rows}, fh, indent=1)
print(f"wrote {args.out}")
