"""The first stages of a KeypointSLDS fit: normalise (``_fit_data``), the initial pose (PCA of
aligned poses, ``_initial_pose``) and the initial states (the ARHMM's ``setup()`` slots on
the latents, ``_initial_states``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..._memory import check_fit_memory, keypoint_slds_fit_memory
from ..._utils import float_dtype
from ...labels import (
    LabelEvidence,
    initializer_labels,
    label_evidence,
    padded_log_evidence,
    restrict_evidence,
)
from ...sessions import session_bounds
from ..arhmm.gibbs import GibbsState
from ..arhmm.model import (
    ARHMMParams,
)
from .gibbs import (
    SLDSState,
)


class _SLDSFitData(NamedTuple):
    """Training data of one KeypointSLDS fit after the normalising stage."""

    coords: np.ndarray  # (n_time_bins, n_keypoints, n_dims), the user's units
    observed: np.ndarray  # (n_time_bins, n_keypoints) bool
    conf: np.ndarray  # (n_time_bins, n_keypoints)
    mask: np.ndarray  # (n_time_bins,) session starts
    offset: np.ndarray  # (n_dims,) mean position subtracted
    y: np.ndarray  # normalised keypoints (0 where unobserved)
    centroid: np.ndarray  # (n_time_bins, n_dims) initial centroid
    heading: np.ndarray  # (n_time_bins,) initial heading
    key_ar: jax.Array  # the AR-only stage's and the initializers' key (split, never used itself)
    key_chain: jax.Array  # the full chain's key
    data: Any  # the keypoints on the device (padded, see ``_to_device``)
    info: Any = None  # PynappleInfo of a pynapple X
    labels: np.ndarray | None = None  # (n_time_bins,) hand labels, -1 free (``_fit_labels``)


class SLDSInitialization:
    """Stages 1-3 of KeypointSLDS.fit."""

    # ------------------------------------------------------- the fit's stages
    def _fit_data(self, X, confidence, session_starts) -> _SLDSFitData:
        """Stage 1, normalise: subtract the mean position, divide by the RMS spread of keypoints."""
        coords, observed, conf, mask, info = self._read(X, confidence, session_starts, fitting=True)
        n_time_bins, n_kp, n_dims = coords.shape
        need = keypoint_slds_fit_memory(
            n_time_bins, self.n_states, n_kp, n_dims, self.latent_dim, self.nlags,
            itemsize=np.dtype(float_dtype()).itemsize, block_size=self.block_size,
        )  # fmt: skip
        check_fit_memory(need, "KeypointSLDS.fit", "Set block_size, or fit fewer frames.")
        if self.latent_dim > (n_kp - 1) * n_dims:
            raise ValueError(
                f"latent_dim={self.latent_dim} exceeds the dimension of centred poses, "
                f"(n_keypoints - 1) * n_dims = {(n_kp - 1) * n_dims}."
            )
        key_ar, key_chain = jax.random.split(self._fit_key())
        self.n_keypoints_, self.n_dims_ = n_kp, n_dims
        offset = np.array([coords[..., i][observed].mean() for i in range(n_dims)])
        y0 = np.where(observed[..., None], coords - offset, np.nan)
        with np.errstate(invalid="ignore"):
            spread = y0 - np.nanmean(y0, axis=1, keepdims=True)
        self.scale_ = float(np.sqrt(np.nanmean(np.sum(spread**2, axis=2))))
        if not np.isfinite(self.scale_) or self.scale_ <= 0:
            raise ValueError("X has no spread between keypoints (all keypoints coincide).")
        y = np.where(observed[..., None], y0 / self.scale_, 0.0)
        centroid, heading = self._align(y, observed, mask)
        data = self._to_device(y, observed, conf, mask)
        return _SLDSFitData(
            coords,
            observed,
            conf,
            mask,
            offset,
            y,
            centroid,
            heading,
            key_ar,
            key_chain,
            data,
            info,
        )

    def _fit_labels(self, fd: _SLDSFitData, labels, label_weight):
        """Hand labels' evidence on every frame (``_fit_skeleton``'s labels hook).

        Frames with missing keypoints are modelled, so their labels count; a
        session's first ``nlags`` frames have no state and get none (warned).
        """
        n_time_bins, mask = len(fd.mask), fd.mask
        evidence = label_evidence(
            labels, label_weight, self.n_states, None, np.ones(n_time_bins, bool), info=fd.info
        )
        if evidence is None:
            return fd, None
        begin, _ = session_bounds(mask)
        position = np.arange(n_time_bins) - begin[np.cumsum(mask) - 1]
        rows = np.flatnonzero(position >= self.nlags)
        emitted = restrict_evidence(
            evidence, rows, f"the first nlags={self.nlags} frames of a session have no state"
        )
        log_ev = np.zeros_like(evidence.log_evidence)
        log_ev[rows] = emitted.log_evidence
        hard = np.where(position >= self.nlags, evidence.labels, -1)
        evidence = LabelEvidence(log_ev, hard, evidence.n_classes)
        padded = padded_log_evidence(evidence, fd.data.y.shape[0])
        data = fd.data._replace(log_evidence=jnp.asarray(padded, float_dtype()))
        return fd._replace(data=data, labels=hard), evidence

    def _initialize(self, fd: _SLDSFitData) -> SLDSState:
        """Stages 2 and 3: the initial pose (PCA of aligned poses), then the initial states."""
        latents = self._initial_pose(fd)
        return self._initial_states(fd, latents)

    def _initial_pose(self, fd: _SLDSFitData) -> np.ndarray:
        """PCA of egocentric poses on complete frames; sets ``pca_*`` and the latents' scales."""
        n_time_bins, n_kp, n_dims = fd.coords.shape
        ego = self._rotate(fd.y - fd.centroid[:, None, :], -fd.heading)
        complete = fd.observed.all(axis=1)
        if complete.sum() <= self.latent_dim:
            raise ValueError(
                f"Only {int(complete.sum())} frames have every keypoint observed; the PCA of "
                f"latent_dim={self.latent_dim} components needs more."
            )
        flat = ego.reshape(n_time_bins, -1)
        mean = flat[complete].mean(0)
        vals, vecs = np.linalg.eigh(np.cov(flat[complete], rowvar=False))
        order = np.argsort(vals)[::-1][: self.latent_dim]
        comps = vecs[:, order].T
        comps *= np.where(comps[np.arange(len(comps)), np.abs(comps).argmax(1)] < 0, -1.0, 1.0)[
            :, None
        ]
        self.pca_components_, self.pca_mean_ = comps, mean
        self.pca_explained_variance_ = vals[order]
        filled = np.where(np.repeat(fd.observed, n_dims, axis=1), flat, mean[None])
        latents = (filled - mean) @ comps.T
        self.latent_variance_ = 4.0 * np.maximum(latents.var(0), 1e-6)
        if self.centroid_variance is None:
            diffs = np.diff(fd.centroid, axis=0)[~fd.mask[1:]]
            self.centroid_variance_ = float(max(np.mean(diffs**2) if len(diffs) else 1e-2, 1e-6))
        else:
            self.centroid_variance_ = float(self.centroid_variance)
        return latents

    def _initial_states(self, fd: _SLDSFitData, latents: np.ndarray) -> SLDSState:
        """AR-HMM parameters from the ``setup()`` slots on the latents, and the noise scales."""
        n_time_bins, n_kp, n_dims = fd.coords.shape
        data = fd.data
        n = data.y.shape[0]
        pad = n - n_time_bins
        dtype = float_dtype()
        # the AR-only chain gets its own key: key_ar is split, never used again itself
        k_init, k_trans, _ = jax.random.split(fd.key_ar, 3)
        init_rows = self._init_rows(fd.mask)
        ar_params = self._initial_ar_params(
            latents[init_rows],
            fd.mask[init_rows],
            k_init,
            k_trans,
            self._prior(),
            labels=None if fd.labels is None else fd.labels[init_rows],
        )
        pi, trans, coef, intercept, cov = ar_params
        infinite_dof = np.full(self.n_states, np.inf)
        params = ARHMMParams(
            *(
                jnp.asarray(a, dtype)
                for a in (pi, np.asarray(trans)[None], coef, intercept, cov, infinite_dof)
            )
        )
        ar_state = GibbsState(
            params,
            jnp.full(self.n_states, 1.0 / self.n_states, dtype),
            jnp.zeros(n, jnp.int32),
            jnp.ones(n, dtype),
        )
        recon = (latents @ self.pca_components_ + self.pca_mean_).reshape(n_time_bins, n_kp, n_dims)
        resid = fd.y - self._rotate(recon, fd.heading) - fd.centroid[:, None, :]
        sq = np.sum(resid**2, axis=2)
        sigmasq = np.array(
            [
                sq[fd.observed[:, i], i].mean() / n_dims if fd.observed[:, i].any() else 1e-2
                for i in range(n_kp)
            ]
        )
        return SLDSState(
            ar=ar_state,
            latents=jnp.asarray(np.pad(latents, ((0, pad), (0, 0))), dtype),
            heading=jnp.asarray(np.pad(fd.heading, (0, pad)), dtype),
            centroid=jnp.asarray(np.pad(fd.centroid, ((0, pad), (0, 0))), dtype),
            scales=data.prior_scale,
            sigmasq=jnp.asarray(np.maximum(sigmasq, 1e-6), dtype),
        )

    # ------------------------------------------------------------------ fit
    def _initial_ar_params(self, latents, mask, k_init, k_trans, prior, labels=None):
        """Initial AR-HMM parameters of the AR-only stage, from the ``setup()`` initializers."""
        inits = self._initializers(labels)
        n = self.n_states
        k_pi, k_ar = jax.random.split(k_init)
        func, kwargs = inits["initial_proba_init"]
        extra = initializer_labels(func, labels)
        pi = np.asarray(func(n, latents, mask, k_pi, **extra, **kwargs), float)
        func, kwargs = inits["transition_proba_init"]
        extra = initializer_labels(func, labels)
        trans = np.asarray(func(n, latents, mask, k_trans, **extra, **kwargs), float)
        func, kwargs = inits["ar_params_init"]
        extra = {"nlags": self.nlags, "prior": prior, **initializer_labels(func, labels)}
        out = func(n, latents, mask, k_ar, **extra, **kwargs)
        if not isinstance(out, tuple | list) or len(out) != 3:
            raise ValueError("ar_params_init must return a tuple (coef, intercept, covariances).")
        coef, intercept, cov = (np.asarray(a, float) for a in out)
        d = latents.shape[1]
        expected = {
            "initial_proba_init": (pi, (n,)),
            "transition_proba_init": (trans, (n, n)),
            "ar_params_init coef": (coef, (n, d, self.nlags * d)),
            "ar_params_init intercept": (intercept, (n, d)),
            "ar_params_init covariances": (cov, (n, d, d)),
        }
        for name, (arr, shape) in expected.items():
            if arr.shape != shape or not np.all(np.isfinite(arr)):
                raise ValueError(
                    f"{name} must return finite values of shape {shape}, got shape {arr.shape}."
                )
        return pi, trans, coef, intercept, cov

    def _init_rows(self, mask: np.ndarray) -> np.ndarray:
        """Frames for the k-means initialisation: all, or the opening stretch of every session.

        At most about :data:`INIT_FRAMES` frames, each session contributing in
        proportion to its length (and at least ``nlags + 1`` frames), so the
        initialisation's memory does not grow with the recording.
        """
        n_time_bins = len(mask)
        if n_time_bins <= INIT_FRAMES:
            return np.arange(n_time_bins)
        begin, end = session_bounds(mask)
        take = np.maximum(
            np.ceil(INIT_FRAMES * (end - begin) / n_time_bins).astype(int), self.nlags + 1
        )
        return np.concatenate(
            [np.arange(a, min(a + k, b)) for a, b, k in zip(begin, end, take, strict=True)]
        )


#: At most about this many frames seed the AR parameters by k-means (the Gibbs stages use all
#: frames).
INIT_FRAMES = 20000
