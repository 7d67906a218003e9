"""ARHMM's checks: cross-argument hyperparameter rules, the MNIW prior, and hand-set or
fitted parameters (``_validated_params``).
"""

from __future__ import annotations

import numbers

import jax.numpy as jnp
import numpy as np
from sklearn.utils import check_scalar

from ..._utils import float_dtype
from ...observations import MNIWPrior, default_mniw_prior
from ..base import (
    check_probabilities,
)
from .model import (
    ARHMMParams,
)


def _check_checkpoint_params(path, params: ARHMMParams) -> None:
    """Refuse checkpointed parameters a fit cannot continue from (a damaged or edited file)."""
    damaged = f"{path} is not a readable behavhmm checkpoint"
    for name, value in params._asdict().items():  # dof is +inf for Gaussian noise
        bad = ~np.isfinite(value) if name != "dof" else ~(np.asarray(value) > 0)
        if np.any(bad):
            raise ValueError(f"{damaged}: its {name} holds invalid values.")
    try:
        check_probabilities(
            initial_prob=params.initial_prob, transition_prob=params.transition_prob
        )
    except ValueError as exc:
        raise ValueError(f"{damaged}: {exc}") from None
    try:
        np.linalg.cholesky(np.asarray(params.covariances, float))
    except np.linalg.LinAlgError:
        raise ValueError(f"{damaged}: its covariances are not positive definite.") from None


class ARValidation:
    """ARHMM's checks of hyperparameters and parameters."""

    def _check_hyperparameter_rules(self):
        if self.checkpoint_every is not None and self.checkpoint_path is None:
            raise ValueError("checkpoint_every needs checkpoint_path.")

    def _prior(self, n_features: int, y=None, x=None) -> MNIWPrior:
        if self.covariance_prior_dof is not None and self.covariance_prior_dof <= n_features - 1:
            raise ValueError(
                f"covariance_prior_dof must exceed n_features - 1 = {n_features - 1}, got "
                f"{self.covariance_prior_dof}."
            )
        prior = default_mniw_prior(
            n_features,
            self.nlags,
            scale=self.covariance_prior_scale,
            dof=self.covariance_prior_dof,
            coef_variance=self.coef_prior_variance,
            dtype=float_dtype(),
        )
        if self.covariance_prior == "empirical" and y is not None:
            resid = y - (x[:, :n_features] if self.nlags else 0.0)
            emp = (
                np.atleast_2d(np.cov(resid, rowvar=False)) if len(resid) > 1 else np.eye(n_features)
            )
            emp = emp + 1e-6 * np.trace(emp) / n_features * np.eye(n_features)
            prior = prior._replace(
                scale=jnp.asarray(self.covariance_prior_scale * emp, float_dtype())
            )
        return prior

    def _saved_attributes(self):
        return (
            "initial_prob_",
            "transition_prob_",
            "coef_",
            "intercept_",
            "covariances_",
            "dof_",
            "beta_",
            "groups_",
            "whiten_mean_",
            "whiten_matrix_",
            "kappa_",
            "log_likelihood_history_",
            "log_joint_history_",
            "heldout_log_likelihood_history_",
            "median_duration_history_",
            "check_iterations_",
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
        n_states = self._check_initial_prob(pi)
        if coef.ndim != 3 or coef.shape[0] != n_states:
            raise ValueError(
                f"coef_ must have shape (n_states, n_features, nlags * n_features) = ({n_states}, "
                "D, "
                f"{self.nlags}*D), got {coef.shape}."
            )
        n_features = coef.shape[1]
        if trans.ndim == 3:
            n_groups = trans.shape[0]
            groups = getattr(self, "groups_", None)
            if groups is None or len(groups) != n_groups:
                raise ValueError(
                    f"transition_prob_ holds {n_groups} matrices: set groups_ to their {n_groups} "
                    "group labels."
                )
            trans_shape = (n_groups, n_states, n_states)
        else:
            trans_shape = (n_states, n_states)
        expected = {
            "transition_prob_": (trans, trans_shape),
            "coef_": (coef, (n_states, n_features, self.nlags * n_features)),
            "intercept_": (intercept, (n_states, n_features)),
            "covariances_": (cov, (n_states, n_features, n_features)),
        }
        for name, (arr, shape) in expected.items():
            if arr.shape != shape:
                raise ValueError(
                    f"{name} must have shape {shape} (n_states={n_states}, nlags={self.nlags}), "
                    f"got {arr.shape}."
                )
        if hasattr(self, "n_features_in_") and self.n_features_in_ != n_features:
            raise ValueError(
                f"coef_ describes {n_features} features but n_features_in_ = {self.n_features_in_}."
            )
        check_probabilities(initial_prob_=pi, transition_prob_=trans)
        for name, arr in (("coef_", coef), ("intercept_", intercept), ("covariances_", cov)):
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"{name} must be finite.")
        if not np.allclose(cov, np.swapaxes(cov, -1, -2), rtol=1e-5, atol=1e-8):
            raise ValueError("covariances_ must be symmetric.")
        try:
            np.linalg.cholesky(cov)
        except np.linalg.LinAlgError:
            raise ValueError("covariances_ must be positive definite.") from None
        dof = self._checked_dof(n_states)
        self._check_whitening(n_features)
        dtype = float_dtype()
        trans3 = trans if trans.ndim == 3 else trans[None]
        return ARHMMParams(
            *(jnp.asarray(a, dtype) for a in (pi, trans3, coef, intercept, cov, dof))
        )

    def _checked_dof(self, n_states: int) -> np.ndarray:
        """``dof_`` checked (robust fits), or infinite degrees of freedom (Gaussian emissions)."""
        if self.robust:
            if not hasattr(self, "dof_"):
                raise ValueError(
                    "robust=True needs dof_, the Student-t degrees of freedom of each state."
                )
            dof = np.asarray(self.dof_, float)
            if dof.shape != (n_states,) or not np.all(np.isfinite(dof)) or np.any(dof <= 0):
                raise ValueError(
                    f"dof_ must hold {n_states} positive finite degrees of freedom, got {dof}."
                )
        else:
            dof = np.full(n_states, np.inf)
        return dof

    def _check_whitening(self, n_features: int) -> None:
        """With ``whiten="all"``: the fitted whitening arrays exist with the right shapes."""
        if self.whiten == "all":
            mean = getattr(self, "whiten_mean_", None)
            matrix = getattr(self, "whiten_matrix_", None)
            if mean is None or matrix is None:
                raise ValueError(
                    'whiten="all" needs whiten_mean_ and whiten_matrix_ '
                    '(set them, or use whiten="none").'
                )
            if np.shape(mean) != (n_features,) or np.shape(matrix) != (n_features, n_features):
                raise ValueError(
                    f"whiten_mean_ and whiten_matrix_ must have shapes ({n_features},) and "
                    f"({n_features}, {n_features}), got {np.shape(mean)} and {np.shape(matrix)}."
                )
