"""Keypoint preprocessing: missing values, outliers, egocentric alignment, PCA, scaling.

Every function takes time on the first axis, NumPy or pynapple input (pynapple
gives pynapple output on the same timestamps), and, where time matters, a
``session_starts`` argument so that nothing crosses from one session into the
next. Keypoints are (n_time_bins, n_keypoints, n_dims) arrays with n_dims 2 or
3, as [`behavhmm.io.load_keypoints`][behavhmm.io.load_keypoints] returns them.
"""

from ._alignment import EgocentricAlignment, allocentric_from_egocentric, egocentric_align
from ._interpolate import interpolate_nans
from ._outliers import OutlierRemoval, remove_outliers
from ._pca import PCAResult, apply_pca, fit_pca, load_pca, pca_from_arrays, pca_to_arrays, save_pca
from ._scaling import whiten, zscore
from ._social import social_features

__all__ = [
    "social_features",
    "EgocentricAlignment",
    "OutlierRemoval",
    "PCAResult",
    "allocentric_from_egocentric",
    "apply_pca",
    "egocentric_align",
    "fit_pca",
    "interpolate_nans",
    "load_pca",
    "pca_from_arrays",
    "pca_to_arrays",
    "remove_outliers",
    "save_pca",
    "whiten",
    "zscore",
]
