"""Sessions split over several devices: the same results as on one device.

Runs in a subprocess with ``XLA_FLAGS=--xla_force_host_platform_device_count=4``
(four CPU devices; the flag must be set before JAX starts).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import sys
    import jax
    jax.config.update("jax_enable_x64", True)
    import numpy as np
    sys.path.insert(0, {tests!r})
    from test_kalman import _args, _problem
    from behavhmm.inference import _sessions, ar_kalman_sample, ar_kalman_smoother
    from behavhmm.inference import hmm_sample, hmm_smoother, hmm_viterbi

    assert jax.device_count() == 4, jax.devices()
    _sessions.SIDE_BY_SIDE = True
    lengths = [9, 1, 12, 40, 33, 1, 17, 20, 25, 30]
    edges = np.cumsum([0] + lengths)
    p = _problem(np.random.default_rng(0), nlags=2, n_time_bins=edges[-1], starts=edges[:-1])
    args = _args(p)
    starts = np.asarray(args[-1])
    plan = _sessions.session_plan(starts)
    assert all(b.index.shape[0] % 4 == 0 for b in plan.buckets)
    big = max(plan.buckets, key=lambda b: b.index.shape[0])
    rows = _sessions.to_rows(args[2], big)
    assert len(rows.sharding.device_set) == 4, rows.sharding
    key = jax.random.key(2)
    worst = 0.0
    for rows_call, one_axis in [
        (lambda: ar_kalman_smoother(*args), lambda: jax.jit(ar_kalman_smoother)(*args)),
        (lambda: ar_kalman_sample(key, *args), lambda: jax.jit(ar_kalman_sample)(key, *args)),
    ]:
        for a, b in zip(rows_call(), one_axis()):
            if a is not None:
                worst = max(worst, float(np.max(np.abs(np.asarray(a) - np.asarray(b)))))
    rng = np.random.default_rng(1)
    k = 3
    ll = rng.normal(size=(edges[-1], k))
    pi = np.full(k, 1 / k)
    A = rng.dirichlet(np.ones(k), size=k)
    sm_rows = hmm_smoother(pi, A, ll, starts)
    sm_one = jax.jit(hmm_smoother)(pi, A, ll, starts)
    for a, b in zip(sm_rows, sm_one):
        worst = max(worst, float(np.max(np.abs(np.asarray(a) - np.asarray(b)))))
    same = np.array_equal(hmm_sample(key, pi, A, ll, starts).states,
                          jax.jit(hmm_sample)(key, pi, A, ll, starts).states)
    vit = np.array_equal(hmm_viterbi(pi, A, ll, starts),
                         jax.jit(hmm_viterbi)(pi, A, ll, starts))
    print("RESULT", worst, same, vit)
    """
)


def test_sessions_split_over_four_devices_equal_one_device():
    tests = str(Path(__file__).resolve().parent)
    env = dict(os.environ)
    env["XLA_FLAGS"] = (
        env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
    ).strip()
    env["JAX_PLATFORMS"] = "cpu"
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(tests=tests)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    line = [x for x in out.stdout.splitlines() if x.startswith("RESULT")][-1]
    worst, same, vit = line.split()[1:]
    assert float(worst) < 1e-9
    assert same == "True" and vit == "True"
