"""Checkpoints record the hand labels: a resumed chain continues only with the same evidence."""

from __future__ import annotations

import warnings

import jax
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from behavhmm import ARHMM, KeypointSLDS
from behavhmm.datasets import demo_arhmm, simulate_demo_sessions
from behavhmm.models._checkpoints import labels_digest


@pytest.fixture(scope="module")
def ar_data():
    truth = demo_arhmm(n_states=3, n_features=2, nlags=1, stickiness=0.95, seed=2)
    X, z, starts, _ = simulate_demo_sessions(truth, n_sessions=2, frames_per_session=300, seed=5)
    labels = np.full(len(X), -1)
    rows = np.flatnonzero(z >= 0)[::40]
    labels[rows] = z[rows]
    return X, starts, labels


def test_labels_digest_tells_evidence_apart():
    ev = np.zeros((4, 3))
    ev[1] = [0.0, -np.inf, -np.inf]
    assert labels_digest(None) is None
    assert labels_digest(ev) == labels_digest(ev.astype(np.float32))  # precision-independent
    soft = ev.copy()
    soft[1, 1:] = np.log(0.5)
    assert labels_digest(soft) != labels_digest(ev)
    assert labels_digest(ev[:3]) != labels_digest(ev)
    assert labels_digest(np.zeros((2, 6))) != labels_digest(np.zeros((3, 4)))  # shape counts


@pytest.mark.parametrize("algorithm", ["em", "gibbs"])
def test_arhmm_resume_needs_the_same_labels(ar_data, tmp_path, algorithm):
    X, starts, labels = ar_data
    kw = dict(nlags=1, kappa=50.0, tol=0.0, algorithm=algorithm, random_state=3)
    kw["progress_bar"] = False
    path = tmp_path / "chain.npz"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        straight = ARHMM(3, n_iter=8, **kw).fit(X, session_starts=starts, labels=labels)
        ARHMM(3, n_iter=4, checkpoint_path=path, checkpoint_every=2, **kw).fit(
            X, session_starts=starts, labels=labels
        )
        resumed = ARHMM(3, n_iter=8, checkpoint_path=path, **kw).fit(
            X, session_starts=starts, labels=labels, resume=True
        )
        np.testing.assert_array_equal(resumed.coef_, straight.coef_)
        np.testing.assert_array_equal(
            resumed.log_likelihood_history_, straight.log_likelihood_history_
        )
        other = labels.copy()
        other[np.flatnonzero(labels >= 0)[0]] = (labels[labels >= 0][0] + 1) % 3
        for changed in (
            dict(labels=other),
            dict(labels=labels, label_weight=0.9),
            dict(labels=None),
        ):
            model = ARHMM(3, n_iter=8, checkpoint_path=path, **kw)
            with pytest.raises(ValueError, match="other labels.*labels, label_weight"):
                model.fit(X, session_starts=starts, resume=True, **changed)
        if algorithm == "gibbs":  # the unlabelled programs: checked once, with EM
            return
        # a chain checkpointed without labels does not continue with labels
        plain = tmp_path / "plain.npz"
        ARHMM(3, n_iter=4, checkpoint_path=plain, **kw).fit(X, session_starts=starts)
        with pytest.raises(ValueError, match="other labels"):
            ARHMM(3, n_iter=8, checkpoint_path=plain, **kw).fit(
                X, session_starts=starts, labels=labels, resume=True
            )
        ARHMM(3, n_iter=8, checkpoint_path=plain, **kw).fit(X, session_starts=starts, resume=True)


@pytest.mark.slow  # the labelled keypoint-SLDS programs compiled: 64 s under load
def test_keypoint_slds_resume_needs_the_same_labels(tmp_path):
    from test_keypoint_slds import LATENT_DIM, N_FRAMES, N_STATES, NLAGS, _truth

    starts = np.zeros(N_FRAMES, bool)
    starts[[0, 900]] = True
    sim = _truth().simulate(jax.random.key(3), N_FRAMES, session_starts=starts)
    X, st, z = sim.keypoints[:700], starts[:700], np.asarray(sim.states)[:700]
    labels = np.full(700, -1)
    rows = np.flatnonzero(z >= 0)[::35]
    labels[rows] = z[rows]
    kw = dict(
        n_states=N_STATES,
        latent_dim=LATENT_DIM,
        nlags=NLAGS,
        kappa=30.0,
        n_iter_ar=2,
        anterior_bodyparts=0,
        posterior_bodyparts=4,
        progress_bar=False,
        random_state=7,
    )
    path = tmp_path / "chain.npz"
    straight = KeypointSLDS(n_iter=6, **kw).fit(X, session_starts=st, labels=labels)
    KeypointSLDS(n_iter=3, checkpoint_path=path, **kw).fit(X, session_starts=st, labels=labels)
    resumed = KeypointSLDS(n_iter=6, checkpoint_path=path, **kw).fit(
        X, session_starts=st, labels=labels, resume=True
    )
    for name in ("coef_", "latents_", "states_", "log_likelihood_history_"):
        np.testing.assert_array_equal(getattr(resumed, name), getattr(straight, name), err_msg=name)
    np.testing.assert_array_equal(resumed.states_[rows], labels[rows])
    other = labels.copy()
    other[rows[0]] = (labels[rows[0]] + 1) % N_STATES
    for changed in (dict(labels=other), dict(labels=labels, label_weight=0.5), {}):
        with pytest.raises(ValueError, match="other labels.*labels, label_weight"):
            KeypointSLDS(n_iter=6, checkpoint_path=path, **kw).fit(
                X, session_starts=st, resume=True, **changed
            )
