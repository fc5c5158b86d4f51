"""Mask overlaps, computed once per image and shared by every metric.

For each image, one call of pycocotools' ``mask.iou`` on the run-length encodings gives
the IoU of every prediction (any class) with every ground truth (any class);
pycocotools skips pairs whose boxes do not overlap. Slicing that matrix per class gives
exactly the per-(image, class) matrices COCOeval computes (same function, same inputs,
same rows: predictions by descending score, ties in input order; columns: ground truth
in input order), and its columns give each ground truth's best-overlapping prediction of
any class for the confusion matrix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from pycocotools import mask as mask_utils

from detectors._typing import Float64Array, Int64Array
from monitor.errors import InvalidInputError


@dataclass(frozen=True)
class Overlaps:
    """IoUs per (image, class) and each ground truth's best overlap of any class.

    Attributes
    ----------
    ious
        ``ious[i][k]``: IoU matrix (list of rows) of image ``i`` and class ``k`` (indices
        into the sorted image and category ids), rows the predictions of that image and
        class by descending score, columns its ground truth in input order; ``[]`` when
        either side is empty. The layout COCOeval's evaluators take.
    best_prediction
        Per ground truth, the index of the prediction of any class in the same image with
        the highest IoU (the higher-scoring on ties), or -1 when the image has none.
    best_iou
        That IoU (0.0 when there is none). For crowd ground truth, COCO's crowd overlap
        (intersection over the prediction's area).
    max_predictions
        The largest number of predictions of one class in one image.
    """

    ious: list[list[list[list[float]]]]
    best_prediction: Int64Array
    best_iou: Float64Array
    max_predictions: int


def compute_overlaps(
    *,
    image_ids: Sequence[int],
    n_categories: int,
    gt_image: Int64Array,
    gt_category: Int64Array,
    gt_crowd: npt.NDArray[np.bool_],
    gt_rles: Sequence[Mapping[str, Any]],
    pred_image: Int64Array,
    pred_category: Int64Array,
    pred_score: Float64Array,
    pred_rles: Sequence[Mapping[str, Any]],
) -> Overlaps:
    """Compute the overlaps of predictions and ground truth, one image at a time.

    Images and categories are given as indices (``0 <= gt_image < len(image_ids)``, and
    ``0 <= gt_category < n_categories``).

    Parameters
    ----------
    image_ids
        The images (named in error messages).
    n_categories
        Number of classes.
    gt_image, gt_category, gt_crowd, gt_rles
        Ground truth: image index, class index, crowd flag, compressed RLE.
    pred_image, pred_category, pred_score, pred_rles
        Predictions: image index, class index, score, compressed RLE.

    Returns
    -------
    Overlaps
        The per-(image, class) IoU matrices and each ground truth's best overlap.

    Raises
    ------
    InvalidInputError
        When two masks of one image differ in size.

    Examples
    --------
    >>> import numpy as np
    >>> from pycocotools import mask as mask_utils
    >>> def box(y, x, h, w):
    ...     m = np.zeros((10, 10), np.uint8, order="F"); m[y:y + h, x:x + w] = 1
    ...     return mask_utils.encode(m)
    >>> o = compute_overlaps(
    ...     image_ids=[7], n_categories=2,
    ...     gt_image=np.array([0]), gt_category=np.array([0]), gt_crowd=np.array([False]),
    ...     gt_rles=[box(0, 0, 4, 4)],
    ...     pred_image=np.array([0, 0]), pred_category=np.array([0, 1]),
    ...     pred_score=np.array([0.2, 0.9]), pred_rles=[box(0, 0, 4, 2), box(0, 0, 4, 4)])
    >>> o.ious[0][0], o.ious[0][1]
    ([[0.5]], [])
    >>> int(o.best_prediction[0]), float(o.best_iou[0])
    (1, 1.0)
    """
    n_images = len(image_ids)
    ious: list[list[list[list[float]]]] = [
        [[] for _ in range(n_categories)] for _ in range(n_images)
    ]
    best_prediction = np.full(len(gt_image), -1, dtype=np.int64)
    best_iou = np.zeros(len(gt_image), dtype=np.float64)
    max_predictions = 0
    if len(gt_image) == 0 or len(pred_image) == 0:
        if len(pred_image):
            max_predictions = int(np.bincount(pred_image * n_categories + pred_category).max())
        return Overlaps(ious, best_prediction, best_iou, max_predictions)

    # Predictions by image, then descending score, ties in input order (stable).
    pred_order = np.lexsort((-pred_score, pred_image))
    pred_bounds = np.searchsorted(pred_image[pred_order], np.arange(n_images + 1))
    gt_order = np.argsort(gt_image, kind="stable")
    gt_bounds = np.searchsorted(gt_image[gt_order], np.arange(n_images + 1))
    pred_key = pred_image * n_categories + pred_category
    max_predictions = int(np.bincount(pred_key).max())

    pred_category_list = pred_category.tolist()
    gt_category_list = gt_category.tolist()
    gt_crowd_list = gt_crowd.astype(np.uint8).tolist()
    pred_order_list = pred_order.tolist()
    gt_order_list = gt_order.tolist()
    pred_bounds_list = pred_bounds.tolist()
    gt_bounds_list = gt_bounds.tolist()
    iou = mask_utils.iou
    for i in range(n_images):
        d = pred_order_list[pred_bounds_list[i] : pred_bounds_list[i + 1]]
        g = gt_order_list[gt_bounds_list[i] : gt_bounds_list[i + 1]]
        if not d or not g:
            continue
        d_rles = [pred_rles[j] for j in d]
        g_rles = [gt_rles[j] for j in g]
        _check_sizes(image_ids[i], d_rles, g_rles)
        matrix = np.asarray(iou(d_rles, g_rles, [gt_crowd_list[j] for j in g]), dtype=np.float64)
        rows = np.argmax(matrix, axis=0)
        best_prediction[g] = np.asarray(d, dtype=np.int64)[rows]
        best_iou[g] = matrix[rows, np.arange(len(g))]

        d_cat = [pred_category_list[j] for j in d]
        g_cat = [gt_category_list[j] for j in g]
        image_ious = ious[i]
        rows_list = matrix.tolist()
        if len(d) == 1 and len(g) == 1:
            if d_cat[0] == g_cat[0]:
                image_ious[d_cat[0]] = rows_list
            continue
        # Plain lists: for the few instances of one image, faster than numpy indexing.
        for k in set(d_cat).intersection(g_cat):
            cols = [n for n, c in enumerate(g_cat) if c == k]
            image_ious[k] = [
                [row[n] for n in cols] for row, c in zip(rows_list, d_cat, strict=True) if c == k
            ]
    return Overlaps(ious, best_prediction, best_iou, max_predictions)


def _check_sizes(
    image: int, d_rles: Sequence[Mapping[str, Any]], g_rles: Sequence[Mapping[str, Any]]
) -> None:
    first = list(g_rles[0]["size"])
    for rle in (*d_rles, *g_rles):
        if list(rle["size"]) != first:
            raise InvalidInputError(
                f"masks of image {image!r} differ in size: {list(rle['size'])!r} and {first!r}"
            )
