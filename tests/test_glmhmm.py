"""GLMHMM: brute-force agreement, EM, recovery, nemos' API and errors, and the nemos defects it must
not have."""

from __future__ import annotations

import warnings

import jax
import numpy as np
import pytest
import sklearn
from glmhmm_helpers import brute_force, hand_set, log_likelihoods, simulate, sticky
from scipy.optimize import minimize as scipy_minimize
from scipy.special import logsumexp, softmax
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from behavhmm import GLMHMM, load_model
from behavhmm.analysis import align_states, bits_per_trial, fit_one_state_baseline, match_states
from behavhmm.fitting import EMConvergenceWarning
from behavhmm.inference import hmm as hmm_module
from behavhmm.model_selection import SessionKFold
from behavhmm.models import _glm_core as core

# ----------------------------------------------------------------------------
# shared simulated problems (one per family; fitted once per module)
# ----------------------------------------------------------------------------

N_TIME_BINS, N_FEATURES, N_STATES, SESSION = 3000, 3, 2, 500
# every fit below uses 3000 bins of 3 features (or a length in the same bucket) and no
# penalty, so they share compiled programs and the module runs in about a minute


def _truth(family, rng, n_outputs=None):
    if family == "Categorical":
        coef = np.stack(
            [
                np.zeros((N_FEATURES, N_STATES)),
                [[2.5, -2.5], [0.0, 1.5], [1.0, 0.0]],
                [[-2.0, 1.0], [2.0, -2.0], [0.0, 1.0]],
            ],
            axis=1,
        )
        return coef, np.array([[0.0, 0.0], [0.5, -0.5], [-0.5, 0.5]]), np.ones(N_STATES)
    if n_outputs:
        coef = rng.normal(scale=0.5, size=(N_FEATURES, n_outputs, N_STATES))
        return (
            coef,
            rng.normal(0.5, 0.3, size=(n_outputs, N_STATES)),
            np.ones((n_outputs, N_STATES)),
        )
    coef = {
        "Bernoulli": [[3.0, 0.5], [-1.0, 1.5], [0.5, -0.5]],
        "Poisson": [[0.8, -0.4], [-0.5, 0.6], [0.2, 0.0]],
        "Gaussian": [[2.0, -1.0], [0.5, 1.0], [0.0, -0.5]],
        "Gamma": [[0.3, 0.05], [0.0, 0.2], [0.1, 0.1]],
        "NegativeBinomial": [[0.8, -0.4], [-0.5, 0.6], [0.2, 0.0]],
    }[family]
    intercept = {"Gamma": [1.0, 4.0], "Gaussian": [1.0, -1.0]}.get(family, [0.5, -0.5])
    scale = {"Gaussian": [0.5, 0.2], "Gamma": [0.1, 0.2], "NegativeBinomial": [0.3, 0.1]}.get(
        family, [1.0, 1.0]
    )
    return np.array(coef, float), np.array(intercept, float), np.array(scale, float)


def _problem(family, seed=0, n_outputs=None, n_time_bins=N_TIME_BINS):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_time_bins, N_FEATURES))
    if family == "Gamma":
        X = np.abs(X)
    coef, intercept, scale = _truth(family, rng, n_outputs)
    starts = np.zeros(n_time_bins, bool)
    starts[::SESSION] = True
    transition = sticky(N_STATES, 0.95)
    y, z = simulate(
        rng, family, X, coef, intercept, scale, np.full(N_STATES, 0.5), transition, starts
    )
    return X, y, starts, z, (coef, intercept, scale, transition)


COMMON = {"regularizer": "UnRegularized", "progress_bar": False}
FAMILIES = ["Bernoulli", "Poisson", "Gaussian", "Gamma", "NegativeBinomial", "Categorical"]


