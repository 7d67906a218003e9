"""Moved to `behavhmm.models.arhmm.estimator`; re-exported here for one release.

The estimator looks its programs up in `behavhmm.models.arhmm.estimator`: patch them there.
"""

from .arhmm.estimator import (  # noqa: F401
    AR_PARAMS_REGISTRY,
    ARHMM,
    INITIAL_DOF,
    ARHMMParams,
    kmeans_ar_params,
    lagged_design,
    random_ar_params,
)
