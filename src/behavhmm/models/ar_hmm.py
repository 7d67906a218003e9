"""Autoregressive hidden Markov model (ARHMM) for pose and PC-score time series."""

from __future__ import annotations

import numbers
import warnings
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_scalar
from sklearn.utils.validation import validate_data

from .._utils import bucket_length, float_dtype
from ..fitting import run_em
from ..inference import hmm_filter, hmm_smoother, hmm_viterbi, resolve_method
from ..observations import (
    MNIWPrior,
    ar_log_likelihoods,
    ar_sufficient_statistics,
    default_mniw_prior,
    mniw_log_prior,
    mniw_map,
)
from ..transitions import (
    dirichlet_log_density,
    initial_dirichlet_map,
    sticky_concentration,
    sticky_dirichlet_map,
)
from ._initializers import (
    PROBA_INITIAL_REGISTRY,
    PROBA_TRANSITION_REGISTRY,
    InitSlot,
)
from ._sessions import drop_nan_borders, session_bounds, session_mask, split_pynapple
from .base import BaseHMM, PreparedData, check_random_key

__all__ = ["ARHMM", "ARHMMParams", "lagged_design", "kmeans_ar_params", "random_ar_params"]

_METHODS = ("auto", "sequential", "parallel")


class ARHMMParams(NamedTuple):
    """ARHMM parameters as JAX arrays (state axis first)."""

    initial_prob: jax.Array  # (n_states,)
    transition_prob: jax.Array  # (n_states, n_states)
    coef: jax.Array  # (n_states, n_features, nlags * n_features)
    intercept: jax.Array  # (n_states, n_features)
    covariances: jax.Array  # (n_states, n_features, n_features)


class _Hyper(NamedTuple):
    alpha: jax.Array
    kappa: jax.Array
    prior: MNIWPrior


# ----------------------------------------------------------------------------
# data layout
# ----------------------------------------------------------------------------


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
    x = np.concatenate([X[rows - lag] for lag in range(1, nlags + 1)], axis=1) if nlags else np.zeros((len(rows), 0), X.dtype)
    starts = position[rows] == nlags
    return y, x, rows, starts


# ----------------------------------------------------------------------------
# jitted kernels (module level, so compiled programs are shared by every instance)
# ----------------------------------------------------------------------------


def _masked_log_likelihoods(params: ARHMMParams, y, x, weights):
    ll = ar_log_likelihoods(params.coef, params.intercept, params.covariances, y, x)
    return jnp.where(weights[:, None] > 0, ll, 0.0)


def _log_prior(params: ARHMMParams, hyper: _Hyper):
    """Log prior up to an additive constant (constants cancel in EM's objective)."""
    n_states = params.initial_prob.shape[0]
    conc = 1.0 + sticky_concentration(n_states, hyper.alpha, hyper.kappa, params.coef.dtype)
    log_p = dirichlet_log_density(params.transition_prob, conc, include_constant=False)
    log_p += dirichlet_log_density(params.initial_prob, 1.0 + hyper.alpha / n_states, include_constant=False)
    log_p += mniw_log_prior(params.coef, params.intercept, params.covariances, hyper.prior, include_constant=False)
    return log_p


_log_likelihood_program = jax.jit(_masked_log_likelihoods)


@jax.jit
def _m_step_program(params: ARHMMParams, post, y, x, starts, weights, hyper: _Hyper):
    gamma = post.smoothed_probs * weights[:, None]
    initial_counts = (starts & (weights > 0)).astype(gamma.dtype) @ post.smoothed_probs
    coef, intercept, covariances = mniw_map(ar_sufficient_statistics(gamma, y, x), hyper.prior)
    new = ARHMMParams(
        initial_prob=initial_dirichlet_map(initial_counts, hyper.alpha / initial_counts.shape[0]),
        transition_prob=sticky_dirichlet_map(post.expected_transitions, hyper.alpha, hyper.kappa),
        coef=coef,
        intercept=intercept,
        covariances=covariances,
    )
    return new, _log_prior(params, hyper)


def _posterior(params: ARHMMParams, y, x, starts, weights, method: str):
    """E-step: on CPUs the smoother's two passes run on two threads (see hmm_smoother)."""
    ll = _log_likelihood_program(params, y, x, weights)
    return hmm_smoother(params.initial_prob, params.transition_prob, ll, starts, method=method)


