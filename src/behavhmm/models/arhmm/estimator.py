"""Autoregressive hidden Markov model (ARHMM) for pose and PC-score time series.

The estimator (API, validation, data layout, fitting control) lives here; its
compiled programs (EM, Gibbs, prediction, simulation) are in ``_ar_programs``.
"""

from __future__ import annotations

import numbers
import warnings
from functools import partial
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_scalar

from ..._utils import bucket_length, float_dtype
from ...fitting import run_em, run_gibbs
from ...fitting._progress import progress
from ...labels import complete_labels, label_evidence, padded_log_evidence, restrict_evidence
from ...observations import MNIWPrior, ar_sufficient_statistics, default_mniw_prior, mniw_map
from ...sessions import drop_nan_borders, session_bounds, session_ids, session_mask, wrap_output
from .._checkpoints import checkpoint_meta, read_checkpoint, write_checkpoint
from .._initializers import (
    PROBA_INITIAL_REGISTRY,
    PROBA_TRANSITION_REGISTRY,
    InitSlot,
    kmeans_labels,
    random_segment_labels,
    seed_from_key,
)
from ..base import (
    INFERENCE_METHODS,
    BaseHMM,
    Bool,
    Integer,
    OneOf,
    PreparedData,
    Real,
    check_initializer_output,
    check_probabilities,
    check_random_key,
)
from .em import em_step
from .gibbs import GibbsState, gibbs_sweep, log_joint_program
from .model import (
    ARData,
    ARHMMParams,
    Hyper,
    filter_program,
    log_likelihood_program,
    median_duration_program,
    posterior,
    simulate_program,
    viterbi_program,
)

__all__ = ["ARHMM", "ARHMMParams", "lagged_design", "kmeans_ar_params", "random_ar_params"]


def lagged_design(X: np.ndarray, session_starts: np.ndarray, nlags: int):
    """Split sessions into emitted frames and their lags.

    Parameters
    ----------
    X : ndarray of shape (n_time_bins, n_features)
        Frames, NaN-free.
    session_starts : ndarray of bool, shape (n_time_bins,)
        Session starts.
    nlags : int
        Number of lags; the first ``nlags`` frames of each session only
        condition the model.

    Returns
    -------
    y : ndarray of shape (n_frames, n_features)
        Emitted frames.
    x : ndarray of shape (n_frames, nlags * n_features)
        ``[y_{t-1}, ..., y_{t-nlags}]`` for each emitted frame (newest first).
    rows : ndarray of int, shape (n_frames,)
        Row of each emitted frame in ``X``.
    starts : ndarray of bool, shape (n_frames,)
        First emitted frame of each session.

    Raises
    ------
    ValueError
        If a session has ``nlags`` frames or fewer.
    """
    n_time_bins = X.shape[0]
    if n_time_bins <= nlags:
        raise ValueError(
            f"X has n_samples={n_time_bins} frame(s); an ARHMM with nlags={nlags} needs at least "
            f"{nlags + 1} frames per session (the first {nlags} only condition the model)."
        )
    begin, end = session_bounds(session_starts)
    lengths = end - begin
    short = lengths <= nlags
    if np.any(short):
        i = int(np.flatnonzero(short)[0])
        raise ValueError(
            f"Session {i} (time bins {begin[i]}-{end[i] - 1}) has {lengths[i]} frame(s); an ARHMM "
            f"with nlags={nlags} needs at least {nlags + 1} frames per session (the first "
            f"{nlags} only condition the model). Drop or merge short sessions, or lower nlags."
        )
    sid = np.cumsum(np.asarray(session_starts, bool)) - 1 if n_time_bins else np.zeros(0, int)
    position = np.arange(n_time_bins) - begin[sid]
    rows = np.flatnonzero(position >= nlags)
    y = X[rows]
    x = (
        np.concatenate([X[rows - lag] for lag in range(1, nlags + 1)], axis=1)
        if nlags
        else np.zeros((len(rows), 0), X.dtype)
    )
    starts = position[rows] == nlags
    return y, x, rows, starts


# ----------------------------------------------------------------------------
# built-in initializers of the AR parameters
# ----------------------------------------------------------------------------


@jax.jit
def _regress_on_weights(weights, y, x, prior: MNIWPrior):
    return mniw_map(ar_sufficient_statistics(weights, y, x), prior)


def _regress_on_labels(labels, n_states, y, x, prior):
    dtype = float_dtype()
    weights = jax.nn.one_hot(jnp.asarray(labels), n_states, dtype=dtype)
    coef, intercept, covariances = _regress_on_weights(
        weights,
        jnp.asarray(y, dtype),
        jnp.asarray(x, dtype),
        jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), prior),
    )
    return np.asarray(coef), np.asarray(intercept), np.asarray(covariances)


def kmeans_ar_params(
    n_states, X, session_starts, random_key, *, nlags, prior, max_frames=20000, **kwargs
):
    """Cluster frames with their lags by k-means, then fit each cluster's AR model.

    Each frame is described by ``[y_t, y_{t-1}, ..., y_{t-nlags}]`` (columns
    z-scored); scikit-learn's ``KMeans`` (one initialisation, on at most
    ``max_frames`` random frames) groups them into ``n_states`` clusters and
    every cluster's coefficients and covariance are the MNIW posterior mode.

    Returns
    -------
    coef, intercept, covariances : ndarrays
        Shapes (n_states, n_features, nlags * n_features), (n_states,
        n_features) and (n_states, n_features, n_features).

    Raises
    ------
    ValueError
        If there are fewer emitted frames than states.
    """
    y, x, _, _ = lagged_design(np.asarray(X, float), session_starts, nlags)
    if len(y) < n_states:
        raise ValueError(
            f"k-means initialisation needs at least n_states={n_states} frames, got {len(y)}."
        )
    labels = kmeans_labels(np.concatenate([y, x], axis=1), n_states, random_key, max_frames)
    return _regress_on_labels(labels, n_states, y, x, prior)


