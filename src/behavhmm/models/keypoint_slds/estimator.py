"""Keypoint switching linear dynamical system (Keypoint-MoSeq's model), fitted by Gibbs sampling.

Implemented from the model and conditionals described in Weinreb et al.
(2024) and its supplementary methods; no code of keypoint-moseq or jax-moseq
was used. Compiled programs are in ``gibbs.py``; the discrete part
reuses the ARHMM's sticky-HDP Gibbs sweep.
"""

from __future__ import annotations

from functools import partial
from typing import ClassVar

import jax
import numpy as np

from ...fitting import run_gibbs
from ...sessions import session_bounds
from .._checkpoints import checkpoint_meta, labels_digest, read_checkpoint, write_checkpoint
from ..arhmm import ARHMM
from ..arhmm._hooks import ARKernels
from ..arhmm.gibbs import gibbs_sweep
from ..arhmm.model import (
    median_duration_program,
)
from ..base import (
    INFERENCE_METHODS,
    BaseHMM,
    Bool,
    Integer,
    OneOf,
    Real,
)
from ._data import SLDSDataLayout
from .gibbs import (
    SLDSState,
    ar_data_program,
    slds_sweep,
    sweep_ar_data,
)
from .initialize import INIT_FRAMES as INIT_FRAMES
from .initialize import SLDSInitialization, _SLDSFitData
from .prediction import KeypointDecoding as KeypointDecoding
from .prediction import KeypointSimulation as KeypointSimulation
from .prediction import KeypointSLDSPrediction
from .validation import SLDSValidation

__all__ = ["KeypointSLDS", "KeypointDecoding", "KeypointSimulation"]


class KeypointSLDS(
    KeypointSLDSPrediction, ARKernels, SLDSValidation, SLDSDataLayout, SLDSInitialization, BaseHMM
):
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
        return self._fit_skeleton(
            X,
            confidence,
            session_starts,
            resume=resume,
            labels=labels,
            label_weight=label_weight,
            class_names=class_names,
        )

    def _run_loop(self, state: SLDSState, fd: _SLDSFitData, resume: bool):
        """Stages 4 and 5: the AR-only stage (or the resumed checkpoint), then the full chain."""
        data = fd.data
        checkpoint, meta = None, None
        if self.checkpoint_path is not None:
            meta = checkpoint_meta(
                self,
                (fd.coords, fd.observed, fd.conf, fd.mask),
                labels_sha256=labels_digest(fd.data.log_evidence),
            )
            checkpoint = partial(self._write_checkpoint, meta=meta, key=fd.key_chain)
        start, history = 0, None
        if resume:  # the AR-only stage ran before the checkpoint was written
            state, start, history = self._resume(state, meta, fd.key_chain)
        else:
            state = self._ar_only_stage(state, data, fd)
        return self._full_chain(state, data, fd, start, history, checkpoint)

    def _write_checkpoint(self, st, n_done, hist, *, meta, key):
        extra = {"ar_log_likelihood_history": self.ar_log_likelihood_history_}
        write_checkpoint(self.checkpoint_path, meta, st, n_done, hist, key, extra=extra)

    def _resume(self, state: SLDSState, meta, key):
        state, start, history, extra = read_checkpoint(
            self.checkpoint_path, meta, key, state, n_iter=int(self.n_iter)
        )
        if "ar_log_likelihood_history" not in extra:
            raise ValueError(
                f"The checkpoint at {self.checkpoint_path} lacks the AR-only stage's history."
            )
        self.ar_log_likelihood_history_ = np.asarray(extra["ar_log_likelihood_history"])
        return state, start, history

    def _ar_only_stage(self, state: SLDSState, data, fd: _SLDSFitData) -> SLDSState:
        """Warm start: the ARHMM's Gibbs sweep on the PC scores, with the same compiled program
        (same layout and shapes) as the discrete half of the full sweep."""
        if not self.n_iter_ar:
            self.ar_log_likelihood_history_ = np.zeros(0)
            return state
        key_ar_chain = jax.random.split(fd.key_ar, 3)[2]
        hyper, method = self._hyper(self._prior()), self._method()
        ardata = sweep_ar_data(state.latents, data, int(self.nlags), int(self.n_states))
        # the arguments exactly as `slds_sweep` passes them (block_size included, by position):
        # jit keys its cache on how they are passed, and the full sweep then reuses this program
        res_ar = run_gibbs(
            lambda st, k: gibbs_sweep(st, k, ardata, hyper.ar, False, method, self.block_size),
            state.ar,
            key_ar_chain,
            n_iter=int(self.n_iter_ar),
            n_frames=fd.coords.shape[0],
            progress_bar=self.progress_bar,
            desc=f"KeypointSLDS AR-only (K={self.n_states})",
        )
        self.ar_log_likelihood_history_ = np.asarray(res_ar.history["log_likelihood"])
        return state._replace(ar=res_ar.state)

    def _full_chain(self, state, data, fd: _SLDSFitData, start, history, checkpoint):
        """The keypoint SLDS's Gibbs chain; a non-finite sweep names the sparse sessions."""
        hyper, method, block_size = self._hyper(self._prior()), self._method(), self.block_size

        def sweep(st, k):
            return slds_sweep(st, k, data, hyper, method, block_size)

        def evaluate(st):
            ad = ar_data_program(st.latents, data, int(self.nlags))
            duration = median_duration_program(st.ar.states, ad.starts, ad.weights)
            return {"median_duration": float(duration)}

        try:
            res = run_gibbs(
                sweep,
                state,
                fd.key_chain,
                n_iter=int(self.n_iter),
                start_iteration=start,
                history=history,
                check_every=int(self.check_every),
                evaluate=evaluate,
                n_frames=fd.coords.shape[0],
                progress_bar=self.progress_bar,
                desc=f"KeypointSLDS gibbs (K={self.n_states})",
                checkpoint=checkpoint,
                checkpoint_every=self.checkpoint_every,
            )
        except FloatingPointError as exc:
            raise FloatingPointError(f"{exc}{self._sparse_hint(fd)}") from None
        return res

    @staticmethod
    def _sparse_hint(fd: _SLDSFitData) -> str:
        bounds = zip(*session_bounds(fd.mask), strict=True)
        sparse = [i for i, (a, b) in enumerate(bounds) if fd.observed[a:b].any(axis=1).mean() < 0.5]
        if not sparse:
            return ""
        return (
            f" Sessions {sparse[:10]} have keypoints in less than half of their frames: long "
            "unobserved stretches let the latent dynamics diverge. Drop such track fragments or "
            "split sessions at long gaps (behavhmm.workflows.load_and_clean drops them)."
        )

    def _store(self, res, fd: _SLDSFitData) -> None:
        """Stage 6: the fitted attributes from the chain's last sample."""
        st, position = res.state, np.asarray(fd.data.position)
        n_time_bins = fd.coords.shape[0]
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
        self.centroids_ = np.asarray(st.centroid)[:n_time_bins] * self.scale_ + fd.offset
        states = np.asarray(st.ar.states)[:n_time_bins].astype(np.int32)
        self.states_ = np.where(position[:n_time_bins] >= self.nlags, states, -1).astype(np.int32)
        hist = dict(res.history)
        self.log_likelihood_history_ = hist.pop("log_likelihood")
        self.median_duration_history_ = hist.get("median_duration", np.zeros(0))
        self.check_iterations_ = np.asarray(hist.get("iteration", np.zeros(0)), int)
        self.n_iter_ = int(res.n_iter)
