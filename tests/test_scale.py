"""Scale: float32 fits that hold at a million frames, pinned matmul precision, memory estimates.

The heavy tests (``slow``, run by ``pytest -m slow``) fit N = 200 tiled copies
of the golden-mouse recording (972,000 frames) as ``benchmarks/bench_scale.py``
prepares it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import behavhmm
from behavhmm.observations import (
    ar_state_statistics,
    ar_sufficient_statistics,
    default_mniw_prior,
    mniw_map,
)
from behavhmm.observations.ar_conditioned import ar_map_update, ar_sample_update

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
#: Tiled copies of the 4,860-frame recording (200: 972,000 frames); smaller to try the plumbing.
N_COPIES = int(os.environ.get("BEHAVHMM_SCALE_COPIES", "200"))


# ----------------------------------------------------------------------------
# the conditioned MNIW updates equal the textbook ones
# ----------------------------------------------------------------------------


@pytest.mark.requires_x64
@pytest.mark.parametrize("nlags", [0, 1, 3])
def test_conditioned_map_update_equals_mniw_map(rng, nlags):
    n_features, n_states, n = 3, 4, 300
    y = rng.normal(size=(n, n_features)) + 5.0
    x = rng.normal(size=(n, nlags * n_features)) + 5.0
    w = rng.dirichlet(np.ones(n_states), size=n)
    prior = default_mniw_prior(n_features, nlags)
    want = mniw_map(ar_sufficient_statistics(w, y, x), prior)
    got = ar_map_update(jnp.asarray(w), jnp.asarray(y), jnp.asarray(x), prior, chunk=37)
    for a, b in zip(want, got, strict=True):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-9, atol=1e-11)


@pytest.mark.requires_x64
def test_conditioned_sample_update_has_the_posterior_moments(rng):
    """Many draws of one state: E[Σ] = S_n / (ν_n - D - 1), E[W] = M_n."""
    from behavhmm.observations.autoregressive import _posterior_terms

    n_features, nlags, n = 2, 2, 200
    y = rng.normal(size=(n, n_features)) + 3.0
    x = rng.normal(size=(n, nlags * n_features)) + 3.0
    states = np.zeros(n, np.int32)
    prior = default_mniw_prior(n_features, nlags)
    mean, s_n, _ = _posterior_terms(ar_state_statistics(states, y, x, 1), prior)
    keys = jax.random.split(jax.random.key(0), 4000)
    coef, intercept, cov = jax.vmap(
        lambda k: ar_sample_update(k, jnp.asarray(states), jnp.asarray(y), jnp.asarray(x), 1, prior)
    )(keys)
    w = np.concatenate([np.asarray(coef)[:, 0], np.asarray(intercept)[:, 0, :, None]], axis=-1)
    nu_n = float(prior.dof) + n
    np.testing.assert_allclose(
        np.asarray(cov)[:, 0].mean(0), np.asarray(s_n)[0] / (nu_n - n_features - 1), rtol=0.06
    )
    np.testing.assert_allclose(w.mean(0), np.asarray(mean)[0], atol=0.02)


@pytest.mark.slow  # 13-14 s in the default run (2 cores)
def test_conditioned_update_holds_in_float32_where_the_textbook_one_fails(rng):
    """Smooth, tiled trajectories: the raw-moment float32 route loses the covariance."""
    n_features, nlags, n_states = 4, 3, 3
    t = np.arange(4000) / 30.0
    base = np.stack([np.sin(f * t + p) for f, p in [(1, 0), (1.7, 1), (2.3, 2), (3.1, 3)]], 1)
    frames = np.tile(base + 1e-3 * rng.normal(size=base.shape), (50, 1))
    y, x = frames[nlags:], np.concatenate([frames[nlags - k : -k] for k in (1, 2, 3)], axis=1)
    w = np.eye(n_states)[rng.integers(0, n_states, len(y))]
    prior = default_mniw_prior(n_features, nlags)
    with jax.enable_x64(True):
        ref = [np.asarray(a) for a in ar_map_update(w, y, x, prior)]
    f32 = [a.astype(np.float32) for a in (w, y, x)]
    got = [np.asarray(a) for a in jax.jit(ar_map_update)(*f32, prior)]
    textbook = np.asarray(mniw_map(ar_sufficient_statistics(*f32), prior)[2])
    rel = np.abs(got[2] - ref[2]).max() / np.abs(ref[2]).max()
    rel_textbook = np.abs(textbook - ref[2]).max() / np.abs(ref[2]).max()
    assert rel < 1e-5, rel  # measured 2.5e-7
    assert not rel_textbook < 100 * rel  # measured 1.7e-3 (or NaN): the failure this fixes


# ----------------------------------------------------------------------------
# precision pinned in the lowered programs
# ----------------------------------------------------------------------------


def _dot_lines(lowered) -> list[str]:
    return [line for line in lowered.as_text().splitlines() if "stablehlo.dot_general" in line]


def assert_pinned(lowered, name):
    dots = _dot_lines(lowered)
    assert dots, f"{name}: no dot_general in the program"
    loose = [d for d in dots if "precision = [HIGHEST, HIGHEST]" not in d]
    assert not loose, f"{name}: {len(loose)} of {len(dots)} dot_general not HIGHEST: {loose[0]}"


class _Capture:
    """Wraps a program and keeps the arguments of its first call."""

    def __init__(self, fn):
        self.fn, self.args, self.kwargs = fn, None, None

    def __call__(self, *args, **kwargs):
        if self.args is None:
            self.args, self.kwargs = args, kwargs
        return self.fn(*args, **kwargs)


def _small_pcs(rng, n=300, d=3):
    steps = rng.normal(size=(n, d)) * 0.1
    return np.cumsum(steps, axis=0) + rng.normal(size=(n, d)) * 0.01


def test_unpinned_program_is_caught():
    """The check can fail: a plain jit under a lowered default is not HIGHEST."""
    with jax.default_matmul_precision("bfloat16"):
        lowered = jax.jit(lambda a: a @ a).lower(jnp.ones((3, 3)))
    with pytest.raises(AssertionError):
        assert_pinned(lowered, "plain")


@pytest.mark.slow  # 13-14 s in the default run (2 cores)
def test_arhmm_programs_run_at_highest_precision(rng, monkeypatch):
    from behavhmm.models.arhmm import em, estimator, gibbs, model

    X = _small_pcs(rng)
    cap_em = _Capture(em.m_step_program)
    monkeypatch.setattr(em, "m_step_program", cap_em)
    behavhmm.ARHMM(n_states=3, nlags=2, n_iter=1, progress_bar=False).fit(X)
    cap_gibbs = _Capture(gibbs.gibbs_sweep)
    monkeypatch.setattr(estimator, "gibbs_sweep", cap_gibbs)
    behavhmm.ARHMM(n_states=3, nlags=2, algorithm="gibbs", n_iter=1, progress_bar=False).fit(X)
    params, _, data, hyper = cap_em.args[0], None, cap_em.args[2], cap_em.args[3]
    state = cap_gibbs.args[0]
    with jax.default_matmul_precision("bfloat16"):  # a global setting the programs override
        programs = {
            "m_step_program": cap_em.fn.lower(*cap_em.args, **cap_em.kwargs),
            "em_step": jax.jit(em.em_step, static_argnums=(3, 4)).lower(
                params, data, hyper, False, "sequential"
            ),
            "gibbs_sweep": cap_gibbs.fn.lower(*cap_gibbs.args, **cap_gibbs.kwargs),
            "log_joint_program": gibbs.log_joint_program.lower(state, data, hyper, robust=False),
            "log_likelihood_program": model.log_likelihood_program.lower(params, data, False),
            "filter_program": model.filter_program.lower(params, data, False, "sequential"),
        }
    for name, lowered in programs.items():
        assert_pinned(lowered, name)


@pytest.mark.slow  # 10-19 s in the default run (CI, 2 cores)
def test_keypoint_slds_programs_run_at_highest_precision(rng, monkeypatch):
    from behavhmm.models.keypoint_slds import estimator as kp_estimator
    from behavhmm.models.keypoint_slds import gibbs as kp_gibbs

    n, n_kp = 200, 5
    base = rng.normal(size=(n_kp, 2)) * 5
    drift = np.cumsum(rng.normal(size=(n, 1, 2)) * 0.2, axis=0)
    X = base[None] + drift + rng.normal(size=(n, n_kp, 2)) * 0.3
    cap = _Capture(kp_gibbs.continuous_sweep)
    monkeypatch.setattr(kp_gibbs, "continuous_sweep", cap)
    model = behavhmm.KeypointSLDS(
        n_states=3, latent_dim=2, nlags=1, n_iter_ar=1, n_iter=1, progress_bar=False
    )
    model.fit(X)
    assert kp_estimator is not None
    with jax.default_matmul_precision("bfloat16"):
        lowered = cap.fn.lower(*cap.args, **cap.kwargs)
        state, _, data, hyper, *_ = cap.args
        sweep = jax.jit(kp_gibbs.slds_sweep, static_argnums=(4, 5)).lower(
            state, jax.random.key(0), data, hyper, "sequential", None
        )
    assert_pinned(lowered, "continuous_sweep")
    assert_pinned(sweep, "slds_sweep")


def test_glmhmm_programs_run_at_highest_precision(rng, monkeypatch):
    from behavhmm.models.glmhmm import em as glm_em

    X = rng.normal(size=(300, 2))
    y = (X[:, 0] + rng.normal(size=300) > 0).astype(float)
    cap = _Capture(glm_em.m_step_program)
    monkeypatch.setattr(glm_em, "m_step_program", cap)
    behavhmm.GLMHMM(n_states=2, maxiter=1).fit(X, y)
    assert cap.args is not None
    with jax.default_matmul_precision("bfloat16"):
        lowered = cap.fn.lower(*cap.args, **cap.kwargs)
    assert_pinned(lowered, "glmhmm m_step_program")


def test_gaussian_hmm_programs_run_at_highest_precision(rng, monkeypatch):
    from behavhmm.models.gaussian_hmm import em as g_em

    X = rng.normal(size=(300, 3)) + np.repeat([[0.0], [4.0]], 150, axis=0)
    cap = _Capture(g_em.m_step_program)
    monkeypatch.setattr(g_em, "m_step_program", cap)
    behavhmm.GaussianHMM(n_states=2, n_iter=1, progress_bar=False).fit(X)
    params, post, data, hyper = cap.args[:4]
    with jax.default_matmul_precision("bfloat16"):
        programs = {
            "m_step_program": cap.fn.lower(*cap.args, **cap.kwargs),
            "log_likelihood_program": g_em.log_likelihood_program.lower(
                params, data, covariance_type="full"
            ),
            "filter_program": g_em.filter_program.lower(params, data, "full", "sequential"),
            "viterbi_program": g_em.viterbi_program.lower(params, data, "full", "sequential"),
        }
    for name, lowered in programs.items():
        assert_pinned(lowered, f"gaussian_hmm {name}")


# ----------------------------------------------------------------------------
# a million frames (slow)
# ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def golden_inputs(shared_data, tmp_path_factory):
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import bench_arhmm as ba
        import bench_keypoint_slds as bk
    finally:
        sys.path.remove(str(BENCHMARKS))
    ba.DATA_DIR = shared_data / "dlc_golden_mouse"
    out = tmp_path_factory.mktemp("golden")
    ba.prepare_data(out / "pcs.npz", ba.DATA_DIR)
    bk.prepare_data(out / "kp.npz")
    pcs = ba.load_pcs(out / "pcs.npz", "pcs_white")
    coords, conf, starts = bk.load_keypoints_npz(out / "kp.npz", N_COPIES)
    return dict(pcs=pcs, coords=coords, conf=conf, kp_starts=starts, ba=ba)


def _fit_both(fit):
    """``fit()`` in float32, then in float64; returns both log-likelihood histories."""
    out = {}
    for x64 in (False, True):
        jax.config.update("jax_enable_x64", x64)
        try:
            out[x64] = np.asarray(fit(np.float64 if x64 else np.float32), dtype=float)
        finally:
            jax.config.update("jax_enable_x64", False)
    return out[False], out[True]


@pytest.mark.slow
@pytest.mark.shared_data
def test_arhmm_em_float32_matches_float64_at_a_million_frames(golden_inputs):
    pcs = golden_inputs["pcs"]
    X = np.tile(pcs, (N_COPIES, 1))
    starts = np.arange(N_COPIES) * len(pcs)

    def fit(dtype):
        model = behavhmm.ARHMM(
            n_states=20, nlags=3, n_iter=5, tol=0.0, check_every=100, progress_bar=False
        )
        with pytest.warns(Warning):  # ConvergenceWarning: tol=0 never converges
            model.fit(X.astype(dtype), session_starts=starts)
        return model.log_likelihood_history_

    ll32, ll64 = _fit_both(fit)
    assert np.all(np.isfinite(ll32)) and len(ll32) == 5
    rel = abs(ll32[-1] - ll64[-1]) / abs(ll64[-1])
    assert rel < 1e-4, (ll32 / len(X), ll64 / len(X))


@pytest.mark.slow
@pytest.mark.shared_data
def test_arhmm_gibbs_float32_finite_and_close_at_a_million_frames(golden_inputs):
    pcs = golden_inputs["pcs"]
    X = np.tile(pcs, (N_COPIES, 1))
    starts = np.arange(N_COPIES) * len(pcs)

    def fit(dtype):
        model = behavhmm.ARHMM(
            n_states=100, nlags=3, algorithm="gibbs", n_iter=3, check_every=100,
            progress_bar=False,
        )  # fmt: skip
        model.fit(X.astype(dtype), session_starts=starts)
        return model.log_likelihood_history_

    ll32, ll64 = _fit_both(fit)
    assert len(ll32) == 3 and np.all(np.isfinite(ll32)), ll32
    assert abs(ll32[-1] - ll64[-1]) / abs(ll64[-1]) < 0.02, (ll32, ll64)


@pytest.mark.slow
@pytest.mark.shared_data
def test_keypoint_slds_float32_finite_and_close_at_a_million_frames(golden_inputs):
    ba = golden_inputs["ba"]
    coords, conf, starts = (golden_inputs[k] for k in ("coords", "conf", "kp_starts"))

    def fit(dtype):
        model = behavhmm.KeypointSLDS(
            n_states=100, latent_dim=10, nlags=3, n_iter_ar=2, n_iter=3, check_every=100,
            anterior_bodyparts=ba.BODYPARTS.index(ba.ANTERIOR),
            posterior_bodyparts=ba.BODYPARTS.index(ba.POSTERIOR), progress_bar=False,
        )  # fmt: skip
        model.fit(coords.astype(dtype), confidence=conf, session_starts=starts)
        return model.log_likelihood_history_

    ll32, ll64 = _fit_both(fit)
    assert len(ll32) >= 3 and np.all(np.isfinite(ll32)), ll32
    assert abs(ll32[-1] - ll64[-1]) / abs(ll64[-1]) < 0.02, (ll32, ll64)


# ----------------------------------------------------------------------------
# memory estimates and the check before a fit
# ----------------------------------------------------------------------------


def test_fit_that_would_not_fit_in_memory_raises_before_it_starts(rng, monkeypatch):
    import behavhmm._memory as memory
    from behavhmm.models.arhmm import initialize as estimator

    calls = []
    monkeypatch.setattr(memory, "available_memory", lambda: (1000, "test"))
    monkeypatch.setattr(estimator, "_regress_on_weights", lambda *a: calls.append(a))
    X = _small_pcs(rng)
    with pytest.raises(MemoryError, match=r"ARHMM.fit needs about .* bytes per frame"):
        behavhmm.ARHMM(n_states=3, nlags=2, n_iter=1, progress_bar=False).fit(X)
    assert not calls  # nothing started


def test_memory_estimates_grow_with_frames_states_and_dtype():
    from behavhmm._memory import arhmm_fit_memory, keypoint_slds_fit_memory

    small = arhmm_fit_memory(1000, 10, 10, 3, itemsize=4, algorithm="gibbs")
    assert small.total == 1000 * small.bytes_per_frame
    assert arhmm_fit_memory(1000, 100, 10, 3, itemsize=4).bytes_per_frame > small.bytes_per_frame
    assert arhmm_fit_memory(1000, 10, 10, 3, itemsize=8, algorithm="gibbs").total > small.total
    full = keypoint_slds_fit_memory(10**6, 100, 16, 2, 10, 3, itemsize=4)
    blocked = keypoint_slds_fit_memory(10**6, 100, 16, 2, 10, 3, itemsize=4, block_size=1000)
    assert blocked.per_frame["kalman"] < full.per_frame["kalman"] / 100


def test_block_size_changes_memory_not_results(rng):
    X = _small_pcs(rng)
    kw = dict(n_states=3, nlags=2, n_iter=3, tol=0.0, progress_bar=False)
    with pytest.warns(Warning):
        whole = behavhmm.ARHMM(**kw).fit(X)
    with pytest.warns(Warning):
        blocked = behavhmm.ARHMM(block_size=37, **kw).fit(X)
    np.testing.assert_allclose(
        blocked.log_likelihood_history_, whole.log_likelihood_history_, rtol=1e-5
    )
    Xg = rng.normal(size=(300, 2))
    yg = (Xg[:, 0] + rng.normal(size=300) > 0).astype(float)
    with pytest.warns(Warning):
        g_whole = behavhmm.GLMHMM(n_states=2, maxiter=3, progress_bar=False).fit(Xg, yg)
    with pytest.warns(Warning):
        g_blocked = behavhmm.GLMHMM(n_states=2, maxiter=3, block_size=41, progress_bar=False)
        g_blocked.fit(Xg, yg)
    np.testing.assert_allclose(g_blocked.coef_, g_whole.coef_, rtol=1e-4, atol=1e-6)
