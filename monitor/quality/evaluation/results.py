"""Typed results of an evaluation against a labeled holdout.

Every ratio whose denominator is zero is ``None`` ("undefined"), never NaN:

- ``precision`` is ``None`` when nothing was predicted (no true or false positives);
- ``recall`` is ``None`` when there is no (non-crowd) ground truth;
- ``f1`` is ``None`` when precision or recall is ``None``, and ``0.0`` when both are 0;
- ``mean_iou`` is ``None`` when no pair was matched;
- ``false_positives_per_image`` is ``None`` when no image was evaluated;
- a COCO statistic is ``None`` where COCOeval returns -1 (no ground truth in its
  category/area range), e.g. ``ap_small`` on a dataset without small objects, or every
  AP of a class absent from the holdout.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from monitor.errors import NotFoundError

#: Names of :class:`CocoStats` fields in COCOeval's ``stats`` order.
COCO_STAT_NAMES: tuple[str, ...] = (
    "ap",
    "ap50",
    "ap75",
    "ap_small",
    "ap_medium",
    "ap_large",
    "ar1",
    "ar10",
    "ar100",
    "ar_small",
    "ar_medium",
    "ar_large",
)


class PredictionStatus(StrEnum):
    """What became of one prediction at the report's IoU threshold."""

    TRUE_POSITIVE = "true_positive"
    FALSE_POSITIVE = "false_positive"
    CROWD = "crowd"  # matched a crowd region: neither true nor false positive
    UNKNOWN_IMAGE = "unknown_image"  # image not in the evaluated set: ignored
    UNKNOWN_CATEGORY = "unknown_category"  # class not in the categories: ignored


@dataclass(frozen=True)
class CocoStats:
    """The 12 statistics of COCOeval (``iouType="segm"``), ``None`` where COCO says -1.

    Examples
    --------
    >>> stats = CocoStats.from_sequence([0.5] * 11 + [-1.0])
    >>> stats.ap, stats.ar_large
    (0.5, None)
    >>> stats.as_tuple()[-1] == -1.0
    True
    """

    ap: float | None
    ap50: float | None
    ap75: float | None
    ap_small: float | None
    ap_medium: float | None
    ap_large: float | None
    ar1: float | None
    ar10: float | None
    ar100: float | None
    ar_small: float | None
    ar_medium: float | None
    ar_large: float | None

    @classmethod
    def from_sequence(cls, values: list[float] | tuple[float, ...]) -> CocoStats:
        """Build from COCOeval's ``stats`` (12 numbers, -1 meaning undefined)."""
        if len(values) != len(COCO_STAT_NAMES):
            raise ValueError(f"expected {len(COCO_STAT_NAMES)} COCO stats, got {len(values)}")
        return cls(*(None if v == -1 else float(v) for v in values))

    def as_tuple(self) -> tuple[float, ...]:
        """Return the statistics in COCOeval's order with -1 for undefined, as COCOeval."""
        return tuple(-1.0 if v is None else v for v in (getattr(self, n) for n in COCO_STAT_NAMES))


@dataclass(frozen=True)
class SizeRecall:
    """Recall of non-crowd ground truth in one COCO size bucket.

    Examples
    --------
    >>> SizeRecall(n_ground_truth=4, true_positives=3, recall=0.75).recall
    0.75
    """

    n_ground_truth: int
    true_positives: int
    recall: float | None


@dataclass(frozen=True)
class RecallBySize:
    """Recall by COCO object size: small < 32², medium < 96², large otherwise.

    Buckets partition the ground truth by its stated area. (COCOeval's area *ranges*
    include both ends, so an area of exactly 32² counts as small and medium there.)

    Examples
    --------
    >>> none = SizeRecall(0, 0, None)
    >>> RecallBySize(small=none, medium=SizeRecall(2, 1, 0.5), large=none).medium.recall
    0.5
    """

    small: SizeRecall
    medium: SizeRecall
    large: SizeRecall


