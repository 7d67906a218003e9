"""Pluggable parameter initializers and the ``setup()`` machinery.

An estimator declares *slots* (for example ``transition_proba_init``), each with
a registry of built-in initializers and the context keywords it passes. Users
pick a built-in by name or pass their own callable; either way it is stored in
the estimator's ``initialization_funcs`` parameter, so ``sklearn.clone`` and
``set_params`` carry it.

Every initializer follows `Initializer`:
``func(n_states, X, session_starts, random_key, **kwargs)`` where ``X`` is the
validated training data with NaN borders dropped (NumPy, first axis time),
``session_starts`` the boolean mask of its sessions, ``random_key`` a
``jax.random`` key for this initializer alone, and ``kwargs`` the slot's context
keywords (for example ``nlags``) plus the user's ``<slot>_kwargs``.

A slot may instead declare ``keywords``: then its protocol arguments are passed
by name (nemos' convention, e.g. ``func(n_states=..., X=..., y=...,
session_starts=..., random_key=...)``), every one of them must appear in the
function's signature, and the user's kwargs may not reuse those names.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np

from ..labels import labelled_initial_proba, labelled_transition_proba

__all__ = [
    "Initializer",
    "InitSlot",
    "uniform_initial_proba",
    "random_initial_proba",
    "sticky_transition_proba",
    "uniform_transition_proba",
    "random_transition_proba",
    "dirichlet_initial_proba",
    "dirichlet_transition_proba",
    "normalized_uniform_initial_proba",
    "normalized_uniform_transition_proba",
    "PROBA_INITIAL_REGISTRY",
    "PROBA_TRANSITION_REGISTRY",
    "CHAIN_SLOTS",
    "seed_from_key",
    "kmeans_labels",
    "random_segment_labels",
    "MissingInitializer",
    "call_initializer",
    "validate_setup",
    "resolve_initializers",
    "describe_initializers",
]


@runtime_checkable
class Initializer(Protocol):
    """Signature every initializer must accept.

    ``func(n_states, X, session_starts, random_key, **kwargs)``.
    """

    def __call__(
        self,
        n_states: int,
        X: np.ndarray,
        session_starts: np.ndarray,
        random_key: jax.Array,
        **kwargs: Any,
    ) -> Any:
        """Return initial parameters for one slot.

        Parameters
        ----------
        n_states : int
            Number of hidden states.
        X : ndarray of shape (n_time_bins, ...)
            Training data (NaN borders dropped), NumPy.
        session_starts : ndarray of bool, shape (n_time_bins,)
            Session starts of ``X``.
        random_key : jax.Array
            A ``jax.random`` key used by this initializer only.
        **kwargs : Any
            Context keywords of the slot (e.g. ``nlags``, ``prior``) and the
            user's ``<slot>_kwargs``.

        Returns
        -------
        Any
            What the slot needs, e.g. an array of shape (n_states,) for
            ``initial_proba_init``.
        """
        ...


@dataclass(frozen=True)
class InitSlot:
    """One configurable initializer of an estimator.

    Attributes
    ----------
    registry : mapping of str to callable
        Built-in initializers by name.
    default : str
        Name used when the user chose nothing.
    context : tuple of str
        Keywords the estimator passes besides the user's kwargs.
    returns : str
        What the initializer must return (for error messages).
    keywords : tuple of str
        Protocol arguments passed by name (empty: the positional protocol
        ``(n_states, X, session_starts, random_key)``).
    """

    registry: Mapping[str, Callable]
    default: str
    context: tuple[str, ...] = ()
    returns: str = field(default="an array")
    keywords: tuple[str, ...] = ()


class MissingInitializer:
    """Stand-in for a custom initializer that a loaded model file could not restore.

    Calling it raises a ``ValueError`` that says how to restore it
    (``behavhmm.load_model(path, mapping_dict={name: func})``).
    """

    def __init__(self, name: str):
        self.name = name

    def __call__(self, *args, **kwargs):
        raise ValueError(
            f"The custom initializer {self.name!r} was saved by name only and was not "
            f"restored; pass mapping_dict={{{self.name!r}: your_function}} to "
            "behavhmm.load_model, or choose another initializer with setup()."
        )

    def __repr__(self) -> str:
        return f"MissingInitializer({self.name!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, MissingInitializer) and other.name == self.name

    def __hash__(self) -> int:
        return hash(("MissingInitializer", self.name))


# ----------------------------------------------------------------------------
# built-in initializers for initial and transition probabilities
# ----------------------------------------------------------------------------


def uniform_initial_proba(n_states, X, session_starts, random_key, **kwargs):
    """Uniform initial distribution ``1 / n_states``."""
    return np.full(n_states, 1.0 / n_states)


def random_initial_proba(n_states, X, session_starts, random_key, concentration=1.0, **kwargs):
    """Initial distribution drawn from ``Dir(concentration)``."""
    return np.asarray(
        jax.random.dirichlet(random_key, np.full(n_states, float(concentration))), float
    )


def sticky_transition_proba(n_states, X, session_starts, random_key, stickiness=0.95, **kwargs):
    """``stickiness`` on the diagonal, the rest spread evenly over the other states."""
    if not 0.0 <= stickiness <= 1.0:
        raise ValueError(f"stickiness must lie in [0, 1], got {stickiness}.")
    if n_states == 1:
        return np.ones((1, 1))
    off = (1.0 - stickiness) / (n_states - 1)
    return np.full((n_states, n_states), off) + (stickiness - off) * np.eye(n_states)


def uniform_transition_proba(n_states, X, session_starts, random_key, **kwargs):
    """Every transition equally likely."""
    return np.full((n_states, n_states), 1.0 / n_states)


def random_transition_proba(
    n_states, X, session_starts, random_key, concentration=1.0, stickiness=0.0, **kwargs
):
    """Rows drawn from ``Dir(concentration)``, mixed with ``stickiness`` of the identity."""
    rows = np.asarray(
        jax.random.dirichlet(random_key, np.full(n_states, float(concentration)), (n_states,)),
        float,
    )
    return (1.0 - stickiness) * rows + stickiness * np.eye(n_states)


def dirichlet_initial_proba(n_states, X, session_starts, random_key, alphas=None, **kwargs):
    """A draw from ``Dir(alphas)`` (default all ones), ``alphas`` of shape (n_states,)."""
    alphas = np.ones(n_states) if alphas is None else np.asarray(alphas, float)
    if alphas.shape != (n_states,):
        raise ValueError(f"alphas must have shape ({n_states},), got {alphas.shape}.")
    return np.asarray(jax.random.dirichlet(random_key, alphas), float)


def dirichlet_transition_proba(n_states, X, session_starts, random_key, alphas=None, **kwargs):
    """Rows drawn from ``Dir(alphas[i])`` (default all ones), ``alphas`` (n_states, n_states)."""
    alphas = np.ones((n_states, n_states)) if alphas is None else np.asarray(alphas, float)
    if alphas.shape != (n_states, n_states):
        raise ValueError(f"alphas must have shape ({n_states}, {n_states}), got {alphas.shape}.")
    return np.asarray(jax.random.dirichlet(random_key, alphas), float)


def normalized_uniform_initial_proba(n_states, X, session_starts, random_key, **kwargs):
    """Uniform random numbers on [0, 1), normalised (nemos' ``random`` initial distribution)."""
    p = np.asarray(jax.random.uniform(random_key, (n_states,)), float)
    return p / p.sum()


def normalized_uniform_transition_proba(n_states, X, session_starts, random_key, **kwargs):
    """Rows of uniform random numbers on [0, 1), normalised (nemos' ``random`` transitions)."""
    p = np.asarray(jax.random.uniform(random_key, (n_states, n_states)), float)
    return p / p.sum(axis=1, keepdims=True)


PROBA_INITIAL_REGISTRY = {
    "uniform": uniform_initial_proba,
    "random": random_initial_proba,
    "dirichlet": dirichlet_initial_proba,
    "labels": labelled_initial_proba,
}
PROBA_TRANSITION_REGISTRY = {
    "sticky": sticky_transition_proba,
    "uniform": uniform_transition_proba,
    "random": random_transition_proba,
    "dirichlet": dirichlet_transition_proba,
    "labels": labelled_transition_proba,
}
#: The chain's two ``setup()`` slots, shared by the models that use the positional protocol
#: (GaussianHMM, ARHMM, KeypointSLDS); each adds its emission slot.
CHAIN_SLOTS = {
    "initial_proba_init": InitSlot(
        PROBA_INITIAL_REGISTRY, "uniform", returns="an array of shape (n_states,)"
    ),
    "transition_proba_init": InitSlot(
        PROBA_TRANSITION_REGISTRY, "sticky", returns="an array of shape (n_states, n_states)"
    ),
}


# ----------------------------------------------------------------------------
# labels for the emission initializers (k-means, random segments)
# ----------------------------------------------------------------------------


def seed_from_key(random_key) -> int:
    """A NumPy seed from a JAX key, identical with and without ``jax_enable_x64``."""
    return int(jax.random.bits(random_key, (), jnp.uint32))


def kmeans_labels(
    features: np.ndarray, n_states: int, random_key, max_frames: int = 20000
) -> np.ndarray:
    """Cluster the rows of ``features`` into ``n_states`` groups with scikit-learn's ``KMeans``.

    Columns are z-scored; one k-means initialisation runs on at most
    ``max_frames`` random rows, then every row gets its nearest centre.

    Returns
    -------
    ndarray of int, shape (n_rows,)
    """
    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning

    scale = features.std(axis=0)
    feats = (features - features.mean(axis=0)) / np.where(scale > 0, scale, 1.0)
    seed = seed_from_key(random_key)
    rng = np.random.default_rng(seed)
    subset = (
        feats
        if len(feats) <= max_frames
        else feats[rng.choice(len(feats), max_frames, replace=False)]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        km = KMeans(n_clusters=n_states, n_init=1, random_state=seed).fit(subset)
    return km.predict(feats)


def random_segment_labels(
    n_rows: int, n_states: int, random_key, segment_length: int = 10
) -> np.ndarray:
    """Random state labels, constant over consecutive segments of ``segment_length`` rows."""
    n_segments = -(-n_rows // int(segment_length))
    seg_labels = np.random.default_rng(seed_from_key(random_key)).integers(0, n_states, n_segments)
    return np.repeat(seg_labels, int(segment_length))[:n_rows]


# ----------------------------------------------------------------------------
# setup(): validate, store, resolve
# ----------------------------------------------------------------------------


def _check_callable(slot: str, func: Callable, spec: InitSlot, kwargs: Mapping[str, Any]):
    if spec.keywords:
        reserved = sorted(set(kwargs) & (set(spec.keywords) | set(spec.context)))
        if reserved:
            raise ValueError(
                f"Keyword argument {reserved[0]!r} is reserved and should not be provided in "
                f"{slot}_kwargs: the model passes it to every initialization function."
            )
    if isinstance(func, MissingInitializer):
        return
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):  # builtins without signatures: accept
        return
    context = {name: None for name in spec.context}
    if spec.keywords:
        name = getattr(func, "__name__", func)
        missing = sorted(set(spec.keywords) - set(sig.parameters))
        if missing:
            raise ValueError(
                f"Custom initialization function {name!r} for {slot} must have the parameters "
                f"{list(spec.keywords)}. Missing: {missing} (it does not accept the initializer "
                "signature; list every argument even when unused)."
            )
        try:
            sig.bind(**{k: None for k in spec.keywords}, **context, **dict(kwargs))
        except TypeError as exc:
            raise ValueError(
                f"Invalid keyword argument for initialization function {name!r} ({slot}): {exc}. "
                f"Expected parameters are: {sorted(sig.parameters)}."
            ) from None
        return
    try:
        sig.bind(1, np.zeros((2, 1)), np.ones(2, bool), None, **context, **dict(kwargs))
    except TypeError as exc:
        raise ValueError(
            f"{slot} callable {getattr(func, '__name__', func)!r} does not accept the "
            "initializer signature func(n_states, X, session_starts, random_key, **kwargs)"
            + (f" with keywords {list(spec.context)}" if spec.context else "")
            + (f" and {list(kwargs)}" if kwargs else "")
            + f": {exc}"
        ) from None


def validate_setup(
    slots: Mapping[str, InitSlot], current: Mapping[str, Any] | None, updates: Mapping[str, Any]
) -> dict[str, Any]:
    """Merge ``updates`` into ``current`` after checking names, callables and kwargs.

    Parameters
    ----------
    slots : mapping of str to InitSlot
        The estimator's slots.
    current : mapping or None
        The estimator's ``initialization_funcs``.
    updates : mapping
        Keyword arguments given to ``setup()``: ``<slot>=name_or_callable`` and
        ``<slot>_kwargs=dict``.

    Returns
    -------
    dict
        The new ``initialization_funcs``.

    Raises
    ------
    TypeError
        For a keyword that is no slot, a value that is neither a name nor a
        callable, or kwargs that are not a dict.
    ValueError
        For an unknown built-in name or a callable with the wrong signature.
    """
    merged = dict(current or {})
    for key, value in updates.items():
        slot = key[: -len("_kwargs")] if key.endswith("_kwargs") else key
        if slot not in slots:
            valid = sorted(list(slots) + [f"{s}_kwargs" for s in slots])
            raise TypeError(
                f"setup() got an unexpected keyword argument {key!r}; valid keywords: {valid}."
            )
        if key.endswith("_kwargs"):
            if value is not None and not isinstance(value, Mapping):
                raise TypeError(
                    f"{key} must be a dict of keyword arguments, got {type(value).__name__}."
                )
            merged[key] = dict(value or {})
        else:
            merged[key] = value
    for slot, spec in slots.items():
        func = merged.get(slot)
        kwargs = merged.get(f"{slot}_kwargs") or {}
        if func is None:
            continue
        if isinstance(func, str):
            if func not in spec.registry:
                raise ValueError(
                    f"Invalid initialization function name: {slot}={func!r} is not a built-in "
                    f"initializer; choose one of {sorted(spec.registry)} or pass a callable."
                )
            func = spec.registry[func]
        elif not callable(func):
            raise TypeError(
                f"{slot} must be a registered name or a callable, got {type(func).__name__}."
            )
        _check_callable(slot, func, spec, kwargs)
    return merged


def call_initializer(
    spec: InitSlot, func: Callable, values: Mapping[str, Any], kwargs: Mapping[str, Any]
):
    """Call ``func`` with the slot's protocol arguments (by name for keyword slots).

    Parameters
    ----------
    spec : InitSlot
        The slot.
    func : callable
        The resolved initializer.
    values : mapping
        Every protocol and context argument by name (``n_states``, ``X``,
        ``session_starts``, ``random_key``, the slot's ``keywords`` and
        ``context``).
    kwargs : mapping
        The user's ``<slot>_kwargs``.

    Returns
    -------
    Any
        What the initializer returns.
    """
    context = {name: values[name] for name in spec.context}
    if spec.keywords:
        return func(**{name: values[name] for name in spec.keywords}, **context, **kwargs)
    return func(
        values["n_states"],
        values["X"],
        values["session_starts"],
        values["random_key"],
        **context,
        **kwargs,
    )


def resolve_initializers(
    slots: Mapping[str, InitSlot], funcs: Mapping[str, Any] | None
) -> dict[str, tuple[Callable, dict]]:
    """``{slot: (callable, user_kwargs)}`` with defaults filled in (validates too)."""
    merged = validate_setup(slots, funcs, {})
    out = {}
    for slot, spec in slots.items():
        func = merged.get(slot)
        if func is None:
            func = spec.default
        if isinstance(func, str):
            func = spec.registry[func]
        out[slot] = (func, dict(merged.get(f"{slot}_kwargs") or {}))
    return out


def describe_initializers(funcs: Mapping[str, Any] | None) -> dict[str, Any]:
    """A JSON-serialisable copy: callables become ``{"custom": "module.qualname"}``."""
    out: dict[str, Any] = {}
    for key, value in (funcs or {}).items():
        if isinstance(value, MissingInitializer):
            out[key] = {"custom": value.name}
        elif callable(value) and not isinstance(value, str):
            name = (
                f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', repr(value))}"
            )
            out[key] = {"custom": name}
        else:
            out[key] = value
    return out


def restore_initializers(
    described: Mapping[str, Any] | None,
    mapping_dict: Mapping[str, Callable] | None,
    by_slot: Mapping[str, Callable] | None = None,
):
    """Inverse of `describe_initializers`; unknown custom names become placeholders.

    Custom functions are looked up in ``by_slot`` (slot name to function, as
    nemos' ``mapping_dict={"model_initialization_funcs": {...}}``), then in
    ``mapping_dict`` by their saved ``module.qualname`` or short name.
    """
    mapping_dict = dict(mapping_dict or {})
    by_slot = dict(by_slot or {})
    out: dict[str, Any] = {}
    for key, value in (described or {}).items():
        if isinstance(value, dict) and set(value) == {"custom"}:
            name = value["custom"]
            short = name.rsplit(".", 1)[-1]
            func = by_slot.get(key)
            if not callable(func):
                func = mapping_dict.get(name, mapping_dict.get(short))
            out[key] = func if callable(func) else MissingInitializer(name)
        else:
            out[key] = value
    return out
