"""Moved to `behavhmm.sessions` (sessions sit below the models; see docs/architecture.md).

This alias keeps ``behavhmm.models._sessions`` importable for one release: it is the same module
object, so attribute reads and monkeypatches reach `behavhmm.sessions`.
"""

import sys

from .. import sessions as _sessions

sys.modules[__name__] = _sessions
