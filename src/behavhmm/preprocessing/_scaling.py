"""Z-scoring and whitening, over all sessions or per session."""

from __future__ import annotations

import numpy as np

from ._common import as_float_array, session_slices, starts_mask, wrap

__all__ = ["whiten", "zscore"]

_METHODS = ("zca", "pca")


def _blocks(mask, per_session: bool, n: int):
    return session_slices(mask) if per_session else [slice(0, n)]


def zscore(
    X,
    session_starts=None,
    *,
    per_session: bool = False,
    with_mean: bool = True,
    with_std: bool = True,
):
    """Standardise every column to zero mean and unit variance (scikit-learn's ``StandardScaler``).

    Parameters
    ----------
    X : array-like or pynapple object of shape (n_time_bins, ...)
        Features, PC scores or keypoints, time first; NaN is ignored in the
        statistics and kept in the output.
    session_starts : None, bool array-like, int array-like, or pynapple IntervalSet
        Sessions; used when ``per_session`` is True.
    per_session : bool, default False
        Standardise each session with its own mean and standard deviation
        (removes offsets between recordings) instead of pooling all frames.
    with_mean, with_std : bool, default True
        Centre, and scale to unit (population) standard deviation. Constant
        columns are centred only.

    Returns
    -------
    ndarray of float64, same shape as X
        Unitless; pynapple input gives pynapple output.

    Raises
    ------
    ValueError
        If X holds infinite values or ``session_starts`` is invalid.
    """
    from sklearn.preprocessing import StandardScaler

    arr, info = as_float_array(X, "X")
    flat = arr.reshape(arr.shape[0], -1)
    mask = starts_mask(session_starts, arr.shape[0], info)
    out = np.empty_like(flat)
    for sl in _blocks(mask, per_session, arr.shape[0]):
        out[sl] = StandardScaler(with_mean=with_mean, with_std=with_std).fit_transform(flat[sl])
    columns = getattr(X, "columns", None) if info is not None and arr.ndim == 2 else None
    return wrap(out.reshape(arr.shape), info, columns)


def whiten(
    X, session_starts=None, *, per_session: bool = False, method: str = "zca", rtol: float = 1e-10
):
    """Decorrelate the columns and scale them to unit variance.

    Fitted with ``sklearn.decomposition.PCA(whiten=True)`` on the complete
    frames (no NaN). ``"pca"`` whitening returns the whitened principal
    components; ``"zca"`` (Mahalanobis) whitening rotates them back onto the
    original columns, so each output column stays closest to its input
    column. Directions with variance below ``rtol`` times the largest are
    dropped (rank-deficient data, for example keypoints after egocentric
    alignment).

    Parameters
    ----------
    X : array-like or pynapple object of shape (n_time_bins, ...)
        Time first; frames with a NaN are excluded from the fit and are NaN
        in the output.
    session_starts : None, bool array-like, int array-like, or pynapple IntervalSet
        Sessions; used when ``per_session`` is True.
    per_session : bool, default False
        Whiten each session with its own covariance.
    method : {"zca", "pca"}, default "zca"
    rtol : float, default 1e-10
        Relative variance below which a direction counts as empty.

    Returns
    -------
    ndarray of float64
        ``"zca"``: the shape of X. ``"pca"``: (n_time_bins, rank), which
        requires ``per_session=False`` (ranks may differ between sessions).
        The sample covariance of the complete frames (denominator n - 1) is
        the identity on the kept directions. Pynapple in, pynapple out.

    Raises
    ------
    ValueError
        If ``method`` is unknown, a block has fewer than 2 complete frames,
        or ``method="pca"`` with ``per_session=True``.
    """
    from sklearn.decomposition import PCA

    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}.")
    if method == "pca" and per_session:
        raise ValueError(
            "method='pca' with per_session=True would give sessions different numbers of columns; "
            "use 'zca'."
        )
    arr, info = as_float_array(X, "X")
    flat = arr.reshape(arr.shape[0], -1)
    mask = starts_mask(session_starts, arr.shape[0], info)
    pieces = []
    for sl in _blocks(mask, per_session, arr.shape[0]):
        block = flat[sl]
        complete = ~np.isnan(block).any(axis=1)
        if complete.sum() < 2:
            raise ValueError(
                f"frames {sl.start}-{sl.stop - 1} hold {int(complete.sum())} complete frame(s); "
                "whitening needs 2."
            )
        pca = PCA(whiten=True, svd_solver="full").fit(block[complete])
        rank = int(np.sum(pca.explained_variance_ > rtol * pca.explained_variance_[0]))
        scores = np.full((block.shape[0], rank), np.nan)
        scores[complete] = pca.transform(block[complete])[:, :rank]
        pieces.append(scores @ pca.components_[:rank] if method == "zca" else scores)
    out = np.concatenate(pieces, axis=0)
    if method == "zca":
        out = out.reshape(arr.shape)
        columns = getattr(X, "columns", None) if info is not None and arr.ndim == 2 else None
        return wrap(out, info, columns)
    return wrap(out, info)
