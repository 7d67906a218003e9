"""NWB files with the ndx-pose extension (``PoseEstimation`` / ``PoseEstimationSeries``), through "
"pynwb."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

from ._keypoints import KeypointData

_TRACK_PREFIX = "track="


def _require():
    try:
        import ndx_pose
        import pynwb
    except ImportError as exc:
        raise ImportError(
            "reading NWB files needs pynwb and ndx-pose: pip install 'behavhmm[io]'."
        ) from exc
    return pynwb, ndx_pose


def _series_times(series) -> np.ndarray:
    n = series.data.shape[0]
    if series.timestamps is not None:
        return np.asarray(series.timestamps[:], dtype=np.float64)
    rate = series.rate
    start = series.starting_time or 0.0
    return start + np.arange(n) / float(rate)


def _node_names(pose_estimation) -> list[str] | None:
    skeleton = getattr(pose_estimation, "skeleton", None)
    if skeleton is not None and getattr(skeleton, "nodes", None) is not None:
        return [str(n) for n in skeleton.nodes[:]]
    nodes = getattr(pose_estimation, "nodes", None)  # ndx-pose 0.1
    if nodes is not None:
        return [str(n) for n in nodes[:]]
    return None


_DLC2NWB_DESCRIPTION = re.compile(
    r"^Keypoint (?P<bodypart>.+) from individual (?P<individual>.+)\.$"
)


def _split_individuals(
    series: dict, nodes: list[str] | None, default: str
) -> dict[str, dict[str, str]]:
    """Map individual -> {bodypart: series name}, bodyparts in skeleton order.

    DLC2NWB names each series ``<individual>_<bodypart>`` and describes it as
    "Keypoint <bodypart> from individual <individual>."; other writers
    (sleap-io, movement) use one ``PoseEstimation`` per animal with series
    named after the bodyparts, and the animal is the ``PoseEstimation``.
    """
    names = list(series)
    if nodes:  # the skeleton's order first, then anything it does not list
        names = [n for n in nodes if n in series] + [n for n in names if n not in nodes]
    parsed = {n: _DLC2NWB_DESCRIPTION.match(str(series[n].description or "")) for n in names}
    if all(parsed.values()):
        groups: dict[str, dict[str, str]] = {}
        for n in names:
            groups.setdefault(parsed[n]["individual"], {})[parsed[n]["bodypart"]] = n
        if all(len(g) == len({parsed[n]["bodypart"] for n in g.values()}) for g in groups.values()):
            return groups
    return {default: {n: n for n in names}}


def _video_name(pose_estimation) -> str | None:
    source = getattr(pose_estimation, "source_video", None)  # ndx-pose >= 0.2: an ImageSeries
    files = getattr(source, "external_file", None)
    if files is not None and len(files):
        return str(files[0])
    videos = getattr(pose_estimation, "original_videos", None)  # ndx-pose 0.1
    return str(videos[0]) if videos is not None and len(videos) else None


def _looks_like_frame_indices(t: np.ndarray) -> bool:
    """Consecutive integers (0, 1, 2, ... possibly with gaps): frame numbers, not seconds."""
    if t.size < 2 or not np.all(np.isfinite(t)) or not np.all(t == np.round(t)):
        return False
    steps = np.diff(t)
    return bool(np.all(steps >= 1) and np.median(steps) == 1)


def load_nwb(path: Path, *, fps: float | None = None) -> list[KeypointData]:
    """One session per individual of every ``PoseEstimation`` in an NWB file.

    Series of one ``PoseEstimation`` may have different lengths (sleap-io
    drops missing frames); they are aligned on the union of their
    timestamps, with NaN where a series has no sample.

    Timestamps that are consecutive integers (0, 1, 2, ...) although NWB
    labels them seconds are frame numbers (DLC2NWB and sleap-io write them
    so when the frame rate is unknown): they become ``frames``, and
    ``timestamps`` is ``frames / fps`` when ``fps`` is given, else None (with
    a warning). Otherwise timestamps are seconds and ``fps`` defaults to
    ``1 / median(diff(timestamps))``.
    """
    pynwb, ndx_pose = _require()
    sessions: list[KeypointData] = []
    frame_warning = False
    with warnings.catch_warnings():
        # pynwb warns that a file's cached ndx-pose namespace (e.g. 0.1.0) is ignored in favour of
        # the installed one; the installed ndx-pose reads the older layout (checked in the tests).
        warnings.filterwarnings(
            "ignore", message="Ignoring the following cached namespace", category=UserWarning
        )
        warnings.filterwarnings("ignore", message=".*deprecated.*", category=DeprecationWarning)
        with pynwb.NWBHDF5IO(str(path), mode="r", load_namespaces=True) as io:
            nwbfile = io.read()
            estimations = _pose_estimations(nwbfile, ndx_pose, path)
            for pe in estimations:
                series = dict(pe.pose_estimation_series.items())
                if not series:
                    continue
                default = _default_individual(pe, nwbfile, len(estimations))
                groups = _split_individuals(series, _node_names(pe), default)
                video = _video_name(pe)
                for individual, parts in groups.items():
                    grid, xyz, conf = _aligned_series(series, parts, path, pe.name)
                    frames, timestamps, session_fps = _time_axis(grid, fps)
                    frame_warning = frame_warning or (frames is not None and fps is None)
                    sessions.append(
                        KeypointData(
                            coordinates=xyz,
                            confidence=conf,
                            bodyparts=list(parts),
                            individual=individual,
                            fps=session_fps,
                            frames=frames,
                            timestamps=timestamps,
                            source=str(path),
                            format="nwb",
                            video=video,
                        )
                    )
    if frame_warning:
        warnings.warn(
            f"{path}: the pose timestamps are consecutive integers labelled seconds, i.e. frame "
            "numbers "
            "(as DLC2NWB and sleap-io write them when the frame rate is unknown). They are kept as "
            "frame "
            "numbers and fps is unknown; pass fps= to load_keypoints to get timestamps in seconds.",
            UserWarning,
            stacklevel=4,
        )
    return sessions


def _pose_estimations(nwbfile, ndx_pose, path) -> list:
    """Every ``PoseEstimation`` of the file, by parent and name; raises when there is none."""
    estimations = [o for o in nwbfile.objects.values() if isinstance(o, ndx_pose.PoseEstimation)]
    estimations.sort(key=lambda o: (o.parent.name if o.parent is not None else "", o.name))
    if not estimations:
        raise ValueError(
            f"{path} holds no ndx-pose PoseEstimation, so it has no keypoints to load."
        )
    return estimations


def _default_individual(pe, nwbfile, n_estimations: int) -> str:
    """The animal of a ``PoseEstimation`` whose series do not name one: the subject of a file with
    one estimation, else the estimation's name (without a ``track=`` prefix)."""
    default = pe.name[len(_TRACK_PREFIX) :] if pe.name.startswith(_TRACK_PREFIX) else pe.name
    if n_estimations == 1 and nwbfile.subject is not None and nwbfile.subject.subject_id:
        default = str(nwbfile.subject.subject_id)
    return default


