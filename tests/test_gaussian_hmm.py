"""GaussianHMM: brute-force conformance, hmmlearn agreement, EM, recovery, sklearn, files, pynapple,
errors."""

from __future__ import annotations

import itertools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pynapple as nap
import pytest
import sklearn
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.utils.estimator_checks import parametrize_with_checks

import behavhmm
from behavhmm import GaussianHMM
from behavhmm.analysis import match_states, state_accuracy
from behavhmm.inference import hmm_sample
from behavhmm.model_selection import SessionKFold
from behavhmm.observations import (
    GaussianPrior,
    full_covariances,
    gaussian_log_likelihoods,
    gaussian_log_prior,
    gaussian_map,
    gaussian_sufficient_statistics,
)

COV_TYPES = ("full", "diag", "spherical", "tied")


def random_params(rng, n_states, n_features, covariance_type, spread=2.0):
    """Random valid parameters in hmmlearn's shapes."""
    pi = rng.dirichlet(np.ones(n_states))
    trans = rng.dirichlet(np.ones(n_states) * 2, n_states) + 0.5 * np.eye(n_states)
    trans /= trans.sum(1, keepdims=True)
    means = rng.normal(size=(n_states, n_features)) * spread
    if covariance_type == "full":
        b = rng.normal(size=(n_states, n_features, n_features))
        cov = b @ b.transpose(0, 2, 1) / n_features + 0.5 * np.eye(n_features)
    elif covariance_type == "tied":
        b = rng.normal(size=(n_features, n_features))
        cov = b @ b.T / n_features + 0.5 * np.eye(n_features)
    elif covariance_type == "diag":
        cov = rng.uniform(0.4, 2.0, (n_states, n_features))
    else:
        cov = rng.uniform(0.4, 2.0, n_states)
    return pi, trans, means, cov


def hand_set(pi, trans, means, cov, covariance_type, **kwargs):
    model = GaussianHMM(
        n_states=len(pi), covariance_type=covariance_type, progress_bar=False, **kwargs
    )
    model.initial_prob_, model.transition_prob_, model.means_, model.covariances_ = (
        pi,
        trans,
        means,
        cov,
    )
    return model


def fixed_start(pi, trans, means, cov):
    """setup() keywords that start EM exactly at the given parameters."""
    return dict(
        initial_proba_init=lambda n, X, s, k, **kw: pi,
        transition_proba_init=lambda n, X, s, k, **kw: trans,
        gaussian_params_init=lambda n, X, s, k, **kw: (means, cov),
    )


def scipy_log_likelihoods(X, means, cov, covariance_type):
    """Independent per-state log-densities (scipy), shape (T, K)."""
    full = np.asarray(
        full_covariances(jnp.asarray(cov), covariance_type, len(means), means.shape[1])
    )
    return np.stack(
        [multivariate_normal(means[k], full[k]).logpdf(X) for k in range(len(means))], axis=1
    )


# ----------------------------------------------------------------------------
# brute force: every path enumerated, a session start in the middle
# ----------------------------------------------------------------------------


def path_log_joints(pi, trans, ll, starts):
    """``log p(z, x)`` of every path, and the paths, shape (K^T, T)."""
    n_time_bins, n_states = ll.shape
    paths = np.array(list(itertools.product(range(n_states), repeat=n_time_bins)))
    lj = ll[np.arange(n_time_bins), paths].sum(1)
    for t in range(n_time_bins):
        if starts[t]:
            lj = lj + np.log(pi[paths[:, t]])
        else:
            lj = lj + np.log(trans[paths[:, t - 1], paths[:, t]])
    return lj, paths


