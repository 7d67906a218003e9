"""Social features of several animals: distance, relative heading, position in each other's body
frame."""

from __future__ import annotations

import warnings

import numpy as np

from ._alignment import _indices

__all__ = ["social_features"]


def _wrap(angle: np.ndarray) -> np.ndarray:
    """Angles wrapped to (-pi, pi]."""
    out = np.mod(angle + np.pi, 2 * np.pi) - np.pi
    return np.where(out == -np.pi, np.pi, out)


def social_features(
    coordinates,
    anterior,
    posterior,
    *,
    bodyparts=None,
    individuals=None,
    centroid_bodyparts=None,
    n_individuals: int | None = None,
):
    """Pairwise social features of several tracked animals.

    For every animal ``a`` the centroid ``c_a`` (mean of
    ``centroid_bodyparts``, default all keypoints, ignoring missing ones) and
    the heading ``h_a`` (angle of the posterior-to-anterior vector in the x-y
    plane, counter-clockwise from +x, as in
    [`egocentric_align`][behavhmm.preprocessing.egocentric_align]) are
    computed per frame. Then, for every pair:

    - ``distance_{a}_{b}`` (a before b): ``|c_b - c_a|`` in the x-y plane,
      in the input's units;
    - ``relative_heading_{a}_{b}``: ``h_b - h_a`` in radians, in (-pi, pi];
    - ``facing_angle_{a}_{b}``: angle of ``c_b - c_a`` seen from ``a``'s
      heading, in (-pi, pi] (0: ``b`` straight ahead of ``a``);
    - ``x_{b}_in_{a}``, ``y_{b}_in_{a}``: ``b``'s centroid in ``a``'s body
      frame (``a``'s centroid at the origin, ``a`` facing +x).

    Parameters
    ----------
    coordinates : array-like of shape (n_time_bins, n_individuals, n_keypoints, n_dims)
        2-D or 3-D keypoints (only x and y are used). A stacked array of
        shape (n_time_bins, n_individuals * n_keypoints, n_dims) (from
        ``load_keypoints(..., individual_layout="stack")``) is accepted with
        ``n_individuals``.
    anterior, posterior : int, str, or sequence of them
        Keypoints defining the heading, by index or name in ``bodyparts``.
    bodyparts : sequence of str, optional
        Keypoint names of one animal.
    individuals : sequence of str, optional
        Animal names for the column names (default ``"0"``, ``"1"``, ...).
    centroid_bodyparts : optional
        Keypoints averaged for the centroid (default: all).
    n_individuals : int, optional
        Needed for a stacked 3-D ``coordinates``.

    Returns
    -------
    pandas.DataFrame of shape (n_time_bins, n_features)
        NaN where a keypoint needed is missing.

    Raises
    ------
    ValueError
        For the wrong shape, fewer than two animals, names of the wrong
        length, or an animal that is never tracked (all NaN).

    Examples
    --------
    >>> kp = load_keypoints("flies.slp", individual_layout="stack")  # doctest: +SKIP
    >>> social = social_features(
    ...     kp.coordinates, "head", "thorax", bodyparts=["head", "thorax", ...],
    ...     n_individuals=2, individuals=["female", "male"],
    ... )  # doctest: +SKIP
    """
    import pandas as pd

    arr = np.asarray(coordinates, dtype=float)
    if arr.ndim == 3:
        if n_individuals is None or arr.shape[1] % int(n_individuals):
            raise ValueError(
                "a stacked coordinates array (n_time_bins, n_individuals * n_keypoints, n_dims) "
                f"needs n_individuals dividing its {arr.shape[1]} keypoints, got "
                f"n_individuals={n_individuals!r}."
            )
        n = int(n_individuals)
        arr = arr.reshape(arr.shape[0], n, arr.shape[1] // n, arr.shape[2])
    if arr.ndim != 4 or arr.shape[-1] not in (2, 3):
        raise ValueError(
            "coordinates must have shape (n_time_bins, n_individuals, n_keypoints, n_dims) with "
            f"n_dims 2 or 3, got {arr.shape}."
        )
    n_time, n_ind, n_kp, _ = arr.shape
    if n_ind < 2:
        raise ValueError(f"social features need at least two individuals, got {n_ind}.")
    names = [str(i) for i in range(n_ind)] if individuals is None else [str(i) for i in individuals]
    if len(names) != n_ind:
        raise ValueError(f"individuals has {len(names)} names for {n_ind} animals.")
    for i, name in enumerate(names):
        if np.isnan(arr[:, i]).all():
            raise ValueError(f"individual {name!r} is never tracked (all NaN); leave it out.")
    ant = _indices(anterior, bodyparts, n_kp, "anterior")
    post = _indices(posterior, bodyparts, n_kp, "posterior")
    cen = (
        list(range(n_kp))
        if centroid_bodyparts is None
        else _indices(centroid_bodyparts, bodyparts, n_kp, "centroid_bodyparts")
    )
    xy = arr[..., :2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # frames with every point missing give NaN
        centroid = np.nanmean(xy[:, :, cen], axis=2)  # (T, n_ind, 2)
        direction = np.nanmean(xy[:, :, ant], axis=2) - np.nanmean(xy[:, :, post], axis=2)
    heading = np.arctan2(direction[..., 1], direction[..., 0])  # (T, n_ind)
    columns = {}
    for a in range(n_ind):
        for b in range(n_ind):
            if a == b:
                continue
            d = centroid[:, b] - centroid[:, a]
            na, nb = names[a], names[b]
            if a < b:
                columns[f"distance_{na}_{nb}"] = np.hypot(d[:, 0], d[:, 1])
            columns[f"relative_heading_{na}_{nb}"] = _wrap(heading[:, b] - heading[:, a])
            columns[f"facing_angle_{na}_{nb}"] = _wrap(np.arctan2(d[:, 1], d[:, 0]) - heading[:, a])
            cos, sin = np.cos(heading[:, a]), np.sin(heading[:, a])
            columns[f"x_{nb}_in_{na}"] = cos * d[:, 0] + sin * d[:, 1]
            columns[f"y_{nb}_in_{na}"] = -sin * d[:, 0] + cos * d[:, 1]
    return pd.DataFrame(columns)