def _aligned_series(series: dict, parts: dict, path, name: str):
    """The union of the series' timestamps, and coordinates (NaN) and confidences (0) on it."""
    bodyparts = list(parts)
    times = [_series_times(series[parts[b]]) for b in bodyparts]
    grid = np.unique(np.concatenate(times))
    n_dims = {series[parts[b]].data.shape[1] for b in bodyparts}
    if len(n_dims) != 1:
        raise ValueError(f"{path}: the series of {name!r} mix 2-D and 3-D data.")
    n_dims = n_dims.pop()
    xyz = np.full((grid.size, len(bodyparts), n_dims), np.nan)
    conf = np.zeros((grid.size, len(bodyparts)))
    for k, (b, t) in enumerate(zip(bodyparts, times, strict=True)):
        s = series[parts[b]]
        rows = np.searchsorted(grid, t)
        xyz[rows, k] = np.asarray(s.data[:], dtype=np.float64)
        if s.confidence is not None:
            conf[rows, k] = np.asarray(s.confidence[:], dtype=np.float64)
        else:
            conf[rows, k] = 1.0
    return grid, xyz, conf


def _time_axis(grid: np.ndarray, fps: float | None):
    """``(frames, timestamps, fps)`` of a session: frame numbers when the grid counts frames, else
    timestamps in seconds and ``fps`` (default ``1 / median step``)."""
    if _looks_like_frame_indices(grid):
        return grid.astype(np.int64), None, fps
    steps = np.diff(grid)
    session_fps = fps if fps is not None else (1.0 / np.median(steps) if steps.size else None)
    return None, grid, session_fps
