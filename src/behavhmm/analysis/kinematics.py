"""Per-frame tables of syllables and kinematics, and per-syllable statistics per session and group.

The table is keypoint-moseq's "moseq_df" without video: one row per frame
with its session, group, time, syllable, syllable onsets, and the body's
centroid, heading, speed and angular velocity. `syllable_stats` reduces it
to one row per group, session and syllable (frequency, usage, durations,
kinematic summaries), the input of `compare_groups`.

References
----------
C. Weinreb et al. (2024). Keypoint-MoSeq: parsing behavior by linking point
tracking to pose dynamics. Nature Methods 21, 1329-1339.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..sessions import session_bounds, session_mask
from .syllables import _runs, _states

__all__ = ["frame_table", "syllable_stats", "KINEMATICS"]

#: Kinematic columns of a frame table summarised by `syllable_stats`.
KINEMATICS = ("speed", "angular_velocity")
_DIMS = ("x", "y", "z")


def _per_session(values, name, n_sessions, default):
    """One entry per session (``default`` for each when None)."""
    if values is None:
        return [default(i) for i in range(n_sessions)]
    values = (
        list(np.asarray(values, dtype=object))
        if not isinstance(values, list | tuple)
        else list(values)
    )
    if len(values) != n_sessions:
        raise ValueError(
            f"{name} must hold one entry per session ({n_sessions}), got {len(values)}."
        )
    return values


def _smooth(values: np.ndarray, sigma: float) -> np.ndarray:
    """NaN-aware Gaussian smoothing along axis 0 (normalised convolution); NaN rows stay NaN."""
    from scipy.ndimage import gaussian_filter1d

    if not sigma or len(values) < 2:
        return values
    ok = np.isfinite(values)
    num = gaussian_filter1d(np.where(ok, values, 0.0), sigma, axis=0, mode="nearest")
    den = gaussian_filter1d(ok.astype(float), sigma, axis=0, mode="nearest")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, num / den, np.nan)


def _derivative(values: np.ndarray, fps: float) -> np.ndarray:
    """Central differences along axis 0 times ``fps`` (one-sided at the ends; NaN for one frame)."""
    if len(values) < 2:
        return np.full_like(values, np.nan)
    return np.gradient(values, axis=0) * fps


def _kinematics(centroid, heading, starts, fps, smooth_sigma):
    """Smoothed centroid, wrapped heading, speed and angular velocity, session by session."""
    centroid = np.array(centroid, float)
    heading = np.array(heading, float)
    speed = np.full(len(heading), np.nan)
    angular = np.full(len(heading), np.nan)
    for a, b in zip(*session_bounds(starts), strict=True):
        c = _smooth(centroid[a:b], smooth_sigma)
        h = heading[a:b]
        # smooth the heading as a unit vector, so wrapping at +-pi does not matter
        unit = _smooth(np.stack([np.cos(h), np.sin(h)], axis=1), smooth_sigma)
        h = np.arctan2(unit[:, 1], unit[:, 0])
        ok = np.isfinite(h)
        unwrapped = h.copy()
        unwrapped[ok] = np.unwrap(h[ok])
        centroid[a:b], heading[a:b] = c, h
        speed[a:b] = np.linalg.norm(_derivative(c, fps), axis=1)
        angular[a:b] = _derivative(unwrapped, fps)
    missing = ~(np.isfinite(centroid).all(axis=1) & np.isfinite(heading))
    speed[missing] = angular[missing] = np.nan  # a missing frame has no velocity of its own
    return centroid, heading, speed, angular


def _is_model(obj) -> bool:
    return hasattr(obj, "centroids_") and hasattr(obj, "headings_") and hasattr(obj, "states_")


def _is_results(obj) -> bool:
    return (
        isinstance(obj, list | tuple)
        and len(obj) > 0
        and all(
            hasattr(r, "syllables") and hasattr(r, "centroid") and hasattr(r, "heading")
            for r in obj
        )
    )


def frame_table(
    states,
    coordinates=None,
    fps: float | None = None,
    *,
    session_starts=None,
    anterior=0,
    posterior=-1,
    bodyparts=None,
    groups=None,
    session_names=None,
    individuals=None,
    smooth_sigma: float | None = 1.0,
) -> pd.DataFrame:
    """One row per frame: session, group, time, syllable, onsets and body kinematics.

    Three forms:

    * ``frame_table(states, coordinates, fps, session_starts=...)``: the
      kinematics come from the raw keypoints. The centroid is the mean of the
      keypoints of a frame, the heading the angle of the vector from the
      ``posterior`` to the ``anterior`` keypoint(s) (as in
      [`egocentric_align`][behavhmm.preprocessing.egocentric_align]);
    * ``frame_table(results)`` with a list of `behavhmm.workflows.KeypointResults`
      (what ``fit-keypoints`` writes): the centroid and heading decoded by the
      keypoint SLDS, and each session's name and fps;
    * ``frame_table(model, fps=..., session_starts=...)`` with a fitted
      [`KeypointSLDS`][behavhmm.KeypointSLDS]: its training sample
      ``states_``, ``centroids_`` and ``headings_``.

    Centroid and heading are smoothed within sessions by a Gaussian of
    ``smooth_sigma`` frames; velocities are central differences (one-sided at
    a session's ends) times ``fps``.

    Parameters
    ----------
    states : int array-like of shape (n_time_bins,), list of KeypointResults, or fitted KeypointSLDS
        Syllables on the concatenated time axis (-1: unlabelled).
    coordinates : array-like of shape (n_time_bins, n_keypoints, n_dims), optional
        Keypoints (n_dims 2 or 3) in any spatial unit; required with a state
        array. A frame with any NaN keypoint gets NaN kinematics.
    fps : float, optional
        Frames per second; required except with results that carry it.
    session_starts : bool mask or start indices, optional
        Sessions (with results: one session per result).
    anterior, posterior : int, str or sequence of them, default 0 and -1
        Keypoints that define the heading (names need ``bodyparts``).
    bodyparts : sequence of str, optional
        Names of the keypoints.
    groups : array-like, optional
        One group label per session (default ``"all"``).
    session_names : array-like, optional
        One name per session (default ``0, 1, ...``; with results, their names).
    individuals : array-like, optional
        One animal per session: several animals in a recording are several
        sessions, told apart by this column (default: empty).
    smooth_sigma : float or None, default 1.0
        Standard deviation in frames of the Gaussian smoothing of centroid and
        heading (NaN-aware, ``scipy.ndimage.gaussian_filter1d``); 0 or None
        smooths nothing.

    Returns
    -------
    pandas.DataFrame
        Columns ``session``, ``individual``, ``group``, ``frame`` (index within
        the session), ``time`` (s), ``syllable`` (int, -1 unlabelled), ``onset``
        (bool: first frame of a syllable instance), ``centroid_x``,
        ``centroid_y`` (and ``centroid_z``, the keypoints' unit), ``heading``
        (rad, (-pi, pi], counter-clockwise from +x), ``speed`` (units/s, of
        the centroid in all its dimensions) and ``angular_velocity`` (rad/s,
        counter-clockwise positive). Kinematics are NaN on frames labelled -1
        and on frames with a missing keypoint; statistics skip them.

    Raises
    ------
    ValueError
        If shapes disagree, ``fps`` is missing or not positive, or a
        per-session argument has the wrong length.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.arange(5.0)
    >>> # two keypoints moving along +x at 1 unit/frame
    >>> coords = np.stack([np.c_[t + 1, 0 * t], np.c_[t - 1, 0 * t]], axis=1)
    >>> table = frame_table(np.zeros(5, int), coords, fps=10.0, smooth_sigma=0)
    >>> table["speed"].round(6).tolist(), table["heading"].tolist()
    ([10.0, 10.0, 10.0, 10.0, 10.0], [0.0, 0.0, 0.0, 0.0, 0.0])
    """
    if _is_results(states):
        z, starts, fps, centroid, heading, session_names = _from_results(states, fps, session_names)
    elif _is_model(states):
        z, starts, centroid, heading = _from_model(states, session_starts)
    else:
        z, starts, centroid, heading = _from_keypoints(
            states, coordinates, session_starts, anterior, posterior, bodyparts
        )
    if fps is None or not np.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be a positive number of frames per second, got {fps!r}.")
    fps = float(fps)
    if centroid.shape[0] != len(z) or heading.shape != (len(z),):
        raise ValueError(
            f"centroid {centroid.shape} and heading {heading.shape} must have {len(z)} rows."
        )
    kinematics = _kinematics(centroid, heading, starts, fps, smooth_sigma)
    n_sessions = len(session_bounds(starts)[0])
    names = _per_session(session_names, "session_names", n_sessions, lambda i: i)
    group_of = _per_session(groups, "groups", n_sessions, lambda i: "all")
    animal_of = _per_session(individuals, "individuals", n_sessions, lambda i: "")
    if len(set(names)) != n_sessions:
        raise ValueError(f"session_names must be unique, got {names}.")
    return _assemble_table(z, starts, fps, (names, animal_of, group_of), kinematics)


def _from_results(results, fps, session_names):
    """Syllables, session starts, frame rate, centroid, heading and names of KeypointResults."""
    results = list(results)
    z = np.concatenate([np.asarray(r.syllables) for r in results]).astype(np.int64)
    lengths = [len(r.syllables) for r in results]
    starts = np.zeros(len(z), bool)
    starts[np.cumsum([0] + lengths[:-1])] = True
    rates = {r.fps for r in results} if fps is None else {fps}
    if len(rates) != 1 or None in rates:
        raise ValueError("fps: the results do not share one frame rate; pass fps=.")
    fps = rates.pop()
    centroid = np.concatenate([np.asarray(r.centroid, float) for r in results])
    heading = np.concatenate([np.asarray(r.heading, float) for r in results])
    session_names = [r.name for r in results] if session_names is None else session_names
    return z, starts, fps, centroid, heading, session_names


def _from_model(model, session_starts):
    """Syllables, session starts, centroid and heading of a fitted KeypointSLDS (its sample)."""
    z = _states(np.asarray(model.states_).astype(np.int64))
    centroid = np.asarray(model.centroids_, float)
    heading = np.asarray(model.headings_, float)
    return z, session_mask(session_starts, len(z)), centroid, heading


def _from_keypoints(states, coordinates, session_starts, anterior, posterior, bodyparts):
    """Syllables, session starts, and the centroid and heading of raw keypoints (NaN on frames
    with a missing keypoint)."""
    from ..preprocessing import egocentric_align

    z = _states(states)
    if coordinates is None:
        raise ValueError("coordinates are required with a state array (or pass KeypointResults).")
    coords = np.asarray(coordinates, float)
    if coords.ndim != 3 or coords.shape[2] not in (2, 3) or coords.shape[0] != len(z):
        raise ValueError(
            f"coordinates must have shape (n_time_bins={len(z)}, n_keypoints, 2 or 3), got "
            f"{coords.shape}."
        )
    starts = session_mask(session_starts, len(z))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ego = egocentric_align(coords, anterior, posterior, bodyparts=bodyparts)
    missing = ~np.isfinite(coords).all(axis=(1, 2))
    centroid = np.where(missing[:, None], np.nan, np.asarray(ego.centroid))
    heading = np.where(missing, np.nan, np.asarray(ego.heading))
    return z, starts, centroid, heading


def _assemble_table(z, starts, fps, per_session, kinematics) -> pd.DataFrame:
    """The frame table from the per-session labels ``(names, individuals, groups)`` and the
    kinematics ``(centroid, heading, speed, angular velocity)``; kinematics NaN where unlabelled."""
    names, animal_of, group_of = per_session
    centroid, heading, speed, angular = kinematics
    begin, end = session_bounds(starts)
    lengths = end - begin
    frame = np.arange(len(z)) - np.repeat(begin, lengths)
    onset = np.zeros(len(z), bool)
    onset[_runs(z, starts)[2]] = True
    unlabelled = z < 0
    table = pd.DataFrame(
        {
            "session": np.repeat(np.asarray(names, dtype=object), lengths),
            "individual": np.repeat(np.asarray(animal_of, dtype=object), lengths),
            "group": np.repeat(np.asarray(group_of, dtype=object), lengths),
            "frame": frame,
            "time": frame / fps,
            "syllable": z,
            "onset": onset,
        }
    )
    for j in range(centroid.shape[1]):
        table[f"centroid_{_DIMS[j]}"] = np.where(unlabelled, np.nan, centroid[:, j])
    table["heading"] = np.where(unlabelled, np.nan, heading)
    table["speed"] = np.where(unlabelled, np.nan, speed)
    table["angular_velocity"] = np.where(unlabelled, np.nan, angular)
    return table


def _session_fps(table: pd.DataFrame) -> pd.Series:
    """Frames per second of each session, from its ``time`` column."""
    step = table.groupby("session", sort=False)["time"].apply(
        lambda t: np.median(np.diff(t.to_numpy()))
    )
    if not np.all(np.isfinite(step.to_numpy()) & (step.to_numpy() > 0)):
        raise ValueError(
            "each session needs at least two frames with increasing time to know its frame rate."
        )
    return 1.0 / step


def syllable_stats(
    table: pd.DataFrame,
    *,
    n_states: int | None = None,
    kinematics=KINEMATICS,
    fps: float | None = None,
) -> pd.DataFrame:
    """Per group, session and syllable: frequency, usage, durations and kinematic summaries.

    Parameters
    ----------
    table : pandas.DataFrame
        A [`frame_table`][behavhmm.analysis.kinematics.frame_table] (at least
        ``session``, ``group``, ``time``, ``syllable``, ``onset`` and the
        ``kinematics`` columns), in frame order within each session.
    n_states : int, optional
        Syllables to report: ``0 .. n_states - 1`` (default: up to the largest
        label). A syllable absent from a session gets frequency and usage 0
        and NaN durations and kinematics.
    kinematics : sequence of str, default ("speed", "angular_velocity")
        Columns summarised by ``<name>_mean``, ``_std`` (ddof 1), ``_min`` and
        ``_max`` over the syllable's frames (NaN frames skipped).
    fps : float, optional
        Frames per second (default: from each session's ``time`` steps).

    Returns
    -------
    pandas.DataFrame
        One row per (group, session, syllable), columns ``group``,
        ``session``, ``syllable``, ``n_instances``, ``frequency`` (onsets per
        second of labelled time), ``usage`` (fraction of the session's
        syllable instances, MoSeq's usage), ``frame_fraction`` (fraction of
        its labelled frames), ``duration_mean`` and ``duration_median``
        (seconds per instance), then the kinematic summaries.

    Raises
    ------
    ValueError
        If a column is missing or a session belongs to several groups.
    """
    _check_frame_table(table, kinematics)
    rate = (
        _session_fps(table)
        if fps is None
        else pd.Series(float(fps), index=table["session"].unique())
    )
    labelled = table[table["syllable"] >= 0].copy()
    z_max = int(table["syllable"].max()) if len(table) else -1
    n_states = z_max + 1 if n_states is None else int(n_states)
    # syllable instances: runs start at onsets; -1 frames are gone, so a cumulative sum numbers the
    # runs
    labelled["instance"] = np.cumsum(labelled["onset"].to_numpy())
    sessions = table.drop_duplicates("session")[["group", "session"]]
    grid = sessions.merge(pd.DataFrame({"syllable": np.arange(n_states)}), how="cross")

    frames = labelled.groupby("session", sort=False).size().rename("n_frames")
    per, summaries = _per_syllable(labelled, rate, kinematics)
    out = grid.merge(per.reset_index(), on=["session", "syllable"], how="left")
    out = out.merge(summaries.reset_index(), on=["session", "syllable"], how="left")
    out["n_instances"] = out["n_instances"].fillna(0).astype(int)
    n_frames = out["session"].map(frames).fillna(0).to_numpy()
    seconds = n_frames / out["session"].map(rate).to_numpy()
    total = out.groupby("session")["n_instances"].transform("sum").to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        out["frequency"] = np.where(seconds > 0, out["n_instances"] / seconds, np.nan)
        out["usage"] = np.where(total > 0, out["n_instances"] / total, np.nan)
        out["frame_fraction"] = np.where(
            n_frames > 0, out["n_syllable_frames"].fillna(0) / n_frames, np.nan
        )
    columns = [
        "group",
        "session",
        "syllable",
        "n_instances",
        "frequency",
        "usage",
        "frame_fraction",
        "duration_mean",
        "duration_median",
        *summaries.columns,
    ]
    return (
        out[columns]
        .sort_values(["group", "session", "syllable"], kind="stable")
        .reset_index(drop=True)
    )


def _check_frame_table(table: pd.DataFrame, kinematics) -> None:
    """Raise unless ``table`` has the columns `syllable_stats` needs and one group per session."""
    needed = {"session", "group", "time", "syllable", "onset", *kinematics}
    missing = needed - set(table.columns)
    if missing:
        raise ValueError(f"table lacks the columns {sorted(missing)} (make it with frame_table).")
    if (table.groupby("session", sort=False)["group"].nunique() > 1).any():
        raise ValueError("table: a session belongs to several groups.")


def _per_syllable(labelled: pd.DataFrame, rate: pd.Series, kinematics):
    """Per session and syllable: instances, durations (s) and labelled frames, and the kinematic
    summaries (``<name>_mean``, ``_std``, ``_min``, ``_max``)."""
    runs = (
        labelled.groupby(["session", "syllable", "instance"], sort=False)
        .size()
        .rename("length")
        .reset_index()
    )
    runs["duration"] = runs["length"] / runs["session"].map(rate).to_numpy()
    per = runs.groupby(["session", "syllable"]).agg(
        n_instances=("duration", "size"),
        duration_mean=("duration", "mean"),
        duration_median=("duration", "median"),
    )
    per["n_syllable_frames"] = labelled.groupby(["session", "syllable"]).size()
    summaries = labelled.groupby(["session", "syllable"])[list(kinematics)].agg(
        ["mean", "std", "min", "max"]
    )
    summaries.columns = [f"{name}_{how}" for name, how in summaries.columns]
    return per, summaries