@pytest.fixture(scope="module")
def fitted():
    """``family -> (model, X, y, starts, z, truth)``, fitted lazily and kept for the module."""
    cache = {}

    def get(family, n_outputs=None):
        key = (family, n_outputs)
        if key not in cache:
            X, y, starts, z, truth = _problem(family, n_outputs=n_outputs)
            model = GLMHMM(
                N_STATES,
                observation_model=family,
                tol=1e-6,
                n_init=2 if family == "Bernoulli" else 1,
                **COMMON,
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", EMConvergenceWarning)
                model.fit(X, y, session_starts=starts)
            cache[key] = (model, X, y, starts, z, truth)
        return cache[key]

    return get


# ----------------------------------------------------------------------------
# agreement with brute-force enumeration
# ----------------------------------------------------------------------------

BRUTE_CASES = [
    ("Bernoulli", None),
    ("Gaussian", None),
    ("Poisson", 2),
    ("Gamma", None),
    ("NegativeBinomial", None),
    ("Categorical", None),
]


@pytest.mark.requires_x64
@pytest.mark.parametrize(("family", "n_outputs"), BRUTE_CASES)
def test_score_posteriors_and_viterbi_match_brute_force(family, n_outputs):
    rng = np.random.default_rng(1)
    n_time_bins, n_states = 7, 3
    X = (
        np.abs(rng.normal(size=(n_time_bins, 2)))
        if family == "Gamma"
        else rng.normal(size=(n_time_bins, 2))
    )
    if family == "Categorical":
        coef, intercept, scale = (
            rng.normal(size=(2, 3, n_states)),
            rng.normal(size=(3, n_states)),
            np.ones(n_states),
        )
        y = rng.integers(0, 3, n_time_bins)
    else:
        shape = (2, n_states) if n_outputs is None else (2, n_outputs, n_states)
        coef = rng.normal(scale=0.5, size=shape)
        intercept = rng.normal(scale=0.3, size=shape[1:]) + (3.0 if family == "Gamma" else 0.0)
        scale = (
            rng.uniform(0.3, 1.0, size=shape[1:])
            if family in ("Gaussian", "Gamma", "NegativeBinomial")
            else np.ones(shape[1:])
        )
        size = (n_time_bins,) if n_outputs is None else (n_time_bins, n_outputs)
        y = {
            "Bernoulli": lambda: rng.binomial(1, 0.5, size),
            "Gaussian": lambda: rng.normal(size=size),
            "Poisson": lambda: rng.poisson(1.5, size),
            "Gamma": lambda: rng.gamma(2.0, 0.2, size),
            "NegativeBinomial": lambda: rng.negative_binomial(2, 0.5, size),
        }[family]().astype(float)
    initial = rng.dirichlet(np.ones(n_states))
    transition = rng.dirichlet(np.ones(n_states) * 2, size=n_states)
    starts = np.zeros(n_time_bins, bool)
    starts[[0, 4]] = True
    model = hand_set(family, coef, intercept, scale, initial, transition)
    if family == "Categorical":
        model.classes_ = np.arange(3)
    ll = log_likelihoods(family, X, y, coef, intercept, scale)
    log_z, smoothed, filtered, path = brute_force(ll, initial, transition, starts)
    np.testing.assert_allclose(model.score(X, y, session_starts=starts), log_z, rtol=1e-9)
    np.testing.assert_allclose(model.smooth_proba(X, y, session_starts=starts), smoothed, atol=1e-9)
    np.testing.assert_allclose(model.filter_proba(X, y, session_starts=starts), filtered, atol=1e-9)
    idx = model.decode_state(X, y, session_starts=starts, state_format="index")
    assert idx.dtype == np.int32  # nemos returns floats
    np.testing.assert_array_equal(idx, path)
    np.testing.assert_array_equal(
        model.decode_state(X, y, session_starts=starts), np.eye(n_states, dtype=int)[path]
    )
    params = (coef, intercept, scale, initial, transition)
    np.testing.assert_allclose(
        model.compute_loss(params, X, y, session_starts=starts), -log_z, rtol=1e-9
    )


@pytest.mark.requires_x64
def test_sessions_are_independent():
    """Scoring two sessions together equals the sum of scoring them apart (the chain restarts)."""
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(40, 2)), rng.binomial(1, 0.5, 40)
    model = hand_set(
        "Bernoulli",
        rng.normal(size=(2, 2)),
        np.zeros(2),
        np.ones(2),
        np.array([0.3, 0.7]),
        sticky(2, 0.9),
    )
    starts = np.zeros(40, bool)
    starts[[0, 25]] = True
    apart = model.score(X[:25], y[:25]) + model.score(X[25:], y[25:])
    np.testing.assert_allclose(model.score(X, y, session_starts=starts), apart, rtol=1e-10)


