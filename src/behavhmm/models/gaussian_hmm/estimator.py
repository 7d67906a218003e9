"""The Gaussian hidden Markov model estimator (``behavhmm.GaussianHMM``).

The estimator (API, validation, data layout, fitting control) lives here; its
compiled programs are in ``em.py`` and its built-in initializers in
``initialize.py``.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.exceptions import ConvergenceWarning

from ..._utils import bucket_length, float_dtype
from ...fitting import EMResult, run_em
from ...labels import label_evidence, padded_log_evidence
from ...observations.gaussian import COVARIANCE_TYPES, GaussianPrior
from ...sessions import drop_nan_borders, session_mask
from .._initializers import CHAIN_SLOTS, InitSlot
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
)
from .em import (
    GaussianData,
    GaussianHMMParams,
    Hyper,
    em_step,
)
from .initialize import GAUSSIAN_PARAMS_REGISTRY
from .prediction import GaussianHMMPrediction

__all__ = ["GaussianHMM"]


class _FitData(NamedTuple):
    """Training data of one fit: the prepared frames, the emission prior and the fit's key."""

    data: PreparedData
    prior: GaussianPrior
    key: jax.Array
    init_labels: np.ndarray | None = None  # hand labels on the modelled frames (``_fit_labels``)


class GaussianHMM(GaussianHMMPrediction, BaseHMM):
    """Hidden Markov model with Gaussian emissions, fitted by MAP-EM.

    In state ``k`` a frame (a feature vector or a learned embedding) follows
    ``x_t ~ N(μ_k, Σ_k)``; states follow a (sticky) Markov chain that resets at
    every session start. hmmlearn's ``GaussianHMM`` with sessions, pynapple
    input and output, scikit-learn conventions and JAX kernels.

    Parameters
    ----------
    n_states : int, default 2
        Number of hidden states.
    covariance_type : {"full", "diag", "spherical", "tied"}, default "full"
        Structure of ``Σ_k``: full matrices, diagonal matrices, one variance
        per state, or one full matrix shared by all states (hmmlearn's four).
    kappa : float, default 0.0
        Stickiness: pseudo-counts added to each self-transition.
    alpha : float, default 1.0
        Pseudo-counts spread evenly over each transition row and over the
        initial distribution (``alpha / n_states`` per entry). 0: maximum
        likelihood.
    mean_prior : float or array-like of shape (n_features,), default 0.0
        ``m_0``, the prior mean of every state's mean.
    mean_prior_weight : float, default 0.0
        ``λ_0``: how many frames the mean prior is worth (0: flat prior).
    covariance_prior_scale : float or array-like, default 1e-2
        ``S_0``. A float ``s`` gives ``s I``; an array of shape
        (n_features,) gives its diagonal; an array of shape
        (n_features, n_features) (``"full"``, ``"tied"``) is used as it is.
        In squared units of the data.
    covariance_prior_weight : float, default 0.0
        ``a``: the pseudo-count of the covariance prior (see Notes).
    min_covar : float, default 1e-3
        Smallest allowed variance: every covariance's eigenvalues (variances)
        are kept at or above it (a constraint of the M-step).
    n_iter : int, default 100
        Maximum EM iterations.
    tol : float, default 1e-4
        EM stops when the log joint changes by less than ``tol`` nats per frame.
    inference_method : {"auto", "sequential", "parallel"}, default "auto"
        HMM kernels: sequential scans (CPU) or associative scans (GPU).
    random_state : int, numpy Generator or None, default 0
        Seed of the initialisation.
    progress_bar : bool, default True
        Show a tqdm progress bar while fitting.
    initialization_funcs : dict, optional
        Initializers chosen with [`setup`][behavhmm.GaussianHMM.setup]: slots
        ``initial_proba_init`` ("uniform" | "random" | "labels"), ``transition_proba_init``
        ("sticky" | "uniform" | "random" | "labels") and ``gaussian_params_init``
        ("kmeans" | "random" | "labels", or a callable returning ``(means, covariances)``;
        it receives the keywords ``covariance_type`` and ``prior``, and ``labels``
        if it has that parameter), each with ``<slot>_kwargs``. "labels" starts
        from ``fit``'s hand labels (see [`behavhmm.labels`][behavhmm.labels]).

    Attributes
    ----------
    initial_prob_ : ndarray of shape (n_states,)
        ``p(z_s)`` at a session's first frame.
    transition_prob_ : ndarray of shape (n_states, n_states)
        ``[i, j] = p(z_t = j | z_{t-1} = i)``.
    means_ : ndarray of shape (n_states, n_features)
        ``μ_k``.
    covariances_ : ndarray
        ``Σ_k`` in hmmlearn's shapes: (n_states, n_features, n_features)
        for "full", (n_states, n_features) for "diag" (the variances),
        (n_states,) for "spherical", (n_features, n_features) for "tied".
    log_likelihood_history_ : ndarray of shape (n_iter_,)
        Training log-likelihood (nats) of the parameters entering each iteration.
    log_joint_history_ : ndarray of shape (n_iter_,)
        Log-likelihood plus log prior (up to a constant) of the same
        parameters; never decreases.
    n_iter_ : int
        Iterations run.
    converged_ : bool
        Whether EM met ``tol``.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of str
        Column names, when ``X`` was a DataFrame with string columns.

    Notes
    -----
    **Objective.** EM maximises ``log p(X | θ) + log p(θ)``: the E-step runs
    behavhmm's session-aware forward-backward smoother, the M-step is the
    exact maximiser. The priors are

    - initial distribution ``Dir(1 + alpha/K)`` and transition rows
      ``Dir(1 + alpha/K + kappa e_i)`` (sticky);
    - emissions, per state (once for "tied"):
      ``-λ_0/2 (μ_k - m_0)^T Σ_k^{-1} (μ_k - m_0) - a/2 log|Σ_k| - 1/2 tr(S_0 Σ_k^{-1})``,
      up to a constant the normal-inverse-Wishart ``NIW(m_0, λ_0, ν_0, S_0)``
      with ``a = ν_0 + D + 2`` (an inverse-Wishart with ``a = ν_0 + D + 1``
      when ``λ_0 = 0``; per feature, normal-inverse-gamma, for "diag";
      "spherical" ties the variances of a state);
    - the constraint that eigenvalues (variances) are ``>= min_covar``.

    The M-step is ``μ_k = (λ_0 m_0 + Σ_t γ_tk x_t) / (λ_0 + N_k)``,
    ``Σ_k = (S_0 + Σ_t γ_tk (x_t - μ_k)(x_t - μ_k)^T + λ_0 (μ_k - m_0)(μ_k - m_0)^T) / (a + N_k)``
    with eigenvalues raised to ``min_covar``, and the Dirichlet posterior
    modes ``(N_ij + alpha/K + kappa δ_ij) / (N_i + alpha + kappa)``. See
    [`behavhmm.observations.gaussian`](../api/observations.md) for the
    diagonal, spherical and tied forms.

    **The defaults** (``alpha=1``, ``kappa=0``, flat mean prior,
    ``S_0 = 0.01 I``, ``a = 0``, ``min_covar=1e-3``) are weak: a state's
    covariance is its weighted sample covariance plus ``0.01 / N_k``.

    **hmmlearn's MLE.** hmmlearn's ``GaussianHMM`` defaults
    (``startprob_prior=1``, ``transmat_prior=1``, ``means_weight=0``,
    ``covars_prior=1e-2``, ``covars_weight=1``) are reproduced by
    ``alpha=0, kappa=0, mean_prior_weight=0, covariance_prior_weight=0`` and
    ``covariance_prior_scale=1e-2`` for "diag" and "spherical", or
    ``covariance_prior_scale=1e-2 * np.ones((D, D))`` for "full" and "tied"
    (hmmlearn adds ``covars_prior`` to every entry of a full matrix), as long
    as no variance falls below ``min_covar`` (hmmlearn uses ``min_covar`` only
    when it initialises covariances). In general hmmlearn's ``means_prior``,
    ``means_weight`` and ``covars_prior`` are ``mean_prior``,
    ``mean_prior_weight`` and ``covariance_prior_scale``, and
    ``covariance_prior_weight = max(covars_weight - D, 0)`` ("full", "tied")
    or ``max(covars_weight - 1, 0)`` ("diag", "spherical"). Pure maximum
    likelihood: ``alpha=0`` and ``covariance_prior_scale=0``. hmmlearn's
    rank-one full prior lets a state collapse onto a few frames when K is
    large; prefer ``1e-2 * np.eye(D)`` (in both libraries) for comparisons.

    **Sessions.** ``session_starts`` marks where recordings begin; the chain
    restarts there. NaN rows at the start or end of a session (epoch) are
    dropped: ``decode_state`` gives -1 (index) or a zero row (one-hot) there,
    ``smooth_proba`` and ``filter_proba`` rows of NaN.

    **Parameters from elsewhere.** Setting ``initial_prob_``,
    ``transition_prob_``, ``means_`` and ``covariances_`` by hand (e.g. from
    hmmlearn's ``startprob_``, ``transmat_``, ``means_`` and the
    ``covariance_type``-shaped ``_covars_``) gives a model that predicts with
    exactly those parameters; they are checked at every call.

    References
    ----------
    L. R. Rabiner (1989). A tutorial on hidden Markov models and selected
    applications in speech recognition. Proc. IEEE 77(2), 257-286.

    E. B. Fox, E. B. Sudderth, M. I. Jordan and A. S. Willsky (2011). A sticky
    HDP-HMM with application to speaker diarization. Ann. Appl. Stat. 5(2A),
    1020-1056.

    Examples
    --------
    >>> import jax, numpy as np
    >>> from behavhmm import GaussianHMM
    >>> truth = GaussianHMM(n_states=2, covariance_type="diag")
    >>> truth.initial_prob_ = np.array([0.5, 0.5])
    >>> truth.transition_prob_ = np.array([[0.95, 0.05], [0.05, 0.95]])
    >>> truth.means_ = np.array([[0.0, 0.0], [3.0, 3.0]])
    >>> truth.covariances_ = np.array([[1.0, 1.0], [0.5, 0.5]])
    >>> X, states = truth.simulate(jax.random.key(0), n_time_bins=500)
    >>> model = GaussianHMM(n_states=2, covariance_type="diag", progress_bar=False).fit(X)
    >>> model.decode_state(X, state_format="index").shape
    (500,)
    """

    _init_slots = {
        **CHAIN_SLOTS,
        "gaussian_params_init": InitSlot(
            GAUSSIAN_PARAMS_REGISTRY,
            "kmeans",
            context=("covariance_type", "prior"),
            returns="a tuple (means, covariances)",
        ),
    }

    def __init__(
        self,
        n_states: int = 2,
        covariance_type: str = "full",
        *,
        kappa: float = 0.0,
        alpha: float = 1.0,
        mean_prior=0.0,
        mean_prior_weight: float = 0.0,
        covariance_prior_scale=1e-2,
        covariance_prior_weight: float = 0.0,
        min_covar: float = 1e-3,
        n_iter: int = 100,
        tol: float = 1e-4,
        inference_method: str = "auto",
        random_state=0,
        progress_bar: bool = True,
        initialization_funcs: dict | None = None,
    ):
        self.n_states = n_states
        self.covariance_type = covariance_type
        self.kappa = kappa
        self.alpha = alpha
        self.mean_prior = mean_prior
        self.mean_prior_weight = mean_prior_weight
        self.covariance_prior_scale = covariance_prior_scale
        self.covariance_prior_weight = covariance_prior_weight
        self.min_covar = min_covar
        self.n_iter = n_iter
        self.tol = tol
        self.inference_method = inference_method
        self.random_state = random_state
        self.progress_bar = progress_bar
        self.initialization_funcs = initialization_funcs

    # ----------------------------------------------------------- validation
    _hyperparameters: ClassVar[dict] = {
        "n_states": Integer(1),
        "covariance_type": OneOf(COVARIANCE_TYPES),
        "kappa": Real(0),
        "alpha": Real(0),
        "mean_prior_weight": Real(0),
        "covariance_prior_weight": Real(0),
        "min_covar": Real(0, closed="neither"),
        "n_iter": Integer(1),
        "tol": Real(0),
        "inference_method": OneOf(INFERENCE_METHODS),
        "progress_bar": Bool(),
    }

    def _prior(self, n_features: int) -> GaussianPrior:
        """The emission prior for ``n_features`` features, validated."""
        mean = np.asarray(self.mean_prior, float)
        if mean.ndim == 0:
            mean = np.full(n_features, float(mean))
        if mean.shape != (n_features,) or not np.all(np.isfinite(mean)):
            raise ValueError(
                f"mean_prior must be a finite float or an array of shape ({n_features},), got "
                f"shape {mean.shape}."
            )
        scale = np.asarray(self.covariance_prior_scale, float)
        matrix = self.covariance_type in ("full", "tied")
        if scale.ndim == 0:
            scale = np.full(n_features, float(scale))
        if scale.ndim == 1 and matrix:
            scale = np.diag(scale) if scale.shape == (n_features,) else scale
        wanted = (n_features, n_features) if matrix else (n_features,)
        if scale.shape != wanted or not np.all(np.isfinite(scale)):
            raise ValueError(
                f"covariance_prior_scale must be a float or a finite array of shape {wanted} (or "
                f"({n_features},) for its diagonal) with covariance_type={self.covariance_type!r}, "
                f"got shape {scale.shape}."
            )
        if matrix:
            if not np.allclose(scale, scale.T) or np.linalg.eigvalsh(scale).min() < -1e-12 * max(
                1.0, np.abs(scale).max()
            ):
                raise ValueError("covariance_prior_scale must be symmetric positive semi-definite.")
        elif np.any(scale < 0):
            raise ValueError("covariance_prior_scale must be non-negative.")
        dtype = float_dtype()
        return GaussianPrior(
            mean=jnp.asarray(mean, dtype),
            mean_weight=jnp.asarray(self.mean_prior_weight, dtype),
            scale=jnp.asarray(scale, dtype),
            weight=jnp.asarray(self.covariance_prior_weight, dtype),
            min_covar=jnp.asarray(self.min_covar, dtype),
        )

    def _covariance_shape(self, n_states: int, n_features: int) -> tuple[int, ...]:
        return {
            "full": (n_states, n_features, n_features),
            "diag": (n_states, n_features),
            "spherical": (n_states,),
            "tied": (n_features, n_features),
        }[self.covariance_type]

    def _check_covariances(self, cov: np.ndarray, name: str):
        if not np.all(np.isfinite(cov)):
            raise ValueError(f"{name} must be finite.")
        if self.covariance_type in ("diag", "spherical"):
            if np.any(cov <= 0):
                raise ValueError(f"{name} must be positive (variances).")
            return
        if not np.allclose(cov, np.swapaxes(cov, -1, -2), rtol=1e-5, atol=1e-8):
            raise ValueError(f"{name} must be symmetric.")
        try:
            np.linalg.cholesky(cov)
        except np.linalg.LinAlgError:
            raise ValueError(f"{name} must be positive definite.") from None

    def _saved_attributes(self):
        return (
            "initial_prob_",
            "transition_prob_",
            "means_",
            "covariances_",
            "log_likelihood_history_",
            "log_joint_history_",
            "feature_names_in_",
        )

    def _required_attributes(self):
        return ("initial_prob_", "transition_prob_", "means_", "covariances_")

    def _validated_params(self) -> GaussianHMMParams:
        """Fitted (or hand-set) parameters as JAX arrays, after checking them."""
        self._check_fitted()
        self._check_choice("covariance_type", self.covariance_type, COVARIANCE_TYPES)
        pi = np.asarray(self.initial_prob_, float)
        trans = np.asarray(self.transition_prob_, float)
        means = np.asarray(self.means_, float)
        cov = np.asarray(self.covariances_, float)
        n_states = self._check_initial_prob(pi)
        if means.ndim != 2 or means.shape[0] != n_states:
            raise ValueError(
                f"means_ must have shape (n_states, n_features) = ({n_states}, D), got "
                f"{means.shape}."
            )
        n_features = means.shape[1]
        expected = {
            "transition_prob_": (trans, (n_states, n_states)),
            "covariances_": (cov, self._covariance_shape(n_states, n_features)),
        }
        for name, (arr, shape) in expected.items():
            if arr.shape != shape:
                raise ValueError(
                    f"{name} must have shape {shape} (n_states={n_states}, "
                    f"n_features={n_features}, "
                    f"covariance_type={self.covariance_type!r}), got {arr.shape}."
                )
        if hasattr(self, "n_features_in_") and self.n_features_in_ != n_features:
            raise ValueError(
                f"means_ describes {n_features} features but n_features_in_ = "
                f"{self.n_features_in_}."
            )
        check_probabilities(initial_prob_=pi, transition_prob_=trans)
        if not np.all(np.isfinite(means)):
            raise ValueError("means_ must be finite.")
        self._check_covariances(cov, "covariances_")
        dtype = float_dtype()
        return GaussianHMMParams(*(jnp.asarray(a, dtype) for a in (pi, trans, means, cov)))

    # ----------------------------------------------------------------- data
    def _validate_X(self, X, *, reset: bool):
        n_features = (
            np.shape(self.means_)[1]
            if hasattr(self, "means_") and np.ndim(self.means_) == 2
            else None
        )
        return self._validate_frames(X, reset=reset, n_features=n_features, source="means_")

    def _build(self, kept, starts, rows_kept, n_time_bins, info) -> PreparedData:
        """Pad to a bucket length and move to the device."""
        n_frames = len(kept)
        pad = bucket_length(n_frames) - n_frames
        dtype = float_dtype()
        data = GaussianData(
            X=jnp.asarray(np.pad(kept, ((0, pad), (0, 0))), dtype),
            starts=jnp.asarray(np.concatenate([starts, np.ones(pad, bool)])),
            weights=jnp.asarray(np.concatenate([np.ones(n_frames), np.zeros(pad)]), dtype),
        )
        return PreparedData(
            arrays={"gaussian": data},
            session_starts=data.starts,
            weights=data.weights,
            rows=rows_kept,
            n_time_bins=n_time_bins,
            info=info,
            extra={"X": kept},
        )

    def _prepare(self, X, session_starts) -> PreparedData:
        """Input of a fitting or prediction method on the model's time axis."""
        values, info = self._validate_X(X, reset=False)
        return self._layout(values, session_starts, info)

    def _layout(self, values, session_starts, info) -> PreparedData:
        mask = session_mask(session_starts, values.shape[0], info=info)
        keep, starts_kept = drop_nan_borders(values, mask, info=info)
        return self._build(values[keep], starts_kept, np.flatnonzero(keep), values.shape[0], info)

    # ------------------------------------------------------------------ fit
    def _initial_params(self, kept, starts_kept, prior, key, labels=None) -> GaussianHMMParams:
        n_states, n_features = self.n_states, kept.shape[1]
        keys = jax.random.split(key, 3)
        pi, trans = self._initial_chain(kept, starts_kept, keys[:2], labels=labels)
        means, cov = self._emission_init(
            "gaussian_params_init",
            kept,
            starts_kept,
            keys[2],
            2,
            labels=labels,
            covariance_type=self.covariance_type,
            prior=prior,
        )
        check_initializer_output(
            {
                "gaussian_params_init means": (means, (n_states, n_features)),
                "gaussian_params_init covariances": (
                    cov,
                    self._covariance_shape(n_states, n_features),
                ),
            }
        )
        self._check_covariances(cov, "gaussian_params_init covariances")
        dtype = float_dtype()
        return GaussianHMMParams(*(jnp.asarray(a, dtype) for a in (pi, trans, means, cov)))

    def fit(self, X, y=None, session_starts=None, labels=None, label_weight=1.0, class_names=None):
        """Fit the Gaussian HMM by MAP-EM, optionally given hand labels of some frames.

        Parameters
        ----------
        X : array-like or pynapple TsdFrame of shape (n_time_bins, n_features)
            Features or embeddings, sessions concatenated in time.
        y : Ignored
            Present for scikit-learn compatibility.
        session_starts : array-like or pynapple IntervalSet, optional
            Boolean mask of shape (n_time_bins,) marking session starts, or
            their integer indices, or (with pynapple ``X``) an IntervalSet.
            Default: one session, or one per epoch of ``X.time_support``.
        labels : array-like of int of shape (n_time_bins,) or pynapple Tsd, optional
            Hand labels: ``c`` ties frame ``t`` to state ``c`` (states
            ``0..C-1`` are the labelled classes, the others stay free), -1
            leaves it unlabelled. A non-negative array of shape
            (n_time_bins, n_states) gives evidence ``e_t(k)`` directly.
            Routed like ``session_starts`` by scikit-learn's metadata routing.
        label_weight : float in [0, 1], default 1.0
            Evidence of a labelled frame: ``e_t(k) = 1`` for the label and
            ``1 - label_weight`` for the other states; 1 clamps the state,
            0 ignores the labels.
        class_names : sequence of str, optional
            Names of the labelled classes ``0..C-1``, kept as ``class_names_``
            and in model files (default with labels: "0", ..., "C-1");
            relabelling by usage keeps these states' numbers.

        Returns
        -------
        self : GaussianHMM
            The fitted estimator.

        Raises
        ------
        ValueError
            For bad shapes, non-finite values, NaN inside a session,
            out-of-range ``session_starts``, fewer frames than states, or
            invalid hyperparameters or initializer output; for labels of the
            wrong length, outside ``[-1, n_states)`` or on NaN frames, and a
            ``label_weight`` outside [0, 1].
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
        With labels the E-step conditions on them: the emission
        log-likelihoods get ``log e_t(k)`` added before the forward-backward
        (derivation in [`behavhmm.labels.label_evidence`][behavhmm.labels.label_evidence]),
        and EM maximises ``log p(X, labels | θ) + log p(θ)``, the MAP estimate
        given the evidence; ``log_likelihood_history_`` then holds this
        evidence-conditioned log-likelihood. Prediction methods do not use labels.
        """
        return self._fit_skeleton(
            X,
            session_starts,
            labels=labels,
            label_weight=label_weight,
            class_names=class_names,
        )

    def _fit_data(self, X, session_starts) -> _FitData:
        values, info = self._validate_X(X, reset=True)
        train = self._layout(values, session_starts, info)
        if train.n_frames < self.n_states:
            raise ValueError(
                f"X has n_samples={train.n_frames} modelled frame(s), "
                f"fewer than n_states={self.n_states}."
            )
        return _FitData(train, self._prior(values.shape[1]), self._fit_key())

    def _fit_labels(self, train: _FitData, labels, label_weight):
        """Hand labels' evidence on the modelled frames (``_fit_skeleton``'s labels hook)."""
        data = train.data
        keep = np.zeros(data.n_time_bins, bool)
        keep[data.rows] = True
        evidence = label_evidence(labels, label_weight, self.n_states, None, keep, info=data.info)
        if evidence is None:
            return train, None
        gaussian = data.arrays["gaussian"]
        log_ev = padded_log_evidence(evidence, gaussian.X.shape[0])
        gaussian = gaussian._replace(log_evidence=jnp.asarray(log_ev, gaussian.X.dtype))
        data = dataclasses.replace(data, arrays={**data.arrays, "gaussian": gaussian})
        return train._replace(data=data, init_labels=evidence.labels), evidence

    def _initialize(self, train: _FitData) -> GaussianHMMParams:
        data = train.data
        starts_kept = np.asarray(data.session_starts)[: data.n_frames]
        return self._initial_params(
            data.extra["X"], starts_kept, train.prior, train.key, train.init_labels
        )

    def _run_loop(self, init: GaussianHMMParams, train: _FitData, resume: bool) -> EMResult:
        dtype = float_dtype()
        hyper = Hyper(jnp.asarray(self.alpha, dtype), jnp.asarray(self.kappa, dtype), train.prior)
        data, method, cov_type = train.data.arrays["gaussian"], self._method(), self.covariance_type

        def step(params):
            return em_step(params, data, hyper, cov_type, method)

        return run_em(
            step,
            init,
            n_iter=self.n_iter,
            tol=self.tol,
            n_frames=train.data.n_frames,
            progress_bar=self.progress_bar,
            desc=f"GaussianHMM em (K={self.n_states})",
        )

    def _store(self, result: EMResult, train: _FitData) -> None:
        p = result.params
        self.initial_prob_ = np.asarray(p.initial_prob)
        self.transition_prob_ = np.asarray(p.transition_prob)
        self.means_ = np.asarray(p.means)
        self.covariances_ = np.asarray(p.covariances)
        self.log_likelihood_history_ = np.asarray(result.log_likelihood_history)
        self.log_joint_history_ = np.asarray(result.log_joint_history)
        self.n_iter_ = int(result.n_iter)
        self.converged_ = bool(result.converged)
        if not result.converged:
            warnings.warn(
                f"EM did not converge in n_iter={self.n_iter} iterations (tol={self.tol} nats per "
                "frame); increase n_iter or tol.",
                ConvergenceWarning,
                stacklevel=4,
            )
