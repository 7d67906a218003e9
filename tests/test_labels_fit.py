"""Fits given hand labels: EM conditions on them (brute force), Gibbs keeps them, recovery."""

from __future__ import annotations

import itertools
import warnings

import jax
import numpy as np
import pytest
import sklearn
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold, cross_validate

from behavhmm import ARHMM, GaussianHMM
from behavhmm.analysis import segmentation_report, state_accuracy
from behavhmm.datasets import demo_arhmm, simulate_demo_sessions
from behavhmm.models.arhmm import estimator as ar_estimator


def _paths(n_states, n_time_bins):
    return np.array(list(itertools.product(range(n_states), repeat=n_time_bins)))


def _log_joint(paths, pi, trans, ll, starts):
    lj = ll[np.arange(ll.shape[0]), paths].sum(1)
    for t in range(ll.shape[0]):
        if starts[t]:
            lj = lj + np.log(pi[paths[:, t]])
        else:
            lj = lj + np.log(trans[paths[:, t - 1], paths[:, t]])
    return lj


def _evidence(labels, weight, n_states):
    e = np.ones((len(labels), n_states))
    for t, c in enumerate(labels):
        if c >= 0:
            e[t] = 1.0 - weight
            e[t, c] = 1.0
    return e


def _fixed(pi, trans, emission_slot, emission):
    return {
        "initial_proba_init": lambda n, X, s, k, **kw: pi,
        "transition_proba_init": lambda n, X, s, k, **kw: trans,
        emission_slot: lambda n, X, s, k, **kw: emission,
    }


@pytest.mark.requires_x64
@pytest.mark.parametrize("weight", [1.0, 0.6])
def test_gaussian_em_step_conditions_on_labels(weight):
    """One EM step from known parameters equals the M-step on brute-force conditioned posteriors."""
    rng = np.random.default_rng(3)
    n_states, n_time_bins = 3, 6
    pi = np.array([0.5, 0.3, 0.2])
    trans = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7]])
    means = np.array([[0.0, 0.0], [1.0, 0.5], [-0.5, 1.0]])
    var = np.ones((3, 2))
    X = rng.normal(size=(n_time_bins, 2))
    starts = np.zeros(n_time_bins, bool)
    starts[[0, 3]] = True
    labels = np.array([-1, 2, -1, -1, 0, -1])
    model = GaussianHMM(3, "diag", alpha=0.0, n_iter=1, progress_bar=False)
    model.setup(**_fixed(pi, trans, "gaussian_params_init", (means, var)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, session_starts=starts, labels=labels, label_weight=weight)
    ll = np.stack([multivariate_normal(means[k], np.diag(var[k])).logpdf(X) for k in range(3)], 1)
    paths = _paths(n_states, n_time_bins)
    with np.errstate(divide="ignore"):
        log_e = np.log(_evidence(labels, weight, n_states))
    lw = _log_joint(paths, pi, trans, ll, starts) + log_e[np.arange(n_time_bins), paths].sum(1)
    total = logsumexp(lw)
    np.testing.assert_allclose(model.log_likelihood_history_[0], total, rtol=1e-10)
    post = np.exp(lw - total)
    gamma = np.stack([np.bincount(paths[:, t], post, n_states) for t in range(n_time_bins)])
    np.testing.assert_allclose(model.means_, gamma.T @ X / gamma.sum(0)[:, None], atol=1e-9)
    counts = np.zeros((n_states, n_states))
    for t in range(1, n_time_bins):
        if not starts[t]:
            np.add.at(counts, (paths[:, t - 1], paths[:, t]), post)
    np.testing.assert_allclose(
        model.transition_prob_, counts / counts.sum(1, keepdims=True), atol=1e-9
    )
    if weight == 1.0:
        assert gamma[1, 2] == pytest.approx(1.0) and gamma[4, 0] == pytest.approx(1.0)


@pytest.mark.requires_x64
def test_arhmm_log_likelihood_is_evidence_conditioned_and_lag_labels_warn():
    rng = np.random.default_rng(4)
    n_states, n_time_bins = 2, 7
    pi = np.array([0.6, 0.4])
    trans = np.array([[0.9, 0.1], [0.2, 0.8]])
    coef = np.array([[[0.5]], [[-0.3]]])
    intercept = np.array([[0.0], [1.0]])
    cov = np.array([[[0.5]], [[1.0]]])
    X = rng.normal(size=(n_time_bins, 1))
    labels = np.array([1, -1, 1, -1, -1, 0, -1])  # frame 0 has no state (nlags=1)
    model = ARHMM(n_states, nlags=1, n_iter=1, progress_bar=False)
    model.setup(**_fixed(pi, trans, "ar_params_init", (coef, intercept, cov)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with pytest.warns(UserWarning, match="1 labelled frame.*first nlags=1 frames"):
            model.fit(X, labels=labels)
    y, x = X[1:, 0], X[:-1, 0]
    ll = np.stack(
        [
            multivariate_normal(0.0, cov[k, 0, 0]).logpdf(y - coef[k, 0, 0] * x - intercept[k, 0])
            for k in range(n_states)
        ],
        1,
    )
    paths = _paths(n_states, n_time_bins - 1)
    starts = np.r_[True, np.zeros(n_time_bins - 2, bool)]
    lj = _log_joint(paths, pi, trans, ll, starts)
    keep = (paths[:, 1] == 1) & (paths[:, 4] == 0)
    np.testing.assert_allclose(model.log_likelihood_history_[0], logsumexp(lj[keep]), rtol=1e-10)


@pytest.mark.requires_x64
def test_every_frame_labelled_gives_the_supervised_map():
    rng = np.random.default_rng(5)
    z = np.repeat([0, 1, 2, 1, 0, 2], 20)
    X = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]])[z] + rng.normal(size=(len(z), 2))
    model = GaussianHMM(3, "full", alpha=1.0, progress_bar=False).fit(X, labels=z)
    for k in range(3):
        np.testing.assert_allclose(model.means_[k], X[z == k].mean(0), atol=1e-9)
    counts = np.zeros((3, 3))
    np.add.at(counts, (z[:-1], z[1:]), 1.0)
    expected = (counts + 1.0 / 3) / (counts.sum(1, keepdims=True) + 1.0)
    np.testing.assert_allclose(model.transition_prob_, expected, atol=1e-9)
    assert model.converged_ and model.n_iter_ <= 3
    np.testing.assert_array_equal(model.predict(X)[:5], 0)


