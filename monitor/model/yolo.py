"""Decoding of YOLO segmentation exports (the ``yolo-seg`` output convention).

Two outputs: detections and mask prototypes ``(B, M, h, w)`` (``h = input / 4``).
Detections come in two layouts, told apart by which axis holds the features
(:func:`yolo_layout`):

* Ultralytics YOLOv8 and later: ``(B, 4 + C + M, A)``, per anchor ``cx, cy, w, h`` in
  input pixels, ``C`` sigmoided class scores, ``M`` mask coefficients;
* YOLOv5-seg / YOLOv7-seg: ``(B, A, 5 + C + M)``, with an objectness column after
  the box (confidence = objectness x class score).

segmon then does what the exporters leave out (:func:`decode_yolo_seg`): keep anchors
above the score threshold, per-class NMS (:func:`~monitor.model.nms.nms`), and for each
kept box the mask ``coefficients @ prototypes`` (logits), sampled bilinearly at every
image pixel whose center falls inside the box (so the letterbox is undone in the same
step) and thresholded at ``logit(mask_threshold)`` (sigmoid > 0.5: logit > 0), as
Ultralytics' ``process_mask``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from detectors._typing import MaskArray
from monitor.errors import InvalidInputError
from monitor.model.letterbox import Placement, input_pixels_to_image, sample_region
from monitor.model.nms import nms
from monitor.model.protocol import InstancePrediction


@dataclass(frozen=True)
class YoloLayout:
    """How a detections tensor is laid out.

    Attributes
    ----------
    channels_first
        ``(B, features, anchors)`` (YOLOv8+) rather than ``(B, anchors, features)``.
    objectness
        Whether an objectness column follows the box (YOLOv5/v7).
    n_classes, n_coefficients
        ``C`` and ``M``.
    """

    channels_first: bool
    objectness: bool
    n_classes: int
    n_coefficients: int


@dataclass(frozen=True)
class YoloOptions:
    """Thresholds of :func:`decode_yolo_seg` (Ultralytics' predict defaults)."""

    score_threshold: float = 0.25
    iou_threshold: float = 0.7
    mask_threshold: float = 0.5
    max_instances: int = 100
    max_candidates: int = 30_000


def yolo_layout(
    shape: Sequence[int], n_coefficients: int, n_classes: int | None = None
) -> YoloLayout:
    """Tell the layout of a ``(B, d1, d2)`` detections tensor.

    With ``n_classes`` known, the features are ``4 + C + M`` values on axis 1 (YOLOv8)
    or ``5 + C + M`` on axis 2 (YOLOv5, with objectness), or ``4 + C + M`` on axis 2 (a
    transposed YOLOv8 export); without, the shorter axis holds the features (YOLOv8: no
    objectness; anchors first: YOLOv5, with objectness).

    Raises
    ------
    InvalidInputError
        When no layout fits; the message names the shapes and class count it saw.

    Examples
    --------
    >>> yolo_layout((1, 116, 8400), 32, 80)
    YoloLayout(channels_first=True, objectness=False, n_classes=80, n_coefficients=32)
    >>> yolo_layout((1, 25200, 117), 32)
    YoloLayout(channels_first=False, objectness=True, n_classes=80, n_coefficients=32)
    >>> yolo_layout((1, 40, 100), 32, 80)
    Traceback (most recent call last):
    ...
    detectors.errors.InvalidInputError: yolo-seg detections of shape (1, 40, 100) fit neither (B, 4+C+M, A) nor (B, A, 5+C+M) with C=80 classes and M=32 mask coefficients
    """
    if len(shape) != 3:
        raise InvalidInputError(f"yolo-seg detections must be (B, d1, d2), got {tuple(shape)}")
    d1, d2 = int(shape[1]), int(shape[2])
    m = n_coefficients
    if n_classes is not None:
        # YOLOv8+, YOLOv5/v7, and YOLOv8 transposed to anchors first by some exporters
        for channels_first, objectness in ((True, False), (False, True), (False, False)):
            features = d1 if channels_first else d2
            if features == 4 + int(objectness) + n_classes + m:
                return YoloLayout(channels_first, objectness, n_classes, m)
        raise InvalidInputError(
            f"yolo-seg detections of shape {tuple(int(s) for s in shape)} fit neither "
            f"(B, 4+C+M, A) nor (B, A, 5+C+M) with C={n_classes} classes and M={m} mask "
            "coefficients"
        )
    channels_first = d1 <= d2
    objectness = not channels_first
    classes = (d1 if channels_first else d2) - 4 - int(objectness) - m
    if classes < 1:
        raise InvalidInputError(
            f"yolo-seg detections of shape {tuple(int(s) for s in shape)} leave {classes} "
            f"classes beside {m} mask coefficients"
        )
    return YoloLayout(channels_first, objectness, classes, m)


@dataclass(frozen=True)
class YoloDetections:
    """Kept detections of one image, in input pixels."""

    boxes: Tensor
    """``(k, 4)`` ``x1, y1, x2, y2``."""
    scores: Tensor
    """``(k,)``."""
    labels: Tensor
    """``(k,)`` 0-based class indices."""
    class_scores: Tensor
    """``(k, C)`` class probabilities, summing to 1."""
    coefficients: Tensor
    """``(k, M)``."""


def select_detections(
    detections: Tensor, layout: YoloLayout, options: YoloOptions
) -> YoloDetections:
    """Threshold and NMS one image's detections (``(d1, d2)``, batch axis removed).

    Examples
    --------
    >>> rows = torch.tensor([[50.0, 50, 20, 20, 0.9, 0.1, 1.0],   # cx cy w h, 2 classes, M=1
    ...                      [51.0, 50, 20, 20, 0.8, 0.1, 2.0],   # overlaps the first
    ...                      [10.0, 10, 4, 4, 0.1, 0.1, 3.0]])    # below the threshold
    >>> kept = select_detections(rows.T, YoloLayout(True, False, 2, 1), YoloOptions())
    >>> kept.boxes.tolist(), kept.labels.tolist(), kept.coefficients.tolist()
    ([[40.0, 40.0, 60.0, 60.0]], [0], [[1.0]])
    """
    rows = detections.float()
    rows = rows.T if layout.channels_first else rows
    c, m = layout.n_classes, layout.n_coefficients
    start = 4 + int(layout.objectness)
    probs = rows[:, start : start + c]
    if layout.objectness:
        probs = probs * rows[:, 4:5]
    scores, labels = probs.max(dim=1)
    keep = torch.nonzero(scores > options.score_threshold).flatten()
    if keep.numel() > options.max_candidates:
        keep = keep[torch.argsort(scores[keep], descending=True)[: options.max_candidates]]
    rows, probs, scores, labels = rows[keep], probs[keep], scores[keep], labels[keep]
    centers, sizes = rows[:, 0:2], rows[:, 2:4]
    boxes = torch.cat([centers - sizes / 2, centers + sizes / 2], dim=1)
    chosen = nms(boxes, scores, options.iou_threshold, labels, options.max_instances)
    chosen_probs = probs[chosen]
    total = chosen_probs.sum(dim=1, keepdim=True).clamp(min=1e-12)
    return YoloDetections(
        boxes=boxes[chosen],
        scores=scores[chosen],
        labels=labels[chosen],
        class_scores=chosen_probs / total,
        coefficients=rows[chosen][:, start + c : start + c + m],
    )


def assemble_mask(
    coefficients: Tensor,
    prototypes: Tensor,
    box: Tensor,
    placement: Placement,
    mask_threshold: float = 0.5,
) -> MaskArray:
    """One instance's ``bool (H, W)`` mask at the image's own size.

    ``coefficients @ prototypes`` gives mask logits at prototype resolution; each image
    pixel whose center (mapped into the input) lies in the box ``[x1, x2) x [y1, y2)``
    samples them bilinearly; pixels above ``logit(mask_threshold)`` are the mask.

    Examples
    --------
    >>> protos = torch.full((1, 4, 4), -10.0); protos[0, 1:3, 1:3] = 10.0
    >>> from monitor.model.letterbox import place
    >>> mask = assemble_mask(torch.ones(1), protos, torch.tensor([0.0, 0, 16, 16]),
    ...                      place((8, 8), (16, 16), "letterbox"))
    >>> mask.astype(int)
    array([[0, 0, 0, 0, 0, 0, 0, 0],
           [0, 0, 0, 0, 0, 0, 0, 0],
           [0, 0, 1, 1, 1, 1, 0, 0],
           [0, 0, 1, 1, 1, 1, 0, 0],
           [0, 0, 1, 1, 1, 1, 0, 0],
           [0, 0, 1, 1, 1, 1, 0, 0],
           [0, 0, 0, 0, 0, 0, 0, 0],
           [0, 0, 0, 0, 0, 0, 0, 0]])
    """
    height, width = placement.image_size
    mask: MaskArray = np.zeros((height, width), dtype=np.bool_)
    x1, y1, x2, y2 = (float(v) for v in box)
    rows, cols = input_pixels_to_image(placement, y1, y2, x1, x2)
    if rows.numel() == 0 or cols.numel() == 0:
        return mask
    m, ph, pw = prototypes.shape
    logits = (coefficients.float() @ prototypes.float().reshape(m, -1)).reshape(1, ph, pw)
    in_h, in_w = placement.input_size
    stride_y, stride_x = in_h / ph, in_w / pw
    (sy, sx), (top, left) = placement.scale, placement.offset
    values = sample_region(
        logits, rows, cols, (sy / stride_y, sx / stride_x), (top / stride_y, left / stride_x)
    )[0]
    cut = math.log(mask_threshold / (1.0 - mask_threshold))
    region = (values > cut).numpy()
    mask[int(rows[0]) : int(rows[-1]) + 1, int(cols[0]) : int(cols[-1]) + 1] = region
    return mask


def decode_yolo_seg(
    detections: Tensor,
    prototypes: Tensor,
    layout: YoloLayout,
    placement: Placement,
    options: YoloOptions | None = None,
) -> list[InstancePrediction]:
    """Turn one image's ``(d1, d2)`` detections and ``(M, h, w)`` prototypes into instances.

    Category ids are ``label + 1``; instances whose mask is empty are dropped; the rest
    are sorted by score, descending.
    """
    options = options or YoloOptions()
    if prototypes.ndim != 3 or prototypes.shape[0] != layout.n_coefficients:
        raise InvalidInputError(
            f"yolo-seg prototypes must be (M={layout.n_coefficients}, h, w), got "
            f"{tuple(prototypes.shape)}"
        )
    kept = select_detections(detections, layout, options)
    found: list[InstancePrediction] = []
    for k in range(kept.boxes.shape[0]):
        mask = assemble_mask(
            kept.coefficients[k], prototypes, kept.boxes[k], placement, options.mask_threshold
        )
        if not mask.any():
            continue
        scores = kept.class_scores[k].numpy().astype(np.float32)
        found.append(
            InstancePrediction(int(kept.labels[k]) + 1, float(kept.scores[k]), mask, scores)
        )
    found.sort(key=lambda inst: -inst.score)
    return found
