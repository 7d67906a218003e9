"""Egocentric alignment: centre each frame on the body and rotate its heading onto +x."""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from ._common import as_float_array, keypoint_array, session_slices, starts_mask, wrap

__all__ = ["EgocentricAlignment", "allocentric_from_egocentric", "egocentric_align"]


class EgocentricAlignment(NamedTuple):
    """Result of [`egocentric_align`][behavhmm.preprocessing.egocentric_align].

    Attributes
    ----------
    coordinates : ndarray of float64, shape (n_time_bins, n_keypoints, n_dims)
        Keypoints in the body frame: centroid at the origin, anterior along
        +x (and, in 3-D, z kept vertical), in the input's units.
    centroid : ndarray of float64, shape (n_time_bins, n_dims)
        The centroid subtracted from each frame, in the input's units.
    heading : ndarray of float64, shape (n_time_bins,)
        Angle in radians of the posterior-to-anterior vector in the x-y
        plane, counter-clockwise from +x (in image coordinates, where y
        points down, that is clockwise on screen). In (-pi, pi], or
        continuous within each session when ``unwrap=True``.
    """

    coordinates: Any
    centroid: Any
    heading: Any


def _indices(which, bodyparts, n_keypoints: int, name: str) -> list[int]:
    items = [which] if isinstance(which, str | numbers.Integral) else list(which)
    if not items:
        raise ValueError(f"{name} must name at least one keypoint.")
    out = []
    for item in items:
        if isinstance(item, str):
            if bodyparts is None:
                raise TypeError(
                    f"{name} names keypoint {item!r}; pass bodyparts=[...] to look names up, or "
                    "use indices."
                )
            names = list(bodyparts)
            if item not in names:
                raise ValueError(f"{name}: bodypart {item!r} not found; bodyparts are {names}.")
            out.append(names.index(item))
        elif isinstance(item, numbers.Integral) and not isinstance(item, bool):
            if not -n_keypoints <= item < n_keypoints:
                raise ValueError(
                    f"{name}: keypoint index {item} is out of range for {n_keypoints} keypoints."
                )
            out.append(int(item) % n_keypoints)
        else:
            raise TypeError(
                f"{name} must be a keypoint index, a bodypart name, or a list of them, got "
                f"{item!r}."
            )
    return out