def test_label_weight_zero_is_the_unsupervised_fit(rng):
    X = np.r_[rng.normal(size=(100, 2)), rng.normal(size=(100, 2)) + 3.0]
    labels = np.full(200, -1)
    labels[[10, 150]] = [1, 0]
    free = GaussianHMM(2, "diag", progress_bar=False).fit(X)
    zero = GaussianHMM(2, "diag", progress_bar=False).fit(X, labels=labels, label_weight=0.0)
    np.testing.assert_array_equal(zero.means_, free.means_)
    np.testing.assert_array_equal(zero.log_likelihood_history_, free.log_likelihood_history_)
    tiny = GaussianHMM(2, "diag", progress_bar=False).setup(gaussian_params_init="kmeans")
    tiny.fit(X, labels=labels, label_weight=1e-6)
    np.testing.assert_allclose(tiny.means_, free.means_, atol=1e-4)


def test_gibbs_never_changes_a_labelled_frame(monkeypatch):
    truth = demo_arhmm(n_states=3, n_features=2, nlags=1, seed=0)
    X, z, _, _ = simulate_demo_sessions(truth, n_sessions=1, frames_per_session=400, seed=1)
    labels = np.full(len(X), -1)
    rows = np.arange(5, len(X), 37)
    labels[rows] = (z[rows] + 1) % 3  # labels the data disagree with: the clamp must still hold
    drawn = []
    original = ar_estimator.gibbs_sweep

    def spy(state, key, data, hyper, robust, method, block_size=None):
        new, ll = original(
            state, key, data, hyper, robust=robust, method=method, block_size=block_size
        )
        drawn.append(np.asarray(new.states))
        return new, ll

    monkeypatch.setattr(ar_estimator, "gibbs_sweep", spy)
    ARHMM(3, nlags=1, algorithm="gibbs", n_iter=15, progress_bar=False).fit(X, labels=labels)
    assert len(drawn) == 15
    for states in drawn:  # model frame i is input row i + 1 (one session, nlags=1)
        np.testing.assert_array_equal(states[rows - 1], labels[rows])


def _circle_truth(n_states=5):
    angle = np.linspace(0, 2 * np.pi, n_states, endpoint=False)
    truth = GaussianHMM(n_states=n_states, covariance_type="diag")
    truth.initial_prob_ = np.full(n_states, 1.0 / n_states)
    off = 0.05 / (n_states - 1)
    truth.transition_prob_ = np.full((n_states, n_states), off) + (0.95 - off) * np.eye(n_states)
    truth.means_ = 1.6 * np.c_[np.cos(angle), np.sin(angle)]
    truth.covariances_ = np.ones((n_states, 2))
    return truth