def _em_step(params: ARHMMParams, y, x, starts, weights, hyper: _Hyper, method: str):
    """One EM iteration: three compiled programs, shared by every ARHMM instance."""
    post = _posterior(params, y, x, starts, weights, method)
    new, log_prior = _m_step_program(params, post, y, x, starts, weights, hyper)
    return new, post.log_likelihood, log_prior


@partial(jax.jit, static_argnames=("method",))
def _filter(params: ARHMMParams, y, x, starts, weights, method: str):
    ll = _masked_log_likelihoods(params, y, x, weights)
    res = hmm_filter(params.initial_prob, params.transition_prob, ll, starts, method=method)
    return res.filtered_probs, res.log_likelihood


@partial(jax.jit, static_argnames=("method",))
def _viterbi(params: ARHMMParams, y, x, starts, weights, method: str):
    ll = _masked_log_likelihoods(params, y, x, weights)
    return hmm_viterbi(params.initial_prob, params.transition_prob, ll, starts, method=method)


@jax.jit
def _regress_on_weights(weights, y, x, prior: MNIWPrior):
    return mniw_map(ar_sufficient_statistics(weights, y, x), prior)


@partial(jax.jit, static_argnames=("nlags",))
def _simulate(key, params: ARHMMParams, starts, init_frames, nlags: int):
    n_states, n_features, _ = params.coef.shape
    chol = jnp.linalg.cholesky(params.covariances)
    log_pi = jnp.log(params.initial_prob)
    log_a = jnp.log(params.transition_prob)
    keys = jax.random.split(key, starts.shape[0])

    def step(carry, inp):
        z_prev, lags, position = carry
        start, k = inp
        position = jnp.where(start, 0, position + 1)
        k_state, k_noise = jax.random.split(k)
        logits = jnp.where(position == nlags, log_pi, log_a[z_prev])
        z = jax.random.categorical(k_state, logits).astype(jnp.int32)
        mean = params.coef[z] @ lags.reshape(-1) + params.intercept[z]
        x_new = mean + chol[z] @ jax.random.normal(k_noise, (n_features,), mean.dtype)
        conditioning = position < nlags
        frame = jnp.where(conditioning, init_frames[jnp.minimum(position, max(nlags - 1, 0))], x_new)
        lags = jnp.concatenate([frame[None], lags], axis=0)[:nlags]
        z_out = jnp.where(conditioning, -1, z)
        z_prev = jnp.where(conditioning, z_prev, z)
        return (z_prev, lags, position), (frame, z_out)

    init = (jnp.int32(0), jnp.zeros((nlags, n_features), params.coef.dtype), jnp.int32(0))
    _, (frames, states) = jax.lax.scan(step, init, (starts, keys))
    return frames, states


# ----------------------------------------------------------------------------
# built-in initializers of the AR parameters
# ----------------------------------------------------------------------------


def _regress_on_labels(labels, n_states, y, x, prior):
    dtype = float_dtype()
    weights = jax.nn.one_hot(jnp.asarray(labels), n_states, dtype=dtype)
    coef, intercept, covariances = _regress_on_weights(
        weights, jnp.asarray(y, dtype), jnp.asarray(x, dtype), jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), prior)
    )
    return np.asarray(coef), np.asarray(intercept), np.asarray(covariances)


def _seed_from_key(random_key) -> int:
    """A NumPy seed from a JAX key, identical with and without ``jax_enable_x64``."""
    return int(jax.random.bits(random_key, (), jnp.uint32))