# ----------------------------------------------------------------------------
# EM
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_em_objective_never_decreases(fitted, family):
    model = fitted(family)[0]
    joint = model.log_joint_history_
    # float32: allow round-off of a few ulps of the objective
    assert np.all(np.diff(joint) >= -3e-6 * np.abs(joint[1:])), np.diff(joint)
    assert joint[-1] > joint[0] and model.converged_


def test_analytic_hmm_m_step_equals_numerical_maximisation(fitted):
    """The closed-form MAP update of (initial, transition) maximises the expected complete-data log
    posterior."""
    rng = np.random.default_rng(4)
    fit, X, y, starts, _, (coef, intercept, _, _) = fitted("Bernoulli")
    a_init, a_trans = np.array([2.0, 3.0]), np.array([[4.0, 1.5], [2.0, 6.0]])
    model = clone(fit).set_params(
        dirichlet_initial_proba=a_init, dirichlet_transition_proba=a_trans
    )
    params = (coef, intercept, np.ones(2), rng.dirichlet([1, 1]), rng.dirichlet([1, 1], size=2))
    state = model.initialize_optimizer_and_state(params, X, y, session_starts=starts)
    new, _ = model.update(params, state, X, y, session_starts=starts)
    # expected sufficient statistics under the same parameters
    hand = hand_set("Bernoulli", *params)
    gamma = hand.smooth_proba(X, y, session_starts=starts)
    ll = log_likelihoods("Bernoulli", X, y, coef, intercept, np.ones(2))
    # pairwise marginals: xi_t(i, j) ∝ filt_{t-1}(i) A_ij p(y_t | j) gamma_t(j) / filt_t(j)
    filt = hand.filter_proba(X, y, session_starts=starts)
    lik = np.exp(ll)
    counts = np.zeros((2, 2))
    for t in np.flatnonzero(~starts):
        xi = filt[t - 1][:, None] * params[4] * (lik[t] * gamma[t] / filt[t])[None, :]
        counts += xi / xi.sum()
    n_init = gamma[starts].sum(axis=0)

    def neg(theta, n, a):
        p = softmax(theta)
        return -np.sum((n + a - 1) * np.log(p))

    init_num = softmax(scipy_minimize(neg, np.zeros(2), args=(n_init, a_init)).x)
    trans_num = np.stack(
        [
            softmax(scipy_minimize(neg, np.zeros(2), args=(counts[i], a_trans[i])).x)
            for i in range(2)
        ]
    )
    np.testing.assert_allclose(new[3], init_num, atol=1e-4)
    np.testing.assert_allclose(new[4], trans_num, atol=1e-4)


# ----------------------------------------------------------------------------
# recovery for every observation model
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_recovers_simulated_parameters(fitted, family):
    model, X, y, starts, z, (coef, intercept, scale, transition) = fitted(family)
    truth = hand_set(family, coef, intercept, scale, np.full(N_STATES, 0.5), transition)
    if family == "Categorical":
        truth.classes_ = np.arange(3)
    aligned, _ = align_states(truth, model, X, y, session_starts=starts)
    states = aligned.decode_state(X, y, session_starts=starts, state_format="index")
    assert np.mean(states == z) > 0.85
    if family == "Categorical":  # softmax weights are identified relative to class 0
        np.testing.assert_allclose(aligned.coef_ - aligned.coef_[:, :1], coef, rtol=0.25, atol=0.5)
    else:
        np.testing.assert_allclose(aligned.coef_, coef, rtol=0.2, atol=0.3)
    np.testing.assert_allclose(aligned.transition_prob_, transition, atol=0.05)
    if family in (
        "Gaussian",
        "Gamma",
        "NegativeBinomial",
    ):  # scale_ is the variance/dispersion, not its exp (nemos defect)
        np.testing.assert_allclose(aligned.scale_, scale, rtol=0.35)
    # the fitted model explains the data at least as well as the truth
    assert (
        model.score(X, y, session_starts=starts) >= truth.score(X, y, session_starts=starts) - 1.0
    )


