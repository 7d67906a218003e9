"""Penalties on GLM coefficients for the M-step: Ridge, Lasso, elastic net and group Lasso.

A regularizer adds a penalty ``P(W)`` on the coefficients (never the
intercepts) to the negative log-likelihood minimised in the M-step, so EM
maximises the penalised likelihood: a MAP estimate under the prior
``p(W) ∝ exp(-P(W))``. The penalties and their strengths follow nemos:

| regularizer | ``P(W)`` | solvers |
|---|---|---|
| ``UnRegularized`` | 0 | all |
| ``Ridge`` | ``½ Σ s w²`` | all |
| ``Lasso`` | ``Σ s |w|`` | ProximalGradient |
| ``ElasticNet`` | ``Σ s ((1 - r) ½ w² + r |w|)`` | ProximalGradient |
| ``GroupLasso`` | ``Σ_g s_g √p_g ‖w_g‖₂`` | ProximalGradient |

``s`` is ``regularizer_strength`` (a scalar, or an array broadcastable to the
coefficients; per group for the group Lasso), ``r`` the elastic-net ratio in
(0, 1] and ``p_g`` the number of coefficients in group ``g``. The penalty is
added to the *summed* (not averaged) negative log-likelihood, so the strength
is the precision of a Gaussian prior for Ridge and does not shrink as data
accumulate.

Instances only validate and hold hyperparameters. The penalty and proximal
operator are pure JAX functions looked up by the regularizer's name, so
compiled M-step programs are shared by every model with the same names.

References
----------
R. Tibshirani (1996). Regression shrinkage and selection via the lasso.
J. R. Stat. Soc. B 58(1), 267-288.

H. Zou and T. Hastie (2005). Regularization and variable selection via the
elastic net. J. R. Stat. Soc. B 67(2), 301-320.

M. Yuan and Y. Lin (2006). Model selection and estimation in regression with
grouped variables. J. R. Stat. Soc. B 68(1), 49-67.
"""

from __future__ import annotations

from typing import Any, ClassVar

import jax.numpy as jnp
import numpy as np

__all__ = [
    "Regularizer",
    "UnRegularized",
    "Ridge",
    "Lasso",
    "ElasticNet",
    "GroupLasso",
    "REGULARIZERS",
    "get_regularizer",
    "regularizer_penalty",
    "regularizer_prox",
]

_ALL_SOLVERS = ("GradientDescent", "BFGS", "LBFGS", "NonlinearCG", "ProximalGradient", "Newton")
_PROX_ONLY = ("ProximalGradient",)


class Regularizer:
    """Base class: a named penalty with its allowed solvers and hyperparameter checks.

    Attributes
    ----------
    allowed_solvers : tuple of str
        Solvers that can minimise the penalised objective.
    default_solver : str
        Solver used when ``solver_name`` is None.
    """

    allowed_solvers: ClassVar[tuple[str, ...]] = _ALL_SOLVERS
    default_solver: ClassVar[str] = "LBFGS"

    @property
    def name(self) -> str:
        """The regularizer's name (its class name)."""
        return type(self).__name__

    def check_solver(self, solver_name: str) -> None:
        """Raise ``ValueError`` if ``solver_name`` cannot minimise this penalty.

        Raises
        ------
        ValueError
            If ``solver_name`` is not in ``allowed_solvers``.
        """
        if solver_name not in self.allowed_solvers:
            raise ValueError(
                f"The solver: {solver_name} is not allowed for {self.name} regularization. "
                f"Allowed solvers are {self.allowed_solvers}."
                + (
                    " Non-smooth penalties need a proximal method."
                    if self.allowed_solvers == _PROX_ONLY
                    else ""
                )
            )

    def hyperparameters(self, strength, coef_shape: tuple[int, ...], dtype) -> dict[str, Any]:
        """Validated penalty hyperparameters as JAX arrays (dynamic under ``jit``).

        Parameters
        ----------
        strength : float, array-like or None
            ``regularizer_strength``; None means 1.0.
        coef_shape : tuple of int
            Shape of the (flattened-feature) coefficients,
            ``(n_features, [n_outputs,] n_states)``.
        dtype : dtype
            Floating dtype of the computation.

        Returns
        -------
        dict of str to array

        Raises
        ------
        TypeError
            If the strength cannot be converted to floats.
        ValueError
            If it is negative or its shape does not broadcast.
        """
        return {"strength": _elementwise_strength(strength, coef_shape, dtype)}

    def __repr__(self) -> str:
        return f"{self.name}()"

    def __eq__(self, other) -> bool:
        return type(other) is type(self)

    def __hash__(self) -> int:
        return hash(type(self))


