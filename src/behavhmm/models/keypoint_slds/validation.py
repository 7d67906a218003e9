"""KeypointSLDS's checks: cross-argument hyperparameter rules, the fitted arrays
(``_validated_params``), and the hyperparameters as the sweeps' ``KPHyper``.
"""

from __future__ import annotations

import numbers

import jax.numpy as jnp
import numpy as np
from sklearn.utils import check_scalar

from ..._utils import float_dtype
from ...inference import LinearEmission
from ...observations import default_mniw_prior
from ..arhmm.model import (
    ARHMMParams,
    Hyper,
)
from .gibbs import (
    KPHyper,
)
from .initialize import INIT_FRAMES as INIT_FRAMES
from .prediction import KeypointDecoding as KeypointDecoding
from .prediction import KeypointSimulation as KeypointSimulation


class SLDSValidation:
    """KeypointSLDS's checks of hyperparameters and fitted arrays."""

    def _check_hyperparameter_rules(self):
        if self.checkpoint_every is not None and self.checkpoint_path is None:
            raise ValueError("checkpoint_every needs checkpoint_path.")

    def _saved_attributes(self):
        return (
            "initial_prob_",
            "transition_prob_",
            "coef_",
            "intercept_",
            "covariances_",
            "beta_",
            "noise_variance_",
            "pca_components_",
            "pca_mean_",
            "pca_explained_variance_",
            "scale_",
            "centroid_variance_",
            "latent_variance_",
            "n_keypoints_",
            "n_dims_",
            "log_likelihood_history_",
            "ar_log_likelihood_history_",
            "median_duration_history_",
            "check_iterations_",
        )

    def _required_attributes(self):
        return (
            "initial_prob_",
            "transition_prob_",
            "coef_",
            "intercept_",
            "covariances_",
            "noise_variance_",
            "pca_components_",
            "pca_mean_",
            "scale_",
            "centroid_variance_",
            "latent_variance_",
        )

    def _validated_params(self) -> ARHMMParams:
        """AR-HMM parameters as JAX arrays, after checking every fitted array."""
        self._check_fitted()
        check_scalar(self.nlags, "nlags", numbers.Integral, min_val=1)
        pi = np.asarray(self.initial_prob_, float)
        n_states = pi.shape[0] if pi.ndim == 1 else -1
        if n_states != self.n_states:
            raise ValueError(f"initial_prob_ must have shape ({self.n_states},), got {pi.shape}.")
        comps = np.asarray(self.pca_components_, float)
        if comps.ndim != 2:
            raise ValueError(
                "pca_components_ must have shape (latent_dim, n_keypoints * n_dims), got "
                f"{comps.shape}."
            )
        d = comps.shape[0]
        n_kp = int(np.shape(self.noise_variance_)[0]) if np.ndim(self.noise_variance_) == 1 else -1
        if n_kp < 2 or comps.shape[1] % n_kp or comps.shape[1] // n_kp not in (2, 3):
            raise ValueError(
                f"noise_variance_ (shape {np.shape(self.noise_variance_)}) and pca_components_ "
                f"(shape {comps.shape}) "
                "must describe n_keypoints >= 2 keypoints of 2 or 3 dimensions."
            )
        expected = {
            "transition_prob_": (n_states, n_states),
            "coef_": (n_states, d, self.nlags * d),
            "intercept_": (n_states, d),
            "covariances_": (n_states, d, d),
            "pca_mean_": (comps.shape[1],),
            "latent_variance_": (d,),
        }
        for name, shape in expected.items():
            arr = np.asarray(getattr(self, name), float)
            if arr.shape != shape:
                raise ValueError(
                    f"{name} must have shape {shape} (n_states={n_states}, nlags={self.nlags}), "
                    f"got {arr.shape}."
                )
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"{name} must be finite.")
        trans = np.asarray(self.transition_prob_, float)
        self._check_values(pi, trans)
        dtype = float_dtype()
        arrays = (
            pi,
            trans[None],
            np.asarray(self.coef_),
            np.asarray(self.intercept_),
            np.asarray(self.covariances_, float),
            np.full(n_states, np.inf),
        )
        return ARHMMParams(*(jnp.asarray(a, dtype) for a in arrays))

    def _check_values(self, pi: np.ndarray, trans: np.ndarray) -> None:
        """Probabilities, positive-definite covariances and positive scales of the fitted arrays."""
        for name, arr in (("initial_prob_", pi), ("transition_prob_", trans)):
            if (
                not np.all(np.isfinite(arr))
                or np.any(arr < 0)
                or not np.allclose(arr.sum(-1), 1.0, atol=1e-3)
            ):
                raise ValueError(
                    f"{name} must hold non-negative probabilities summing to 1 along its last axis."
                )
        cov = np.asarray(self.covariances_, float)
        try:
            np.linalg.cholesky(0.5 * (cov + np.swapaxes(cov, -1, -2)))
        except np.linalg.LinAlgError:
            raise ValueError("covariances_ must be positive definite.") from None
        for name in ("noise_variance_", "latent_variance_"):
            arr = np.asarray(getattr(self, name), float)
            if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
                raise ValueError(f"{name} must be positive and finite.")
        for name in ("scale_", "centroid_variance_"):
            value = float(np.asarray(getattr(self, name)))
            if not np.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a positive finite number, got {value}.")

    def _hyper(self, prior, kappa=None) -> KPHyper:
        dtype = float_dtype()
        f = lambda v: jnp.asarray(v, dtype)  # noqa: E731
        ar = Hyper(f(self.alpha), f(self.kappa if kappa is None else kappa), f(self.gamma), prior)
        comps = np.asarray(self.pca_components_, float)
        return KPHyper(
            ar=ar,
            emission=LinearEmission(f(comps.T), f(self.pca_mean_)),
            latent_mean=jnp.zeros(comps.shape[0], dtype),
            latent_variance=f(self.latent_variance_),
            noise_dof=f(self.noise_dof),
            noise_prior_shape=f(self.noise_variance_prior_shape),
            noise_prior_scale=f(self.noise_variance_prior_scale),
            centroid_variance=f(np.asarray(self.centroid_variance_)),
            centroid_prior_variance=f(1e4),
        )

    def _prior(self):
        return default_mniw_prior(
            int(self.latent_dim),
            int(self.nlags),
            scale=float(self.covariance_prior_scale),
            coef_variance=float(self.coef_prior_variance),
            dtype=float_dtype(),
        )


def _keypoint_indices(name: str, value, n_keypoints: int) -> np.ndarray:
    """Indices in [0, n_keypoints) of ``value``: an int or a list of ints, negative from the end."""
    idx = np.atleast_1d(np.asarray(value))
    if (
        idx.ndim != 1
        or idx.size == 0
        or idx.dtype == bool
        or not np.issubdtype(idx.dtype, np.integer)
    ):
        raise TypeError(f"{name} must be an int or a non-empty list of ints, got {value!r}.")
    bad = idx[(idx < -n_keypoints) | (idx >= n_keypoints)]
    if bad.size:
        raise ValueError(
            f"{name}={value!r} names keypoint {int(bad[0])}, but X has {n_keypoints} keypoints "
            f"(valid indices: {-n_keypoints} to {n_keypoints - 1})."
        )
    return idx.astype(int) % n_keypoints
