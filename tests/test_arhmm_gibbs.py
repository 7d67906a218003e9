"""ARHMM Gibbs sampler and the MoSeq features: recovery, kappa, robust, groups, whitening,
checkpoints."""

from __future__ import annotations

import warnings

import jax
import numpy as np
import pytest

from behavhmm import ARHMM
from behavhmm.analysis import state_accuracy
from behavhmm.datasets import demo_arhmm, simulate_demo_sessions

# shared shapes keep the number of compiled sweeps small
GIBBS = dict(
    n_states=8,
    nlags=1,
    algorithm="gibbs",
    alpha=5.7,
    gamma=1000.0,
    progress_bar=False,
    check_every=25,
)


def median_run(z, starts):
    runs = []
    for a, b in zip(
        np.flatnonzero(starts), list(np.flatnonzero(starts)[1:]) + [len(z)], strict=True
    ):
        seg = z[a:b]
        seg = seg[seg >= 0]
        if len(seg):
            cuts = np.flatnonzero(np.diff(seg) != 0)
            runs += list(np.diff(np.concatenate([[-1], cuts, [len(seg) - 1]])))
    return float(np.median(runs))


@pytest.fixture(scope="module")
def sticky_data():
    truth = demo_arhmm(n_states=3, n_features=2, nlags=1, stickiness=0.95, seed=2)
    X, z, starts, _ = simulate_demo_sessions(truth, n_sessions=3, frames_per_session=700, seed=5)
    return X, z, starts, truth


@pytest.fixture(scope="module")
def gibbs_fit(sticky_data):
    X, _, starts, _ = sticky_data
    return ARHMM(kappa=200.0, n_iter=150, **GIBBS).fit(X, session_starts=starts)


def test_gibbs_recovers_used_states_and_median_duration(sticky_data, gibbs_fit):
    X, z_true, starts, _ = sticky_data
    z = gibbs_fit.predict(X, session_starts=starts)
    usage = np.bincount(z[z >= 0], minlength=8) / np.sum(z >= 0)
    assert np.sum(usage > 0.02) == 3  # 3 true states among 8 available
    assert state_accuracy(z_true, z) > 0.95
    true_median = median_run(z_true, starts)
    assert abs(median_run(z, starts) - true_median) <= 0.35 * true_median
    # the chain's own diagnostics
    assert gibbs_fit.check_iterations_.tolist() == [25, 50, 75, 100, 125, 150]
    assert abs(gibbs_fit.median_duration_history_[-1] - true_median) <= 0.35 * true_median
    assert gibbs_fit.log_likelihood_history_.shape == (150,)
    assert gibbs_fit.log_likelihood_history_[-1] > gibbs_fit.log_likelihood_history_[0]
    assert np.all(np.isfinite(gibbs_fit.log_joint_history_))
    assert gibbs_fit.beta_.shape == (8,) and np.isclose(gibbs_fit.beta_.sum(), 1.0, atol=1e-5)
    assert not gibbs_fit.converged_ and gibbs_fit.n_iter_ == 150


def test_larger_kappa_gives_longer_syllables():
    # overlapping states (3x the noise), so the prior's stickiness matters
    truth = demo_arhmm(n_states=3, n_features=2, nlags=1, stickiness=0.95, seed=2)
    truth.covariances_ = truth.covariances_ * 9.0
    X, _, starts, _ = simulate_demo_sessions(truth, n_sessions=3, frames_per_session=700, seed=5)
    medians = [
        ARHMM(kappa=kappa, n_iter=60, **GIBBS)
        .fit(X, session_starts=starts)
        .median_duration_history_[-1]
        for kappa in (1.0, 1e2, 1e4)
    ]
    assert medians[0] < medians[1] < medians[2]
    assert medians[2] > 2.0 * medians[0]