def random_ar_params(
    n_states, X, session_starts, random_key, *, nlags, prior, segment_length=10, **kwargs
):
    """Label consecutive segments of ``segment_length`` frames with random states, then fit.

    Returns
    -------
    coef, intercept, covariances : ndarrays
        As [`kmeans_ar_params`][behavhmm.models.arhmm.estimator.kmeans_ar_params].
    """
    y, x, _, _ = lagged_design(np.asarray(X, float), session_starts, nlags)
    labels = random_segment_labels(len(y), n_states, random_key, segment_length)
    return _regress_on_labels(labels, n_states, y, x, prior)


def labels_ar_params(
    n_states, X, session_starts, random_key, *, nlags, prior, labels=None, **kwargs
):
    """Each labelled class's AR model from its frames; free states from seeded k-means.

    Frames ``[y_t, y_{t-1}, ..., y_{t-nlags}]`` get a state by
    [`behavhmm.labels.complete_labels`][behavhmm.labels.complete_labels] (``labels``
    are on the frames of ``X``; those of a session's first ``nlags`` frames are
    unused), then each state's MNIW posterior mode is fitted as in
    [`kmeans_ar_params`][behavhmm.models.arhmm.estimator.kmeans_ar_params].
    ``setup(ar_params_init="labels")``, the default when ``fit`` has labels.

    Raises
    ------
    ValueError
        If no labels were passed.
    """
    if labels is None:
        raise ValueError('ar_params_init="labels" needs labels: call fit(..., labels=...).')
    y, x, rows, _ = lagged_design(np.asarray(X, float), session_starts, nlags)
    features = np.concatenate([y, x], axis=1)
    states = complete_labels(
        features, np.asarray(labels)[rows], n_states, seed_from_key(random_key)
    )
    return _regress_on_labels(states, n_states, y, x, prior)


AR_PARAMS_REGISTRY = {
    "kmeans": kmeans_ar_params,
    "random": random_ar_params,
    "labels": labels_ar_params,
}


# ----------------------------------------------------------------------------
# the estimator
# ----------------------------------------------------------------------------


_ALGORITHMS = ("em", "gibbs")
_WHITEN = ("none", "all", "each")
_HELDOUT_BY = ("frames", "sessions")
_COVARIANCE_PRIORS = ("fixed", "empirical")
INITIAL_DOF = 10.0  # starting degrees of freedom of robust (Student-t) fits


def _whitening(frames: np.ndarray):
    """Mean, symmetric whitening matrix ``C^{-1/2}`` and ``log|det C^{-1/2}|`` of some frames."""
    mean = frames.mean(axis=0)
    cov = np.atleast_2d(np.cov(frames, rowvar=False))
    vals, vecs = np.linalg.eigh(cov)
    floor = max(vals.max(), 1e-300) * 1e-10
    vals = np.maximum(vals, floor)
    matrix = (vecs / np.sqrt(vals)) @ vecs.T
    return mean, matrix, -0.5 * float(np.sum(np.log(vals)))


