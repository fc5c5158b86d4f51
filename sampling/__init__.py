"""Annotation sampling: uncertainty and diversity scores, budgeted selection, formats.

Pure numpy: no database, no files, no monitor. The signals (each in [0, 1], higher
means "label me", NaN when unavailable) are computed by :mod:`sampling.uncertainty`,
:mod:`sampling.disagreement`, :mod:`sampling.novelty` and :mod:`sampling.drift_context`;
:mod:`sampling.signals` combines them, :mod:`sampling.diversity` spreads the choice out
and drops near-duplicates, and :func:`sampling.selection.select` applies the budgets.
"""

from __future__ import annotations

from sampling.disagreement import image_disagreement
from sampling.diversity import k_center_greedy, near_duplicates
from sampling.drift_context import in_fired_windows
from sampling.errors import InvalidSignalError, SamplingError
from sampling.novelty import KNNNovelty, instance_novelty
from sampling.selection import CandidateTable, SelectedItem, Selection, SelectionPolicy, select
from sampling.signals import DEFAULT_WEIGHTS, SIGNALS, combine_signals, main_reason
from sampling.uncertainty import image_uncertainty, instance_uncertainty

__all__ = [
    "DEFAULT_WEIGHTS",
    "SIGNALS",
    "CandidateTable",
    "InvalidSignalError",
    "KNNNovelty",
    "SamplingError",
    "SelectedItem",
    "Selection",
    "SelectionPolicy",
    "combine_signals",
    "image_disagreement",
    "image_uncertainty",
    "in_fired_windows",
    "instance_novelty",
    "instance_uncertainty",
    "k_center_greedy",
    "main_reason",
    "near_duplicates",
    "select",
]
