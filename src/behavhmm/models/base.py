"""The estimator shell every behavhmm model shares.

`BaseHMM` holds what does not depend on the emission model:
scikit-learn conventions (``__init__`` stores parameters only, ``fit``
returns ``self``, fitted attributes end in ``_``), ``setup()`` for pluggable
initializers, model files, random keys, metadata routing of
``session_starts`` for ``GridSearchCV``, checks of hand-set parameters, and
the conversion of per-frame results back to the user's time axis (NumPy or
pynapple). Subclasses add the emission model: data preparation, jitted
kernels, and the public methods with their own signatures and docstrings.
"""

from __future__ import annotations

import numbers
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import jax
import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import validate_data

from ..inference.hmm import resolve_method
from ..labels import check_class_names, initializer_labels
from ..sessions import PynappleInfo, split_pynapple, wrap_output
from ._initializers import (
    InitSlot,
    describe_initializers,
    resolve_initializers,
    restore_initializers,
    validate_setup,
)
from ._predict import Prediction, PredictionMixin
from ._serialization import MODEL_REGISTRY, NOT_RESTORED, jsonable, save_model
from .validation import (
    Bool,
    Integer,
    OneOf,
    Real,
    check_hyperparameters,
    check_initializer_output,
    check_probabilities,
    check_random_key,
)

__all__ = [
    "INFERENCE_METHODS",
    "BaseHMM",
    "Bool",
    "Integer",
    "OneOf",
    "Prediction",
    "PreparedData",
    "Real",
    "check_hyperparameters",
    "check_initializer_output",
    "check_probabilities",
    "check_random_key",
]

#: Values of every estimator's ``inference_method`` (see `behavhmm.inference.hmm.resolve_method`).
INFERENCE_METHODS = ("auto", "sequential", "parallel")

_STATE_FORMATS = ("one-hot", "index")
#: Optional fitted attribute set by `behavhmm.analysis.merge_syllables`: ``[old] = merged`` label
#: of each
#: state, applied to every label and probability a model outputs (its parameters are untouched).
_MERGE_ATTRIBUTE = "syllable_mapping_"
#: Optional fitted attribute: names of the hand-labelled classes 0..C-1 (``fit(class_names=)``).
_CLASS_NAMES = "class_names_"


@dataclass
class PreparedData:
    """Validated input on the model's time axis.

    Attributes
    ----------
    arrays : dict of str to jax.Array
        Model inputs on the padded time axis (first axis ``n_padded``).
    session_starts : jax.Array of bool, shape (n_padded,)
        Session starts; padding steps are starts too, so they never join a chain.
    weights : jax.Array, shape (n_padded,)
        1 for modelled frames, 0 for padding.
    rows : ndarray of int, shape (n_frames,)
        Position of each modelled frame in the user's input.
    n_time_bins : int
        Length of the user's input.
    info : PynappleInfo or None
        Timestamps and epochs when the input was a pynapple object.
    extra : dict
        Model-specific host-side values (e.g. the log-Jacobian of whitening).
    """

    arrays: dict[str, Any]
    session_starts: Any
    weights: Any
    rows: np.ndarray
    n_time_bins: int
    info: PynappleInfo | None
    extra: dict = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        """Number of modelled frames (without padding)."""
        return int(self.rows.shape[0])