class ARHMM(BaseHMM):
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
    whiten : {"all", "each", "none"}, default "all"
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
        "initial_proba_init": InitSlot(
            PROBA_INITIAL_REGISTRY, "uniform", returns="an array of shape (n_states,)"
        ),
        "transition_proba_init": InitSlot(
            PROBA_TRANSITION_REGISTRY, "sticky", returns="an array of shape (n_states, n_states)"
        ),
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
        "progress_bar": Bool(),
    }

    def _check_hyperparameter_rules(self):
        if self.checkpoint_every is not None and self.checkpoint_path is None:
            raise ValueError("checkpoint_every needs checkpoint_path.")

    def _prior(self, n_features: int, y=None, x=None) -> MNIWPrior:
        if self.covariance_prior_dof is not None and self.covariance_prior_dof <= n_features - 1:
            raise ValueError(
                f"covariance_prior_dof must exceed n_features - 1 = {n_features - 1}, got {self.covariance_prior_dof}."
            )
        prior = default_mniw_prior(
            n_features,
            self.nlags,
            scale=self.covariance_prior_scale,
            dof=self.covariance_prior_dof,
            coef_variance=self.coef_prior_variance,
            dtype=float_dtype(),
        )
        if self.covariance_prior == "empirical" and y is not None:
            resid = y - (x[:, :n_features] if self.nlags else 0.0)
            emp = (
                np.atleast_2d(np.cov(resid, rowvar=False)) if len(resid) > 1 else np.eye(n_features)
            )
            emp = emp + 1e-6 * np.trace(emp) / n_features * np.eye(n_features)
            prior = prior._replace(
                scale=jnp.asarray(self.covariance_prior_scale * emp, float_dtype())
            )
        return prior

    def _saved_attributes(self):
        return (
            "initial_prob_",
            "transition_prob_",
            "coef_",
            "intercept_",
            "covariances_",
            "dof_",
            "beta_",
            "groups_",
            "whiten_mean_",
            "whiten_matrix_",
            "kappa_",
            "log_likelihood_history_",
            "log_joint_history_",
            "heldout_log_likelihood_history_",
            "median_duration_history_",
            "check_iterations_",
            "feature_names_in_",
        )

    def _required_attributes(self):
        return ("initial_prob_", "transition_prob_", "coef_", "intercept_", "covariances_")

    def _validated_params(self) -> ARHMMParams:
        """Fitted (or hand-set) parameters as JAX arrays, after checking them."""
        self._check_fitted()
        check_scalar(self.nlags, "nlags", numbers.Integral, min_val=0)
        pi = np.asarray(self.initial_prob_, float)
        trans = np.asarray(self.transition_prob_, float)
        coef = np.asarray(self.coef_, float)
        intercept = np.asarray(self.intercept_, float)
        cov = np.asarray(self.covariances_, float)
        n_states = self._check_initial_prob(pi)
        if coef.ndim != 3 or coef.shape[0] != n_states:
            raise ValueError(
                f"coef_ must have shape (n_states, n_features, nlags * n_features) = ({n_states}, D, "
                f"{self.nlags}*D), got {coef.shape}."
            )
        n_features = coef.shape[1]
        if trans.ndim == 3:
            n_groups = trans.shape[0]
            groups = getattr(self, "groups_", None)
            if groups is None or len(groups) != n_groups:
                raise ValueError(
                    f"transition_prob_ holds {n_groups} matrices: set groups_ to their {n_groups} group labels."
                )
            trans_shape = (n_groups, n_states, n_states)
        else:
            trans_shape = (n_states, n_states)
        expected = {
            "transition_prob_": (trans, trans_shape),
            "coef_": (coef, (n_states, n_features, self.nlags * n_features)),
            "intercept_": (intercept, (n_states, n_features)),
            "covariances_": (cov, (n_states, n_features, n_features)),
        }
        for name, (arr, shape) in expected.items():
            if arr.shape != shape:
                raise ValueError(
                    f"{name} must have shape {shape} (n_states={n_states}, nlags={self.nlags}), got {arr.shape}."
                )
        if hasattr(self, "n_features_in_") and self.n_features_in_ != n_features:
            raise ValueError(
                f"coef_ describes {n_features} features but n_features_in_ = {self.n_features_in_}."
            )
        check_probabilities(initial_prob_=pi, transition_prob_=trans)
        for name, arr in (("coef_", coef), ("intercept_", intercept), ("covariances_", cov)):
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"{name} must be finite.")
        if not np.allclose(cov, np.swapaxes(cov, -1, -2), rtol=1e-5, atol=1e-8):
            raise ValueError("covariances_ must be symmetric.")
        try:
            np.linalg.cholesky(cov)
        except np.linalg.LinAlgError:
            raise ValueError("covariances_ must be positive definite.") from None
        if self.robust:
            if not hasattr(self, "dof_"):
                raise ValueError(
                    "robust=True needs dof_, the Student-t degrees of freedom of each state."
                )
            dof = np.asarray(self.dof_, float)
            if dof.shape != (n_states,) or not np.all(np.isfinite(dof)) or np.any(dof <= 0):
                raise ValueError(
                    f"dof_ must hold {n_states} positive finite degrees of freedom, got {dof}."
                )
        else:
            dof = np.full(n_states, np.inf)
        if self.whiten == "all":
            mean = getattr(self, "whiten_mean_", None)
            matrix = getattr(self, "whiten_matrix_", None)
            if mean is None or matrix is None:
                raise ValueError(
                    'whiten="all" needs whiten_mean_ and whiten_matrix_ (set them, or use whiten="none").'
                )
            if np.shape(mean) != (n_features,) or np.shape(matrix) != (n_features, n_features):
                raise ValueError(
                    f"whiten_mean_ and whiten_matrix_ must have shapes ({n_features},) and "
                    f"({n_features}, {n_features}), got {np.shape(mean)} and {np.shape(matrix)}."
                )
        dtype = float_dtype()
        trans3 = trans if trans.ndim == 3 else trans[None]
        return ARHMMParams(
            *(jnp.asarray(a, dtype) for a in (pi, trans3, coef, intercept, cov, dof))
        )

    # ----------------------------------------------------------------- data
    def _validate_X(self, X, *, reset: bool):
        n_features = np.shape(self.coef_)[1] if hasattr(self, "coef_") else None
        return self._validate_frames(X, reset=reset, n_features=n_features, source="coef_")

    def _group_labels(self, groups, mask: np.ndarray, *, fitting: bool) -> np.ndarray | None:
        """Group index (into ``groups_``) of every time bin, or None for one shared matrix."""
        n_time_bins = mask.shape[0]
        if fitting:
            if not self.separate_trans:
                return None
            if groups is None:
                raise ValueError(
                    "separate_trans=True needs groups: one label per session (e.g. genotype)."
                )
        else:
            n_matrices = np.ndim(self.transition_prob_) == 3 and np.shape(self.transition_prob_)[0]
            if not n_matrices:
                return None
            if groups is None:
                if n_matrices == 1:
                    return np.zeros(n_time_bins, np.int32)
                raise ValueError(
                    f"This model has one transition matrix per group ({list(self.groups_)}): pass groups, "
                    "one label per session."
                )
        labels = np.asarray(groups)
        sid = session_ids(mask)
        n_sessions = int(sid[-1]) + 1 if n_time_bins else 0
        if labels.ndim != 1 or len(labels) not in (n_sessions, n_time_bins):
            raise ValueError(
                f"groups must hold one label per session ({n_sessions}) or per time bin ({n_time_bins}), "
                f"got shape {labels.shape}."
            )
        if len(labels) == n_time_bins and n_time_bins != n_sessions:
            per_bin = labels
            first = per_bin[np.flatnonzero(np.r_[True, sid[1:] != sid[:-1]])]
            if np.any(per_bin != first[sid]):
                raise ValueError("groups given per time bin must be constant within each session.")
        else:
            per_bin = labels[sid]
        if fitting:
            self.groups_ = np.unique(labels)
        known = np.asarray(self.groups_)
        index = np.searchsorted(known, per_bin)
        bad = (index >= len(known)) | (known[np.minimum(index, len(known) - 1)] != per_bin)
        if np.any(bad):
            raise ValueError(
                f"groups holds label {per_bin[bad][0]!r}, unknown to this model (groups_ = {list(known)})."
            )
        return index.astype(np.int32)

    def _whiten_kept(self, kept: np.ndarray, starts: np.ndarray, *, fitting: bool):
        """Whitened frames and the log-Jacobian of the transform of each frame."""
        if self.whiten == "none":
            return kept, np.zeros(len(kept))
        if self.whiten == "all":
            if fitting:
                self.whiten_mean_, self.whiten_matrix_, _ = _whitening(kept)
            mean, matrix = np.asarray(self.whiten_mean_), np.asarray(self.whiten_matrix_)
            log_det = float(np.linalg.slogdet(matrix)[1])
            return (kept - mean) @ matrix.T, np.full(len(kept), log_det)
        out = np.empty_like(kept)
        log_det = np.empty(len(kept))
        begin, end = session_bounds(starts)
        for a, b in zip(begin, end, strict=True):
            if b - a < 2:
                raise ValueError(
                    f'whiten="each" needs at least 2 frames per session; session at {a} has {b - a}.'
                )
            mean, matrix, ld = _whitening(kept[a:b])
            out[a:b] = (kept[a:b] - mean) @ matrix.T
            log_det[a:b] = ld
        return out, log_det

    def _build(
        self, kept, starts, group_index, log_det, rows_kept, n_time_bins, info
    ) -> PreparedData:
        """Lag, pad to a bucket length, and move to the device."""
        y, x, emit, emit_starts = lagged_design(kept, starts, self.nlags)
        n_frames = len(y)
        n_padded = bucket_length(n_frames)
        pad = n_padded - n_frames
        dtype = float_dtype()
        groups = np.zeros(n_frames, np.int32) if group_index is None else group_index[emit]
        data = ARData(
            y=jnp.asarray(np.pad(y, ((0, pad), (0, 0))), dtype),
            x=jnp.asarray(np.pad(x, ((0, pad), (0, 0))), dtype),
            starts=jnp.asarray(np.concatenate([emit_starts, np.ones(pad, bool)])),
            weights=jnp.asarray(np.concatenate([np.ones(n_frames), np.zeros(pad)]), dtype),
            groups=jnp.asarray(np.concatenate([groups, np.zeros(pad, np.int32)])),
        )
        return PreparedData(
            arrays={"ar": data},
            session_starts=data.starts,
            weights=data.weights,
            rows=rows_kept[emit],
            n_time_bins=n_time_bins,
            info=info,
            extra={"log_jacobian": float(np.sum(log_det[emit])), "y": y, "x": x},
        )

    def _prepare(self, X, session_starts, groups=None) -> PreparedData:
        """Input of a prediction method on the model's time axis."""
        values, info = self._validate_X(X, reset=False)
        mask = session_mask(session_starts, values.shape[0], info=info)
        group_bins = self._group_labels(groups, mask, fitting=False)
        keep, starts_kept = drop_nan_borders(values, mask, info=info)
        kept, log_det = self._whiten_kept(values[keep], starts_kept, fitting=False)
        group_kept = None if group_bins is None else group_bins[keep]
        return self._build(
            kept, starts_kept, group_kept, log_det, np.flatnonzero(keep), values.shape[0], info
        )

    def _heldout_split(self, starts: np.ndarray, key) -> np.ndarray:
        """Boolean mask of the held-out rows among the kept training frames."""
        heldout = np.zeros(len(starts), bool)
        if self.heldout_fraction == 0:
            return heldout
        begin, end = session_bounds(starts)
        need = self.nlags + 1
        if self.heldout_by == "frames":
            for a, b in zip(begin, end, strict=True):
                n_hold = int(np.floor(self.heldout_fraction * (b - a)))
                if n_hold >= need and (b - a) - n_hold >= need:
                    heldout[b - n_hold : b] = True
            what = f"the last {self.heldout_fraction:g} of any session"
        else:
            n_sessions = len(begin)
            n_hold = min(max(1, round(self.heldout_fraction * n_sessions)), n_sessions - 1)
            if n_hold >= 1:
                rng = np.random.default_rng(seed_from_key(key))
                for i in rng.choice(n_sessions, n_hold, replace=False):
                    heldout[begin[i] : end[i]] = True
            what = f"{self.heldout_fraction:g} of {n_sessions} whole sessions"
        if not heldout.any():
            raise ValueError(
                f"heldout_fraction={self.heldout_fraction} holds out nothing ({what} is too short for "
                f"nlags={self.nlags}); raise heldout_fraction or use heldout_by='sessions'."
            )
        return heldout

    # ------------------------------------------------------------------ fit
    def _scale_hint(self, kept) -> str:
        """Why a float32 regression may fail on these features, and what to do."""
        if self.whiten != "none":
            return ""
        return (
            f" The features have scales up to {float(np.max(kept.std(axis=0))):.3g} and offsets up to "
            f"{float(np.max(np.abs(kept.mean(axis=0)))):.3g}, while the AR prior (S_0 = 0.01 I, "
            "K_0 = 10 I) assumes features of unit scale, which float32 regressions need: use "
            'whiten="all" (moseq2-model\'s default) or z-score the features.'
        )

    def _initial_params(self, kept, starts_kept, prior, n_groups, key, labels=None) -> ARHMMParams:
        n_states, n_features = self.n_states, kept.shape[1]
        keys = jax.random.split(key, 3)
        pi, trans = self._initial_chain(kept, starts_kept, keys[:2], labels=labels)
        coef, intercept, cov = self._emission_init(
            "ar_params_init",
            kept,
            starts_kept,
            keys[2],
            3,
            labels=labels,
            nlags=self.nlags,
            prior=prior,
        )
        check_initializer_output(
            {
                "ar_params_init coef": (coef, (n_states, n_features, self.nlags * n_features)),
                "ar_params_init intercept": (intercept, (n_states, n_features)),
                "ar_params_init covariances": (cov, (n_states, n_features, n_features)),
            },
            self._scale_hint(kept),
        )
        vals = np.linalg.eigvalsh(cov)
        bad = vals.min(axis=-1) <= 0
        if (
            bad.any()
        ):  # float32 cancellation in the regression: say why (the Gibbs sampler redraws them)
            warnings.warn(
                f"ar_params_init gave {int(bad.sum())} covariance matrices that are not positive definite."
                f"{self._scale_hint(kept)}",
                RuntimeWarning,
                stacklevel=3,
            )
        dtype = float_dtype()
        trans3 = np.broadcast_to(trans, (n_groups, n_states, n_states))
        dof = np.full(n_states, INITIAL_DOF if self.robust else np.inf)
        return ARHMMParams(
            *(jnp.asarray(a, dtype) for a in (pi, trans3, coef, intercept, cov, dof))
        )

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
            Hand labels: ``c`` ties frame ``t`` to state ``c`` (states
            ``0..C-1`` are the labelled classes, the others stay free), -1
            leaves it unlabelled; or a non-negative evidence array of shape
            (n_time_bins, n_states). Labels on a session's first ``nlags``
            frames (which have no state) or on held-out frames are ignored
            with a warning. Routed like ``session_starts``.
        label_weight : float in [0, 1], default 1.0
            ``e_t(k) = 1`` for the label and ``1 - label_weight`` for the
            other states: 1 clamps the state (EM conditions on it; Gibbs never
            changes it), 0 ignores the labels.
        class_names : sequence of str, optional
            Names of the labelled classes ``0..C-1``, kept as ``class_names_``
            and in model files (default with labels: "0", ..., "C-1");
            relabelling by usage keeps these states' numbers.

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
        before the forward-backward (EM) or forward-filtering
        backward-sampling (Gibbs) kernels (derivation in
        [`behavhmm.labels.label_evidence`][behavhmm.labels.label_evidence]); the
        fit is the MAP estimate (or posterior draw) given the evidence, and
        ``log_likelihood_history_`` is the evidence-conditioned
        ``log p(X, labels | θ)``. Prediction methods do not use labels.
        """
        self._check_hyperparameters()
        if resume and self.checkpoint_path is None:
            raise ValueError("resume=True needs checkpoint_path.")
        for name in (
            "dof_",
            "beta_",
            "groups_",
            "whiten_mean_",
            "whiten_matrix_",
            "heldout_log_likelihood_history_",
        ):
            if hasattr(self, name):
                delattr(self, name)
        values, info = self._validate_X(X, reset=True)
        mask = session_mask(session_starts, values.shape[0], info=info)
        group_bins = self._group_labels(groups, mask, fitting=True)
        keep, starts_kept = drop_nan_borders(values, mask, info=info)
        raw = values[keep]
        rows_kept = np.flatnonzero(keep)
        group_kept = None if group_bins is None else group_bins[keep]
        key_init, key_split, key_chain = jax.random.split(self._fit_key(), 3)
        held = self._heldout_split(starts_kept, key_split)
        train_rows = ~held
        train_starts = starts_kept[train_rows] | np.r_[True, held[:-1]][train_rows]
        train_raw, train_ld = self._whiten_kept(raw[train_rows], train_starts, fitting=True)
        train = self._build(
            train_raw,
            train_starts,
            None if group_kept is None else group_kept[train_rows],
            train_ld,
            rows_kept[train_rows],
            values.shape[0],
            info,
        )
        heldout = None
        if held.any():
            held_starts = starts_kept[held] | np.r_[True, ~held[:-1]][held]
            held_raw, held_ld = self._whiten_kept(raw[held], held_starts, fitting=False)
            heldout = self._build(
                held_raw,
                held_starts,
                None if group_kept is None else group_kept[held],
                held_ld,
                rows_kept[held],
                values.shape[0],
                info,
            )
        evidence = label_evidence(
            labels, label_weight, self.n_states, values, np.ones(len(values), bool), info=info
        )
        self._store_class_names(class_names, evidence)
        init_labels = None
        if evidence is not None:
            init_labels = evidence.labels[rows_kept[train_rows]]
            on_train = restrict_evidence(
                evidence,
                train.rows,
                f"the first nlags={self.nlags} frames of a session have no state, nor do "
                "held-out frames",
            )
            log_ev = padded_log_evidence(on_train, train.arrays["ar"].y.shape[0])
            train.arrays["ar"] = train.arrays["ar"]._replace(
                log_evidence=jnp.asarray(log_ev, float_dtype())
            )
        prior = self._prior(raw.shape[1], train.extra["y"], train.extra["x"])
        n_groups = 1 if group_bins is None else len(self.groups_)
        init = self._initial_params(
            train_raw, train_starts, prior, n_groups, key_init, labels=init_labels
        )
        if self.target_duration is None:
            kappa = float(self.kappa)
            result = self._fit_chain(
                init, train, heldout, prior, kappa, key_chain, resume, self.progress_bar
            )
        else:
            kappa, result = self._tune_kappa(init, train, heldout, prior, key_chain)
        self._store(result, kappa)
        return self

    def _hyper(self, prior, kappa) -> Hyper:
        dtype = float_dtype()
        return Hyper(
            jnp.asarray(self.alpha, dtype),
            jnp.asarray(kappa, dtype),
            jnp.asarray(self.gamma, dtype),
            prior,
        )

    def _fit_chain(self, init, train: PreparedData, heldout, prior, kappa, key, resume, progress):
        """Run EM or the Gibbs sampler once; returns a dict of results."""
        hyper = self._hyper(prior, kappa)
        method = self._method()
        data = train.arrays["ar"]
        jac = train.extra["log_jacobian"]
        robust = bool(self.robust)

        def heldout_ll(params):
            if heldout is None:
                return {}
            _, ll = filter_program(params, heldout.arrays["ar"], robust=robust, method=method)
            return {"heldout_log_likelihood": float(ll) + heldout.extra["log_jacobian"]}

        start, history, state = 0, None, None
        checkpoint = None
        if self.checkpoint_path is not None:
            checkpoint = partial(self._write_checkpoint, train=train, kappa=kappa, key=key)
            if resume:
                state, start, history = self._read_checkpoint(train, kappa, key)
        desc = f"ARHMM {self.algorithm} (K={self.n_states})"
        if self.algorithm == "em":

            def step(params):
                new, ll, lp = em_step(params, data, hyper, robust, method)
                return new, ll + jac, lp

            def evaluate(params):
                states = viterbi_program(params, data, robust=robust, method=method)
                dur = median_duration_program(states, data.starts, data.weights)
                return {"median_duration": float(dur), **heldout_ll(params)}

            try:
                res = run_em(
                    step,
                    init if state is None else state,
                    n_iter=self.n_iter,
                    tol=self.tol,
                    n_frames=train.n_frames,
                    progress_bar=progress,
                    desc=desc,
                    check_every=self.check_every,
                    evaluate=evaluate,
                    start_iteration=start,
                    history=history,
                    checkpoint=checkpoint,
                    checkpoint_every=self.checkpoint_every,
                )
            except FloatingPointError as exc:
                raise FloatingPointError(
                    f"{exc}{self._scale_hint(np.asarray(train.extra['y']))}"
                ) from None
            return {
                "params": res.params,
                "log_likelihood": res.log_likelihood_history,
                "log_joint": res.log_joint_history,
                "history": res.history,
                "n_iter": res.n_iter,
                "converged": res.converged,
                "beta": None,
                "states": None,
                "train": train,
            }
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
            new, ll = gibbs_sweep(st, k, data, hyper, robust=robust, method=method)
            return new, ll + jac

        def evaluate(st):
            lj = log_joint_program(st, data, hyper, robust=robust)
            dur = median_duration_program(st.states, data.starts, data.weights)
            return {
                "log_joint": float(lj) + jac,
                "median_duration": float(dur),
                **heldout_ll(st.params),
            }

        try:
            res = run_gibbs(
                sweep,
                state,
                key,
                n_iter=self.n_iter,
                start_iteration=start,
                history=history,
                check_every=self.check_every,
                evaluate=evaluate,
                n_frames=train.n_frames,
                progress_bar=progress,
                desc=desc,
                checkpoint=checkpoint,
                checkpoint_every=self.checkpoint_every,
            )
        except FloatingPointError as exc:
            raise FloatingPointError(
                f"{exc}{self._scale_hint(np.asarray(train.extra['y']))}"
            ) from None
        hist = dict(res.history)
        return {
            "params": res.state.params,
            "log_likelihood": hist.pop("log_likelihood"),
            "log_joint": hist.pop("log_joint", np.zeros(0)),
            "history": hist,
            "n_iter": res.n_iter,
            "converged": False,
            "beta": res.state.beta,
            "states": res.state.states,
            "train": train,
        }

    def _median_duration(self, result) -> float:
        data = result["train"].arrays["ar"]
        states = result["states"]
        if states is None:
            states = viterbi_program(
                result["params"], data, robust=bool(self.robust), method=self._method()
            )
        return float(median_duration_program(states, data.starts, data.weights))

    def _tune_kappa(self, init, train, heldout, prior, key):
        """Bisection in log10(kappa) for the target median duration."""
        target = float(self.target_duration)
        tried: dict[float, tuple[float, dict]] = {}

        def evaluate(log_k):
            log_k = round(float(log_k), 6)
            if log_k not in tried:
                res = self._fit_chain(init, train, heldout, prior, 10.0**log_k, key, False, False)
                tried[log_k] = (self._median_duration(res), res)
            return tried[log_k][0]

        with progress(desc="tuning kappa", unit="fit", disable=not self.progress_bar) as bar:

            def probe(log_k):
                dur = evaluate(log_k)
                bar.set_postfix(kappa=f"{10**log_k:.3g}", median_dur=f"{dur:.1f}", refresh=False)
                bar.update(1)
                return dur

            lo = hi = float(np.log10(max(self.kappa, 1e-12)))
            if probe(lo) < target:
                while probe(hi) < target and hi < 14:
                    lo, hi = hi, hi + 2.0
            else:
                while probe(lo) > target and lo > -4:
                    hi, lo = lo, lo - 2.0
            for _ in range(10):
                if hi - lo < 0.05:
                    break
                mid = 0.5 * (lo + hi)
                dur = probe(mid)
                if abs(dur - target) <= 0.05 * target:
                    break
                lo, hi = (mid, hi) if dur < target else (lo, mid)
        best = min(tried, key=lambda k: abs(tried[k][0] - target))
        if abs(tried[best][0] - target) > 0.2 * target:
            warnings.warn(
                f"target_duration={target:g} frames was not reached: the closest median duration was "
                f"{tried[best][0]:g} frames, at kappa={10.0**best:.3g} (tried {10.0 ** min(tried):.3g} to "
                f"{10.0 ** max(tried):.3g}). The data decide the syllable boundaries more than kappa does; "
                "consider fewer states or more data.",
                UserWarning,
                stacklevel=3,
            )
        self.kappa_search_ = {
            "kappa": np.asarray([10.0**k for k in sorted(tried)]),
            "median_duration": np.asarray([tried[k][0] for k in sorted(tried)]),
        }
        return 10.0**best, tried[best][1]

    def _store(self, result, kappa):
        p = result["params"]
        self.initial_prob_ = np.asarray(p.initial_prob)
        trans = np.asarray(p.transition_prob)
        self.transition_prob_ = trans if self.separate_trans else trans[0]
        self.coef_ = np.asarray(p.coef)
        self.intercept_ = np.asarray(p.intercept)
        self.covariances_ = np.asarray(p.covariances)
        if self.robust:
            self.dof_ = np.asarray(p.dof)
        if result["beta"] is not None:
            self.beta_ = np.asarray(result["beta"])
        self.kappa_ = float(kappa)
        history = result["history"]
        self.log_likelihood_history_ = np.asarray(result["log_likelihood"])
        self.log_joint_history_ = np.asarray(result["log_joint"])
        self.check_iterations_ = np.asarray(history.get("iteration", np.zeros(0)), int)
        self.median_duration_history_ = np.asarray(history.get("median_duration", np.zeros(0)))
        if "heldout_log_likelihood" in history:
            self.heldout_log_likelihood_history_ = np.asarray(history["heldout_log_likelihood"])
        self.n_iter_ = int(result["n_iter"])
        self.converged_ = bool(result["converged"])
        if self.algorithm == "em" and not result["converged"]:
            warnings.warn(
                f"EM did not converge in n_iter={self.n_iter} iterations (tol={self.tol} nats per "
                "frame); increase n_iter or tol.",
                ConvergenceWarning,
                stacklevel=3,
            )

    # ---------------------------------------------------------- checkpoints
    def _checkpoint_meta(self, train: PreparedData, kappa):
        return checkpoint_meta(self, (train.extra["y"], train.extra["x"]), kappa=float(kappa))

    def _write_checkpoint(self, state, n_done, history, *, train, kappa, key):
        write_checkpoint(
            self.checkpoint_path, self._checkpoint_meta(train, kappa), state, n_done, history, key
        )

    def _read_checkpoint(self, train: PreparedData, kappa, key):
        state, start, history, _ = read_checkpoint(
            self.checkpoint_path,
            self._checkpoint_meta(train, kappa),
            key,
            self._state_template(train),
            n_iter=int(self.n_iter),
        )
        return state, start, history

    def _state_template(self, train: PreparedData):
        dtype = float_dtype()
        n_states, n_features = self.n_states, self.n_features_in_
        n_groups = len(self.groups_) if self.separate_trans else 1
        params = ARHMMParams(
            jnp.zeros(n_states, dtype),
            jnp.zeros((n_groups, n_states, n_states), dtype),
            jnp.zeros((n_states, n_features, self.nlags * n_features), dtype),
            jnp.zeros((n_states, n_features), dtype),
            jnp.zeros((n_states, n_features, n_features), dtype),
            jnp.zeros(n_states, dtype),
        )
        if self.algorithm == "em":
            return params
        n_padded = train.arrays["ar"].y.shape[0]
        return GibbsState(
            params,
            jnp.zeros(n_states, dtype),
            jnp.zeros(n_padded, jnp.int32),
            jnp.zeros(n_padded, dtype),
        )

    # -------------------------------------------------------------- predict
    def score(self, X, y=None, session_starts=None, groups=None) -> float:
        """Marginal log-likelihood of ``X`` summed over its modelled frames.

        Parameters
        ----------
        X : array-like or pynapple TsdFrame of shape (n_time_bins, n_features)
            Data to score; sessions as in [`fit`][behavhmm.ARHMM.fit].
        y : Ignored
        session_starts : array-like or pynapple IntervalSet, optional
            As in [`fit`][behavhmm.ARHMM.fit].
        groups : array-like, optional
            Group label of each session, for models with one transition
            matrix per group.

        Returns
        -------
        float
            ``log p(X | θ)`` in nats, summed over sessions, for ``X`` in its own
            units (whitening's Jacobian included); the first ``nlags`` frames of
            each session condition and are not scored.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit`` (or hand-set parameters).
        ValueError
            For invalid input, as in [`fit`][behavhmm.ARHMM.fit].
        """
        params = self._validated_params()
        data = self._prepare(X, session_starts, groups)
        _, log_lik = filter_program(
            params, data.arrays["ar"], robust=bool(self.robust), method=self._method()
        )
        return float(log_lik) + data.extra["log_jacobian"]

    def smooth_proba(self, X, session_starts=None, groups=None):
        """Posterior state probabilities ``p(z_t | all frames of its session)``.

        Parameters
        ----------
        X : array-like or pynapple TsdFrame of shape (n_time_bins, n_features)
        session_starts : array-like or pynapple IntervalSet, optional
            As in [`fit`][behavhmm.ARHMM.fit].
        groups : array-like, optional
            As in [`score`][behavhmm.ARHMM.score].

        Returns
        -------
        ndarray of shape (n_time_bins, n_states) or pynapple TsdFrame
            Rows sum to 1; NaN rows for the first ``nlags`` frames of each
            session and for dropped NaN borders.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit``.
        ValueError
            For invalid input.
        """
        params = self._validated_params()
        data = self._prepare(X, session_starts, groups)
        probs = posterior(
            params, data.arrays["ar"], bool(self.robust), self._method()
        ).smoothed_probs
        return self._proba_output(probs, data, params.initial_prob.shape[0])

    def emission_log_likelihood(self, X, session_starts=None, groups=None):
        """Log-likelihood of each frame under each state's emission, ``log p(x_t | z_t = k, past)``.

        Parameters
        ----------
        X : array-like or pynapple TsdFrame of shape (n_time_bins, n_features)
        session_starts : array-like or pynapple IntervalSet, optional
            As in [`fit`][behavhmm.ARHMM.fit].
        groups : array-like, optional
            As in [`score`][behavhmm.ARHMM.score].

        Returns
        -------
        ndarray of shape (n_time_bins, n_states) or pynapple TsdFrame
            Nats, float32 (float64 with x64); columns are the fitted states
            (before any `behavhmm.analysis.merge_syllables` mapping). NaN rows
            for the first ``nlags`` frames of each session and for dropped NaN
            borders. With ``whiten``, the whitening's log-Jacobian is not
            included (it is the same for every state).

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit``.
        ValueError
            For invalid input.
        """
        params = self._validated_params()
        data = self._prepare(X, session_starts, groups)
        ll = log_likelihood_program(params, data.arrays["ar"], robust=bool(self.robust))
        full = self._expand(np.asarray(ll), data, np.nan)
        return wrap_output(full, data.info, columns=list(range(full.shape[1])))

    def filter_proba(self, X, session_starts=None, groups=None):
        """Causal state probabilities ``p(z_t | frames up to t of its session)``.

        Parameters
        ----------
        X : array-like or pynapple TsdFrame of shape (n_time_bins, n_features)
        session_starts : array-like or pynapple IntervalSet, optional
            As in [`fit`][behavhmm.ARHMM.fit].
        groups : array-like, optional
            As in [`score`][behavhmm.ARHMM.score].

        Returns
        -------
        ndarray of shape (n_time_bins, n_states) or pynapple TsdFrame
            Rows sum to 1; NaN rows where
            [`smooth_proba`][behavhmm.ARHMM.smooth_proba] has them.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit``.
        ValueError
            For invalid input.
        """
        params = self._validated_params()
        data = self._prepare(X, session_starts, groups)
        probs, _ = filter_program(
            params, data.arrays["ar"], robust=bool(self.robust), method=self._method()
        )
        return self._proba_output(probs, data, params.initial_prob.shape[0])

    def decode_state(self, X, session_starts=None, state_format: str = "one-hot", groups=None):
        """Most likely state sequence (Viterbi), jointly over each session.

        Parameters
        ----------
        X : array-like or pynapple TsdFrame of shape (n_time_bins, n_features)
        session_starts : array-like or pynapple IntervalSet, optional
            As in [`fit`][behavhmm.ARHMM.fit].
        state_format : {"one-hot", "index"}, default "one-hot"
            ``"index"``: int32 array of shape (n_time_bins,), -1 for the first
            ``nlags`` frames of each session and dropped NaN borders.
            ``"one-hot"``: int32 array of shape (n_time_bins, n_states), zero
            rows there.
        groups : array-like, optional
            As in [`score`][behavhmm.ARHMM.score].

        Returns
        -------
        ndarray or pynapple Tsd / TsdFrame

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit``.
        ValueError
            For invalid input or an unknown ``state_format``.
        """
        self._check_state_format(state_format)
        params = self._validated_params()
        data = self._prepare(X, session_starts, groups)
        states = viterbi_program(
            params, data.arrays["ar"], robust=bool(self.robust), method=self._method()
        )
        return self._state_output(states, data, state_format, params.initial_prob.shape[0])

    def predict(self, X, session_starts=None, groups=None):
        """Viterbi state indices; ``decode_state(X, state_format="index")``.

        Parameters
        ----------
        X : array-like of shape (n_time_bins, n_features)
        session_starts : array-like, optional
        groups : array-like, optional

        Returns
        -------
        ndarray of int32, shape (n_time_bins,)
        """
        return self.decode_state(
            X, session_starts=session_starts, state_format="index", groups=groups
        )

    def predict_proba(self, X, session_starts=None, groups=None):
        """Smoothed state probabilities; same as [`smooth_proba`][behavhmm.ARHMM.smooth_proba].

        Parameters
        ----------
        X : array-like of shape (n_time_bins, n_features)
        session_starts : array-like, optional
        groups : array-like, optional

        Returns
        -------
        ndarray of shape (n_time_bins, n_states)
        """
        return self.smooth_proba(X, session_starts=session_starts, groups=groups)

    def simulate(
        self, random_key, n_time_bins: int, session_starts=None, init_frames=None, groups=None
    ):
        """Draw frames and states from the model.

        Parameters
        ----------
        random_key : jax.random key or int
            Randomness of the draw; the same key gives the same output.
        n_time_bins : int
            Number of frames to draw (all sessions together).
        session_starts : array-like, optional
            Boolean mask or start indices of sessions within the
            ``n_time_bins`` frames; default one session.
        init_frames : array-like of shape (nlags, n_features), optional
            The conditioning frames that open every session (oldest first), in
            the model's (whitened) space; default zeros.
        groups : array-like, optional
            Group label of each simulated session (several transition matrices).

        Returns
        -------
        X : ndarray of shape (n_time_bins, n_features)
            Simulated frames, mapped back to the data's units with
            ``whiten="all"`` (left whitened with ``whiten="each"``).
        states : ndarray of int32, shape (n_time_bins,)
            The states that generated them; -1 for the conditioning frames.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit``.
        TypeError
            If ``random_key`` is not a key or int.
        ValueError
            For invalid ``n_time_bins``, ``session_starts``, ``init_frames`` or ``groups``.
        """
        params = self._validated_params()
        key = check_random_key(random_key)
        check_scalar(n_time_bins, "n_time_bins", numbers.Integral, min_val=1)
        n_features = params.coef.shape[1]
        mask = session_mask(session_starts, int(n_time_bins))
        group_bins = self._group_labels(groups, mask, fitting=False)
        group_bins = np.zeros(int(n_time_bins), np.int32) if group_bins is None else group_bins
        if init_frames is None:
            init = np.zeros((self.nlags, n_features))
        else:
            init = np.asarray(init_frames, float)
            if init.shape != (self.nlags, n_features):
                raise ValueError(
                    f"init_frames must have shape ({self.nlags}, {n_features}), got {init.shape}."
                )
            if not np.all(np.isfinite(init)):
                raise ValueError("init_frames must be finite.")
        # the session's frame at position p < nlags is init_frames[p] (oldest first)
        frames, states = simulate_program(
            key,
            params,
            jnp.asarray(mask),
            jnp.asarray(group_bins),
            jnp.asarray(init, params.coef.dtype),
            self.nlags,
            bool(self.robust),
        )
        frames = np.asarray(frames)
        if self.whiten == "all":
            frames = frames @ np.linalg.inv(np.asarray(self.whiten_matrix_)).T + np.asarray(
                self.whiten_mean_
            )
        return frames, np.asarray(states)
