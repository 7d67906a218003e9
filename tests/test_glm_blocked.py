"""GLMHMM's ``block_size``: the M-step's sums over frames in blocks change memory, not results."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from behavhmm import GLMHMM
from behavhmm.fitting.solvers import blocked_frame_sum, freeze_kwargs, minimize_glm_newton
from behavhmm.observations.glm import glm_elementwise_log_prob, logistic

T_FRAMES = 311  # prime: every block size leaves a ragged last block

CASES = {
    # family, extra keywords, y shape: one case per M-step path
    "Bernoulli-Newton": ("Bernoulli", {}, None),
    "Gaussian-Newton": ("Gaussian", {}, None),
    "Poisson-population-Newton": ("Poisson", {}, 3),
    "Gamma-LBFGS-scale": ("Gamma", {"regularizer": "UnRegularized"}, None),
    "Categorical-LBFGS": ("Categorical", {}, None),
    "Bernoulli-Lasso-ProximalGradient": ("Bernoulli", {"regularizer": "Lasso"}, None),
    "Poisson-population-GroupLasso": (
        "Poisson",
        {"regularizer": "GroupLasso", "regularizer_strength": (0.5, 0.5)},
        2,
    ),
}


def _data(rng, family, n_outputs):
    X = rng.normal(size=(T_FRAMES, 3))
    eta = X @ rng.normal(scale=0.7, size=(3,) + ((n_outputs,) if n_outputs else ()))
    state = (np.arange(T_FRAMES) // 40) % 2
    eta = eta + (state * 1.5 - 0.75).reshape((-1,) + (1,) * (eta.ndim - 1))
    if family == "Bernoulli":
        y = rng.binomial(1, 1 / (1 + np.exp(-eta))).astype(float)
    elif family == "Poisson":
        y = rng.poisson(np.exp(0.5 * eta)).astype(float)
    elif family == "Gaussian":
        y = eta + rng.normal(size=eta.shape)
    elif family == "Gamma":
        y = rng.gamma(2.0, np.exp(0.3 * eta) / 2.0)
    else:  # Categorical, 3 classes
        y = np.digitize(eta + rng.normal(size=eta.shape), [-0.5, 0.5])
    return X, y


def _fit(X, y, family, kwargs, block_size):
    extra = dict(kwargs)
    if extra.get("regularizer") == "GroupLasso":
        from behavhmm.fitting.regularizers import GroupLasso

        extra["regularizer"] = GroupLasso(
            mask=np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        )  # two groups of the three features
    model = GLMHMM(
        n_states=2,
        observation_model=family,
        maxiter=4,
        tol=1e-14,
        block_size=block_size,
        progress_bar=False,
        seed=3,
        **extra,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # stops at maxiter
        return model.fit(X, y)


DEFAULT_RUN = ("Bernoulli-Newton",)  # the others: `pytest -m slow`


@pytest.mark.requires_x64
@pytest.mark.parametrize(
    "case",
    [c if c in DEFAULT_RUN else pytest.param(c, marks=pytest.mark.slow) for c in CASES],
)
def test_blocked_m_step_equals_unblocked_in_float64(rng, case):
    family, kwargs, n_outputs = CASES[case]
    X, y = _data(rng, family, n_outputs)
    whole = _fit(X, y, family, kwargs, None)
    blocked = _fit(X, y, family, kwargs, 37)
    for name in ("coef_", "intercept_", "scale_", "transition_prob_"):
        np.testing.assert_allclose(
            getattr(blocked, name), getattr(whole, name), rtol=1e-10, atol=1e-10, err_msg=name
        )
    np.testing.assert_allclose(
        blocked.log_joint_history_, whole.log_joint_history_, rtol=1e-10, atol=0
    )
    assert len(whole.log_joint_history_) == 4  # the runs did move: 4 M-steps compared
    assert np.ptp(whole.log_joint_history_) > 1e-3


@pytest.mark.requires_x64
def test_blocked_frame_sum_ragged_last_block_counts_each_frame_once(rng):
    """Ragged blocks: the last block overlaps the one before it; the overlap is counted once."""
    x = jnp.asarray(rng.gamma(2.0, size=(101, 2)))  # log x is finite only for x > 0
    w = jnp.asarray(rng.uniform(size=101))

    def fn(wb, xb):
        return jnp.sum(wb[:, None] * jnp.log(xb), axis=0)

    whole = blocked_frame_sum(fn, w, (x,), None)
    for block in (1, 7, 50, 100, 101, 500):
        np.testing.assert_allclose(blocked_frame_sum(fn, w, (x,), block), whole, rtol=1e-12)
    np.testing.assert_allclose(whole, np.sum(np.asarray(w)[:, None] * np.log(np.asarray(x)), 0))


@pytest.mark.requires_x64
def test_newton_blocked_matches_closure_form(rng):
    """``data=(y,)`` with blocks gives the solution of the closed-over ``y`` without blocks."""
    X = jnp.asarray(rng.normal(size=(257, 4)))
    y = jnp.asarray(rng.binomial(1, 0.4, size=257).astype(float))
    w8 = jnp.asarray(rng.uniform(size=257))
    kw = dict(regularizer="Ridge", hyper={"strength": jnp.full(4, 0.01)})
    kw["solver_kwargs"] = freeze_kwargs({"tol": 1e-12})
    closed = minimize_glm_newton(
        lambda e: glm_elementwise_log_prob("Bernoulli", logistic, y, e, 1.0),
        jnp.zeros(4),
        jnp.asarray(0.0),
        X,
        w8,
        257.0,
        **kw,
    )
    blocked = jax.jit(
        lambda: minimize_glm_newton(
            lambda e, yb: glm_elementwise_log_prob("Bernoulli", logistic, yb, e, 1.0),
            jnp.zeros(4),
            jnp.asarray(0.0),
            X,
            w8,
            257.0,
            data=(y,),
            block_size=30,
            **kw,
        )
    )()
    np.testing.assert_allclose(blocked[0][0], closed[0][0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(blocked[0][1], closed[0][1], rtol=1e-10, atol=1e-12)
    assert 2 <= int(blocked[1].iterations) <= 10
