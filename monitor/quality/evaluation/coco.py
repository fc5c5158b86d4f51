"""COCO mask AP and COCO-rule matching, on precomputed overlaps.

faster-coco-eval's C++ evaluator does COCOeval's per-image matching and accumulation;
this module feeds it the IoU matrices of :mod:`monitor.quality.evaluation.overlaps` directly
(rather than letting COCOeval recompute them from COCO objects) and reads back

- the precision/recall arrays, summarised into COCOeval's 12 statistics exactly as
  COCOeval's ``summarize`` does (mean of the entries that are not -1), and
- the matched (prediction, ground truth) pairs at one IoU threshold, for the report's
  per-class metrics.

Instances are numbered 1..n here (faster-coco-eval, like pycocotools, treats id 0 as
"unmatched"), so datasets whose annotation ids start at 0 evaluate correctly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import faster_coco_eval.faster_eval_api_cpp as _cpp
import numpy as np
import numpy.typing as npt

from detectors._typing import Float64Array
from monitor.quality.evaluation.results import CocoStats

#: COCOeval's parameters for ``iouType="segm"``, built exactly as pycocotools builds them.
IOU_THRESHOLDS: Float64Array = np.linspace(
    0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True
)
RECALL_THRESHOLDS: Float64Array = np.linspace(
    0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True
)
MAX_DETECTIONS: tuple[int, ...] = (1, 10, 100)
AREA_RANGES: tuple[tuple[float, float], ...] = (
    (0**2, 1e5**2),
    (0**2, 32**2),
    (32**2, 96**2),
    (96**2, 1e5**2),
)
AREA_LABELS: tuple[str, ...] = ("all", "small", "medium", "large")


@dataclass
class _Params:
    """The attributes faster-coco-eval's C++ accumulation reads from COCOeval.Params."""

    imgIds: list[int]  # noqa: N815 - names fixed by faster-coco-eval
    catIds: list[int]  # noqa: N815
    iouThrs: list[float]  # noqa: N815
    areaRng: list[list[float]]  # noqa: N815
    maxDets: list[int]  # noqa: N815
    recThrs: list[float] = field(default_factory=lambda: RECALL_THRESHOLDS.tolist())  # noqa: N815
    useCats: int = 1  # noqa: N815


