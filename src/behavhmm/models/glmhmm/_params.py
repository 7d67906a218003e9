"""GLMHMM's parameters in their two forms (nemos' user tuple and the kernels'
``GLMHMMParams``), its initialisation from the ``setup()`` slots, the fitted attributes,
model files and the residual degrees of freedom.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..._memory import check_fit_memory, glmhmm_fit_memory
from ..._utils import float_dtype
from ...fitting import EMConvergenceWarning, EMResult, run_em
from ...fitting.regularizers import GroupLasso, Lasso, Regularizer
from ...labels import initializer_labels
from ...observations.glm import (
    FIXED_SCALE_FAMILIES,
    inverse_link_name,
)
from .._initializers import call_initializer, describe_initializers, validate_setup
from .._serialization import jsonable
from . import em as core
from ._nemos_api import EMState
from .em import GLMHMMParams
from .initialize import (
    KMEANS_FUNCTIONS,
    KMeansInitializer,
    flatten_design,
    unflatten_coef,
)
from .validation import (
    _HMM_SLOTS,
    _MODEL_SLOTS,
    _PARAM_NAMES,
    _check_init_dict,
    _Data,
    _expected_outputs,
    _GLMFitData,
    _Spec,
)


class GLMParameters:
    """GLMHMM's parameter forms, initial parameters, fitted attributes and files."""

    def _initializers(self, labels=None):
        """``{slot: (func, kwargs)}``; with ``labels``, slots ``setup()`` left at their default
        take their "labels" initializer."""
        out = {}
        for param, slots in (
            ("hmm_initialization_funcs", _HMM_SLOTS),
            ("model_initialization_funcs", _MODEL_SLOTS),
        ):
            funcs = _check_init_dict(getattr(self, param), slots, param)
            merged = validate_setup({s: self._init_slots[s] for s in slots}, funcs, {})
            for slot in slots:
                func = merged.get(slot) or self._init_slots[slot].default
                if labels is not None and funcs.get(slot) is None:
                    func = "labels"
                if isinstance(func, str):
                    func = self._init_slots[slot].registry[func]
                out[slot] = (func, dict(merged.get(f"{slot}_kwargs") or {}))
        return out

    # ---------------------------------------------------------- parameters
    def _initial_params(self, spec: _Spec, data: _Data, key, labels=None) -> GLMHMMParams:
        """Parameters from the ``setup()`` slots; ``labels`` (on the kept frames) go to those
        initializers that take them."""
        inits = self._initializers(labels)
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
            kwargs = {**kwargs, **initializer_labels(func, labels)}
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
        coef, coef_leaves, intercept, scale, pi, trans = _user_arrays(params, source)
        flat_coef = self._check_glm_shapes(coef, coef_leaves, intercept, spec, data, source)
        n_states = spec.n_states
        scale_shape = (n_states,) if spec.family == "Categorical" else intercept.shape
        if spec.family in FIXED_SCALE_FAMILIES and scale.shape != scale_shape:
            scale = np.ones(scale_shape)
        if scale.shape != scale_shape:
            raise ValueError(
                f"The scale parameter and the intercept must be of the same shape {scale_shape}. "
                f"The scale is of shape ``{scale.shape}`` instead ({source})."
            )
        _check_chain(pi, trans, n_states, source)
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

    def _check_glm_shapes(self, coef, coef_leaves, intercept, spec: _Spec, data, source: str):
        """Shapes of coef and intercept against n_states, the outputs and X; the flat coef."""
        n_states = spec.n_states
        ndim = coef_leaves[0].ndim
        expected_out = _expected_outputs(data, spec, self)
        want_ndim = 2 if expected_out is None else 3
        if any(c.ndim != want_ndim for c in coef_leaves) or intercept.ndim != want_ndim - 1:
            shapes = [c.shape for c in coef_leaves]
            raise ValueError(
                "Invalid parameter dimensionality.\n- coef must be an array (or dict of arrays) of "
                "shape "
                + (
                    "``(n_features, n_states)``"
                    if want_ndim == 2
                    else "``(n_features, n_outputs, n_states)``"
                )
                + ".\n- intercept must be of shape "
                + ("``(n_states,)``" if want_ndim == 2 else "``(n_outputs, n_states)``")
                + f".\nThe provided coef and intercept have shapes {shapes} and "
                + f"{intercept.shape} instead ({source})."
            )
        if any(c.shape[-1] != n_states for c in coef_leaves):
            raise ValueError(
                "GLM coef must be of shape ``(n_features, n_states)`` (or a dict of such arrays); "
                "n_states is "
                f"{n_states} but coef has shape(s) {[c.shape for c in coef_leaves]} ({source})."
            )
        if intercept.shape[-1] != n_states:
            raise ValueError(
                f"GLM intercept must be of shape ``(n_states,)``; n_states is {n_states} but "
                "intercept has shape "
                f"{intercept.shape} ({source})."
            )
        if ndim == 3:
            outs = {c.shape[1] for c in coef_leaves} | {intercept.shape[0]}
            if len(outs) > 1 or (expected_out is not None and outs != {expected_out}):
                raise ValueError(
                    f"coef and intercept must share the output axis of length {expected_out} "
                    f"(neurons or classes); got coef {[c.shape for c in coef_leaves]} and "
                    f"intercept {intercept.shape} "
                    f"({source})."
                )
        flat_coef = coef_leaves[0] if len(coef_leaves) == 1 else np.concatenate(coef_leaves, axis=0)
        if data is not None:
            structure = data.X_kept
            if isinstance(structure, Mapping) != isinstance(coef, Mapping) or (
                isinstance(coef, Mapping) and sorted(coef) != sorted(structure)
            ):
                raise ValueError(
                    "coef must have the structure of X (an array, or a dict with X's keys) "
                    f"({source})."
                )
            n_features = flatten_design(structure).shape[1]
            if flat_coef.shape[0] != n_features:
                raise ValueError(
                    f"Inconsistent number of features. X has {n_features} features but coef has "
                    f"{flat_coef.shape[0]} ({source})."
                )
        return flat_coef

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
                    f"mapping_dict={{'inverse_link_function': your_function}} to "
                    "behavhmm.load_model."
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

    def _store(self, best: EMResult, fd: _GLMFitData) -> None:
        data = fd.data
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
        self.dof_resid_ = self._dof_resid(fd.spec, data, best.params)
        if not best.converged:
            warnings.warn(
                "The fit did not converge. Consider the following:"
                "\n1) Enable float64 with ``jax.config.update('jax_enable_x64', True)``"
                "\n2) Increase the ``maxiter`` parameter (max number of iterations of the EM, "
                f"now {self.maxiter}) or increase the ``tol`` parameter (tolerance, now "
                f"{self.tol} nats per time bin).",
                EMConvergenceWarning,
                stacklevel=4,
            )

    def _run_em(self, params, data: _Data, hyper, config, spec: _Spec, run: int = 0):
        args = data.args

        def step(p):
            return core.em_step(p, *args, hyper, config, spec.method, self.block_size)

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


