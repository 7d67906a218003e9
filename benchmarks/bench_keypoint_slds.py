"""KeypointSLDS on the golden-mouse recording: compile time, seconds per sweep, peak memory.

Run one configuration per process (peak RSS is per process):

    PYTHONPATH=src python benchmarks/bench_keypoint_slds.py --tile 1 [--block-size 1024]

prints one JSON line. ``--tile k`` repeats the recording k times (as k
sessions) to show how memory grows with frames.
"""

from __future__ import annotations

import argparse
import glob
import json
import resource
import time
from pathlib import Path

import jax
import numpy as np

import behavhmm
import behavhmm.models.keypoint_slds as kpslds
from behavhmm.io import load_keypoints
from behavhmm.models import _slds_programs

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "dlc_golden_mouse"
# 16 keypoints (ears' tips, eyes, tail beyond tail2 and tail_end dropped), as in the issue's benchmark
BODYPARTS = ["nose", "left_ear", "right_ear", "neck", "mid_back", "mouse_center", "mid_backend", "mid_backend2",
             "mid_backend3", "tail_base", "tail1", "left_shoulder", "left_midside", "left_hip", "right_shoulder",
             "right_hip"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tile", type=int, default=1)
    ap.add_argument("--block-size", type=int, default=None)
    ap.add_argument("--n-iter", type=int, default=10)
    ap.add_argument("--n-states", type=int, default=100)
    args = ap.parse_args()
    ks = load_keypoints(glob.glob(str(DATA / "*.h5"))[0])
    names = list(ks.bodyparts)
    use = [names.index(b) for b in BODYPARTS]
    X = np.tile(np.asarray(ks.coordinates)[:, use], (args.tile, 1, 1))
    conf = np.tile(np.asarray(ks.confidence)[:, use], (args.tile, 1))
    starts = np.arange(args.tile) * ks.coordinates.shape[0]
    times = []
    original = kpslds.slds_sweep

    def timed(*a, **k):
        t = time.perf_counter()
        out = original(*a, **k)
        jax.block_until_ready(out)
        times.append(time.perf_counter() - t)
        return out

    kpslds.slds_sweep = timed
    model = behavhmm.KeypointSLDS(
        n_states=args.n_states, latent_dim=10, nlags=3, n_iter_ar=1, n_iter=args.n_iter, block_size=args.block_size,
        anterior_bodyparts=0, posterior_bodyparts=BODYPARTS.index("tail_base"), progress_bar=False,
    )
    t0 = time.perf_counter()
    model.fit(X, confidence=conf, session_starts=starts)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    model.decode(X, confidence=conf, session_starts=starts)
    decode_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    model.decode(X, confidence=conf, session_starts=starts)
    decode_s = time.perf_counter() - t0
    print(json.dumps({
        "frames": int(X.shape[0]), "tile": args.tile, "block_size": args.block_size,
        "first_full_sweep_s": round(times[0], 2), "sweep_s_median": round(float(np.median(times[1:])), 3),
        "fit_s": round(fit_s, 1), "decode_first_s": round(decode_first, 2), "decode_s": round(decode_s, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "programs_compiled": {"continuous_sweep": _slds_programs.continuous_sweep._cache_size()},
        "backend": jax.default_backend(),
    }))


if __name__ == "__main__":
    main()
