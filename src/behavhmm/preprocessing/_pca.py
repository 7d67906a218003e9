"""PCA of keypoints with scikit-learn, and PCA parameters as plain arrays (no pickle)."""

from __future__ import annotations

import numbers
import os
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ._common import as_float_array, wrap

__all__ = [
    "PCAResult",
    "apply_pca",
    "fit_pca",
    "load_pca",
    "pca_from_arrays",
    "pca_to_arrays",
    "save_pca",
]

#: Arrays that describe a fitted ``sklearn.decomposition.PCA``, with their dimensionality.
PCA_ARRAYS = {
    "components_": 2,
    "mean_": 1,
    "explained_variance_": 1,
    "explained_variance_ratio_": 1,
    "singular_values_": 1,
    "noise_variance_": 0,
    "n_samples_": 0,
    "whiten": 0,
}
_FORMAT_KEY = "behavhmm_pca_format"
_FORMAT_VERSION = 1


class PCAResult(NamedTuple):
    """Result of [`fit_pca`][behavhmm.preprocessing.fit_pca].

    Attributes
    ----------
    scores : ndarray of float64, shape (n_time_bins, n_components)
        Principal-component scores of every frame (NaN for frames with a
        missing value), in the input's units (or unit variance if whitened).
    pca : sklearn.decomposition.PCA
        The fitted PCA; ``pca_to_arrays(pca)`` gives its parameters as arrays.
    """

    scores: Any
    pca: Any


def _flatten(X, name: str = "X"):
    arr, info = as_float_array(X, name, min_ndim=2)
    return arr.reshape(arr.shape[0], -1), info


def _check_n_components(n_components, n_samples: int, n_features: int):
    if n_components is None:
        return None
    if isinstance(n_components, bool):
        raise TypeError(
            f"n_components must be an int, a float in (0, 1) or None, got {n_components!r}."
        )
    if isinstance(n_components, numbers.Integral):
        limit = min(n_samples, n_features)
        if not 1 <= n_components <= limit:
            raise ValueError(
                f"n_components={n_components} must be between 1 and min(n_complete_frames, "
                f"n_features) = {limit}."
            )
        return int(n_components)
    if isinstance(n_components, numbers.Real):
        if not 0 < n_components < 1:
            raise ValueError(
                f"n_components={n_components} as a float is a fraction of variance to explain and "
                "must be in (0, 1)."
            )
        return float(n_components)
    raise TypeError(
        "n_components must be an int, a float in (0, 1) or None, got "
        f"{type(n_components).__name__}."
    )


def fit_pca(X, n_components: int | float | None = 0.9, *, whiten: bool = False) -> PCAResult:
    """Fit a PCA (scikit-learn) to keypoints or features and return the scores.

    Keypoints are flattened to ``n_keypoints * n_dims`` features per frame
    (usually after [`egocentric_align`][behavhmm.preprocessing.egocentric_align]).
    Frames with a missing value are left out of the fit and get NaN scores.
    PCA treats frames independently, so sessions need no marking.

    Parameters
    ----------
    X : array-like or pynapple object of shape (n_time_bins, n_keypoints, n_dims)
        Or of shape (n_time_bins, n_features).
        Data in any unit.
    n_components : int, float or None, default 0.9
        A float in (0, 1) keeps the fewest components whose cumulative
        explained variance exceeds it (scikit-learn's rule); an int keeps that
        many; None keeps all.
    whiten : bool, default False
        Scale the scores to unit variance (``PCA(whiten=True)``).

    Returns
    -------
    PCAResult
        ``(scores, pca)``: scores of shape (n_time_bins, n_components) (a
        ``TsdFrame`` for pynapple input) and the fitted
        ``sklearn.decomposition.PCA``.

    Raises
    ------
    ValueError
        If fewer than 2 frames are complete, or ``n_components`` is out of
        range.
    TypeError
        If ``n_components`` has the wrong type.

    See Also
    --------
    apply_pca : scores of new data.
    pca_to_arrays, save_pca : store the fitted PCA without pickle.
    behavhmm.plotting.scree_plot : plot the explained variance.

    Examples
    --------
    >>> import numpy as np
    >>> from behavhmm.preprocessing import fit_pca
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(500, 2)) @ rng.normal(size=(2, 6)) + 0.01 * rng.normal(size=(500, 6))
    >>> scores, pca = fit_pca(X, n_components=0.99)
    >>> scores.shape, int(pca.n_components_)
    ((500, 2), 2)
    """
    from sklearn.decomposition import PCA

    flat, info = _flatten(X)
    complete = ~np.isnan(flat).any(axis=1)
    n_complete = int(complete.sum())
    if n_complete < 2:
        raise ValueError(
            f"X has {n_complete} complete frame(s) (without NaN); PCA needs at least 2."
        )
    n_components = _check_n_components(n_components, n_complete, flat.shape[1])
    pca = PCA(n_components=n_components, whiten=bool(whiten), svd_solver="full")
    pca.fit(flat[complete])
    return PCAResult(_scores(pca, flat, info), pca)


def _scores(pca, flat: np.ndarray, info):
    complete = ~np.isnan(flat).any(axis=1)
    scores = np.full((flat.shape[0], pca.n_components_), np.nan)
    if complete.any():
        scores[complete] = pca.transform(flat[complete])
    return wrap(scores, info)


