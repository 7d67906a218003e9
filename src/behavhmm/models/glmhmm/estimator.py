"""GLM-HMM: a hidden Markov model whose states each have their own generalized linear model.

The estimator mirrors nemos' ``GLMHMM`` (constructor, methods, fitted
attribute names and shapes, error types, the convergence ``RuntimeWarning``),
so switching is a change of import, and adds what nemos lacks: a categorical
(multinomial-logit) family, population responses, ``n_init`` restarts,
compiled programs shared across fits, and model files without pickle.
"""

from __future__ import annotations

from typing import ClassVar

import jax

from ...fitting import EMResult
from ...labels import labelled_initial_proba, labelled_transition_proba
from .._initializers import InitSlot, validate_setup
from ..base import (
    INFERENCE_METHODS,
    BaseHMM,
    Bool,
    Integer,
    OneOf,
    Real,
)
from . import em as core  # noqa: F401  (the module the programs are read from: em, via core)
from ._nemos_api import EMState as EMState
from ._nemos_api import NemosSolverAPI
from ._params import GLMParameters, _check_memory
from .em import GLMHMMParams
from .initialize import (
    _GLM_KEYWORDS,
    _HMM_KEYWORDS,
    GLM_PARAMS_REGISTRY,
    INITIAL_REGISTRY,
    SCALE_REGISTRY,
    TRANSITION_REGISTRY,
    GLMInitializer,
    HMMInitializer,
    KMeansInitializer,
    constant_scale_init,
    dirichlet_initial_proba_init,
    dirichlet_transition_proba_init,
    intercept_matching_mean,
    kmeans_glm_params_init,
    kmeans_initial_proba_init,
    kmeans_scale_init,
    kmeans_transition_proba_init,
    random_glm_params_init,
    random_initial_proba_init,
    random_transition_proba_init,
    sticky_transition_proba_init,
    uniform_initial_proba_init,
    uniform_transition_proba_init,
)
from .initialize_labels import labels_glm_params_init, labels_scale_init
from .prediction import GLMHMMPrediction
from .validation import (
    _HMM_SLOTS,
    _MODEL_SLOTS,
    GLMValidation,
    _check_glm_progress,
    _check_init_dict,
    _GLMFitData,
)

__all__ = [
    "GLMHMM",
    "EMState",
    "HMMInitializer",
    "GLMInitializer",
    "KMeansInitializer",
    "uniform_initial_proba_init",
    "random_initial_proba_init",
    "dirichlet_initial_proba_init",
    "kmeans_initial_proba_init",
    "sticky_transition_proba_init",
    "uniform_transition_proba_init",
    "random_transition_proba_init",
    "dirichlet_transition_proba_init",
    "kmeans_transition_proba_init",
    "random_glm_params_init",
    "kmeans_glm_params_init",
    "constant_scale_init",
    "kmeans_scale_init",
    "intercept_matching_mean",
]