def kmeans_ar_params(n_states, X, session_starts, random_key, *, nlags, prior, max_frames=20000, **kwargs):
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
    from sklearn.cluster import KMeans

    y, x, _, _ = lagged_design(np.asarray(X, float), session_starts, nlags)
    if len(y) < n_states:
        raise ValueError(f"k-means initialisation needs at least n_states={n_states} frames, got {len(y)}.")
    feats = np.concatenate([y, x], axis=1)
    scale = feats.std(axis=0)
    feats = (feats - feats.mean(axis=0)) / np.where(scale > 0, scale, 1.0)
    seed = _seed_from_key(random_key)
    rng = np.random.default_rng(seed)
    subset = feats if len(feats) <= max_frames else feats[rng.choice(len(feats), max_frames, replace=False)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        km = KMeans(n_clusters=n_states, n_init=1, random_state=seed).fit(subset)
    labels = km.predict(feats)
    return _regress_on_labels(labels, n_states, y, x, prior)


def random_ar_params(n_states, X, session_starts, random_key, *, nlags, prior, segment_length=10, **kwargs):
    """Label consecutive segments of ``segment_length`` frames with random states, then fit.

    Returns
    -------
    coef, intercept, covariances : ndarrays
        As [`kmeans_ar_params`][behavhmm.models.ar_hmm.kmeans_ar_params].
    """
    y, x, _, _ = lagged_design(np.asarray(X, float), session_starts, nlags)
    n_segments = -(-len(y) // int(segment_length))
    seg_labels = np.random.default_rng(_seed_from_key(random_key)).integers(0, n_states, n_segments)
    labels = np.repeat(seg_labels, int(segment_length))[: len(y)]
    return _regress_on_labels(labels, n_states, y, x, prior)


AR_PARAMS_REGISTRY = {"kmeans": kmeans_ar_params, "random": random_ar_params}


# ----------------------------------------------------------------------------
# the estimator
# ----------------------------------------------------------------------------


class ARHMM(BaseHMM):
    """Autoregressive hidden Markov model with sticky transitions, fitted by MAP-EM.

    Each hidden state (a behavioural *syllable*) has its own linear
    autoregressive dynamics: in state ``k``,
    ``y_t = A_k [y_{t-1}; ...; y_{t-nlags}] + b_k + ε_t`` with
    ``ε_t ~ N(0, Σ_k)``, and states follow a Markov chain that resets at every
    session start.

    Parameters
    ----------
    n_states : int, default 100
        Number of states (syllables). MoSeq's default.
    nlags : int, default 3
        Autoregressive order. 0 gives a Gaussian HMM.
    kappa : float, default 1e6
        Stickiness: pseudo-counts added to each diagonal transition entry.
        Larger values give longer syllables; tune it to your frame rate and
        data size.
    alpha : float, default 5.7
        Pseudo-counts spread evenly over each transition row and over the
        initial distribution (``alpha / n_states`` per entry). MoSeq's default.
    n_iter : int, default 100
        Maximum number of EM iterations.
    tol : float, default 1e-4
        EM stops when the log joint changes by less than ``tol`` nats per frame.
    covariance_prior_scale : float, default 0.01
        ``S_0 = covariance_prior_scale * I``, the inverse-Wishart scale, in
        squared units of ``X`` (the default suits z-scored or whitened data).
    covariance_prior_dof : float, optional
        Inverse-Wishart degrees of freedom ``ν_0``; default ``n_features + 2``.
    coef_prior_variance : float, default 10.0
        ``K_0 = coef_prior_variance * I``, the column covariance of the
        matrix-normal prior on ``[A_k, b_k]`` (prior mean: a random walk,
        identity on the newest lag).
    inference_method : {"auto", "sequential", "parallel"}, default "auto"
        HMM kernels: sequential scans (CPU) or associative scans (GPU).
    random_state : int, numpy Generator or None, default 0
        Seed of the initialisation; ``None`` draws fresh entropy.
    progress_bar : bool, default True
        Show a tqdm progress bar while fitting.
    initialization_funcs : dict, optional
        Initializers chosen with [`setup`][behavhmm.ARHMM.setup] (slots ``initial_proba_init``:
        "uniform" | "random"; ``transition_proba_init``: "sticky" | "uniform" |
        "random"; ``ar_params_init``: "kmeans" | "random"; each also a callable,
        with ``<slot>_kwargs``). Default: uniform, sticky (0.95), kmeans.

    Attributes
    ----------
    initial_prob_ : ndarray of shape (n_states,)
        ``p(z_s)`` at a session's first emitted frame.
    transition_prob_ : ndarray of shape (n_states, n_states)
        ``[i, j] = p(z_t = j | z_{t-1} = i)``; rows sum to 1.
    coef_ : ndarray of shape (n_states, n_features, nlags * n_features)
        ``A_k``. Column block ``l`` (``coef_[k][:, l*n_features:(l+1)*n_features]``,
        0-based) multiplies ``y_{t-l-1}``: newest lag first.
    intercept_ : ndarray of shape (n_states, n_features)
        ``b_k``.
    covariances_ : ndarray of shape (n_states, n_features, n_features)
        ``Σ_k``.
    log_likelihood_history_ : ndarray of shape (n_iter_,)
        Training marginal log-likelihood (nats) of the parameters entering each
        EM iteration.
    log_joint_history_ : ndarray of shape (n_iter_,)
        Log-likelihood plus log prior (up to a constant); never decreases.
    n_iter_ : int
        EM iterations run.
    converged_ : bool
        Whether EM met ``tol``.
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
    [`behavhmm.observations.mniw_map`][behavhmm.observations.mniw_map]). The log joint therefore never
    decreases.

    **Parameters from elsewhere.** Setting ``initial_prob_``,
    ``transition_prob_``, ``coef_``, ``intercept_`` and ``covariances_`` by
    hand (with ``n_states`` and ``nlags`` to match) gives a model that
    predicts with exactly those parameters; they are checked at every call.

    References
    ----------
    A. B. Wiltschko et al. (2015). Mapping sub-second structure in mouse
    behavior. Neuron 88(6), 1121-1135.

    E. B. Fox, E. B. Sudderth, M. I. Jordan and A. S. Willsky (2011). A sticky
    HDP-HMM with application to speaker diarization. Ann. Appl. Stat. 5(2A),
    1020-1056.

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

    _init_slots = {
        "initial_proba_init": InitSlot(PROBA_INITIAL_REGISTRY, "uniform", returns="an array of shape (n_states,)"),
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
        kappa: float = 1e6,
        alpha: float = 5.7,
        n_iter: int = 100,
        tol: float = 1e-4,
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
        self.kappa = kappa
        self.alpha = alpha
        self.n_iter = n_iter
        self.tol = tol
        self.covariance_prior_scale = covariance_prior_scale
        self.covariance_prior_dof = covariance_prior_dof
        self.coef_prior_variance = coef_prior_variance
        self.inference_method = inference_method
        self.random_state = random_state
        self.progress_bar = progress_bar
        self.initialization_funcs = initialization_funcs

    # ----------------------------------------------------------- validation
    def _check_hyperparameters(self):
        check_scalar(self.n_states, "n_states", numbers.Integral, min_val=1)
        check_scalar(self.nlags, "nlags", numbers.Integral, min_val=0)
        check_scalar(self.kappa, "kappa", numbers.Real, min_val=0)
        check_scalar(self.alpha, "alpha", numbers.Real, min_val=0, include_boundaries="neither")
        check_scalar(self.n_iter, "n_iter", numbers.Integral, min_val=1)
        check_scalar(self.tol, "tol", numbers.Real, min_val=0)
        check_scalar(
            self.covariance_prior_scale, "covariance_prior_scale", numbers.Real, min_val=0, include_boundaries="neither"
        )
        check_scalar(self.coef_prior_variance, "coef_prior_variance", numbers.Real, min_val=0, include_boundaries="neither")
        if self.covariance_prior_dof is not None:
            check_scalar(self.covariance_prior_dof, "covariance_prior_dof", numbers.Real)
        if self.inference_method not in _METHODS:
            raise ValueError(f"inference_method must be one of {_METHODS}, got {self.inference_method!r}.")
        if not isinstance(self.progress_bar, bool | np.bool_):
            raise TypeError(f"progress_bar must be a bool, got {type(self.progress_bar).__name__}.")

    def _prior(self, n_features: int) -> MNIWPrior:
        if self.covariance_prior_dof is not None and self.covariance_prior_dof <= n_features - 1:
            raise ValueError(
                f"covariance_prior_dof must exceed n_features - 1 = {n_features - 1}, got {self.covariance_prior_dof}."
            )
        return default_mniw_prior(
            n_features,
            self.nlags,
            scale=self.covariance_prior_scale,
            dof=self.covariance_prior_dof,
            coef_variance=self.coef_prior_variance,
            dtype=float_dtype(),
        )

    def _saved_attributes(self):
        return (
            "initial_prob_",
            "transition_prob_",
            "coef_",
            "intercept_",
            "covariances_",
            "log_likelihood_history_",
            "log_joint_history_",
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
        if pi.ndim != 1:
            raise ValueError(f"initial_prob_ must have shape (n_states,), got {pi.shape}.")
        n_states = pi.shape[0]
        if n_states != self.n_states:
            raise ValueError(f"initial_prob_ has {n_states} states but n_states={self.n_states}.")
        if coef.ndim != 3 or coef.shape[0] != n_states:
            raise ValueError(
                f"coef_ must have shape (n_states, n_features, nlags * n_features) = ({n_states}, D, "
                f"{self.nlags}*D), got {coef.shape}."
            )
        n_features = coef.shape[1]
        expected = {
            "transition_prob_": (trans, (n_states, n_states)),
            "coef_": (coef, (n_states, n_features, self.nlags * n_features)),
            "intercept_": (intercept, (n_states, n_features)),
            "covariances_": (cov, (n_states, n_features, n_features)),
        }
        for name, (arr, shape) in expected.items():
            if arr.shape != shape:
                raise ValueError(f"{name} must have shape {shape} (n_states={n_states}, nlags={self.nlags}), got {arr.shape}.")
        if hasattr(self, "n_features_in_") and self.n_features_in_ != n_features:
            raise ValueError(f"coef_ describes {n_features} features but n_features_in_ = {self.n_features_in_}.")
        for name, arr in (("initial_prob_", pi), ("transition_prob_", trans)):
            if not np.all(np.isfinite(arr)) or np.any(arr < 0):
                raise ValueError(f"{name} must hold finite, non-negative probabilities.")
            if not np.allclose(arr.sum(axis=-1), 1.0, atol=1e-3):
                raise ValueError(f"{name} must sum to 1 along its last axis; sums are {arr.sum(axis=-1)}.")
        for name, arr in (("coef_", coef), ("intercept_", intercept), ("covariances_", cov)):
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"{name} must be finite.")
        if not np.allclose(cov, np.swapaxes(cov, -1, -2), rtol=1e-5, atol=1e-8):
            raise ValueError("covariances_ must be symmetric.")
        try:
            np.linalg.cholesky(cov)
        except np.linalg.LinAlgError:
            raise ValueError("covariances_ must be positive definite.") from None
        dtype = float_dtype()
        return ARHMMParams(*(jnp.asarray(a, dtype) for a in (pi, trans, coef, intercept, cov)))

    # ----------------------------------------------------------------- data
    def _prepare(self, X, session_starts, *, reset: bool):
        values, info = split_pynapple(X)
        if info is not None and np.ndim(values) == 1:
            values = np.asarray(values)[:, None]
        values = validate_data(
            self,
            values,
            reset=reset,
            ensure_all_finite="allow-nan",
            dtype=[np.float64, np.float32],
            ensure_min_samples=1,
        )
        if not reset and hasattr(self, "coef_") and not hasattr(self, "n_features_in_"):
            if values.shape[1] != np.shape(self.coef_)[1]:
                raise ValueError(f"X has {values.shape[1]} features, but coef_ describes {np.shape(self.coef_)[1]}.")
        n_time_bins = values.shape[0]
        mask = session_mask(session_starts, n_time_bins, info=info)
        keep, starts_kept = drop_nan_borders(values, mask, info=info)
        kept = values[keep]
        y, x, rows, starts = lagged_design(kept, starts_kept, self.nlags)
        n_frames = len(y)
        n_padded = bucket_length(n_frames)
        pad = n_padded - n_frames
        dtype = float_dtype()
        data = PreparedData(
            arrays={
                "y": jnp.asarray(np.pad(y, ((0, pad), (0, 0))), dtype),
                "x": jnp.asarray(np.pad(x, ((0, pad), (0, 0))), dtype),
            },
            session_starts=jnp.asarray(np.concatenate([starts, np.ones(pad, bool)])),
            weights=jnp.asarray(np.concatenate([np.ones(n_frames), np.zeros(pad)]), dtype),
            rows=np.flatnonzero(keep)[rows],
            n_time_bins=n_time_bins,
            info=info,
        )
        return data, kept, starts_kept

    def _args(self, data: PreparedData):
        return data.arrays["y"], data.arrays["x"], data.session_starts, data.weights

    def _method(self) -> str:
        if self.inference_method not in _METHODS:
            raise ValueError(f"inference_method must be one of {_METHODS}, got {self.inference_method!r}.")
        return resolve_method(self.inference_method)

    # ------------------------------------------------------------------ fit
    def _initial_params(self, kept, starts_kept, prior) -> ARHMMParams:
        n_states, n_features = self.n_states, kept.shape[1]
        keys = jax.random.split(self._fit_key(), 3)
        inits = self._initializers()
        func, kwargs = inits["initial_proba_init"]
        pi = np.asarray(func(n_states, kept, starts_kept, keys[0], **kwargs), float)
        func, kwargs = inits["transition_proba_init"]
        trans = np.asarray(func(n_states, kept, starts_kept, keys[1], **kwargs), float)
        func, kwargs = inits["ar_params_init"]
        out = func(n_states, kept, starts_kept, keys[2], nlags=self.nlags, prior=prior, **kwargs)
        if not isinstance(out, tuple | list) or len(out) != 3:
            raise ValueError("ar_params_init must return a tuple (coef, intercept, covariances).")
        coef, intercept, cov = (np.asarray(a, float) for a in out)
        checks = {
            "initial_proba_init": (pi, (n_states,)),
            "transition_proba_init": (trans, (n_states, n_states)),
            "ar_params_init coef": (coef, (n_states, n_features, self.nlags * n_features)),
            "ar_params_init intercept": (intercept, (n_states, n_features)),
            "ar_params_init covariances": (cov, (n_states, n_features, n_features)),
        }
        for name, (arr, shape) in checks.items():
            if arr.shape != shape:
                raise ValueError(f"{name} returned shape {arr.shape}, expected {shape}.")
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"{name} returned non-finite values.")
        for name, arr in (("initial_proba_init", pi), ("transition_proba_init", trans)):
            if np.any(arr < 0) or not np.allclose(arr.sum(-1), 1.0, atol=1e-4):
                raise ValueError(f"{name} must return non-negative probabilities summing to 1 along the last axis.")
        dtype = float_dtype()
        return ARHMMParams(*(jnp.asarray(a, dtype) for a in (pi, trans, coef, intercept, cov)))

    def fit(self, X, y=None, session_starts=None):
        """Fit the ARHMM by MAP expectation-maximisation.

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

        Returns
        -------
        self : ARHMM
            The fitted estimator.

        Raises
        ------
        ValueError
            For bad shapes, non-finite values, NaN inside a session,
            out-of-range ``session_starts``, sessions with ``nlags`` frames or
            fewer, or invalid hyperparameters.
        TypeError
            For hyperparameters of the wrong type.
        FloatingPointError
            If EM reaches a non-finite log-likelihood.

        Warns
        -----
        sklearn.exceptions.ConvergenceWarning
            If EM stops at ``n_iter`` before meeting ``tol``.
        """
        self._check_hyperparameters()
        data, kept, starts_kept = self._prepare(X, session_starts, reset=True)
        prior = self._prior(kept.shape[1])
        params = self._initial_params(kept, starts_kept, prior)
        dtype = float_dtype()
        hyper = _Hyper(jnp.asarray(self.alpha, dtype), jnp.asarray(self.kappa, dtype), prior)
        method = self._method()
        args = self._args(data)

        def step(p):
            return _em_step(p, *args, hyper, method=method)

        result = run_em(
            step,
            params,
            n_iter=self.n_iter,
            tol=self.tol,
            n_frames=data.n_frames,
            progress_bar=self.progress_bar,
            desc=f"ARHMM EM (K={self.n_states})",
        )
        p = result.params
        self.initial_prob_ = np.asarray(p.initial_prob)
        self.transition_prob_ = np.asarray(p.transition_prob)
        self.coef_ = np.asarray(p.coef)
        self.intercept_ = np.asarray(p.intercept)
        self.covariances_ = np.asarray(p.covariances)
        self.log_likelihood_history_ = result.log_likelihood_history
        self.log_joint_history_ = result.log_joint_history
        self.n_iter_ = result.n_iter
        self.converged_ = bool(result.converged)
        if not result.converged:
            warnings.warn(
                f"EM did not converge in n_iter={self.n_iter} iterations (tol={self.tol} nats per "
                "frame); increase n_iter or tol.",
                ConvergenceWarning,
                stacklevel=2,
            )
        return self

    # -------------------------------------------------------------- predict
    def score(self, X, y=None, session_starts=None) -> float:
        """Marginal log-likelihood of ``X`` summed over its modelled frames.

        Parameters
        ----------
        X : array-like or pynapple TsdFrame of shape (n_time_bins, n_features)
            Data to score; sessions as in [`fit`][behavhmm.ARHMM.fit].
        y : Ignored
        session_starts : array-like or pynapple IntervalSet, optional
            As in [`fit`][behavhmm.ARHMM.fit].

        Returns
        -------
        float
            ``log p(X | θ)`` in nats, summed over sessions; the first
            ``nlags`` frames of each session condition and are not scored.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit`` (or hand-set parameters).
        ValueError
            For invalid input, as in [`fit`][behavhmm.ARHMM.fit].
        """
        params = self._validated_params()
        data, _, _ = self._prepare(X, session_starts, reset=False)
        _, log_lik = _filter(params, *self._args(data), method=self._method())
        return float(log_lik)

    def smooth_proba(self, X, session_starts=None):
        """Posterior state probabilities ``p(z_t | all frames of its session)``.

        Parameters
        ----------
        X : array-like or pynapple TsdFrame of shape (n_time_bins, n_features)
        session_starts : array-like or pynapple IntervalSet, optional
            As in [`fit`][behavhmm.ARHMM.fit].

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
        data, _, _ = self._prepare(X, session_starts, reset=False)
        probs = _posterior(params, *self._args(data), method=self._method()).smoothed_probs
        return self._proba_output(probs, data, params.initial_prob.shape[0])

    def filter_proba(self, X, session_starts=None):
        """Causal state probabilities ``p(z_t | frames up to t of its session)``.

        Parameters
        ----------
        X : array-like or pynapple TsdFrame of shape (n_time_bins, n_features)
        session_starts : array-like or pynapple IntervalSet, optional
            As in [`fit`][behavhmm.ARHMM.fit].

        Returns
        -------
        ndarray of shape (n_time_bins, n_states) or pynapple TsdFrame
            Rows sum to 1; NaN rows where [`smooth_proba`][behavhmm.ARHMM.smooth_proba] has them.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit``.
        ValueError
            For invalid input.
        """
        params = self._validated_params()
        data, _, _ = self._prepare(X, session_starts, reset=False)
        probs, _ = _filter(params, *self._args(data), method=self._method())
        return self._proba_output(probs, data, params.initial_prob.shape[0])

    def decode_state(self, X, session_starts=None, state_format: str = "one-hot"):
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
        data, _, _ = self._prepare(X, session_starts, reset=False)
        states = _viterbi(params, *self._args(data), method=self._method())
        return self._state_output(states, data, state_format, params.initial_prob.shape[0])

    def predict(self, X, session_starts=None):
        """Viterbi state indices; ``decode_state(X, state_format="index")``.

        Parameters
        ----------
        X : array-like of shape (n_time_bins, n_features)
        session_starts : array-like, optional

        Returns
        -------
        ndarray of int32, shape (n_time_bins,)
        """
        return self.decode_state(X, session_starts=session_starts, state_format="index")

    def predict_proba(self, X, session_starts=None):
        """Smoothed state probabilities; same as [`smooth_proba`][behavhmm.ARHMM.smooth_proba].

        Parameters
        ----------
        X : array-like of shape (n_time_bins, n_features)
        session_starts : array-like, optional

        Returns
        -------
        ndarray of shape (n_time_bins, n_states)
        """
        return self.smooth_proba(X, session_starts=session_starts)

    def simulate(self, random_key, n_time_bins: int, session_starts=None, init_frames=None):
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
            The conditioning frames that open every session (oldest first);
            default zeros.

        Returns
        -------
        X : ndarray of shape (n_time_bins, n_features)
            Simulated frames.
        states : ndarray of int32, shape (n_time_bins,)
            The states that generated them; -1 for the conditioning frames.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit``.
        TypeError
            If ``random_key`` is not a key or int.
        ValueError
            For invalid ``n_time_bins``, ``session_starts`` or ``init_frames``.
        """
        params = self._validated_params()
        key = check_random_key(random_key)
        check_scalar(n_time_bins, "n_time_bins", numbers.Integral, min_val=1)
        n_features = params.coef.shape[1]
        mask = session_mask(session_starts, int(n_time_bins))
        if init_frames is None:
            init = np.zeros((self.nlags, n_features))
        else:
            init = np.asarray(init_frames, float)
            if init.shape != (self.nlags, n_features):
                raise ValueError(f"init_frames must have shape ({self.nlags}, {n_features}), got {init.shape}.")
            if not np.all(np.isfinite(init)):
                raise ValueError("init_frames must be finite.")
        # the session's frame at position p < nlags is init_frames[p] (oldest first)
        frames, states = _simulate(key, params, jnp.asarray(mask), jnp.asarray(init, params.coef.dtype), self.nlags)
        return np.asarray(frames), np.asarray(states)
