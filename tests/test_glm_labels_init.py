"""GLMHMM's "labels" initializer: each labelled class's GLM from its hand-labelled frames."""

from __future__ import annotations

import warnings

import jax
import numpy as np
import pytest
from glmhmm_helpers import simulate, sticky

from behavhmm import GLMHMM
from behavhmm.analysis import state_accuracy
from behavhmm.models.glmhmm.initialize_labels import labels_glm_params_init, labels_scale_init
from behavhmm.observations.glm import logistic

COEF = np.array([[2.5, -2.5, 0.0], [0.0, 1.5, -2.5]])  # (n_features, n_states)
INTERCEPT = np.array([0.0, 0.5, -0.5])
N_FRAMES = 3000


def _data(seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N_FRAMES, 2))
    starts = np.zeros(N_FRAMES, bool)
    starts[::500] = True
    y, z = simulate(
        rng, "Bernoulli", X, COEF, INTERCEPT, np.ones(3), np.ones(3) / 3, sticky(3, 0.95), starts
    )
    labels = np.full(N_FRAMES, -1)
    rows = rng.choice(N_FRAMES, N_FRAMES // 50, replace=False)  # 2 % of the frames
    labels[rows] = z[rows]
    return X, y, z, starts, labels


def test_labelled_classes_start_from_their_frames_and_free_states_from_random():
    X, y, z, _, labels = _data(0)
    labels = np.where(labels == 2, -1, labels)  # class 2 unlabelled: a free state
    coef, intercept = labels_glm_params_init(
        3, X, y, logistic, "Bernoulli", labels=labels, random_key=jax.random.key(1)
    )
    for c in (0, 1):  # nearer its own class's true weights than any other state's
        dist = np.linalg.norm(COEF - coef[:, [c]], axis=0)
        assert dist.argmin() == c, (c, coef, dist)
    assert np.max(np.abs(coef[:, 2])) < 0.01  # "random": std_dev 0.001
    mean = y.mean()
    np.testing.assert_allclose(intercept[2], np.log(mean / (1 - mean)), rtol=1e-6)
    np.testing.assert_array_equal(
        labels_scale_init(3, X, y, logistic, "Bernoulli", labels=labels), np.ones(3)
    )
    with pytest.raises(ValueError, match='glm_params_init="labels" needs labels'):
        labels_glm_params_init(3, X, y, logistic, "Bernoulli")
    with pytest.raises(ValueError, match="labels must have one entry per frame"):
        labels_glm_params_init(3, X, y, logistic, "Bernoulli", labels=labels[:-1])


def test_fit_with_labels_uses_the_labels_initializer_unless_setup_chose_another(monkeypatch):
    from behavhmm.models.glmhmm import initialize_labels

    X, y, _, starts, labels = _data(1)
    calls = []
    original = initialize_labels.fit_weighted_glms
    monkeypatch.setattr(
        initialize_labels,
        "fit_weighted_glms",
        lambda *a, **k: calls.append(1) or original(*a, **k),
    )
    kw = dict(maxiter=2, progress_bar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        GLMHMM(3, **kw).fit(X, y, session_starts=starts, labels=labels)
        assert len(calls) == 2  # glm_params_init and scale_init
        GLMHMM(3, **kw).setup(glm_params_init="random", scale_init="constant").fit(
            X, y, session_starts=starts, labels=labels
        )
        assert len(calls) == 2
        GLMHMM(3, **kw).fit(X, y, session_starts=starts)  # no labels: the defaults
        assert len(calls) == 2


@pytest.mark.slow  # a recovery study: three seeds, two fits each
def test_recovery_with_two_percent_labels_at_least_as_good_as_the_default_init():
    results = {"labels": [], "random": [], "free": []}
    for seed in (0, 2, 3):
        X, y, z, starts, labels = _data(seed)
        unlabelled = labels < 0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            semi = GLMHMM(3, progress_bar=False).fit(X, y, session_starts=starts, labels=labels)
            semi_random = (
                GLMHMM(3, progress_bar=False)
                .setup(glm_params_init="random", scale_init="constant")
                .fit(X, y, session_starts=starts, labels=labels)
            )
            free = GLMHMM(3, progress_bar=False).fit(X, y, session_starts=starts)
        for name, model in (("labels", semi), ("random", semi_random)):
            zs = model.smooth_proba(X, y, session_starts=starts).argmax(1)
            results[name].append(float(np.mean(zs[unlabelled] == z[unlabelled])))  # no permutation
        zf = free.smooth_proba(X, y, session_starts=starts).argmax(1)
        results["free"].append(state_accuracy(z[unlabelled], zf[unlabelled]))  # Hungarian
        # class identities kept: each state's weights nearest the true weights of its class
        dist = np.linalg.norm(COEF[:, :, None] - semi.coef_[:, None, :], axis=0)
        np.testing.assert_array_equal(dist.argmin(axis=0), [0, 1, 2])
        assert results["labels"][-1] >= results["random"][-1] - 0.005, results
        assert results["labels"][-1] >= results["free"][-1] - 0.005, results
    assert np.mean(results["labels"]) > 0.85, results