@pytest.mark.requires_x64
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_brute_force_score_posteriors_viterbi(covariance_type):
    rng = np.random.default_rng(1)
    n_states, n_features, n_time_bins = 3, 2, 6
    pi, trans, means, cov = random_params(rng, n_states, n_features, covariance_type, spread=1.0)
    X = rng.normal(size=(n_time_bins, n_features)) * 1.5
    starts = np.zeros(n_time_bins, bool)
    starts[[0, 3]] = True
    model = hand_set(pi, trans, means, cov, covariance_type)
    ll = scipy_log_likelihoods(X, means, cov, covariance_type)
    np.testing.assert_allclose(
        np.asarray(gaussian_log_likelihoods(means, cov, X, covariance_type)), ll, rtol=1e-12
    )
    lj, paths = path_log_joints(pi, trans, ll, starts)
    total = logsumexp(lj)
    np.testing.assert_allclose(model.score(X, session_starts=starts), total, rtol=1e-12)
    weights = np.exp(lj - total)
    smoothed = np.stack([np.bincount(paths[:, t], weights, n_states) for t in range(n_time_bins)])
    np.testing.assert_allclose(model.smooth_proba(X, session_starts=starts), smoothed, atol=1e-12)
    np.testing.assert_array_equal(model.predict(X, session_starts=starts), paths[np.argmax(lj)])
    # filtering: each prefix of each session enumerated on its own
    filtered = np.zeros((n_time_bins, n_states))
    for t in range(n_time_bins):
        s = max(i for i in range(t + 1) if starts[i])
        lj_prefix, p_prefix = path_log_joints(pi, trans, ll[s : t + 1], starts[s : t + 1])
        filtered[t] = np.bincount(
            p_prefix[:, -1], np.exp(lj_prefix - logsumexp(lj_prefix)), n_states
        )
    np.testing.assert_allclose(model.filter_proba(X, session_starts=starts), filtered, atol=1e-12)


@pytest.mark.requires_x64
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_posterior_sampling_matches_enumerated_path_probabilities(covariance_type):
    """FFBS on the Gaussian log-likelihoods draws paths with their exact posterior frequencies."""
    rng = np.random.default_rng(2)
    n_states, n_time_bins, n_draws = 2, 5, 20000
    pi, trans, means, cov = random_params(rng, n_states, 2, covariance_type, spread=0.7)
    X = rng.normal(size=(n_time_bins, 2))
    starts = np.zeros(n_time_bins, bool)
    starts[[0, 2]] = True
    ll = gaussian_log_likelihoods(means, cov, X, covariance_type)
    keys = jax.random.split(jax.random.key(0), n_draws)
    draws = jax.vmap(lambda k: hmm_sample(k, pi, trans, ll, jnp.asarray(starts)).states)(keys)
    codes = np.asarray(draws) @ (n_states ** np.arange(n_time_bins)[::-1])
    freq = np.bincount(codes, minlength=n_states**n_time_bins) / n_draws
    lj, _ = path_log_joints(
        pi, trans, scipy_log_likelihoods(X, means, cov, covariance_type), starts
    )
    exact = np.exp(lj - logsumexp(lj))
    # 4.5 binomial standard errors per path (32 paths)
    assert np.all(np.abs(freq - exact) <= 4.5 * np.sqrt(exact * (1 - exact) / n_draws) + 1e-4)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_simulate_moments_match_the_model(covariance_type):
    """Sessions of 6 frames, 4000 of them: state marginals p(z_p) = pi A^p and per-state moments."""
    rng = np.random.default_rng(3)
    n_states, n_features, length, n_sessions = 3, 2, 6, 4000
    pi, trans, means, cov = random_params(rng, n_states, n_features, covariance_type)
    model = hand_set(pi, trans, means, cov, covariance_type)
    X, z = model.simulate(
        jax.random.key(1),
        length * n_sessions,
        session_starts=np.arange(0, length * n_sessions, length),
    )
    z = z.reshape(n_sessions, length)
    marg = pi.copy()
    for p in range(length):
        freq = np.bincount(z[:, p], minlength=n_states) / n_sessions
        assert np.all(
            np.abs(freq - marg) <= 4.5 * np.sqrt(marg * (1 - marg) / n_sessions) + 1e-3
        ), (p, freq, marg)
        marg = marg @ trans
    full = np.asarray(full_covariances(jnp.asarray(cov), covariance_type, n_states, n_features))
    zf = z.reshape(-1)
    for k in range(n_states):
        xk = X[zf == k]
        se = np.sqrt(np.diag(full[k]) / len(xk))
        assert np.all(np.abs(xk.mean(0) - means[k]) < 4.5 * se)
        np.testing.assert_allclose(np.cov(xk.T), full[k], atol=0.12 * np.abs(full[k]).max())
    # the same key gives the same draw
    np.testing.assert_array_equal(
        model.simulate(jax.random.key(1), 50)[0], model.simulate(jax.random.key(1), 50)[0]
    )