def _user_arrays(params, source: str):
    """``(coef, coef_leaves, intercept, scale, initial_prob, transition_prob)`` as float arrays."""
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
        intercept, scale, pi, trans = (np.asarray(a, float) for a in (intercept, scale, pi, trans))
    except (TypeError, ValueError) as exc:
        raise TypeError(
            "Failed to convert parameters to arrays. Parameters must be array-like objects (or "
            "a dict of "
            f"array-like objects for coef) with numeric data types ({source}): {exc}"
        ) from None
    if not coef_leaves:
        raise ValueError(f"coef is empty ({source}).")
    return coef, coef_leaves, intercept, scale, pi, trans


def _check_chain(pi: np.ndarray, trans: np.ndarray, n_states: int, source: str) -> None:
    """Shapes and values of the initial distribution and the transition matrix."""
    if pi.shape != (n_states,):
        raise ValueError(
            f"initial_prob must be a 1-dimensional array of shape ``({n_states},)``. Provided "
            "initial_prob is of "
            f"shape ``{pi.shape}`` instead ({source})."
        )
    if trans.shape != (n_states, n_states):
        raise ValueError(
            f"transition_prob must be a 2-dimensional array of shape ``({n_states}, "
            f"{n_states})``. Provided "
            f"transition_prob is of shape ``{trans.shape}`` instead ({source})."
        )
    for name, arr in (("initial_prob", pi), ("transition_prob", trans)):
        if not np.all(np.isfinite(arr)) or np.any(arr < 0):
            raise ValueError(f"{name} must hold finite, non-negative probabilities ({source}).")
    if not np.isclose(pi.sum(), 1.0, atol=1e-4):
        raise ValueError(f"initial_prob must sum to 1, but got sum = {pi.sum()} ({source}).")
    if not np.allclose(trans.sum(axis=1), 1.0, atol=1e-4):
        raise ValueError(
            "transition_prob matrix rows must sum to 1 over columns, but got sums = "
            f"{trans.sum(axis=1)}. Row i "
            f"is the distribution of the next state given state i ({source})."
        )


def _check_memory(X, y, n_states: int, block_size: int | None) -> None:
    """``MemoryError`` before a fit whose estimate exceeds the memory available."""
    try:
        leaves = list(X.values()) if isinstance(X, Mapping) else [X]
        n_frames = int(np.shape(leaves[0])[0])
        n_features = sum(int(np.shape(a)[1]) for a in leaves)
        n_outputs = int(np.shape(y)[1]) if np.ndim(y) == 2 else 1
    except (IndexError, TypeError, ValueError, AttributeError):
        return  # malformed input: the validation says what is wrong
    need = glmhmm_fit_memory(
        n_frames,
        n_states,
        n_features,
        itemsize=np.dtype(float_dtype()).itemsize,
        n_outputs=n_outputs,
        block_size=block_size,
    )
    check_fit_memory(
        need, "GLMHMM.fit", "Fit fewer frames or states, use float32, or set block_size."
    )
