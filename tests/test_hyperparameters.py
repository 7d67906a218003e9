"""Declarative hyperparameter tables: one checker, every numeric argument finite and in range."""

from __future__ import annotations

import inspect
import numbers

import numpy as np
import pytest

from behavhmm import ARHMM, GLMHMM, GaussianHMM, KeypointSLDS
from behavhmm.models.base import (
    INFERENCE_METHODS,
    Bool,
    Integer,
    OneOf,
    Real,
    check_hyperparameters,
)

ESTIMATORS = (ARHMM, GLMHMM, GaussianHMM, KeypointSLDS)
#: constructor arguments checked elsewhere, on purpose: seeds (ints, keys or generators), body-part
#: names or indices, regularizer strengths (arrays), and the non-numeric ones.
NOT_IN_TABLE = {
    "random_state",
    "seed",
    "anterior_bodyparts",
    "posterior_bodyparts",
    "regularizer_strength",
    "mean_prior",
    "covariance_prior_scale",  # GaussianHMM: scalars or arrays, checked finite in _prior
}


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_every_numeric_and_bool_argument_is_in_the_table(cls):
    table = cls._hyperparameters
    params = inspect.signature(cls.__init__).parameters
    assert set(table) <= set(params), set(table) - set(params)
    for name, p in params.items():
        default = p.default
        numeric = isinstance(default, numbers.Real) and name not in NOT_IN_TABLE
        if numeric or name in ("n_states", "inference_method", "progress_bar"):
            assert name in table, f"{cls.__name__}.{name} has no entry in _hyperparameters"
        if name in table and default is not None and default is not inspect.Parameter.empty:
            table[name].check(name, default)  # the default satisfies its own constraint
    assert table["inference_method"] == OneOf(INFERENCE_METHODS)


X_AR = np.random.default_rng(0).normal(size=(200, 2))


@pytest.mark.parametrize(
    ("params", "name"),
    [
        (
            dict(algorithm="gibbs", kappa=np.nan),
            "kappa",
        ),  # used to give NaN transition_prob_ silently
        (dict(algorithm="gibbs", kappa=np.inf), "kappa"),
        (dict(algorithm="gibbs", alpha=np.nan), "alpha"),
        (dict(algorithm="gibbs", gamma=np.nan), "gamma"),
        (dict(kappa=np.nan), "kappa"),
        (dict(tol=np.nan), "tol"),
        (dict(target_duration=np.inf), "target_duration"),
        (dict(covariance_prior_dof=np.nan), "covariance_prior_dof"),
        (dict(heldout_fraction=np.nan), "heldout_fraction"),
    ],
)
def test_arhmm_refuses_non_finite_hyperparameters(params, name):
    model = ARHMM(2, 1, n_iter=2, progress_bar=False, **params)
    with pytest.raises(ValueError, match=rf"^{name} must be a finite number in "):
        model.fit(X_AR)
    assert not hasattr(model, "transition_prob_")


def test_checked_before_any_work_on_the_data():
    # the data are bad too (3-D), but the hyperparameter is named first
    with pytest.raises(ValueError, match="kappa must be a finite number"):
        ARHMM(2, 1, kappa=np.nan, progress_bar=False).fit(np.zeros((5, 2, 2)))


def test_keypoint_slds_refuses_nan_kappa():
    kp = np.random.default_rng(0).normal(size=(50, 4, 2))
    with pytest.raises(ValueError, match=r"kappa must be a finite number in \[0, inf\)"):
        KeypointSLDS(2, 2, 1, kappa=np.nan, progress_bar=False).fit(kp)
    with pytest.raises(ValueError, match="noise_dof must be a finite number"):
        KeypointSLDS(2, 2, 1, noise_dof=np.inf, progress_bar=False).fit(kp)
    with pytest.raises(ValueError, match="confidence_floor == 2"):
        KeypointSLDS(2, 2, 1, confidence_floor=2.0, progress_bar=False).fit(kp)


def test_gaussian_hmm_and_glmhmm_refuse_non_finite_hyperparameters():
    with pytest.raises(ValueError, match="kappa must be a finite number"):
        GaussianHMM(2, kappa=np.inf, progress_bar=False).fit(X_AR)
    with pytest.raises(ValueError, match="min_covar must be a finite number"):
        GaussianHMM(2, min_covar=np.nan, progress_bar=False).fit(X_AR)
    y = (X_AR[:, 0] > 0).astype(float)
    with pytest.raises(ValueError, match="tol must be a finite number"):
        GLMHMM(2, tol=np.nan, progress_bar=False).fit(X_AR, y)
    with pytest.raises(TypeError, match="maxiter must be an instance of int, not float"):
        GLMHMM(2, maxiter=np.inf, progress_bar=False).fit(X_AR, y)
    # nemos' integer-valued floats still work
    GLMHMM(2.0, maxiter=2.0, progress_bar=False).fit(X_AR, y)


def test_constraint_messages_name_the_argument_and_expected_values():
    class Holder:
        a, b, c, d, e = 0.5, 3, "x", "yes", None

    check_hyperparameters(Holder(), {"a": Real(0, 1), "b": Integer(1), "e": Real(optional=True)})
    with pytest.raises(ValueError, match=r"a == 0.5, must be > 1"):
        check_hyperparameters(Holder(), {"a": Real(1, closed="neither")})
    with pytest.raises(TypeError, match="c must be an instance of float, not str"):
        check_hyperparameters(Holder(), {"c": Real()})
    with pytest.raises(ValueError, match=r"c must be one of \('y', 'z'\), got 'x'"):
        check_hyperparameters(Holder(), {"c": OneOf(("y", "z"))})
    with pytest.raises(TypeError, match="d must be a bool, got str"):
        check_hyperparameters(Holder(), {"d": Bool()})
    with pytest.raises(TypeError, match="must be an instance of int, not bool"):
        Integer(1).check("n", True)
    assert Real(0, closed="neither").describe() == "a finite number in (0, inf)"
    assert Real(0, 1, closed="left").describe() == "a finite number in [0, 1)"
    assert Integer(1, optional=True).describe() == "an integer in [1, inf] or None"