# ----------------------------------------------------------------------------
# hmmlearn
# ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hmmlearn_problem():
    pytest.importorskip("hmmlearn")
    rng = np.random.default_rng(4)
    lengths = [260, 190, 150]
    n_features = 3
    X = rng.normal(size=(sum(lengths), n_features)) + np.repeat(
        rng.normal(size=(30, n_features)) * 2, 20, axis=0
    )
    starts = np.zeros(len(X), bool)
    starts[np.cumsum([0] + lengths[:-1])] = True
    return X, lengths, starts, rng


@pytest.mark.requires_x64
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_hmmlearn_score_posteriors_viterbi(hmmlearn_problem, covariance_type):
    from hmmlearn.hmm import GaussianHMM as HmmlearnGaussianHMM

    X, lengths, starts, _ = hmmlearn_problem
    pi, trans, means, cov = random_params(np.random.default_rng(5), 3, X.shape[1], covariance_type)
    ref = HmmlearnGaussianHMM(3, covariance_type=covariance_type, init_params="")
    ref.startprob_, ref.transmat_, ref.means_, ref.covars_ = pi, trans, means, cov
    model = hand_set(pi, trans, means, cov, covariance_type)
    np.testing.assert_allclose(
        model.score(X, session_starts=starts), ref.score(X, lengths), rtol=1e-9
    )
    np.testing.assert_allclose(
        model.smooth_proba(X, session_starts=starts), ref.predict_proba(X, lengths), atol=1e-7
    )
    np.testing.assert_array_equal(model.predict(X, session_starts=starts), ref.predict(X, lengths))


