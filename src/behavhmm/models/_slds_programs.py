"""Moved to `behavhmm.models.keypoint_slds.gibbs`; this alias keeps the old path for one release.

It is the same module object, so attribute reads and monkeypatches reach the new module.
"""

import sys

from .keypoint_slds import gibbs as _gibbs

sys.modules[__name__] = _gibbs
