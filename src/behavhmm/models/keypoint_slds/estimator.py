"""Keypoint switching linear dynamical system (Keypoint-MoSeq's model), fitted by Gibbs sampling.

Implemented from the model and conditionals described in Weinreb et al.
(2024) and its supplementary methods; no code of keypoint-moseq or jax-moseq
was used. Compiled programs are in ``gibbs.py``; the discrete part
reuses the ARHMM's sticky-HDP Gibbs sweep.
"""

from __future__ import annotations

import numbers
from typing import ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.utils import check_scalar

from ..._utils import bucket_length, float_dtype
from ...fitting import run_gibbs
from ...inference import LinearEmission
from ...labels import (
    LabelEvidence,
    initializer_labels,
    label_evidence,
    padded_log_evidence,
    restrict_evidence,
)
from ...observations import default_mniw_prior
from ...sessions import session_bounds, session_mask, split_pynapple
from .._checkpoints import checkpoint_meta, read_checkpoint, write_checkpoint
from ..arhmm import ARHMM
from ..arhmm.gibbs import GibbsState, gibbs_sweep
from ..arhmm.model import (
    ARHMMParams,
    Hyper,
    filter_program,
    median_duration_program,
    posterior,
    simulate_program,
)
from ..base import (
    INFERENCE_METHODS,
    BaseHMM,
    Bool,
    Integer,
    OneOf,
    PreparedData,
    Real,
    check_random_key,
)
from .gibbs import (
    KPData,
    KPHyper,
    SLDSState,
    ar_data,
    ar_data_program,
    decode_program,
    simulate_poses_program,
    slds_sweep,
)

__all__ = ["KeypointSLDS", "KeypointDecoding", "KeypointSimulation"]

#: At most about this many frames seed the AR parameters by k-means (the Gibbs stages use all frames).
INIT_FRAMES = 20000


class KeypointDecoding(NamedTuple):
    """Deterministic decoding of keypoints by [`KeypointSLDS.decode`][behavhmm.KeypointSLDS.decode].

    Attributes
    ----------
    latents : ndarray of shape (n_time_bins, latent_dim)
        Smoothed latent pose (PC scores in units of ``scale_``).
    heading : ndarray of shape (n_time_bins,)
        Heading in radians, (-π, π], counter-clockwise from +x (the
        convention of [`egocentric_align`][behavhmm.preprocessing.egocentric_align]).
    centroid : ndarray of shape (n_time_bins, n_dims)
        Centroid in the keypoints' units.
    states : ndarray of int32, shape (n_time_bins,)
        Viterbi states; -1 for the first ``nlags`` frames of each session.
    log_likelihood : float
        ``log p(X | decoded latents, heading, centroid, noise) + log p(latents | θ)``
        (states marginalised), in nats, in normalised units.
    smoothed_probs : ndarray of shape (n_time_bins, n_states) or None
        ``p(z_t | decoded latents of the session)``, NaN rows for the first
        ``nlags`` frames; only with ``decode(..., smoothed_proba=True)``.
    """

    latents: np.ndarray
    heading: np.ndarray
    centroid: np.ndarray
    states: np.ndarray
    log_likelihood: float
    smoothed_probs: np.ndarray | None = None


class KeypointSimulation(NamedTuple):
    """Output of [`KeypointSLDS.simulate`][behavhmm.KeypointSLDS.simulate].

    Attributes
    ----------
    keypoints : ndarray of shape (n_time_bins, n_keypoints, n_dims)
    latents : ndarray of shape (n_time_bins, latent_dim)
    states : ndarray of int32, shape (n_time_bins,)
        -1 for the first ``nlags`` frames of each session.
    heading : ndarray of shape (n_time_bins,)
    centroid : ndarray of shape (n_time_bins, n_dims)
    """

    keypoints: np.ndarray
    latents: np.ndarray
    states: np.ndarray
    heading: np.ndarray
    centroid: np.ndarray