class UnRegularized(Regularizer):
    """No penalty: maximum-likelihood M-step."""

    def hyperparameters(self, strength, coef_shape, dtype):
        """No hyperparameters (the strength is ignored)."""
        return {}


class Ridge(Regularizer):
    """L2 penalty ``½ Σ s w²`` (a Gaussian prior of precision ``s`` on each coefficient)."""


class Lasso(Regularizer):
    """L1 penalty ``Σ s |w|``; sparse coefficients. Needs ``solver_name="ProximalGradient"``."""

    allowed_solvers = _PROX_ONLY
    default_solver = "ProximalGradient"


class ElasticNet(Regularizer):
    """Elastic net ``Σ s ((1 - r) ½ w² + r |w|)``; ``regularizer_strength`` is ``s`` or ``(s, r)``.

    The ratio ``r`` in (0, 1] defaults to 0.5; ``r = 1`` is the Lasso.
    """

    allowed_solvers = _PROX_ONLY
    default_solver = "ProximalGradient"

    def hyperparameters(self, strength, coef_shape, dtype):
        """``{"strength": s, "ratio": r}``, both broadcast to the coefficients."""
        if isinstance(strength, tuple):
            if len(strength) != 2:
                raise TypeError(
                    "ElasticNet regularizer strength must be a tuple (strength, ratio)."
                )
            strength, ratio = strength
        else:
            ratio = 0.5
        ratio_arr = _elementwise_strength(ratio, coef_shape, dtype, name="ElasticNet ratio")
        if np.any((np.asarray(ratio_arr) <= 0) | (np.asarray(ratio_arr) > 1)):
            raise ValueError(f"ElasticNet regularization ratio must be in (0, 1], got {ratio}.")
        return {"strength": _elementwise_strength(strength, coef_shape, dtype), "ratio": ratio_arr}