@dataclass(frozen=True, kw_only=True)
class QualityMetrics:
    """Matching quality at one IoU threshold, for a class or for all classes together.

    Counts are summed over classes for the overall figures (micro average); ``ap``,
    ``ap50`` and ``ap75`` overall are COCO's (the mean over classes).

    Attributes
    ----------
    n_ground_truth
        Non-crowd ground-truth instances.
    n_crowd
        Crowd regions.
    n_predictions
        Predictions on evaluated images (of known classes).
    true_positives, false_positives
        Predictions matched / not matched to a non-crowd ground truth.
    crowd_predictions
        Predictions absorbed by a crowd region (neither true nor false positive).
    false_negatives
        Missed non-crowd ground truth.
    mean_iou
        Mean IoU of the matched (true-positive) pairs.
    precision, recall, f1
        At the report's IoU threshold.
    false_positives_per_image
        False positives divided by the number of evaluated images.
    recall_by_size
        Recall per COCO size bucket.
    ap, ap50, ap75
        COCO mask AP at IoU 0.50:0.95, 0.50 and 0.75 (100 detections per image).

    Examples
    --------
    >>> m = QualityMetrics.build(
    ...     n_ground_truth=4, n_crowd=0, n_predictions=5, true_positives=3,
    ...     false_positives=1, crowd_predictions=1, iou_sum=2.4, n_images=2,
    ...     recall_by_size=RecallBySize(*(SizeRecall(0, 0, None),) * 3),
    ...     ap=None, ap50=None, ap75=None)
    >>> round(m.mean_iou, 6), m.precision, m.recall, round(m.f1, 6), m.false_positives_per_image
    (0.8, 0.75, 0.75, 0.75, 0.5)
    """

    n_ground_truth: int
    n_crowd: int
    n_predictions: int
    true_positives: int
    false_positives: int
    crowd_predictions: int
    false_negatives: int
    mean_iou: float | None
    precision: float | None
    recall: float | None
    f1: float | None
    false_positives_per_image: float | None
    recall_by_size: RecallBySize
    ap: float | None
    ap50: float | None
    ap75: float | None

    @classmethod
    def build(
        cls,
        *,
        n_ground_truth: int,
        n_crowd: int,
        n_predictions: int,
        true_positives: int,
        false_positives: int,
        crowd_predictions: int,
        iou_sum: float,
        n_images: int,
        recall_by_size: RecallBySize,
        ap: float | None,
        ap50: float | None,
        ap75: float | None,
    ) -> QualityMetrics:
        """Derive the ratios from counts, with ``None`` for every zero denominator."""
        tp, fp = true_positives, false_positives
        precision = tp / (tp + fp) if tp + fp else None
        recall = tp / n_ground_truth if n_ground_truth else None
        f1: float | None = None
        if precision is not None and recall is not None:
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return cls(
            n_ground_truth=n_ground_truth,
            n_crowd=n_crowd,
            n_predictions=n_predictions,
            true_positives=tp,
            false_positives=fp,
            crowd_predictions=crowd_predictions,
            false_negatives=n_ground_truth - tp,
            mean_iou=iou_sum / tp if tp else None,
            precision=precision,
            recall=recall,
            f1=f1,
            false_positives_per_image=fp / n_images if n_images else None,
            recall_by_size=recall_by_size,
            ap=ap,
            ap50=ap50,
            ap75=ap75,
        )


@dataclass(frozen=True, kw_only=True)
class ClassQuality(QualityMetrics):
    """:class:`QualityMetrics` of one class.

    Examples
    --------
    >>> empty = RecallBySize(*(SizeRecall(0, 0, None),) * 3)
    >>> base = QualityMetrics.build(
    ...     n_ground_truth=0, n_crowd=0, n_predictions=0, true_positives=0,
    ...     false_positives=0, crowd_predictions=0, iou_sum=0.0, n_images=3,
    ...     recall_by_size=empty, ap=None, ap50=None, ap75=None)
    >>> c = ClassQuality.of(base, category_id=7, name="dog")
    >>> c.name, c.precision, c.recall, c.false_positives_per_image
    ('dog', None, None, 0.0)
    """

    category_id: int
    name: str

    @classmethod
    def of(cls, metrics: QualityMetrics, *, category_id: int, name: str) -> ClassQuality:
        """Attach a class identity to metrics."""
        fields = {f: getattr(metrics, f) for f in QualityMetrics.__dataclass_fields__}
        return cls(**fields, category_id=category_id, name=name)


