"""Autoregressive hidden Markov model (ARHMM) for pose and PC-score time series.

The estimator (API, the fit's stages, the loop over the jitted steps) lives here; checks in
``validation.py``, data layout in ``_data.py``, initializers in ``initialize.py``, the kappa
search, checkpoints and one chain's set-up in ``_chain.py``; the jitted programs in
``model.py`` (prediction, simulation), ``em.py`` (MAP-EM) and ``gibbs.py`` (Gibbs).
"""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp
import numpy as np

from ..._utils import float_dtype
from ...fitting import run_em, run_gibbs
from .._initializers import (
    CHAIN_SLOTS,
    InitSlot,
)
from ..base import (
    INFERENCE_METHODS,
    BaseHMM,
    Bool,
    Integer,
    OneOf,
    Real,
)
from ._chain import ARChain, ChainResult, _Loop
from ._data import ARDataLayout, _ARFitData, sampler_rows
from ._hooks import ARKernels
from .em import em_step
from .gibbs import GibbsState, gibbs_sweep, log_joint_program
from .initialize import AR_PARAMS_REGISTRY as AR_PARAMS_REGISTRY
from .initialize import INITIAL_DOF as INITIAL_DOF
from .initialize import ARInitialization
from .initialize import kmeans_ar_params as kmeans_ar_params
from .initialize import labels_ar_params as labels_ar_params
from .initialize import lagged_design as lagged_design
from .initialize import random_ar_params as random_ar_params
from .model import (
    ARHMMParams,
    median_duration_program,
    viterbi_program,
)
from .prediction import ARHMMPrediction
from .validation import ARValidation

__all__ = ["ARHMM", "ARHMMParams", "lagged_design", "kmeans_ar_params", "random_ar_params"]


_ALGORITHMS = ("em", "gibbs")
_WHITEN = ("none", "all", "each")
_HELDOUT_BY = ("frames", "sessions")
_COVARIANCE_PRIORS = ("fixed", "empirical")