@pytest.mark.requires_x64
@pytest.mark.parametrize(
    "covariance_type, covars_prior",
    [(c, 1e-2) for c in COV_TYPES] + [("full", 0.0), ("diag", 0.0)],
    ids=[f"{c}-hmmlearn-defaults" for c in COV_TYPES] + ["full-no-prior", "diag-no-prior"],
)
def test_hmmlearn_em_log_likelihood_every_iteration(
    hmmlearn_problem, covariance_type, covars_prior
):
    """Ten EM iterations from the same start: the same log-likelihood after each (relative 1e-6)."""
    from hmmlearn.hmm import GaussianHMM as HmmlearnGaussianHMM

    X, lengths, starts, _ = hmmlearn_problem
    n_features = X.shape[1]
    pi, trans, means, cov = random_params(np.random.default_rng(6), 3, n_features, covariance_type)
    ref = HmmlearnGaussianHMM(
        3,
        covariance_type=covariance_type,
        init_params="",
        n_iter=1,
        tol=-np.inf,
        covars_prior=covars_prior,
    )
    ref.startprob_, ref.transmat_, ref.means_, ref.covars_ = pi, trans, means, cov
    history = []
    for _ in range(10):  # monitor_.history keeps two values: one iteration per fit
        ref.fit(X, lengths)
        history.append(ref.monitor_.history[-1])
    scale = (
        covars_prior * np.ones((n_features, n_features))
        if covariance_type in ("full", "tied")
        else covars_prior
    )
    model = GaussianHMM(
        3,
        covariance_type,
        alpha=0.0,
        covariance_prior_scale=scale,
        n_iter=10,
        tol=0.0,
        progress_bar=False,
    ).setup(**fixed_start(pi, trans, means, cov))
    with pytest.warns(ConvergenceWarning):
        model.fit(X, session_starts=starts)
    np.testing.assert_allclose(model.log_likelihood_history_, history, rtol=1e-6)
    np.testing.assert_allclose(model.means_, ref.means_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(
        model.covariances_,
        ref._covars_ if covariance_type != "spherical" else ref._covars_[:, 0],
        rtol=1e-6,
        atol=1e-8,
    )
    np.testing.assert_allclose(model.transition_prob_, ref.transmat_, rtol=1e-6, atol=1e-10)


# ----------------------------------------------------------------------------
# EM, M-step, float32
# ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sessions():
    rng = np.random.default_rng(7)
    pi = np.full(3, 1 / 3)
    trans = np.full((3, 3), 0.02) + 0.94 * np.eye(3)
    means = np.array([[0.0, 0.0], [2.5, 0.0], [0.0, 2.5]])
    cov = np.array([[[0.5, 0.2], [0.2, 0.4]], [[0.3, -0.1], [-0.1, 0.6]], [[0.4, 0.0], [0.0, 0.4]]])
    truth = hand_set(pi, trans, means, cov, "full")
    starts = np.zeros(1800, bool)
    starts[[0, 600, 1200]] = True
    X, z = truth.simulate(jax.random.key(int(rng.integers(1000))), 1800, session_starts=starts)
    return X, z, starts, truth


@pytest.mark.requires_x64
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_em_never_decreases_the_penalised_objective(sessions, covariance_type):
    X, _, starts, _ = sessions
    model = GaussianHMM(
        4,
        covariance_type,
        kappa=5.0,
        alpha=2.0,
        mean_prior=0.5,
        mean_prior_weight=3.0,
        covariance_prior_scale=0.3,
        covariance_prior_weight=4.0,
        min_covar=0.25,
        n_iter=25,
        tol=0.0,
        progress_bar=False,
    ).setup(gaussian_params_init="random", gaussian_params_init_kwargs={"segment_length": 40})
    with pytest.warns(ConvergenceWarning):
        model.fit(X, session_starts=starts)
    lj = model.log_joint_history_
    assert lj[-1] > lj[0] + 1.0
    assert np.all(np.diff(lj) >= -1e-9 * np.abs(lj[1:]))
    # min_covar=0.25 binds for some states' smallest variance and holds everywhere
    full = np.asarray(full_covariances(model.covariances_, covariance_type, 4, 2))
    assert np.linalg.eigvalsh(full).min() >= 0.25 - 1e-9


@pytest.mark.requires_x64
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_map_step_beats_perturbed_parameters(covariance_type):
    """The closed-form M-step maximises expected log-likelihood + log prior under the floor."""
    rng = np.random.default_rng(8)
    n, n_states, n_features = 200, 3, 3
    X = rng.normal(size=(n, n_features)) * np.array([1.0, 0.3, 2.0]) + 1.0
    w = rng.dirichlet(np.ones(n_states), n)
    scale = (
        0.2 * np.eye(n_features) + 0.05
        if covariance_type in ("full", "tied")
        else np.full(n_features, 0.2)
    )
    prior = GaussianPrior(
        jnp.full(n_features, 0.3),
        jnp.asarray(2.0),
        jnp.asarray(scale),
        jnp.asarray(3.0),
        jnp.asarray(0.2),
    )
    centers = jnp.asarray(rng.normal(size=(n_states, n_features)))
    _, _, _, old_cov = random_params(rng, n_states, n_features, covariance_type)
    stats = gaussian_sufficient_statistics(jnp.asarray(w), jnp.asarray(X), centers, covariance_type)
    means, cov = gaussian_map(stats, centers, prior, covariance_type, jnp.asarray(old_cov))

    @jax.jit
    def objective_program(m, c):
        ll = gaussian_log_likelihoods(m, c, X, covariance_type)
        return jnp.sum(w * ll) + gaussian_log_prior(m, c, prior, covariance_type)

    def objective(m, c):
        return float(objective_program(jnp.asarray(m), jnp.asarray(c)))

    best = objective(means, cov)
    for _ in range(30):
        m2 = means + rng.normal(size=means.shape) * 0.05
        c2 = np.maximum(
            np.asarray(cov) * np.exp(rng.normal(size=np.shape(cov)) * 0.05), 0.2
        )  # feasible
        if covariance_type in ("full", "tied"):
            b = rng.normal(size=np.shape(cov)) * 0.03
            c2 = np.asarray(cov) + b @ np.swapaxes(b, -1, -2)  # still above the floor
        assert objective(m2, c2) <= best + 1e-9


def test_float32_statistics_and_log_likelihoods_stay_accurate():
    """10^5 frames far from the origin: float32 against float64 (computed by NumPy)."""
    rng = np.random.default_rng(9)
    n, n_states, n_features = 100_000, 3, 4
    X = rng.normal(size=(n, n_features)) * 0.1 + 100.0
    means = 100.0 + rng.normal(size=(n_states, n_features)) * 0.1
    w = rng.dirichlet(np.ones(n_states), n)
    stats = gaussian_sufficient_statistics(
        jnp.asarray(w, jnp.float32),
        jnp.asarray(X, jnp.float32),
        jnp.asarray(means, jnp.float32),
        "full",
    )
    d = X[:, None, :] - means[None]
    exact = np.einsum("tk,tki,tkj->kij", w, d, d)
    np.testing.assert_allclose(
        np.asarray(stats.second), exact, rtol=2e-4, atol=1e-4 * np.abs(exact).max()
    )
    cov = np.broadcast_to(np.eye(n_features) * 0.01, (n_states, n_features, n_features))
    ll32 = np.asarray(
        gaussian_log_likelihoods(
            jnp.asarray(means, jnp.float32),
            jnp.asarray(cov, jnp.float32),
            jnp.asarray(X, jnp.float32),
        )
    )
    ll64 = scipy_log_likelihoods(X[:2000], means, cov, "full")
    np.testing.assert_allclose(ll32[:2000], ll64, rtol=1e-5, atol=1e-3)


# ----------------------------------------------------------------------------
# recovery, sessions
# ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fitted(sessions):
    X, _, starts, _ = sessions
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return GaussianHMM(3, "full", kappa=10.0, progress_bar=False).fit(X, session_starts=starts)


def test_recovers_states_and_parameters(sessions, fitted):
    X, z_true, starts, truth = sessions
    z = fitted.predict(X, session_starts=starts)
    assert state_accuracy(z_true, z, 3) > 0.97
    perm = match_states(z_true, z, 3)
    np.testing.assert_allclose(fitted.means_[perm], truth.means_, atol=0.1)
    np.testing.assert_allclose(fitted.covariances_[perm], truth.covariances_, atol=0.08)
    np.testing.assert_allclose(
        np.diag(fitted.transition_prob_[np.ix_(perm, perm)]), 0.96, atol=0.03
    )
    assert fitted.score(X, session_starts=starts) >= truth.score(X, session_starts=starts) - 1.0
    assert fitted.means_.shape == (3, 2) and fitted.covariances_.shape == (3, 2, 2)
    assert len(fitted.log_likelihood_history_) == fitted.n_iter_ == len(fitted.log_joint_history_)


@pytest.mark.slow
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_recovery_study_every_covariance_type(covariance_type):
    rng = np.random.default_rng(10)
    pi, trans, means, cov = random_params(rng, 4, 5, covariance_type, spread=2.5)
    trans = 0.9 * np.eye(4) + 0.1 * trans
    truth = hand_set(pi, trans, means, cov, covariance_type)
    starts = np.arange(0, 8000, 2000)
    X, z = truth.simulate(jax.random.key(3), 8000, session_starts=starts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = GaussianHMM(4, covariance_type, progress_bar=False, n_iter=200).fit(
            X, session_starts=starts
        )
    zhat = model.predict(X, session_starts=starts)
    assert state_accuracy(z, zhat, 4) > 0.97
    perm = match_states(z, zhat, 4)
    np.testing.assert_allclose(model.means_[perm], means, atol=0.15)


def test_sessions_are_never_chained(sessions, fitted):
    X, _, starts, _ = sessions
    bounds = np.append(np.flatnonzero(starts), len(X))
    separate = sum(fitted.score(X[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True))
    np.testing.assert_allclose(fitted.score(X, session_starts=starts), separate, rtol=1e-5)
    z = fitted.predict(X, session_starts=np.flatnonzero(starts))
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        np.testing.assert_array_equal(z[a:b], fitted.predict(X[a:b]))
    assert abs(fitted.score(X) - separate) > 1e-3


# ----------------------------------------------------------------------------
# scikit-learn
# ----------------------------------------------------------------------------

EXPECTED_FAILED_CHECKS = {
    "check_methods_sample_order_invariance": (
        "An HMM labels a frame from its context: reordering time bins changes the sequence."
    ),
    "check_methods_subset_invariance": (
        "Predictions of one frame depend on the other frames of its session."
    ),
    "check_estimators_nan_inf": (
        "NaN rows at a session's border are dropped by design (pynapple convention); the check "
        "puts its NaN at time bin 0. NaN inside a session and inf raise ValueError (tested "
        "below)."
    ),
}


@parametrize_with_checks(
    [GaussianHMM(n_states=2, covariance_type="diag", n_iter=5, progress_bar=False)],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


def test_clone_after_setup_and_get_set_params():
    def start(n_states, X, session_starts, random_key, **kwargs):
        return np.full(n_states, 1.0 / n_states)

    model = GaussianHMM(3, "tied", kappa=2.0).setup(
        initial_proba_init=start, gaussian_params_init="random"
    )
    copy = clone(model)
    assert copy.initialization_funcs == model.initialization_funcs
    assert copy.initialization_funcs["initial_proba_init"] is start
    params = dict(n_states=5, covariance_type="spherical", alpha=0.5, min_covar=1e-2)
    assert GaussianHMM(**params).get_params() == GaussianHMM().set_params(**params).get_params()


def test_grid_search_with_whole_session_folds(sessions):
    X, _, starts, _ = sessions
    model = GaussianHMM(covariance_type="full", n_iter=15, progress_bar=False)
    with sklearn.config_context(enable_metadata_routing=True), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search = GridSearchCV(model, {"n_states": [1, 3]}, cv=SessionKFold(3)).fit(
            X, session_starts=starts
        )
        train, test = next(SessionKFold(3).split(X, session_starts=starts))
        by_hand = clone(model).set_params(n_states=3).fit(X[train], session_starts=starts[train])
    assert search.best_params_ == {"n_states": 3}
    expected = by_hand.score(X[test], session_starts=starts[test])
    np.testing.assert_allclose(search.cv_results_["split0_test_score"][1], expected, rtol=1e-5)


@pytest.mark.parametrize(
    "method", ["score", "smooth_proba", "filter_proba", "decode_state", "predict", "save_params"]
)
def test_not_fitted_error(method):
    with pytest.raises(NotFittedError, match="not fitted yet"):
        getattr(GaussianHMM(), method)(np.zeros((10, 2)))


# ----------------------------------------------------------------------------
# files, pynapple
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("covariance_type", ["full", "spherical"])
def test_save_load_round_trip(tmp_path, sessions, covariance_type):
    X, _, starts, _ = sessions
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = GaussianHMM(3, covariance_type, kappa=3.0, n_iter=10, progress_bar=False).fit(
            X, session_starts=starts
        )
    path = model.save_params(tmp_path / "ghmm.npz")
    loaded = behavhmm.load_model(path)
    assert type(loaded) is GaussianHMM and loaded.get_params() == model.get_params()
    for name in (
        "initial_prob_",
        "transition_prob_",
        "means_",
        "covariances_",
        "log_joint_history_",
    ):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(model, name))
    assert loaded.n_iter_ == model.n_iter_ and loaded.n_features_in_ == 2
    np.testing.assert_array_equal(
        loaded.predict(X, session_starts=starts), model.predict(X, session_starts=starts)
    )
    np.testing.assert_array_equal(
        loaded.smooth_proba(X, session_starts=starts), model.smooth_proba(X, session_starts=starts)
    )
    assert loaded.score(X, session_starts=starts) == model.score(X, session_starts=starts)


def test_save_refuses_inconsistent_file(tmp_path, fitted):
    path = fitted.save_params(tmp_path / "m.npz")
    with np.load(path) as npz:
        arrays = dict(npz)
    arrays["covariances_"] = arrays["covariances_"][:, :, :1]
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match="covariances_ has shape"):
        behavhmm.load_model(tmp_path / "bad.npz")


def as_tsdframe(X, starts, fps=30.0, gap=5.0):
    first = np.flatnonzero(starts)
    t = np.arange(len(X)) / fps + gap * (np.cumsum(starts) - 1)
    ends = np.append(first[1:], len(X)) - 1
    return nap.TsdFrame(t=t, d=X, time_support=nap.IntervalSet(start=t[first], end=t[ends]))


def test_pynapple_in_pynapple_out(sessions, fitted):
    X, _, starts, _ = sessions
    tsd = as_tsdframe(X, starts)
    proba = fitted.smooth_proba(tsd)
    assert isinstance(proba, nap.TsdFrame)
    np.testing.assert_array_equal(proba.t, tsd.t)
    np.testing.assert_array_equal(proba.time_support.values, tsd.time_support.values)
    np.testing.assert_allclose(proba.values, fitted.smooth_proba(X, session_starts=starts))
    z = fitted.decode_state(tsd, state_format="index")
    assert isinstance(z, nap.Tsd)
    np.testing.assert_array_equal(z.values, fitted.predict(X, session_starts=starts))
    assert isinstance(fitted.filter_proba(tsd), nap.TsdFrame)
    np.testing.assert_allclose(fitted.score(tsd), fitted.score(X, session_starts=starts), rtol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = clone(fitted).set_params(n_iter=5).fit(tsd)
        b = clone(fitted).set_params(n_iter=5).fit(X, session_starts=starts)
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-6)


def test_nan_borders_are_dropped(sessions, fitted):
    X, _, starts, _ = sessions
    Xn = X.copy()
    Xn[600:603] = np.nan
    Xn[-2:] = np.nan
    z = fitted.predict(Xn, session_starts=starts)
    proba = fitted.smooth_proba(Xn, session_starts=starts)
    nan_rows = np.isnan(Xn).any(1)
    assert np.all(z[nan_rows] == -1) and np.all(z[~nan_rows] >= 0)
    assert np.all(np.isnan(proba[nan_rows]))
    keep = ~nan_rows
    starts_kept = starts[keep].copy()
    starts_kept[600] = True
    np.testing.assert_allclose(
        fitted.score(Xn, session_starts=starts),
        fitted.score(X[keep], session_starts=starts_kept),
        rtol=1e-6,
    )


# ----------------------------------------------------------------------------
# bad input
# ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params, err, match",
    [
        (dict(covariance_type="full_rank"), ValueError, "covariance_type must be one of"),
        (dict(n_states=0), ValueError, "n_states == 0, must be >= 1"),
        (dict(min_covar=0.0), ValueError, "min_covar == 0.0, must be > 0"),
        (dict(alpha=-1.0), ValueError, "alpha == -1.0, must be >= 0"),
        (dict(covariance_prior_weight=-2.0), ValueError, "covariance_prior_weight == -2.0"),
        (
            dict(covariance_prior_scale=np.ones(3)),
            ValueError,
            r"covariance_prior_scale must be a float or a finite array of shape \(2, 2\)",
        ),
        (
            dict(covariance_prior_scale=np.array([[1.0, 2.0], [2.0, 1.0]])),
            ValueError,
            "positive semi-definite",
        ),
        (
            dict(covariance_type="diag", covariance_prior_scale=-1.0),
            ValueError,
            "must be non-negative",
        ),
        (
            dict(mean_prior=np.zeros(5)),
            ValueError,
            r"mean_prior must be a finite float or an array of shape \(2,\)",
        ),
        (dict(inference_method="gpu"), ValueError, "inference_method must be one of"),
        (dict(progress_bar="yes"), TypeError, "progress_bar must be a bool"),
        (dict(n_states=5000), ValueError, "n_samples=1800 modelled frame"),
    ],
)
def test_bad_hyperparameters_raise_in_fit(sessions, params, err, match):
    X, _, starts, _ = sessions
    with pytest.raises(err, match=match):
        GaussianHMM(**{**dict(n_states=2, progress_bar=False), **params}).fit(
            X, session_starts=starts
        )


def test_bad_data_and_parameters(sessions, fitted):
    X, _, starts, _ = sessions
    with pytest.raises(ValueError, match="NaN at time bin 50, inside a session"):
        fitted.score(np.where(np.arange(len(X))[:, None] == 50, np.nan, X), session_starts=starts)
    with pytest.raises(ValueError, match="X has 1 features, but GaussianHMM is expecting 2"):
        fitted.score(X[:, :1])
    with pytest.raises(ValueError, match="state_format must be one of"):
        fitted.decode_state(X, state_format="onehot")
    model = hand_set(
        fitted.initial_prob_, fitted.transition_prob_, fitted.means_, -fitted.covariances_, "full"
    )
    with pytest.raises(ValueError, match="covariances_ must be positive definite"):
        model.score(X)
    model = hand_set(
        fitted.initial_prob_, fitted.transition_prob_, fitted.means_, fitted.covariances_[0], "full"
    )
    with pytest.raises(ValueError, match=r"covariances_ must have shape \(3, 2, 2\)"):
        model.score(X)
    model = hand_set(
        fitted.initial_prob_,
        fitted.transition_prob_ * 2,
        fitted.means_,
        fitted.covariances_,
        "full",
    )
    with pytest.raises(ValueError, match="transition_prob_ must sum to 1"):
        model.score(X)
    bad_init = GaussianHMM(3, "diag", progress_bar=False).setup(
        gaussian_params_init=lambda n, X, s, k, **kw: (np.zeros((n, 2)), np.ones((n, 2, 2)))
    )
    with pytest.raises(
        ValueError,
        match=r"gaussian_params_init covariances returned shape \(3, 2, 2\), expected \(3, 2\)",
    ):
        bad_init.fit(X)
    with pytest.raises(
        ValueError, match="gaussian_params_init must be a registered name|not a built-in"
    ):
        GaussianHMM().setup(gaussian_params_init="gmm")
