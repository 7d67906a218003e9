"""The keypoint SLDS (keypoint-MoSeq): estimator and its Gibbs sweep.

`behavhmm.models.keypoint_slds` was a module before; its public names are re-exported
here. The estimator looks its programs up in `behavhmm.models.keypoint_slds.estimator`.
"""

from .estimator import (  # noqa: F401
    INIT_FRAMES,
    KeypointDecoding,
    KeypointSimulation,
    KeypointSLDS,
)

__all__ = ["KeypointSLDS", "KeypointDecoding", "KeypointSimulation"]