class ARHMM(
    ARHMMPrediction, ARKernels, ARValidation, ARDataLayout, ARInitialization, ARChain, BaseHMM
):
    """Autoregressive hidden Markov model (MoSeq's AR-HMM), fitted by MAP-EM or Gibbs sampling.

    Each hidden state (a behavioural *syllable*) has its own linear
    autoregressive dynamics: in state ``k``,
    ``y_t = A_k [y_{t-1}; ...; y_{t-nlags}] + b_k + ε_t`` with
    ``ε_t ~ N(0, Σ_k)`` (or Student-t with ``robust=True``), and states follow
    a sticky Markov chain that resets at every session start.

    Parameters
    ----------
    n_states : int, default 100
        Number of states (syllables); with Gibbs sampling an upper bound (the
        weak-limit HDP leaves unneeded states unused). MoSeq's default.
    nlags : int, default 3
        Autoregressive order. 0 gives a Gaussian HMM.
    algorithm : {"em", "gibbs"}, default "em"
        MAP expectation-maximisation, or the weak-limit sticky HDP-AR-HMM
        Gibbs sampler of MoSeq (Wiltschko et al., 2015; Fox et al., 2011).
    kappa : float, default 1e6
        Stickiness: pseudo-counts (EM) or Dirichlet mass (Gibbs) added to each
        self-transition. Larger values give longer syllables; tune it with
        ``target_duration`` or :func:`behavhmm.analysis.kappa_scan`.
    alpha : float, default 5.7
        Concentration of the transition rows (and initial distribution).
        EM adds ``alpha / n_states`` pseudo-counts per entry. MoSeq's default.
    gamma : float, default 1000.0
        Top-level concentration of the HDP prior on state usage (Gibbs only).
    robust : bool, default False
        Student-t emissions (heavy-tailed, resistant to tracking outliers),
        written as a Gaussian scale mixture with per-frame precisions and
        per-state degrees of freedom (``dof_``): ECM for EM, Metropolis-Hastings
        for ``dof_`` in Gibbs.
    separate_trans : bool, default False
        One transition matrix per group of sessions (``groups`` in ``fit``),
        shared autoregressive dynamics.
    whiten : {"all", "each", "none"}, default "none"
        Whiten the input: with the mean and covariance of all training frames
        (stored, applied again to new data), or of each session on its own
        (moseq2-model's default is "all"). The fitted dynamics then live in
        the whitened space; log-likelihoods are reported for the original data
        (the Jacobian is included). "none" models the data as given: the
        priors (``S_0 = 0.01 I``, ``K_0 = 10 I``) then assume features of
        unit scale, and raw PC scores (scale ~100, offsets ~500) make the
        float32 regressions ill-conditioned.
    n_iter : int, default 100
        Maximum EM iterations, or number of Gibbs sweeps.
    tol : float, default 1e-4
        EM stops when the log joint changes by less than ``tol`` nats per frame.
    check_every : int, default 10
        Record diagnostics (log joint, held-out log-likelihood, median
        syllable duration) every ``check_every`` iterations or sweeps.
    heldout_fraction : float, default 0.0
        Fraction of the data held out to track ``heldout_log_likelihood_history_``.
    heldout_by : {"frames", "sessions"}, default "frames"
        Hold out the last ``heldout_fraction`` of every session, or that
        fraction of whole sessions.
    target_duration : float, optional
        Wanted median syllable duration in frames: ``fit`` then chooses
        ``kappa`` by bisection in ``log10(kappa)`` (stored in ``kappa_``).
    checkpoint_path : str or path, optional
        Write the fit's state there every ``checkpoint_every`` iterations
        (atomically); ``fit(..., resume=True)`` continues from it, bit for bit.
    checkpoint_every : int, optional
        Iterations between checkpoints (default: only at the end).
    covariance_prior : {"fixed", "empirical"}, default "fixed"
        ``S_0 = covariance_prior_scale * I``, or empirical Bayes:
        ``S_0 = covariance_prior_scale * cov(y_t - y_{t-1})`` from the training data.
    covariance_prior_scale : float, default 0.01
        Scale of ``S_0`` (squared units of the (whitened) data).
    covariance_prior_dof : float, optional
        Inverse-Wishart degrees of freedom ``ν_0``; default ``n_features + 2``.
    coef_prior_variance : float, default 10.0
        ``K_0 = coef_prior_variance * I``, the column covariance of the
        matrix-normal prior on ``[A_k, b_k]`` (prior mean: identity on the
        newest lag).
    inference_method : {"auto", "sequential", "parallel"}, default "auto"
        HMM kernels: sequential scans (CPU) or associative scans (GPU).
    block_size : int, optional
        Memory knob: frames per block of the sums over frames (sufficient
        statistics, residual scatter). Default: blocks of about 64 MiB. See
        the Scale page of the docs for the bytes per frame of a fit.
    random_state : int, numpy Generator or None, default 0
        Seed of the initialisation and of the Gibbs chain.
    progress_bar : bool, default True
        Show progress while fitting: a tqdm bar on a terminal, a plain line
        every 10 % of the iterations when stderr is not a terminal (logs).
    initialization_funcs : dict, optional
        Initializers chosen with [`setup`][behavhmm.ARHMM.setup] (slots
        ``initial_proba_init``: "uniform" | "random"; ``transition_proba_init``:
        "sticky" | "uniform" | "random"; ``ar_params_init``: "kmeans" |
        "random"; each also a callable, with ``<slot>_kwargs``).

    Attributes
    ----------
    initial_prob_ : ndarray of shape (n_states,)
        ``p(z_s)`` at a session's first emitted frame.
    transition_prob_ : ndarray of shape (n_states, n_states) or (n_groups, n_states, n_states)
        ``[i, j] = p(z_t = j | z_{t-1} = i)``; one matrix per group with
        ``separate_trans=True``.
    coef_ : ndarray of shape (n_states, n_features, nlags * n_features)
        ``A_k``. Column block ``l`` (``coef_[k][:, l*n_features:(l+1)*n_features]``,
        0-based) multiplies ``y_{t-l-1}``: newest lag first.
    intercept_ : ndarray of shape (n_states, n_features)
        ``b_k``.
    covariances_ : ndarray of shape (n_states, n_features, n_features)
        ``Σ_k`` (the Student-t scale matrix with ``robust=True``).
    dof_ : ndarray of shape (n_states,)
        Student-t degrees of freedom (``robust=True`` only).
    beta_ : ndarray of shape (n_states,)
        Global state weights of the HDP (Gibbs only).
    groups_ : ndarray of shape (n_groups,)
        Group labels, in the order of ``transition_prob_`` (``separate_trans``).
    whiten_mean_, whiten_matrix_ : ndarrays of shape (n_features,), (n_features, n_features)
        Whitening applied to new data: ``(X - mean) @ matrix.T`` (``whiten="all"``).
    kappa_ : float
        The stickiness used (``kappa``, or the value found for ``target_duration``).
    log_likelihood_history_ : ndarray of shape (n_iter_,)
        Training marginal log-likelihood (nats) of the parameters entering each
        iteration or sweep.
    log_joint_history_ : ndarray
        EM: log-likelihood plus log prior (up to a constant) every iteration,
        never decreasing. Gibbs: ``log p(X, z, θ)`` at each check.
    heldout_log_likelihood_history_ : ndarray
        Held-out log-likelihood at each check (``heldout_fraction > 0``).
    median_duration_history_ : ndarray
        Median syllable duration (frames) at each check.
    check_iterations_ : ndarray of int
        Iterations at which the check histories were recorded.
    n_iter_ : int
        Iterations or sweeps run.
    converged_ : bool
        Whether EM met ``tol`` (always False for Gibbs).
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of str
        Column names, when ``X`` was a DataFrame with string columns.

    Notes
    -----
    **Sessions.** ``session_starts`` marks where recordings begin; the chain
    and the autoregression restart there. The first ``nlags`` frames of each
    session only condition the dynamics and have no state: ``decode_state``
    returns -1 (index) or a zero row (one-hot) for them, ``smooth_proba`` and
    ``filter_proba`` rows of NaN, and ``score`` does not count them. NaN rows
    at the start or end of a session (epoch) are dropped the same way.

    **EM.** The E-step runs the session-aware forward-backward smoother. The
    M-step is the exact joint posterior mode: transition rows
    ``(N_ij + alpha/K + kappa δ_ij) / (N_i + alpha + kappa)``; the initial
    distribution with ``alpha/K`` pseudo-counts per state; and ``(A_k, b_k, Σ_k)``
    the matrix-normal inverse-Wishart mode (see
    [`mniw_map`][behavhmm.observations.autoregressive.mniw_map]). The log
    joint therefore never decreases. With ``robust=True`` the M-step weights
    frames by ``E[τ_t]`` and updates ``dof_`` by conditional maximisation
    (ECM; Liu & Rubin, 1995).

    **Gibbs.** Each sweep draws the states by forward-filtering
    backward-sampling (Student-t likelihoods with the precisions integrated
    out), the HDP's auxiliary table counts with the sticky override
    correction, ``β``, the transition rows ``π_j ~ Dir(α β + κ e_j + n_j)``,
    (the precisions ``τ_t`` and ``dof_``), and ``(A_k, b_k, Σ_k)`` from their
    MNIW posterior. The fitted attributes are the **final sample** of the
    chain; predictions on new data are deterministic given them.

    **Parameters from elsewhere.** Setting ``initial_prob_``,
    ``transition_prob_``, ``coef_``, ``intercept_`` and ``covariances_`` by
    hand (with ``dof_`` for ``robust``, ``groups_`` for several transition
    matrices, ``whiten_mean_``/``whiten_matrix_`` for ``whiten="all"``) gives a
    model that predicts with exactly those parameters; they are checked at
    every call.

    References
    ----------
    A. B. Wiltschko et al. (2015). Mapping sub-second structure in mouse
    behavior. Neuron 88(6), 1121-1135.

    E. B. Fox, E. B. Sudderth, M. I. Jordan and A. S. Willsky (2011). A sticky
    HDP-HMM with application to speaker diarization. Ann. Appl. Stat. 5(2A),
    1020-1056.

    C. Liu and D. B. Rubin (1995). ML estimation of the t distribution using
    EM and its extensions, ECM and ECME. Statistica Sinica 5, 19-39.

    Examples
    --------
    >>> import jax, numpy as np
    >>> from behavhmm import ARHMM
    >>> truth = ARHMM(n_states=2, nlags=1)
    >>> truth.initial_prob_ = np.array([0.5, 0.5])
    >>> truth.transition_prob_ = np.array([[0.95, 0.05], [0.05, 0.95]])
    >>> truth.coef_ = np.array([[[0.9]], [[-0.5]]])
    >>> truth.intercept_ = np.array([[1.0], [-1.0]])
    >>> truth.covariances_ = np.array([[[0.1]], [[0.1]]])
    >>> X, states = truth.simulate(jax.random.key(0), n_time_bins=500)
    >>> model = ARHMM(n_states=2, nlags=1, kappa=10.0, progress_bar=False).fit(X)
    >>> model.decode_state(X, state_format="index").shape
    (500,)
    """

    # ``groups`` (labels per session) shares its name with scikit-learn's splitter
    # groups: not routed by default; alias it, e.g. ``set_fit_request(groups="genotype")``.
    __metadata_request__fit = {"session_starts": True, "groups": False, "resume": False}
    __metadata_request__score = {"session_starts": True, "groups": False}
    __metadata_request__predict = {"session_starts": True, "groups": False}
    __metadata_request__predict_proba = {"session_starts": True, "groups": False}

    _init_slots = {
        **CHAIN_SLOTS,
        "ar_params_init": InitSlot(
            AR_PARAMS_REGISTRY,
            "kmeans",
            context=("nlags", "prior"),
            returns="a tuple (coef, intercept, covariances)",
        ),
    }

    def __init__(
        self,
        n_states: int = 100,
        nlags: int = 3,
        *,
        algorithm: str = "em",
        kappa: float = 1e6,
        alpha: float = 5.7,
        gamma: float = 1000.0,
        robust: bool = False,
        separate_trans: bool = False,
        whiten: str = "none",
        n_iter: int = 100,
        tol: float = 1e-4,
        check_every: int = 10,
        heldout_fraction: float = 0.0,
        heldout_by: str = "frames",
        target_duration: float | None = None,
        checkpoint_path=None,
        checkpoint_every: int | None = None,
        covariance_prior: str = "fixed",
        covariance_prior_scale: float = 0.01,
        covariance_prior_dof: float | None = None,
        coef_prior_variance: float = 10.0,
        inference_method: str = "auto",
        block_size: int | None = None,
        random_state=0,
        progress_bar: bool = True,
        initialization_funcs: dict | None = None,
    ):
        self.n_states = n_states
        self.nlags = nlags
        self.algorithm = algorithm
        self.kappa = kappa
        self.alpha = alpha
        self.gamma = gamma
        self.robust = robust
        self.separate_trans = separate_trans
        self.whiten = whiten
        self.n_iter = n_iter
        self.tol = tol
        self.check_every = check_every
        self.heldout_fraction = heldout_fraction
        self.heldout_by = heldout_by
        self.target_duration = target_duration
        self.checkpoint_path = checkpoint_path
        self.checkpoint_every = checkpoint_every
        self.covariance_prior = covariance_prior
        self.covariance_prior_scale = covariance_prior_scale
        self.covariance_prior_dof = covariance_prior_dof
        self.coef_prior_variance = coef_prior_variance
        self.inference_method = inference_method
        self.block_size = block_size
        self.random_state = random_state
        self.progress_bar = progress_bar
        self.initialization_funcs = initialization_funcs

    # ----------------------------------------------------------- validation
    _hyperparameters: ClassVar[dict] = {
        "n_states": Integer(1),
        "nlags": Integer(0),
        "algorithm": OneOf(_ALGORITHMS),
        "kappa": Real(0),
        "alpha": Real(0, closed="neither"),
        "gamma": Real(0, closed="neither"),
        "robust": Bool(),
        "separate_trans": Bool(),
        "whiten": OneOf(_WHITEN),
        "n_iter": Integer(1),
        "tol": Real(0),
        "check_every": Integer(1),
        "heldout_fraction": Real(0, 1, closed="left"),
        "heldout_by": OneOf(_HELDOUT_BY),
        "target_duration": Real(1, optional=True),
        "checkpoint_every": Integer(1, optional=True),
        "covariance_prior": OneOf(_COVARIANCE_PRIORS),
        "covariance_prior_scale": Real(0, closed="neither"),
        "coef_prior_variance": Real(0, closed="neither"),
        "covariance_prior_dof": Real(optional=True),
        "inference_method": OneOf(INFERENCE_METHODS),
        "block_size": Integer(1, optional=True),
        "progress_bar": Bool(),
    }

    def fit(
        self,
        X,
        y=None,
        session_starts=None,
        groups=None,
        resume: bool = False,
        labels=None,
        label_weight=1.0,
        class_names=None,
    ):
        """Fit the ARHMM by MAP-EM or Gibbs sampling (``algorithm``), optionally given hand labels.

        Parameters
        ----------
        X : array-like or pynapple TsdFrame of shape (n_time_bins, n_features)
            Pose features or PC scores, sessions concatenated in time.
        y : Ignored
            Present for scikit-learn compatibility.
        session_starts : array-like or pynapple IntervalSet, optional
            Boolean mask of shape (n_time_bins,) marking session starts, or
            their integer indices, or (with pynapple ``X``) an IntervalSet.
            Default: one session, or one per epoch of ``X.time_support``.
        groups : array-like, optional
            One label per session (or per time bin, constant within sessions),
            e.g. genotype. Required with ``separate_trans=True``; ignored otherwise.
        resume : bool, default False
            Continue the chain (or EM run) saved at ``checkpoint_path`` up to
            ``n_iter`` iterations, bit for bit as if it had not stopped.
        labels : array-like of int of shape (n_time_bins,) or pynapple Tsd, optional
            Hand labels (see [`behavhmm.labels`][behavhmm.labels]): ``c`` ties
            frame ``t`` to state ``c`` (states ``0..C-1`` are the labelled
            classes), -1 leaves it free; or evidence of shape (n_time_bins,
            n_states). Labels on a session's first ``nlags`` frames or on
            held-out frames are ignored with a warning. Routed like
            ``session_starts``.
        label_weight : float in [0, 1], default 1.0
            ``e_t(k) = 1`` for the label and ``1 - label_weight`` for the
            others: 1 clamps the state, 0 ignores the labels.
        class_names : sequence of str, optional
            Names of the labelled classes, kept as ``class_names_`` (default
            with labels: "0", ..., "C-1").

        Returns
        -------
        self : ARHMM
            The fitted estimator.

        Raises
        ------
        ValueError
            For bad shapes, non-finite values, NaN inside a session,
            out-of-range ``session_starts``, sessions with ``nlags`` frames or
            fewer, missing or unknown ``groups``, a checkpoint that does not
            match, or invalid hyperparameters; labels of the wrong length,
            outside ``[-1, n_states)`` or on NaN frames, or ``label_weight``
            outside [0, 1].
        TypeError
            For hyperparameters of the wrong type.
        FloatingPointError
            If the fit reaches a non-finite log-likelihood.

        Warns
        -----
        sklearn.exceptions.ConvergenceWarning
            If EM stops at ``n_iter`` before meeting ``tol``.

        Notes
        -----
        With labels, ``log e_t(k)`` is added to the emission log-likelihoods
        (EM and Gibbs; [`behavhmm.labels.label_evidence`][behavhmm.labels.label_evidence]):
        ``log_likelihood_history_`` is then ``log p(X, labels | θ)``.
        Prediction methods do not use labels.
        """
        return self._fit_skeleton(
            X,
            session_starts,
            groups,
            resume=resume,
            labels=labels,
            label_weight=label_weight,
            class_names=class_names,
        )

    _optional_fitted = (
        "dof_",
        "beta_",
        "groups_",
        "whiten_mean_",
        "whiten_matrix_",
        "heldout_log_likelihood_history_",
    )

    def _initialize(self, fd: _ARFitData) -> ARHMMParams:
        return self._initial_params(
            fd.train_raw, fd.train_starts, fd.prior, fd.n_groups, fd.key_init, fd.init_labels
        )

    def _em_chain(self, init, loop: _Loop, resumed, kappa) -> ChainResult:
        """MAP-EM with ``run_em`` over ``em_step`` (looked up in this module)."""
        state, start, history, checkpoint = resumed
        data, jac = loop.train.arrays["ar"], loop.train.extra["log_jacobian"]
        hyper, robust, method = loop.hyper, loop.robust, loop.method

        def step(params):
            new, ll, lp = em_step(params, data, hyper, robust, method, self.block_size)
            return new, ll + jac, lp

        def evaluate(params):
            states = viterbi_program(params, data, robust=robust, method=method)
            dur = median_duration_program(states, data.starts, data.weights)
            return {"median_duration": float(dur), **self._heldout_ll(params, loop)}

        res = run_em(
            step,
            init if state is None else state,
            n_iter=self.n_iter,
            tol=self.tol,
            n_frames=loop.train.n_frames,
            progress_bar=loop.progress,
            desc=loop.desc,
            check_every=self.check_every,
            evaluate=evaluate,
            start_iteration=start,
            history=history,
            checkpoint=checkpoint,
            checkpoint_every=self.checkpoint_every,
        )
        return ChainResult(
            params=res.params,
            log_likelihood=res.log_likelihood_history,
            log_joint=res.log_joint_history,
            history=res.history,
            n_iter=res.n_iter,
            converged=res.converged,
            beta=None,
            states=None,
            train=loop.train,
            kappa=kappa,
        )

    def _gibbs_chain(self, init, loop: _Loop, resumed, kappa, key) -> ChainResult:
        """The sticky-HDP Gibbs chain with ``run_gibbs`` over ``gibbs_sweep`` (this module's)."""
        state, start, history, checkpoint = resumed
        data, jac = loop.train.arrays["ar"], loop.train.extra["log_jacobian"]
        hyper, robust, method = loop.hyper, loop.robust, loop.method
        data = data._replace(rows=sampler_rows(data, self.n_states))
        if state is None:
            n_padded = data.y.shape[0]
            dtype = float_dtype()
            state = GibbsState(
                init,
                jnp.full(self.n_states, 1.0 / self.n_states, dtype),
                jnp.zeros(n_padded, jnp.int32),
                jnp.ones(n_padded, dtype),
            )

        def sweep(st, k):
            new, ll = gibbs_sweep(
                st, k, data, hyper, robust=robust, method=method, block_size=self.block_size
            )
            return new, ll + jac

        def evaluate(st):
            lj = log_joint_program(st, data, hyper, robust=robust)
            dur = median_duration_program(st.states, data.starts, data.weights)
            return {
                "log_joint": float(lj) + jac,
                "median_duration": float(dur),
                **self._heldout_ll(st.params, loop),
            }

        res = run_gibbs(
            sweep,
            state,
            key,
            n_iter=self.n_iter,
            start_iteration=start,
            history=history,
            check_every=self.check_every,
            evaluate=evaluate,
            n_frames=loop.train.n_frames,
            progress_bar=loop.progress,
            desc=loop.desc,
            checkpoint=checkpoint,
            checkpoint_every=self.checkpoint_every,
        )
        hist = dict(res.history)
        return ChainResult(
            params=res.state.params,
            log_likelihood=hist.pop("log_likelihood"),
            log_joint=hist.pop("log_joint", np.zeros(0)),
            history=hist,
            n_iter=res.n_iter,
            converged=False,
            beta=res.state.beta,
            states=res.state.states,
            train=loop.train,
            kappa=kappa,
        )
