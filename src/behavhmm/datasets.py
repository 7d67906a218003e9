"""Example data: the recording bundled for ``behavhmm demo``, known models to simulate from, real
choice data.

One real recording ships inside the package (`demo_recording`): DeepLabCut's
open-field mouse (MIT licence, attribution in
``behavhmm/data/dlc_openfield_mouse/README.md``). The choice loaders read the
public recordings of ``../shared/data`` (or any folder holding the same
files); those data are never copied into behavhmm.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import jax
import numpy as np

from .models import ARHMM

__all__ = [
    "DEMO_RECORDING_FPS",
    "DEMO_KEYPOINT_SETTINGS",
    "demo_recording",
    "demo_arhmm",
    "simulate_demo_sessions",
    "demo_keypoint_slds",
    "ChoiceData",
    "load_ibl_choices",
    "load_psytrack_rat",
]


#: Frame rate of the bundled recording (the video's MP4 header; the .h5 file does not state it).
DEMO_RECORDING_FPS = 30.0

#: The ``KeypointSLDS`` settings of ``behavhmm demo`` on the bundled recording. ``latent_dim``: 4
#: keypoints in 2-D leave (4 - 1) x 2 = 6 centred dimensions, one of them removed by the heading
#: alignment; 4 PCs keep 98.9 % of the aligned pose variance. ``kappa`` is chosen as
#: keypoint-moseq's tutorial does, for a median syllable duration near 400 ms: a scan of the full
#: model over kappa = 1 ... 1e4 with three seeds (``docs/scripts/demo_kappa.py``, which reproduces
#: it; results in ``docs/figures/demo_kappa_scan.json``) gives 233-400 ms at kappa = 10 (367 ms,
#: 8 syllables in >= 2 % of the frames, with seed 0), 433-667 ms at 100 and 0.9-1.2 s at 1000.
#: The ``--target-duration 0.4`` bisection, which tunes kappa on the AR-only stage, stops at 100:
#: the full model lengthens syllables. The other settings are the ``fit-keypoints`` defaults.
DEMO_KEYPOINT_SETTINGS = {
    "n_states": 100,
    "latent_dim": 4,
    "nlags": 3,
    "kappa": 10.0,
    "n_iter_ar": 50,
    "n_iter": 50,
    "anterior_bodyparts": 0,
    "posterior_bodyparts": 3,
}


def demo_recording() -> Path:
    """Path of the real recording bundled with behavhmm (used by ``behavhmm demo``).

    DeepLabCut's open-field demo mouse (video ``m3v1mp4``, one black mouse
    filmed from above): DeepLabCut resnet50 predictions of 4 keypoints
    (``snout``, ``leftear``, ``rightear``, ``tailbase``) in 2,330 frames at
    30 fps (`DEMO_RECORDING_FPS`, 78 s), in pixels, as the DeepLabCut ``.h5``
    file (pandas table ``df_with_missing``) that DeepLabCut wrote. Source:
    github ``DeepLabCut/DLC2NWB``, ``examples/``, commit
    ``0dd3d16e240f45518e8fe040a9f8779c2c8f60fc``; MIT licence (the licence
    text is in the same folder).

    Returns
    -------
    pathlib.Path
        The ``.h5`` file; read it with `behavhmm.io.load_keypoints` or
        `behavhmm.workflows.load_and_clean` (give ``fps=30``).

    Raises
    ------
    FileNotFoundError
        If the installation lacks the file (a build that dropped package data).
    """
    from importlib.resources import files

    path = Path(str(files("behavhmm") / "data" / "dlc_openfield_mouse" / _DEMO_FILE))
    if not path.is_file():
        raise FileNotFoundError(
            f"the bundled demo recording is missing from this installation ({path}); reinstall "
            "behavhmm."
        )
    return path


_DEMO_FILE = "m3v1mp4DLC_resnet50_openfieldAug20shuffle1_30000.h5"


def _rotation(rng, n_features, angle):
    """A rotation by ``angle`` in a random plane of R^n_features (identity in 1-D)."""
    if n_features < 2:
        return np.eye(n_features)
    basis, _ = np.linalg.qr(rng.normal(size=(n_features, 2)))
    u, v = basis[:, 0], basis[:, 1]
    gen = np.outer(v, u) - np.outer(u, v)
    return (
        np.eye(n_features)
        + np.sin(angle) * gen
        + (np.cos(angle) - 1.0) * (np.outer(u, u) + np.outer(v, v))
    )


def demo_arhmm(
    n_states: int = 4,
    n_features: int = 3,
    nlags: int = 2,
    *,
    stickiness: float = 0.97,
    seed: int = 0,
) -> ARHMM:
    """A ground-truth sticky ARHMM with distinct, stable dynamics per state.

    State ``k`` turns the pose around its own fixed point: the newest lag is
    a damped rotation by an angle that grows with ``k``, older lags add small
    corrections, and each state has its own offset and correlated noise.

    Parameters
    ----------
    n_states : int, default 4
    n_features : int, default 3
    nlags : int, default 2
    stickiness : float, default 0.97
        Self-transition probability (mean dwell ``1 / (1 - stickiness)`` frames).
    seed : int, default 0
        Seed of the parameter draw.

    Returns
    -------
    ARHMM
        An estimator whose fitted attributes are the true parameters.
    """
    rng = np.random.default_rng(seed)
    coef = np.zeros((n_states, n_features, nlags * n_features))
    intercept = np.zeros((n_states, n_features))
    cov = np.zeros((n_states, n_features, n_features))
    for k in range(n_states):
        angle = 0.08 + 0.35 * k / max(n_states - 1, 1)
        damping = 0.85 + 0.1 * rng.uniform()
        coef[k, :, :n_features] = damping * _rotation(rng, n_features, angle)
        for lag in range(1, nlags):
            coef[k, :, lag * n_features : (lag + 1) * n_features] = 0.05 * rng.normal(
                size=(n_features, n_features)
            )
        target = rng.normal(scale=2.0, size=n_features)
        # offset so that the fixed point of the (lag-summed) dynamics is ``target``
        total = coef[k].reshape(n_features, nlags, n_features).sum(axis=1)
        intercept[k] = (np.eye(n_features) - total) @ target
        root = rng.normal(scale=0.15, size=(n_features, n_features))
        cov[k] = root @ root.T + 0.02 * np.eye(n_features)
    off = (1.0 - stickiness) / max(n_states - 1, 1)
    model = ARHMM(n_states=n_states, nlags=nlags)
    model.initial_prob_ = np.full(n_states, 1.0 / n_states)
    model.transition_prob_ = np.full((n_states, n_states), off) + (stickiness - off) * np.eye(
        n_states
    )
    model.coef_ = coef
    model.intercept_ = intercept
    model.covariances_ = cov
    return model


def simulate_demo_sessions(
    truth: ARHMM | None = None,
    n_sessions: int = 4,
    frames_per_session: int = 2500,
    *,
    seed: int = 0,
):
    """Simulate several sessions from ``truth`` (default
    [`demo_arhmm`][behavhmm.datasets.demo_arhmm]).

    Returns
    -------
    X : ndarray of shape (n_sessions * frames_per_session, n_features)
    states : ndarray of int32, same length
        True states, -1 for each session's conditioning frames.
    session_starts : ndarray of bool, same length
    truth : ARHMM
    """
    truth = demo_arhmm() if truth is None else truth
    n_time_bins = n_sessions * frames_per_session
    session_starts = np.zeros(n_time_bins, bool)
    session_starts[::frames_per_session] = True
    X, states = truth.simulate(jax.random.key(seed), n_time_bins, session_starts=session_starts)
    return X, states, session_starts, truth


def demo_keypoint_slds(
    n_states: int = 3, latent_dim: int = 4, *, stickiness: float = 0.98, seed: int = 0
):
    """A ground-truth keypoint SLDS on a 6-keypoint 2-D "mouse" (``behavhmm demo --simulated --model
    keypoints``).

    The body is a fixed outline (snout, two ears, body centre, hips, tail
    base; about 40 pixels long) deformed along ``latent_dim`` random
    orthonormal directions of the centred keypoint space. Every state pulls
    the latent pose towards its own target (``x_t = 0.8 x_{t-1} + 0.2 m_k +
    noise``, nlags 1), so states are distinct postures; the centroid walks
    randomly and the heading drifts when simulated.

    Parameters
    ----------
    n_states : int, default 3
    latent_dim : int, default 4
        At most 10 (= (6 keypoints - 1) x 2 dimensions).
    stickiness : float, default 0.98
        Self-transition probability of every state.
    seed : int, default 0

    Returns
    -------
    KeypointSLDS
        A model with parameters set (``simulate`` works; ``anterior_bodyparts=0``,
        ``posterior_bodyparts=5``).

    Raises
    ------
    ValueError
        If ``latent_dim`` is not in 1..10 or ``n_states`` < 2.
    """
    from .models import KeypointSLDS

    if not 1 <= latent_dim <= 10:
        raise ValueError(f"latent_dim must be in 1..10 for 6 keypoints in 2-D, got {latent_dim}.")
    if n_states < 2:
        raise ValueError(f"n_states must be at least 2, got {n_states}.")
    rng = np.random.default_rng(seed)
    outline = np.array([[2.0, 0.0], [1.2, 0.5], [1.2, -0.5], [0.0, 0.0], [-1.0, 0.0], [-2.0, 0.0]])
    outline -= outline.mean(axis=0)
    basis = rng.normal(size=(6, 2, latent_dim))
    basis -= basis.mean(axis=0)  # deformations keep the centroid
    components = np.linalg.qr(basis.reshape(12, latent_dim))[0].T
    model = KeypointSLDS(
        n_states=n_states,
        latent_dim=latent_dim,
        nlags=1,
        anterior_bodyparts=0,
        posterior_bodyparts=5,
    )
    model.pca_components_ = components
    model.pca_mean_ = outline.reshape(-1) / np.sqrt(np.mean(np.sum(outline**2, axis=1)))
    targets = rng.normal(size=(n_states, latent_dim))
    targets *= 0.6 / np.linalg.norm(targets, axis=1, keepdims=True)
    model.coef_ = np.tile(0.8 * np.eye(latent_dim), (n_states, 1, 1))
    model.intercept_ = 0.2 * targets
    model.covariances_ = np.tile(0.003 * np.eye(latent_dim), (n_states, 1, 1))
    model.initial_prob_ = np.full(n_states, 1.0 / n_states)
    off = (1.0 - stickiness) / (n_states - 1)
    model.transition_prob_ = np.full((n_states, n_states), off) + (stickiness - off) * np.eye(
        n_states
    )
    model.noise_variance_ = np.full(6, 0.002)
    model.scale_ = 20.0
    model.centroid_variance_ = 0.004
    model.latent_variance_ = np.ones(latent_dim)
    model.n_keypoints_, model.n_dims_ = 6, 2
    return model


# ----------------------------------------------------------------------------
# real two-alternative choice data
# ----------------------------------------------------------------------------


class ChoiceData(NamedTuple):
    """Trials of a two-alternative choice task, ready for a Bernoulli GLM-HMM.

    Attributes
    ----------
    X : ndarray of shape (n_trials, n_features)
        Regressors (columns named in ``feature_names``); the bias is the
        model's intercept, so it has no column.
    y : ndarray of int, shape (n_trials,)
        1 for a rightward choice, 0 for leftward.
    session_starts : ndarray of bool, shape (n_trials,)
        True at the first trial of each session.
    feature_names : list of str
    session : ndarray of int, shape (n_trials,)
        Session number of each trial.
    """

    X: np.ndarray
    y: np.ndarray
    session_starts: np.ndarray
    feature_names: list
    session: np.ndarray


def _data_root(path) -> Path:
    if path is not None:
        return Path(path)
    env = os.environ.get("BEHAVHMM_SHARED_DATA")
    if env:
        return Path(env)
    raise FileNotFoundError(
        "Pass the folder holding the recordings, or set BEHAVHMM_SHARED_DATA (e.g. to "
        "../shared/data)."
    )


def load_ibl_choices(path=None) -> ChoiceData:
    """The IBL mouse SWC_054 (11 sessions of the visual 2AFC wheel task) as GLM-HMM regressors.

    The regressors of Ashwood et al. (2022): the signed stimulus contrast
    (right minus left, in [-1, 1]); the previous choice (+1 right, -1 left);
    and the previous rewarded side (+1 right, -1 left), which equals
    win-stay/lose-switch (previous choice times previous reward). Both history
    regressors are 0 on a session's first trial and after a no-go trial.
    No-go trials (19) are dropped. ``y = 1`` is a counter-clockwise wheel turn,
    which reports a right-side stimulus (IBL ``choice == -1``).

    Parameters
    ----------
    path : str or path-like, optional
        Folder holding ``choice-ibl-SWC_054/SWC_054_trials.csv``; default
        ``$BEHAVHMM_SHARED_DATA``.

    Returns
    -------
    ChoiceData
        7,825 trials.

    Raises
    ------
    FileNotFoundError
        If the file is not found.

    References
    ----------
    The International Brain Laboratory et al. (2021). Standardized and
    reproducible measurement of decision-making in mice. eLife 10, e63711.
    Data: CC-BY-4.0.
    """
    import csv

    file = _data_root(path) / "choice-ibl-SWC_054" / "SWC_054_trials.csv"
    if not file.exists():
        raise FileNotFoundError(f"No IBL trials at {file}.")
    with open(file, newline="") as fh:
        rows = list(csv.DictReader(fh))
    session = np.array([int(r["session_index"]) for r in rows])
    choice = np.array(
        [int(float(r["choice"])) for r in rows]
    )  # -1 CCW (right), +1 CW (left), 0 no-go
    feedback = np.array([int(float(r["feedbackType"])) for r in rows])
    contrast = np.array([float(r["signed_contrast"]) for r in rows])
    side = -choice  # +1 right, -1 left, 0 no-go
    first = np.r_[True, session[1:] != session[:-1]]
    prev_choice = np.where(first, 0, np.r_[0, side[:-1]])
    prev_rewarded = np.where(first, 0, np.r_[0, (side * feedback)[:-1]])
    keep = choice != 0
    X = np.stack([contrast, prev_choice, prev_rewarded], axis=1)[keep].astype(float)
    sess = session[keep]
    starts = np.r_[True, sess[1:] != sess[:-1]]
    return ChoiceData(
        X,
        (side[keep] == 1).astype(int),
        starts,
        ["stimulus", "previous choice", "previous rewarded side"],
        sess,
    )


def load_psytrack_rat(path=None) -> ChoiceData:
    """Rat W053 of PsyTrack (80 sessions, auditory two-stimulus comparison) as GLM-HMM regressors.

    Regressors: the two stimuli ``s1`` and ``s2`` (normalised by PsyTrack),
    the previous choice and the previous rewarded side (the previous
    trial's correct answer), each +1 right / -1 left and 0 at session starts
    and after dropped trials. ``y = 1`` is a rightward choice.

    Parameters
    ----------
    path : str or path-like, optional
        Folder holding ``choice-psytrack-rat-W053/W053_flat.npz``; default
        ``$BEHAVHMM_SHARED_DATA``.

    Returns
    -------
    ChoiceData
        20,000 trials.

    Raises
    ------
    FileNotFoundError
        If the file is not found.

    References
    ----------
    N. A. Roy, J. H. Bak, A. Akrami, C. D. Brody and J. W. Pillow (2021).
    Extracting the dynamics of behavior in sensory decision-making
    experiments. Neuron 109(4), 597-610. Data: PsyTrack, MIT licence.
    """
    file = _data_root(path) / "choice-psytrack-rat-W053" / "W053_flat.npz"
    if not file.exists():
        raise FileNotFoundError(f"No PsyTrack rat data at {file}.")
    with np.load(file, allow_pickle=False) as f:
        y = (f["y"] == 2).astype(int)
        X = np.stack(
            [f["inputs_s1"][:, 0], f["inputs_s2"][:, 0], f["inputs_c"][:, 0], f["inputs_h"][:, 0]],
            axis=1,
        )
        lengths = f["dayLength"]
    session = np.repeat(np.arange(len(lengths)), lengths)
    starts = np.r_[True, session[1:] != session[:-1]]
    return ChoiceData(
        X.astype(float),
        y,
        starts,
        ["s1", "s2", "previous choice", "previous rewarded side"],
        session,
    )
