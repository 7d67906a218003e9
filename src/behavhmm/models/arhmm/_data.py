"""ARHMM's data layout: validation of frames and groups, whitening, the lagged design on
padded buckets, and the held-out split.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..._memory import arhmm_fit_memory, check_fit_memory
from ..._utils import bucket_length, float_dtype
from ...inference._sessions import session_plan, side_by_side
from ...labels import label_evidence, padded_log_evidence, restrict_evidence
from ...observations import MNIWPrior
from ...sessions import drop_nan_borders, session_bounds, session_ids, session_mask
from .._initializers import (
    seed_from_key,
)
from ..base import (
    PreparedData,
)
from .initialize import lagged_design
from .model import (
    ARData,
)


def sampler_rows(data: ARData, n_states: int):
    """The Gibbs sweep's `SessionPlan` for its state sampler, or None where it runs on one axis.

    The padding frames after the last session join that session's row (they stay
    one-frame sessions: every start resets), so a refit a few frames shorter keeps
    the row shapes and reuses the compiled sweep. The draws are the one-axis
    sampler's.
    """
    if not side_by_side("hmm_sample", n_states):
        return None
    joined = np.asarray(data.starts).copy()
    real = np.flatnonzero(np.asarray(data.weights) > 0)
    if len(real):
        joined[real[-1] + 1 :] = False
    return jax.tree_util.tree_map(jnp.asarray, session_plan(joined))


def _whitening(frames: np.ndarray):
    """Mean, symmetric whitening matrix ``C^{-1/2}`` and ``log|det C^{-1/2}|`` of some frames."""
    mean = frames.mean(axis=0)
    cov = np.atleast_2d(np.cov(frames, rowvar=False))
    vals, vecs = np.linalg.eigh(cov)
    floor = max(vals.max(), 1e-300) * 1e-10
    vals = np.maximum(vals, floor)
    matrix = (vecs / np.sqrt(vals)) @ vecs.T
    return mean, matrix, -0.5 * float(np.sum(np.log(vals)))


class _ARFitData(NamedTuple):
    """Training data of one ARHMM fit: train/held-out parts, prior, initial frames, keys."""

    train: PreparedData
    heldout: PreparedData | None
    prior: MNIWPrior
    n_groups: int
    train_raw: np.ndarray
    train_starts: np.ndarray
    key_init: jax.Array
    key_chain: jax.Array
    rows_kept: np.ndarray | None = None  # (n_kept,) user positions of the frames not NaN
    raw_rows: np.ndarray | None = None  # user positions of the frames of ``train_raw``
    init_labels: np.ndarray | None = None  # hand labels on ``train_raw`` (``_fit_labels``)


class ARDataLayout:
    """Input of ARHMM's methods on the model's time axis (``PreparedData``)."""

    # ----------------------------------------------------------------- data
    def _validate_X(self, X, *, reset: bool):
        n_features = np.shape(self.coef_)[1] if hasattr(self, "coef_") else None
        return self._validate_frames(X, reset=reset, n_features=n_features, source="coef_")

    def _group_labels(self, groups, mask: np.ndarray, *, fitting: bool) -> np.ndarray | None:
        """Group index (into ``groups_``) of every time bin, or None for one shared matrix."""
        n_time_bins = mask.shape[0]
        if fitting:
            if not self.separate_trans:
                return None
            if groups is None:
                raise ValueError(
                    "separate_trans=True needs groups: one label per session (e.g. genotype)."
                )
        else:
            n_matrices = np.ndim(self.transition_prob_) == 3 and np.shape(self.transition_prob_)[0]
            if not n_matrices:
                return None
            if groups is None:
                if n_matrices == 1:
                    return np.zeros(n_time_bins, np.int32)
                raise ValueError(
                    f"This model has one transition matrix per group ({list(self.groups_)}): pass "
                    "groups, "
                    "one label per session."
                )
        labels = np.asarray(groups)
        sid = session_ids(mask)
        n_sessions = int(sid[-1]) + 1 if n_time_bins else 0
        if labels.ndim != 1 or len(labels) not in (n_sessions, n_time_bins):
            raise ValueError(
                f"groups must hold one label per session ({n_sessions}) or per time bin "
                f"({n_time_bins}), "
                f"got shape {labels.shape}."
            )
        if len(labels) == n_time_bins and n_time_bins != n_sessions:
            per_bin = labels
            first = per_bin[np.flatnonzero(np.r_[True, sid[1:] != sid[:-1]])]
            if np.any(per_bin != first[sid]):
                raise ValueError("groups given per time bin must be constant within each session.")
        else:
            per_bin = labels[sid]
        if fitting:
            self.groups_ = np.unique(labels)
        known = np.asarray(self.groups_)
        index = np.searchsorted(known, per_bin)
        bad = (index >= len(known)) | (known[np.minimum(index, len(known) - 1)] != per_bin)
        if np.any(bad):
            raise ValueError(
                f"groups holds label {per_bin[bad][0]!r}, unknown to this model (groups_ = "
                f"{list(known)})."
            )
        return index.astype(np.int32)

    def _whiten_kept(self, kept: np.ndarray, starts: np.ndarray, *, fitting: bool):
        """Whitened frames and the log-Jacobian of the transform of each frame."""
        if self.whiten == "none":
            return kept, np.zeros(len(kept))
        if self.whiten == "all":
            if fitting:
                self.whiten_mean_, self.whiten_matrix_, _ = _whitening(kept)
            mean, matrix = np.asarray(self.whiten_mean_), np.asarray(self.whiten_matrix_)
            log_det = float(np.linalg.slogdet(matrix)[1])
            return (kept - mean) @ matrix.T, np.full(len(kept), log_det)
        out = np.empty_like(kept)
        log_det = np.empty(len(kept))
        begin, end = session_bounds(starts)
        for a, b in zip(begin, end, strict=True):
            if b - a < 2:
                raise ValueError(
                    'whiten="each" needs at least 2 frames per session; '
                    f"session at {a} has {b - a}."
                )
            mean, matrix, ld = _whitening(kept[a:b])
            out[a:b] = (kept[a:b] - mean) @ matrix.T
            log_det[a:b] = ld
        return out, log_det

    def _build(
        self, kept, starts, group_index, log_det, rows_kept, n_time_bins, info
    ) -> PreparedData:
        """Lag, pad to a bucket length, and move to the device."""
        y, x, emit, emit_starts = lagged_design(kept, starts, self.nlags)
        n_frames = len(y)
        n_padded = bucket_length(n_frames)
        pad = n_padded - n_frames
        dtype = float_dtype()
        groups = np.zeros(n_frames, np.int32) if group_index is None else group_index[emit]
        data = ARData(
            y=jnp.asarray(np.pad(y, ((0, pad), (0, 0))), dtype),
            x=jnp.asarray(np.pad(x, ((0, pad), (0, 0))), dtype),
            starts=jnp.asarray(np.concatenate([emit_starts, np.ones(pad, bool)])),
            weights=jnp.asarray(np.concatenate([np.ones(n_frames), np.zeros(pad)]), dtype),
            groups=jnp.asarray(np.concatenate([groups, np.zeros(pad, np.int32)])),
        )
        return PreparedData(
            arrays={"ar": data},
            session_starts=data.starts,
            weights=data.weights,
            rows=rows_kept[emit],
            n_time_bins=n_time_bins,
            info=info,
            extra={"log_jacobian": float(np.sum(log_det[emit])), "y": y, "x": x},
        )

    def _prepare(self, X, session_starts, groups=None) -> PreparedData:
        """Input of a prediction method on the model's time axis."""
        values, info = self._validate_X(X, reset=False)
        mask = session_mask(session_starts, values.shape[0], info=info)
        group_bins = self._group_labels(groups, mask, fitting=False)
        keep, starts_kept = drop_nan_borders(values, mask, info=info)
        kept, log_det = self._whiten_kept(values[keep], starts_kept, fitting=False)
        group_kept = None if group_bins is None else group_bins[keep]
        return self._build(
            kept, starts_kept, group_kept, log_det, np.flatnonzero(keep), values.shape[0], info
        )

    def _heldout_split(self, starts: np.ndarray, key) -> np.ndarray:
        """Boolean mask of the held-out rows among the kept training frames."""
        heldout = np.zeros(len(starts), bool)
        if self.heldout_fraction == 0:
            return heldout
        begin, end = session_bounds(starts)
        need = self.nlags + 1
        if self.heldout_by == "frames":
            for a, b in zip(begin, end, strict=True):
                n_hold = int(np.floor(self.heldout_fraction * (b - a)))
                if n_hold >= need and (b - a) - n_hold >= need:
                    heldout[b - n_hold : b] = True
            what = f"the last {self.heldout_fraction:g} of any session"
        else:
            n_sessions = len(begin)
            n_hold = min(max(1, round(self.heldout_fraction * n_sessions)), n_sessions - 1)
            if n_hold >= 1:
                rng = np.random.default_rng(seed_from_key(key))
                for i in rng.choice(n_sessions, n_hold, replace=False):
                    heldout[begin[i] : end[i]] = True
            what = f"{self.heldout_fraction:g} of {n_sessions} whole sessions"
        if not heldout.any():
            raise ValueError(
                f"heldout_fraction={self.heldout_fraction} holds out nothing ({what} is too short "
                "for "
                f"nlags={self.nlags}); raise heldout_fraction or use heldout_by='sessions'."
            )
        return heldout

    # ------------------------------------------------------------------ fit
    def _scale_hint(self, kept) -> str:
        """Why a float32 regression may fail on these features, and what to do."""
        if self.whiten != "none":
            return ""
        return (
            f" The features have scales up to {float(np.max(kept.std(axis=0))):.3g} and offsets up "
            "to "
            f"{float(np.max(np.abs(kept.mean(axis=0)))):.3g}, while the AR prior (S_0 = 0.01 I, "
            "K_0 = 10 I) assumes features of unit scale, which float32 regressions need: use "
            'whiten="all" (moseq2-model\'s default) or z-score the features.'
        )

    def _fit_data(self, X, session_starts, groups) -> _ARFitData:
        """Training (and held-out) data, whitened and laid out, and the fit's keys."""
        values, info = self._validate_X(X, reset=True)
        need = arhmm_fit_memory(
            values.shape[0], self.n_states, values.shape[1], self.nlags,
            itemsize=np.dtype(float_dtype()).itemsize, algorithm=self.algorithm,
        )  # fmt: skip
        check_fit_memory(need, "ARHMM.fit", "Fit fewer frames or states, or use float32.")
        mask = session_mask(session_starts, values.shape[0], info=info)
        group_bins = self._group_labels(groups, mask, fitting=True)
        keep, starts_kept = drop_nan_borders(values, mask, info=info)
        raw = values[keep]
        rows_kept = np.flatnonzero(keep)
        group_kept = None if group_bins is None else group_bins[keep]
        key_init, key_split, key_chain = jax.random.split(self._fit_key(), 3)
        held = self._heldout_split(starts_kept, key_split)

        def part(rows, starts, fitting):
            frames, log_jac = self._whiten_kept(raw[rows], starts, fitting=fitting)
            groups_part = None if group_kept is None else group_kept[rows]
            built = self._build(
                frames, starts, groups_part, log_jac, rows_kept[rows], values.shape[0], info
            )
            return frames, built

        train_rows = ~held
        train_starts = starts_kept[train_rows] | np.r_[True, held[:-1]][train_rows]
        train_raw, train = part(train_rows, train_starts, True)
        heldout = None
        if held.any():
            held_starts = starts_kept[held] | np.r_[True, ~held[:-1]][held]
            heldout = part(held, held_starts, False)[1]
        prior = self._prior(raw.shape[1], train.extra["y"], train.extra["x"])
        n_groups = 1 if group_bins is None else len(self.groups_)
        return _ARFitData(
            train,
            heldout,
            prior,
            n_groups,
            train_raw,
            train_starts,
            key_init,
            key_chain,
            rows_kept,
            rows_kept[train_rows],
        )

    def _fit_labels(self, fd: _ARFitData, labels, label_weight):
        """Hand labels' evidence on the training frames that have a state (``_fit_skeleton``)."""
        keep = np.zeros(fd.train.n_time_bins, bool)
        keep[fd.rows_kept] = True
        evidence = label_evidence(
            labels, label_weight, self.n_states, None, keep, info=fd.train.info
        )
        if evidence is None:
            return fd, None
        on_train = restrict_evidence(
            evidence,
            np.searchsorted(fd.rows_kept, fd.train.rows),
            f"the first nlags={self.nlags} frames of a session have no state, nor do "
            "held-out frames",
        )
        ar = fd.train.arrays["ar"]
        log_ev = padded_log_evidence(on_train, ar.y.shape[0])
        arrays = {
            **fd.train.arrays,
            "ar": ar._replace(log_evidence=jnp.asarray(log_ev, ar.y.dtype)),
        }
        init_labels = evidence.labels[np.searchsorted(fd.rows_kept, fd.raw_rows)]
        train = dataclasses.replace(fd.train, arrays=arrays)
        return fd._replace(train=train, init_labels=init_labels), evidence
