"""Checks shared by every estimator: the declarative hyperparameter constraints and their checker,
random keys, probabilities and initializer outputs.

Each estimator declares ``_hyperparameters`` (constructor argument -> `Integer`, `Real`, `OneOf` or
`Bool`); ``BaseHMM._check_hyperparameters`` runs `check_hyperparameters` over it before any work.
Error messages name the argument and the values it accepts.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import jax
import numpy as np
from sklearn.utils import check_scalar

__all__ = [
    "Bool",
    "Integer",
    "OneOf",
    "Real",
    "check_hyperparameters",
    "check_initializer_output",
    "check_probabilities",
    "check_random_key",
]

# ------------------------------------------------------------ hyperparameter table
_BOUNDS = {"both": ("[", "]"), "left": ("[", ")"), "right": ("(", "]"), "neither": ("(", ")")}


@dataclass(frozen=True)
class Integer:
    """An integer hyperparameter in ``[low, high]``.

    Attributes
    ----------
    low, high : int or None
        Inclusive bounds (None: unbounded).
    optional : bool
        Whether None is accepted.
    integral_floats : bool
        Whether integer-valued floats (``10.0``) are accepted (nemos' GLMHMM does).
    """

    low: int | None = None
    high: int | None = None
    optional: bool = False
    integral_floats: bool = False

    def check(self, name: str, value) -> None:
        """Raise TypeError/ValueError naming ``name`` unless ``value`` satisfies the constraint."""
        if value is None and self.optional:
            return
        if (
            self.integral_floats
            and isinstance(value, numbers.Real)
            and not isinstance(value, bool | numbers.Integral)
            and math.isfinite(value)
            and value == int(value)
        ):
            value = int(value)
        if isinstance(value, bool | np.bool_):
            raise TypeError(f"{name} must be an instance of int, not bool.")
        check_scalar(value, name, numbers.Integral, min_val=self.low, max_val=self.high)

    def describe(self) -> str:
        """The expected values, in words."""
        low = "-inf" if self.low is None else self.low
        high = "inf" if self.high is None else self.high
        return f"an integer in [{low}, {high}]" + (" or None" if self.optional else "")


@dataclass(frozen=True)
class Real:
    """A finite real hyperparameter in an interval.

    Attributes
    ----------
    low, high : float or None
        Bounds (None: unbounded).
    closed : {"both", "left", "right", "neither"}
        Which bounds are included (scikit-learn's ``include_boundaries``).
    optional : bool
        Whether None is accepted.
    """

    low: float | None = None
    high: float | None = None
    closed: str = "both"
    optional: bool = False

    def check(self, name: str, value) -> None:
        """Raise TypeError/ValueError naming ``name`` unless ``value`` satisfies the constraint.

        NaN and infinity are refused for every real hyperparameter.
        """
        if value is None and self.optional:
            return
        if isinstance(value, bool | np.bool_):
            raise TypeError(f"{name} must be an instance of float, not bool.")
        if isinstance(value, numbers.Real) and not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number in {self.interval()}, got {value}.")
        closed = self.closed
        if self.low is None and closed == "left" or self.high is None and closed == "right":
            closed = "neither"  # scikit-learn refuses a closed side without a bound
        check_scalar(
            value,
            name,
            numbers.Real,
            min_val=self.low,
            max_val=self.high,
            include_boundaries=closed,
        )

    def interval(self) -> str:
        """The allowed interval, e.g. ``(0, inf)``."""
        left, right = _BOUNDS[self.closed]
        if self.low is None:
            left = "("
        if self.high is None:
            right = ")"
        low = "-inf" if self.low is None else self.low
        high = "inf" if self.high is None else self.high
        return f"{left}{low}, {high}{right}"

    def describe(self) -> str:
        """The expected values, in words."""
        return f"a finite number in {self.interval()}" + (" or None" if self.optional else "")


@dataclass(frozen=True)
class OneOf:
    """A hyperparameter taking one of a few values."""

    values: tuple

    def check(self, name: str, value) -> None:
        """Raise ValueError naming ``name`` unless ``value`` is one of ``values``."""
        if isinstance(value, np.ndarray) or value not in self.values:
            raise ValueError(f"{name} must be one of {self.values}, got {value!r}.")

    def describe(self) -> str:
        """The expected values, in words."""
        return f"one of {self.values}"


@dataclass(frozen=True)
class Bool:
    """A boolean hyperparameter."""

    def check(self, name: str, value) -> None:
        """Raise TypeError naming ``name`` unless ``value`` is a bool."""
        if not isinstance(value, bool | np.bool_):
            raise TypeError(f"{name} must be a bool, got {type(value).__name__}.")

    def describe(self) -> str:
        """The expected values, in words."""
        return "True or False"


def check_hyperparameters(estimator, table: dict) -> None:
    """Check each constructor argument named in ``table`` against its constraint, in table order.

    Parameters
    ----------
    estimator : BaseHMM
        The estimator whose attributes are checked.
    table : dict of str to Integer, Real, OneOf or Bool
        Argument name -> constraint.

    Raises
    ------
    TypeError, ValueError
        For the first argument that breaks its constraint; the message names
        the argument and the values it accepts.
    """
    for name, constraint in table.items():
        constraint.check(name, getattr(estimator, name))


def check_random_key(random_key, name: str = "random_key") -> jax.Array:
    """Return a ``jax.random`` key from a key, a legacy ``PRNGKey`` or an int.

    Raises
    ------
    TypeError
        For anything else.
    """
    if isinstance(random_key, numbers.Integral) and not isinstance(random_key, bool):
        return jax.random.key(int(random_key))
    if isinstance(random_key, jax.Array):
        if jax.dtypes.issubdtype(random_key.dtype, jax.dtypes.prng_key) and random_key.shape == ():
            return random_key
        if random_key.dtype == np.uint32 and random_key.shape == (2,):
            return jax.random.wrap_key_data(random_key)
    raise TypeError(
        f"{name} must be a jax.random.key(...) (or an int seed), got {type(random_key).__name__}"
        + (
            f" of shape {getattr(random_key, 'shape', None)}"
            if hasattr(random_key, "shape")
            else ""
        )
        + "."
    )


def check_probabilities(**arrays) -> None:
    """Check that each named array holds probabilities summing to 1 along its last axis.

    Raises
    ------
    ValueError
        Naming the first array with a negative or non-finite entry, or whose
        rows do not sum to 1 (to 1e-3).
    """
    for name, arr in arrays.items():
        arr = np.asarray(arr, float)
        if not np.all(np.isfinite(arr)) or np.any(arr < 0):
            raise ValueError(f"{name} must hold finite, non-negative probabilities.")
        if not np.allclose(arr.sum(axis=-1), 1.0, atol=1e-3):
            raise ValueError(
                f"{name} must sum to 1 along its last axis; sums are {arr.sum(axis=-1)}."
            )


def check_initializer_output(checks: dict, hint: str = "") -> None:
    """Check initializer outputs ``{name: (array, expected_shape)}`` for shape and finiteness.

    Raises
    ------
    ValueError
        ``"<name> returned shape ..., expected ..."`` or ``"<name> returned
        non-finite values."`` followed by ``hint``.
    """
    for name, (arr, shape) in checks.items():
        if arr.shape != shape:
            raise ValueError(f"{name} returned shape {arr.shape}, expected {shape}.")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} returned non-finite values.{hint}")