class CocoInstances:
    """Ground truth and predictions loaded into faster-coco-eval's C++ datasets.

    Parameters
    ----------
    image_ids, category_ids
        The sorted image and category ids; instances refer to them by index.
    gt_image, gt_category, gt_area, gt_crowd
        Ground truth (``gt_area`` is the stated area used for COCO's size ranges).
    pred_image, pred_category, pred_score, pred_area
        Predictions (``pred_area`` the mask's pixel count).

    Examples
    --------
    >>> import numpy as np
    >>> inst = CocoInstances(
    ...     image_ids=[5], category_ids=[1],
    ...     gt_image=np.array([0]), gt_category=np.array([0]),
    ...     gt_area=np.array([16.0]), gt_crowd=np.array([False]),
    ...     pred_image=np.array([0, 0]), pred_category=np.array([0, 0]),
    ...     pred_score=np.array([0.9, 0.8]), pred_area=np.array([16.0, 16.0]))
    >>> ious = [[[[0.9], [0.6]]]]
    >>> stats, per_class = inst.mask_ap(ious)
    >>> stats.ap50, stats.ar1, stats.ap_large
    (1.0, 0.9, None)
    >>> inst.matches(ious, iou_threshold=0.5, max_predictions=2)
    {1: (1, 0.9)}
    """

    def __init__(
        self,
        *,
        image_ids: Sequence[int],
        category_ids: Sequence[int],
        gt_image: npt.NDArray[np.int64],
        gt_category: npt.NDArray[np.int64],
        gt_area: Float64Array,
        gt_crowd: npt.NDArray[np.bool_],
        pred_image: npt.NDArray[np.int64],
        pred_category: npt.NDArray[np.int64],
        pred_score: Float64Array,
        pred_area: Float64Array,
    ) -> None:
        self.image_ids = list(image_ids)
        self.category_ids = list(category_ids)
        self._gt = _cpp.Dataset()
        self._dt = _cpp.Dataset()
        images, categories = self.image_ids, self.category_ids
        for n, (i, k, area, crowd) in enumerate(
            zip(
                gt_image.tolist(),
                gt_category.tolist(),
                gt_area.tolist(),
                gt_crowd.tolist(),
                strict=True,
            )
        ):
            ann = {"id": n + 1, "area": area, "iscrowd": crowd, "ignore": crowd}
            self._gt.append_ref(images[i], categories[k], ann)
        for n, (i, k, score, area) in enumerate(
            zip(
                pred_image.tolist(),
                pred_category.tolist(),
                pred_score.tolist(),
                pred_area.tolist(),
                strict=True,
            )
        ):
            self._dt.append_ref(
                images[i], categories[k], {"id": n + 1, "score": score, "area": area}
            )

    def mask_ap(
        self, ious: list[list[list[list[float]]]]
    ) -> tuple[CocoStats, list[tuple[float | None, float | None, float | None]]]:
        """COCOeval's 12 statistics and per-class (AP, AP50, AP75).

        Parameters
        ----------
        ious
            Per (image, class) IoU matrices as :class:`~monitor.quality.evaluation.overlaps.Overlaps`
            holds them: rows are predictions by descending score, and only the first
            ``MAX_DETECTIONS[-1]`` (100) of each are used, as COCOeval's ``computeIoU``
            keeps only ``dt[0:maxDets[-1]]``.

        Returns
        -------
        tuple
            The statistics, and per category (in ``category_ids`` order) its AP over
            IoU 0.50:0.95, at 0.50 and at 0.75, each ``None`` where COCOeval has -1.
        """
        params = _Params(
            imgIds=self.image_ids,
            catIds=self.category_ids,
            iouThrs=IOU_THRESHOLDS.tolist(),
            areaRng=[list(r) for r in AREA_RANGES],
            maxDets=list(MAX_DETECTIONS),
        )
        cap = MAX_DETECTIONS[-1]
        capped = [[rows[:cap] for rows in per_image] for per_image in ious]
        result = _cpp.COCOevalEvaluateAccumulate(
            params, capped, self._gt, self._dt, self.image_ids, self.category_ids, True
        )
        precision = np.asarray(result["precision"], dtype=np.float64)  # T x R x K x A x M
        recall = np.asarray(result["recall"], dtype=np.float64)  # T x K x A x M
        stats = _summarize(precision, recall)
        per_class = []
        for k in range(len(self.category_ids)):
            p = precision[:, :, k, 0, -1]
            per_class.append((_mean(p), _mean(p[0]), _mean(p[_iou_index(0.75)])))
        return stats, per_class

    def matches(
        self, ious: list[list[list[list[float]]]], *, iou_threshold: float, max_predictions: int
    ) -> dict[int, tuple[int, float]]:
        """Match predictions to ground truth at one IoU threshold, by COCO's rules.

        Per image and class, predictions in descending score order each take the
        unmatched ground truth with the highest IoU ``>= iou_threshold`` (non-crowd
        ground truth first; a crowd region can absorb any number of predictions).

        Parameters
        ----------
        ious
            Per (image, class) IoU matrices.
        iou_threshold
            The threshold.
        max_predictions
            Predictions considered per image and class (the highest-scoring ones).

        Returns
        -------
        dict
            Prediction number (1-based, input order) to (ground-truth number, IoU), for
            every matched prediction, crowd matches included.
        """
        area_all = [list(AREA_RANGES[0])]
        evaluations = _cpp.COCOevalEvaluateImages(
            area_all,
            max(1, max_predictions),
            [iou_threshold],
            ious,
            self._gt,
            self._dt,
            self.image_ids,
            self.category_ids,
            True,
        )
        params = _Params(
            imgIds=self.image_ids,
            catIds=self.category_ids,
            iouThrs=[iou_threshold],
            areaRng=area_all,
            maxDets=[max(1, max_predictions)],
        )
        matched: dict[str, float] = _cpp.COCOevalAccumulate(params, evaluations)["matched"]
        out: dict[int, tuple[int, float]] = {}
        for key, iou in matched.items():
            dt, gt = key.split("_", 1)
            out[int(dt)] = (int(gt), float(iou))
        return out


def _iou_index(threshold: float) -> int:
    return int(np.where(threshold == IOU_THRESHOLDS)[0][0])


def _mean(values: Float64Array) -> float | None:
    valid = values[values > -1]
    return float(np.mean(valid)) if valid.size else None


def _summarize(precision: Float64Array, recall: Float64Array) -> CocoStats:
    """COCOeval.summarize for segm: the same slices, the same means."""
    last = len(MAX_DETECTIONS) - 1

    def ap(area: int = 0, iou: float | None = None) -> float | None:
        s = precision if iou is None else precision[[_iou_index(iou)]]
        return _mean(s[:, :, :, area, last])

    def ar(area: int = 0, max_det: int = last) -> float | None:
        return _mean(recall[:, :, area, max_det])

    return CocoStats(
        ap=ap(),
        ap50=ap(iou=0.5),
        ap75=ap(iou=0.75),
        ap_small=ap(area=1),
        ap_medium=ap(area=2),
        ap_large=ap(area=3),
        ar1=ar(max_det=0),
        ar10=ar(max_det=1),
        ar100=ar(),
        ar_small=ar(area=1),
        ar_medium=ar(area=2),
        ar_large=ar(area=3),
    )
