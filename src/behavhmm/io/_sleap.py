"""SLEAP files: project/prediction .slp (through sleap-io) and analysis .h5 (through h5py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._keypoints import KeypointData


def _require(module: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package = {"sleap_io": "sleap-io"}.get(module, module)
        raise ImportError(
            f"reading SLEAP files needs {package}: pip install 'behavhmm[io]'."
        ) from exc


def _decode(values) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in np.asarray(values).ravel()]


def load_slp(path: Path) -> list[KeypointData]:
    """One session per (video, track) of a SLEAP .slp file.

    Points come from ``sleap_io.Labels.numpy``: user-labelled instances are
    preferred over predictions of the same track, missing points are NaN,
    and point scores (which SLEAP does not bound by 1) are clipped to [0, 1];
    user-labelled points have confidence 1.
    """
    sio = _require("sleap_io")
    # open_videos=False: the video paths stored in the file are never opened
    # (points need no frames).
    labels = sio.load_slp(str(path), open_videos=False)
    if len(labels.skeletons) != 1:
        raise ValueError(
            f"{path} has {len(labels.skeletons)} skeletons; behavhmm reads files with exactly one "
            "skeleton."
        )
    bodyparts = list(labels.skeletons[0].node_names)
    track_names = [t.name for t in labels.tracks]
    sessions = []
    for v, video in enumerate(labels.videos):
        frames_here = [lf for lf in labels.labeled_frames if lf.video is video]
        if not frames_here:
            continue
        if not track_names:
            most = max(len(lf.instances) for lf in frames_here)
            if most > 1:
                raise ValueError(
                    f"{path} has up to {most} untracked instances per frame in video {v}; without "
                    "tracks "
                    "they cannot be split into individuals. Run SLEAP's tracker (or proofread "
                    "tracks) first."
                )
        arr = labels.numpy(video=v, return_confidence=True, untracked=not track_names)
        n_frames = arr.shape[0]
        names = track_names if track_names else ["id_0"]
        if arr.shape[1] != len(names):  # pragma: no cover - sleap-io guarantees one slot per track
            raise ValueError(
                f"{path}: sleap-io returned {arr.shape[1]} tracks for {len(names)} track names."
            )
        video_name = getattr(video, "filename", None)
        if isinstance(video_name, list | tuple):  # image sequences
            video_name = str(video_name[0]) if video_name else None
        for t, name in enumerate(names):
            sessions.append(
                KeypointData(
                    coordinates=arr[:, t, :, :2],
                    confidence=arr[:, t, :, 2],
                    bodyparts=bodyparts,
                    individual=name,
                    frames=np.arange(n_frames),
                    source=str(path),
                    format="sleap",
                    video=None if video_name is None else str(video_name),
                )
            )
    return sessions


def load_sleap_analysis(path: Path) -> list[KeypointData]:
    """One session per track of a SLEAP analysis .h5 file, read with h5py.

    ``tracks`` is stored as (n_tracks, n_dims, n_nodes, n_frames) by SLEAP's
    exporter (transposed for MATLAB); the untransposed layout
    (n_frames, n_nodes, n_dims, n_tracks) is recognised too. ``point_scores``
    is optional (files written by early SLEAP versions have none; then the
    confidence is 1 for every tracked point).
    """
    h5py = _require("h5py")
    with h5py.File(path, "r") as f:
        if "tracks" not in f or "node_names" not in f:
            raise ValueError(
                f"{path} is not a SLEAP analysis file (it needs 'tracks' and 'node_names')."
            )
        tracks = np.asarray(f["tracks"][()], dtype=np.float64)
        bodyparts = _decode(f["node_names"][()])
        track_names = _decode(f["track_names"][()]) if "track_names" in f else []
        scores = (
            np.asarray(f["point_scores"][()], dtype=np.float64) if "point_scores" in f else None
        )
        video = None
        if "video_path" in f:
            video = (
                _decode(f["video_path"][()])[0] if np.asarray(f["video_path"][()]).size else None
            )
    n_nodes = len(bodyparts)
    if tracks.ndim != 4:
        raise ValueError(f"{path}: 'tracks' must be 4-D, got shape {tracks.shape}.")
    if tracks.shape[2] == n_nodes and tracks.shape[1] in (2, 3):
        xyz = tracks.transpose(3, 0, 2, 1)  # (frames, tracks, nodes, dims)
        if scores is not None:
            scores = scores.transpose(2, 0, 1)  # (tracks, nodes, frames) -> (frames, tracks, nodes)
    elif tracks.shape[1] == n_nodes and tracks.shape[2] in (2, 3):
        xyz = tracks.transpose(0, 3, 1, 2)
        if scores is not None:
            scores = scores.transpose(0, 2, 1)  # (frames, nodes, tracks) -> (frames, tracks, nodes)
    else:
        raise ValueError(
            f"{path}: 'tracks' has shape {tracks.shape}, which matches neither (n_tracks, n_dims, "
            "n_nodes, "
            f"n_frames) nor (n_frames, n_nodes, n_dims, n_tracks) with n_nodes = {n_nodes}."
        )
    n_frames, n_tracks = xyz.shape[:2]
    if not track_names:
        track_names = [f"track_{i}" for i in range(n_tracks)]
    if len(track_names) != n_tracks:
        raise ValueError(f"{path}: {len(track_names)} track names for {n_tracks} tracks.")
    sessions = []
    for t, name in enumerate(track_names):
        conf = np.ones((n_frames, n_nodes)) if scores is None else scores[:, t]
        sessions.append(
            KeypointData(
                coordinates=xyz[:, t],
                confidence=conf,
                bodyparts=bodyparts,
                individual=name,
                source=str(path),
                format="sleap",
                video=video,
            )
        )
    return sessions
