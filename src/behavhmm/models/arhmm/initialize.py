"""Built-in initializers of ARHMM's emission parameters and its initialisation step.

``kmeans_ar_params``, ``random_ar_params`` and ``labels_ar_params`` label frames (k-means,
random segments or hand labels completed by k-means) and fit a MAP regression per state;
``ARInitialization._initial_params`` calls the ``setup()`` slots and checks their output.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np

from ..._precision import pinned_jit
from ..._utils import float_dtype
from ...labels import complete_labels
from ...observations import MNIWPrior
from ...observations.ar_conditioned import ar_map_update
from ...sessions import session_bounds
from .._initializers import (
    kmeans_labels,
    random_segment_labels,
    seed_from_key,
)
from ..base import (
    check_initializer_output,
)
from .model import (
    ARHMMParams,
)


def lagged_design(X: np.ndarray, session_starts: np.ndarray, nlags: int):
    """Split sessions into emitted frames and their lags.

    Parameters
    ----------
    X : ndarray of shape (n_time_bins, n_features)
        Frames, NaN-free.
    session_starts : ndarray of bool, shape (n_time_bins,)
        Session starts.
    nlags : int
        Number of lags; the first ``nlags`` frames of each session only
        condition the model.

    Returns
    -------
    y : ndarray of shape (n_frames, n_features)
        Emitted frames.
    x : ndarray of shape (n_frames, nlags * n_features)
        ``[y_{t-1}, ..., y_{t-nlags}]`` for each emitted frame (newest first).
    rows : ndarray of int, shape (n_frames,)
        Row of each emitted frame in ``X``.
    starts : ndarray of bool, shape (n_frames,)
        First emitted frame of each session.

    Raises
    ------
    ValueError
        If a session has ``nlags`` frames or fewer.
    """
    n_time_bins = X.shape[0]
    if n_time_bins <= nlags:
        raise ValueError(
            f"X has n_samples={n_time_bins} frame(s); an ARHMM with nlags={nlags} needs at least "
            f"{nlags + 1} frames per session (the first {nlags} only condition the model)."
        )
    begin, end = session_bounds(session_starts)
    lengths = end - begin
    short = lengths <= nlags
    if np.any(short):
        i = int(np.flatnonzero(short)[0])
        raise ValueError(
            f"Session {i} (time bins {begin[i]}-{end[i] - 1}) has {lengths[i]} frame(s); an ARHMM "
            f"with nlags={nlags} needs at least {nlags + 1} frames per session (the first "
            f"{nlags} only condition the model). Drop or merge short sessions, or lower nlags."
        )
    sid = np.cumsum(np.asarray(session_starts, bool)) - 1 if n_time_bins else np.zeros(0, int)
    position = np.arange(n_time_bins) - begin[sid]
    rows = np.flatnonzero(position >= nlags)
    y = X[rows]
    x = (
        np.concatenate([X[rows - lag] for lag in range(1, nlags + 1)], axis=1)
        if nlags
        else np.zeros((len(rows), 0), X.dtype)
    )
    starts = position[rows] == nlags
    return y, x, rows, starts


@pinned_jit
def _regress_on_weights(weights, y, x, prior: MNIWPrior):
    return ar_map_update(weights, y, x, prior)  # float32-stable (issue 14)


def _regress_on_labels(labels, n_states, y, x, prior):
    dtype = float_dtype()
    weights = jax.nn.one_hot(jnp.asarray(labels), n_states, dtype=dtype)
    coef, intercept, covariances = _regress_on_weights(
        weights,
        jnp.asarray(y, dtype),
        jnp.asarray(x, dtype),
        jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), prior),
    )
    return np.asarray(coef), np.asarray(intercept), np.asarray(covariances)


def kmeans_ar_params(
    n_states, X, session_starts, random_key, *, nlags, prior, max_frames=20000, **kwargs
):
    """Cluster frames with their lags by k-means, then fit each cluster's AR model.

    Each frame is described by ``[y_t, y_{t-1}, ..., y_{t-nlags}]`` (columns
    z-scored); scikit-learn's ``KMeans`` (one initialisation, on at most
    ``max_frames`` random frames) groups them into ``n_states`` clusters and
    every cluster's coefficients and covariance are the MNIW posterior mode.

    Returns
    -------
    coef, intercept, covariances : ndarrays
        Shapes (n_states, n_features, nlags * n_features), (n_states,
        n_features) and (n_states, n_features, n_features).

    Raises
    ------
    ValueError
        If there are fewer emitted frames than states.
    """
    y, x, _, _ = lagged_design(np.asarray(X, float), session_starts, nlags)
    if len(y) < n_states:
        raise ValueError(
            f"k-means initialisation needs at least n_states={n_states} frames, got {len(y)}."
        )
    labels = kmeans_labels(np.concatenate([y, x], axis=1), n_states, random_key, max_frames)
    return _regress_on_labels(labels, n_states, y, x, prior)


def random_ar_params(
    n_states, X, session_starts, random_key, *, nlags, prior, segment_length=10, **kwargs
):
    """Label consecutive segments of ``segment_length`` frames with random states, then fit.

    Returns
    -------
    coef, intercept, covariances : ndarrays
        As [`kmeans_ar_params`][behavhmm.models.arhmm.initialize.kmeans_ar_params].
    """
    y, x, _, _ = lagged_design(np.asarray(X, float), session_starts, nlags)
    labels = random_segment_labels(len(y), n_states, random_key, segment_length)
    return _regress_on_labels(labels, n_states, y, x, prior)


def labels_ar_params(
    n_states, X, session_starts, random_key, *, nlags, prior, labels=None, **kwargs
):
    """Each labelled class's AR model from its frames; free states from seeded k-means.

    Frames ``[y_t, y_{t-1}, ..., y_{t-nlags}]`` get a state by
    [`behavhmm.labels.complete_labels`][behavhmm.labels.complete_labels] (``labels``
    are on the frames of ``X``; those of a session's first ``nlags`` frames are
    unused), then each state's MNIW posterior mode is fitted as in
    [`kmeans_ar_params`][behavhmm.models.arhmm.initialize.kmeans_ar_params].
    ``setup(ar_params_init="labels")``, the default when ``fit`` has labels.

    Raises
    ------
    ValueError
        If no labels were passed.
    """
    if labels is None:
        raise ValueError('ar_params_init="labels" needs labels: call fit(..., labels=...).')
    y, x, rows, _ = lagged_design(np.asarray(X, float), session_starts, nlags)
    features = np.concatenate([y, x], axis=1)
    states = complete_labels(
        features, np.asarray(labels)[rows], n_states, seed_from_key(random_key)
    )
    return _regress_on_labels(states, n_states, y, x, prior)


AR_PARAMS_REGISTRY = {
    "kmeans": kmeans_ar_params,
    "random": random_ar_params,
    "labels": labels_ar_params,
}


INITIAL_DOF = 10.0  # starting degrees of freedom of robust (Student-t) fits


class ARInitialization:
    """ARHMM's initialisation step: the ``setup()`` slots, called and checked."""

    def _initial_params(self, kept, starts_kept, prior, n_groups, key, labels=None) -> ARHMMParams:
        n_states, n_features = self.n_states, kept.shape[1]
        keys = jax.random.split(key, 3)
        pi, trans = self._initial_chain(kept, starts_kept, keys[:2], labels=labels)
        coef, intercept, cov = self._emission_init(
            "ar_params_init",
            kept,
            starts_kept,
            keys[2],
            3,
            labels=labels,
            nlags=self.nlags,
            prior=prior,
        )
        check_initializer_output(
            {
                "ar_params_init coef": (coef, (n_states, n_features, self.nlags * n_features)),
                "ar_params_init intercept": (intercept, (n_states, n_features)),
                "ar_params_init covariances": (cov, (n_states, n_features, n_features)),
            },
            self._scale_hint(kept),
        )
        vals = np.linalg.eigvalsh(cov)
        bad = vals.min(axis=-1) <= 0
        if (
            bad.any()
        ):  # float32 cancellation in the regression: say why (the Gibbs sampler redraws them)
            warnings.warn(
                f"ar_params_init gave {int(bad.sum())} covariance matrices that are not positive "
                "definite."
                f"{self._scale_hint(kept)}",
                RuntimeWarning,
                stacklevel=5,
            )
        dtype = float_dtype()
        trans3 = np.broadcast_to(trans, (n_groups, n_states, n_states))
        dof = np.full(n_states, INITIAL_DOF if self.robust else np.inf)
        return ARHMMParams(
            *(jnp.asarray(a, dtype) for a in (pi, trans3, coef, intercept, cov, dof))
        )
