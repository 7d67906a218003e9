"""Hand labels in the GLM-HMM (brute force, recovery) and the keypoint SLDS (clamped chain)."""

from __future__ import annotations

import itertools
import warnings

import jax
import numpy as np
import pytest
from glmhmm_helpers import log_likelihoods, simulate, sticky
from scipy.special import logsumexp

from behavhmm import GLMHMM, KeypointSLDS
from behavhmm.analysis import segmentation_report, state_accuracy


@pytest.mark.requires_x64
@pytest.mark.parametrize("weight", [1.0, 0.7])
def test_glmhmm_em_step_conditions_on_labels(weight):
    rng = np.random.default_rng(6)
    n_time_bins, n_states = 7, 3
    X = rng.normal(size=(n_time_bins, 2))
    y = rng.poisson(1.5, n_time_bins).astype(float)
    coef = rng.normal(scale=0.5, size=(2, n_states))
    intercept = rng.normal(scale=0.3, size=n_states)
    scale = np.ones(n_states)
    initial, transition = np.array([0.5, 0.3, 0.2]), sticky(3, 0.8)
    starts = np.zeros(n_time_bins, bool)
    starts[[0, 4]] = True
    labels = np.array([-1, 1, -1, -1, -1, 2, -1])
    model = GLMHMM(n_states, observation_model="Poisson", maxiter=1, progress_bar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(
            X,
            y,
            init_params=(coef, intercept, scale, initial, transition),
            session_starts=starts,
            labels=labels,
            label_weight=weight,
        )
    ll = log_likelihoods("Poisson", X, y, coef, intercept, scale)
    paths = np.array(list(itertools.product(range(n_states), repeat=n_time_bins)))
    lw = ll[np.arange(n_time_bins), paths].sum(1)
    for t in range(n_time_bins):
        prev = paths[:, t - 1] if t else paths[:, 0]
        lw += np.log(initial[paths[:, t]]) if starts[t] else np.log(transition[prev, paths[:, t]])
        if labels[t] >= 0:
            with np.errstate(divide="ignore"):
                lw += np.where(paths[:, t] == labels[t], 0.0, np.log(1.0 - weight))
    np.testing.assert_allclose(model.log_likelihood_history_[0], logsumexp(lw), rtol=1e-10)
    post = np.exp(lw - logsumexp(lw))
    counts = np.zeros((n_states, n_states))
    for t in range(1, n_time_bins):
        if not starts[t]:
            np.add.at(counts, (paths[:, t - 1], paths[:, t]), post)
    np.testing.assert_allclose(
        model.transition_prob_, counts / counts.sum(1, keepdims=True), atol=1e-8
    )


def test_glmhmm_recovery_with_two_percent_labels():
    coef = np.array([[2.0, -2.0, 0.0], [0.0, 1.0, -2.0]])
    intercept = np.array([0.0, 0.5, -0.5])
    semi_acc, free_acc = [], []
    for seed in (0, 2):
        rng = np.random.default_rng(seed)
        X = rng.normal(size=(3000, 2))
        starts = np.zeros(3000, bool)
        starts[::500] = True
        y, z = simulate(
            rng,
            "Bernoulli",
            X,
            coef,
            intercept,
            np.ones(3),
            np.ones(3) / 3,
            sticky(3, 0.95),
            starts,
        )
        labels = np.full(3000, -1)
        rows = rng.choice(3000, 60, replace=False)
        labels[rows] = z[rows]
        unlabelled = labels < 0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            free = GLMHMM(3, progress_bar=False).fit(X, y, session_starts=starts)
            semi = GLMHMM(3, progress_bar=False).fit(X, y, session_starts=starts, labels=labels)
        zf = free.smooth_proba(X, y, session_starts=starts).argmax(1)
        zs = semi.smooth_proba(X, y, session_starts=starts).argmax(1)
        free_acc.append(state_accuracy(z[unlabelled], zf[unlabelled]))
        semi_acc.append(float(np.mean(zs[unlabelled] == z[unlabelled])))
        report = segmentation_report(np.where(unlabelled, z, -1), zs, match=None)
        assert report["recall"].min() > 0.8
        assert semi_acc[-1] >= free_acc[-1] - 0.005
    assert np.mean(semi_acc) > np.mean(free_acc), (semi_acc, free_acc)


@pytest.mark.slow  # over ~15 s; CI runs it in its slow step
def test_keypoint_slds_chain_never_changes_a_labelled_frame():
    from test_keypoint_slds import LATENT_DIM, N_FRAMES, N_STATES, NLAGS, _truth

    truth = _truth()
    starts = np.zeros(N_FRAMES, bool)
    starts[[0, 900]] = True
    sim = truth.simulate(jax.random.key(3), N_FRAMES, session_starts=starts)
    labels = np.full(N_FRAMES, -1)
    rows = np.arange(7, N_FRAMES, 53)
    labels[rows] = (np.maximum(sim.states[rows], 0) + 1) % N_STATES  # against the data
    labels[900] = 0  # a session's first frame: no state (nlags=1)
    model = KeypointSLDS(
        n_states=N_STATES,
        latent_dim=LATENT_DIM,
        nlags=NLAGS,
        kappa=100.0,
        n_iter_ar=3,
        n_iter=3,
        anterior_bodyparts=0,
        posterior_bodyparts=4,
        progress_bar=False,
        random_state=1,
    )
    with pytest.warns(UserWarning, match="1 labelled frame.*first nlags=1 frames"):
        model.fit(sim.keypoints, session_starts=starts, labels=labels)
    np.testing.assert_array_equal(model.states_[rows], labels[rows])
