"""Figures and numbers of docs/guide/glmhmm.md: GLM-HMMs of a real IBL mouse and a PsyTrack rat.

Reads the recordings from ../shared/data (or $BEHAVHMM_SHARED_DATA); writes PNGs
to docs/figures/ and the numbers quoted in the guide to docs/figures/glmhmm_choice.json.

    cd <repo> && PYTHONPATH=src /work/venv/bin/python docs/scripts/glmhmm_choice.py
"""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from behavhmm import GLMHMM  # noqa: E402
from behavhmm.analysis import (  # noqa: E402
    bits_per_trial,
    dwell_times,
    empirical_psychometric,
    permute_states,
    psychometric_curves,
    state_occupancy,
)
from behavhmm.datasets import load_ibl_choices, load_psytrack_rat  # noqa: E402
from behavhmm.fitting import EMConvergenceWarning  # noqa: E402
from behavhmm.model_selection import SessionKFold  # noqa: E402
from behavhmm.plotting import plot_glm_weights, plot_psychometric, plot_state_occupancy  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("BEHAVHMM_SHARED_DATA", REPO.parent / "shared" / "data"))
FIGURES = REPO / "docs" / "figures"
N_FOLDS = 5


def make_model(n_states):
    """The model of the guide: Bernoulli GLM-HMM, weak Ridge, sticky Dirichlet prior, 3 restarts."""
    alpha = np.ones((n_states, n_states)) + 9.0 * np.eye(n_states) if n_states > 1 else None
    return GLMHMM(
        n_states,
        regularizer_strength=0.5,
        dirichlet_transition_proba=alpha,
        tol=1e-6,
        n_init=3,
        progress_bar=False,
    ).setup(glm_params_init_kwargs={"std_dev": 1.0})


def held_out_bits(data, states=(1, 2, 3)):
    """Held-out log-likelihood gain over the 1-state GLM, bits/trial, whole-session folds."""
    ll = {k: 0.0 for k in states}
    n_test = 0
    for train, test in SessionKFold(N_FOLDS, shuffle=True, random_state=0).split(
        data.X, session_starts=data.session_starts
    ):
        n_test += len(test)
        for k in states:
            model = make_model(k).fit(
                data.X[train], data.y[train], session_starts=data.session_starts[train]
            )
            ll[k] += model.score(
                data.X[test], data.y[test], session_starts=data.session_starts[test]
            )
    return {k: bits_per_trial(ll[k], ll[1], n_test) for k in states}, {k: ll[k] for k in states}


def describe(name, data, stimulus_cols, state_names):
    t0 = time.perf_counter()
    gains, ll = held_out_bits(data)
    model = make_model(3).fit(data.X, data.y, session_starts=data.session_starts)
    # order the states: the most stimulus-driven first
    w = np.asarray(model.coef_)
    order = np.argsort(-np.abs(w[stimulus_cols]).sum(axis=0))
    model = permute_states(model, order)
    post = model.smooth_proba(data.X, data.y, session_starts=data.session_starts)
    occupancy = state_occupancy(post, data.session_starts)
    summary = {
        "n_trials": int(len(data.y)),
        "n_sessions": int(data.session_starts.sum()),
        "feature_names": data.feature_names,
        "held_out_bits_per_trial_vs_1_state": {str(k): v for k, v in gains.items()},
        "held_out_log_likelihood": {str(k): v for k, v in ll.items()},
        "coef": np.asarray(model.coef_).round(3).tolist(),
        "intercept": np.asarray(model.intercept_).round(3).tolist(),
        "transition_prob": np.asarray(model.transition_prob_).round(4).tolist(),
        "dwell_times_trials": dwell_times(model.transition_prob_).round(1).tolist(),
        "fraction_of_trials": np.nanmean(np.asarray(post), axis=0).round(3).tolist(),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    # figures
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.3))
    plot_glm_weights(model, feature_names=data.feature_names, state_names=state_names, ax=axes[0])
    curves = psychometric_curves(model, stimulus=stimulus_cols[0])
    emp = (
        empirical_psychometric(
            model, data.X, data.y, stimulus=stimulus_cols[0], session_starts=data.session_starts
        )
        if name == "ibl"
        else None
    )
    plot_psychometric(
        curves,
        empirical=emp,
        state_names=state_names,
        ax=axes[1],
        xlabel=data.feature_names[stimulus_cols[0]],
    )
    plot_state_occupancy(occupancy, state_names=state_names, ax=axes[2])
    fig.tight_layout()
    fig.savefig(FIGURES / f"glmhmm-{name}.png", dpi=90)
    plt.close(fig)
    return summary


def main():
    FIGURES.mkdir(parents=True, exist_ok=True)
    warnings.simplefilter("ignore", EMConvergenceWarning)
    out = {
        "ibl": describe(
            "ibl", load_ibl_choices(DATA), [0], ["engaged", "history-driven", "low-stimulus"]
        ),
        "rat": describe(
            "rat", load_psytrack_rat(DATA), [0, 1], ["engaged", "low-stimulus", "history-driven"]
        ),
    }
    (FIGURES / "glmhmm_choice.json").write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