class BaseHMM(PredictionMixin, BaseEstimator):
    """Shared shell of behavhmm's estimators (not used directly).

    Subclasses declare ``_init_slots`` (the initializers ``setup()`` accepts)
    and implement ``_saved_attributes``, ``_required_attributes`` and
    ``_validated_params``.
    """

    _init_slots: ClassVar[dict[str, InitSlot]] = {}
    #: The declarative hyperparameter table: constructor argument -> constraint (checked first in
    #: fit).
    _hyperparameters: ClassVar[dict[str, Integer | Real | OneOf | Bool]] = {}
    #: Constructor parameters holding initializer choices (described by name in model files).
    _init_params: ClassVar[tuple[str, ...]] = ("initialization_funcs",)
    #: Fitted scalars written to model files.
    _saved_scalars: ClassVar[tuple[str, ...]] = ("n_iter_", "converged_", "n_features_in_")

    # scikit-learn metadata routing: with ``sklearn.set_config(enable_metadata_routing=True)``,
    # GridSearchCV / cross_validate pass each fold's slice of ``session_starts`` to these
    # methods without further configuration.
    __metadata_request__fit = {"session_starts": True, "labels": True, "label_weight": True}
    __metadata_request__score = {"session_starts": True}
    __metadata_request__predict = {"session_starts": True}
    __metadata_request__predict_proba = {"session_starts": True}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):
            MODEL_REGISTRY[cls.__name__] = cls

    # ------------------------------------------------------------------ setup
    def setup(self, **kwargs):
        """Choose how parameters are initialised before fitting.

        Each keyword names an initializer slot of this estimator (see its
        class docstring) and takes a built-in name or a callable following
        [`behavhmm.models.Initializer`][behavhmm.models.Initializer]; ``<slot>_kwargs`` passes
        keyword
        arguments to it. The choice is stored in the ``initialization_funcs``
        parameter, so ``sklearn.clone`` and ``set_params`` keep it.

        Parameters
        ----------
        **kwargs
            ``<slot>=name_or_callable`` and ``<slot>_kwargs=dict``.

        Returns
        -------
        self

        Raises
        ------
        TypeError
            For an unknown keyword or a value of the wrong type.
        ValueError
            For an unknown built-in name, or a callable whose signature does
            not accept ``(n_states, X, session_starts, random_key, **kwargs)``.
        """
        self.initialization_funcs = validate_setup(
            self._init_slots, self.initialization_funcs, kwargs
        )
        return self

    def _initializers(self, labels=None):
        """``{slot: (func, kwargs)}``; with ``labels``, default slots take their "labels" one."""
        inits = resolve_initializers(self._init_slots, self.initialization_funcs)
        if labels is not None:
            chosen = self.initialization_funcs or {}
            for slot, spec in self._init_slots.items():
                if chosen.get(slot) is None and "labels" in spec.registry:
                    inits[slot] = (spec.registry["labels"], inits[slot][1])
        return inits

    def _initial_chain(self, X, session_starts, keys, labels=None):
        """Initial distribution and transition matrix from their initializers, checked.

        ``labels`` (hand labels on the frames of ``X``) go to initializers with that parameter.

        Raises
        ------
        ValueError
            For a wrong shape, non-finite values or rows that are not probabilities.
        """
        n_states = self.n_states
        inits = self._initializers(labels)
        arrays = {}
        for slot, key in zip(("initial_proba_init", "transition_proba_init"), keys, strict=True):
            func, kwargs = inits[slot]
            extra = initializer_labels(func, labels)
            arrays[slot] = np.asarray(
                func(n_states, X, session_starts, key, **extra, **kwargs), float
            )
        pi, trans = arrays["initial_proba_init"], arrays["transition_proba_init"]
        check_initializer_output(
            {
                "initial_proba_init": (pi, (n_states,)),
                "transition_proba_init": (trans, (n_states, n_states)),
            }
        )
        for name, arr in arrays.items():
            if np.any(arr < 0) or not np.allclose(arr.sum(-1), 1.0, atol=1e-4):
                raise ValueError(
                    f"{name} must return non-negative probabilities summing to 1 along the last "
                    "axis."
                )
        return pi, trans

    def _emission_init(
        self, slot: str, X, session_starts, key, n_outputs: int, labels=None, **context
    ) -> tuple:
        """Call the emission initializer ``slot``; it returns a tuple of ``n_outputs`` arrays.

        ``labels`` (hand labels on the frames of ``X``) go to an initializer with that parameter.
        """
        func, kwargs = self._initializers(labels)[slot]
        extra = initializer_labels(func, labels)
        out = func(self.n_states, X, session_starts, key, **context, **extra, **kwargs)
        if not isinstance(out, tuple | list) or len(out) != n_outputs:
            raise ValueError(f"{slot} must return {self._init_slots[slot].returns}.")
        return tuple(np.asarray(a, float) for a in out)

    def _store_class_names(self, class_names, evidence) -> None:
        """Set (or remove) ``class_names_`` after checking ``class_names`` against the labels."""
        if hasattr(self, _CLASS_NAMES):
            delattr(self, _CLASS_NAMES)
        n_classes = 0 if evidence is None else evidence.n_classes
        if class_names is None and n_classes:  # a fit with labels always names its classes
            class_names = [str(c) for c in range(n_classes)]
        names = check_class_names(class_names, self.n_states, n_classes)
        if names is not None:
            self.class_names_ = names

    def _check_initial_prob(self, pi: np.ndarray) -> int:
        """Number of states of a hand-set ``initial_prob_`` (checked against ``n_states``)."""
        if pi.ndim != 1:
            raise ValueError(f"initial_prob_ must have shape (n_states,), got {pi.shape}.")
        if pi.shape[0] != self.n_states:
            raise ValueError(
                f"initial_prob_ has {pi.shape[0]} states but n_states={self.n_states}."
            )
        return pi.shape[0]

    # ------------------------------------------------------------------ files
    def save_params(self, path: str | os.PathLike) -> Path:
        """Save the fitted parameters and hyperparameters to ``path`` (.npz, no pickle).

        The file is written atomically (temporary file, then rename). Load it
        with [`behavhmm.load_model`][behavhmm.load_model].

        Parameters
        ----------
        path : str or path-like
            Destination, written exactly as given.

        Returns
        -------
        Path
            The written path.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the model has no fitted parameters.
        """
        return save_model(self, path)

    def _params_for_file(self) -> dict[str, Any]:
        """Constructor parameters as JSON data (custom initializers by name)."""
        params = self.get_params(deep=False)
        for name in self._init_params:
            if name in params:  # estimators without pluggable initializers have none
                params[name] = describe_initializers(params[name])
        for name in NOT_RESTORED:  # no local path goes into a model file
            if name in params:
                params[name] = None
        return {k: jsonable(k, v) for k, v in params.items()}

    @classmethod
    def _params_from_file(
        cls, params: dict[str, Any], mapping_dict: dict[str, Any]
    ) -> dict[str, Any]:
        """Inverse of ``_params_for_file``; custom functions come from ``mapping_dict``."""
        for name in cls._init_params:
            if name in params:
                by_slot = (
                    mapping_dict.get(name) if isinstance(mapping_dict.get(name), dict) else None
                )
                params[name] = restore_initializers(params[name], mapping_dict, by_slot) or None
        return params

    def _arrays_for_file(self) -> dict[str, np.ndarray]:
        """Fitted arrays to write, by attribute name."""
        names = (*self._saved_attributes(), _MERGE_ATTRIBUTE, _CLASS_NAMES)
        return {name: np.asarray(getattr(self, name)) for name in names if hasattr(self, name)}

    def _load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """Set fitted arrays read from a file.

        Raises
        ------
        ValueError
            For an array this estimator does not use.
        """
        for name, arr in arrays.items():
            if name == _MERGE_ATTRIBUTE:
                n_states = self.n_states if isinstance(self.n_states, int) else -1
                if (
                    arr.shape != (n_states,)
                    or not np.issubdtype(arr.dtype, np.integer)
                    or (arr.size and (arr.min() < 0 or arr.max() >= n_states))
                ):
                    raise ValueError(
                        f"has a {name} that is not {n_states} labels in [0, {n_states})."
                    )
            elif name == _CLASS_NAMES:
                n_states = self.n_states if isinstance(self.n_states, int) else 0
                if arr.ndim != 1 or arr.dtype.kind != "U" or len(arr) > n_states:
                    raise ValueError(f"has a {name} that is not at most {n_states} names.")
            elif name not in self._saved_attributes():
                raise ValueError(f"has an array {name!r} that {type(self).__name__} does not use.")
            setattr(self, name, arr)

    # ------------------------------------------------------------------- fit
    #: Optional fitted attributes a new fit removes before it starts (set only by some fits).
    _optional_fitted: ClassVar[tuple[str, ...]] = ()

    def _fit_skeleton(
        self, *inputs, resume: bool = False, labels=None, label_weight=1.0, class_names=None
    ):
        """The life of one ``fit``: validate -> prepare -> initialise -> run the loop -> store.

        Every estimator's public ``fit`` (whose signature and docstring are its
        own) is this call. The model supplies four hooks:

        - ``_fit_data(*inputs)``: the validated training data on the model's
          time axis (sessions, NaN borders, padding buckets) and the random
          keys drawn from ``random_state``;
        - ``_fit_labels(train, labels, label_weight)``: the hand labels'
          evidence (`behavhmm.labels.label_evidence`) on the training frames:
          returns ``(train, evidence)``, ``train`` carrying ``log e_t(k)`` in
          the arrays whose emission log-likelihoods it is added to and the
          hard labels for the initializers (``train`` unchanged and ``None``
          without labels);
        - ``_initialize(train)``: the starting point, from the ``setup()``
          slots (or a resumed checkpoint's template);
        - ``_run_loop(init, train, resume)``: `behavhmm.fitting.run_em` or
          `behavhmm.fitting.run_gibbs` over the model's jitted step; returns a
          NamedTuple;
        - ``_store(result, train)``: the fitted ``*_`` attributes (and the
          convergence warning).

        Parameters
        ----------
        *inputs
            The arguments of the model's ``fit`` (``X``, ``y``, ``confidence``,
            ``session_starts``, ``groups``, ...), passed to ``_fit_data``.
        resume : bool, default False
            Continue the fit saved at ``checkpoint_path``.
        labels, label_weight, class_names
            Hand labels of ``fit`` (see `behavhmm.labels`); ``class_names_`` is
            set from ``class_names`` (or the labelled classes) or removed.

        Returns
        -------
        self

        Raises
        ------
        TypeError, ValueError
            For invalid hyperparameters (before any work), ``resume`` without
            ``checkpoint_path``, or invalid input.
        """
        self._check_hyperparameters()
        if resume and getattr(self, "checkpoint_path", None) is None:
            raise ValueError("resume=True needs checkpoint_path.")
        for name in self._optional_fitted:
            if hasattr(self, name):
                delattr(self, name)
        train = self._fit_data(*inputs)
        train, evidence = self._fit_labels(train, labels, label_weight)
        self._store_class_names(class_names, evidence)
        init = self._initialize(train)
        result = self._run_loop(init, train, resume)
        self._store(result, train)
        return self

    def _fit_data(self, *inputs):  # pragma: no cover - abstract
        raise NotImplementedError

    def _fit_labels(self, train, labels, label_weight):
        """``(train, evidence)`` with the labels' evidence; this default takes no labels."""
        if labels is not None:
            raise TypeError(f"{type(self).__name__}.fit does not take labels.")
        return train, None

    def _initialize(self, train):  # pragma: no cover - abstract
        raise NotImplementedError

    def _run_loop(self, init, train, resume: bool):  # pragma: no cover - abstract
        raise NotImplementedError

    def _store(self, result, train) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # ------------------------------------------------------------ validation
    def _check_hyperparameters(self) -> None:
        """Check every constructor argument in ``_hyperparameters``, then the cross-argument rules.

        Raises
        ------
        TypeError, ValueError
            Naming the argument and the values it accepts.
        """
        check_hyperparameters(self, self._hyperparameters)
        self._check_hyperparameter_rules()

    def _check_hyperparameter_rules(self) -> None:
        """Rules that involve several arguments (none by default)."""

    def _method(self) -> str:
        """``inference_method`` checked and resolved for this machine (``"auto"`` -> a method)."""
        self._check_choice("inference_method", self.inference_method, INFERENCE_METHODS)
        return resolve_method(self.inference_method)

    # ---------------------------------------------------------------- helpers
    @staticmethod
    def _check_choice(name, value, choices):
        if value not in choices:
            raise ValueError(f"{name} must be one of {choices}, got {value!r}.")

    @staticmethod
    def _check_bool(name, value):
        if not isinstance(value, bool | np.bool_):
            raise TypeError(f"{name} must be a bool, got {type(value).__name__}.")

    def _validate_frames(self, X, *, reset: bool, n_features: int | None, source: str):
        """``(values as float64 NumPy of shape (n_time_bins, n_features), PynappleInfo | None)``.

        ``n_features`` is the width of hand-set parameters (attribute ``source``),
        checked when the model has no ``n_features_in_``.
        """
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
        if not reset and n_features is not None and not hasattr(self, "n_features_in_"):
            if values.shape[1] != n_features:
                raise ValueError(
                    f"X has {values.shape[1]} features, but {source} describes {n_features}."
                )
        return np.asarray(values, float), info

    def _saved_attributes(self) -> tuple[str, ...]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _required_attributes(self) -> tuple[str, ...]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _validated_params(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def _check_fitted(self):
        missing = [name for name in self._required_attributes() if not hasattr(self, name)]
        if missing:
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet: call fit first, or set "
                f"{', '.join(missing)} by hand."
            )

    def _fit_key(self) -> jax.Array:
        seed = self.random_state
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % (2**63))
        elif isinstance(seed, np.random.Generator):
            seed = int(seed.integers(2**63))
        elif not isinstance(seed, numbers.Integral) or isinstance(seed, bool):
            raise TypeError(
                "random_state must be an int, None or a numpy Generator, got "
                f"{type(seed).__name__}."
            )
        return jax.random.key(int(seed))

    @staticmethod
    def _check_state_format(state_format: str):
        if state_format not in _STATE_FORMATS:
            raise ValueError(
                f"Invalid state_format {state_format!r}: state_format must be one of "
                f"{_STATE_FORMATS}."
            )

    @staticmethod
    def _expand(values, data: PreparedData, fill) -> np.ndarray:
        """Place per-frame results on the user's time axis, ``fill`` on unmodelled rows."""
        values = np.asarray(values)[: data.n_frames]
        out = np.full((data.n_time_bins,) + values.shape[1:], fill, dtype=values.dtype)
        out[data.rows] = values
        return out

    def _merged_states(self, states) -> np.ndarray:
        """Labels after `behavhmm.analysis.merge_syllables`'s mapping (-1 stays -1).

        Unchanged without a mapping.
        """
        states = np.asarray(states)
        mapping = getattr(self, _MERGE_ATTRIBUTE, None)
        if mapping is None:
            return states
        mapping = np.asarray(mapping)
        return np.where(states >= 0, mapping[np.clip(states, 0, len(mapping) - 1)], states).astype(
            states.dtype
        )

    def _merged_probs(self, probs) -> np.ndarray:
        """Probabilities with merged syllables' columns summed into their new label's column."""
        probs = np.asarray(probs)
        mapping = getattr(self, _MERGE_ATTRIBUTE, None)
        if mapping is None:
            return probs
        onto = np.zeros((probs.shape[-1], probs.shape[-1]), probs.dtype)
        onto[np.arange(len(mapping)), np.asarray(mapping)] = 1
        return probs @ onto

    def _state_output(self, states, data: PreparedData, state_format: str, n_states: int):
        index = self._expand(self._merged_states(np.asarray(states, np.int32)), data, -1)
        if state_format == "index":
            return wrap_output(index, data.info)
        one_hot = np.zeros((data.n_time_bins, n_states), np.int32)
        rows = index >= 0
        one_hot[np.flatnonzero(rows), index[rows]] = 1
        return wrap_output(one_hot, data.info, columns=list(range(n_states)))

    def _proba_output(self, probs, data: PreparedData, n_states: int):
        full = self._expand(self._merged_probs(probs), data, np.nan)
        return wrap_output(full, data.info, columns=list(range(n_states)))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # NaN is accepted only at session borders (and dropped), not anywhere:
        # scikit-learn must treat these estimators as not handling NaN.
        tags.input_tags.allow_nan = False
        tags.non_deterministic = False
        return tags
