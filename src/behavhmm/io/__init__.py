"""Loaders: keypoints (DeepLabCut, SLEAP, NWB/ndx-pose, movement, Anipose), MoSeq PC scores, labels.

[`load_keypoints`][behavhmm.io.load_keypoints] reads any supported file into
[`KeypointSessions`][behavhmm.io.KeypointSessions], one
[`KeypointData`][behavhmm.io.KeypointData] session per individual, ready to
concatenate on one time axis with a ``session_starts`` mask. The readers need
the ``io`` extra (``pip install 'behavhmm[io]'``); they are imported only when
a file of their format is read.
"""

from ._features import Features, load_features
from ._keypoints import KeypointData, KeypointSessions
from ._label_files import (
    LabelFile,
    read_boris_events,
    read_daart_labels,
    read_label_file,
    read_plain_labels,
    write_daart_labels,
    write_plain_labels,
)
from ._load import FORMATS, detect_format, load_keypoints
from ._moseq import (
    PCScores,
    load_index_groups,
    load_pc_scores,
    read_syllable_results,
    write_syllable_results,
)
from ._states import load_states, save_states, states_to_dataset, write_annotation_csvs

__all__ = [
    "FORMATS",
    "Features",
    "KeypointData",
    "KeypointSessions",
    "LabelFile",
    "PCScores",
    "detect_format",
    "load_index_groups",
    "load_features",
    "load_keypoints",
    "load_pc_scores",
    "load_states",
    "read_boris_events",
    "read_daart_labels",
    "read_label_file",
    "read_plain_labels",
    "read_syllable_results",
    "save_states",
    "states_to_dataset",
    "write_annotation_csvs",
    "write_daart_labels",
    "write_plain_labels",
    "write_syllable_results",
]
