"""Syllable analysis: state alignment now; usages, durations and kappa scans build on it."""

from .alignment import match_states, state_accuracy, state_confusion

__all__ = ["match_states", "state_accuracy", "state_confusion"]
