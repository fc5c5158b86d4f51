"""Class confusions of ground truth against the best-overlapping prediction of any class."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from monitor.quality.evaluation.results import ConfusionMatrix


def confusion_matrix(
    *,
    category_ids: Sequence[int],
    names: Sequence[str],
    gt_category: npt.NDArray[np.int64],
    gt_crowd: npt.NDArray[np.bool_],
    best_prediction: npt.NDArray[np.int64],
    best_iou: npt.NDArray[np.float64],
    pred_category: npt.NDArray[np.int64],
    iou_threshold: float,
) -> ConfusionMatrix:
    """Count each non-crowd ground truth under the class of its best overlap, or missed.

    Parameters
    ----------
    category_ids, names
        The classes, in row/column order.
    gt_category, gt_crowd
        Per ground truth: class index and crowd flag.
    best_prediction, best_iou
        Per ground truth: index of the prediction of any class with the highest IoU
        (-1 for none) and that IoU.
    pred_category
        Per prediction: class index.
    iou_threshold
        The IoU a best overlap must reach (``>=``, as COCO matching; capped at
        ``1 - 1e-10`` like COCOeval) to count as its class.

    Returns
    -------
    ConfusionMatrix
        Rows: ground-truth classes; columns: predicted classes then "missed".

    Examples
    --------
    >>> import numpy as np
    >>> cm = confusion_matrix(
    ...     category_ids=[1, 2], names=["cat", "dog"],
    ...     gt_category=np.array([0, 0, 1]), gt_crowd=np.array([False, False, False]),
    ...     best_prediction=np.array([0, 1, -1]), best_iou=np.array([0.9, 0.7, 0.0]),
    ...     pred_category=np.array([0, 1]), iou_threshold=0.5)
    >>> cm.counts
    ((1, 1, 0), (0, 0, 1))
    """
    n = len(category_ids)
    keep = ~gt_crowd
    threshold = min(iou_threshold, 1 - 1e-10)
    hit = keep & (best_prediction >= 0) & (best_iou >= threshold)
    column = np.full(len(gt_category), n, dtype=np.int64)
    column[hit] = pred_category[best_prediction[hit]]
    cells = np.bincount(gt_category[keep] * (n + 1) + column[keep], minlength=n * (n + 1))
    table = cells.reshape(n, n + 1).tolist()
    return ConfusionMatrix(
        category_ids=tuple(int(c) for c in category_ids),
        names=tuple(names),
        counts=tuple(tuple(int(v) for v in row) for row in table),
    )
