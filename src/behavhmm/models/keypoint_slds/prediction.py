"""KeypointSLDS's prediction methods: the deterministic decoding (``_prediction`` hook), the
public ``decode``, ``score``, ``smooth_proba``, ``filter_proba``, ``decode_state``,
``predict`` and ``simulate``, and their result types.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.utils import check_scalar

from ..._utils import float_dtype
from ..arhmm.model import (
    simulate_program,
)
from ..base import (
    Prediction,
    PreparedData,
)
from .gibbs import (
    ar_data,
    decode_program,
    simulate_poses_program,
)


class _Decoded(NamedTuple):
    """The deterministic decoding behind KeypointSLDS's predictions (padded time axis)."""

    latents: jax.Array
    heading: jax.Array
    centroid: jax.Array
    states: jax.Array


class KeypointSLDSPrediction:
    """KeypointSLDS's decoding hook, public prediction methods and ``simulate``."""

    # -------------------------------------------------------------- decode
    def _prediction(self, X, confidence, session_starts) -> Prediction:
        """Deterministic decoding of the latents; the AR-HMM hooks then run on them."""
        params = self._validated_params()
        coords, observed, conf, mask, info = self._read(
            X, confidence, session_starts, fitting=False
        )
        n_time_bins, _, n_dims = coords.shape
        scale = float(np.asarray(self.scale_))
        offset = np.array([coords[..., i][observed].mean() for i in range(n_dims)])
        y = np.where(observed[..., None], (coords - offset) / scale, 0.0)
        centroid, heading = self._align(y, observed, mask)
        data = self._to_device(y, observed, conf, mask)
        n = data.y.shape[0]
        pad = n - n_time_bins
        dtype = float_dtype()
        weights = np.asarray(
            getattr(self, "beta_", np.full(self.n_states, 1.0 / self.n_states)), float
        )
        latents, heading, centroid, states, kp_ll = decode_program(
            params,
            jnp.asarray(weights, dtype),
            jnp.asarray(self.noise_variance_, dtype),
            data,
            self._hyper(self._prior()),
            jnp.asarray(np.pad(heading, (0, pad)), dtype),
            jnp.asarray(np.pad(centroid, ((0, pad), (0, 0))), dtype),
            self._method(),
            self.block_size,
            int(self.n_decode_rounds),
        )
        prepared = PreparedData(
            arrays={"ar": ar_data(latents, data, self.nlags)},
            session_starts=data.starts,
            weights=data.valid,
            rows=np.arange(n_time_bins),
            n_time_bins=n_time_bins,
            info=info,
            extra={"kp_ll": float(kp_ll)},
        )
        conditioning = np.asarray(data.position)[:n_time_bins] < self.nlags
        decoded = _Decoded(latents, heading, centroid * scale + jnp.asarray(offset, dtype), states)
        return Prediction(
            params,
            prepared,
            self.n_states,
            log_lik_offset=float(kp_ll),
            blank=conditioning,
            context=decoded,
        )

    def _viterbi(self, pred: Prediction):
        """The Viterbi states of the decoding (no second pass)."""
        return pred.context.states

    def decode(
        self, X, confidence=None, session_starts=None, *, smoothed_proba: bool = False
    ) -> KeypointDecoding:
        """Latent pose, heading, centroid and Viterbi states of keypoints, deterministically.

        Parameters
        ----------
        X : array-like of shape (n_time_bins, n_keypoints, n_dims)
            Keypoints, as in [`fit`][behavhmm.KeypointSLDS.fit].
        confidence : array-like of shape (n_time_bins, n_keypoints), optional
        session_starts : array-like or pynapple IntervalSet, optional
        smoothed_proba : bool, default False
            Also return the smoothed state probabilities (what `smooth_proba`
            gives), from the same decoding instead of decoding again.

        Returns
        -------
        KeypointDecoding

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit``.
        ValueError
            For invalid input (see [`fit`][behavhmm.KeypointSLDS.fit]) or a
            different number of keypoints or dimensions than in ``fit``.
        """
        pred = self._prediction(X, confidence, session_starts)
        t, decoded = pred.data.n_time_bins, pred.context
        probs = None
        if smoothed_proba:  # the smoother's pass yields the log-likelihood too
            post = self._smooth(pred)
            hmm_ll = post.log_likelihood
            probs = self._merged_probs(self._blanked(post.smoothed_probs, pred, np.nan))
        else:
            _, hmm_ll = self._filter(pred)
        states = self._merged_states(self._blanked(decoded.states, pred, -1).astype(np.int32))
        return KeypointDecoding(
            np.asarray(decoded.latents)[:t],
            np.asarray(decoded.heading)[:t],
            np.asarray(decoded.centroid)[:t],
            states,
            float(hmm_ll) + pred.log_lik_offset,
            probs,
        )

    def score(self, X, confidence=None, session_starts=None, y=None) -> float:
        """Log-likelihood of keypoints under the model with the decoded latent variables.

        ``log p(X | x̂, ĥ, v̂, ŝ) + log p(x̂ | θ)``: the keypoints given the
        decoded latents, heading, centroid and noise scales, plus the AR-HMM
        marginal log-likelihood (states summed out) of the decoded latents.
        In nats, in normalised units (``scale_``).

        Parameters
        ----------
        X, confidence, session_starts
            As in [`decode`][behavhmm.KeypointSLDS.decode].
        y : Ignored
            Present for scikit-learn compatibility.

        Returns
        -------
        float

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit``.
        ValueError
            For invalid input.
        """
        return self._score_of(X, confidence, session_starts)

    def smooth_proba(self, X, confidence=None, session_starts=None):
        """Posterior state probabilities given the decoded latents of each session.

        Parameters
        ----------
        X, confidence, session_starts
            As in [`decode`][behavhmm.KeypointSLDS.decode].

        Returns
        -------
        ndarray of shape (n_time_bins, n_states) or pynapple TsdFrame
            Rows sum to 1; NaN for the first ``nlags`` frames of each session.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit``.
        ValueError
            For invalid input.
        """
        return self._smooth_of(X, confidence, session_starts)

    def filter_proba(self, X, confidence=None, session_starts=None):
        """Causal state probabilities given the decoded latents (forward filter).

        The latents themselves are smoothed over the session; only the state
        inference is causal.

        Parameters
        ----------
        X, confidence, session_starts
            As in [`decode`][behavhmm.KeypointSLDS.decode].

        Returns
        -------
        ndarray of shape (n_time_bins, n_states) or pynapple TsdFrame

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit``.
        ValueError
            For invalid input.
        """
        return self._filter_of(X, confidence, session_starts)

    def decode_state(self, X, confidence=None, session_starts=None, state_format: str = "one-hot"):
        """Viterbi syllables of keypoints (deterministic decoding, see the class notes).

        Parameters
        ----------
        X, confidence, session_starts
            As in [`decode`][behavhmm.KeypointSLDS.decode].
        state_format : {"one-hot", "index"}, default "one-hot"
            ``"index"``: int32 of shape (n_time_bins,), -1 for the first
            ``nlags`` frames of each session; ``"one-hot"``: (n_time_bins, n_states).

        Returns
        -------
        ndarray or pynapple Tsd / TsdFrame

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit``.
        ValueError
            For invalid input or ``state_format``.
        """
        return self._decode_of(X, confidence, session_starts, state_format=state_format)

    def predict(self, X, confidence=None, session_starts=None):
        """Viterbi state indices; ``decode_state(X, state_format="index")``.

        Parameters
        ----------
        X, confidence, session_starts
            As in [`decode`][behavhmm.KeypointSLDS.decode].

        Returns
        -------
        ndarray of int32, shape (n_time_bins,)
        """
        return self.decode_state(
            X, confidence=confidence, session_starts=session_starts, state_format="index"
        )

    # ------------------------------------------------------------ simulate
    def simulate(
        self, random_key, n_time_bins: int, session_starts=None, heading_step: float = 0.05
    ) -> KeypointSimulation:
        """Draw keypoints, latents and states from the model.

        The AR-HMM draws states and latents (the first ``nlags`` latents of a
        session are 0); the heading follows a Gaussian random walk with step
        ``heading_step`` radians from a uniform start (the model's prior on the
        heading is uniform per frame, which gives no smooth motion), the
        centroid a random walk with ``centroid_variance_`` from 0; the noise
        scales are drawn from their prior at confidence 1.

        Parameters
        ----------
        random_key : jax.random key or int
        n_time_bins : int
        session_starts : array-like, optional
            Boolean mask or start indices (default: one session).
        heading_step : float, default 0.05
            Standard deviation of the heading's frame-to-frame change (radians).

        Returns
        -------
        KeypointSimulation
            ``(keypoints, latents, states, heading, centroid)``; keypoints and
            centroid in the data's units (``scale_``), centred on 0.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit``.
        TypeError
            If ``random_key`` is not a key or int.
        ValueError
            For invalid ``n_time_bins`` or ``session_starts``.
        """
        params, key, mask = self._simulation_start(random_key, n_time_bins, session_starts)
        check_scalar(heading_step, "heading_step", numbers.Real, min_val=0)
        k_ar, k_pose = jax.random.split(key)
        dtype = float_dtype()
        d = params.coef.shape[1]
        latents, states = simulate_program(
            k_ar,
            params,
            jnp.asarray(mask),
            jnp.zeros(int(n_time_bins), jnp.int32),
            jnp.zeros((self.nlags, d), dtype),
            int(self.nlags),
            False,
        )
        hyper = self._hyper(self._prior())
        kp, heading, centroid = simulate_poses_program(
            k_pose,
            latents,
            jnp.asarray(heading_step, dtype),
            jnp.asarray(float(np.asarray(self.centroid_variance_)), dtype),
            jnp.asarray(self.noise_variance_, dtype),
            jnp.asarray(self.noise_prior_scale, dtype),
            jnp.asarray(self.noise_dof, dtype),
            jnp.asarray(mask),
            hyper,
            int(self.nlags),
        )
        scale = float(np.asarray(self.scale_))
        return KeypointSimulation(
            np.asarray(kp) * scale,
            np.asarray(latents),
            np.asarray(states),
            np.asarray(heading),
            np.asarray(centroid) * scale,
        )


