"""Quality against a labeled holdout: matching, per-class metrics, COCO mask AP.

Pure functions over typed records (no database, no I/O). :func:`evaluate` is the entry
point; its inputs are :class:`GroundTruth` and :class:`Prediction` records with masks as
COCO compressed RLE, its result a :class:`QualityReport`.
"""

from __future__ import annotations

from monitor.quality.evaluation.evaluate import evaluate
from monitor.quality.evaluation.records import GroundTruth, Prediction
from monitor.quality.evaluation.results import (
    COCO_STAT_NAMES,
    ClassQuality,
    CocoStats,
    ConfusionMatrix,
    InstanceMatches,
    PredictionStatus,
    QualityMetrics,
    QualityReport,
    RecallBySize,
    SizeRecall,
)

__all__ = [
    "COCO_STAT_NAMES",
    "ClassQuality",
    "CocoStats",
    "ConfusionMatrix",
    "GroundTruth",
    "InstanceMatches",
    "Prediction",
    "PredictionStatus",
    "QualityMetrics",
    "QualityReport",
    "RecallBySize",
    "SizeRecall",
    "evaluate",
]
