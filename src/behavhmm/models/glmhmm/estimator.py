"""GLM-HMM: a hidden Markov model whose states each have their own generalized linear model.

The estimator mirrors nemos' ``GLMHMM`` (constructor, methods, fitted
attribute names and shapes, error types, the convergence ``RuntimeWarning``),
so switching is a change of import, and adds what nemos lacks: a categorical
(multinomial-logit) family, population responses, ``n_init`` restarts,
compiled programs shared across fits, and model files without pickle.
"""

from __future__ import annotations

import difflib
import numbers
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.utils.validation import validate_data

from ..._utils import bucket_length, float_dtype
from ...fitting import EMConvergenceWarning, run_em
from ...fitting.regularizers import GroupLasso, Lasso, Regularizer, get_regularizer
from ...fitting.solvers import (
    SOLVERS,
    check_solver_kwargs,
    default_solver_kwargs,
    freeze_kwargs,
    solver_accepted_arguments,
)
from ...inference import resolve_method
from ...labels import label_evidence, padded_log_evidence
from ...observations.glm import (
    FIXED_SCALE_FAMILIES,
    exp,
    glm_log_likelihood_constant,
    identity,
    inverse_link_name,
    logistic,
    observation_family,
    resolve_inverse_link,
)
from ...sessions import drop_nan_borders, session_mask, split_pynapple, wrap_output
from .._initializers import InitSlot, call_initializer, describe_initializers, validate_setup
from .._serialization import jsonable
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
from . import em as core
from .em import GLMConfig, GLMHMMParams, GLMHyper
from .initialize import (
    GLM_PARAMS_REGISTRY,
    INITIAL_REGISTRY,
    KMEANS_FUNCTIONS,
    SCALE_REGISTRY,
    TRANSITION_REGISTRY,
    KMeansInitializer,
    constant_scale_init,
    dirichlet_initial_proba_init,
    dirichlet_transition_proba_init,
    flatten_design,
    intercept_matching_mean,
    kmeans_glm_params_init,
    kmeans_initial_proba_init,
    kmeans_scale_init,
    kmeans_transition_proba_init,
    random_glm_params_init,
    random_initial_proba_init,
    random_transition_proba_init,
    sticky_transition_proba_init,
    unflatten_coef,
    uniform_initial_proba_init,
    uniform_transition_proba_init,
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

_HMM_KEYWORDS = ("n_states", "X", "y", "session_starts", "random_key")
_GLM_KEYWORDS = (
    "n_states",
    "X",
    "y",
    "inverse_link_function",
    "observation_model",
    "session_starts",
    "random_key",
)
_HMM_SLOTS = ("initial_proba_init", "transition_proba_init")
_MODEL_SLOTS = ("glm_params_init", "scale_init")
_PARAM_NAMES = ("coef", "intercept", "scale", "initial_prob", "transition_prob")


@runtime_checkable
class HMMInitializer(Protocol):
    """Initializer of the initial or transition probabilities, called by keyword.

    ``func(n_states, X, y, session_starts, random_key, **kwargs)`` returns an
    array of shape (n_states,) (initial) or (n_states, n_states)
    (transition, rows summing to 1). Every argument must appear in the
    signature, even if unused (nemos' ``InitFunctionHMM``).
    """

    def __call__(
        self,
        n_states: int,
        X: Any,
        y: np.ndarray,
        session_starts: np.ndarray,
        random_key: jax.Array,
        **kwargs: Any,
    ) -> Any:
        """Return the initial probabilities or the transition matrix."""
        ...


@runtime_checkable
class GLMInitializer(Protocol):
    """Initializer of the GLM weights or the scale, called by keyword.

    ``func(n_states, X, y, inverse_link_function, observation_model,
    session_starts, random_key, **kwargs)``: for ``glm_params_init`` it
    returns ``(coef, intercept)`` (``coef`` with the structure of ``X``),
    for ``scale_init`` the scale array. ``observation_model`` is the family
    name. Every argument must appear in the signature (nemos'
    ``InitFunctionGLM``).
    """

    def __call__(
        self,
        n_states: int,
        X: Any,
        y: np.ndarray,
        inverse_link_function: Any,
        observation_model: str,
        session_starts: np.ndarray,
        random_key: jax.Array,
        **kwargs: Any,
    ) -> Any:
        """Return ``(coef, intercept)`` or the scale."""
        ...


class EMState(NamedTuple):
    """State of the EM iterations, as nemos' ``EMState`` (``solver_state_``, and ``update``'s state).

    Attributes
    ----------
    data_log_likelihood : float
        Marginal log-likelihood (nats) of the parameters that entered the
        latest iteration.
    previous_data_log_likelihood : float
        The same for the iteration before.
    log_likelihood_history : ndarray of shape (maxiter,)
        Log-likelihood per iteration, NaN after the last one.
    iterations : int
        Iterations run.
    converged : bool
        Whether the change in the EM objective per frame fell below ``tol``.
    """

    data_log_likelihood: float
    previous_data_log_likelihood: float
    log_likelihood_history: np.ndarray
    iterations: int
    converged: bool


@dataclass(frozen=True)
class _Spec:
    """Validated hyperparameters."""

    n_states: int
    family: str
    link: Any
    regularizer: Regularizer
    solver: str
    solver_kwargs: dict
    alpha_initial: np.ndarray
    alpha_transition: np.ndarray
    key: jax.Array
    method: str


@dataclass
class _Data:
    """Validated input: padded arrays for the programs, kept rows for the initializers."""

    prepared: PreparedData
    X_kept: Any  # array or dict of arrays, NaN borders dropped
    y_kept: np.ndarray
    starts_kept: np.ndarray
    n_outputs: int | None  # neurons, classes (Categorical) or None

    @property
    def args(self):
        p = self.prepared
        return p.arrays["X"], p.arrays["y"], p.arrays["ll_const"], p.session_starts, p.weights


class GLMHMM(BaseHMM):
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
    observation_model : {"Bernoulli", "Poisson", "Gamma", "NegativeBinomial", "Gaussian", "Categorical"}, default "Bernoulli"
        Distribution of ``y`` in each state (see
        [`behavhmm.observations.glm`][behavhmm.observations.glm] for the
        scale of each). ``"Categorical"`` is a multinomial-logit model for
        tasks with more than two choices: ``y`` holds class labels and
        ``coef_`` has one column of weights per class. nemos
        ``Observations`` instances are accepted by their class name.
    inverse_link_function : None, str or callable, default None
        Maps the linear predictor to the mean: ``None`` uses the family's
        default (logistic, exp, ``1/x``, exp, identity, softmax); a name from
        [`INVERSE_LINKS`][behavhmm.observations.glm.INVERSE_LINKS]; or a differentiable JAX function.
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
            INITIAL_REGISTRY,
            "uniform",
            returns="an array of shape (n_states,)",
            keywords=_HMM_KEYWORDS,
        ),
        "transition_proba_init": InitSlot(
            TRANSITION_REGISTRY,
            "sticky",
            returns="an array of shape (n_states, n_states)",
            keywords=_HMM_KEYWORDS,
        ),
        "glm_params_init": InitSlot(
            GLM_PARAMS_REGISTRY,
            "random",
            returns="a tuple (coef, intercept)",
            keywords=_GLM_KEYWORDS,
        ),
        "scale_init": InitSlot(
            SCALE_REGISTRY, "constant", returns="the scale array", keywords=_GLM_KEYWORDS
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
        - ``transition_proba_init``: ``"sticky"`` (``prob_stay=0.95``),
          ``"uniform"``, ``"random"``, ``"dirichlet"`` (``alphas``),
          ``"kmeans"`` (``minimum_prob``);
        - ``glm_params_init``: ``"random"`` (``std_dev=0.001``, intercepts
          matching the mean of ``y``), ``"kmeans"`` (``glm_kwargs``);
        - ``scale_init``: ``"constant"`` (``scale_val=1.0``), ``"kmeans"``.

        Parameters
        ----------
        initial_proba_init, transition_proba_init : str or callable, optional
            A built-in name or a function following
            [`HMMInitializer`][behavhmm.models.glm_hmm.HMMInitializer].
        glm_params_init, scale_init : str or callable, optional
            A built-in name or a function following
            [`GLMInitializer`][behavhmm.models.glm_hmm.GLMInitializer].
        initial_proba_init_kwargs, transition_proba_init_kwargs, glm_params_init_kwargs, scale_init_kwargs : dict, optional
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
        ...                                  transition_proba_init_kwargs={"prob_stay": 0.9},
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

    def _initializers(self):
        out = {}
        for param, slots in (
            ("hmm_initialization_funcs", _HMM_SLOTS),
            ("model_initialization_funcs", _MODEL_SLOTS),
        ):
            funcs = _check_init_dict(getattr(self, param), slots, param)
            merged = validate_setup({s: self._init_slots[s] for s in slots}, funcs, {})
            for slot in slots:
                func = merged.get(slot) or self._init_slots[slot].default
                if isinstance(func, str):
                    func = self._init_slots[slot].registry[func]
                out[slot] = (func, dict(merged.get(f"{slot}_kwargs") or {}))
        return out

    # ----------------------------------------------------------- validation
    #: nemos accepts integer-valued floats for ``n_states`` and ``maxiter``; so do we.
    _hyperparameters: ClassVar[dict] = {
        "n_states": Integer(1, integral_floats=True),
        "maxiter": Integer(1, integral_floats=True),
        "tol": Real(0, closed="neither"),
        "n_init": Integer(1),
        "inference_method": OneOf(INFERENCE_METHODS),
        "progress_bar": Bool(),
    }

    def _spec(self) -> _Spec:
        self._check_hyperparameters()
        n_states = int(self.n_states)
        family = observation_family(self.observation_model)
        link = resolve_inverse_link(self.inverse_link_function, family)
        regularizer = get_regularizer(self.regularizer)
        solver = self.solver_name
        if solver is None:
            solver = _default_solver(regularizer, family, link, self.solver_kwargs)
        elif not isinstance(solver, str):
            raise TypeError("solver_name must be a string.")
        elif solver not in SOLVERS:
            raise ValueError(f"Unknown solver_name {solver!r}; choose one of {sorted(SOLVERS)}.")
        regularizer.check_solver(solver)
        if solver == "Newton" and family == "Categorical":
            raise ValueError(
                "solver_name='Newton' needs one linear predictor per output; the Categorical model has one per "
                "class. Use 'LBFGS' (or leave solver_name as None)."
            )
        check_solver_kwargs(solver, self.solver_kwargs)
        try:
            key = check_random_key(self.seed, "seed")
        except TypeError:
            raise TypeError(
                "seed must be a JAX PRNG key (jax.random.key or jax.random.PRNGKey) or an int, "
                f"got {type(self.seed).__name__}."
            ) from None
        for param, slots in (
            ("hmm_initialization_funcs", _HMM_SLOTS),
            ("model_initialization_funcs", _MODEL_SLOTS),
        ):
            _check_init_dict(getattr(self, param), slots, param)
        return _Spec(
            n_states=n_states,
            family=family,
            link=link,
            regularizer=regularizer,
            solver=solver,
            solver_kwargs=dict(self.solver_kwargs or {}),
            alpha_initial=_check_dirichlet(
                self.dirichlet_initial_proba, (n_states,), "dirichlet_initial_proba"
            ),
            alpha_transition=_check_dirichlet(
                self.dirichlet_transition_proba, (n_states, n_states), "dirichlet_transition_proba"
            ),
            key=key,
            method=resolve_method(self.inference_method),
        )

    def _config(self, spec: _Spec) -> GLMConfig:
        dtype = float_dtype()
        kwargs = {**default_solver_kwargs(spec.solver, dtype), **spec.solver_kwargs}
        return GLMConfig(
            family=spec.family,
            link=spec.link,
            regularizer=spec.regularizer.name,
            solver=spec.solver,
            solver_kwargs=freeze_kwargs(kwargs),
            scale_solver_kwargs=freeze_kwargs(default_solver_kwargs("LBFGS", dtype)),
        )

    def _hyper(self, spec: _Spec, data: _Data, coef_shape) -> GLMHyper:
        dtype = float_dtype()
        n = float(max(data.prepared.n_frames, 1))
        reg = spec.regularizer.hyperparameters(self.regularizer_strength, coef_shape, dtype)
        reg = {k: (v / n if k == "strength" else v) for k, v in reg.items()}
        floor = (
            1e-6 * float(np.var(data.y_kept))
            if spec.family == "Gaussian" and len(data.y_kept) > 1
            else 0.0
        )
        return GLMHyper(
            reg=reg,
            normalizer=jnp.asarray(n, dtype),
            scale_floor=jnp.asarray(max(floor, 1e-12), dtype),
            alpha_initial=jnp.asarray(spec.alpha_initial, dtype),
            alpha_transition=jnp.asarray(spec.alpha_transition, dtype),
        )

    # ----------------------------------------------------------------- data
    def _prepare(self, X, y, session_starts, *, reset: bool, spec: _Spec) -> _Data:
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        X_values, info_x = _split_design(X)
        y_values, info_y = split_pynapple(y)
        if (
            info_x is not None
            and info_y is not None
            and not (info_x.t.shape == info_y.t.shape and np.allclose(info_x.t, info_y.t))
        ):
            raise ValueError(
                "Time axis mismatch. X and y pynapple objects have mismatching time axis."
            )
        info = info_x if info_x is not None else info_y
        X_flat, structure = self._validate_design(X_values, reset=reset)
        y_arr = np.asarray(y_values)
        if y_arr.dtype == object:
            raise TypeError("y must be numeric.")
        if y_arr.ndim not in (1, 2) or (spec.family == "Categorical" and y_arr.ndim != 1):
            raise ValueError(
                "y must be 1-dimensional, shape (n_time_bins,), or for a population 2-dimensional, shape "
                f"(n_time_bins, n_neurons) (Categorical: 1-dimensional class labels); got shape {y_arr.shape}."
            )
        n_time_bins = X_flat.shape[0]
        if y_arr.shape[0] != n_time_bins:
            raise ValueError(
                "X and y must have the same number of samples (same length along axis 0). "
                f"X has {n_time_bins} samples, y has {y_arr.shape[0]} samples instead!"
            )
        y_float = y_arr.astype(float) if y_arr.dtype.kind in "biuf" else _not_numeric(y_arr)
        mask = session_mask(session_starts, n_time_bins, info=info)
        y2d = y_float.reshape(n_time_bins, -1)
        keep, starts_kept = drop_nan_borders(
            np.concatenate([X_flat, y2d], axis=1), mask, info=info, name="X or y"
        )
        if not keep.any():
            raise ValueError("X and y hold no time bin without NaN.")
        y_kept = _check_y(y_float[keep], spec.family, self, reset=reset)
        n_outputs = _n_outputs(y_kept, spec.family, self)
        X_kept_flat = X_flat[keep]
        X_kept = (
            X_kept_flat if structure is None else unflatten_coef(structure, X_kept_flat, axis=1)
        )
        n_frames = int(keep.sum())
        pad = bucket_length(n_frames) - n_frames
        dtype = float_dtype()
        y_pad_value = 1.0 if spec.family == "Gamma" else 0.0
        y_padded = np.concatenate(
            [y_kept, np.full((pad,) + y_kept.shape[1:], y_pad_value, y_kept.dtype)]
        )
        y_jax = jnp.asarray(y_padded, jnp.int32 if spec.family == "Categorical" else dtype)
        prepared = PreparedData(
            arrays={
                "X": jnp.asarray(np.pad(X_kept_flat, ((0, pad), (0, 0))), dtype),
                "y": y_jax,
                "ll_const": _ll_constant_program(spec.family, y_jax),
            },
            session_starts=jnp.asarray(np.concatenate([starts_kept, np.ones(pad, bool)])),
            weights=jnp.asarray(np.concatenate([np.ones(n_frames), np.zeros(pad)]), dtype),
            rows=np.flatnonzero(keep),
            n_time_bins=n_time_bins,
            info=info,
        )
        return _Data(prepared, X_kept, y_kept, starts_kept, n_outputs)

    def _validate_design(self, X, *, reset: bool):
        """Flatten X (array or dict of arrays) to (n_time_bins, n_features); check features."""
        if isinstance(X, Mapping):
            if not X:
                raise ValueError("X is an empty dict.")
            leaves, treedef = jax.tree_util.tree_flatten(dict(X))
            arrays = [
                np.asarray(leaf.values if hasattr(leaf, "time_support") else leaf, dtype=float)
                for leaf in leaves
            ]
            if any(a.ndim != 2 for a in arrays):
                raise ValueError(
                    "X must be 2-dimensional: every array of a dict X must have shape (n_time_bins, n_features), "
                    f"got shapes {[a.shape for a in arrays]}."
                )
            n_samples = {a.shape[0] for a in arrays}
            if len(n_samples) > 1:
                raise ValueError(
                    f"X pytree contains arrays with different number of samples: {n_samples}."
                )
            structure = jax.tree_util.tree_unflatten(treedef, [a[:0] for a in arrays])
            flat = np.concatenate(arrays, axis=1)
            if reset:
                self.n_features_in_ = flat.shape[1]
                if hasattr(self, "feature_names_in_"):
                    del self.feature_names_in_
            else:
                self._check_structure(structure, flat.shape[1])
            return flat, structure
        if np.ndim(X) != 2:
            raise ValueError(
                f"X must be 2-dimensional, shape (n_time_bins, n_features), got an array with {np.ndim(X)} "
                "dimension(s); reshape a single feature with X.reshape(-1, 1)."
            )
        if not reset:
            self._check_structure(None, np.shape(X)[1])
        flat = validate_data(
            self,
            X,
            reset=reset,
            ensure_all_finite="allow-nan",
            dtype=[np.float64, np.float32],
            ensure_min_samples=1,
        )
        return np.asarray(flat, float), None

    def _check_structure(self, structure, n_features: int):
        coef = getattr(self, "coef_", None)
        if coef is None:
            return
        expected = getattr(self, "n_features_in_", None)
        if isinstance(coef, Mapping) != isinstance(structure, Mapping) or (
            isinstance(coef, Mapping) and sorted(coef) != sorted(structure)
        ):
            raise ValueError(
                "X must have the structure the model was fitted with: "
                + (f"a dict with keys {sorted(coef)}" if isinstance(coef, Mapping) else "an array")
                + ", got "
                + (
                    f"a dict with keys {sorted(structure)}."
                    if isinstance(structure, Mapping)
                    else "an array."
                )
            )
        if isinstance(coef, Mapping):
            widths = {k: np.shape(coef[k])[0] for k in coef}
            got = {k: np.shape(structure[k])[1] for k in structure}
            if widths != got:
                raise ValueError(
                    f"Inconsistent number of features per key of X: coef_ has {widths}, X has {got}."
                )
            return
        if expected is None:
            expected = np.shape(coef)[0]
        if n_features != expected:
            raise ValueError(
                f"Inconsistent number of features. X has {n_features} features, but {type(self).__name__} "
                f"is expecting {expected} features as input."
            )

    # ---------------------------------------------------------- parameters
    def _initial_params(self, spec: _Spec, data: _Data, key) -> GLMHMMParams:
        inits = self._initializers()
        keys = jax.random.split(key, 5)
        values = {
            "n_states": spec.n_states,
            "X": data.X_kept,
            "y": data.y_kept,
            "session_starts": data.starts_kept,
            "inverse_link_function": spec.link,
            "observation_model": spec.family,
        }
        shared_kmeans = None
        if any(func in KMEANS_FUNCTIONS for func, _ in inits.values()):
            shared_kmeans = KMeansInitializer(
                spec.n_states, data.X_kept, data.y_kept, data.starts_kept, keys[4]
            )
        out = {}
        for i, slot in enumerate(
            ("initial_proba_init", "transition_proba_init", "glm_params_init", "scale_init")
        ):
            func, kwargs = inits[slot]
            if func in KMEANS_FUNCTIONS and "initializer" not in kwargs:
                kwargs = {**kwargs, "initializer": shared_kmeans}
            out[slot] = call_initializer(
                self._init_slots[slot], func, {**values, "random_key": keys[i]}, kwargs
            )
        glm = out["glm_params_init"]
        if not isinstance(glm, tuple | list) or len(glm) != 2:
            raise ValueError("glm_params_init must return a tuple (coef, intercept).")
        user = (
            glm[0],
            glm[1],
            out["scale_init"],
            out["initial_proba_init"],
            out["transition_proba_init"],
        )
        return self._to_internal(user, spec, data, source="the initializers")

    def _to_internal(
        self, params, spec: _Spec, data: _Data | None, source: str = "params"
    ) -> GLMHMMParams:
        """Validate a user tuple (coef, intercept, scale, initial_prob, transition_prob)."""
        if not isinstance(params, tuple | list):
            raise TypeError(
                f"GLMHMM params must be a tuple/list of length 5, ({', '.join(_PARAM_NAMES)}); "
                f"got {type(params).__name__}."
            )
        if len(params) != 5:
            raise ValueError(
                f"Params must have length 5: ({', '.join(_PARAM_NAMES)}); got length {len(params)}."
            )
        coef, intercept, scale, pi, trans = params
        try:
            coef_leaves = [np.asarray(c, float) for c in jax.tree_util.tree_leaves(coef)]
            intercept, scale, pi, trans = (
                np.asarray(a, float) for a in (intercept, scale, pi, trans)
            )
        except (TypeError, ValueError) as exc:
            raise TypeError(
                "Failed to convert parameters to arrays. Parameters must be array-like objects (or a dict of "
                f"array-like objects for coef) with numeric data types ({source}): {exc}"
            ) from None
        if not coef_leaves:
            raise ValueError(f"coef is empty ({source}).")
        n_states = spec.n_states
        ndim = coef_leaves[0].ndim
        expected_out = _expected_outputs(data, spec, self)
        want_ndim = 2 if expected_out is None else 3
        if any(c.ndim != want_ndim for c in coef_leaves) or intercept.ndim != want_ndim - 1:
            shapes = [c.shape for c in coef_leaves]
            raise ValueError(
                "Invalid parameter dimensionality.\n- coef must be an array (or dict of arrays) of shape "
                + (
                    "``(n_features, n_states)``"
                    if want_ndim == 2
                    else "``(n_features, n_outputs, n_states)``"
                )
                + ".\n- intercept must be of shape "
                + ("``(n_states,)``" if want_ndim == 2 else "``(n_outputs, n_states)``")
                + f".\nThe provided coef and intercept have shapes {shapes} and {intercept.shape} instead ({source})."
            )
        if any(c.shape[-1] != n_states for c in coef_leaves):
            raise ValueError(
                "GLM coef must be of shape ``(n_features, n_states)`` (or a dict of such arrays); n_states is "
                f"{n_states} but coef has shape(s) {[c.shape for c in coef_leaves]} ({source})."
            )
        if intercept.shape[-1] != n_states:
            raise ValueError(
                f"GLM intercept must be of shape ``(n_states,)``; n_states is {n_states} but intercept has shape "
                f"{intercept.shape} ({source})."
            )
        if ndim == 3:
            outs = {c.shape[1] for c in coef_leaves} | {intercept.shape[0]}
            if len(outs) > 1 or (expected_out is not None and outs != {expected_out}):
                raise ValueError(
                    f"coef and intercept must share the output axis of length {expected_out} "
                    f"(neurons or classes); got coef {[c.shape for c in coef_leaves]} and intercept {intercept.shape} "
                    f"({source})."
                )
        flat_coef = coef_leaves[0] if len(coef_leaves) == 1 else np.concatenate(coef_leaves, axis=0)
        if data is not None:
            structure = data.X_kept
            if isinstance(structure, Mapping) != isinstance(coef, Mapping) or (
                isinstance(coef, Mapping) and sorted(coef) != sorted(structure)
            ):
                raise ValueError(
                    f"coef must have the structure of X (an array, or a dict with X's keys) ({source})."
                )
            n_features = flatten_design(structure).shape[1]
            if flat_coef.shape[0] != n_features:
                raise ValueError(
                    f"Inconsistent number of features. X has {n_features} features but coef has "
                    f"{flat_coef.shape[0]} ({source})."
                )
        scale_shape = (n_states,) if spec.family == "Categorical" else intercept.shape
        if spec.family in FIXED_SCALE_FAMILIES and scale.shape != scale_shape:
            scale = np.ones(scale_shape)
        if scale.shape != scale_shape:
            raise ValueError(
                f"The scale parameter and the intercept must be of the same shape {scale_shape}. "
                f"The scale is of shape ``{scale.shape}`` instead ({source})."
            )
        if pi.shape != (n_states,):
            raise ValueError(
                f"initial_prob must be a 1-dimensional array of shape ``({n_states},)``. Provided initial_prob is of "
                f"shape ``{pi.shape}`` instead ({source})."
            )
        if trans.shape != (n_states, n_states):
            raise ValueError(
                f"transition_prob must be a 2-dimensional array of shape ``({n_states}, {n_states})``. Provided "
                f"transition_prob is of shape ``{trans.shape}`` instead ({source})."
            )
        for name, arr in (("initial_prob", pi), ("transition_prob", trans)):
            if not np.all(np.isfinite(arr)) or np.any(arr < 0):
                raise ValueError(f"{name} must hold finite, non-negative probabilities ({source}).")
        if not np.isclose(pi.sum(), 1.0, atol=1e-4):
            raise ValueError(f"initial_prob must sum to 1, but got sum = {pi.sum()} ({source}).")
        if not np.allclose(trans.sum(axis=1), 1.0, atol=1e-4):
            raise ValueError(
                f"transition_prob matrix rows must sum to 1 over columns, but got sums = {trans.sum(axis=1)}. Row i "
                f"is the distribution of the next state given state i ({source})."
            )
        for name, arr in (("coef", flat_coef), ("intercept", intercept), ("scale", scale)):
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"{name} must be finite ({source}).")
        if np.any(scale <= 0):
            raise ValueError(f"scale must be positive ({source}).")
        dtype = float_dtype()
        return GLMHMMParams(
            *(
                jnp.asarray(a, dtype)
                for a in (
                    pi / pi.sum(),
                    trans / trans.sum(1, keepdims=True),
                    flat_coef,
                    intercept,
                    scale,
                )
            )
        )

    def _to_user(self, params: GLMHMMParams, template):
        coef = np.asarray(params.coef)
        return (
            unflatten_coef(template, coef) if template is not None else coef,
            np.asarray(params.intercept),
            np.asarray(params.scale),
            np.asarray(params.initial_prob),
            np.asarray(params.transition_prob),
        )

    def _set_params_attributes(self, params: GLMHMMParams, template):
        coef, intercept, scale, pi, trans = self._to_user(params, template)
        self.coef_ = coef
        self.intercept_ = intercept
        self.scale_ = scale
        self.initial_prob_ = pi
        self.transition_prob_ = trans

    def _saved_attributes(self):
        return (
            "coef_",
            "intercept_",
            "scale_",
            "initial_prob_",
            "transition_prob_",
            "dof_resid_",
            "classes_",
            "log_likelihood_history_",
            "log_joint_history_",
            "feature_names_in_",
        )

    def _required_attributes(self):
        return ("coef_", "intercept_", "scale_", "initial_prob_", "transition_prob_")

    def _validated_params(self, spec: _Spec | None = None) -> GLMHMMParams:
        """Fitted (or hand-set) parameters as JAX arrays, after checking them."""
        self._check_fitted()
        spec = self._spec() if spec is None else spec
        user = (self.coef_, self.intercept_, self.scale_, self.initial_prob_, self.transition_prob_)
        return self._to_internal(user, spec, None, source="the fitted attributes")

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
        X : array-like or pynapple TsdFrame of shape (n_time_bins, n_features), or dict of such arrays
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
            log-likelihood (derivation in
            [`behavhmm.labels.label_evidence`][behavhmm.labels.label_evidence]).
        class_names : sequence of str, optional
            Names of the labelled classes ``0..C-1``, kept as ``class_names_``
            and in model files (default with labels: "0", ..., "C-1");
            relabelling by usage keeps these states' numbers.

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
        spec = self._spec()
        for name in ("classes_",):
            if hasattr(self, name):
                delattr(self, name)
        data = self._prepare(X, y, session_starts, reset=True, spec=spec)
        keep = np.zeros(data.prepared.n_time_bins, bool)
        keep[data.prepared.rows] = True
        evidence = label_evidence(
            labels, label_weight, spec.n_states, None, keep, info=data.prepared.info
        )
        self._store_class_names(class_names, evidence)
        if evidence is not None:
            arrays = data.prepared.arrays
            log_ev = padded_log_evidence(evidence, arrays["ll_const"].shape[0])
            arrays["ll_const"] = arrays["ll_const"][:, None] + jnp.asarray(log_ev, float_dtype())
        config = self._config(spec)
        if init_params is not None:
            starts = [self._to_internal(init_params, spec, data)]
        else:
            keys = [spec.key] if self.n_init == 1 else list(jax.random.split(spec.key, self.n_init))
            starts = [self._initial_params(spec, data, key) for key in keys]
        hyper = self._hyper(spec, data, starts[0].coef.shape)
        best = None
        for run, params in enumerate(starts):
            result = self._run_em(params, data, hyper, config, spec, run)
            if best is None or result.log_joint_history[-1] > best.log_joint_history[-1]:
                best = result
        self._set_params_attributes(
            best.params, data.X_kept if isinstance(data.X_kept, Mapping) else None
        )
        self.log_likelihood_history_ = best.log_likelihood_history
        self.log_joint_history_ = best.log_joint_history
        self.n_iter_ = best.n_iter
        self.converged_ = bool(best.converged)
        history = np.full(int(self.maxiter), np.nan)
        history[: best.n_iter] = best.log_likelihood_history
        self.solver_state_ = EMState(
            data_log_likelihood=float(best.log_likelihood_history[-1]),
            previous_data_log_likelihood=float(best.log_likelihood_history[-2])
            if best.n_iter > 1
            else -np.inf,
            log_likelihood_history=history,
            iterations=best.n_iter,
            converged=self.converged_,
        )
        self.dof_resid_ = self._dof_resid(spec, data, best.params)
        if not best.converged:
            warnings.warn(
                "The fit did not converge. Consider the following:"
                "\n1) Enable float64 with ``jax.config.update('jax_enable_x64', True)``"
                f"\n2) Increase the ``maxiter`` parameter (max number of iterations of the EM, now {self.maxiter}) "
                f"or increase the ``tol`` parameter (tolerance, now {self.tol} nats per time bin).",
                EMConvergenceWarning,
                stacklevel=2,
            )
        return self

    def _run_em(self, params, data: _Data, hyper, config, spec: _Spec, run: int = 0):
        args = data.args

        def step(p):
            return core.em_step(p, *args, hyper, config, spec.method)

        desc = f"GLMHMM EM (K={spec.n_states})" + (
            f" run {run + 1}/{self.n_init}" if self.n_init > 1 else ""
        )
        return run_em(
            step,
            params,
            n_iter=int(self.maxiter),
            tol=float(self.tol),
            n_frames=data.prepared.n_frames,
            progress_bar=bool(self.progress_bar),
            desc=desc,
        )

    def _dof_resid(self, spec: _Spec, data: _Data, params: GLMHMMParams) -> np.ndarray:
        n_states = spec.n_states
        coef = np.asarray(params.coef)
        n_out = 1 if coef.ndim == 2 else coef.shape[1]
        n_samples = data.prepared.n_frames
        hmm = (n_states - 1) + n_states * (n_states - 1)
        if (
            isinstance(spec.regularizer, Lasso | GroupLasso)
            or spec.regularizer.name == "ElasticNet"
        ):
            c = coef.reshape(coef.shape[0], n_out, n_states)
            n_coef = np.sum(~np.isclose(c, 0.0), axis=(0, 2)).astype(float)
        elif spec.regularizer.name == "Ridge":
            n_coef = np.full(n_out, float(coef.shape[0] * n_states))
        else:
            rank = (
                np.linalg.matrix_rank(flatten_design(data.X_kept)) if data.prepared.n_frames else 0
            )
            n_coef = np.full(n_out, float(rank * n_states))
        return n_samples - n_coef - n_states - hmm

    # -------------------------------------------------------------- predict
    def _predict_inputs(self, X, y, session_starts):
        spec = self._spec()
        params = self._validated_params(spec)
        data = self._prepare(X, y, session_starts, reset=False, spec=spec)
        return spec, params, data

    def score(self, X, y, session_starts=None) -> float:
        """Marginal log-likelihood ``log p(y | X)`` in nats, summed over time bins and sessions.

        Parameters
        ----------
        X : array-like, pynapple TsdFrame or dict of arrays
            As in [`fit`][behavhmm.GLMHMM.fit].
        y : array-like or pynapple Tsd/TsdFrame
            As in ``fit``.
        session_starts : array-like or pynapple IntervalSet, optional
            As in ``fit``.

        Returns
        -------
        float

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit`` (or hand-set parameters); a ``ValueError``.
        ValueError
            For invalid input, as in ``fit``.
        """
        spec, params, data = self._predict_inputs(X, y, session_starts)
        _, log_lik = core.filter_program(params, *data.args, spec.family, spec.link, spec.method)
        return float(log_lik)

    def compute_loss(self, params, X, y, session_starts=None) -> float:
        """Negative marginal log-likelihood (nats) of ``params`` on ``(X, y)``.

        Parameters
        ----------
        params : tuple
            ``(coef, intercept, scale, initial_prob, transition_prob)``.
        X, y, session_starts
            As in [`fit`][behavhmm.GLMHMM.fit].

        Returns
        -------
        float
            ``-log p(y | X, params)``; the objective ``score`` negates.

        Raises
        ------
        ValueError, TypeError
            For invalid parameters or input.
        """
        spec = self._spec()
        data = self._prepare(
            X, y, session_starts, reset=not hasattr(self, "n_features_in_"), spec=spec
        )
        internal = self._to_internal(params, spec, data)
        _, log_lik = core.filter_program(internal, *data.args, spec.family, spec.link, spec.method)
        return -float(log_lik)

    def smooth_proba(self, X, y, session_starts=None):
        """Posterior state probabilities ``p(z_t | all data of its session)`` (forward-backward).

        Parameters
        ----------
        X, y, session_starts
            As in [`fit`][behavhmm.GLMHMM.fit].

        Returns
        -------
        ndarray of shape (n_time_bins, n_states) or pynapple TsdFrame
            Rows sum to 1; NaN rows for dropped NaN borders.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit``.
        ValueError
            For invalid input (NaN inside a session, inconsistent shapes).
        """
        spec, params, data = self._predict_inputs(X, y, session_starts)
        post = core.posterior(params, *data.args, spec.family, spec.link, spec.method)
        return self._proba_output(post.smoothed_probs, data.prepared, spec.n_states)

    def filter_proba(self, X, y, session_starts=None):
        """Causal state probabilities ``p(z_t | data up to t of its session)``.

        Parameters
        ----------
        X, y, session_starts
            As in [`fit`][behavhmm.GLMHMM.fit].

        Returns
        -------
        ndarray of shape (n_time_bins, n_states) or pynapple TsdFrame
            Rows sum to 1; NaN rows for dropped NaN borders.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit``.
        ValueError
            For invalid input.
        """
        spec, params, data = self._predict_inputs(X, y, session_starts)
        probs, _ = core.filter_program(params, *data.args, spec.family, spec.link, spec.method)
        return self._proba_output(probs, data.prepared, spec.n_states)

    def decode_state(self, X, y, session_starts=None, state_format: str = "one-hot"):
        """Most likely state sequence (Viterbi), jointly over each session.

        Parameters
        ----------
        X, y, session_starts
            As in [`fit`][behavhmm.GLMHMM.fit].
        state_format : {"one-hot", "index"}, default "one-hot"
            ``"index"``: int32 array of shape (n_time_bins,), -1 for dropped
            NaN rows. ``"one-hot"``: int32 array of shape (n_time_bins,
            n_states), zero rows there.

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
        spec, params, data = self._predict_inputs(X, y, session_starts)
        states = core.viterbi_program(params, *data.args, spec.family, spec.link, spec.method)
        return self._state_output(states, data.prepared, state_format, spec.n_states)

    def simulate(
        self, random_key, feedforward_input, state_format: str = "index", session_starts=None
    ):
        """Draw states and observations given a design matrix.

        Parameters
        ----------
        random_key : jax.random key or int
            Randomness; the same key gives the same draw.
        feedforward_input : array-like, pynapple TsdFrame or dict of arrays
            Design matrix, shape (n_time_bins, n_features).
        state_format : {"index", "one-hot"}, default "index"
        session_starts : array-like or pynapple IntervalSet, optional
            The chain restarts (from ``initial_prob_``) at each session start.

        Returns
        -------
        simulated_activity : ndarray of shape (n_time_bins,) or (n_time_bins, n_neurons)
            Observations (class labels from ``classes_`` for Categorical).
        firing_rates : ndarray of shape (n_time_bins,), (n_time_bins, n_neurons) or (n_time_bins, n_classes)
            Predicted mean (class probabilities) in the drawn state.
        simulated_states : ndarray of int32, shape (n_time_bins,) or (n_time_bins, n_states)
        Pynapple input gives pynapple outputs on its timestamps.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit``.
        TypeError
            For a bad ``random_key``.
        ValueError
            For NaN in the design or an unknown ``state_format``.
        """
        self._check_state_format(state_format)
        key = check_random_key(random_key)
        spec = self._spec()
        params = self._validated_params(spec)
        X_values, info = _split_design(feedforward_input)
        X_flat, _ = self._validate_design(X_values, reset=False)
        if not np.all(np.isfinite(X_flat)):
            raise ValueError("feedforward_input must be finite (no NaN or inf) to simulate.")
        n_time_bins = X_flat.shape[0]
        mask = session_mask(session_starts, n_time_bins, info=info)
        dtype = float_dtype()
        y, mean, states = core.simulate_program(
            key, params, jnp.asarray(X_flat, dtype), jnp.asarray(mask), spec.family, spec.link
        )
        y, mean, states = np.asarray(y), np.asarray(mean), np.asarray(states, np.int32)
        if spec.family == "Categorical":
            y = _classes(self, params)[y]
        if state_format == "one-hot":
            states = np.eye(spec.n_states, dtype=np.int32)[states]
        return tuple(wrap_output(a, info) for a in (y, mean, states))

    # ------------------------------------------------------ nemos' solver API
    def initialize_params(self, X, y, session_starts=None):
        """Initial parameters from the configured initializers (nemos' ``initialize_params``).

        Parameters
        ----------
        X, y, session_starts
            As in [`fit`][behavhmm.GLMHMM.fit].

        Returns
        -------
        tuple
            ``(coef, intercept, scale, initial_prob, transition_prob)``.
        """
        spec = self._spec()
        data = self._prepare(X, y, session_starts, reset=True, spec=spec)
        params = self._initial_params(spec, data, spec.key)
        return self._to_user(params, data.X_kept if isinstance(data.X_kept, Mapping) else None)

    def initialize_optimizer_and_state(self, init_params, X, y, session_starts=None) -> EMState:
        """Check ``init_params`` against the data and return the starting EM state (for ``update``).

        Parameters
        ----------
        init_params : tuple
            ``(coef, intercept, scale, initial_prob, transition_prob)``.
        X, y, session_starts
            As in [`fit`][behavhmm.GLMHMM.fit].

        Returns
        -------
        EMState
            No iterations yet (log-likelihoods ``-inf``, history NaN).

        Raises
        ------
        ValueError, TypeError
            For inconsistent parameters or input.
        """
        spec = self._spec()
        data = self._prepare(
            X, y, session_starts, reset=not hasattr(self, "n_features_in_"), spec=spec
        )
        self._to_internal(init_params, spec, data)
        return EMState(-np.inf, -np.inf, np.full(int(self.maxiter), np.nan), 0, False)

    def update(
        self, params, opt_state: EMState, X, y, *args, session_starts=None, n_samples=None, **kwargs
    ):
        """Run one EM iteration from ``params`` and store the result as the fitted attributes.

        Parameters
        ----------
        params : tuple
            ``(coef, intercept, scale, initial_prob, transition_prob)``.
        opt_state : EMState
            From [`initialize_optimizer_and_state`][behavhmm.GLMHMM.initialize_optimizer_and_state] or the previous ``update``.
        X, y
            As in [`fit`][behavhmm.GLMHMM.fit].
        session_starts : optional
            As in ``fit``.
        n_samples : int, optional
            Number of samples for ``dof_resid_`` (default: the time bins of ``X``).

        Returns
        -------
        params : tuple
            The updated parameters.
        state : EMState
            ``data_log_likelihood`` is the log-likelihood of the parameters
            passed in; ``converged`` compares it with the previous state's
            (change per time bin below ``tol``).

        Raises
        ------
        TypeError
            If ``n_samples`` is not None or an int.
        ValueError
            For inconsistent parameters or input.
        """
        if n_samples is not None and (
            not isinstance(n_samples, numbers.Integral) or isinstance(n_samples, bool)
        ):
            raise TypeError(
                f"`n_samples` must either `None` or of type `int`. Type {type(n_samples)} provided instead!"
            )
        spec = self._spec()
        data = self._prepare(
            X, y, session_starts, reset=not hasattr(self, "n_features_in_"), spec=spec
        )
        internal = self._to_internal(params, spec, data)
        hyper = self._hyper(spec, data, internal.coef.shape)
        new, log_lik, _ = core.em_step(internal, *data.args, hyper, self._config(spec), spec.method)
        log_lik = float(log_lik)
        previous = float(opt_state.data_log_likelihood)
        iterations = int(opt_state.iterations) + 1
        history = np.array(opt_state.log_likelihood_history, float, copy=True)
        if iterations <= history.shape[0]:
            history[iterations - 1] = log_lik
        converged = bool(
            np.isfinite(previous)
            and abs(log_lik - previous) / max(data.prepared.n_frames, 1) < self.tol
        )
        state = EMState(log_lik, previous, history, iterations, converged)
        template = data.X_kept if isinstance(data.X_kept, Mapping) else None
        self._set_params_attributes(new, template)
        self.solver_state_ = state
        dof = self._dof_resid(spec, data, new)
        if n_samples is not None:
            dof = dof + (n_samples - data.prepared.n_frames)
        self.dof_resid_ = dof
        return self._to_user(new, template), state

    # ----------------------------------------------------------------- files
    def _params_for_file(self) -> dict[str, Any]:
        params = self.get_params(deep=False)
        for name in self._init_params:
            params[name] = describe_initializers(params.get(name))
        link = params["inverse_link_function"]
        if callable(link):
            name = inverse_link_name(link)
            params["inverse_link_function"] = (
                name if name is not None else describe_initializers({"f": link})["f"]
            )
        reg = params["regularizer"]
        if isinstance(reg, Regularizer):
            params["regularizer"] = (
                {"GroupLasso": {"mask": jsonable("mask", reg.mask)}}
                if isinstance(reg, GroupLasso)
                else reg.name
            )
        seed = params["seed"]
        if isinstance(seed, jax.Array):
            data = seed if seed.dtype == np.uint32 else jax.random.key_data(seed)
            params["seed"] = {"key_data": np.asarray(data).tolist()}
        return {k: jsonable(k, v) for k, v in params.items()}

    @classmethod
    def _params_from_file(cls, params, mapping_dict):
        params = super()._params_from_file(params, mapping_dict)
        link = params.get("inverse_link_function")
        if isinstance(link, dict):
            name = link["custom"]
            func = mapping_dict.get(
                "inverse_link_function",
                mapping_dict.get(name, mapping_dict.get(name.rsplit(".", 1)[-1])),
            )
            if not callable(func):
                raise ValueError(
                    f"the custom inverse_link_function {name!r} was saved by name only; pass "
                    f"mapping_dict={{'inverse_link_function': your_function}} to behavhmm.load_model."
                )
            params["inverse_link_function"] = func
        reg = params.get("regularizer")
        if isinstance(reg, dict):
            params["regularizer"] = GroupLasso(mask=np.asarray(reg["GroupLasso"]["mask"], float))
        seed = params.get("seed")
        if isinstance(seed, dict):
            params["seed"] = jax.random.wrap_key_data(jnp.asarray(seed["key_data"], jnp.uint32))
        for name in ("dirichlet_initial_proba", "dirichlet_transition_proba"):
            if isinstance(params.get(name), list):
                params[name] = np.asarray(params[name], float)
        return params

    def _arrays_for_file(self):
        arrays = super()._arrays_for_file()
        coef = getattr(self, "coef_", None)
        if isinstance(coef, Mapping):
            del arrays["coef_"]
            for key, value in coef.items():
                arrays[f"coef_[{key}]"] = np.asarray(value)
        return arrays

    def _load_arrays(self, arrays):
        parts = {
            k[len("coef_[") : -1]: v
            for k, v in arrays.items()
            if k.startswith("coef_[") and k.endswith("]")
        }
        rest = {k: v for k, v in arrays.items() if not (k.startswith("coef_[") and k.endswith("]"))}
        super()._load_arrays(rest)
        if parts:
            self.coef_ = parts

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.target_tags.single_output = False
        tags.target_tags.multi_output = True
        return tags


# ----------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------


_ll_constant_program = jax.jit(glm_log_likelihood_constant, static_argnums=0)


def _split_design(X):
    """Values and pynapple info of X (an array, a pynapple object, or a dict of them)."""
    if isinstance(X, Mapping):
        info = None
        values = {}
        for key, leaf in X.items():
            leaf_values, leaf_info = split_pynapple(leaf)
            if leaf_info is not None:
                if info is not None and not (
                    leaf_info.t.shape == info.t.shape and np.allclose(leaf_info.t, info.t)
                ):
                    raise ValueError("Time axis mismatch between the pynapple arrays of X.")
                info = leaf_info if info is None else info
            values[key] = leaf_values
        return values, info
    values, info = split_pynapple(X)
    if info is not None and np.ndim(values) == 1:
        values = np.asarray(values)[:, None]
    return values, info


def _not_numeric(y):
    raise TypeError(f"y must be numeric (booleans, integers or floats), got dtype {y.dtype}.")


def _check_y(y: np.ndarray, family: str, model: GLMHMM, *, reset: bool) -> np.ndarray:
    """Family constraints on the kept rows; class labels become indices for Categorical."""
    if family == "Bernoulli" and not np.all((y == 0) | (y == 1)):
        bad = np.unique(y[(y != 0) & (y != 1)])[:5]
        raise ValueError(
            f"The Bernoulli observation model needs y in {{0, 1}} (or booleans); got values such as {bad}."
        )
    if family in ("Poisson", "NegativeBinomial") and np.any(y < 0):
        raise ValueError(
            f"The {family} observation model needs counts y >= 0; got a minimum of {y.min()}."
        )
    if family == "Gamma" and np.any(y <= 0):
        raise ValueError(f"The Gamma observation model needs y > 0; got a minimum of {y.min()}.")
    if family != "Categorical":
        return y
    if np.any(y != np.round(y)):
        raise ValueError("The Categorical observation model needs integer class labels in y.")
    if reset:
        model.classes_ = np.unique(y).astype(np.int64)
    classes = getattr(model, "classes_", None)
    if classes is None:
        n_classes = int(np.shape(model.intercept_)[0])
        classes = np.arange(n_classes)
    idx = np.searchsorted(classes, y)
    idx = np.minimum(idx, len(classes) - 1)
    if np.any(classes[idx] != y):
        unknown = np.unique(y[classes[idx] != y])[:5]
        raise ValueError(f"y holds class labels {unknown} not seen in fit (classes_ = {classes}).")
    return idx.astype(np.int32)


def _classes(model: GLMHMM, params: GLMHMMParams) -> np.ndarray:
    classes = getattr(model, "classes_", None)
    return np.arange(params.intercept.shape[0]) if classes is None else np.asarray(classes)


def _n_outputs(y_kept: np.ndarray, family: str, model: GLMHMM) -> int | None:
    if family == "Categorical":
        return (
            len(model.classes_)
            if hasattr(model, "classes_")
            else int(np.shape(model.intercept_)[0])
        )
    return None if y_kept.ndim == 1 else y_kept.shape[1]


def _expected_outputs(data: _Data | None, spec: _Spec, model: GLMHMM) -> int | None:
    if data is not None:
        return data.n_outputs
    if spec.family == "Categorical":
        return (
            len(model.classes_)
            if hasattr(model, "classes_")
            else int(np.shape(model.intercept_)[0])
        )
    intercept_ndim = np.ndim(getattr(model, "intercept_", np.zeros(1)))
    return None if intercept_ndim == 1 else int(np.shape(model.intercept_)[0])


_CANONICAL_LINKS = {"Bernoulli": logistic, "Poisson": exp, "Gaussian": identity}


def _default_solver(regularizer, family: str, link, solver_kwargs) -> str:
    """The solver used when ``solver_name`` is None.

    Newton's method on the exact Hessian for a smooth penalty and a canonical
    link (a convex M-step that converges in a few iterations from EM's warm
    start), unless ``solver_kwargs`` holds arguments only jaxopt's solvers
    take; otherwise the regularizer's default (nemos' choice).
    """
    solver = regularizer.default_solver
    if (
        solver == "LBFGS"
        and _CANONICAL_LINKS.get(family) is link
        and set(solver_kwargs or {}) <= solver_accepted_arguments("Newton")
    ):
        return "Newton"
    return solver


def _check_dirichlet(alphas, shape, name) -> np.ndarray:
    if alphas is None:
        return np.ones(shape)
    try:
        arr = np.asarray(alphas, float)
    except (TypeError, ValueError):
        raise TypeError(
            f"Invalid type for Dirichlet prior alpha parameters ({name}): ``{type(alphas).__name__}``. Must be None "
            f"or an array-like object of shape ``{shape}``."
        ) from None
    if arr.shape != shape:
        raise ValueError(
            f"Dirichlet prior alpha parameters ({name}) must have shape ``{shape}``, but got shape ``{arr.shape}``."
        )
    if not np.all(np.isfinite(arr)) or np.any(arr < 1):
        raise ValueError(
            f"Dirichlet prior alpha parameters ({name}) must be >= 1, but got values < 1:\n{arr}"
        )
    return arr


def _check_init_dict(funcs, slots, param) -> dict:
    """A nemos-style initialization dict: known keys only (``*_custom`` flags are accepted and ignored)."""
    if funcs is None:
        return {}
    if not isinstance(funcs, Mapping):
        raise TypeError(f"{param} must be a dict or None, got {type(funcs).__name__}.")
    valid = set(slots) | {f"{s}_kwargs" for s in slots} | {f"{s}_custom" for s in slots}
    unknown = sorted(set(funcs) - valid)
    if unknown:
        lines = []
        for key in unknown:
            close = difflib.get_close_matches(key, sorted(valid), n=1)
            lines.append(
                f" Unexpected key: '{key}'. Did you mean '{close[0]}'?"
                if close
                else f" Unknown key: '{key}'."
            )
        raise KeyError(
            f"Unexpected or unknown keys found in {param!r} dictionary.\n" + "\n".join(lines)
        )
    return {k: v for k, v in funcs.items() if not k.endswith("_custom")}