def _two_percent(z, seed):
    rng = np.random.default_rng(seed)
    labels = np.full(len(z), -1)
    rows = rng.choice(np.flatnonzero(z >= 0), len(z) // 50, replace=False)
    labels[rows] = z[rows]
    unlabelled = (labels < 0) & (z >= 0)
    return labels, unlabelled


def test_gaussian_recovery_with_two_percent_labels():
    """2 % hand labels: raw accuracy beats unsupervised + Hungarian; classes keep their names."""
    truth = _circle_truth()
    semi_acc, free_acc = [], []
    for seed in (0, 5, 6):
        X, z = truth.simulate(jax.random.key(seed), 3000)
        labels, unlabelled = _two_percent(z, seed)
        free = GaussianHMM(5, "diag", n_iter=200, progress_bar=False).fit(X)
        semi = GaussianHMM(5, "diag", n_iter=200, progress_bar=False).fit(X, labels=labels)
        zs = semi.predict(X)
        free_acc.append(state_accuracy(z[unlabelled], free.predict(X)[unlabelled]))
        semi_acc.append(float(np.mean(zs[unlabelled] == z[unlabelled])))
        report = segmentation_report(np.where(unlabelled, z, -1), zs, match=None)
        assert report["recall"].min() > 0.9  # every class is found under its own name
        assert semi_acc[-1] >= free_acc[-1] - 0.005
    assert np.mean(semi_acc) > np.mean(free_acc) + 0.02, (semi_acc, free_acc)


@pytest.mark.parametrize("algorithm", ["em", "gibbs"])
def test_arhmm_recovery_with_two_percent_labels(algorithm):
    semi_acc, free_acc = [], []
    for seed in (0, 1) if algorithm == "em" else (0,):
        truth = demo_arhmm(n_states=4, n_features=2, nlags=1, seed=seed)
        X, z, starts, _ = simulate_demo_sessions(
            truth, n_sessions=2, frames_per_session=1000, seed=seed + 10
        )
        labels, unlabelled = _two_percent(z, seed)
        kw = dict(nlags=1, kappa=20.0, progress_bar=False, algorithm=algorithm)
        if algorithm == "gibbs":
            kw["n_iter"] = 30
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            free = ARHMM(4, **kw).fit(X, session_starts=starts)
            semi = ARHMM(4, **kw).fit(X, session_starts=starts, labels=labels)
        zs = semi.predict(X, session_starts=starts)
        zf = free.predict(X, session_starts=starts)
        free_acc.append(state_accuracy(z[unlabelled], zf[unlabelled]))
        semi_acc.append(float(np.mean(zs[unlabelled] == z[unlabelled])))
        assert semi_acc[-1] > 0.9
    assert np.mean(semi_acc) > np.mean(free_acc) + 0.05, (semi_acc, free_acc)


def test_labels_are_routed_to_each_fold(rng):
    X = np.r_[rng.normal(size=(60, 2)), rng.normal(size=(60, 2)) + 3.0]
    labels = np.full(120, -1)
    labels[[5, 70]] = [0, 1]
    model = GaussianHMM(2, "diag", n_iter=20, progress_bar=False)
    with sklearn.config_context(enable_metadata_routing=True):
        out = cross_validate(model, X, cv=KFold(2), params={"labels": labels, "label_weight": 0.9})
    assert np.all(np.isfinite(out["test_score"]))
    # unrouted, the full-length labels do not fit a fold's frames
    with pytest.raises(ValueError, match="labels must have n_time_bins=60"):
        model.fit(X[:60], labels=labels)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"labels": np.zeros(10, int)}, ValueError, "labels must have n_time_bins=40"),
        ({"labels": np.full(40, 3)}, ValueError, r"labels must lie in \[-1, n_states\)"),
        ({"labels": np.full(40, -2)}, ValueError, "labels must lie"),
        ({"labels": np.full(40, -1), "label_weight": 1.5}, ValueError, "label_weight"),
        ({"labels": np.r_[0, np.full(39, -1)]}, ValueError, "labels frame 0, where X is NaN"),
    ],
)
@pytest.mark.parametrize("model", [GaussianHMM(2, progress_bar=False), ARHMM(2, nlags=1)])
def test_bad_labels_through_fit(model, kwargs, error, match, rng):
    X = rng.normal(size=(40, 2))
    X[0] = np.nan
    with pytest.raises(error, match=match):
        model.fit(X, **kwargs)


def test_class_names_are_kept_in_the_model_file(rng, tmp_path):
    from behavhmm import load_model

    X = np.r_[rng.normal(size=(60, 2)), rng.normal(size=(60, 2)) + 3.0]
    labels = np.full(120, -1)
    labels[[5, 70]] = [0, 1]
    model = GaussianHMM(3, "diag", n_iter=5, progress_bar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, labels=labels, class_names=["still", "run"])
    np.testing.assert_array_equal(model.class_names_, ["still", "run"])
    loaded = load_model(model.save_params(tmp_path / "m.npz"))
    np.testing.assert_array_equal(loaded.class_names_, ["still", "run"])
    with pytest.raises(ValueError, match="class_names must name the labelled classes"):
        model.fit(X, labels=labels, class_names=["still"])
    with pytest.raises(ValueError, match="must not repeat"):
        model.fit(X, labels=labels, class_names=["a", "a"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X)  # a refit without names forgets them
    assert not hasattr(model, "class_names_")


def test_relabel_by_usage_keeps_labelled_classes():
    from behavhmm.analysis import relabel_by_usage

    states = np.array([0, 1, 2, 2, 2, 3, 3, 3, 3, 1])
    _, order = relabel_by_usage(states, 4)
    np.testing.assert_array_equal(order, [3, 2, 1, 0])
    new, order = relabel_by_usage(states, 4, fixed=2)  # classes 0 and 1 stay, 3 before 2
    np.testing.assert_array_equal(order, [0, 1, 3, 2])
    np.testing.assert_array_equal(new, [0, 1, 3, 3, 3, 2, 2, 2, 2, 1])
