"""Data of a config fit: every supported input on one time axis, and how each estimator takes it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..sessions import session_bounds

__all__ = ["FitData", "load_data", "load_labels"]


@dataclass
class FitData:
    """Inputs of a fit, sessions concatenated in time.

    Attributes
    ----------
    X : ndarray
        (n_time_bins, n_features) features, PC scores or regressors, or
        (n_time_bins, n_keypoints, n_dims) keypoints for KeypointSLDS.
    session_starts : ndarray of bool, shape (n_time_bins,)
    names : list of str
        One name per session.
    y : ndarray, optional
        Choices (GLMHMM).
    confidence : ndarray, optional
        Keypoint confidence (KeypointSLDS).
    groups : ndarray, optional
        One group label per session (ARHMM ``groups``).
    fps : float, optional
    """

    X: np.ndarray
    session_starts: np.ndarray
    names: list
    y: np.ndarray | None = None
    confidence: np.ndarray | None = None
    groups: np.ndarray | None = None
    fps: float | None = None
    notes: list = field(default_factory=list)

    @property
    def n_frames(self) -> int:
        return len(self.session_starts)

    def bounds(self):
        """(begin, end) frame indices of every session."""
        return session_bounds(self.session_starts)

    def take(self, sessions) -> FitData:
        """The data of the sessions numbered ``sessions`` (in order), as a new `FitData`."""
        begin, end = self.bounds()
        rows = np.concatenate([np.arange(begin[i], end[i]) for i in sessions])

        def pick(array):
            return None if array is None else array[rows]

        return FitData(
            X=self.X[rows],
            session_starts=self.session_starts[rows],
            names=[self.names[i] for i in sessions],
            y=pick(self.y),
            confidence=pick(self.confidence),
            groups=None if self.groups is None else self.groups[list(sessions)],
            fps=self.fps,
        )

    def call(self, method, model_type: str, **extra):
        """Call an estimator method (``fit``, ``score``, ``smooth_proba``, ...) on these data."""
        kwargs = {"session_starts": self.session_starts, **extra}
        if model_type == "GLMHMM":
            return method(self.X, self.y, **kwargs)
        if model_type == "KeypointSLDS":
            return method(self.X, confidence=self.confidence, **kwargs)
        if model_type == "ARHMM" and self.groups is not None:
            kwargs["groups"] = self.groups
        return method(self.X, **kwargs)


def _keypoints(paths, options, model_type) -> FitData:
    from ..workflows import load_and_clean

    sessions, coords, conf, names = load_and_clean(
        paths,
        bodyparts=options.get("bodyparts"),
        fps=options.get("fps"),
        outlier_threshold=options.get("outlier_threshold", 6.0),
    )
    rates = {s.fps for s in sessions}
    fps = rates.pop() if len(rates) == 1 else None
    starts = np.asarray(sessions.session_starts, bool)
    if model_type == "KeypointSLDS":
        return FitData(coords, starts, list(names), confidence=conf, fps=fps)
    flat = np.asarray(coords).reshape(len(coords), -1)  # other models: x, y (, z) per keypoint
    return FitData(flat, starts, list(names), fps=fps)


def _pc_scores(paths, options) -> FitData:
    from ..io import load_pc_scores

    if len(paths) != 1:
        raise ValueError("data.paths: pc_scores reads one moseq2-pca file; give exactly one path.")
    scores = load_pc_scores(
        paths[0], options["npcs"], index=options.get("index"), nan_policy=options["nan_policy"]
    )
    names = [
        scores.sessions[scores.session_of_row[i]] for i in np.flatnonzero(scores.session_starts)
    ]
    return FitData(
        np.asarray(scores.scores),
        np.asarray(scores.session_starts, bool),
        names,
        groups=scores.session_groups,
    )


def _features(paths, options) -> FitData:
    from ..io import load_features

    blocks, starts, names = [], [], []
    for path in paths:
        feats = load_features(path, key=options.get("key"), pattern=options.get("pattern"))
        blocks.append(np.asarray(feats.X))
        starts.append(np.asarray(feats.session_starts, bool))
        stem = Path(path).stem
        if len(paths) == 1 or feats.names == [stem]:
            names += list(feats.names)
        else:
            names += [f"{stem}/{n}" for n in feats.names]
    return FitData(np.concatenate(blocks), np.concatenate(starts), names)


def _choice(paths, options) -> FitData:
    import pandas as pd

    X, y, starts, names = [], [], [], []
    for path in paths:
        table = pd.read_csv(path)
        missing = [c for c in [options["y"], *options["X"]] if c not in table.columns]
        if missing:
            raise ValueError(f"{path}: no column(s) {missing} (data.options.y / data.options.X).")
        column = options.get("session")
        ids = table[column].to_numpy() if column else np.zeros(len(table), int)
        first = np.r_[True, ids[1:] != ids[:-1]]
        X.append(table[options["X"]].to_numpy(float))
        y.append(table[options["y"]].to_numpy())
        starts.append(first)
        names += [f"{Path(path).stem}" + (f"_{v}" if column else "") for v in ids[first]]
    return FitData(np.concatenate(X), np.concatenate(starts), names, y=np.concatenate(y))


def load_data(data: dict, model_type: str) -> FitData:
    """Load the ``data`` section of a validated config.

    Raises
    ------
    ValueError, OSError
        For a file that cannot be read as its kind (the message names it).
    """
    kind, paths, options = data["kind"], data["paths"], data["options"]
    if kind == "keypoints":
        return _keypoints(paths, options, model_type)
    if kind == "pc_scores":
        return _pc_scores(paths, options)
    if kind == "features":
        return _features(paths, options)
    return _choice(paths, options)


def load_labels(labels: dict, fit_data: FitData):
    """Per-frame labels of a validated ``labels`` section on the data's time axis.

    Each file labels one session, in session order; frames past a file's end
    are unlabelled.

    Returns
    -------
    labels : ndarray of int, shape (n_time_bins,)
    class_names : list of str

    Raises
    ------
    ValueError
        If the number of files differs from the number of sessions, a file is
        longer than its session, or two files name different classes.
    """
    from ..io import read_label_file

    begin, end = fit_data.bounds()
    if len(labels["paths"]) != len(begin):
        raise ValueError(
            f"labels.paths: {len(labels['paths'])} file(s) for {len(begin)} session(s); give one "
            "label file per session, in session order."
        )
    out = np.full(fit_data.n_frames, -1, dtype=np.int64)
    names = labels.get("class_names")
    fps = labels.get("fps") or fit_data.fps
    for path, a, b in zip(labels["paths"], begin, end, strict=True):
        read = read_label_file(
            path, labels["format"], fps=fps, n_frames=int(b - a), class_names=names
        )
        if len(read.labels) > b - a:
            raise ValueError(f"{path}: {len(read.labels)} frames, its session has {b - a}.")
        if names is not None and list(read.class_names) != list(names):
            raise ValueError(f"{path}: classes {read.class_names} differ from {names}.")
        names = list(read.class_names)
        out[a : a + len(read.labels)] = read.labels
    return out, names
