"""Quality of predicted masks against a labeled holdout: :func:`evaluate`.

One pass computes every overlap (per image, on run-length encodings, never decoded
pixels); COCO mask AP, the per-class matching at the report's IoU threshold and the
confusion matrix all read those same IoUs.

COCO AP follows COCOeval exactly (at most 100 predictions per image and class, by
score). The per-class metrics at ``iou_threshold`` use COCO's matching rules on *all*
predictions, without that cap.

Defined results for edge cases (nothing is ever NaN; see :mod:`monitor.quality.evaluation.results`
for which ratios become ``None``):

- **no predictions**: every ground truth is missed (recall 0.0 where there is ground
  truth), precision and mean IoU are ``None``, COCO AP and AR are 0.0 for classes with
  ground truth;
- **images without ground truth**: count in ``n_images`` (and in false positives per
  image); all their predictions are false positives;
- **a class absent from the holdout**: still reported; recall and its AP are ``None``,
  its predictions are false positives (precision 0.0) and it does not enter COCO's
  means (COCOeval's -1);
- **predictions for images not in** ``image_ids``: ignored, counted in
  ``n_unknown_image_predictions`` (pycocotools would refuse them);
- **predictions of classes not in** ``categories``: ignored, counted in
  ``n_unknown_category_predictions`` (COCOeval ignores them too);
- **no ground truth at all**: every COCO statistic is ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from faster_coco_eval.core import mask as fast_mask

from detectors._typing import Float64Array, Int64Array
from monitor.errors import ConfigError, InvalidInputError
from monitor.quality.evaluation.coco import CocoInstances
from monitor.quality.evaluation.confusion import confusion_matrix
from monitor.quality.evaluation.overlaps import compute_overlaps
from monitor.quality.evaluation.records import GroundTruth, Prediction, check_score, mask_size
from monitor.quality.evaluation.results import (
    ClassQuality,
    InstanceMatches,
    PredictionStatus,
    QualityMetrics,
    QualityReport,
    RecallBySize,
    SizeRecall,
)

#: Upper area bounds (exclusive) of COCO's small and medium objects.
SMALL_AREA = 32.0**2
MEDIUM_AREA = 96.0**2


def evaluate(
    gts: Sequence[GroundTruth],
    preds: Sequence[Prediction],
    categories: Mapping[int, str],
    image_ids: Sequence[int],
    iou_threshold: float = 0.5,
) -> QualityReport:
    """Score predictions against ground truth: per-class quality, confusions, COCO mask AP.

    Parameters
    ----------
    gts
        The holdout's ground truth; every instance must lie on one of ``image_ids`` and
        have a class in ``categories``.
    preds
        The model's predictions.
    categories
        Category id to class name: the classes evaluated (COCOeval's ``catIds``).
    image_ids
        The evaluated images (COCOeval's ``imgIds``), with or without ground truth.
    iou_threshold
        IoU at which a prediction matches a ground truth, in ``(0, 1]``.

    Returns
    -------
    QualityReport
        Overall and per-class metrics at ``iou_threshold``, COCOeval's 12 statistics
        (equal to pycocotools' ``COCOeval(iouType="segm")`` on the same inputs), the
        confusion matrix and per-instance outcomes.

    Raises
    ------
    ConfigError
        When ``iou_threshold`` is outside ``(0, 1]``.
    InvalidInputError
        When a ground truth lies on an unknown image or class, a mask is malformed, masks
        of one image differ in size, or a score is not finite.

    Examples
    --------
    >>> import numpy as np
    >>> from pycocotools import mask as mask_utils
    >>> def box(x, w):
    ...     m = np.zeros((64, 64), np.uint8, order="F"); m[8:40, x:x + w] = 1
    ...     return mask_utils.encode(m)
    >>> gts = [GroundTruth(1, 1, box(0, 20), area=640.0),
    ...        GroundTruth(1, 2, box(30, 30), area=960.0)]
    >>> preds = [Prediction(1, 1, 0.9, box(2, 20)),   # IoU 18/22 with the first
    ...          Prediction(1, 1, 0.6, box(32, 28)),  # overlaps the second, wrong class
    ...          Prediction(9, 1, 0.5, box(0, 20))]   # image 9 is not evaluated
    >>> report = evaluate(gts, preds, {1: "cat", 2: "dog"}, image_ids=[1])
    >>> cat = report.class_quality(1)
    >>> cat.true_positives, cat.false_positives, round(cat.mean_iou, 4), cat.precision
    (1, 1, 0.8182, 0.5)
    >>> report.class_quality(2).recall, report.n_unknown_image_predictions
    (0.0, 1)
    >>> report.confusion.count(2, 1), report.coco.ap50, report.coco.ap_large
    (1, 0.5, None)
    """
    if not 0.0 < iou_threshold <= 1.0:
        raise ConfigError(f"iou_threshold must be in (0, 1], got {iou_threshold!r}")
    category_ids = sorted(int(c) for c in categories)
    names = [str(categories[c]) for c in category_ids]
    images = sorted({int(i) for i in image_ids})
    category_index = {c: k for k, c in enumerate(category_ids)}
    image_index = {img: i for i, img in enumerate(images)}

    gt = _ground_truth_arrays(gts, image_index, category_index)
    status = [PredictionStatus.FALSE_POSITIVE] * len(preds)
    kept: list[int] = []
    for j, p in enumerate(preds):
        if p.image_id not in image_index:
            status[j] = PredictionStatus.UNKNOWN_IMAGE
        elif p.category_id not in category_index:
            status[j] = PredictionStatus.UNKNOWN_CATEGORY
        else:
            kept.append(j)
    pr = _prediction_arrays(preds, kept, image_index, category_index)

    overlaps = compute_overlaps(
        image_ids=images,
        n_categories=len(category_ids),
        gt_image=gt.image,
        gt_category=gt.category,
        gt_crowd=gt.crowd,
        gt_rles=gt.rles,
        pred_image=pr.image,
        pred_category=pr.category,
        pred_score=pr.score,
        pred_rles=pr.rles,
    )
    coco = CocoInstances(
        image_ids=images,
        category_ids=category_ids,
        gt_image=gt.image,
        gt_category=gt.category,
        gt_area=gt.area,
        gt_crowd=gt.crowd,
        pred_image=pr.image,
        pred_category=pr.category,
        pred_score=pr.score,
        pred_area=pr.area,
    )
    stats, class_ap = coco.mask_ap(overlaps.ious)
    matches = coco.matches(
        overlaps.ious, iou_threshold=iou_threshold, max_predictions=overlaps.max_predictions
    )

    # Outcomes of kept predictions (index into `kept`) and of ground truth.
    n_gt, n_kept = len(gt.image), len(kept)
    tp = np.zeros(n_kept, dtype=bool)
    crowd_hit = np.zeros(n_kept, dtype=bool)
    gt_match = np.full(n_gt, -1, dtype=np.int64)
    gt_iou = np.zeros(n_gt, dtype=np.float64)
    for dt_number, (gt_number, iou) in matches.items():
        d, g = dt_number - 1, gt_number - 1
        if gt.crowd[g]:
            crowd_hit[d] = True
        else:
            tp[d] = True
            gt_match[g] = d
            gt_iou[g] = iou
    for d in np.flatnonzero(tp).tolist():
        status[kept[d]] = PredictionStatus.TRUE_POSITIVE
    for d in np.flatnonzero(crowd_hit).tolist():
        status[kept[d]] = PredictionStatus.CROWD

    n_cat = len(category_ids)
    fp = ~tp & ~crowd_hit
    gt_hit = gt_match >= 0
    size = np.where(gt.area < SMALL_AREA, 0, np.where(gt.area < MEDIUM_AREA, 1, 2))
    noncrowd = ~gt.crowd

    def per_class(values: npt.NDArray[Any], index: Int64Array) -> list[float]:
        return [float(v) for v in np.bincount(index, weights=values, minlength=n_cat)]

    columns = {
        "n_ground_truth": per_class(noncrowd, gt.category),
        "n_crowd": per_class(gt.crowd, gt.category),
        "n_predictions": per_class(np.ones(n_kept), pr.category),
        "true_positives": per_class(tp, pr.category),
        "false_positives": per_class(fp, pr.category),
        "crowd_predictions": per_class(crowd_hit, pr.category),
        "iou_sum": per_class(gt_iou * gt_hit, gt.category),
    }
    size_gt = np.bincount(gt.category * 3 + size, weights=noncrowd, minlength=3 * n_cat).reshape(
        n_cat, 3
    )
    size_tp = np.bincount(gt.category * 3 + size, weights=gt_hit, minlength=3 * n_cat).reshape(
        n_cat, 3
    )

    per_class_quality = []
    for k, (c, name) in enumerate(zip(category_ids, names, strict=True)):
        metrics = _metrics(
            {key: col[k] for key, col in columns.items()},
            size_gt[k],
            size_tp[k],
            len(images),
            class_ap[k],
        )
        per_class_quality.append(ClassQuality.of(metrics, category_id=c, name=name))
    overall = _metrics(
        {key: sum(col) for key, col in columns.items()},
        size_gt.sum(axis=0),
        size_tp.sum(axis=0),
        len(images),
        (stats.ap, stats.ap50, stats.ap75),
    )
    images_with_gt = len(np.unique(gt.image)) if n_gt else 0
    kept_array = np.asarray(kept, dtype=np.int64)
    return QualityReport(
        iou_threshold=float(iou_threshold),
        n_images=len(images),
        n_images_without_ground_truth=len(images) - images_with_gt,
        n_unknown_image_predictions=sum(s is PredictionStatus.UNKNOWN_IMAGE for s in status),
        n_unknown_category_predictions=sum(s is PredictionStatus.UNKNOWN_CATEGORY for s in status),
        overall=overall,
        per_class=tuple(per_class_quality),
        coco=stats,
        confusion=confusion_matrix(
            category_ids=category_ids,
            names=names,
            gt_category=gt.category,
            gt_crowd=gt.crowd,
            best_prediction=overlaps.best_prediction,
            best_iou=overlaps.best_iou,
            pred_category=pr.category,
            iou_threshold=iou_threshold,
        ),
        instances=InstanceMatches(
            ground_truth_prediction=tuple(
                int(kept_array[d]) if d >= 0 else None for d in gt_match.tolist()
            ),
            ground_truth_iou=tuple(
                iou if d >= 0 else None
                for d, iou in zip(gt_match.tolist(), gt_iou.tolist(), strict=True)
            ),
            prediction_status=tuple(status),
        ),
    )


def _metrics(
    counts: Mapping[str, float],
    size_gt: Float64Array,
    size_tp: Float64Array,
    n_images: int,
    ap: tuple[float | None, float | None, float | None],
) -> QualityMetrics:
    buckets = [
        SizeRecall(int(n), int(t), float(t) / float(n) if n else None)
        for n, t in zip(size_gt.tolist(), size_tp.tolist(), strict=True)
    ]
    return QualityMetrics.build(
        n_ground_truth=int(counts["n_ground_truth"]),
        n_crowd=int(counts["n_crowd"]),
        n_predictions=int(counts["n_predictions"]),
        true_positives=int(counts["true_positives"]),
        false_positives=int(counts["false_positives"]),
        crowd_predictions=int(counts["crowd_predictions"]),
        iou_sum=float(counts["iou_sum"]),
        n_images=n_images,
        recall_by_size=RecallBySize(*buckets),
        ap=ap[0],
        ap50=ap[1],
        ap75=ap[2],
    )


@dataclass(frozen=True)
class _GroundTruthArrays:
    image: Int64Array
    category: Int64Array
    area: Float64Array
    crowd: npt.NDArray[np.bool_]
    rles: list[Mapping[str, Any]]


@dataclass(frozen=True)
class _PredictionArrays:
    image: Int64Array
    category: Int64Array
    score: Float64Array
    area: Float64Array
    rles: list[Mapping[str, Any]]


def _ground_truth_arrays(
    gts: Sequence[GroundTruth], image_index: Mapping[int, int], category_index: Mapping[int, int]
) -> _GroundTruthArrays:
    image, category, area, crowd, rles = [], [], [], [], []
    for n, g in enumerate(gts):
        try:
            image.append(image_index[g.image_id])
        except KeyError:
            raise InvalidInputError(
                f"ground truth {n} lies on image {g.image_id!r}, which is not in image_ids"
            ) from None
        try:
            category.append(category_index[g.category_id])
        except KeyError:
            raise InvalidInputError(
                f"ground truth {n} has category {g.category_id!r}, which is not in categories"
            ) from None
        mask_size(g.rle, f"ground truth {n}")
        value = float(g.area)
        if not np.isfinite(value) or value < 0:
            raise InvalidInputError(
                f"ground truth {n}: area must be finite and >= 0, got {value!r}"
            )
        area.append(value)
        crowd.append(bool(g.iscrowd))
        rles.append(g.rle)
    return _GroundTruthArrays(
        np.asarray(image, dtype=np.int64),
        np.asarray(category, dtype=np.int64),
        np.asarray(area, dtype=np.float64),
        np.asarray(crowd, dtype=bool),
        rles,
    )


def _prediction_arrays(
    preds: Sequence[Prediction],
    kept: Sequence[int],
    image_index: Mapping[int, int],
    category_index: Mapping[int, int],
) -> _PredictionArrays:
    image, category, score, area, rles = [], [], [], [], []
    missing_area: list[int] = []
    for n, j in enumerate(kept):
        p = preds[j]
        image.append(image_index[p.image_id])
        category.append(category_index[p.category_id])
        score.append(check_score(p.score, f"prediction {j}"))
        mask_size(p.rle, f"prediction {j}")
        if p.area is None:
            missing_area.append(n)
            area.append(0.0)
        else:
            area.append(float(p.area))
        rles.append(p.rle)
    areas = np.asarray(area, dtype=np.float64)
    if missing_area:
        # pycocotools 2.0.11's area() overflows on lists of more than 255 masks.
        computed = fast_mask.area([_as_dict(rles[n]) for n in missing_area])
        areas[missing_area] = np.asarray(computed, dtype=np.float64)
    return _PredictionArrays(
        np.asarray(image, dtype=np.int64),
        np.asarray(category, dtype=np.int64),
        np.asarray(score, dtype=np.float64),
        areas,
        rles,
    )


def _as_dict(rle: Mapping[str, Any]) -> dict[str, Any]:
    return rle if type(rle) is dict else dict(rle)