class GroupLasso(Regularizer):
    """Group Lasso ``Σ_g s_g √p_g ‖w_g‖₂``: whole groups of coefficients shrink to zero together.

    Parameters
    ----------
    mask : array-like of 0/1, optional
        Group membership. Shape ``(n_groups, n_features)``: groups of
        features, applied to each state's (and each output's) coefficients
        separately; or ``(n_groups, n_features, [n_outputs,] n_states)``:
        groups over any coefficients (nemos' form). A dict of such arrays
        (one per key of a dict ``X``) is joined along the feature axis.
        Each coefficient belongs to at most one group. Default: one group per
        state (and output), holding all its coefficients.

    Notes
    -----
    ``regularizer_strength`` is a scalar or one value per group.
    """

    allowed_solvers = _PROX_ONLY
    default_solver = "ProximalGradient"

    def __init__(self, mask=None):
        self.mask = mask

    def __repr__(self) -> str:
        return "GroupLasso()" if self.mask is None else f"GroupLasso(mask=<{np.shape(self.mask)}>)"

    def __eq__(self, other) -> bool:
        if type(other) is not type(self):
            return False
        if self.mask is None or other.mask is None:
            return self.mask is other.mask
        return np.array_equal(np.asarray(_join_mask(self.mask)), np.asarray(_join_mask(other.mask)))

    def __hash__(self) -> int:
        return hash((type(self), None if self.mask is None else np.shape(_join_mask(self.mask))))

    def hyperparameters(self, strength, coef_shape, dtype):
        """``{"strength": (n_groups,), "mask": mask, "sizes": (n_groups,)}``.

        Raises
        ------
        ValueError
            For a mask that is empty, not 0/1, assigns a coefficient to two
            groups or does not match the coefficients, or a strength that is
            neither a scalar nor one value per group.
        """
        if self.mask is None:
            mask = np.ones((1, coef_shape[0]))
        else:
            mask = np.asarray(_join_mask(self.mask), float)
        if mask.size == 0 or mask.shape[0] == 0:
            raise ValueError("Empty mask provided!")
        if not np.all((mask == 0) | (mask == 1)):
            raise ValueError("Mask elements must be 0s and 1s!")
        if mask.sum() == 0:
            raise ValueError("Empty mask provided!")
        if mask.ndim == 2:
            if mask.shape[1] != coef_shape[0]:
                raise ValueError(
                    f"GroupLasso mask shape mismatch: a mask of shape (n_groups, n_features) needs "
                    f"n_features = {coef_shape[0]}, got shape {mask.shape}."
                )
        elif mask.shape[1:] != tuple(coef_shape):
            raise ValueError(
                "GroupLasso mask shape mismatch: the mask must have shape (n_groups, n_features) "
                f"or (n_groups, *coef.shape) = (n_groups, {', '.join(map(str, coef_shape))}), "
                f"got {mask.shape}."
            )
        if np.any(mask.sum(axis=0) > 1):
            raise ValueError(
                "Incorrect group assignment. Some of the features are assigned to more than one "
                "group."
            )
        n_groups = mask.shape[0]
        strength = 1.0 if strength is None else strength
        try:
            s = np.asarray(strength, float)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"Could not convert regularizer strength to floats: {strength!r}"
            ) from exc
        if s.ndim == 0:
            s = np.full(n_groups, float(s))
        elif s.shape != (n_groups,):
            raise ValueError(
                f"GroupLasso strength must be a scalar or shape ({n_groups},), got shape {s.shape}."
            )
        if np.any(s < 0) or not np.all(np.isfinite(s)):
            raise ValueError(
                f"regularizer_strength must be finite and non-negative, got {strength!r}."
            )
        sizes = mask.reshape(n_groups, -1).sum(axis=1)
        return {
            "strength": jnp.asarray(s, dtype),
            "mask": jnp.asarray(mask, dtype),
            "sizes": jnp.asarray(sizes, dtype),
        }


#: Regularizer classes by name.
REGULARIZERS: dict[str, type[Regularizer]] = {
    cls.__name__: cls for cls in (UnRegularized, Ridge, Lasso, ElasticNet, GroupLasso)
}


def get_regularizer(regularizer) -> Regularizer:
    """An instance from a name (``"Ridge"``) or an instance.

    Raises
    ------
    TypeError
        If ``regularizer`` is neither a known name nor a ``Regularizer``.
    ValueError
        For an unknown name.
    """
    if isinstance(regularizer, Regularizer):
        return regularizer
    if isinstance(regularizer, str):
        if regularizer not in REGULARIZERS:
            raise ValueError(
                f"Unknown regularizer {regularizer!r}; choose one of {sorted(REGULARIZERS)}."
            )
        return REGULARIZERS[regularizer]()
    # duck-typing for nemos regularizer instances (same class names)
    name = type(regularizer).__name__
    if name in REGULARIZERS and hasattr(regularizer, "allowed_solvers"):
        return (
            REGULARIZERS[name](mask=getattr(regularizer, "mask", None))
            if name == "GroupLasso"
            else REGULARIZERS[name]()
        )
    raise TypeError(
        f"The regularizer should be either a string from {sorted(REGULARIZERS)} or an instance of "
        f"`behavhmm.fitting.regularizers.Regularizer`, got {type(regularizer).__name__}."
    )


def _join_mask(mask):
    """A mask given per key of a dict X, joined along the feature axis (axis 1)."""
    if isinstance(mask, dict):
        return np.concatenate([np.asarray(mask[k], float) for k in sorted(mask)], axis=1)
    return mask


