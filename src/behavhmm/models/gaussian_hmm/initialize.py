"""Built-in initializers of the Gaussian emissions (``setup(gaussian_params_init=...)``).

Each labels the frames with states (k-means clusters or random segments) and
returns the MAP means and covariances of every label's frames under the
model's prior, in the shape of the model's ``covariance_type``.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ..._utils import float_dtype
from ...labels import complete_labels
from ...observations.gaussian import GaussianPrior, gaussian_map, gaussian_sufficient_statistics
from .._initializers import kmeans_labels, random_segment_labels, seed_from_key

__all__ = [
    "kmeans_gaussian_params",
    "random_gaussian_params",
    "labels_gaussian_params",
    "GAUSSIAN_PARAMS_REGISTRY",
    "pooled_covariances",
]


def pooled_covariances(
    X: np.ndarray, n_states: int, covariance_type: str, min_covar: float
) -> np.ndarray:
    """The covariance of all frames, shaped for ``covariance_type`` (floored at ``min_covar``)."""
    n_features = X.shape[1]
    cov = np.atleast_2d(np.cov(X, rowvar=False)) if len(X) > 1 else np.eye(n_features)
    cov = cov + min_covar * np.eye(n_features)
    if covariance_type == "full":
        return np.broadcast_to(cov, (n_states, n_features, n_features)).copy()
    if covariance_type == "tied":
        return cov
    if covariance_type == "diag":
        return np.broadcast_to(np.diag(cov), (n_states, n_features)).copy()
    return np.full(n_states, np.mean(np.diag(cov)))


@partial(jax.jit, static_argnames=("n_states", "covariance_type"))
def _fit_on_labels(
    labels, X, centers, fallback, prior: GaussianPrior, n_states: int, covariance_type: str
):
    weights = jax.nn.one_hot(labels, n_states, dtype=X.dtype)
    stats = gaussian_sufficient_statistics(weights, X, centers, covariance_type)
    return gaussian_map(stats, centers, prior, covariance_type, fallback)


def _params_from_labels(labels, n_states, X, covariance_type, prior):
    dtype = float_dtype()
    X = np.asarray(X, float)
    centers = np.broadcast_to(X.mean(axis=0), (n_states, X.shape[1]))
    fallback = pooled_covariances(X, n_states, covariance_type, float(prior.min_covar))
    with jax.default_matmul_precision("highest"):
        means, covariances = _fit_on_labels(
            jnp.asarray(labels),
            jnp.asarray(X, dtype),
            jnp.asarray(centers, dtype),
            jnp.asarray(fallback, dtype),
            jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), prior),
            n_states,
            covariance_type,
        )
    return np.asarray(means, float), np.asarray(covariances, float)


def kmeans_gaussian_params(
    n_states, X, session_starts, random_key, *, covariance_type, prior, max_frames=20000, **kwargs
):
    """Cluster the frames by k-means, then take each cluster's MAP mean and covariance.

    scikit-learn's ``KMeans`` (one initialisation, z-scored columns, fitted on
    at most ``max_frames`` random frames) labels every frame; each cluster's
    mean and covariance are the posterior mode under ``prior`` (as in hmmlearn,
    which also starts from k-means means).

    Returns
    -------
    means : ndarray of shape (n_states, n_features)
    covariances : ndarray in the shape of ``covariance_type``

    Raises
    ------
    ValueError
        If there are fewer frames than states.
    """
    X = np.asarray(X, float)
    if len(X) < n_states:
        raise ValueError(
            f"k-means initialisation needs at least n_states={n_states} frames, got {len(X)}."
        )
    labels = kmeans_labels(X, n_states, random_key, max_frames)
    return _params_from_labels(labels, n_states, X, covariance_type, prior)


def random_gaussian_params(
    n_states, X, session_starts, random_key, *, covariance_type, prior, segment_length=10, **kwargs
):
    """Label consecutive segments of ``segment_length`` frames with random states, then fit.

    Returns
    -------
    means, covariances : ndarrays
        As
        [`kmeans_gaussian_params`][behavhmm.models.gaussian_hmm.initialize.kmeans_gaussian_params].
    """
    labels = random_segment_labels(len(X), n_states, random_key, segment_length)
    return _params_from_labels(labels, n_states, X, covariance_type, prior)


def labels_gaussian_params(
    n_states, X, session_starts, random_key, *, covariance_type, prior, labels=None, **kwargs
):
    """Each labelled class's MAP mean and covariance from its frames; free states from k-means.

    Every frame gets a state by [`behavhmm.labels.complete_labels`][behavhmm.labels.complete_labels]
    (its hand label, or its k-means cluster matched to the classes, the unmatched
    clusters being the free states); each state's mean and covariance are then the
    posterior mode under ``prior``, as in
    [`kmeans_gaussian_params`][behavhmm.models.gaussian_hmm.initialize.kmeans_gaussian_params].
    Used as ``setup(gaussian_params_init="labels")`` with ``fit(..., labels=...)``.

    Raises
    ------
    ValueError
        If no labels were passed.
    """
    if labels is None:
        raise ValueError('gaussian_params_init="labels" needs labels: call fit(..., labels=...).')
    X = np.asarray(X, float)
    states = complete_labels(X, labels, n_states, seed_from_key(random_key))
    return _params_from_labels(states, n_states, X, covariance_type, prior)


GAUSSIAN_PARAMS_REGISTRY = {
    "kmeans": kmeans_gaussian_params,
    "random": random_gaussian_params,
    "labels": labels_gaussian_params,
}
