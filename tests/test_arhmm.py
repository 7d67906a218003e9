"""ARHMM behaviour: recovery, EM monotonicity, sessions, hand-set parameters, simulation."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from behavhmm import ARHMM
from behavhmm.analysis import match_states, state_accuracy
from behavhmm.datasets import demo_arhmm, simulate_demo_sessions
from behavhmm.inference import hmm as hmm_module
from behavhmm.inference import hmm_filter, hmm_smoother, hmm_viterbi
from behavhmm.models import _ar_programs as ar_programs
from behavhmm.observations import ar_log_likelihoods


@pytest.fixture(scope="module")
def demo_data():
    truth = demo_arhmm(n_states=3, n_features=2, nlags=2, seed=1)
    X, states, starts, _ = simulate_demo_sessions(
        truth, n_sessions=3, frames_per_session=800, seed=3
    )
    return X, states, starts, truth


@pytest.fixture(scope="module")
def fitted(demo_data):
    X, _, starts, _ = demo_data
    return ARHMM(
        n_states=3, nlags=2, kappa=50.0, alpha=1.0, n_iter=100, tol=1e-6, progress_bar=False
    ).fit(X, session_starts=starts)


def test_recovers_states_and_parameters(demo_data, fitted):
    X, z_true, starts, truth = demo_data
    z = fitted.decode_state(X, session_starts=starts, state_format="index")
    assert state_accuracy(z_true, z, 3) > 0.97
    perm = match_states(z_true, z, 3)
    np.testing.assert_allclose(fitted.coef_[perm], truth.coef_, atol=0.12)
    np.testing.assert_allclose(fitted.intercept_[perm], truth.intercept_, atol=0.25)
    np.testing.assert_allclose(fitted.covariances_[perm], truth.covariances_, atol=0.02)
    np.testing.assert_allclose(
        np.diag(fitted.transition_prob_[np.ix_(perm, perm)]), 0.97, atol=0.02
    )
    # the fitted model explains the data at least as well as the truth
    assert fitted.score(X, session_starts=starts) >= truth.score(X, session_starts=starts) - 1.0


def test_attributes_shapes_and_history(fitted):
    assert fitted.initial_prob_.shape == (3,)
    assert fitted.transition_prob_.shape == (3, 3)
    assert fitted.coef_.shape == (3, 2, 4)
    assert fitted.intercept_.shape == (3, 2)
    assert fitted.covariances_.shape == (3, 2, 2)
    assert fitted.n_features_in_ == 2
    assert len(fitted.log_likelihood_history_) == fitted.n_iter_ == len(fitted.log_joint_history_)
    np.testing.assert_allclose(fitted.transition_prob_.sum(1), 1.0, rtol=1e-5)


@pytest.mark.requires_x64
def test_em_log_joint_never_decreases(demo_data):
    X, _, starts, _ = demo_data
    model = ARHMM(n_states=4, nlags=2, kappa=20.0, n_iter=40, tol=0.0, progress_bar=False)
    model.setup(ar_params_init="random", ar_params_init_kwargs={"segment_length": 25})
    with pytest.warns(Warning, match="did not converge"):
        model.fit(X, session_starts=starts)
    lj = model.log_joint_history_
    assert lj[-1] > lj[0] + 1.0
    assert np.all(np.diff(lj) >= -1e-8 * np.abs(lj[1:]))


@pytest.mark.requires_x64
def test_em_log_likelihood_rises_with_weak_priors(demo_data):
    """MAP-EM guarantees the log joint; the MNIW prior's |Σ| term cannot vanish
    (ν_0 > D - 1), so the likelihood alone may dip, but only by a tiny amount."""
    X, _, starts, _ = demo_data
    model = ARHMM(
        n_states=3,
        nlags=2,
        kappa=0.0,
        alpha=1e-8,
        covariance_prior_scale=1e-8,
        covariance_prior_dof=1.0 + 1e-6,
        coef_prior_variance=1e8,
        n_iter=30,
        tol=0.0,
        progress_bar=False,
    ).setup(ar_params_init="random")
    with pytest.warns(Warning, match="did not converge"):
        model.fit(X, session_starts=starts)
    ll = model.log_likelihood_history_
    assert np.all(np.diff(ll) >= -1e-5 * np.abs(ll[1:]))
    assert np.all(np.diff(model.log_joint_history_) >= -1e-9 * np.abs(ll[1:]))
    assert ll[-1] > ll[0]


def test_sessions_are_never_chained(fitted, demo_data):
    X, _, starts, _ = demo_data
    bounds = np.append(np.flatnonzero(starts), len(X))
    separate = sum(fitted.score(X[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True))
    np.testing.assert_allclose(fitted.score(X, session_starts=starts), separate, rtol=1e-5)
    as_indices = fitted.score(X, session_starts=np.flatnonzero(starts))
    np.testing.assert_allclose(as_indices, separate, rtol=1e-5)
    z_joint = fitted.predict(X, session_starts=starts)
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        np.testing.assert_array_equal(z_joint[a:b], fitted.predict(X[a:b]))
    # treating the whole recording as one session is a different model
    assert abs(fitted.score(X) - separate) > 1e-3


def test_conditioning_frames_in_outputs(fitted, demo_data):
    X, _, starts, _ = demo_data
    first = np.flatnonzero(starts)
    cond = np.concatenate([first, first + 1])
    z = fitted.decode_state(X, session_starts=starts, state_format="index")
    assert z.dtype == np.int32
    assert np.all(z[cond] == -1) and np.all(z[np.setdiff1d(np.arange(len(X)), cond)] >= 0)
    onehot = fitted.decode_state(X, session_starts=starts)
    assert onehot.shape == (len(X), 3) and onehot.dtype == np.int32
    assert np.all(onehot[cond] == 0)
    np.testing.assert_array_equal(onehot.argmax(1)[z >= 0], z[z >= 0])
    for proba in (
        fitted.smooth_proba(X, session_starts=starts),
        fitted.filter_proba(X, session_starts=starts),
    ):
        assert proba.shape == (len(X), 3)
        assert np.all(np.isnan(proba[cond]))
        np.testing.assert_allclose(proba[z >= 0].sum(1), 1.0, rtol=1e-5)


def test_hand_set_parameters_predict_with_exactly_those(demo_data):
    X, _, starts, truth = demo_data
    model = ARHMM(n_states=3, nlags=2)
    for name in ("initial_prob_", "transition_prob_", "coef_", "intercept_", "covariances_"):
        setattr(model, name, getattr(truth, name))
    # the same computation done by hand with the kernels
    from behavhmm.models.ar_hmm import lagged_design

    y, x, rows, s = lagged_design(X, starts, 2)
    ll = ar_log_likelihoods(truth.coef_, truth.intercept_, truth.covariances_, y, x)
    ref = hmm_smoother(truth.initial_prob_, truth.transition_prob_, ll, s)
    np.testing.assert_allclose(model.score(X, session_starts=starts), ref.log_likelihood, rtol=1e-5)
    np.testing.assert_allclose(
        model.smooth_proba(X, session_starts=starts)[rows], ref.smoothed_probs, atol=1e-5
    )
    filt = hmm_filter(truth.initial_prob_, truth.transition_prob_, ll, s)
    np.testing.assert_allclose(
        model.filter_proba(X, session_starts=starts)[rows], filt.filtered_probs, atol=1e-5
    )
    path = hmm_viterbi(truth.initial_prob_, truth.transition_prob_, ll, s)
    np.testing.assert_array_equal(model.predict(X, session_starts=starts)[rows], path)


def test_hand_set_parameters_are_checked():
    model = ARHMM(n_states=2, nlags=1)
    model.initial_prob_ = np.array([0.5, 0.5])
    model.transition_prob_ = np.array([[0.9, 0.1], [0.3, 0.6]])
    model.coef_ = np.zeros((2, 1, 1))
    model.intercept_ = np.zeros((2, 1))
    model.covariances_ = np.ones((2, 1, 1))
    X = np.zeros((10, 1))
    with pytest.raises(ValueError, match="transition_prob_ must sum to 1"):
        model.score(X)
    model.transition_prob_ = np.array([[0.9, 0.1], [0.4, 0.6]])
    model.covariances_ = -np.ones((2, 1, 1))
    with pytest.raises(ValueError, match="positive definite"):
        model.score(X)
    model.covariances_ = np.ones((2, 1, 1))
    model.coef_ = np.zeros((2, 1, 2))
    with pytest.raises(ValueError, match=r"coef_ must have shape \(2, 1, 1\)"):
        model.score(X)
    model.coef_ = np.zeros((2, 1, 1))
    with pytest.raises(ValueError, match="n_states=3"):
        model.set_params(n_states=3).score(X)


def test_simulate_shapes_determinism_and_statistics(demo_data):
    _, _, _, truth = demo_data
    key = jax.random.key(5)
    starts = np.zeros(20000, bool)
    starts[[0, 10000]] = True
    X1, z1 = truth.simulate(key, 20000, session_starts=starts)
    X2, z2 = truth.simulate(key, 20000, session_starts=starts)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(z1, z2)
    X3, _ = truth.simulate(jax.random.key(6), 20000, session_starts=starts)
    assert not np.allclose(X1, X3)
    assert X1.shape == (20000, 2) and z1.dtype == np.int32
    np.testing.assert_array_equal(np.flatnonzero(z1 == -1), [0, 1, 10000, 10001])
    # empirical self-transition frequency matches the true one
    zz = z1[z1 >= 0]
    same = np.mean(zz[1:] == zz[:-1])
    assert abs(same - 0.97) < 0.01
    # conditioning frames are the requested init frames
    init = np.array([[1.0, 2.0], [3.0, 4.0]])
    X4, _ = truth.simulate(key, 50, init_frames=init)
    np.testing.assert_array_equal(X4[:2], init)


def test_simulated_residuals_follow_each_state(demo_data):
    _, _, _, truth = demo_data
    X, z = truth.simulate(jax.random.key(11), 30000)
    for k in range(3):
        rows = np.flatnonzero(z == k)
        lags = np.concatenate([X[rows - 1], X[rows - 2]], axis=1)
        resid = X[rows] - lags @ truth.coef_[k].T - truth.intercept_[k]
        np.testing.assert_allclose(np.cov(resid.T), truth.covariances_[k], atol=0.01)
        np.testing.assert_allclose(resid.mean(0), 0.0, atol=0.02)


def test_refit_does_not_recompile(demo_data):
    X, _, starts, _ = demo_data
    model = ARHMM(n_states=2, nlags=1, kappa=5.0, n_iter=3, progress_bar=False)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, session_starts=starts)
        programs = (
            ar_programs.m_step_program,
            ar_programs.log_likelihood_program,
            hmm_module._smoother_program,
            hmm_module._forward_program,
            hmm_module._backward_program,
            hmm_module._combine_program,
        )
        before = [p._cache_size() for p in programs]
        model.set_params(kappa=7.0, alpha=2.0).fit(X[:-5], session_starts=starts[:-5])
    assert [p._cache_size() for p in programs] == before


def test_setup_initializers_and_clone():
    from sklearn.base import clone

    def my_transitions(n_states, X, session_starts, random_key, stay=0.5, **kwargs):
        return np.full((n_states, n_states), (1 - stay) / (n_states - 1)) + (
            stay - (1 - stay) / (n_states - 1)
        ) * np.eye(n_states)

    model = ARHMM(n_states=2, nlags=1).setup(
        transition_proba_init=my_transitions, transition_proba_init_kwargs={"stay": 0.8}
    )
    copy = clone(model)
    assert copy.initialization_funcs["transition_proba_init"] is my_transitions
    assert copy.initialization_funcs["transition_proba_init_kwargs"] == {"stay": 0.8}
    assert copy.get_params()["initialization_funcs"] == model.get_params()["initialization_funcs"]
    with pytest.raises(ValueError, match="not a built-in initializer"):
        ARHMM().setup(transition_proba_init="nope")
    with pytest.raises(TypeError, match="unexpected keyword argument 'transition_init'"):
        ARHMM().setup(transition_init="sticky")
    with pytest.raises(ValueError, match="does not accept the initializer signature"):
        ARHMM().setup(ar_params_init=lambda n_states, X: None)
    with pytest.raises(TypeError, match="must be a registered name or a callable"):
        ARHMM().setup(initial_proba_init=3)


def test_custom_initializer_is_used_and_its_output_checked(demo_data):
    X, _, starts, _ = demo_data
    calls = []

    def init_pi(n_states, X, session_starts, random_key, **kwargs):
        calls.append(X.shape)
        return np.ones(n_states) / n_states

    model = ARHMM(n_states=2, nlags=1, n_iter=2, progress_bar=False).setup(
        initial_proba_init=init_pi
    )
    with pytest.warns(Warning):
        model.fit(X, session_starts=starts)
    assert calls == [X.shape]
    bad = ARHMM(n_states=2, nlags=1, n_iter=2, progress_bar=False).setup(
        initial_proba_init=lambda n_states, X, session_starts, random_key, **kw: np.ones(3) / 3
    )
    with pytest.raises(
        ValueError, match=r"initial_proba_init returned shape \(3,\), expected \(2,\)"
    ):
        bad.fit(X, session_starts=starts)


def test_same_seed_same_fit_different_seed_different_init(demo_data):
    X, _, starts, _ = demo_data
    kw = dict(n_states=3, nlags=1, n_iter=3, progress_bar=False)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = ARHMM(random_state=1, **kw).fit(X, session_starts=starts)
        b = ARHMM(random_state=1, **kw).fit(X, session_starts=starts)
        c = ARHMM(random_state=2, **kw).setup(ar_params_init="random").fit(X, session_starts=starts)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    assert not np.allclose(a.coef_, c.coef_)


def test_gaussian_hmm_with_zero_lags(rng):
    means = np.array([[0.0, 0.0], [4.0, 4.0]])
    z = np.repeat(rng.integers(0, 2, size=40), 25)
    X = means[z] + rng.normal(scale=0.5, size=(len(z), 2))
    model = ARHMM(n_states=2, nlags=0, kappa=10.0, progress_bar=False).fit(X)
    assert state_accuracy(z, model.predict(X)) > 0.99
    assert model.coef_.shape == (2, 2, 0)


@pytest.mark.requires_x64
def test_float64_and_float32_fits_agree(demo_data):
    X, _, starts, _ = demo_data
    kw = dict(n_states=3, nlags=2, kappa=50.0, alpha=1.0, n_iter=15, tol=0.0, progress_bar=False)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m64 = ARHMM(**kw).fit(X, session_starts=starts)
        assert m64.coef_.dtype == np.float64
        jax.config.update("jax_enable_x64", False)
        m32 = ARHMM(**kw).fit(X, session_starts=starts)
    assert m32.coef_.dtype == np.float32
    np.testing.assert_allclose(m32.coef_, m64.coef_, atol=1e-3)
    # per frame, the two precisions' EM trajectories agree to 1e-4 nats
    np.testing.assert_allclose(
        m32.log_likelihood_history_, m64.log_likelihood_history_, atol=1e-4 * len(X)
    )