def apply_pca(pca, X):
    """Scores of new data under a fitted PCA (NaN for frames with a missing value).

    Parameters
    ----------
    pca : sklearn.decomposition.PCA
        Fitted, or rebuilt with `pca_from_arrays` / `load_pca`.
    X : array-like or pynapple object of shape (n_time_bins, n_keypoints, n_dims)
        Or of shape (n_time_bins, n_features).
        ``n_keypoints * n_dims`` must equal the PCA's number of features.

    Returns
    -------
    ndarray of float64, shape (n_time_bins, n_components)
        Pynapple input gives a ``TsdFrame``.

    Raises
    ------
    ValueError
        If the number of features differs from the PCA's.
    """
    flat, info = _flatten(X)
    if flat.shape[1] != pca.n_features_in_:
        raise ValueError(
            f"X has {flat.shape[1]} features per frame but the PCA was fitted on "
            f"{pca.n_features_in_}."
        )
    return _scores(pca, flat, info)


def pca_to_arrays(pca) -> dict[str, np.ndarray]:
    """The parameters of a fitted PCA as a dict of NumPy arrays.

    Parameters
    ----------
    pca : sklearn.decomposition.PCA
        A fitted PCA.

    Returns
    -------
    dict of str to ndarray
        ``components_`` (n_components, n_features), ``mean_``
        (n_features,), ``explained_variance_``,
        ``explained_variance_ratio_``, ``singular_values_`` (n_components,),
        and 0-d ``noise_variance_``, ``n_samples_``, ``whiten``, plus a
        format version. Save it with ``numpy.savez`` (or `save_pca`) and
        rebuild the PCA with `pca_from_arrays`.

    Raises
    ------
    TypeError
        If ``pca`` is not a fitted ``sklearn.decomposition.PCA``.
    """
    from sklearn.decomposition import PCA

    if not isinstance(pca, PCA) or not hasattr(pca, "components_"):
        raise TypeError(
            f"pca must be a fitted sklearn.decomposition.PCA, got {type(pca).__name__}."
        )
    arrays = {name: np.array(getattr(pca, name)) for name in PCA_ARRAYS}
    arrays[_FORMAT_KEY] = np.array(_FORMAT_VERSION)
    return arrays


def pca_from_arrays(arrays) -> Any:
    """Rebuild a fitted ``sklearn.decomposition.PCA`` from `pca_to_arrays` output.

    The result transforms data exactly (bit for bit) as the original did.

    Parameters
    ----------
    arrays : mapping of str to array-like
        For example ``dict(numpy.load(path, allow_pickle=False))``.

    Returns
    -------
    sklearn.decomposition.PCA

    Raises
    ------
    ValueError
        If an array is missing or has a shape inconsistent with the others,
        or the format version is unknown.
    """
    from sklearn.decomposition import PCA

    missing = [k for k in PCA_ARRAYS if k not in arrays]
    if missing:
        raise ValueError(f"PCA arrays are missing {missing}; expected the keys of pca_to_arrays().")
    version = int(np.asarray(arrays.get(_FORMAT_KEY, _FORMAT_VERSION)))
    if version != _FORMAT_VERSION:
        raise ValueError(
            f"PCA arrays have format version {version}; this behavhmm reads version "
            f"{_FORMAT_VERSION}."
        )
    values = {k: np.asarray(arrays[k]) for k in PCA_ARRAYS}
    for key, ndim in PCA_ARRAYS.items():
        if values[key].ndim != ndim:
            raise ValueError(f"PCA array {key} must be {ndim}-D, got shape {values[key].shape}.")
    n_components, n_features = values["components_"].shape
    for key in ("explained_variance_", "explained_variance_ratio_", "singular_values_"):
        if values[key].shape != (n_components,):
            raise ValueError(
                f"PCA array {key} must have shape ({n_components},), got {values[key].shape}."
            )
    if values["mean_"].shape != (n_features,):
        raise ValueError(
            f"PCA array mean_ must have shape ({n_features},), got {values['mean_'].shape}."
        )
    pca = PCA(n_components=n_components, whiten=bool(values["whiten"]), svd_solver="full")
    for key in (
        "components_",
        "mean_",
        "explained_variance_",
        "explained_variance_ratio_",
        "singular_values_",
    ):
        setattr(
            pca, key, values[key].copy(order="K")
        )  # keep the memory layout: BLAS results depend on it
    pca.noise_variance_ = values["noise_variance_"][()]
    pca.n_samples_ = int(values["n_samples_"])
    pca.n_components_ = n_components
    pca.n_features_in_ = n_features
    return pca


def save_pca(path: str | os.PathLike, pca) -> Path:
    """Write a fitted PCA's arrays to a ``.npz`` file (no pickle).

    Parameters
    ----------
    path : str or path-like
        Destination; ``.npz`` is appended by NumPy if missing.
    pca : sklearn.decomposition.PCA

    Returns
    -------
    pathlib.Path
        The file written.
    """
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    np.savez(path, **pca_to_arrays(pca))
    return path


def load_pca(path: str | os.PathLike):
    """Read a PCA written by `save_pca` (``allow_pickle=False``).

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    sklearn.decomposition.PCA

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If the file is not a readable .npz file (truncated, corrupted, object
        arrays that need pickle), lacks an array or holds inconsistent shapes;
        the message names the file.
    """
    from .._files import read_npz

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"PCA file not found: {path}")
    arrays = read_npz(path, what="PCA file")  # sizes checked before decompression; never pickle
    try:
        return pca_from_arrays(arrays)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: {exc}") from None