def test_population_poisson_recovery_and_convergence(fitted):
    """Population y works, and EM runs to its tolerance (nemos stops population fits after two
    iterations)."""
    model, X, y, starts, z, (coef, intercept, _, transition) = fitted("Poisson", 4)
    assert model.coef_.shape == (N_FEATURES, 4, N_STATES) and model.intercept_.shape == (
        4,
        N_STATES,
    )
    assert model.n_iter_ > 2 and model.converged_
    truth = hand_set(
        "Poisson", coef, intercept, np.ones((4, N_STATES)), np.full(N_STATES, 0.5), transition
    )
    aligned, _ = align_states(truth, model, X, y, session_starts=starts)
    np.testing.assert_allclose(aligned.coef_, coef, atol=0.15)
    assert model.dof_resid_.shape == (4,)


def test_gaussian_score_uses_fitted_variance(fitted):
    """nemos exponentiates ``scale_`` on the way out; ours scores with the stored variance."""
    model, X, y, starts, _, _ = fitted("Gaussian")
    ll = log_likelihoods("Gaussian", X, y, model.coef_, model.intercept_, model.scale_)
    log_z = 0.0
    for part in np.split(np.arange(len(y)), np.flatnonzero(starts)[1:]):
        # forward algorithm in NumPy for each session
        a = np.log(model.initial_prob_) + ll[part[0]]
        for t in part[1:]:
            a = logsumexp(a[:, None] + np.log(model.transition_prob_), axis=0) + ll[t]
        log_z += logsumexp(a)
    np.testing.assert_allclose(model.score(X, y, session_starts=starts), log_z, rtol=1e-4)


# ----------------------------------------------------------------------------
# nemos' defects
# ----------------------------------------------------------------------------


def test_dirichlet_priors_are_used_by_fit(fitted):
    flat, X, y, starts, _, _ = fitted("Bernoulli")
    strong = np.array([[1.0, 3000.0], [3000.0, 1.0]])
    prior = (
        clone(flat)
        .set_params(dirichlet_transition_proba=strong, n_init=1, tol=1e-5)
        .fit(X, y, session_starts=starts)
    )
    assert np.all(np.diag(prior.transition_prob_) < 0.5) and np.all(
        np.diag(flat.transition_prob_) > 0.5
    )


@pytest.mark.requires_x64
def test_bool_y_works_in_float64():
    """nemos crashes on boolean y under float64."""
    rng = np.random.default_rng(6)
    X, y = rng.normal(size=(7, 2)), rng.binomial(1, 0.5, 7)
    model = hand_set(
        "Bernoulli",
        rng.normal(size=(2, 3)),
        np.zeros(3),
        np.ones(3),
        np.ones(3) / 3,
        sticky(3, 0.8),
    )
    np.testing.assert_allclose(model.score(X, y.astype(bool)), model.score(X, y), rtol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EMConvergenceWarning)
        a = GLMHMM(3, maxiter=2, progress_bar=False).fit(X, y.astype(bool)).coef_
        b = GLMHMM(3, maxiter=2, progress_bar=False).fit(X, y).coef_
    np.testing.assert_allclose(a, b)


def test_refit_does_not_recompile(fitted):
    model, X, y, starts, _, _ = fitted("Bernoulli")
    programs = (
        core.posterior,
        core.m_step_program,
        core.filter_program,
        core.viterbi_program,
        hmm_module._smoother_program,
    )
    programs = [p for p in programs if hasattr(p, "_cache_size")]
    before = [p._cache_size() for p in programs]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EMConvergenceWarning)
        clone(model).set_params(n_init=1, maxiter=3, regularizer_strength=2.0, seed=9).fit(
            X[:-7], y[:-7], session_starts=starts[:-7]
        )
    assert [p._cache_size() for p in programs] == before