def test_same_seed_same_chain_and_resume_is_bit_identical(sticky_data, tmp_path):
    X, _, starts, _ = sticky_data
    straight = ARHMM(kappa=200.0, n_iter=40, random_state=3, **GIBBS).fit(X, session_starts=starts)
    again = ARHMM(kappa=200.0, n_iter=40, random_state=3, **GIBBS).fit(X, session_starts=starts)
    np.testing.assert_array_equal(straight.coef_, again.coef_)
    other = ARHMM(kappa=200.0, n_iter=40, random_state=4, **GIBBS).fit(X, session_starts=starts)
    assert not np.array_equal(straight.coef_, other.coef_)

    path = tmp_path / "chain.npz"
    first = ARHMM(
        kappa=200.0, n_iter=15, random_state=3, checkpoint_path=path, checkpoint_every=5, **GIBBS
    )
    first.fit(X, session_starts=starts)
    resumed = ARHMM(
        kappa=200.0, n_iter=40, random_state=3, checkpoint_path=path, checkpoint_every=5, **GIBBS
    )
    resumed.fit(X, session_starts=starts, resume=True)
    for name in (
        "coef_",
        "intercept_",
        "covariances_",
        "transition_prob_",
        "initial_prob_",
        "beta_",
    ):
        np.testing.assert_array_equal(getattr(resumed, name), getattr(straight, name), err_msg=name)
    np.testing.assert_array_equal(resumed.log_likelihood_history_, straight.log_likelihood_history_)
    # the interrupted run also took diagnostics at its last sweep (15); the common ones agree
    assert resumed.check_iterations_.tolist() == [15, 25, 40]
    np.testing.assert_array_equal(resumed.log_joint_history_[1:], straight.log_joint_history_)
    # a checkpoint does not resume another fit
    with pytest.raises(ValueError, match="does not match this fit"):
        ARHMM(kappa=300.0, n_iter=40, random_state=3, checkpoint_path=path, **GIBBS).fit(
            X, session_starts=starts, resume=True
        )
    with pytest.raises(ValueError, match="does not match this fit"):
        ARHMM(kappa=200.0, n_iter=40, random_state=3, checkpoint_path=path, **GIBBS).fit(
            X[:-10], session_starts=starts[:-10], resume=True
        )
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        ARHMM(kappa=200.0, n_iter=40, checkpoint_path=tmp_path / "none.npz", **GIBBS).fit(
            X, session_starts=starts, resume=True
        )