def _fill_gaps(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Forward- then backward-fill NaN rows within sessions (0 where a session has none)."""
    out = values.copy()
    begin, end = session_bounds(starts)
    for a, b in zip(begin, end, strict=True):
        block = out[a:b]
        ok = ~np.isnan(block.reshape(b - a, -1)).any(axis=1)
        if not ok.any():
            block[:] = 0.0
            continue
        idx = np.where(ok, np.arange(b - a), -1)
        idx = np.maximum.accumulate(idx)
        idx[idx < 0] = np.flatnonzero(ok)[0]
        out[a:b] = block[idx]
    return out


class KeypointSLDS(BaseHMM):
    """Keypoint SLDS (Keypoint-MoSeq): syllables from noisy 2-D or 3-D keypoints.

    Generative model, for frame ``t`` of a session and keypoint ``n``:

    * ``z_t``: sticky HDP-HMM states (syllables), as in
      [`ARHMM`][behavhmm.ARHMM] with ``algorithm="gibbs"``;
    * ``x_t`` (``latent_dim``): latent pose,
      ``x_t = A_{z_t} [x_{t-1}; ...; x_{t-nlags}] + b_{z_t} + N(0, Q_{z_t})``;
      the first ``nlags`` frames of a session have a broad Gaussian prior and
      no state;
    * ``y_{t,n} = R(h_t) (C x_t + d)_n + v_t + N(0, s_{t,n} σ²_n I)``: the pose
      ``C x_t + d`` lives in the egocentric frame (centred, anterior along +x);
      ``R(h_t)`` rotates it by the heading ``h_t`` (about the vertical axis in
      3-D; uniform prior), ``v_t`` is the centroid (Gaussian random walk with
      variance ``centroid_variance`` per frame and coordinate);
    * noise: ``s_{t,n} ~ scaled-Inv-χ²(noise_dof, noise_prior_scale / c_{t,n})``
      where ``c_{t,n} = clip(confidence, confidence_floor, 1)``, so
      low-confidence points get larger prior noise; ``σ²_n ~
      Inv-Gamma(noise_variance_prior_shape, noise_variance_prior_scale)``.

    ``C`` and ``d`` are fixed: the top ``latent_dim`` principal components and
    mean of the egocentrically aligned, centred keypoints (every aligned
    frame is centred, so ``C`` and ``d`` lie in the centred subspace of
    dimension ``(n_keypoints - 1) * n_dims``). Keypoints are modelled in
    normalised units: divided by ``scale_`` (the RMS distance of keypoints
    from their frame's centroid in the training data) after subtracting the
    mean position of each call's data (the model is translation invariant).

    Fitting: the initial heading and centroid come from the anterior and
    posterior keypoints; an AR-only stage fits an
    [`ARHMM`][behavhmm.ARHMM] by Gibbs sampling to the PC scores
    (``n_iter_ar`` sweeps; warm start); then ``n_iter`` sweeps of the full
    model each draw, in order: states, HDP weights, transitions and AR
    parameters (the ARHMM sweep); the latent path by Kalman forward
    filtering, backward sampling; the heading from its von Mises conditional;
    the centroid by Kalman FFBS on its random walk; the noise scales
    ``s_{t,n}`` and variances ``σ²_n`` from their inverse-gamma conditionals.

    Decoding new data is deterministic (the same labels every time): the
    latents are smoothed (RTS) under the usage-averaged dynamics, then for
    ``n_decode_rounds`` rounds the states are Viterbi-decoded and the latents
    smoothed again under those states' dynamics; after each smoothing the
    heading is set to its conditional mode, the centroid to its smoothed
    mean and the noise scales to their conditional means.

    Parameters
    ----------
    n_states : int, default 100
        Upper bound on the number of syllables (weak-limit HDP).
    latent_dim : int, default 10
        Dimension of the latent pose (number of PCs), at most
        ``(n_keypoints - 1) * n_dims``.
    nlags : int, default 3
        Autoregressive order of the latent dynamics (>= 1).
    kappa : float, default 1e6
        Stickiness (Dirichlet mass added to self-transitions); larger gives
        longer syllables.
    alpha : float, default 5.7
        Concentration of the transition rows.
    gamma : float, default 1000.0
        Top-level HDP concentration.
    anterior_bodyparts, posterior_bodyparts : int or list of int, default 0 and -1
        Keypoint indices whose mean defines the front and back of the body
        for the initial heading.
    n_iter_ar : int, default 50
        Gibbs sweeps of the AR-only stage (0 skips it: AR parameters from
        k-means as in ``ARHMM``).
    n_iter : int, default 50
        Gibbs sweeps of the full model.
    noise_prior_scale : float, default 1.0
        ``s_0``: prior scale of ``s_{t,n}`` at confidence 1.
    noise_dof : float, default 5.0
        ``ν_s``: degrees of freedom of the scaled-Inv-χ² prior on ``s_{t,n}``.
    confidence_floor : float, default 0.01
        Confidences are clipped to ``[confidence_floor, 1]``; the prior scale
        of ``s_{t,n}`` is ``noise_prior_scale / confidence``.
    noise_variance_prior_shape, noise_variance_prior_scale : float, default 1.0 and 1e-3
        Inverse-gamma prior on ``σ²_n`` (scale in squared normalised units).
    centroid_variance : float, optional
        Random-walk variance of the centroid per frame, in squared normalised
        units; default: the mean squared frame-to-frame change of the initial
        centroid estimate (stored in ``centroid_variance_``).
    covariance_prior_scale : float, default 0.01
        ``S_0 = covariance_prior_scale * I`` of the MNIW prior on the AR noise.
    coef_prior_variance : float, default 10.0
        Column variance of the matrix-normal prior on ``[A_k, b_k]``.
    block_size : int, optional
        Memory knob: the Kalman kernels hold the covariances of at most
        ``block_size`` frames at once (about
        ``4 * block_size * (nlags * latent_dim)**2`` bytes in float32), at the
        cost of one extra filtering pass. Default: all frames (fastest).
    n_decode_rounds : int, default 2
        Rounds of deterministic decoding (see above).
    check_every : int, default 10
        Record the median syllable duration every ``check_every`` sweeps.
    inference_method : {"auto", "sequential", "parallel"}, default "auto"
        HMM kernels (sequential on CPU, parallel on accelerators).
    random_state : int, numpy Generator or None, default 0
        Seed of the initialisation and the chains.
    progress_bar : bool, default True
        Progress of both stages: tqdm bars on a terminal, a plain line every
        10 % of the sweeps when stderr is not a terminal (logs).
    initialization_funcs : dict, optional
        Initializers of the AR-only stage, set with ``setup()`` (the slots of
        [`ARHMM.setup`][behavhmm.ARHMM.setup]: ``initial_proba_init``
        "uniform", ``transition_proba_init`` "sticky", ``ar_params_init``
        "kmeans" (default) or "random", or custom callables), applied to the
        PC scores of the aligned keypoints.
    checkpoint_path : str or path, optional
        Write the full-model chain's state there (atomically, ``.npz``, no
        pickle) every ``checkpoint_every`` sweeps and after the last one;
        ``fit(..., resume=True)`` continues it (the AR-only stage is not run
        again) and gives the same chain, bit for bit, as an uninterrupted fit.
    checkpoint_every : int, optional
        Full-model sweeps between checkpoints (default: only at the end).

    Attributes
    ----------
    initial_prob_, transition_prob_, coef_, intercept_, covariances_, beta_ : ndarrays
        The AR-HMM on the latents (as in [`ARHMM`][behavhmm.ARHMM]); the final Gibbs sample.
    noise_variance_ : ndarray of shape (n_keypoints,)
        ``σ²_n`` in squared normalised units (multiply by ``scale_**2`` for the data's units).
    pca_components_ : ndarray of shape (latent_dim, n_keypoints * n_dims)
        ``C^T`` (orthonormal rows), normalised units.
    pca_mean_ : ndarray of shape (n_keypoints * n_dims,)
        ``d``, the mean egocentric pose in normalised units.
    pca_explained_variance_ : ndarray of shape (latent_dim,)
    scale_ : float
        Normalisation of the keypoints (data units per normalised unit).
    centroid_variance_ : float
        Random-walk variance of the centroid (squared normalised units).
    latent_variance_ : ndarray of shape (latent_dim,)
        Prior variance of the latents of a session's first ``nlags`` frames.
    latents_ : ndarray of shape (n_time_bins, latent_dim)
        Final Gibbs sample of the training latents.
    headings_ : ndarray of shape (n_time_bins,)
        Final sample of the training headings (radians).
    centroids_ : ndarray of shape (n_time_bins, n_dims)
        Final sample of the training centroids (data units).
    states_ : ndarray of int32, shape (n_time_bins,)
        Final sample of the training states (-1 for conditioning frames).
    log_likelihood_history_ : ndarray of shape (n_iter,)
        ``log p(y | x, h, v, s, σ²) + log p(x | θ)`` (nats, normalised units) per sweep.
    ar_log_likelihood_history_ : ndarray of shape (n_iter_ar,)
        The AR-only stage's marginal log-likelihood of the PC scores per sweep.
    median_duration_history_, check_iterations_ : ndarrays
        Median syllable duration (frames) every ``check_every`` sweeps.
    n_keypoints_, n_dims_ : int
    n_iter_ : int

    References
    ----------
    C. Weinreb et al. (2024). Keypoint-MoSeq: parsing behavior by linking point
    tracking to pose dynamics. Nature Methods 21, 1329-1339.

    E. B. Fox, E. B. Sudderth, M. I. Jordan and A. S. Willsky (2011). Bayesian
    nonparametric inference of switching dynamic linear models. IEEE Trans.
    Signal Processing 59(4), 1569-1585.
    """

    _init_slots = ARHMM._init_slots

    # scikit-learn metadata routing: sessions and confidences follow the folds' rows
    __metadata_request__fit = {"session_starts": True, "confidence": True}
    __metadata_request__score = {"session_starts": True, "confidence": True}
    __metadata_request__predict = {"session_starts": True, "confidence": True}

    def __init__(
        self,
        n_states: int = 100,
        latent_dim: int = 10,
        nlags: int = 3,
        *,
        kappa: float = 1e6,
        alpha: float = 5.7,
        gamma: float = 1000.0,
        anterior_bodyparts=0,
        posterior_bodyparts=-1,
        n_iter_ar: int = 50,
        n_iter: int = 50,
        noise_prior_scale: float = 1.0,
        noise_dof: float = 5.0,
        confidence_floor: float = 0.01,
        noise_variance_prior_shape: float = 1.0,
        noise_variance_prior_scale: float = 1e-3,
        centroid_variance: float | None = None,
        covariance_prior_scale: float = 0.01,
        coef_prior_variance: float = 10.0,
        block_size: int | None = None,
        n_decode_rounds: int = 2,
        check_every: int = 10,
        inference_method: str = "auto",
        random_state=0,
        progress_bar: bool = True,
        initialization_funcs: dict | None = None,
        checkpoint_path=None,
        checkpoint_every: int | None = None,
    ):
        self.n_states = n_states
        self.latent_dim = latent_dim
        self.nlags = nlags
        self.kappa = kappa
        self.alpha = alpha
        self.gamma = gamma
        self.anterior_bodyparts = anterior_bodyparts
        self.posterior_bodyparts = posterior_bodyparts
        self.n_iter_ar = n_iter_ar
        self.n_iter = n_iter
        self.noise_prior_scale = noise_prior_scale
        self.noise_dof = noise_dof
        self.confidence_floor = confidence_floor
        self.noise_variance_prior_shape = noise_variance_prior_shape
        self.noise_variance_prior_scale = noise_variance_prior_scale
        self.centroid_variance = centroid_variance
        self.covariance_prior_scale = covariance_prior_scale
        self.coef_prior_variance = coef_prior_variance
        self.block_size = block_size
        self.n_decode_rounds = n_decode_rounds
        self.check_every = check_every
        self.inference_method = inference_method
        self.random_state = random_state
        self.progress_bar = progress_bar
        self.initialization_funcs = initialization_funcs
        self.checkpoint_path = checkpoint_path
        self.checkpoint_every = checkpoint_every

    # ----------------------------------------------------------- validation
    _hyperparameters: ClassVar[dict] = {
        "n_states": Integer(1),
        "latent_dim": Integer(1),
        "nlags": Integer(1),
        "kappa": Real(0),
        "alpha": Real(0, closed="neither"),
        "gamma": Real(0, closed="neither"),
        "noise_prior_scale": Real(0, closed="neither"),
        "noise_dof": Real(0, closed="neither"),
        "confidence_floor": Real(0, 1, closed="right"),
        "noise_variance_prior_shape": Real(0, closed="neither"),
        "noise_variance_prior_scale": Real(0, closed="neither"),
        "covariance_prior_scale": Real(0, closed="neither"),
        "coef_prior_variance": Real(0, closed="neither"),
        "n_iter_ar": Integer(0),
        "n_iter": Integer(1),
        "check_every": Integer(1),
        "n_decode_rounds": Integer(0),
        "centroid_variance": Real(0, closed="neither", optional=True),
        "block_size": Integer(1, optional=True),
        "inference_method": OneOf(INFERENCE_METHODS),
        "progress_bar": Bool(),
        "checkpoint_every": Integer(1, optional=True),
    }

    def _check_hyperparameter_rules(self):
        if self.checkpoint_every is not None and self.checkpoint_path is None:
            raise ValueError("checkpoint_every needs checkpoint_path.")

    def _saved_attributes(self):
        return (
            "initial_prob_",
            "transition_prob_",
            "coef_",
            "intercept_",
            "covariances_",
            "beta_",
            "noise_variance_",
            "pca_components_",
            "pca_mean_",
            "pca_explained_variance_",
            "scale_",
            "centroid_variance_",
            "latent_variance_",
            "n_keypoints_",
            "n_dims_",
            "log_likelihood_history_",
            "ar_log_likelihood_history_",
            "median_duration_history_",
            "check_iterations_",
        )

    def _required_attributes(self):
        return (
            "initial_prob_",
            "transition_prob_",
            "coef_",
            "intercept_",
            "covariances_",
            "noise_variance_",
            "pca_components_",
            "pca_mean_",
            "scale_",
            "centroid_variance_",
            "latent_variance_",
        )

    def _validated_params(self) -> ARHMMParams:
        """AR-HMM parameters as JAX arrays, after checking every fitted array."""
        self._check_fitted()
        check_scalar(self.nlags, "nlags", numbers.Integral, min_val=1)
        pi = np.asarray(self.initial_prob_, float)
        n_states = pi.shape[0] if pi.ndim == 1 else -1
        if n_states != self.n_states:
            raise ValueError(f"initial_prob_ must have shape ({self.n_states},), got {pi.shape}.")
        comps = np.asarray(self.pca_components_, float)
        if comps.ndim != 2:
            raise ValueError(
                f"pca_components_ must have shape (latent_dim, n_keypoints * n_dims), got {comps.shape}."
            )
        d = comps.shape[0]
        n_kp = int(np.shape(self.noise_variance_)[0]) if np.ndim(self.noise_variance_) == 1 else -1
        if n_kp < 2 or comps.shape[1] % n_kp or comps.shape[1] // n_kp not in (2, 3):
            raise ValueError(
                f"noise_variance_ (shape {np.shape(self.noise_variance_)}) and pca_components_ (shape {comps.shape}) "
                "must describe n_keypoints >= 2 keypoints of 2 or 3 dimensions."
            )
        expected = {
            "transition_prob_": (n_states, n_states),
            "coef_": (n_states, d, self.nlags * d),
            "intercept_": (n_states, d),
            "covariances_": (n_states, d, d),
            "pca_mean_": (comps.shape[1],),
            "latent_variance_": (d,),
        }
        for name, shape in expected.items():
            arr = np.asarray(getattr(self, name), float)
            if arr.shape != shape:
                raise ValueError(
                    f"{name} must have shape {shape} (n_states={n_states}, nlags={self.nlags}), got {arr.shape}."
                )
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"{name} must be finite.")
        trans = np.asarray(self.transition_prob_, float)
        for name, arr in (("initial_prob_", pi), ("transition_prob_", trans)):
            if (
                not np.all(np.isfinite(arr))
                or np.any(arr < 0)
                or not np.allclose(arr.sum(-1), 1.0, atol=1e-3)
            ):
                raise ValueError(
                    f"{name} must hold non-negative probabilities summing to 1 along its last axis."
                )
        cov = np.asarray(self.covariances_, float)
        try:
            np.linalg.cholesky(0.5 * (cov + np.swapaxes(cov, -1, -2)))
        except np.linalg.LinAlgError:
            raise ValueError("covariances_ must be positive definite.") from None
        for name in ("noise_variance_", "latent_variance_"):
            arr = np.asarray(getattr(self, name), float)
            if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
                raise ValueError(f"{name} must be positive and finite.")
        for name in ("scale_", "centroid_variance_"):
            value = float(np.asarray(getattr(self, name)))
            if not np.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a positive finite number, got {value}.")
        dtype = float_dtype()
        arrays = (
            pi,
            trans[None],
            np.asarray(self.coef_),
            np.asarray(self.intercept_),
            cov,
            np.full(n_states, np.inf),
        )
        return ARHMMParams(*(jnp.asarray(a, dtype) for a in arrays))

    # ----------------------------------------------------------------- data
    def _read(self, X, confidence, session_starts, *, fitting: bool):
        """Validated keypoints, observed mask, confidences and session mask (host arrays)."""
        values, info = split_pynapple(X)
        try:
            coords = np.asarray(values, float)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"X must be a numeric array of shape (n_time_bins, n_keypoints, n_dims): {exc}"
            ) from None
        if coords.ndim != 3 or coords.shape[2] not in (2, 3) or coords.shape[1] < 2:
            raise ValueError(
                f"X must have shape (n_time_bins, n_keypoints >= 2, n_dims in (2, 3)), got {coords.shape}."
            )
        if coords.shape[0] == 0:
            raise ValueError("X has n_time_bins == 0.")
        if np.any(np.isinf(coords)):
            raise ValueError("X holds infinite values; mark missing keypoints with NaN.")
        n_time_bins, n_kp, n_dims = coords.shape
        if not fitting:
            if n_kp != int(np.asarray(self.n_keypoints_)) or n_dims != int(
                np.asarray(self.n_dims_)
            ):
                raise ValueError(
                    f"X has {n_kp} keypoints in {n_dims}-D but the model was fitted on "
                    f"{int(np.asarray(self.n_keypoints_))} in {int(np.asarray(self.n_dims_))}-D."
                )
        if confidence is None:
            conf = np.ones((n_time_bins, n_kp))
        else:
            conf = np.asarray(split_pynapple(confidence)[0], float)
            if conf.shape != (n_time_bins, n_kp):
                raise ValueError(
                    f"confidence must have shape (n_time_bins, n_keypoints) = {(n_time_bins, n_kp)}, got {conf.shape}."
                )
            if np.any(conf[np.isfinite(conf)] < 0):
                raise ValueError("confidence must be non-negative.")
        observed = np.all(np.isfinite(coords), axis=2) & np.isfinite(conf)
        conf = np.where(np.isfinite(conf), conf, 0.0)
        mask = session_mask(session_starts, n_time_bins, info=info)
        begin, end = session_bounds(mask)
        short = (end - begin) <= self.nlags
        if np.any(short):
            i = int(np.flatnonzero(short)[0])
            raise ValueError(
                f"Session {i} (time bins {begin[i]}-{end[i] - 1}) has {end[i] - begin[i]} frame(s); nlags={self.nlags} "
                f"needs at least {self.nlags + 1} per session."
            )
        if not observed.any():
            raise ValueError("X has no observed keypoint (all NaN).")
        seen = np.logical_or.reduceat(observed.any(axis=1), begin)
        if not seen.all():
            i = int(np.flatnonzero(~seen)[0])
            raise ValueError(
                f"Session {i} (time bins {begin[i]}-{end[i] - 1}) has no observed keypoint (all NaN); drop it "
                "(an empty track) before fitting."
            )
        return coords, observed, conf, mask, info

    def _align(self, y, observed, mask):
        """Initial centroid and heading per frame (normalised units), gaps filled within sessions."""
        n_kp = y.shape[1]
        front = np.atleast_1d(np.asarray(self.anterior_bodyparts)).astype(int) % n_kp
        back = np.atleast_1d(np.asarray(self.posterior_bodyparts)).astype(int) % n_kp
        if set(front.tolist()) == set(back.tolist()):
            raise ValueError(
                "anterior_bodyparts and posterior_bodyparts must be different keypoints."
            )
        with np.errstate(invalid="ignore", divide="ignore"):
            w = observed[..., None].astype(float)
            centroid = (y * w).sum(1) / w.sum(1)
            fm = (y[:, front] * w[:, front]).sum(1) / w[:, front].sum(1)
            bm = (y[:, back] * w[:, back]).sum(1) / w[:, back].sum(1)
        heading = np.arctan2(fm[:, 1] - bm[:, 1], fm[:, 0] - bm[:, 0])
        centroid = _fill_gaps(centroid, mask)
        heading = _fill_gaps(heading[:, None], mask)[:, 0]
        return centroid, heading

    @staticmethod
    def _rotate(points, angle):
        c, s = np.cos(angle)[:, None], np.sin(angle)[:, None]
        out = points.copy()
        out[..., 0] = c * points[..., 0] - s * points[..., 1]
        out[..., 1] = s * points[..., 0] + c * points[..., 1]
        return out

    def _to_device(self, y, observed, conf, mask):
        n_time_bins, n_kp, _ = y.shape
        n = bucket_length(n_time_bins)
        pad = n - n_time_bins
        dtype = float_dtype()
        begin, _ = session_bounds(mask)
        sid = np.cumsum(mask) - 1
        position = np.arange(n_time_bins) - begin[sid]
        prior_scale = float(self.noise_prior_scale) / np.clip(
            conf, float(self.confidence_floor), 1.0
        )
        return KPData(
            y=jnp.asarray(
                np.pad(np.where(observed[..., None], y, 0.0), ((0, pad), (0, 0), (0, 0))), dtype
            ),
            observed=jnp.asarray(np.pad(observed.astype(float), ((0, pad), (0, 0))), dtype),
            prior_scale=jnp.asarray(
                np.pad(prior_scale, ((0, pad), (0, 0)), constant_values=1.0), dtype
            ),
            starts=jnp.asarray(np.concatenate([mask, np.ones(pad, bool)])),
            position=jnp.asarray(np.concatenate([position, np.zeros(pad, int)]), jnp.int32),
            valid=jnp.asarray(np.concatenate([np.ones(n_time_bins), np.zeros(pad)]), dtype),
        )

    def _hyper(self, prior, kappa=None) -> KPHyper:
        dtype = float_dtype()
        f = lambda v: jnp.asarray(v, dtype)  # noqa: E731
        ar = Hyper(f(self.alpha), f(self.kappa if kappa is None else kappa), f(self.gamma), prior)
        comps = np.asarray(self.pca_components_, float)
        return KPHyper(
            ar=ar,
            emission=LinearEmission(f(comps.T), f(self.pca_mean_)),
            latent_mean=jnp.zeros(comps.shape[0], dtype),
            latent_variance=f(self.latent_variance_),
            noise_dof=f(self.noise_dof),
            noise_prior_shape=f(self.noise_variance_prior_shape),
            noise_prior_scale=f(self.noise_variance_prior_scale),
            centroid_variance=f(np.asarray(self.centroid_variance_)),
            centroid_prior_variance=f(1e4),
        )

    def _prior(self):
        return default_mniw_prior(
            int(self.latent_dim),
            int(self.nlags),
            scale=float(self.covariance_prior_scale),
            coef_variance=float(self.coef_prior_variance),
            dtype=float_dtype(),
        )

    # ------------------------------------------------------------------ fit
    def _initial_ar_params(self, latents, mask, k_init, k_trans, prior, labels=None):
        """Initial AR-HMM parameters of the AR-only stage, from the ``setup()`` initializers."""
        inits = self._initializers(labels)
        n = self.n_states
        k_pi, k_ar = jax.random.split(k_init)
        func, kwargs = inits["initial_proba_init"]
        extra = initializer_labels(func, labels)
        pi = np.asarray(func(n, latents, mask, k_pi, **extra, **kwargs), float)
        func, kwargs = inits["transition_proba_init"]
        extra = initializer_labels(func, labels)
        trans = np.asarray(func(n, latents, mask, k_trans, **extra, **kwargs), float)
        func, kwargs = inits["ar_params_init"]
        extra = {"nlags": self.nlags, "prior": prior, **initializer_labels(func, labels)}
        out = func(n, latents, mask, k_ar, **extra, **kwargs)
        if not isinstance(out, tuple | list) or len(out) != 3:
            raise ValueError("ar_params_init must return a tuple (coef, intercept, covariances).")
        coef, intercept, cov = (np.asarray(a, float) for a in out)
        d = latents.shape[1]
        expected = {
            "initial_proba_init": (pi, (n,)),
            "transition_proba_init": (trans, (n, n)),
            "ar_params_init coef": (coef, (n, d, self.nlags * d)),
            "ar_params_init intercept": (intercept, (n, d)),
            "ar_params_init covariances": (cov, (n, d, d)),
        }
        for name, (arr, shape) in expected.items():
            if arr.shape != shape or not np.all(np.isfinite(arr)):
                raise ValueError(
                    f"{name} must return finite values of shape {shape}, got shape {arr.shape}."
                )
        return pi, trans, coef, intercept, cov

    def _label_evidence(self, labels, label_weight, mask, info):
        """Hand labels on every frame; a session's first ``nlags`` frames get none (warned)."""
        n_time_bins = len(mask)
        evidence = label_evidence(
            labels, label_weight, self.n_states, None, np.ones(n_time_bins, bool), info=info
        )
        if evidence is None:
            return None
        begin, _ = session_bounds(mask)
        position = np.arange(n_time_bins) - begin[np.cumsum(mask) - 1]
        rows = np.flatnonzero(position >= self.nlags)
        emitted = restrict_evidence(
            evidence, rows, f"the first nlags={self.nlags} frames of a session have no state"
        )
        log_ev = np.zeros_like(evidence.log_evidence)
        log_ev[rows] = emitted.log_evidence
        hard = np.where(position >= self.nlags, evidence.labels, -1)
        return LabelEvidence(log_ev, hard, evidence.n_classes)

    def _init_rows(self, mask: np.ndarray) -> np.ndarray:
        """Frames for the k-means initialisation: all, or the opening stretch of every session.

        At most about :data:`INIT_FRAMES` frames, each session contributing in
        proportion to its length (and at least ``nlags + 1`` frames), so the
        initialisation's memory does not grow with the recording.
        """
        n_time_bins = len(mask)
        if n_time_bins <= INIT_FRAMES:
            return np.arange(n_time_bins)
        begin, end = session_bounds(mask)
        take = np.maximum(
            np.ceil(INIT_FRAMES * (end - begin) / n_time_bins).astype(int), self.nlags + 1
        )
        return np.concatenate(
            [np.arange(a, min(a + k, b)) for a, b, k in zip(begin, end, take, strict=True)]
        )

    def fit(
        self,
        X,
        confidence=None,
        session_starts=None,
        y=None,
        resume: bool = False,
        labels=None,
        label_weight=1.0,
        class_names=None,
    ):
        """Fit the keypoint SLDS: PCA, AR-only stage, then full-model Gibbs sweeps.

        Parameters
        ----------
        X : array-like or pynapple TsdTensor of shape (n_time_bins, n_keypoints, n_dims)
            2-D or 3-D keypoints in any spatial unit (pixels, mm), sessions
            concatenated in time. NaN marks missing keypoints (modelled as
            unobserved). For 3-D, z is vertical.
        confidence : array-like of shape (n_time_bins, n_keypoints), optional
            Tracking confidence (e.g. DeepLabCut likelihood) in [0, 1];
            default 1 everywhere. NaN confidence marks a keypoint missing.
        session_starts : array-like or pynapple IntervalSet, optional
            Boolean mask or start indices of sessions (default: one session,
            or one per epoch of a pynapple input's ``time_support``).
        y : Ignored
            Present for scikit-learn compatibility.
        resume : bool, default False
            Continue the full-model chain saved at ``checkpoint_path`` up to
            ``n_iter`` sweeps (same data, hyperparameters and
            ``random_state`` as the interrupted fit; ``n_iter``,
            ``check_every``, ``checkpoint_every`` and ``progress_bar`` may
            differ).
        labels : array-like of int of shape (n_time_bins,) or pynapple Tsd, optional
            Hand labels: ``c`` ties frame ``t`` to state ``c`` (states
            ``0..C-1`` are the labelled classes), -1 leaves it free; or
            non-negative evidence of shape (n_time_bins, n_states). Frames
            with missing keypoints are modelled, so their labels count;
            labels on a session's first ``nlags`` frames (no state) are
            ignored with a warning. Routed like ``session_starts``.
        label_weight : float in [0, 1], default 1.0
            ``e_t(k) = 1`` for the label and ``1 - label_weight`` for the
            other states: 1 clamps the state (the sampler never changes it),
            0 ignores the labels. Both stages sample the states given the
            evidence (derivation in
            [`behavhmm.labels.label_evidence`][behavhmm.labels.label_evidence]).
        class_names : sequence of str, optional
            Names of the labelled classes ``0..C-1``, kept as ``class_names_``
            and in model files (default with labels: "0", ..., "C-1");
            relabelling by usage keeps these states' numbers.

        Returns
        -------
        self : KeypointSLDS

        Raises
        ------
        ValueError
            For a bad shape, infinite values, sessions of ``nlags`` frames or
            fewer, too few complete frames for the PCA, ``latent_dim`` above
            ``(n_keypoints - 1) * n_dims``, or invalid hyperparameters; with
            ``resume``, for a missing ``checkpoint_path`` or a checkpoint of
            another fit.
        FileNotFoundError
            With ``resume``, if there is no checkpoint at ``checkpoint_path``.
        TypeError
            For hyperparameters of the wrong type.
        FloatingPointError
            If a sweep produces a non-finite log-likelihood.
        """
        self._check_hyperparameters()
        if resume and self.checkpoint_path is None:
            raise ValueError("resume=True needs checkpoint_path.")
        coords, observed, conf, mask, info = self._read(X, confidence, session_starts, fitting=True)
        n_time_bins, n_kp, n_dims = coords.shape
        if self.latent_dim > (n_kp - 1) * n_dims:
            raise ValueError(
                f"latent_dim={self.latent_dim} exceeds the dimension of centred poses, "
                f"(n_keypoints - 1) * n_dims = {(n_kp - 1) * n_dims}."
            )
        key_ar, key_chain = jax.random.split(self._fit_key())
        self.n_keypoints_, self.n_dims_ = n_kp, n_dims
        # normalise: subtract the mean position, divide by the RMS distance to the frame centroid
        offset = np.array([coords[..., i][observed].mean() for i in range(n_dims)])
        y0 = np.where(observed[..., None], coords - offset, np.nan)
        with np.errstate(invalid="ignore"):
            spread = y0 - np.nanmean(y0, axis=1, keepdims=True)
        self.scale_ = float(np.sqrt(np.nanmean(np.sum(spread**2, axis=2))))
        if not np.isfinite(self.scale_) or self.scale_ <= 0:
            raise ValueError("X has no spread between keypoints (all keypoints coincide).")
        y = np.where(observed[..., None], y0 / self.scale_, 0.0)
        centroid, heading = self._align(y, observed, mask)
        ego = self._rotate(y - centroid[:, None, :], -heading)
        complete = observed.all(axis=1)
        if complete.sum() <= self.latent_dim:
            raise ValueError(
                f"Only {int(complete.sum())} frames have every keypoint observed; the PCA of latent_dim="
                f"{self.latent_dim} components needs more."
            )
        flat = ego.reshape(n_time_bins, -1)
        mean = flat[complete].mean(0)
        vals, vecs = np.linalg.eigh(np.cov(flat[complete], rowvar=False))
        order = np.argsort(vals)[::-1][: self.latent_dim]
        comps = vecs[:, order].T
        comps *= np.where(comps[np.arange(len(comps)), np.abs(comps).argmax(1)] < 0, -1.0, 1.0)[
            :, None
        ]
        self.pca_components_, self.pca_mean_ = comps, mean
        self.pca_explained_variance_ = vals[order]
        filled = np.where(np.repeat(observed, n_dims, axis=1), flat, mean[None])
        latents = (filled - mean) @ comps.T
        self.latent_variance_ = 4.0 * np.maximum(latents.var(0), 1e-6)
        if self.centroid_variance is None:
            diffs = np.diff(centroid, axis=0)[~mask[1:]]
            self.centroid_variance_ = float(max(np.mean(diffs**2) if len(diffs) else 1e-2, 1e-6))
        else:
            self.centroid_variance_ = float(self.centroid_variance)
        # AR-only stage (warm start): the ARHMM's Gibbs sweep on the PC scores, with the same
        # compiled program (same layout and shapes) as the discrete half of the full sweep
        data = self._to_device(y, observed, conf, mask)
        n = data.y.shape[0]
        pad = n - n_time_bins
        dtype = float_dtype()
        evidence = self._label_evidence(labels, label_weight, mask, info)
        self._store_class_names(class_names, evidence)
        if evidence is not None:
            log_ev = padded_log_evidence(evidence, n)
            data = data._replace(log_evidence=jnp.asarray(log_ev, dtype))
        prior = self._prior()
        hyper = self._hyper(prior)
        method, block_size = self._method(), self.block_size
        # the AR-only chain gets its own key: key_ar is split, never used again itself
        k_init, k_trans, key_ar_chain = jax.random.split(key_ar, 3)
        init_rows = self._init_rows(mask)
        pi, trans, coef, intercept, cov = self._initial_ar_params(
            latents[init_rows],
            mask[init_rows],
            k_init,
            k_trans,
            prior,
            labels=None if evidence is None else evidence.labels[init_rows],
        )
        params = ARHMMParams(
            *(
                jnp.asarray(a, dtype)
                for a in (
                    pi,
                    np.asarray(trans)[None],
                    coef,
                    intercept,
                    cov,
                    np.full(self.n_states, np.inf),
                )
            )
        )
        ar_state = GibbsState(
            params,
            jnp.full(self.n_states, 1.0 / self.n_states, dtype),
            jnp.zeros(n, jnp.int32),
            jnp.ones(n, dtype),
        )
        latents_dev = jnp.asarray(np.pad(latents, ((0, pad), (0, 0))), dtype)
        recon = (latents @ comps + mean).reshape(n_time_bins, n_kp, n_dims)
        resid = y - self._rotate(recon, heading) - centroid[:, None, :]
        sq = np.sum(resid**2, axis=2)
        sigmasq = np.array(
            [
                sq[observed[:, i], i].mean() / n_dims if observed[:, i].any() else 1e-2
                for i in range(n_kp)
            ]
        )
        state = SLDSState(
            ar=ar_state,
            latents=latents_dev,
            heading=jnp.asarray(np.pad(heading, (0, pad)), dtype),
            centroid=jnp.asarray(np.pad(centroid, ((0, pad), (0, 0))), dtype),
            scales=data.prior_scale,
            sigmasq=jnp.asarray(np.maximum(sigmasq, 1e-6), dtype),
        )
        start, history, checkpoint = 0, None, None
        if self.checkpoint_path is not None:
            meta = checkpoint_meta(self, (coords, observed, conf, mask))

            def checkpoint(st, n_done, hist):
                write_checkpoint(
                    self.checkpoint_path,
                    meta,
                    st,
                    n_done,
                    hist,
                    key_chain,
                    extra={"ar_log_likelihood_history": self.ar_log_likelihood_history_},
                )

        if resume:  # the AR-only stage ran before the checkpoint was written
            state, start, history, extra = read_checkpoint(
                self.checkpoint_path, meta, key_chain, state, n_iter=int(self.n_iter)
            )
            if "ar_log_likelihood_history" not in extra:
                raise ValueError(
                    f"The checkpoint at {self.checkpoint_path} lacks the AR-only stage's history."
                )
            self.ar_log_likelihood_history_ = np.asarray(extra["ar_log_likelihood_history"])
        elif self.n_iter_ar:
            ardata = ar_data_program(latents_dev, data, int(self.nlags))
            res_ar = run_gibbs(
                lambda st, k: gibbs_sweep(st, k, ardata, hyper.ar, False, method),
                ar_state,
                key_ar_chain,
                n_iter=int(self.n_iter_ar),
                n_frames=n_time_bins,
                progress_bar=self.progress_bar,
                desc=f"KeypointSLDS AR-only (K={self.n_states})",
            )
            state = state._replace(ar=res_ar.state)
            self.ar_log_likelihood_history_ = np.asarray(res_ar.history["log_likelihood"])
        else:
            self.ar_log_likelihood_history_ = np.zeros(0)

        def sweep(st, k):
            return slds_sweep(st, k, data, hyper, method, block_size)

        def evaluate(st):
            ad = ar_data_program(st.latents, data, int(self.nlags))
            return {
                "median_duration": float(
                    median_duration_program(st.ar.states, ad.starts, ad.weights)
                )
            }

        try:
            res = run_gibbs(
                sweep,
                state,
                key_chain,
                n_iter=int(self.n_iter),
                start_iteration=start,
                history=history,
                check_every=int(self.check_every),
                evaluate=evaluate,
                n_frames=n_time_bins,
                progress_bar=self.progress_bar,
                desc=f"KeypointSLDS gibbs (K={self.n_states})",
                checkpoint=checkpoint,
                checkpoint_every=self.checkpoint_every,
            )
        except FloatingPointError as exc:
            sparse = [
                i
                for i, (a, b) in enumerate(zip(*session_bounds(mask), strict=True))
                if observed[a:b].any(axis=1).mean() < 0.5
            ]
            hint = (
                f" Sessions {sparse[:10]} have keypoints in less than half of their frames: long unobserved "
                "stretches let the latent dynamics diverge. Drop such track fragments or split sessions at long "
                "gaps (behavhmm.workflows.load_and_clean drops them)."
                if sparse
                else ""
            )
            raise FloatingPointError(f"{exc}{hint}") from None
        st = res.state
        p = st.ar.params
        self.initial_prob_ = np.asarray(p.initial_prob)
        self.transition_prob_ = np.asarray(p.transition_prob)[0]
        self.coef_, self.intercept_, self.covariances_ = (
            np.asarray(a) for a in (p.coef, p.intercept, p.covariances)
        )
        self.beta_ = np.asarray(st.ar.beta)
        self.noise_variance_ = np.asarray(st.sigmasq)
        self.latents_ = np.asarray(st.latents)[:n_time_bins]
        self.headings_ = np.asarray(st.heading)[:n_time_bins]
        self.centroids_ = np.asarray(st.centroid)[:n_time_bins] * self.scale_ + offset
        states = np.asarray(st.ar.states)[:n_time_bins].astype(np.int32)
        self.states_ = np.where(
            np.asarray(data.position)[:n_time_bins] >= self.nlags, states, -1
        ).astype(np.int32)
        hist = dict(res.history)
        self.log_likelihood_history_ = hist.pop("log_likelihood")
        self.median_duration_history_ = hist.get("median_duration", np.zeros(0))
        self.check_iterations_ = np.asarray(hist.get("iteration", np.zeros(0)), int)
        self.n_iter_ = int(res.n_iter)
        return self

    # -------------------------------------------------------------- decode
    def _decode(self, X, confidence, session_starts):
        params = self._validated_params()
        coords, observed, conf, mask, info = self._read(
            X, confidence, session_starts, fitting=False
        )
        n_time_bins, _, n_dims = coords.shape
        scale = float(np.asarray(self.scale_))
        offset = np.array([coords[..., i][observed].mean() for i in range(n_dims)])
        y = np.where(observed[..., None], (coords - offset) / scale, 0.0)
        centroid, heading = self._align(y, observed, mask)
        data = self._to_device(y, observed, conf, mask)
        n = data.y.shape[0]
        pad = n - n_time_bins
        dtype = float_dtype()
        weights = np.asarray(
            getattr(self, "beta_", np.full(self.n_states, 1.0 / self.n_states)), float
        )
        latents, heading, centroid, states, kp_ll = decode_program(
            params,
            jnp.asarray(weights, dtype),
            jnp.asarray(self.noise_variance_, dtype),
            data,
            self._hyper(self._prior()),
            jnp.asarray(np.pad(heading, (0, pad)), dtype),
            jnp.asarray(np.pad(centroid, ((0, pad), (0, 0))), dtype),
            self._method(),
            self.block_size,
            int(self.n_decode_rounds),
        )
        prepared = PreparedData(
            arrays={"ar": ar_data(latents, data, self.nlags)},
            session_starts=data.starts,
            weights=data.valid,
            rows=np.arange(n_time_bins),
            n_time_bins=n_time_bins,
            info=info,
            extra={"kp_ll": float(kp_ll)},
        )
        conditioning = np.asarray(data.position)[:n_time_bins] < self.nlags
        return (
            params,
            prepared,
            latents,
            heading,
            centroid * scale + jnp.asarray(offset, dtype),
            states,
            conditioning,
        )

    def decode(
        self, X, confidence=None, session_starts=None, *, smoothed_proba: bool = False
    ) -> KeypointDecoding:
        """Latent pose, heading, centroid and Viterbi states of keypoints, deterministically.

        Parameters
        ----------
        X : array-like of shape (n_time_bins, n_keypoints, n_dims)
            Keypoints, as in [`fit`][behavhmm.KeypointSLDS.fit].
        confidence : array-like of shape (n_time_bins, n_keypoints), optional
        session_starts : array-like or pynapple IntervalSet, optional
        smoothed_proba : bool, default False
            Also return the smoothed state probabilities (what `smooth_proba`
            gives), from the same decoding instead of decoding again.

        Returns
        -------
        KeypointDecoding

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit``.
        ValueError
            For invalid input (see [`fit`][behavhmm.KeypointSLDS.fit]) or a
            different number of keypoints or dimensions than in ``fit``.
        """
        params, data, latents, heading, centroid, states, cond = self._decode(
            X, confidence, session_starts
        )
        t = data.n_time_bins
        probs = None
        if smoothed_proba:  # the smoother's pass yields the log-likelihood too
            post = posterior(params, data.arrays["ar"], False, self._method())
            hmm_ll = post.log_likelihood
            probs = np.array(post.smoothed_probs[:t])
            probs[cond] = np.nan
        else:
            _, hmm_ll = filter_program(
                params, data.arrays["ar"], robust=False, method=self._method()
            )
        states = self._merged_states(np.where(cond, -1, np.asarray(states)[:t]).astype(np.int32))
        probs = None if probs is None else self._merged_probs(probs)
        return KeypointDecoding(
            np.asarray(latents)[:t],
            np.asarray(heading)[:t],
            np.asarray(centroid)[:t],
            states,
            float(hmm_ll) + data.extra["kp_ll"],
            probs,
        )

    def score(self, X, confidence=None, session_starts=None, y=None) -> float:
        """Log-likelihood of keypoints under the model with the decoded latent variables.

        ``log p(X | x̂, ĥ, v̂, ŝ) + log p(x̂ | θ)``: the keypoints given the
        decoded latents, heading, centroid and noise scales, plus the AR-HMM
        marginal log-likelihood (states summed out) of the decoded latents.
        In nats, in normalised units (``scale_``).

        Parameters
        ----------
        X, confidence, session_starts
            As in [`decode`][behavhmm.KeypointSLDS.decode].
        y : Ignored
            Present for scikit-learn compatibility.

        Returns
        -------
        float

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit``.
        ValueError
            For invalid input.
        """
        return self.decode(X, confidence=confidence, session_starts=session_starts).log_likelihood

    def _probs(self, X, confidence, session_starts, smooth: bool):
        params, data, _, _, _, _, cond = self._decode(X, confidence, session_starts)
        if smooth:
            probs = posterior(params, data.arrays["ar"], False, self._method()).smoothed_probs
        else:
            probs, _ = filter_program(
                params, data.arrays["ar"], robust=False, method=self._method()
            )
        probs = np.array(probs[: data.n_time_bins])
        probs[cond] = np.nan
        return self._proba_output(probs, data, self.n_states)

    def smooth_proba(self, X, confidence=None, session_starts=None):
        """Posterior state probabilities given the decoded latents of each session.

        Parameters
        ----------
        X, confidence, session_starts
            As in [`decode`][behavhmm.KeypointSLDS.decode].

        Returns
        -------
        ndarray of shape (n_time_bins, n_states) or pynapple TsdFrame
            Rows sum to 1; NaN for the first ``nlags`` frames of each session.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit``.
        ValueError
            For invalid input.
        """
        return self._probs(X, confidence, session_starts, smooth=True)

    def filter_proba(self, X, confidence=None, session_starts=None):
        """Causal state probabilities given the decoded latents (forward filter).

        The latents themselves are smoothed over the session; only the state
        inference is causal.

        Parameters
        ----------
        X, confidence, session_starts
            As in [`decode`][behavhmm.KeypointSLDS.decode].

        Returns
        -------
        ndarray of shape (n_time_bins, n_states) or pynapple TsdFrame

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit``.
        ValueError
            For invalid input.
        """
        return self._probs(X, confidence, session_starts, smooth=False)

    def decode_state(self, X, confidence=None, session_starts=None, state_format: str = "one-hot"):
        """Viterbi syllables of keypoints (deterministic decoding, see the class notes).

        Parameters
        ----------
        X, confidence, session_starts
            As in [`decode`][behavhmm.KeypointSLDS.decode].
        state_format : {"one-hot", "index"}, default "one-hot"
            ``"index"``: int32 of shape (n_time_bins,), -1 for the first
            ``nlags`` frames of each session; ``"one-hot"``: (n_time_bins, n_states).

        Returns
        -------
        ndarray or pynapple Tsd / TsdFrame

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit``.
        ValueError
            For invalid input or ``state_format``.
        """
        self._check_state_format(state_format)
        _, data, _, _, _, states, cond = self._decode(X, confidence, session_starts)
        states = np.where(cond, -1, np.asarray(states)[: data.n_time_bins])
        return self._state_output(states, data, state_format, self.n_states)

    def predict(self, X, confidence=None, session_starts=None):
        """Viterbi state indices; ``decode_state(X, state_format="index")``.

        Parameters
        ----------
        X, confidence, session_starts
            As in [`decode`][behavhmm.KeypointSLDS.decode].

        Returns
        -------
        ndarray of int32, shape (n_time_bins,)
        """
        return self.decode_state(
            X, confidence=confidence, session_starts=session_starts, state_format="index"
        )

    # ------------------------------------------------------------ simulate
    def simulate(
        self, random_key, n_time_bins: int, session_starts=None, heading_step: float = 0.05
    ) -> KeypointSimulation:
        """Draw keypoints, latents and states from the model.

        The AR-HMM draws states and latents (the first ``nlags`` latents of a
        session are 0); the heading follows a Gaussian random walk with step
        ``heading_step`` radians from a uniform start (the model's prior on the
        heading is uniform per frame, which gives no smooth motion), the
        centroid a random walk with ``centroid_variance_`` from 0; the noise
        scales are drawn from their prior at confidence 1.

        Parameters
        ----------
        random_key : jax.random key or int
        n_time_bins : int
        session_starts : array-like, optional
            Boolean mask or start indices (default: one session).
        heading_step : float, default 0.05
            Standard deviation of the heading's frame-to-frame change (radians).

        Returns
        -------
        KeypointSimulation
            ``(keypoints, latents, states, heading, centroid)``; keypoints and
            centroid in the data's units (``scale_``), centred on 0.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit``.
        TypeError
            If ``random_key`` is not a key or int.
        ValueError
            For invalid ``n_time_bins`` or ``session_starts``.
        """
        params = self._validated_params()
        key = check_random_key(random_key)
        check_scalar(n_time_bins, "n_time_bins", numbers.Integral, min_val=1)
        check_scalar(heading_step, "heading_step", numbers.Real, min_val=0)
        mask = session_mask(session_starts, int(n_time_bins))
        k_ar, k_pose = jax.random.split(key)
        dtype = float_dtype()
        d = params.coef.shape[1]
        latents, states = simulate_program(
            k_ar,
            params,
            jnp.asarray(mask),
            jnp.zeros(int(n_time_bins), jnp.int32),
            jnp.zeros((self.nlags, d), dtype),
            int(self.nlags),
            False,
        )
        hyper = self._hyper(self._prior())
        kp, heading, centroid = simulate_poses_program(
            k_pose,
            latents,
            jnp.asarray(heading_step, dtype),
            jnp.asarray(float(np.asarray(self.centroid_variance_)), dtype),
            jnp.asarray(self.noise_variance_, dtype),
            jnp.asarray(self.noise_prior_scale, dtype),
            jnp.asarray(self.noise_dof, dtype),
            jnp.asarray(mask),
            hyper,
            int(self.nlags),
        )
        scale = float(np.asarray(self.scale_))
        return KeypointSimulation(
            np.asarray(kp) * scale,
            np.asarray(latents),
            np.asarray(states),
            np.asarray(heading),
            np.asarray(centroid) * scale,
        )