def test_maxiter_warns(fitted):
    model, X, y, starts, _, _ = fitted("Bernoulli")
    with pytest.warns(RuntimeWarning, match="did not converge"):
        clone(model).set_params(maxiter=2, n_init=1).fit(X, y, session_starts=starts)


# ----------------------------------------------------------------------------
# scikit-learn: clone, GridSearchCV with whole sessions, Pipeline, n_init
# ----------------------------------------------------------------------------


def test_clone_gridsearch_over_sessions_and_pipeline():
    X, y, starts, _, _ = _problem("Bernoulli", n_time_bins=4500)
    model = GLMHMM(2, tol=1e-4, **COMMON).setup(transition_proba_init_kwargs={"prob_stay": 0.9})
    assert (
        clone(model).get_params()["hmm_initialization_funcs"]
        == model.get_params()["hmm_initialization_funcs"]
    )
    with sklearn.config_context(enable_metadata_routing=True), warnings.catch_warnings():
        warnings.simplefilter("ignore", EMConvergenceWarning)
        search = GridSearchCV(
            model, {"n_states": [1, 2]}, cv=SessionKFold(3), refit=False
        )  # no refit: saves a compile
        search.fit(X, y, session_starts=starts)
        pipe = make_pipeline(StandardScaler(), GLMHMM(2, tol=1e-4, **COMMON))
        pipe.fit(X[:3000], y[:3000], session_starts=starts[:3000])
    scaled = pipe[0].transform(X[:3000])
    assert np.isfinite(pipe[-1].score(scaled, y[:3000], session_starts=starts[:3000]))
    assert search.best_params_ == {"n_states": 2}


def test_session_kfold_keeps_sessions_whole(fitted):
    _, X, _, starts, _, _ = fitted("Bernoulli")
    for train, test in SessionKFold(3).split(X, session_starts=starts):
        session = np.cumsum(starts) - 1
        assert not set(session[train]) & set(session[test])


def test_n_init_keeps_the_best_run(fitted):
    model, X, y, starts, _, _ = fitted("Bernoulli")
    singles = []
    keys = jax.random.split(jax.random.key(123), 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EMConvergenceWarning)
        for key in keys:
            singles.append(
                clone(model)
                .set_params(n_init=1, seed=key)
                .fit(X, y, session_starts=starts)
                .log_joint_history_[-1]
            )
    np.testing.assert_allclose(model.log_joint_history_[-1], max(singles), rtol=1e-5)


def test_bits_per_trial_over_one_state_glm(fitted):
    model, X, y, starts, _, _ = fitted("Bernoulli")
    base = fit_one_state_baseline(model, X, y, session_starts=starts)
    assert base.coef_.shape == (N_FEATURES, 1)
    gain = bits_per_trial(
        model.score(X, y, session_starts=starts), base.score(X, y, session_starts=starts), len(y)
    )
    assert 0.05 < gain < 1.0
    with pytest.raises(ValueError, match="n_trials"):
        bits_per_trial(0.0, 0.0, 0)


def test_match_and_permute_states(fitted):
    model, X, y, starts, _, _ = fitted("Bernoulli")
    from behavhmm.analysis import permute_states

    swapped = permute_states(model, [1, 0])
    np.testing.assert_allclose(
        swapped.score(X, y, session_starts=starts),
        model.score(X, y, session_starts=starts),
        rtol=1e-5,
    )
    back, perm = align_states(model, swapped)  # by weights, without data
    np.testing.assert_array_equal(perm, [1, 0])
    np.testing.assert_allclose(back.coef_, model.coef_)
    a = model.decode_state(X, y, session_starts=starts, state_format="index")
    b = swapped.decode_state(X, y, session_starts=starts, state_format="index")
    np.testing.assert_array_equal(match_states(a, b), [1, 0])
    with pytest.raises(ValueError, match="permutation"):
        permute_states(model, [0, 0])


