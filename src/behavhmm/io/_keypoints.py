"""Containers for loaded keypoints: one session (`KeypointData`) and many (`KeypointSessions`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from os import PathLike

import numpy as np

__all__ = ["KeypointData", "KeypointSessions"]


def _names(values, name: str) -> tuple[str, ...]:
    if isinstance(values, str):
        raise TypeError(
            f"{name} must be a sequence of names, got the string {values!r}; wrap it in a list."
        )
    out = tuple(str(v) for v in values)
    if len(set(out)) != len(out):
        dupes = sorted({v for v in out if out.count(v) > 1})
        raise ValueError(f"{name} must be unique, got duplicates {dupes}.")
    return out


@dataclass(frozen=True, eq=False)
class KeypointData:
    """Keypoints of one individual in one recording: one session.

    Loaders fill every field; build one by hand to feed your own arrays to the
    helpers of [`KeypointSessions`][behavhmm.io.KeypointSessions].

    Parameters
    ----------
    coordinates : ndarray of float64, shape (n_frames, n_keypoints, n_dims)
        Positions in the file's spatial units (pixels for DeepLabCut and SLEAP
        2-D tracking; the calibration unit for 3-D tracking). ``n_dims`` is 2
        (x, y) or 3 (x, y, z). NaN marks a missing point.
    confidence : ndarray of float64, shape (n_frames, n_keypoints)
        Confidence of each point in [0, 1] (DeepLabCut likelihood, SLEAP point
        score, Anipose score); ones when the format stores none, and 0 wherever
        a coordinate is NaN.
    bodyparts : sequence of str
        Name of each keypoint, in the order of the keypoint axis.
    individual : str
        Name of the tracked animal (``"id_0"`` for single-animal files without
        one).
    fps : float or None
        Frame rate in frames per second, when the file or the caller states it.
    frames : ndarray of int64, shape (n_frames,), optional
        Frame number of each row in the source video (default ``0, 1, ...``).
    timestamps : ndarray of float64, shape (n_frames,), optional
        Time of each row in seconds: the file's own clock (NWB, movement) or
        ``frames / fps``; None when neither is known.
    source : str or None
        Path of the file the data came from.
    format : str or None
        The format it was read as (see `load_keypoints`).
    video : str or None
        The source video named in the file, when it names one.

    Raises
    ------
    ValueError
        If the shapes disagree with each other or with ``bodyparts``.
    """

    coordinates: np.ndarray
    confidence: np.ndarray
    bodyparts: tuple[str, ...]
    individual: str = "id_0"
    fps: float | None = None
    frames: np.ndarray | None = None
    timestamps: np.ndarray | None = None
    source: str | None = None
    format: str | None = None
    video: str | None = field(default=None)

    def __post_init__(self):
        coords = np.asarray(self.coordinates, dtype=np.float64)
        if coords.ndim != 3 or coords.shape[2] not in (2, 3):
            raise ValueError(
                "coordinates must have shape (n_frames, n_keypoints, n_dims) with n_dims 2 or 3, "
                f"got shape {coords.shape}."
            )
        n_frames, n_keypoints, _ = coords.shape
        conf = np.asarray(self.confidence, dtype=np.float64)
        if conf.shape != (n_frames, n_keypoints):
            raise ValueError(
                f"confidence must have shape (n_frames, n_keypoints) = {(n_frames, n_keypoints)}, "
                f"got {conf.shape}."
            )
        bodyparts = _names(self.bodyparts, "bodyparts")
        if len(bodyparts) != n_keypoints:
            raise ValueError(
                f"bodyparts has {len(bodyparts)} names but coordinates has {n_keypoints} keypoints."
            )
        if self.fps is not None and not (np.isfinite(self.fps) and self.fps > 0):
            raise ValueError(
                f"fps must be a positive number of frames per second or None, got {self.fps!r}."
            )
        frames = (
            np.arange(n_frames, dtype=np.int64)
            if self.frames is None
            else np.asarray(self.frames, np.int64)
        )
        if frames.shape != (n_frames,):
            raise ValueError(f"frames must have shape ({n_frames},), got {frames.shape}.")
        timestamps = self.timestamps
        if timestamps is None and self.fps is not None:
            timestamps = frames / float(self.fps)
        if timestamps is not None:
            timestamps = np.asarray(timestamps, dtype=np.float64)
            if timestamps.shape != (n_frames,):
                raise ValueError(
                    f"timestamps must have shape ({n_frames},), got {timestamps.shape}."
                )
        missing = np.isnan(coords).any(axis=2)
        conf = np.where(missing | np.isnan(conf), 0.0, np.clip(conf, 0.0, 1.0))
        object.__setattr__(self, "coordinates", coords)
        object.__setattr__(self, "confidence", conf)
        object.__setattr__(self, "bodyparts", bodyparts)
        object.__setattr__(self, "individual", str(self.individual))
        object.__setattr__(self, "fps", None if self.fps is None else float(self.fps))
        object.__setattr__(self, "frames", frames)
        object.__setattr__(self, "timestamps", timestamps)
        if isinstance(self.source, PathLike):
            object.__setattr__(self, "source", str(self.source))

    @property
    def n_frames(self) -> int:
        """Number of frames (rows)."""
        return self.coordinates.shape[0]

    @property
    def n_keypoints(self) -> int:
        """Number of keypoints (bodyparts)."""
        return self.coordinates.shape[1]

    @property
    def n_dims(self) -> int:
        """Number of spatial dimensions (2 or 3)."""
        return self.coordinates.shape[2]

    def select_bodyparts(self, bodyparts: Sequence[str]) -> KeypointData:
        """Keep the named bodyparts, in the order given.

        Parameters
        ----------
        bodyparts : sequence of str
            Names to keep; the keypoint axis of the result follows this order.

        Returns
        -------
        KeypointData
            A new session holding only those keypoints.

        Raises
        ------
        ValueError
            If a name is not among `bodyparts` (the message lists what the
            file has).
        TypeError
            If ``bodyparts`` is a single string.
        """
        wanted = _names(bodyparts, "bodyparts")
        missing = [b for b in wanted if b not in self.bodyparts]
        if missing:
            where = f" in {self.source}" if self.source else ""
            raise ValueError(
                f"bodyparts {missing} not found for individual {self.individual!r}{where}; "
                f"available bodyparts: {list(self.bodyparts)}."
            )
        index = [self.bodyparts.index(b) for b in wanted]
        return replace(
            self,
            coordinates=self.coordinates[:, index],
            confidence=self.confidence[:, index],
            bodyparts=wanted,
        )

    def to_pynapple(self):
        """This session as pynapple objects on its timestamps.

        Returns
        -------
        coordinates : pynapple.TsdTensor of shape (n_frames, n_keypoints, n_dims)
        confidence : pynapple.TsdFrame of shape (n_frames, n_keypoints)
            Columns are the bodyparts.

        Raises
        ------
        ValueError
            If the session has neither timestamps nor fps.
        """
        return KeypointSessions([self]).to_pynapple()

    def __repr__(self) -> str:
        fps = "unknown" if self.fps is None else f"{self.fps:g}"
        return (
            f"KeypointData(individual={self.individual!r}, n_frames={self.n_frames}, "
            f"n_keypoints={self.n_keypoints}, n_dims={self.n_dims}, fps={fps}, "
            f"format={self.format!r}, "
            f"source={self.source!r})"
        )


class KeypointSessions(Sequence):
    """Several keypoint sessions, ready to concatenate on one time axis.

    `load_keypoints` returns this container: one session per individual per
    file. It behaves as a sequence of [`KeypointData`][behavhmm.io.KeypointData]
    (``len``, indexing, iteration, ``+``), and its properties concatenate the
    sessions in order for behavhmm's estimators, which take one time axis and
    a boolean ``session_starts`` mask (see the sessions guide).

    Parameters
    ----------
    sessions : iterable of KeypointData

    Raises
    ------
    TypeError
        If an element is not a `KeypointData`.

    Examples
    --------
    >>> import numpy as np
    >>> from behavhmm.io import KeypointData, KeypointSessions
    >>> a = KeypointData(np.zeros((5, 3, 2)), np.ones((5, 3)), ["nose", "neck", "tail"], fps=30.0)
    >>> b = KeypointData(np.ones((4, 3, 2)), np.ones((4, 3)), ["nose", "neck", "tail"], fps=30.0)
    >>> sessions = KeypointSessions([a, b])
    >>> sessions.coordinates.shape
    (9, 3, 2)
    >>> np.flatnonzero(sessions.session_starts).tolist()
    [0, 5]
    """

    def __init__(self, sessions: Iterable[KeypointData]):
        sessions = tuple(sessions)
        for i, s in enumerate(sessions):
            if not isinstance(s, KeypointData):
                raise TypeError(f"sessions[{i}] must be a KeypointData, got {type(s).__name__}.")
        self._sessions = sessions

    def __len__(self) -> int:
        return len(self._sessions)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return KeypointSessions(self._sessions[index])
        return self._sessions[index]

    def __iter__(self) -> Iterator[KeypointData]:
        return iter(self._sessions)

    def __add__(self, other) -> KeypointSessions:
        if isinstance(other, KeypointData):
            other = [other]
        try:
            return KeypointSessions([*self._sessions, *other])
        except TypeError:
            return NotImplemented

    def __repr__(self) -> str:
        lines = [f"KeypointSessions with {len(self)} session(s):"]
        lines += [f"  [{i}] {s!r}" for i, s in enumerate(self._sessions)]
        return "\n".join(lines)

    @property
    def n_sessions(self) -> int:
        """Number of sessions."""
        return len(self._sessions)

    @property
    def individuals(self) -> list[str]:
        """Individual of each session, in order."""
        return [s.individual for s in self._sessions]

    @property
    def sources(self) -> list[str | None]:
        """Source file of each session, in order."""
        return [s.source for s in self._sessions]

    @property
    def session_lengths(self) -> np.ndarray:
        """Number of frames of each session, int64 of shape (n_sessions,)."""
        return np.array([s.n_frames for s in self._sessions], dtype=np.int64)

    def _check_compatible(self) -> None:
        if not self._sessions:
            raise ValueError(
                "there are no sessions to concatenate (no file held the requested individuals)."
            )
        first = self._sessions[0]
        for i, s in enumerate(self._sessions[1:], start=1):
            if s.bodyparts != first.bodyparts:
                if set(s.bodyparts) == set(first.bodyparts):
                    detail = "the same names in another order"
                else:
                    only_a = sorted(set(first.bodyparts) - set(s.bodyparts))
                    only_b = sorted(set(s.bodyparts) - set(first.bodyparts))
                    detail = f"only in session 0: {only_a}, only in session {i}: {only_b}"
                raise ValueError(
                    f"sessions 0 and {i} have different bodyparts ({detail}); pass bodyparts=[...] "
                    "to "
                    "load_keypoints (or use select) to give every session the same keypoints in "
                    "one order."
                )
            if s.n_dims != first.n_dims:
                raise ValueError(
                    f"session 0 has {first.n_dims}-D keypoints but session {i} has {s.n_dims}-D "
                    "keypoints; "
                    "sessions on one time axis need the same number of spatial dimensions."
                )

    @property
    def bodyparts(self) -> tuple[str, ...]:
        """Bodypart names shared by every session.

        Raises
        ------
        ValueError
            If the sessions have different bodyparts or orders.
        """
        self._check_compatible()
        return self._sessions[0].bodyparts

    @property
    def coordinates(self) -> np.ndarray:
        """All sessions on one time axis, float64 of shape (n_time_bins, n_keypoints, n_dims).

        ``n_time_bins`` is the total number of frames, sessions in order.

        Raises
        ------
        ValueError
            If the sessions differ in bodyparts or dimensionality.
        """
        self._check_compatible()
        return np.concatenate([s.coordinates for s in self._sessions], axis=0)

    @property
    def confidence(self) -> np.ndarray:
        """All sessions' confidences on one time axis, float64 of shape (n_time_bins, n_keypoints).

        Raises
        ------
        ValueError
            If the sessions differ in bodyparts or dimensionality.
        """
        self._check_compatible()
        return np.concatenate([s.confidence for s in self._sessions], axis=0)

    @property
    def session_starts(self) -> np.ndarray:
        """Boolean mask of shape (n_time_bins,), True at each session's first frame."""
        lengths = self.session_lengths
        mask = np.zeros(int(lengths.sum()), dtype=bool)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        mask[starts[lengths > 0]] = True
        return mask

    def select(
        self, *, bodyparts: Sequence[str] | None = None, individuals: Sequence[str] | None = None
    ) -> KeypointSessions:
        """Keep some bodyparts (in the given order) and/or some individuals.

        Parameters
        ----------
        bodyparts : sequence of str, optional
            Keypoints to keep, in this order, in every session.
        individuals : sequence of str, optional
            Keep only the sessions of these individuals.

        Returns
        -------
        KeypointSessions

        Raises
        ------
        ValueError
            If a bodypart is missing from a session, or an individual from
            every session.
        """
        sessions = list(self._sessions)
        if individuals is not None:
            wanted = _names(individuals, "individuals")
            unknown = [i for i in wanted if i not in {s.individual for s in sessions}]
            if unknown:
                raise ValueError(
                    f"individuals {unknown} not found; the sessions hold "
                    f"{sorted(set(self.individuals))}."
                )
            sessions = [s for s in sessions if s.individual in wanted]
        if bodyparts is not None:
            sessions = [s.select_bodyparts(bodyparts) for s in sessions]
        return KeypointSessions(sessions)

    def timestamps(self, *, gap: float = 1.0) -> np.ndarray:
        """Increasing timestamps (seconds) for the concatenated time axis.

        Each session keeps its own clock (its timestamps, or ``frames / fps``)
        shifted so that it starts ``gap`` seconds after the previous session's
        last frame; the first session starts at its own first timestamp.

        Parameters
        ----------
        gap : float, default 1.0
            Seconds between consecutive sessions.

        Returns
        -------
        ndarray of float64, shape (n_time_bins,)

        Raises
        ------
        ValueError
            If a session has neither timestamps nor fps, or its timestamps do
            not increase.
        """
        if not gap > 0:
            raise ValueError(f"gap must be a positive number of seconds, got {gap!r}.")
        out = []
        previous_end = None
        for i, s in enumerate(self._sessions):
            if s.timestamps is None:
                raise ValueError(
                    f"session {i} ({s.source or 'in memory'}, individual {s.individual!r}) has no "
                    "timestamps "
                    "and no fps: pass fps= to load_keypoints to give it a clock."
                )
            t = s.timestamps
            if t.size > 1 and np.any(np.diff(t) <= 0):
                raise ValueError(f"session {i} has timestamps that do not increase strictly.")
            if previous_end is not None and t.size:
                t = t - t[0] + previous_end + gap
            out.append(t)
            if t.size:
                previous_end = t[-1]
        return np.concatenate(out) if out else np.zeros(0)

    def to_pynapple(self, *, gap: float = 1.0):
        """The concatenated sessions as pynapple objects, one epoch per session.

        Parameters
        ----------
        gap : float, default 1.0
            Seconds between consecutive sessions on the shared clock (see
            `timestamps`).

        Returns
        -------
        coordinates : pynapple.TsdTensor of shape (n_time_bins, n_keypoints, n_dims)
            Its ``time_support`` has one interval per session, which
            behavhmm's estimators read as ``session_starts``.
        confidence : pynapple.TsdFrame of shape (n_time_bins, n_keypoints)
            Same timestamps and ``time_support``; columns are the bodyparts.

        Raises
        ------
        ValueError
            If the sessions differ in bodyparts or dimensionality, or a
            session has no clock (no timestamps and no fps).
        """
        import pynapple as nap

        coordinates = self.coordinates
        confidence = self.confidence
        t = self.timestamps(gap=gap)
        starts, ends = [], []
        offset = 0
        for s in self._sessions:
            if s.n_frames == 0:
                continue
            seg = t[offset : offset + s.n_frames]
            offset += s.n_frames
            # half a frame after the last sample, so one-frame sessions have a non-empty epoch
            step = np.median(np.diff(seg)) if seg.size > 1 else (1.0 / s.fps if s.fps else gap / 2)
            starts.append(seg[0])
            ends.append(seg[-1] + min(step, gap) / 2)
        support = nap.IntervalSet(start=np.array(starts), end=np.array(ends))
        coords = nap.TsdTensor(t=t, d=coordinates, time_support=support)
        conf = nap.TsdFrame(t=t, d=confidence, time_support=support, columns=list(self.bodyparts))
        return coords, conf
