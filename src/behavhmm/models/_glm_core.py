"""Moved to `behavhmm.models.glmhmm.em`; this alias keeps the old path for one release.

It is the same module object, so attribute reads and monkeypatches reach the new module.
"""

import sys

from .glmhmm import em as _moved

sys.modules[__name__] = _moved