# ----------------------------------------------------------------------------
# inputs: pytree X, pynapple, simulate, save/load with a custom initializer
# ----------------------------------------------------------------------------


def test_dict_design_gives_dict_coef_and_same_fit(fitted):
    model, X, y, starts, _, _ = fitted("Bernoulli")
    single = clone(model).set_params(n_init=1, maxiter=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EMConvergenceWarning)
        flat = clone(single).fit(
            np.concatenate([X[:, 1:], X[:, :1]], axis=1), y, session_starts=starts
        )  # keys in sorted order
        tree = clone(single).fit({"stim": X[:, :1], "hist": X[:, 1:]}, y, session_starts=starts)
    assert set(tree.coef_) == {"stim", "hist"} and tree.coef_["stim"].shape == (1, N_STATES)
    np.testing.assert_allclose(
        np.concatenate([tree.coef_["hist"], tree.coef_["stim"]]), flat.coef_, rtol=1e-4, atol=1e-5
    )


def test_nan_rows_at_session_borders_are_dropped(fitted):
    model, X, y, starts, _, _ = fitted("Bernoulli")
    X_nan = X.copy()
    X_nan[[0, SESSION, 2 * SESSION - 1]] = (
        np.nan
    )  # first trial of sessions 1 and 2, last of session 2
    keep = np.ones(len(y), bool)
    keep[[0, SESSION, 2 * SESSION - 1]] = False
    kept_starts = np.zeros(len(y), bool)
    kept_starts[[1, SESSION + 1]] = True
    kept_starts[2 * SESSION :: SESSION] = True
    np.testing.assert_allclose(
        model.score(X_nan, y, session_starts=starts),
        model.score(X[keep], y[keep], session_starts=kept_starts[keep]),
        rtol=1e-6,
    )
    states = model.decode_state(X_nan, y, session_starts=starts, state_format="index")
    assert np.all(states[~keep] == -1) and np.all(states[keep] >= 0)
    assert np.all(np.isnan(model.smooth_proba(X_nan, y, session_starts=starts)[~keep]))


def test_pynapple_round_trip(fitted):
    nap = pytest.importorskip("pynapple")
    model, X, y, starts, _, _ = fitted("Bernoulli")
    t = np.arange(1000) * 0.1
    ep = nap.IntervalSet(start=[0.0, 50.0], end=[49.95, 99.95])
    Xn, yn = (
        nap.TsdFrame(t=t, d=X[:1000], time_support=ep),
        nap.Tsd(t=t, d=y[:1000], time_support=ep),
    )
    post = model.smooth_proba(Xn, yn)
    assert isinstance(post, nap.TsdFrame) and np.allclose(post.t, t)
    mask = np.zeros(1000, bool)
    mask[[0, 500]] = True
    np.testing.assert_allclose(
        post.values, model.smooth_proba(X[:1000], y[:1000], session_starts=mask), atol=1e-6
    )
    states = model.decode_state(Xn, yn, state_format="index")
    assert isinstance(states, nap.Tsd) and states.dtype == np.int32
    y_sim, rate, z_sim = model.simulate(jax.random.key(0), Xn)
    assert isinstance(y_sim, nap.Tsd) and set(np.unique(y_sim.values)) <= {0, 1}


def _my_glm_init(
    n_states, X, y, inverse_link_function, observation_model, session_starts, random_key, spread=1.0
):
    coef = spread * np.linspace(-1, 1, X.shape[1] * n_states).reshape(X.shape[1], n_states)
    return coef, np.zeros(n_states)