def test_em_checkpoint_resume_is_bit_identical(sticky_data, tmp_path):
    X, _, starts, _ = sticky_data
    kw = dict(n_states=3, nlags=1, kappa=50.0, tol=0.0, progress_bar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        straight = ARHMM(n_iter=12, **kw).fit(X, session_starts=starts)
        path = tmp_path / "em.npz"
        ARHMM(n_iter=5, checkpoint_path=path, checkpoint_every=5, **kw).fit(
            X, session_starts=starts
        )
        resumed = ARHMM(n_iter=12, checkpoint_path=path, **kw).fit(
            X, session_starts=starts, resume=True
        )
    np.testing.assert_array_equal(resumed.coef_, straight.coef_)
    np.testing.assert_array_equal(resumed.log_joint_history_, straight.log_joint_history_)


@pytest.mark.parametrize("algorithm", ["em", "gibbs"])
def test_robust_emissions_resist_outliers(sticky_data, algorithm):
    """Glitches of ~15 noise sd on 3% of frames: from the true parameters, Gaussian fits
    turn a state into an outlier sink; Student-t fits keep the states and their noise."""
    from behavhmm.analysis import match_states

    X, z_true, starts, truth = sticky_data
    rng = np.random.default_rng(0)
    Xo = X.copy()
    frames = rng.choice(np.setdiff1d(np.arange(len(X)), np.flatnonzero(starts)), 60, replace=False)
    Xo[frames] += rng.normal(scale=3.0, size=(60, 2))
    clean = np.setdiff1d(np.arange(len(X)), np.concatenate([frames, frames + 1]))

    def start_at_truth(n_states, X, session_starts, random_key, **kwargs):
        return truth.coef_, truth.intercept_, truth.covariances_

    acc, cov_err = {}, {}
    for robust in (False, True):
        m = ARHMM(
            n_states=3,
            nlags=1,
            algorithm=algorithm,
            kappa=200.0,
            n_iter=60,
            robust=robust,
            progress_bar=False,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m.setup(ar_params_init=start_at_truth).fit(Xo, session_starts=starts)
        z = m.predict(Xo, session_starts=starts)
        perm = match_states(z_true, z, 3)
        acc[robust] = state_accuracy(z_true[clean], z[clean])
        cov_err[robust] = (
            np.abs(m.covariances_[perm] - truth.covariances_).max()
            / np.abs(truth.covariances_).max()
        )
        if robust:
            assert m.dof_.shape == (3,) and np.all((m.dof_ >= 1.0) & (m.dof_ <= 1000.0))
    assert acc[True] > 0.9 and acc[True] > acc[False] + 0.1
    assert cov_err[True] < 0.5 and cov_err[False] > 5.0


@pytest.mark.requires_x64
def test_robust_em_log_joint_never_decreases(sticky_data):
    X, _, starts, _ = sticky_data
    rng = np.random.default_rng(1)
    Xo = X + rng.standard_t(3, size=X.shape) * 0.2
    m = ARHMM(n_states=3, nlags=1, kappa=50.0, robust=True, n_iter=25, tol=0.0, progress_bar=False)
    with pytest.warns(Warning, match="did not converge"):
        m.fit(Xo, session_starts=starts)
    lj = m.log_joint_history_
    assert np.all(np.diff(lj) >= -1e-8 * np.abs(lj[1:]))
    assert np.all((m.dof_ >= 1.0) & (m.dof_ <= 1000.0))


@pytest.mark.slow  # over ~15 s; CI runs it in its slow step
def test_separate_trans_recovers_each_groups_matrix():
    base = demo_arhmm(n_states=2, n_features=2, nlags=1, seed=3)
    sticky, flighty = base.transition_prob_.copy(), base.transition_prob_.copy()
    sticky[:] = [[0.98, 0.02], [0.02, 0.98]]
    flighty[:] = [[0.80, 0.20], [0.20, 0.80]]
    pieces, labels = [], []
    for i, (trans, label) in enumerate(
        [(sticky, "wt"), (flighty, "ko"), (sticky, "wt"), (flighty, "ko")]
    ):
        base.transition_prob_ = trans
        Xi, _ = base.simulate(jax.random.key(i), 1500)
        pieces.append(Xi)
        labels.append(label)
    X = np.concatenate(pieces)
    starts = np.zeros(len(X), bool)
    starts[::1500] = True
    for algorithm in ("em", "gibbs"):
        kw = dict(
            n_states=2,
            nlags=1,
            kappa=0.0 if algorithm == "em" else 1.0,
            alpha=1.0,
            separate_trans=True,
            algorithm=algorithm,
            n_iter=60,
            progress_bar=False,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = ARHMM(**kw).fit(X, session_starts=starts, groups=labels)
        assert list(m.groups_) == ["ko", "wt"]
        assert m.transition_prob_.shape == (2, 2, 2)
        stay_ko = np.diag(m.transition_prob_[0]).mean()
        stay_wt = np.diag(m.transition_prob_[1]).mean()
        assert abs(stay_ko - 0.80) < 0.04 and abs(stay_wt - 0.98) < 0.01, (
            algorithm,
            stay_ko,
            stay_wt,
        )
        # predictions need the groups, and use each group's matrix
        with pytest.raises(ValueError, match="pass groups"):
            m.score(X, session_starts=starts)
        with pytest.raises(ValueError, match="unknown to this model"):
            m.score(X, session_starts=starts, groups=["wt", "het", "wt", "ko"])
        swapped = m.score(X, session_starts=starts, groups=["ko", "wt", "ko", "wt"])
        assert m.score(X, session_starts=starts, groups=labels) > swapped + 50.0


def test_whiten_all_reports_the_likelihood_of_the_raw_data(sticky_data):
    X, _, starts, _ = sticky_data
    scale = np.array([[30.0, 5.0], [0.0, 0.2]])
    Xr = X @ scale.T + np.array([400.0, -3.0])  # pixels-like units
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = ARHMM(n_states=3, nlags=1, kappa=50.0, whiten="all", n_iter=30, progress_bar=False).fit(
            Xr, session_starts=starts
        )
    mean, W = m.whiten_mean_, m.whiten_matrix_
    np.testing.assert_allclose(np.cov(((Xr - mean) @ W.T).T), np.eye(2), atol=1e-6)
    # the same model written in raw units: y = W^-1 y_w + mean
    Winv = np.linalg.inv(W)
    raw = ARHMM(n_states=3, nlags=1)
    raw.initial_prob_, raw.transition_prob_ = m.initial_prob_, m.transition_prob_
    raw.coef_ = np.einsum("de,kef,fg->kdg", Winv, m.coef_, W)
    raw.intercept_ = (Winv @ m.intercept_.T).T + mean - np.einsum("kde,e->kd", raw.coef_, mean)
    raw.covariances_ = np.einsum("de,kef,gf->kdg", Winv, m.covariances_, Winv)
    np.testing.assert_allclose(
        m.score(Xr, session_starts=starts), raw.score(Xr, session_starts=starts), rtol=1e-4
    )
    np.testing.assert_array_equal(
        m.predict(Xr, session_starts=starts), raw.predict(Xr, session_starts=starts)
    )
    # simulate maps back to the data's units
    Xs, _ = m.simulate(jax.random.key(0), 3000)
    assert abs(Xs[:, 0].mean() - Xr[:, 0].mean()) < 0.3 * Xr[:, 0].std()


def test_whiten_each_session_is_invariant_to_per_session_offsets(sticky_data):
    X, _, starts, _ = sticky_data
    shifted = X.copy()
    first = np.flatnonzero(starts)
    shifted[first[1] : first[2]] = shifted[first[1] : first[2]] * 3.0 + 10.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = ARHMM(n_states=3, nlags=1, kappa=50.0, whiten="each", n_iter=20, progress_bar=False)
        z_a = m.fit(X, session_starts=starts).predict(X, session_starts=starts)
        z_b = m.predict(shifted, session_starts=starts)
    np.testing.assert_array_equal(z_a, z_b)


def test_heldout_histories(sticky_data):
    X, _, starts, _ = sticky_data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = ARHMM(
            n_states=3,
            nlags=1,
            kappa=50.0,
            n_iter=20,
            tol=0.0,
            check_every=5,
            heldout_fraction=0.2,
            progress_bar=False,
        ).fit(X, session_starts=starts)
    assert m.check_iterations_.tolist() == [5, 10, 15, 20]
    assert m.heldout_log_likelihood_history_.shape == (4,)
    assert np.all(np.isfinite(m.heldout_log_likelihood_history_))
    by_session = ARHMM(
        n_states=3,
        nlags=1,
        kappa=50.0,
        n_iter=40,
        check_every=10,
        heldout_fraction=0.34,
        heldout_by="sessions",
        **{k: v for k, v in GIBBS.items() if k not in ("n_states", "nlags", "check_every")},
    )
    by_session.fit(X, session_starts=starts)
    assert by_session.heldout_log_likelihood_history_.shape == (4,)
    # held-out frames are not used for training: they score a similar log-likelihood per frame
    per_frame_train = by_session.log_likelihood_history_[-1] / (2 * 699)
    per_frame_held = by_session.heldout_log_likelihood_history_[-1] / 699
    assert abs(per_frame_held - per_frame_train) < 0.5
    with pytest.raises(ValueError, match="holds out nothing"):
        ARHMM(n_states=3, nlags=1, heldout_fraction=0.001, progress_bar=False).fit(
            X, session_starts=starts
        )


def test_target_duration_tunes_kappa(sticky_data):
    X, _, starts, _ = sticky_data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = ARHMM(
            n_states=8, nlags=1, kappa=1.0, n_iter=15, target_duration=40.0, progress_bar=False
        ).fit(X, session_starts=starts)
    assert m.kappa_ > 1.0
    assert m.kappa == 1.0  # the hyperparameter is untouched; kappa_ holds the value used
    dur = m.kappa_search_["median_duration"][np.argmin(np.abs(m.kappa_search_["kappa"] - m.kappa_))]
    assert abs(dur - 40.0) <= 0.25 * 40.0


def test_gibbs_model_files_round_trip(gibbs_fit, sticky_data, tmp_path):
    from behavhmm import load_model

    X, _, starts, _ = sticky_data
    loaded = load_model(gibbs_fit.save_params(tmp_path / "g.npz"))
    np.testing.assert_array_equal(loaded.beta_, gibbs_fit.beta_)
    np.testing.assert_array_equal(
        loaded.predict(X, session_starts=starts), gibbs_fit.predict(X, session_starts=starts)
    )


def test_gibbs_hyperparameter_errors(sticky_data):
    X, _, starts, _ = sticky_data
    with pytest.raises(ValueError, match="algorithm must be one of"):
        ARHMM(algorithm="vb").fit(X)
    with pytest.raises(ValueError, match="separate_trans=True needs groups"):
        ARHMM(n_states=2, nlags=1, separate_trans=True, progress_bar=False).fit(
            X, session_starts=starts
        )
    with pytest.raises(ValueError, match="one label per session"):
        ARHMM(n_states=2, nlags=1, separate_trans=True, progress_bar=False).fit(
            X, session_starts=starts, groups=["a", "b"]
        )
    with pytest.raises(ValueError, match="whiten must be one of"):
        ARHMM(whiten="zca").fit(X)
    with pytest.raises(ValueError, match="resume=True needs checkpoint_path"):
        ARHMM(n_states=2, nlags=1).fit(X, resume=True)


@pytest.mark.slow  # 14-17 s each: two chains, two compiled sweeps (the default run checks the
# sampler itself: test_inference_sessions.py)
@pytest.mark.requires_x64
@pytest.mark.parametrize("separate_trans", [False, True])
def test_gibbs_chain_is_the_same_with_sessions_side_by_side(
    sticky_data, monkeypatch, separate_trans
):
    """The sweep's sampler on rows (K >= 24 on a CPU, any K on GPUs) = the one-axis sampler.

    The padding frames join the last session's row; every start still resets, so the
    frames of the sessions draw the same states, and the chain is the same.
    """
    from behavhmm.inference import _sessions

    X, _, starts, _ = sticky_data
    groups = ["a", "b", "a"] if separate_trans else None
    kw = dict(GIBBS, kappa=50.0, n_iter=4, random_state=7, separate_trans=separate_trans)
    fits = []
    for side_by_side in (False, True):
        monkeypatch.setattr(_sessions, "SIDE_BY_SIDE", side_by_side)
        fits.append(ARHMM(**kw).fit(X, session_starts=starts, groups=groups))
    one_axis, rows = fits
    np.testing.assert_allclose(rows.transition_prob_, one_axis.transition_prob_, rtol=1e-9)
    np.testing.assert_allclose(rows.coef_, one_axis.coef_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(
        rows.log_likelihood_history_, one_axis.log_likelihood_history_, rtol=1e-10
    )
    # the plan really was used: with rows off there is none
    monkeypatch.setattr(_sessions, "SIDE_BY_SIDE", False)
    from behavhmm.models.arhmm._data import sampler_rows

    data = rows._prepare(X, starts, groups=groups).arrays["ar"]
    assert sampler_rows(data, 8) is None
    monkeypatch.setattr(_sessions, "SIDE_BY_SIDE", None)
    assert (sampler_rows(data, 8) is None) == (jax.default_backend() == "cpu")
    assert sampler_rows(data, 100) is not None