class GLMHMM(GLMHMMPrediction, NemosSolverAPI, GLMValidation, GLMParameters, BaseHMM):
    """Hidden Markov model with one generalized linear model per state (nemos-compatible).

    At each time bin the animal (or neuron population) is in one of
    ``n_states`` hidden states ``z_t``, which follow a Markov chain that
    restarts at every session start; in state ``k`` the observation follows a
    GLM of the design row ``x_t``:
    ``y_t | z_t = k ~ Family(f(x_t^T W_k + b_k), φ_k)``. Fitted by MAP
    expectation-maximisation: the E-step is the session-aware
    forward-backward smoother, the M-step updates the initial and transition
    probabilities in closed form (under optional Dirichlet priors) and each
    state's GLM by a penalised, posterior-weighted regression.

    The constructor, methods and fitted attributes are those of nemos'
    ``nemos.glm_hmm.GLMHMM``: a nemos user switches by changing the import.

    Parameters
    ----------
    n_states : int
        Number of hidden states.
    observation_model : str, default "Bernoulli"
        One of ``"Bernoulli"``, ``"Poisson"``, ``"Gamma"``, ``"NegativeBinomial"``,
        ``"Gaussian"``, ``"Categorical"``. Distribution of ``y`` in each state (see
        [`behavhmm.observations.glm`][behavhmm.observations.glm] for the
        scale of each). ``"Categorical"`` is a multinomial-logit model for
        tasks with more than two choices: ``y`` holds class labels and
        ``coef_`` has one column of weights per class. nemos
        ``Observations`` instances are accepted by their class name.
    inverse_link_function : None, str or callable, default None
        Maps the linear predictor to the mean: ``None`` uses the family's
        default (logistic, exp, ``1/x``, exp, identity, softmax); a name from
        [`INVERSE_LINKS`][behavhmm.observations.glm.INVERSE_LINKS]; or a differentiable JAX
        function.
    regularizer : str or Regularizer, default "Ridge"
        Penalty on the coefficients (not the intercepts): ``"UnRegularized"``,
        ``"Ridge"``, ``"Lasso"``, ``"ElasticNet"``, ``"GroupLasso"`` or an
        instance from [`behavhmm.fitting.regularizers`][behavhmm.fitting.regularizers]
        (e.g. ``GroupLasso(mask=...)``).
    regularizer_strength : float, array or tuple, default 1.0
        Strength of the penalty, added to the *summed* negative
        log-likelihood (for Ridge, the precision of a Gaussian prior on each
        coefficient). ElasticNet takes ``(strength, ratio)``; GroupLasso one
        value per group. Ignored by UnRegularized.
    dirichlet_initial_proba : array-like of shape (n_states,), optional
        Concentrations (each >= 1) of a Dirichlet prior on the initial
        probabilities; None is a flat prior.
    dirichlet_transition_proba : array-like of shape (n_states, n_states), optional
        Concentrations (each >= 1) of Dirichlet priors on the transition
        rows; e.g. larger values on the diagonal favour long dwell times.
    solver_name : str, optional
        M-step solver: ``"GradientDescent"``, ``"BFGS"``, ``"LBFGS"``,
        ``"NonlinearCG"`` or ``"ProximalGradient"`` (jaxopt), or
        ``"Newton"`` (behavhmm's damped Newton's method on the exact GLM
        Hessian, see [`minimize_glm_newton`][behavhmm.fitting.solvers.minimize_glm_newton];
        smooth penalties, not the Categorical model). Default: Newton for
        UnRegularized and Ridge with a canonical link (Bernoulli/logistic,
        Poisson/exp, Gaussian/identity), where the M-step is convex and
        Newton converges in a few iterations from EM's warm start; otherwise
        the regularizer's (LBFGS for UnRegularized and Ridge,
        ProximalGradient for the non-smooth penalties, which allow only
        ProximalGradient).
    solver_kwargs : dict, optional
        Keyword arguments of the jaxopt solver (e.g. ``maxiter``, ``tol``
        per M-step); they override behavhmm's defaults (see
        [`default_solver_kwargs`][behavhmm.fitting.solvers.default_solver_kwargs]).
    maxiter : int, default 1000
        Maximum number of EM iterations.
    tol : float, default 1e-8
        EM stops when the EM objective (log-likelihood plus log prior)
        changes by less than ``tol`` nats per time bin.
    seed : int or jax.random key, default 123
        Randomness of the initialisation (a ``jax.random.key``, a legacy
        ``jax.random.PRNGKey`` or an int).
    hmm_initialization_funcs : dict, optional
        Initializers of the initial and transition probabilities, usually
        set with [`setup`][behavhmm.GLMHMM.setup] (keys ``initial_proba_init``,
        ``transition_proba_init`` and their ``*_kwargs``).
    model_initialization_funcs : dict, optional
        Initializers of the GLM weights and scale (keys ``glm_params_init``,
        ``scale_init`` and their ``*_kwargs``), usually set with ``setup``.
    n_init : int, default 1
        Number of EM runs from different initialisations (each initializer
        gets a fresh key); the run with the highest final EM objective (the
        penalised log-likelihood) is kept. Not in nemos.
    inference_method : {"auto", "sequential", "parallel"}, default "auto"
        HMM kernels: sequential scans (CPU) or associative scans (GPU).
    block_size : int, optional
        Memory knob: the E-step computes the GLM log-likelihoods of
        ``block_size`` time bins at a time (bounding the
        ``(n_time_bins, n_outputs, n_states)`` temporaries of multi-output
        GLMs). Default: all at once.
    progress_bar : bool, default True
        Show progress while fitting: a tqdm bar on a terminal, a plain line
        every 10 % of the iterations when stderr is not a terminal (logs).

    Attributes
    ----------
    coef_ : ndarray or dict of ndarrays
        Per-state weights, shape (n_features, n_states); for a population
        ``y`` of shape (n_time_bins, n_neurons), (n_features, n_neurons,
        n_states); for Categorical, (n_features, n_classes, n_states). A dict
        ``X`` gives a dict of such arrays (one per key).
    intercept_ : ndarray of shape (n_states,), (n_neurons, n_states) or (n_classes, n_states)
    scale_ : ndarray of shape (n_states,) or (n_neurons, n_states)
        Variance (Gaussian), dispersion ``φ`` (Gamma: ``Var = φ μ²``;
        NegativeBinomial: ``Var = μ + φ μ²``), or ones.
    initial_prob_ : ndarray of shape (n_states,)
    transition_prob_ : ndarray of shape (n_states, n_states)
        ``[i, j] = p(z_t = j | z_{t-1} = i)``.
    solver_state_ : EMState
        The final EM state (iterations, convergence, log-likelihood history).
    dof_resid_ : ndarray of shape (n_outputs,)
        Residual degrees of freedom: time bins minus free parameters
        (coefficients as in nemos: all for Ridge, ``rank(X)`` per state
        unregularized, non-zero ones for (group) Lasso and ElasticNet; plus
        intercepts and the HMM's ``(n_states - 1)(n_states + 1)``).
    classes_ : ndarray
        Class labels (Categorical only), in the order of ``coef_``'s class axis.
    log_likelihood_history_ : ndarray of shape (n_iter_,)
        Training log-likelihood (nats) of the parameters entering each iteration.
    log_joint_history_ : ndarray of shape (n_iter_,)
        The EM objective: log-likelihood plus log prior (Dirichlet terms
        minus the penalty); never decreases.
    n_iter_ : int
    converged_ : bool
    n_features_in_ : int
        Number of features (all keys of a dict ``X`` together).

    Raises
    ------
    TypeError, ValueError, KeyError, NameError
        Hyperparameters are checked when ``fit`` (or a method using them)
        runs, with nemos' error types: ``TypeError`` for a non-integer
        ``n_states``, an unknown ``seed`` type or a bad regularizer type;
        ``ValueError`` for non-positive ``n_states``, ``maxiter`` or ``tol``,
        a solver the regularizer does not allow, Dirichlet concentrations
        below 1 or of the wrong shape, an unknown observation model;
        ``KeyError`` for unknown keys in the initialization dicts;
        ``NameError`` for unknown ``solver_kwargs``.

    Notes
    -----
    **EM.** With posteriors ``γ_tk`` and expected transition counts
    ``N_ij``, the M-step sets
    ``π_k ∝ Σ_s γ_sk + a_k - 1`` (over session starts ``s``),
    ``A_ij ∝ N_ij + a_ij - 1``, and minimises
    ``-Σ_t Σ_k γ_tk log p(y_t | x_t, W_k, b_k, φ_k) + P(W)`` over the
    weights (warm-started: Newton's method on the exact Hessian by default
    for canonical links, else a jaxopt solver), then over the scale (closed form
    for the Gaussian variance, L-BFGS on ``log φ`` for Gamma and
    NegativeBinomial). Each block maximises the EM objective, which
    therefore never decreases.

    **Differences from nemos** (each a defect of nemos' GLM-HMM, covered by
    a regression test): Dirichlet priors are used by ``fit``; ``scale_`` is
    stored and used as is (nemos exponentiates it on the way out, so
    Gaussian/Gamma scores use the wrong variance); NegativeBinomial fits;
    ``sklearn.clone`` and ``GridSearchCV`` work; population ``y`` is
    accepted; convergence is tested on the change of the objective per time
    bin (nemos tests ``exp(LL/T)`` with an absolute tolerance, so population
    fits stop after two iterations); refits with the same shapes reuse
    compiled programs; boolean ``y`` works in float64;
    ``decode_state(state_format="index")`` returns integers (-1 for dropped
    NaN rows). Hyperparameters are checked in ``fit``, not in the
    constructor (scikit-learn's rule). Not-fitted errors are
    ``sklearn.exceptions.NotFittedError``, a subclass of nemos'
    ``ValueError``.

    References
    ----------
    Z. C. Ashwood et al. (2022). Mice alternate between discrete strategies
    during perceptual decision-making. Nature Neuroscience 25, 201-212.

    S. W. Linderman et al. (2019). Hierarchical recurrent state space models
    reveal discrete and continuous dynamics of neural activity in C. elegans.
    bioRxiv 621540 (GLM-HMM emissions in ``ssm``).

    Examples
    --------
    >>> import jax, numpy as np
    >>> from behavhmm import GLMHMM
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(500, 3))
    >>> y = rng.binomial(1, 0.5, size=500)
    >>> model = GLMHMM(n_states=2, progress_bar=False).fit(X, y)
    >>> model.coef_.shape, model.transition_prob_.shape
    ((3, 2), (2, 2))
    >>> model.decode_state(X, y, state_format="index").dtype
    dtype('int32')
    """

    _init_slots: ClassVar[dict[str, InitSlot]] = {
        "initial_proba_init": InitSlot(
            {**INITIAL_REGISTRY, "labels": labelled_initial_proba},
            "uniform",
            returns="an array of shape (n_states,)",
            keywords=_HMM_KEYWORDS,
        ),
        "transition_proba_init": InitSlot(
            {**TRANSITION_REGISTRY, "labels": labelled_transition_proba},
            "sticky",
            returns="an array of shape (n_states, n_states)",
            keywords=_HMM_KEYWORDS,
        ),
        "glm_params_init": InitSlot(
            {**GLM_PARAMS_REGISTRY, "labels": labels_glm_params_init},
            "random",
            returns="a tuple (coef, intercept)",
            keywords=_GLM_KEYWORDS,
        ),
        "scale_init": InitSlot(
            {**SCALE_REGISTRY, "labels": labels_scale_init},
            "constant",
            returns="the scale array",
            keywords=_GLM_KEYWORDS,
        ),
    }
    _init_params: ClassVar[tuple[str, ...]] = (
        "hmm_initialization_funcs",
        "model_initialization_funcs",
    )
    _saved_scalars: ClassVar[tuple[str, ...]] = ("n_iter_", "converged_", "n_features_in_")

    # scikit-learn metadata routing for the y-taking methods
    __metadata_request__decode_state = {"session_starts": True}

    def __init__(
        self,
        n_states: int,
        observation_model="Bernoulli",
        inverse_link_function=None,
        regularizer="Ridge",
        regularizer_strength=1.0,
        dirichlet_initial_proba=None,
        dirichlet_transition_proba=None,
        solver_name: str | None = None,
        solver_kwargs: dict | None = None,
        maxiter: int = 1000,
        tol: float = 1e-8,
        seed=123,
        hmm_initialization_funcs: dict | None = None,
        model_initialization_funcs: dict | None = None,
        *,
        n_init: int = 1,
        inference_method: str = "auto",
        block_size: int | None = None,
        progress_bar: bool = True,
    ):
        self.n_states = n_states
        self.observation_model = observation_model
        self.inverse_link_function = inverse_link_function
        self.regularizer = regularizer
        self.regularizer_strength = regularizer_strength
        self.dirichlet_initial_proba = dirichlet_initial_proba
        self.dirichlet_transition_proba = dirichlet_transition_proba
        self.solver_name = solver_name
        self.solver_kwargs = solver_kwargs
        self.maxiter = maxiter
        self.tol = tol
        self.seed = seed
        self.hmm_initialization_funcs = hmm_initialization_funcs
        self.model_initialization_funcs = model_initialization_funcs
        self.n_init = n_init
        self.block_size = block_size
        self.inference_method = inference_method
        self.progress_bar = progress_bar

    # ------------------------------------------------------------------ setup
    def setup(
        self,
        initial_proba_init=None,
        initial_proba_init_kwargs=None,
        transition_proba_init=None,
        transition_proba_init_kwargs=None,
        glm_params_init=None,
        glm_params_init_kwargs=None,
        scale_init=None,
        scale_init_kwargs=None,
    ):
        """Choose how ``fit`` initialises each parameter (nemos' ``setup``).

        Arguments left as None keep their current choice; passing an
        initializer without its ``*_kwargs`` resets those kwargs. The choice
        is stored in ``hmm_initialization_funcs`` and
        ``model_initialization_funcs``, so ``sklearn.clone`` and
        ``set_params`` carry it.

        Built-in initializers (defaults first):

        - ``initial_proba_init``: ``"uniform"``, ``"random"``, ``"dirichlet"``
          (``alphas``), ``"kmeans"`` (``minimum_prob``);
        - ``transition_proba_init``: ``"sticky"`` (``stickiness=0.95``;
          ``prob_stay``, nemos' name, is a deprecated alias), ``"uniform"``,
          ``"random"``, ``"dirichlet"`` (``alphas``), ``"kmeans"`` (``minimum_prob``);
        - ``glm_params_init``: ``"random"`` (``std_dev=0.001``, intercepts
          matching the mean of ``y``), ``"kmeans"`` (``glm_kwargs``),
          ``"labels"`` (each labelled class's GLM from its hand-labelled
          frames, see ``behavhmm.models.glmhmm.initialize_labels``);
        - ``scale_init``: ``"constant"`` (``scale_val=1.0``), ``"kmeans"``, ``"labels"``.

        With ``fit(..., labels=...)`` every slot left unset here takes its
        ``"labels"`` initializer (the chain's from the labelled frames'
        counts, as in the other models).

        Parameters
        ----------
        initial_proba_init, transition_proba_init : str or callable, optional
            A built-in name or a function following
            [`HMMInitializer`][behavhmm.models.glm_hmm.HMMInitializer].
        glm_params_init, scale_init : str or callable, optional
            A built-in name or a function following
            [`GLMInitializer`][behavhmm.models.glm_hmm.GLMInitializer].
        initial_proba_init_kwargs, transition_proba_init_kwargs : dict, optional
            Keyword arguments of the corresponding initializer.
        glm_params_init_kwargs, scale_init_kwargs : dict, optional
            Keyword arguments of the corresponding initializer.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            For an unknown built-in name, a callable missing protocol
            arguments, kwargs the initializer does not take, or kwargs
            reusing protocol names.
        TypeError
            For a value that is neither a name nor a callable, or kwargs
            that are not a dict.

        Examples
        --------
        >>> from behavhmm import GLMHMM
        >>> model = GLMHMM(n_states=3).setup(transition_proba_init="sticky",
        ...                                  transition_proba_init_kwargs={"stickiness": 0.9},
        ...                                  glm_params_init="kmeans")
        >>> model.model_initialization_funcs["glm_params_init"]
        'kmeans'
        """
        given = {
            "initial_proba_init": (initial_proba_init, initial_proba_init_kwargs),
            "transition_proba_init": (transition_proba_init, transition_proba_init_kwargs),
            "glm_params_init": (glm_params_init, glm_params_init_kwargs),
            "scale_init": (scale_init, scale_init_kwargs),
        }
        for param, slots in (
            ("hmm_initialization_funcs", _HMM_SLOTS),
            ("model_initialization_funcs", _MODEL_SLOTS),
        ):
            current = _check_init_dict(getattr(self, param), slots, param)
            updates = {}
            for slot in slots:
                func, kwargs = given[slot]
                if func is not None:
                    updates[slot] = func
                    updates[f"{slot}_kwargs"] = kwargs or {}
                elif kwargs is not None:
                    updates[f"{slot}_kwargs"] = kwargs
            if updates:
                spec = {slot: self._init_slots[slot] for slot in slots}
                setattr(self, param, validate_setup(spec, current, updates))
        return self

    # ----------------------------------------------------------- validation
    #: nemos accepts integer-valued floats for ``n_states`` and ``maxiter``; so do we.
    _hyperparameters: ClassVar[dict] = {
        "n_states": Integer(1, integral_floats=True),
        "maxiter": Integer(1, integral_floats=True),
        "tol": Real(0, closed="neither"),
        "n_init": Integer(1),
        "inference_method": OneOf(INFERENCE_METHODS),
        "block_size": Integer(1, optional=True),
        "progress_bar": Bool(),
    }

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        X,
        y,
        init_params=None,
        session_starts=None,
        labels=None,
        label_weight=1.0,
        class_names=None,
    ):
        """Fit the GLM-HMM by MAP expectation-maximisation, optionally given hand labels.

        Parameters
        ----------
        X : array-like, pynapple TsdFrame or dict of arrays, shape (n_time_bins, n_features)
            Design matrix (regressors), sessions concatenated in time. A
            dict of arrays sharing the time axis gives a dict ``coef_``.
        y : array-like or pynapple Tsd/TsdFrame of shape (n_time_bins,) or (n_time_bins, n_neurons)
            Observations: 0/1 (Bernoulli; booleans allowed), counts
            (Poisson, NegativeBinomial), positive values (Gamma), reals
            (Gaussian) or class labels (Categorical).
        init_params : tuple, optional
            ``(coef, intercept, scale, initial_prob, transition_prob)`` to
            start from instead of the initializers (then ``n_init`` is 1).
        session_starts : array-like or pynapple IntervalSet, optional
            Boolean mask of shape (n_time_bins,) marking the first bin of each
            session, their integer indices, or (with pynapple input) an
            IntervalSet. Default: one session, or one per epoch of the
            pynapple input's ``time_support``.
        labels : array-like of int of shape (n_time_bins,) or pynapple Tsd, optional
            Hand labels of the states: ``c`` ties time bin ``t`` to state
            ``c``, -1 leaves it free; or non-negative evidence of shape
            (n_time_bins, n_states). Routed like ``session_starts``.
        label_weight : float in [0, 1], default 1.0
            ``e_t(k) = 1`` for the label and ``1 - label_weight`` for the
            other states (1 clamps, 0 ignores the labels). EM then maximises
            ``log p(y, labels | X, θ) + log p(θ)`` and
            ``log_likelihood_history_`` is that evidence-conditioned
            log-likelihood (see
            [`behavhmm.labels.label_evidence`][behavhmm.labels.label_evidence]).
        class_names : sequence of str, optional
            Names of the labelled classes ``0..C-1``, kept as ``class_names_``
            (default with labels: "0", ..., "C-1").

        Returns
        -------
        self : GLMHMM

        Raises
        ------
        ValueError
            For inconsistent shapes, values the family cannot produce, NaN
            inside a session, infinite values, or invalid hyperparameters.
        TypeError
            For inputs or hyperparameters of the wrong type.
        FloatingPointError
            If EM reaches a non-finite objective.

        Warns
        -----
        EMConvergenceWarning
            A ``RuntimeWarning`` (and scikit-learn ``ConvergenceWarning``) if
            EM stops at ``maxiter`` before meeting ``tol``.
        """
        return self._fit_skeleton(
            X,
            y,
            init_params,
            session_starts,
            labels=labels,
            label_weight=label_weight,
            class_names=class_names,
        )

    _optional_fitted = ("classes_",)

    def _fit_data(self, X, y, init_params, session_starts) -> _GLMFitData:
        spec = self._spec()
        _check_memory(X, y, spec.n_states, self.block_size)
        data = self._prepare(X, y, session_starts, reset=True, spec=spec)
        return _GLMFitData(spec, data, init_params)

    def _initialize(self, fd: _GLMFitData) -> list[GLMHMMParams]:
        """The starting points: ``init_params``, or one per ``n_init`` from the initializers."""
        spec, data = fd.spec, fd.data
        if fd.init_params is not None:
            return [self._to_internal(fd.init_params, spec, data)]
        keys = [spec.key] if self.n_init == 1 else list(jax.random.split(spec.key, self.n_init))
        return [self._initial_params(spec, data, key, fd.init_labels) for key in keys]

    def _run_loop(self, starts, fd: _GLMFitData, resume: bool) -> EMResult:
        """EM from each starting point; the run with the highest final log joint wins."""
        spec, data = fd.spec, fd.data
        config = self._config(spec)
        hyper = self._hyper(spec, data, starts[0].coef.shape)
        best = None
        for run, params in enumerate(starts):
            result = self._run_em(params, data, hyper, config, spec, run)
            if best is None or result.log_joint_history[-1] > best.log_joint_history[-1]:
                best, best_start = result, params
        _check_glm_progress(best_start, best, data.X_kept)
        return best

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.target_tags.single_output = False
        tags.target_tags.multi_output = True
        return tags


# ----------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------
