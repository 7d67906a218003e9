"""Write the v0.1 model files and their expected predictions (run once, from the repository root).

The files in this folder were written by behavhmm at commit f6aabd6 (the state of main before
the estimator-skeleton refactor of issue 13). tests/test_model_files.py loads each with today's
code and checks that its predictions equal the stored ones, so a refactor cannot silently change
the model-file format or what a saved model predicts.

    PYTHONPATH=src python tests/data/model_files_v0_1/make_files.py
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from behavhmm import ARHMM, GLMHMM, GaussianHMM, KeypointSLDS

HERE = Path(__file__).parent


def inputs():
    """The small inputs each model is fitted on and predicts on: (name -> dict of arrays)."""
    rng = np.random.default_rng(0)
    starts = np.zeros(120, bool)
    starts[[0, 70]] = True
    # ARHMM / GaussianHMM: a 2-feature random walk with two regimes
    t = np.arange(120)
    X = np.stack([np.sin(t / 5.0), np.cos(t / 7.0)], 1) + 0.3 * rng.normal(size=(120, 2))
    # GLMHMM: 3 regressors, Bernoulli choices
    Xg = rng.normal(size=(120, 3))
    yg = (rng.uniform(size=120) < 1 / (1 + np.exp(-Xg @ np.array([1.5, -1.0, 0.5])))).astype(float)
    # KeypointSLDS: 5 keypoints in 2-D wandering around a body
    body = rng.normal(size=(1, 5, 2)) * 3.0
    drift = np.cumsum(0.2 * rng.normal(size=(120, 1, 2)), axis=0)
    kp = body + drift + 0.2 * rng.normal(size=(120, 5, 2))
    conf = rng.uniform(0.5, 1.0, size=(120, 5))
    return dict(X=X, starts=starts, Xg=Xg, yg=yg, kp=kp, conf=conf)


def models(d):
    """Fit each model (tiny fits) and return name -> (model, prediction arguments)."""
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out["arhmm_em"] = ARHMM(n_states=2, nlags=1, n_iter=5, progress_bar=False).fit(
            d["X"], session_starts=d["starts"]
        )
        out["arhmm_gibbs"] = ARHMM(
            n_states=3, nlags=1, algorithm="gibbs", kappa=50.0, n_iter=5, progress_bar=False
        ).fit(d["X"], session_starts=d["starts"])
        out["glmhmm"] = GLMHMM(2, observation_model="Bernoulli", maxiter=5, progress_bar=False).fit(
            d["Xg"], d["yg"], session_starts=d["starts"]
        )
        out["gaussian_hmm"] = GaussianHMM(n_states=2, n_iter=5, progress_bar=False).fit(
            d["X"], session_starts=d["starts"]
        )
        out["keypoint_slds"] = KeypointSLDS(
            n_states=2, latent_dim=2, nlags=1, n_iter_ar=3, n_iter=3, progress_bar=False
        ).fit(d["kp"], confidence=d["conf"], session_starts=d["starts"])
    return out


def predictions(name, model, d):
    """The predictions compared after loading: name -> array."""
    if name == "glmhmm":
        args, kw = (d["Xg"], d["yg"]), {"session_starts": d["starts"]}
    elif name == "keypoint_slds":
        args, kw = (d["kp"],), {"confidence": d["conf"], "session_starts": d["starts"]}
    else:
        args, kw = (d["X"],), {"session_starts": d["starts"]}
    return {
        "score": np.asarray(model.score(*args, **kw)),
        "smooth_proba": np.asarray(model.smooth_proba(*args, **kw)),
        "filter_proba": np.asarray(model.filter_proba(*args, **kw)),
        "decode_state": np.asarray(model.decode_state(*args, **kw, state_format="index")),
    }


if __name__ == "__main__":
    d = inputs()
    np.savez(HERE / "inputs.npz", **d)
    for name, model in models(d).items():
        model.save_params(HERE / f"{name}.npz")
        np.savez(HERE / f"{name}_expected.npz", **predictions(name, model, d))
        print(name, "written")
