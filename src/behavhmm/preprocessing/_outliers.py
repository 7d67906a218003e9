"""Outlier keypoints: far from the body's centre compared with their usual distance."""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import numpy as np

from ._common import as_float_array, keypoint_array, session_slices, starts_mask, wrap
from ._interpolate import interpolate_nans

__all__ = ["OutlierRemoval", "remove_outliers"]


class OutlierRemoval(NamedTuple):
    """Result of [`remove_outliers`][behavhmm.preprocessing.remove_outliers].

    Attributes
    ----------
    coordinates : ndarray of float64, shape (n_time_bins, n_keypoints, n_dims)
        Keypoints with outliers (and, if interpolated, all missing points)
        replaced, in the input's units.
    confidence : ndarray of float64, shape (n_time_bins, n_keypoints)
        The input confidence with 0 at outliers and at missing points.
    outliers : ndarray of bool, shape (n_time_bins, n_keypoints)
        True where a point was flagged as an outlier.
    distances : ndarray of float64, shape (n_time_bins, n_keypoints)
        Distance of each keypoint to its frame's median position (NaN where
        the point is missing), in the input's units.
    """

    coordinates: Any
    confidence: Any
    outliers: Any
    distances: Any


def _median_abs_deviation(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column median and normal-consistent MAD, ignoring NaN (scipy.stats)."""
    from scipy.stats import median_abs_deviation

    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns give NaN: never outliers
        median = np.nanmedian(d, axis=0)
        mad = median_abs_deviation(d, axis=0, scale="normal", nan_policy="omit")
    return median, np.asarray(mad, dtype=np.float64)


def remove_outliers(
    coordinates,
    confidence=None,
    session_starts=None,
    *,
    threshold: float = 6.0,
    per_session: bool = True,
    interpolate: bool = True,
) -> OutlierRemoval:
    r"""Flag keypoints far from their frame's centre, set them NaN, and interpolate.

    In each frame the centre is the median position of the keypoints (the
    coordinate-wise median over keypoints, robust to a few wild points). For
    keypoint \(k\) at frame \(t\), with distance
    \(d_{tk} = \lVert x_{tk} - \operatorname{median}_j x_{tj} \rVert\) to that
    centre, the point is an outlier when

    $$
    d_{tk} > \operatorname{median}_t(d_{tk})
             + \text{threshold} \cdot \operatorname{MAD}_t(d_{tk}),
    $$

    where the median and the median absolute deviation (scaled to match a
    normal standard deviation, ``scipy.stats.median_abs_deviation(...,
    scale="normal")``) are taken over the frames of each keypoint — within
    each session by default. Outliers become NaN with confidence 0; then
    every NaN is filled by linear interpolation within its session
    ([`interpolate_nans`][behavhmm.preprocessing.interpolate_nans]).

    Parameters
    ----------
    coordinates : array-like or pynapple TsdTensor of shape (n_time_bins, n_keypoints, n_dims)
        2-D or 3-D keypoints in any spatial unit; NaN for missing points.
    confidence : array-like of shape (n_time_bins, n_keypoints), optional
        Point confidences in [0, 1]; ones if omitted.
    session_starts : None, bool array-like, int array-like, or pynapple IntervalSet
        Sessions (see the sessions guide).
    threshold : float, default 6.0
        Number of (normal-scaled) MADs above the median distance beyond which
        a point is an outlier. Distances to the body centre are skewed and
        heavy-tailed in real behaviour (a stretched-out tail, a rearing
        mouse), so the default keeps to gross tracking errors; lower it to be
        stricter.
    per_session : bool, default True
        Compute each keypoint's median and MAD per session (animals and
        cameras differ between sessions); False pools all sessions.
    interpolate : bool, default True
        Fill outliers and missing points by linear interpolation within each
        session; False leaves them NaN.

    Returns
    -------
    OutlierRemoval
        ``(coordinates, confidence, outliers, distances)``; with pynapple
        input, ``coordinates`` is a ``TsdTensor`` and the others are
        ``TsdFrame`` on the same timestamps.

    Raises
    ------
    ValueError
        If ``coordinates`` is not (n_time_bins, n_keypoints, n_dims) with
        n_dims 2 or 3, ``confidence`` has another shape, ``threshold`` is
        not positive, or ``session_starts`` is invalid.

    References
    ----------
    Leys, C., Ley, C., Klein, O., Bernard, P. & Licata, L. (2013). Detecting
    outliers: do not use standard deviation around the mean, use absolute
    deviation around the median. *J. Exp. Soc. Psychol.* 49, 764-766.
    """
    if not (
        isinstance(threshold, int | float | np.floating)
        and np.isfinite(threshold)
        and threshold > 0
    ):
        raise ValueError(f"threshold must be a positive number of MADs, got {threshold!r}.")
    coords, info = keypoint_array(coordinates)
    n_time_bins, n_keypoints, _ = coords.shape
    if confidence is None:
        conf = np.ones((n_time_bins, n_keypoints))
    else:
        conf, _ = as_float_array(confidence, "confidence")
        if conf.shape != (n_time_bins, n_keypoints):
            raise ValueError(
                "confidence must have shape (n_time_bins, n_keypoints) = "
                f"{(n_time_bins, n_keypoints)}, "
                f"got {conf.shape}."
            )
    mask = starts_mask(session_starts, n_time_bins, info)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # frames with every keypoint missing
        centre = np.nanmedian(coords, axis=1, keepdims=True)
    distances = np.linalg.norm(
        coords - centre, axis=2
    )  # NaN where the point (or the centre) is missing
    outliers = np.zeros((n_time_bins, n_keypoints), dtype=bool)
    blocks = session_slices(mask) if per_session else [slice(0, n_time_bins)]
    for sl in blocks:
        d = distances[sl]
        median, mad = _median_abs_deviation(d)
        with np.errstate(invalid="ignore"):
            outliers[sl] = d > median + threshold * mad
    cleaned = coords.copy()
    cleaned[outliers] = np.nan
    missing = np.isnan(cleaned).any(axis=2)
    conf = np.where(missing, 0.0, conf)
    if interpolate:
        cleaned = interpolate_nans(cleaned, mask)
    return OutlierRemoval(
        coordinates=wrap(cleaned, info),
        confidence=wrap(conf, info),
        outliers=wrap(outliers, info),
        distances=wrap(distances, info),
    )