def test_save_load_with_custom_initializer(tmp_path, fitted):
    model, X, y, starts, _, _ = fitted("Bernoulli")
    custom = (
        clone(model)
        .set_params(n_init=1, maxiter=4)
        .setup(glm_params_init=_my_glm_init, glm_params_init_kwargs={"spread": 0.5})
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EMConvergenceWarning)
        custom.fit(X, y, session_starts=starts)
        path = custom.save_params(tmp_path / "glm.npz")
        loaded = load_model(path, mapping_dict={"_my_glm_init": _my_glm_init})
        assert loaded.model_initialization_funcs["glm_params_init"] is _my_glm_init
        np.testing.assert_allclose(
            loaded.score(X, y, session_starts=starts), custom.score(X, y, session_starts=starts)
        )
        np.testing.assert_allclose(
            clone(loaded).fit(X, y, session_starts=starts).coef_, custom.coef_, rtol=1e-5
        )


def test_simulate_matches_the_model():
    model = hand_set(
        "Poisson",
        np.array([[1.0, -1.0]]),
        np.array([0.5, 1.5]),
        np.ones(2),
        np.array([1.0, 0.0]),
        sticky(2, 0.9),
    )
    X = np.full((20000, 1), 0.5)
    y, rate, z = model.simulate(jax.random.key(1), X)
    assert z.dtype == np.int32 and z[0] == 0
    np.testing.assert_allclose(np.mean(z[1:] == z[:-1]), 0.9, atol=0.01)
    np.testing.assert_allclose(y[z == 1].mean(), np.exp(1.0), rtol=0.05)
    np.testing.assert_allclose(rate[z == 0], np.exp(1.0), rtol=1e-6)


# ----------------------------------------------------------------------------
# documented errors
# ----------------------------------------------------------------------------

X_ERR = np.random.default_rng(0).normal(size=(50, 2))
Y_ERR = np.random.default_rng(1).binomial(1, 0.5, 50)


@pytest.mark.parametrize(
    ("kwargs", "err", "match"),
    [
        ({"n_states": 2.5}, TypeError, "n_states"),
        ({"n_states": 0}, ValueError, "n_states"),
        ({"observation_model": "Binomial"}, ValueError, "observation"),
        ({"regularizer": "Lasso", "solver_name": "LBFGS"}, ValueError, "solver"),
        ({"regularizer": 3}, TypeError, "egularizer"),
        ({"dirichlet_initial_proba": [0.5, 1.0]}, ValueError, "dirichlet_initial_proba"),
        ({"dirichlet_transition_proba": np.ones(2)}, ValueError, "dirichlet_transition_proba"),
        ({"maxiter": 0}, ValueError, "maxiter"),
        ({"tol": -1.0}, ValueError, "tol"),
        ({"seed": "abc"}, TypeError, "seed"),
        ({"solver_kwargs": {"not_an_option": 1}}, NameError, "not_an_option"),
        ({"hmm_initialization_funcs": {"bad_slot": "uniform"}}, KeyError, "bad_slot"),
    ],
)
def test_hyperparameter_errors(kwargs, err, match):
    params = {"n_states": 2, "progress_bar": False, **kwargs}
    with pytest.raises(err, match=match):
        GLMHMM(**params).fit(X_ERR, Y_ERR)


@pytest.mark.parametrize(
    ("X", "y", "err", "match"),
    [
        (X_ERR[:, 0], Y_ERR, ValueError, "X"),
        (X_ERR, Y_ERR[:40], ValueError, "samples"),
        (X_ERR, Y_ERR + 1, ValueError, "y"),
        (np.where(np.arange(50)[:, None] == 25, np.nan, X_ERR), Y_ERR, ValueError, "NaN"),
        (X_ERR, np.array(["a"] * 50), TypeError, "y"),
    ],
)
def test_input_errors(X, y, err, match):
    with pytest.raises(err, match=match):
        GLMHMM(2, progress_bar=False).fit(X, y)


