"""GLMHMM's memory estimate (``behavhmm._memory.glmhmm_fit_memory``) and the check before a fit."""

from __future__ import annotations

import numpy as np
import pytest

import behavhmm
from behavhmm._memory import glmhmm_fit_memory


def test_glmhmm_fit_that_would_not_fit_in_memory_raises_before_it_starts(rng, monkeypatch):
    import behavhmm._memory as memory
    from behavhmm.models.glmhmm import validation

    calls = []
    monkeypatch.setattr(memory, "available_memory", lambda: (1000, "test"))
    monkeypatch.setattr(validation.GLMValidation, "_prepare", lambda *a, **k: calls.append(a))
    X = rng.normal(size=(500, 3))
    y = rng.binomial(1, 0.5, size=500)
    with pytest.raises(MemoryError, match=r"GLMHMM.fit needs about .* bytes per frame: .*e_step"):
        behavhmm.GLMHMM(n_states=2, progress_bar=False).fit(X, y)
    assert not calls  # nothing started
    monkeypatch.setenv("BEHAVHMM_SKIP_MEMORY_CHECK", "1")
    with pytest.raises(AttributeError):  # past the check: the patched _prepare returned None
        behavhmm.GLMHMM(n_states=2, progress_bar=False).fit(X, y)
    assert len(calls) == 1


def test_glmhmm_estimate_grows_with_states_features_outputs_and_dtype():
    small = glmhmm_fit_memory(10**6, 2, 10, itemsize=4)
    assert small.total == 10**6 * small.bytes_per_frame
    assert glmhmm_fit_memory(10**6, 8, 10, itemsize=4).bytes_per_frame > small.bytes_per_frame
    assert glmhmm_fit_memory(10**6, 2, 40, itemsize=4).bytes_per_frame > small.bytes_per_frame
    assert glmhmm_fit_memory(10**6, 2, 10, itemsize=8).total > small.total
    assert glmhmm_fit_memory(10**6, 2, 10, itemsize=4, n_outputs=20).total > small.total
    whole = glmhmm_fit_memory(10**6, 2, 10, itemsize=4, block_size=10**6)
    assert whole.per_frame["m_step"] > 0  # unblocked Newton temporaries exceed the E-step's
    blocked = glmhmm_fit_memory(10**6, 2, 10, itemsize=4, block_size=1000)
    assert blocked.per_frame["m_step"] == 0.0  # blocked: the E-step's peak dominates
    assert blocked.per_frame["e_step"] == whole.per_frame["e_step"]


def _device_bytes_per_frame(n_states, n_features, block_size):
    """Arguments + outputs + temporaries per frame of the E-step and M-step programs (XLA)."""
    from behavhmm.inference.hmm import _smoother_program
    from behavhmm.models.glmhmm import em as core

    def analyse(n_frames):
        rng = np.random.default_rng(0)
        X = rng.normal(size=(n_frames, n_features))
        y = rng.binomial(1, 0.5, n_frames).astype(float)
        model = behavhmm.GLMHMM(n_states=n_states, block_size=block_size, progress_bar=False)
        spec = model._spec()
        data = model._prepare(X, y, None, reset=True, spec=spec)
        params = model._initial_params(spec, data, spec.key)
        X_, y_, ll_const, starts, weights = data.args
        ll_args = (params, X_, y_, ll_const, weights, spec.family, spec.link, block_size)
        ll = core.log_likelihood_program(*ll_args)
        smoother_args = (params.initial_prob, params.transition_prob, ll, starts, None)
        post = _smoother_program(*smoother_args, method="sequential", block_size=None)
        config, hyper = model._config(spec), model._hyper(spec, data, params.coef.shape)
        m_step = core.m_step_program.lower(params, post, *data.args, hyper, config).compile()
        smoother = _smoother_program.lower(*smoother_args, method="sequential", block_size=None)
        out = {}
        for name, compiled in (("m", m_step), ("s", smoother.compile())):
            m = compiled.memory_analysis()
            out[name] = (m.temp_size_in_bytes, m.output_size_in_bytes)
        return X_.shape[0], out

    n1, a = analyse(20_000)
    n2, b = analyse(60_000)
    slope = {k: [(b[k][i] - a[k][i]) / (n2 - n1) for i in (0, 1)] for k in a}
    return slope


@pytest.mark.parametrize(("n_states", "n_features"), [(2, 6), (5, 3)])
def test_glmhmm_estimate_matches_the_compiled_programs(n_states, n_features):
    """The E-step and M-step components equal XLA's memory analysis of the programs (float32)."""
    slope = _device_bytes_per_frame(n_states, n_features, block_size=500)
    est = glmhmm_fit_memory(10**6, n_states, n_features, itemsize=4, block_size=500)
    # e_step: log-likelihoods (K) + the smoother's temporaries and posteriors (output)
    e_step = 4 * n_states + slope["s"][0] + slope["s"][1]
    np.testing.assert_allclose(est.per_frame["e_step"], e_step, rtol=0.1)
    # the M-step phase: its weights (3 K numbers) grow with frames, its blocks' temporaries do not
    np.testing.assert_allclose(4 * 3 * n_states, slope["m"][0], rtol=0.1)
    assert est.per_frame["m_step"] == 0.0  # with the posteriors (K + 1), below the E-step's peak
