"""GLMHMM's checks: hyperparameters (the validated ``_Spec``), the design matrix and
observations (``_Data``), and hand-set or fitted parameters.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.utils.validation import validate_data

from ..._utils import bucket_length, float_dtype
from ...fitting.regularizers import Regularizer, get_regularizer
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
    exp,
    flatten_design,
    glm_log_likelihood_constant,
    identity,
    logistic,
    observation_family,
    resolve_inverse_link,
)
from ...sessions import drop_nan_borders, session_mask, split_pynapple
from ..base import (
    BaseHMM,
    PreparedData,
    check_random_key,
)
from .em import GLMConfig, GLMHMMParams, GLMHyper
from .initialize import (
    unflatten_coef,
)


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


def _check_y(y: np.ndarray, family: str, model: BaseHMM, *, reset: bool) -> np.ndarray:
    """Family constraints on the kept rows; class labels become indices for Categorical."""
    if family == "Bernoulli" and not np.all((y == 0) | (y == 1)):
        bad = np.unique(y[(y != 0) & (y != 1)])[:5]
        raise ValueError(
            f"The Bernoulli observation model needs y in {{0, 1}} (or booleans); got values such "
            f"as {bad}."
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


def _classes(model: BaseHMM, params: GLMHMMParams) -> np.ndarray:
    classes = getattr(model, "classes_", None)
    return np.arange(params.intercept.shape[0]) if classes is None else np.asarray(classes)


def _n_outputs(y_kept: np.ndarray, family: str, model: BaseHMM) -> int | None:
    if family == "Categorical":
        return (
            len(model.classes_)
            if hasattr(model, "classes_")
            else int(np.shape(model.intercept_)[0])
        )
    return None if y_kept.ndim == 1 else y_kept.shape[1]


def _expected_outputs(data: _Data | None, spec: _Spec, model: BaseHMM) -> int | None:
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
            f"Invalid type for Dirichlet prior alpha parameters ({name}): "
            f"``{type(alphas).__name__}``. Must be None "
            f"or an array-like object of shape ``{shape}``."
        ) from None
    if arr.shape != shape:
        raise ValueError(
            f"Dirichlet prior alpha parameters ({name}) must have shape ``{shape}``, but got shape "
            f"``{arr.shape}``."
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(
            f"Dirichlet prior alpha parameters ({name}) must be finite, but got NaN or "
            f"infinite values:\n{arr}"
        )
    if np.any(arr < 1):
        raise ValueError(
            f"Dirichlet prior alpha parameters ({name}) must be >= 1, but got values < 1:\n{arr}"
        )
    return arr


def _check_init_dict(funcs, slots, param) -> dict:
    """A nemos-style initialization dict: known keys only.

    ``*_custom`` flags are accepted and ignored.
    """
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


_HMM_SLOTS = ("initial_proba_init", "transition_proba_init")


_MODEL_SLOTS = ("glm_params_init", "scale_init")


_PARAM_NAMES = ("coef", "intercept", "scale", "initial_prob", "transition_prob")


class GLMValidation:
    """GLMHMM's checks of hyperparameters, input and parameters."""

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
                "solver_name='Newton' needs one linear predictor per output; the Categorical model "
                "has one per "
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
            block_size=self.block_size,
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
                "y must be 1-dimensional, shape (n_time_bins,), or for a population 2-dimensional, "
                "shape "
                "(n_time_bins, n_neurons) (Categorical: 1-dimensional class labels); got shape "
                f"{y_arr.shape}."
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
        prepared = _padded(X_kept_flat, y_kept, keep, starts_kept, n_time_bins, info, spec)
        return _Data(prepared, X_kept, y_kept, starts_kept, n_outputs)

    def _fit_labels(self, fd: _GLMFitData, labels, label_weight):
        """Hand labels' evidence, added to ``ll_const`` (``_fit_skeleton``'s labels hook)."""
        prepared = fd.data.prepared
        keep = np.zeros(prepared.n_time_bins, bool)
        keep[prepared.rows] = True
        evidence = label_evidence(
            labels, label_weight, fd.spec.n_states, None, keep, info=prepared.info
        )
        if evidence is None:
            return fd, None
        ll_const = prepared.arrays["ll_const"]
        log_ev = jnp.asarray(padded_log_evidence(evidence, ll_const.shape[0]), ll_const.dtype)
        arrays = {**prepared.arrays, "ll_const": ll_const[:, None] + log_ev}
        data = dataclasses.replace(fd.data, prepared=dataclasses.replace(prepared, arrays=arrays))
        return fd._replace(data=data, init_labels=evidence.labels), evidence

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
                    "X must be 2-dimensional: every array of a dict X must have shape "
                    "(n_time_bins, n_features), "
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
                "X must be 2-dimensional, shape (n_time_bins, n_features), got an array with "
                f"{np.ndim(X)} "
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
                    f"Inconsistent number of features per key of X: coef_ has {widths}, X has "
                    f"{got}."
                )
            return
        if expected is None:
            expected = np.shape(coef)[0]
        if n_features != expected:
            raise ValueError(
                f"Inconsistent number of features. X has {n_features} features, but "
                f"{type(self).__name__} "
                f"is expecting {expected} features as input."
            )

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


_ll_constant_program = jax.jit(glm_log_likelihood_constant, static_argnums=0)


def _padded(X_kept_flat, y_kept, keep, starts_kept, n_time_bins, info, spec: _Spec) -> PreparedData:
    """The kept bins padded to a bucket length, on the device."""
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
    return prepared


class _GLMFitData(NamedTuple):
    """Training data of one GLMHMM fit: validated hyperparameters, data and user start."""

    spec: _Spec
    data: _Data
    init_params: tuple | None
    init_labels: np.ndarray | None = None  # hand labels on the kept frames (``_fit_labels``)


#: Largest feature magnitude below which unchanged GLM weights may be an optimum, not a failure.
_STALL_SCALE = 1e4


def _check_glm_progress(start: GLMHMMParams, result, X_kept) -> None:
    """Refuse an EM run whose M-steps never moved the GLM weights because X is badly scaled.

    With features of huge magnitude the GLM objective saturates and every
    line search fails, so EM "converges" in two iterations with the initial
    weights; that is a numerical failure, not a fit.
    """
    if result.n_iter < 2:
        return
    before = jax.tree_util.tree_leaves((start.coef, start.intercept))
    after = jax.tree_util.tree_leaves((result.params.coef, result.params.intercept))
    if any(
        not np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(before, after, strict=True)
    ):
        return
    X = flatten_design(X_kept)
    if X.size == 0:
        return
    scale = np.nanmax(np.abs(X), axis=0)
    worst = int(np.argmax(scale))
    if scale[worst] > _STALL_SCALE:
        raise FloatingPointError(
            f"EM made no progress: the M-step left every GLM weight at its initial value after "
            f"{result.n_iter} iterations, because X is badly scaled (largest |X| = "
            f"{scale[worst]:.3g}, in feature {worst}). Standardize X (e.g. "
            "sklearn.preprocessing.StandardScaler) or rescale it to values of order 1."
        )
