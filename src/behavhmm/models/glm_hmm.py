"""Moved to `behavhmm.models.glmhmm.estimator`; re-exported here for one release.

The estimator looks its programs up in `behavhmm.models.glmhmm.estimator`: patch them there.
"""

from .glmhmm.estimator import *  # noqa: F403
from .glmhmm.estimator import __all__  # noqa: F401
