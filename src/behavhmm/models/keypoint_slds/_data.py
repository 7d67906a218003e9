"""KeypointSLDS's data layout: keypoints and confidences read and checked, the initial
centroid and heading, and the padded device arrays of the sweeps.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..._utils import bucket_length, float_dtype
from ...inference._sessions import session_plan, side_by_side
from ...sessions import session_bounds, session_mask, split_pynapple
from .gibbs import (
    KPData,
)
from .initialize import INIT_FRAMES as INIT_FRAMES
from .prediction import KeypointDecoding as KeypointDecoding
from .prediction import KeypointSimulation as KeypointSimulation
from .validation import _keypoint_indices


def _fill_gaps(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Forward- then backward-fill NaN rows within sessions (0 where a session has none)."""
    out = values.copy()
    begin, end = session_bounds(starts)
    for a, b in zip(begin, end, strict=True):
        block = out[a:b]
        ok = ~np.isnan(block.reshape(b - a, -1)).any(axis=1)
        if not ok.any():
            block[:] = 0.0
            continue
        idx = np.where(ok, np.arange(b - a), -1)
        idx = np.maximum.accumulate(idx)
        idx[idx < 0] = np.flatnonzero(ok)[0]
        out[a:b] = block[idx]
    return out


class SLDSDataLayout:
    """Keypoints on the model's (padded) time axis."""

    # ----------------------------------------------------------------- data
    def _read(self, X, confidence, session_starts, *, fitting: bool):
        """Validated keypoints, observed mask, confidences and session mask (host arrays)."""
        values, info = split_pynapple(X)
        try:
            coords = np.asarray(values, float)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"X must be a numeric array of shape (n_time_bins, n_keypoints, n_dims): {exc}"
            ) from None
        if coords.ndim != 3 or coords.shape[2] not in (2, 3) or coords.shape[1] < 2:
            raise ValueError(
                "X must have shape (n_time_bins, n_keypoints >= 2, n_dims in (2, 3)), got "
                f"{coords.shape}."
            )
        if coords.shape[0] == 0:
            raise ValueError("X has n_time_bins == 0.")
        if np.any(np.isinf(coords)):
            raise ValueError("X holds infinite values; mark missing keypoints with NaN.")
        n_time_bins, n_kp, n_dims = coords.shape
        if not fitting:
            if n_kp != int(np.asarray(self.n_keypoints_)) or n_dims != int(
                np.asarray(self.n_dims_)
            ):
                raise ValueError(
                    f"X has {n_kp} keypoints in {n_dims}-D but the model was fitted on "
                    f"{int(np.asarray(self.n_keypoints_))} in {int(np.asarray(self.n_dims_))}-D."
                )
        if confidence is None:
            conf = np.ones((n_time_bins, n_kp))
        else:
            conf = np.asarray(split_pynapple(confidence)[0], float)
            if conf.shape != (n_time_bins, n_kp):
                raise ValueError(
                    "confidence must have shape (n_time_bins, n_keypoints) = "
                    f"{(n_time_bins, n_kp)}, got {conf.shape}."
                )
            if np.any(conf[np.isfinite(conf)] < 0):
                raise ValueError("confidence must be non-negative.")
        observed = np.all(np.isfinite(coords), axis=2) & np.isfinite(conf)
        conf = np.where(np.isfinite(conf), conf, 0.0)
        mask = session_mask(session_starts, n_time_bins, info=info)
        begin, end = session_bounds(mask)
        short = (end - begin) <= self.nlags
        if np.any(short):
            i = int(np.flatnonzero(short)[0])
            raise ValueError(
                f"Session {i} (time bins {begin[i]}-{end[i] - 1}) has {end[i] - begin[i]} "
                f"frame(s); nlags={self.nlags} "
                f"needs at least {self.nlags + 1} per session."
            )
        if not observed.any():
            raise ValueError("X has no observed keypoint (all NaN).")
        seen = np.logical_or.reduceat(observed.any(axis=1), begin)
        if not seen.all():
            i = int(np.flatnonzero(~seen)[0])
            raise ValueError(
                f"Session {i} (time bins {begin[i]}-{end[i] - 1}) has no observed keypoint (all "
                "NaN); drop it "
                "(an empty track) before fitting."
            )
        return coords, observed, conf, mask, info

    def _align(self, y, observed, mask):
        """Initial centroid and heading per frame (normalised units), gaps filled per session."""
        n_kp = y.shape[1]
        front = _keypoint_indices("anterior_bodyparts", self.anterior_bodyparts, n_kp)
        back = _keypoint_indices("posterior_bodyparts", self.posterior_bodyparts, n_kp)
        if set(front.tolist()) == set(back.tolist()):
            raise ValueError(
                "anterior_bodyparts and posterior_bodyparts must be different keypoints."
            )
        with np.errstate(invalid="ignore", divide="ignore"):
            w = observed[..., None].astype(float)
            centroid = (y * w).sum(1) / w.sum(1)
            fm = (y[:, front] * w[:, front]).sum(1) / w[:, front].sum(1)
            bm = (y[:, back] * w[:, back]).sum(1) / w[:, back].sum(1)
        heading = np.arctan2(fm[:, 1] - bm[:, 1], fm[:, 0] - bm[:, 0])
        centroid = _fill_gaps(centroid, mask)
        heading = _fill_gaps(heading[:, None], mask)[:, 0]
        return centroid, heading

    @staticmethod
    def _rotate(points, angle):
        c, s = np.cos(angle)[:, None], np.sin(angle)[:, None]
        out = points.copy()
        out[..., 0] = c * points[..., 0] - s * points[..., 1]
        out[..., 1] = s * points[..., 0] + c * points[..., 1]
        return out

    def _to_device(self, y, observed, conf, mask):
        n_time_bins, n_kp, _ = y.shape
        n = bucket_length(n_time_bins)
        pad = n - n_time_bins
        dtype = float_dtype()
        begin, _ = session_bounds(mask)
        sid = np.cumsum(mask) - 1
        position = np.arange(n_time_bins) - begin[sid]
        starts = np.concatenate([mask, np.ones(pad, bool)])  # padding frames: one-frame sessions
        rows = None
        if side_by_side("kalman"):
            # the padding frames share the last session's row (as one-frame sessions), so a
            # refit on a few frames fewer keeps the row shapes and reuses the compiled sweep
            joined = np.concatenate([mask, np.zeros(pad, bool)])
            rows = jax.tree_util.tree_map(jnp.asarray, session_plan(joined))
        prior_scale = float(self.noise_prior_scale) / np.clip(
            conf, float(self.confidence_floor), 1.0
        )
        return KPData(
            y=jnp.asarray(
                np.pad(np.where(observed[..., None], y, 0.0), ((0, pad), (0, 0), (0, 0))), dtype
            ),
            observed=jnp.asarray(np.pad(observed.astype(float), ((0, pad), (0, 0))), dtype),
            prior_scale=jnp.asarray(
                np.pad(prior_scale, ((0, pad), (0, 0)), constant_values=1.0), dtype
            ),
            starts=jnp.asarray(starts),
            position=jnp.asarray(np.concatenate([position, np.zeros(pad, int)]), jnp.int32),
            valid=jnp.asarray(np.concatenate([np.ones(n_time_bins), np.zeros(pad)]), dtype),
            rows=rows,
        )