def test_not_fitted_and_format_errors(fitted):
    with pytest.raises(NotFittedError):
        GLMHMM(2).score(X_ERR, Y_ERR)
    assert issubclass(NotFittedError, ValueError)
    model = fitted("Bernoulli")[0]
    with pytest.raises(ValueError, match="state_format"):
        model.decode_state(X_ERR, Y_ERR, state_format="onehot")
    with pytest.raises(ValueError, match="feature"):
        model.score(np.ones((10, N_FEATURES + 1)), np.ones(10))
    other = clone(
        model
    )  # initialize_params re-validates (and resets) the shapes: keep the shared fit intact
    with pytest.raises(TypeError, match="n_samples"):
        other.update(other.initialize_params(X_ERR, Y_ERR), None, X_ERR, Y_ERR, n_samples=1.5)
    with pytest.raises(ValueError, match="glm_params_init"):
        GLMHMM(2).setup(glm_params_init="nonsense")
    with pytest.raises(ValueError):
        GLMHMM(2).setup(glm_params_init=lambda n_states, X: None)


# ----------------------------------------------------------------------------
# real data (subset)
# ----------------------------------------------------------------------------


@pytest.mark.shared_data
def test_ibl_mouse_subset_has_an_engaged_state(shared_data):
    from behavhmm.datasets import load_ibl_choices

    data = load_ibl_choices(shared_data)
    assert data.X.shape == (7825, 3) and data.session_starts.sum() == 11
    X, y, starts = (
        data.X[:N_TIME_BINS],
        data.y[:N_TIME_BINS],
        data.session_starts[:N_TIME_BINS],
    )  # 4 sessions and a part
    model = GLMHMM(2, tol=1e-6, n_init=2, **COMMON).setup(glm_params_init_kwargs={"std_dev": 1.0})
    model.fit(X, y, session_starts=starts)
    stimulus = model.coef_[0]
    assert (
        stimulus.max() > 8.0 and stimulus.max() > 4 * stimulus.min()
    )  # an engaged state and a biased one
    assert np.all(np.diag(model.transition_prob_) > 0.8)
    base = fit_one_state_baseline(model, X, y, session_starts=starts)
    assert bits_per_trial(model.score(X, y, starts), base.score(X, y, starts), len(y)) > 0.02


# ----------------------------------------------------------------------------
# choice measures and plots
# ----------------------------------------------------------------------------


def test_choice_measures_and_plots(fitted):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from behavhmm.analysis import (
        dwell_times,
        empirical_psychometric,
        psychometric_curves,
        state_occupancy,
    )
    from behavhmm.plotting import (
        plot_glm_weights,
        plot_psychometric,
        plot_state_occupancy,
        plot_transition_matrix,
    )

    model, X, y, starts, _, _ = fitted("Bernoulli")
    np.testing.assert_allclose(dwell_times([[0.9, 0.1], [0.5, 0.5]]), [10.0, 2.0])
    curves = psychometric_curves(model, stimulus=0, values=[-2.0, 0.0, 2.0])
    expected = 1 / (1 + np.exp(-(np.outer([-2.0, 0.0, 2.0], model.coef_[0]) + model.intercept_)))
    np.testing.assert_allclose(curves.probability, expected, rtol=1e-5)
    post = model.smooth_proba(X, y, session_starts=starts)
    occupancy = state_occupancy(post, starts)
    assert occupancy.shape == (starts.sum(), N_STATES)
    np.testing.assert_allclose(occupancy[0], post[:SESSION].mean(axis=0), rtol=1e-5)
    emp = empirical_psychometric(model, np.round(X, 0), y, stimulus=0, session_starts=starts)
    assert emp["fraction"].shape == (len(emp["stimulus"]), N_STATES)
    fig, axes = plt.subplots(1, 4)
    plot_glm_weights(model, ax=axes[0])
    plot_psychometric(curves, empirical=emp, ax=axes[1])
    plot_state_occupancy(occupancy, ax=axes[2])
    plot_transition_matrix(model, ax=axes[3])
    assert len(axes[0].lines) >= N_STATES
    plt.close(fig)
    with pytest.raises(ValueError, match="Bernoulli or Categorical"):
        psychometric_curves(
            hand_set(
                "Poisson", np.ones((1, 2)), np.zeros(2), np.ones(2), np.ones(2) / 2, sticky(2, 0.9)
            )
        )
