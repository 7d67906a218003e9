"""Bad input never passes silently (issue 20): regression tests and property-based fuzzing.

Every fuzzed case either fits with finite outputs or raises one of the documented
error types with a message; anything else (another exception type, NaN in a fitted
attribute or a score) fails. Shapes are fixed per model so that each program
compiles once; hypothesis runs derandomised with a fixed number of examples.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from behavhmm import ARHMM, GLMHMM, KeypointSLDS

#: Shared hypothesis settings: reproducible, bounded, no per-example deadline (compilation).
FUZZ = settings(
    max_examples=30,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

ALLOWED = (ValueError, TypeError, FloatingPointError)
T, D = 48, 2


def _walk(rng, n=T, d=D):
    return np.cumsum(rng.normal(size=(n, d)), axis=0) * 0.1


# ----------------------------------------------------------------- regressions (item 1)
@pytest.mark.parametrize(
    ("algorithm", "name", "value"),
    [
        ("gibbs", "kappa", np.nan),
        ("gibbs", "alpha", np.nan),
        ("gibbs", "gamma", np.nan),
        ("gibbs", "kappa", np.inf),
        ("em", "kappa", np.nan),
        ("em", "kappa", -1.0),
    ],
)
def test_arhmm_non_finite_hyperparameter_is_named(algorithm, name, value):
    X = _walk(np.random.default_rng(0))
    model = ARHMM(2, 1, algorithm=algorithm, n_iter=2, progress_bar=False, **{name: value})
    with pytest.raises(ValueError, match=name) as info:
        model.fit(X)
    assert "scale of X" not in str(info.value)
    assert not hasattr(model, "transition_prob_")


def test_keypoint_slds_nan_kappa_is_named():
    Y = np.random.default_rng(0).normal(size=(T, 5, 2))
    with pytest.raises(ValueError, match="kappa"):
        KeypointSLDS(2, latent_dim=2, kappa=np.nan, n_iter=1, progress_bar=False).fit(Y)


# ----------------------------------------------------------------- regressions (item 2)
@pytest.mark.parametrize("scale", [1e30, 1e8])
def test_glmhmm_huge_design_is_refused_not_converged(scale):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 2))
    y = (rng.random(300) < 0.5).astype(float)
    model = GLMHMM(2, progress_bar=False)
    with pytest.raises(FloatingPointError, match=r"X is badly scaled \(largest \|X\| = "):
        model.fit(X * scale, y)
    assert not hasattr(model, "converged_")


def test_glmhmm_unit_scale_design_still_fits():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 2))
    y = (rng.random(300) < 1 / (1 + np.exp(-2 * X[:, 0]))).astype(float)
    model = GLMHMM(2, progress_bar=False).fit(X, y)
    assert model.converged_
    assert np.all(np.isfinite(model.coef_)) and np.abs(model.coef_[0]).max() > 0.5


@pytest.mark.parametrize(
    ("name", "value", "error"),
    [
        ("anterior_bodyparts", 13, ValueError),
        ("anterior_bodyparts", [0, 6], ValueError),
        ("posterior_bodyparts", -7, ValueError),
        ("posterior_bodyparts", [13], ValueError),
        ("posterior_bodyparts", 1.5, TypeError),
        ("anterior_bodyparts", [], TypeError),
    ],
)
def test_keypoint_slds_bodypart_index_out_of_range(name, value, error):
    Y = np.random.default_rng(0).normal(size=(T, 6, 2))
    model = KeypointSLDS(2, latent_dim=2, n_iter=1, n_iter_ar=0, progress_bar=False)
    model.set_params(**{name: value})
    with pytest.raises(error, match=name):
        model.fit(Y)


def test_arhmm_whiten_docstring_default_matches_code():
    import inspect

    default = inspect.signature(ARHMM).parameters["whiten"].default
    assert f'whiten : {{"all", "each", "none"}}, default "{default}"' in ARHMM.__doc__
