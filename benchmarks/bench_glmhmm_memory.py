"""Peak RSS of one GLMHMM fit in a fresh process, against ``behavhmm._memory.glmhmm_fit_memory``.

Usage (one fit per process; bytes per frame = difference of two runs / difference of frames)::

    python benchmarks/bench_glmhmm_memory.py Bernoulli 10 4 f32 200000
    python benchmarks/bench_glmhmm_memory.py Bernoulli 10 4 f32 600000

Set ``MALLOC_MMAP_THRESHOLD_=1048576`` to measure live memory (glibc then returns freed buffers to
the system); see the Scale page of the docs. Prints one JSON line.
"""

from __future__ import annotations

import json
import resource
import sys
import time
import warnings

import numpy as np


def main(family: str, n_features: int, n_states: int, dtype: str, n_frames: int, block=None):
    import jax

    if dtype == "f64":
        jax.config.update("jax_enable_x64", True)
    from behavhmm import GLMHMM
    from behavhmm._memory import glmhmm_fit_memory

    rng = np.random.default_rng(0)
    X = rng.standard_normal((n_frames, n_features), dtype=np.float32 if dtype == "f32" else float)
    y = rng.binomial(1, 0.5, size=n_frames).astype(float)
    model = GLMHMM(
        n_states, observation_model=family, maxiter=3, tol=1e-30, block_size=block,
        progress_bar=False,
    )  # fmt: skip
    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    model.fit(X, y)
    estimate = glmhmm_fit_memory(
        n_frames, n_states, n_features, itemsize=4 if dtype == "f32" else 8, block_size=block
    )
    return {
        "family": family, "F": n_features, "K": n_states, "dtype": dtype, "T": n_frames,
        "block": block, "seconds": time.perf_counter() - t0,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "estimate_bytes_per_frame": estimate.per_frame,
    }  # fmt: skip


if __name__ == "__main__":
    a = sys.argv[1:]
    block = int(a[5]) if len(a) > 5 else None
    print(json.dumps(main(a[0], int(a[1]), int(a[2]), a[3], int(a[4]), block)))