class KeypointDecoding(NamedTuple):
    """Deterministic decoding of keypoints by [`KeypointSLDS.decode`][behavhmm.KeypointSLDS.decode].

    Attributes
    ----------
    latents : ndarray of shape (n_time_bins, latent_dim)
        Smoothed latent pose (PC scores in units of ``scale_``).
    heading : ndarray of shape (n_time_bins,)
        Heading in radians, (-π, π], counter-clockwise from +x (the
        convention of [`egocentric_align`][behavhmm.preprocessing.egocentric_align]).
    centroid : ndarray of shape (n_time_bins, n_dims)
        Centroid in the keypoints' units.
    states : ndarray of int32, shape (n_time_bins,)
        Viterbi states; -1 for the first ``nlags`` frames of each session.
    log_likelihood : float
        ``log p(X | decoded latents, heading, centroid, noise) + log p(latents | θ)``
        (states marginalised), in nats, in normalised units.
    smoothed_probs : ndarray of shape (n_time_bins, n_states) or None
        ``p(z_t | decoded latents of the session)``, NaN rows for the first
        ``nlags`` frames; only with ``decode(..., smoothed_proba=True)``.
    """

    latents: np.ndarray
    heading: np.ndarray
    centroid: np.ndarray
    states: np.ndarray
    log_likelihood: float
    smoothed_probs: np.ndarray | None = None


class KeypointSimulation(NamedTuple):
    """Output of [`KeypointSLDS.simulate`][behavhmm.KeypointSLDS.simulate].

    Attributes
    ----------
    keypoints : ndarray of shape (n_time_bins, n_keypoints, n_dims)
    latents : ndarray of shape (n_time_bins, latent_dim)
    states : ndarray of int32, shape (n_time_bins,)
        -1 for the first ``nlags`` frames of each session.
    heading : ndarray of shape (n_time_bins,)
    centroid : ndarray of shape (n_time_bins, n_dims)
    """

    keypoints: np.ndarray
    latents: np.ndarray
    states: np.ndarray
    heading: np.ndarray
    centroid: np.ndarray