def _rotate_xy(points: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotate the x-y components of (n_time_bins, ..., n_dims) by angle (n_time_bins,) "
    "counter-clockwise."""
    shape = (-1,) + (1,) * (points.ndim - 2)
    cos, sin = np.cos(angle).reshape(shape), np.sin(angle).reshape(shape)
    out = points.copy()
    out[..., 0] = cos * points[..., 0] - sin * points[..., 1]
    out[..., 1] = sin * points[..., 0] + cos * points[..., 1]
    return out


def egocentric_align(
    coordinates,
    anterior,
    posterior,
    *,
    bodyparts: Sequence[str] | None = None,
    centroid_bodyparts=None,
    session_starts=None,
    unwrap: bool = False,
) -> EgocentricAlignment:
    """Centre each frame on the body and rotate it so that the animal faces +x.

    The centroid of a frame is the mean position of ``centroid_bodyparts``
    (all keypoints by default, ignoring missing ones). The heading is the
    angle of the vector from the posterior to the anterior point (each the
    mean of the keypoints named) in the x-y plane. The aligned keypoints are
    the centred keypoints rotated by ``-heading`` about the vertical axis, so
    the anterior point lies on +x. For 3-D keypoints the rotation is about
    z (z is taken as vertical, the ground plane is x-y), and z is centred too.

    Parameters
    ----------
    coordinates : array-like or pynapple TsdTensor of shape (n_time_bins, n_keypoints, n_dims)
        2-D (x, y) or 3-D (x, y, z) keypoints in any spatial unit. Frames
        where an anterior or posterior point is missing (NaN) give NaN; fill
        gaps first with `interpolate_nans` or `remove_outliers`.
    anterior, posterior : int, str, or sequence of int or str
        Keypoints that define the heading: indices, or names looked up in
        ``bodyparts`` (for example ``anterior="nose", posterior="tail_base"``).
    bodyparts : sequence of str, optional
        Names of the keypoints, in order (``KeypointSessions.bodyparts``);
        needed when keypoints are given by name.
    centroid_bodyparts : int, str, or sequence of int or str, optional
        Keypoints averaged for the centroid (default: all).
    session_starts : None, bool array-like, int array-like, or pynapple IntervalSet
        Sessions; only used by ``unwrap`` (the heading is unwrapped within
        each session, never across a session start).
    unwrap : bool, default False
        Return a heading that is continuous within each session
        (``numpy.unwrap``) instead of wrapped to (-pi, pi].

    Returns
    -------
    EgocentricAlignment
        ``(coordinates, centroid, heading)``; pynapple input gives pynapple
        outputs on the same timestamps.

    Raises
    ------
    ValueError
        If ``coordinates`` has the wrong shape, a bodypart is unknown or an
        index out of range, or anterior and posterior are the same points.
    TypeError
        If a keypoint is named but ``bodyparts`` is not given.

    See Also
    --------
    allocentric_from_egocentric : the inverse.

    Examples
    --------
    >>> import numpy as np
    >>> from behavhmm.preprocessing import egocentric_align
    >>> frame = np.array([[[0.0, 1.0], [0.0, -1.0]]])  # nose above the tail: heading +90 degrees
    >>> out = egocentric_align(frame, anterior=0, posterior=1)
    >>> (np.round(out.coordinates[0], 6) + 0.0).tolist(), float(np.degrees(out.heading[0]))
    ([[1.0, 0.0], [-1.0, 0.0]], 90.0)
    """
    coords, info = keypoint_array(coordinates)
    n_time_bins, n_keypoints, _ = coords.shape
    front = _indices(anterior, bodyparts, n_keypoints, "anterior")
    back = _indices(posterior, bodyparts, n_keypoints, "posterior")
    if sorted(front) == sorted(back):
        raise ValueError(
            "anterior and posterior must be different keypoints; the heading is the vector between "
            "them."
        )
    centre_idx = (
        list(range(n_keypoints))
        if centroid_bodyparts is None
        else _indices(centroid_bodyparts, bodyparts, n_keypoints, "centroid_bodyparts")
    )
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore", RuntimeWarning
        )  # frames where every chosen point is missing
        centroid = np.nanmean(coords[:, centre_idx], axis=1)
        direction = np.nanmean(coords[:, front, :2], axis=1) - np.nanmean(
            coords[:, back, :2], axis=1
        )
    heading = np.arctan2(direction[:, 1], direction[:, 0])
    aligned = _rotate_xy(coords - centroid[:, None, :], -heading)
    if unwrap:
        mask = starts_mask(session_starts, n_time_bins, info)
        for sl in session_slices(mask):
            block = heading[sl]
            ok = ~np.isnan(block)
            block[ok] = np.unwrap(block[ok])
            heading[sl] = block
    return EgocentricAlignment(wrap(aligned, info), wrap(centroid, info), wrap(heading, info))


def allocentric_from_egocentric(coordinates, centroid, heading):
    """Undo [`egocentric_align`][behavhmm.preprocessing.egocentric_align].

    Rotates the keypoints by ``heading`` about the vertical axis and adds the centroid.

    Parameters
    ----------
    coordinates : array-like or pynapple TsdTensor of shape (n_time_bins, n_keypoints, n_dims)
        Keypoints in the body frame (for example simulated by a model).
    centroid : array-like of shape (n_time_bins, n_dims)
        Centroid of each frame, in the keypoints' units.
    heading : array-like of shape (n_time_bins,)
        Heading in radians (wrapped or unwrapped).

    Returns
    -------
    ndarray of float64, shape (n_time_bins, n_keypoints, n_dims)
        Keypoints in the original (arena) frame; pynapple in, pynapple out.

    Raises
    ------
    ValueError
        If the shapes do not match.
    """
    coords, info = keypoint_array(coordinates)
    n_time_bins, _, n_dims = coords.shape
    centroid, _ = as_float_array(centroid, "centroid")
    heading, _ = as_float_array(heading, "heading")
    if centroid.shape != (n_time_bins, n_dims):
        raise ValueError(
            f"centroid must have shape (n_time_bins, n_dims) = {(n_time_bins, n_dims)}, got "
            f"{centroid.shape}."
        )
    if heading.shape != (n_time_bins,):
        raise ValueError(
            f"heading must have shape (n_time_bins,) = ({n_time_bins},), got {heading.shape}."
        )
    return wrap(_rotate_xy(coords, heading) + centroid[:, None, :], info)
