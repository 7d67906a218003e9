"""scikit-learn conventions: estimator checks, clone, GridSearchCV with whole sessions, Pipeline."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import sklearn
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, GroupKFold, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from behavhmm import ARHMM
from behavhmm.datasets import demo_arhmm, simulate_demo_sessions
from behavhmm.model_selection import SessionKFold, session_labels

EXPECTED_FAILED_CHECKS = {
    "check_methods_sample_order_invariance": (
        "An HMM labels a frame from its context: reordering time bins changes the sequence, "
        "so predictions legitimately change."
    ),
    "check_methods_subset_invariance": (
        "Predictions of one frame depend on the other frames of its session (and the check "
        "predicts on one-frame subsets, shorter than the AR conditioning window)."
    ),
    "check_estimators_nan_inf": (
        "By design (pynapple convention) NaN rows at a session's border are dropped, not "
        "rejected; the check puts its NaN at time bin 0. NaN inside a session and inf raise "
        "ValueError (tests/test_pynapple_and_errors.py)."
    ),
}


@parametrize_with_checks(
    [ARHMM(n_states=2, nlags=1, n_iter=5, progress_bar=False)],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sklearn.exceptions.ConvergenceWarning)
        check(estimator)


@pytest.fixture(scope="module")
def sessions():
    truth = demo_arhmm(n_states=3, n_features=2, nlags=1, seed=4)
    X, _, starts, _ = simulate_demo_sessions(truth, n_sessions=6, frames_per_session=400, seed=2)
    return X, starts


@pytest.mark.parametrize(
    "method",
    [
        "score",
        "smooth_proba",
        "filter_proba",
        "decode_state",
        "predict",
        "predict_proba",
        "save_params",
    ],
)
def test_not_fitted_error(method):
    with pytest.raises(NotFittedError, match="not fitted yet"):
        getattr(ARHMM(), method)(np.zeros((10, 2)))


def test_get_set_params_equal_construction():
    params = dict(n_states=7, nlags=2, kappa=3.0, alpha=1.5, tol=1e-3, random_state=4)
    assert ARHMM(**params).get_params() == ARHMM().set_params(**params).get_params()
    assert clone(ARHMM(**params)).get_params() == ARHMM(**params).get_params()


def test_grid_search_over_n_states_with_whole_session_folds(sessions):
    X, starts = sessions
    model = ARHMM(nlags=1, kappa=20.0, alpha=1.0, n_iter=30, tol=1e-4, progress_bar=False)
    with sklearn.config_context(enable_metadata_routing=True), warnings.catch_warnings():
        warnings.simplefilter("ignore", sklearn.exceptions.ConvergenceWarning)
        search = GridSearchCV(model, {"n_states": [1, 3]}, cv=SessionKFold(3)).fit(
            X, session_starts=starts
        )
    assert search.best_params_ == {"n_states": 3}
    # each fold was scored with its own session boundaries: redo fold 0 by hand
    train, test = next(SessionKFold(3).split(X, session_starts=starts))
    assert (
        set(np.unique(session_labels(starts)[test])) & set(np.unique(session_labels(starts)[train]))
        == set()
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sklearn.exceptions.ConvergenceWarning)
        by_hand = clone(model).set_params(n_states=3).fit(X[train], session_starts=starts[train])
    expected = by_hand.score(X[test], session_starts=starts[test])
    np.testing.assert_allclose(search.cv_results_["split0_test_score"][1], expected, rtol=1e-5)


def test_group_kfold_and_cross_validate_with_routing(sessions):
    X, starts = sessions
    groups = session_labels(starts)
    model = ARHMM(n_states=3, nlags=1, kappa=20.0, n_iter=5, progress_bar=False)
    with sklearn.config_context(enable_metadata_routing=True), warnings.catch_warnings():
        warnings.simplefilter("ignore", sklearn.exceptions.ConvergenceWarning)
        res = cross_validate(
            model, X, cv=GroupKFold(2), params={"groups": groups, "session_starts": starts}
        )
    assert np.all(np.isfinite(res["test_score"]))


def test_pipeline_with_scaler(sessions):
    X, starts = sessions
    pipe = make_pipeline(
        StandardScaler(), ARHMM(n_states=3, nlags=1, kappa=20.0, n_iter=20, progress_bar=False)
    )
    with sklearn.config_context(enable_metadata_routing=True), warnings.catch_warnings():
        warnings.simplefilter("ignore", sklearn.exceptions.ConvergenceWarning)
        pipe.fit(X, session_starts=starts)
        z = pipe.predict(X, session_starts=starts)
    assert z.shape == (len(X),)
    assert np.all(z[starts] == -1)  # each session's conditioning frame


def test_session_kfold_errors(sessions):
    X, starts = sessions
    with pytest.raises(ValueError, match="SessionKFold needs the sessions"):
        next(SessionKFold(2).split(X))
    with pytest.raises(ValueError, match="needs at least 7 sessions, got 6"):
        next(SessionKFold(7).split(X, session_starts=starts))
    folds = list(SessionKFold(3).split(X, groups=session_labels(starts)))
    assert len(folds) == 3
    assert sorted(np.concatenate([t for _, t in folds]).tolist()) == list(range(len(X)))