def _elementwise_strength(strength, coef_shape, dtype, name: str = "regularizer_strength"):
    strength = 1.0 if strength is None else strength
    try:
        arr = np.asarray(strength, float)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"Could not convert {name} to floats: {strength!r}") from exc
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(f"{name} must be finite and non-negative, got {strength!r}.")
    if arr.ndim:
        try:
            np.broadcast_shapes(arr.shape, tuple(coef_shape))
        except ValueError:
            raise ValueError(
                f"{name} of shape {arr.shape} does not broadcast to the coefficients' shape "
                f"{tuple(coef_shape)}."
            ) from None
    return jnp.asarray(arr, dtype)


# ----------------------------------------------------------------------------
# penalties and proximal operators (pure JAX, looked up by name)
# ----------------------------------------------------------------------------


def _group_norms(coef, mask):
    """Per-group L2 norms: (n_groups, [n_outputs,] n_states) for a feature mask, (n_groups,) for a
    full one."""
    sq = coef * coef
    if mask.ndim == 2:
        return jnp.sqrt(jnp.tensordot(mask, sq, axes=(1, 0)))
    return jnp.sqrt(jnp.sum(mask * sq[None], axis=tuple(range(1, mask.ndim))))


def _group_factor(strength, sizes, mask, coef):
    """Broadcast ``s_g √p_g`` against the group norms."""
    weight = strength * jnp.sqrt(sizes)
    if mask.ndim == 2:
        return weight.reshape((-1,) + (1,) * (coef.ndim - 1))
    return weight


def regularizer_penalty(name: str, coef, hyper) -> jnp.ndarray:
    """The penalty ``P(W)`` of the regularizer called ``name`` (see the module table)."""
    if name == "UnRegularized":
        return jnp.zeros((), coef.dtype)
    if name == "Ridge":
        return 0.5 * jnp.sum(hyper["strength"] * coef * coef)
    if name == "Lasso":
        return jnp.sum(hyper["strength"] * jnp.abs(coef))
    if name == "ElasticNet":
        s, r = hyper["strength"], hyper["ratio"]
        return jnp.sum(s * (0.5 * (1.0 - r) * coef * coef + r * jnp.abs(coef)))
    if name == "GroupLasso":
        norms = _group_norms(coef, hyper["mask"])
        return jnp.sum(
            _group_factor(hyper["strength"], hyper["sizes"], hyper["mask"], coef) * norms
        )
    raise ValueError(f"Unknown regularizer {name!r}.")  # pragma: no cover


def regularizer_prox(name: str, coef, hyper, scaling=1.0):
    """Proximal operator ``argmin_w P(w) scaling + ½‖w - coef‖²`` of the penalty called ``name``."""
    if name == "UnRegularized":
        return coef
    if name == "Ridge":
        return coef / (1.0 + scaling * hyper["strength"])
    if name == "Lasso":
        return jnp.sign(coef) * jnp.maximum(jnp.abs(coef) - scaling * hyper["strength"], 0.0)
    if name == "ElasticNet":
        s, r = hyper["strength"], hyper["ratio"]
        soft = jnp.sign(coef) * jnp.maximum(jnp.abs(coef) - scaling * s * r, 0.0)
        return soft / (1.0 + scaling * s * (1.0 - r))
    if name == "GroupLasso":
        mask = hyper["mask"]
        norms = _group_norms(coef, mask)
        thresh = scaling * _group_factor(hyper["strength"], hyper["sizes"], mask, coef)
        shrink = jnp.maximum(1.0 - thresh / jnp.where(norms > 0, norms, 1.0), 0.0)
        shrink = jnp.where(norms > 0, shrink, 0.0)
        if mask.ndim == 2:
            # per-coefficient factor: the shrink of the feature's group, 1 for ungrouped features
            factor = jnp.tensordot(mask, shrink, axes=(0, 0))  # (n_features, ...)
            grouped = jnp.sum(mask, axis=0).reshape((-1,) + (1,) * (coef.ndim - 1))
        else:
            factor = jnp.tensordot(shrink, mask, axes=(0, 0))
            grouped = jnp.sum(mask, axis=0)
        return coef * jnp.where(grouped > 0, factor, 1.0)
    raise ValueError(f"Unknown regularizer {name!r}.")  # pragma: no cover