@dataclass(frozen=True)
class ConfusionMatrix:
    """Ground-truth class (rows) against the class of its best-overlapping prediction.

    Each non-crowd ground-truth instance is counted once, in the column of the
    prediction of *any* class with the highest IoU with it (the higher-scoring one on a
    tie) when that IoU reaches the report's threshold, else in the last column,
    ``"missed"``. Unlike the per-class matching this is not one-to-one: one prediction
    may be the best overlap of several ground-truth instances.

    Examples
    --------
    >>> cm = ConfusionMatrix(category_ids=(1, 2), names=("cat", "dog"),
    ...                      counts=((3, 1, 0), (0, 2, 2)))
    >>> cm.column_names
    ('cat', 'dog', 'missed')
    >>> cm.count(1, 2), cm.count(2, None)
    (1, 2)
    """

    category_ids: tuple[int, ...]
    names: tuple[str, ...]
    counts: tuple[tuple[int, ...], ...]

    @property
    def column_names(self) -> tuple[str, ...]:
        """Predicted-class names, then ``"missed"``."""
        return (*self.names, "missed")

    def count(self, ground_truth_category: int, predicted_category: int | None) -> int:
        """Return the count of one cell; ``predicted_category=None`` is the missed column."""
        row = self._index(ground_truth_category)
        col = (
            len(self.category_ids)
            if predicted_category is None
            else self._index(predicted_category)
        )
        return self.counts[row][col]

    def _index(self, category_id: int) -> int:
        try:
            return self.category_ids.index(category_id)
        except ValueError:
            raise NotFoundError(
                f"category {category_id!r} is not in the confusion matrix"
            ) from None


@dataclass(frozen=True)
class InstanceMatches:
    """Per-instance outcome at the report's IoU threshold, aligned with the inputs.

    Attributes
    ----------
    ground_truth_prediction
        For each ground truth (input order), the index in the predictions of the one
        matched to it, or ``None`` (missed, or a crowd region).
    ground_truth_iou
        The IoU of that match, or ``None``.
    prediction_status
        For each prediction (input order), what became of it.

    Examples
    --------
    >>> m = InstanceMatches((1, None), (0.8, None),
    ...                     (PredictionStatus.FALSE_POSITIVE, PredictionStatus.TRUE_POSITIVE))
    >>> m.prediction_status[1].value
    'true_positive'
    """

    ground_truth_prediction: tuple[int | None, ...]
    ground_truth_iou: tuple[float | None, ...]
    prediction_status: tuple[PredictionStatus, ...]


@dataclass(frozen=True)
class QualityReport:
    """Quality of a model's predictions against a labeled holdout.

    Attributes
    ----------
    iou_threshold
        The IoU at which a prediction matches a ground truth (COCO rules, ``>=``).
    n_images
        Evaluated images (the distinct ``image_ids``).
    n_images_without_ground_truth
        Evaluated images with no ground truth at all (their predictions are all false
        positives).
    n_unknown_image_predictions
        Predictions for images not in ``image_ids``: ignored.
    n_unknown_category_predictions
        Predictions of classes not in ``categories``: ignored.
    overall
        All classes together.
    per_class
        One entry per category, in category-id order, including classes absent from
        the holdout.
    coco
        COCOeval's 12 statistics.
    confusion
        Class confusions of non-crowd ground truth.
    instances
        Per-instance outcomes.

    Examples
    --------
    See :func:`monitor.quality.evaluation.evaluate`.
    """

    iou_threshold: float
    n_images: int
    n_images_without_ground_truth: int
    n_unknown_image_predictions: int
    n_unknown_category_predictions: int
    overall: QualityMetrics
    per_class: tuple[ClassQuality, ...]
    coco: CocoStats
    confusion: ConfusionMatrix
    instances: InstanceMatches

    def class_quality(self, category_id: int) -> ClassQuality:
        """Return the metrics of one class.

        Raises
        ------
        NotFoundError
            When the category was not evaluated.
        """
        for quality in self.per_class:
            if quality.category_id == category_id:
                return quality
        raise NotFoundError(f"category {category_id!r} is not in the report")
