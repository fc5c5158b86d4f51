"""Non-maximum suppression in pure torch (torchvision's C++ ``nms`` is not available).

Greedy, as ``torchvision.ops.batched_nms``: boxes are visited by descending score; a box
is kept unless it overlaps an already kept box of the same class by more than the IoU
threshold. Classes are kept apart by shifting each class's boxes to a region of its own.
The loop stops once ``max_keep`` boxes are kept, so its cost is at most
``max_keep x n``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from monitor.errors import InvalidInputError


def box_iou(box: Tensor, boxes: Tensor) -> Tensor:
    """IoU of one ``x1, y1, x2, y2`` box with each of ``boxes`` ``(n, 4)``.

    Examples
    --------
    >>> box_iou(torch.tensor([0.0, 0, 2, 2]), torch.tensor([[1.0, 0, 3, 2], [4, 4, 5, 5]]))
    tensor([0.3333, 0.0000])
    """
    x1 = torch.maximum(box[0], boxes[:, 0])
    y1 = torch.maximum(box[1], boxes[:, 1])
    x2 = torch.minimum(box[2], boxes[:, 2])
    y2 = torch.minimum(box[3], boxes[:, 3])
    inter = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    area = (box[2] - box[0]).clamp(min=0) * (box[3] - box[1]).clamp(min=0)
    areas = (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)
    return inter / (area + areas - inter).clamp(min=1e-9)


def nms(
    boxes: Tensor,
    scores: Tensor,
    iou_threshold: float,
    classes: Tensor | None = None,
    max_keep: int | None = None,
) -> Tensor:
    """Return the indices of the boxes kept, by descending score.

    Parameters
    ----------
    boxes
        ``(n, 4)`` ``x1, y1, x2, y2``.
    scores
        ``(n,)``.
    iou_threshold
        A box overlapping a kept one by more than this is dropped, in ``(0, 1]``.
    classes
        ``(n,)`` integer classes: boxes of different classes never suppress each other.
        None: one class.
    max_keep
        Stop after keeping this many.

    Examples
    --------
    >>> boxes = torch.tensor([[0.0, 0, 10, 10], [1, 1, 10, 10], [0, 0, 10, 10], [20, 20, 30, 30]])
    >>> scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    >>> nms(boxes, scores, 0.5).tolist()
    [0, 3]
    >>> nms(boxes, scores, 0.5, classes=torch.tensor([0, 0, 1, 0])).tolist()
    [0, 2, 3]
    >>> nms(boxes, scores, 0.5, max_keep=1).tolist()
    [0]
    """
    if not 0.0 < iou_threshold <= 1.0:
        raise InvalidInputError(f"iou_threshold must be in (0, 1], got {iou_threshold!r}")
    if boxes.ndim != 2 or boxes.shape[-1] != 4 or scores.shape != boxes.shape[:1]:
        raise InvalidInputError(
            f"nms needs boxes (n, 4) and scores (n,), got {tuple(boxes.shape)} and "
            f"{tuple(scores.shape)}"
        )
    boxes = boxes.float()
    if classes is not None and boxes.numel():
        span = float(boxes.max() - boxes.min()) + 1.0
        boxes = boxes + (classes.to(boxes.dtype) * span)[:, None]
    order = torch.argsort(scores, descending=True, stable=True)
    limit = order.numel() if max_keep is None else max_keep
    keep: list[int] = []
    while order.numel() and len(keep) < limit:
        best = int(order[0])
        keep.append(best)
        rest = order[1:]
        order = rest[box_iou(boxes[best], boxes[rest]) <= iou_threshold]
    return torch.tensor(keep, dtype=torch.long)
