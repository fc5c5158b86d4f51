"""Decoding of the ``instances`` output convention (torchvision / detectron2 Mask R-CNN).

One image per call; outputs ``boxes (N, 4)`` ``x1, y1, x2, y2`` in input pixels,
``labels (N,)`` (indices into the model's class list), ``scores (N,)`` and ``masks``
``(N, 1, h, w)`` (or ``(N, h, w)``) probabilities, either

* at the input's resolution (torchvision pastes its RoI masks into the image before
  returning them), or
* box-relative RoI masks of any other size, e.g. ``28 x 28`` (detectron2's exports
  leave the paste out), which segmon pastes into each box.

Either way each image pixel samples the mask bilinearly at its center mapped into the
input (undoing resize or letterbox in one step) and keeps it above
``mask_threshold``. Only the top class's score is known: its class scores are that
score for the label and the rest spread evenly over the other classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from detectors._typing import Float32Array, MaskArray
from monitor.errors import InvalidInputError
from monitor.model.letterbox import Placement, input_pixels_to_image, sample_region
from monitor.model.protocol import InstancePrediction


@dataclass(frozen=True)
class InstancesOptions:
    """Thresholds of :func:`decode_instances_outputs`."""

    score_threshold: float = 0.25
    mask_threshold: float = 0.5
    max_instances: int = 100


def spread_scores(label: int, score: float, n_classes: int) -> Float32Array:
    """Class scores when only the top class's score is known.

    Examples
    --------
    >>> [round(float(s), 3) for s in spread_scores(1, 0.7, 4)]
    [0.1, 0.7, 0.1, 0.1]
    """
    if n_classes == 1:
        return np.ones(1, dtype=np.float32)
    out = np.full(n_classes, (1.0 - score) / (n_classes - 1), dtype=np.float32)
    out[label] = score
    return out


def _support(mask: Tensor) -> tuple[float, float, float, float] | None:
    """Input-space rectangle ``(y0, y1, x0, x1)`` holding the mask's non-zero values."""
    ys = torch.nonzero(mask.amax(dim=1) > 0).flatten()
    xs = torch.nonzero(mask.amax(dim=0) > 0).flatten()
    if ys.numel() == 0:
        return None
    # one input pixel of margin: bilinear sampling reaches half a pixel beyond
    return float(ys[0]) - 1, float(ys[-1]) + 2, float(xs[0]) - 1, float(xs[-1]) + 2


def paste_mask(
    mask: Tensor, box: Tensor, placement: Placement, mask_threshold: float = 0.5
) -> MaskArray:
    """One instance's ``bool (H, W)`` mask from an input-size or a box-relative mask.

    Parameters
    ----------
    mask
        ``(h, w)`` probabilities: the input's size, or any other size spanning ``box``.
    box
        ``x1, y1, x2, y2`` in input pixels.
    placement
        Where the image sits in the input.
    mask_threshold
        Probability above which a pixel belongs to the instance.

    Examples
    --------
    >>> from monitor.model.letterbox import place
    >>> roi = torch.tensor([[1.0, 0.0], [1.0, 1.0]])          # a 2 x 2 RoI mask
    >>> paste_mask(roi, torch.tensor([2.0, 2, 6, 6]), place((8, 8), (8, 8), "resize")).astype(int)
    array([[0, 0, 0, 0, 0, 0, 0, 0],
           [0, 0, 0, 0, 0, 0, 0, 0],
           [0, 0, 1, 1, 0, 0, 0, 0],
           [0, 0, 1, 1, 0, 0, 0, 0],
           [0, 0, 1, 1, 1, 1, 0, 0],
           [0, 0, 1, 1, 1, 1, 0, 0],
           [0, 0, 0, 0, 0, 0, 0, 0],
           [0, 0, 0, 0, 0, 0, 0, 0]])
    """
    height, width = placement.image_size
    out: MaskArray = np.zeros((height, width), dtype=np.bool_)
    (sy, sx), (top, left) = placement.scale, placement.offset
    mask = mask.float()
    if tuple(mask.shape) == placement.input_size:
        region = _support(mask)
        if region is None:
            return out
        rows, cols = input_pixels_to_image(placement, *region)
        steps, starts = (sy, sx), (float(top), float(left))
    else:
        x1, y1, x2, y2 = (float(v) for v in box)
        if x2 <= x1 or y2 <= y1:
            return out
        mh, mw = mask.shape
        rows, cols = input_pixels_to_image(placement, y1, y2, x1, x2)
        steps = (sy * mh / (y2 - y1), sx * mw / (x2 - x1))
        starts = ((top - y1) * mh / (y2 - y1), (left - x1) * mw / (x2 - x1))
    if rows.numel() == 0 or cols.numel() == 0:
        return out
    values = sample_region(mask[None], rows, cols, steps, starts)[0]
    out[int(rows[0]) : int(rows[-1]) + 1, int(cols[0]) : int(cols[-1]) + 1] = (
        values > mask_threshold
    ).numpy()
    return out


def decode_instances_outputs(
    boxes: Tensor,
    labels: Tensor,
    scores: Tensor,
    masks: Tensor,
    placement: Placement,
    n_classes: int,
    options: InstancesOptions | None = None,
) -> list[InstancePrediction]:
    """Turn one image's ``instances`` outputs into instances at the image's own size.

    Category ids are ``label + 1``; instances below ``score_threshold`` or with an empty
    mask are dropped; at most ``max_instances`` are kept, by descending score.

    Raises
    ------
    InvalidInputError
        For outputs whose shapes disagree, or a label outside the model's classes.
    """
    options = options or InstancesOptions()
    if masks.ndim == 4 and masks.shape[1] == 1:
        masks = masks[:, 0]
    n = boxes.shape[0] if boxes.ndim == 2 else -1
    if (
        boxes.ndim != 2
        or boxes.shape[-1] != 4
        or labels.shape != (n,)
        or scores.shape != (n,)
        or masks.ndim != 3
        or masks.shape[0] != n
    ):
        raise InvalidInputError(
            "instances outputs must be boxes (N, 4), labels (N,), scores (N,), masks "
            f"(N, 1, h, w); got {tuple(boxes.shape)}, {tuple(labels.shape)}, "
            f"{tuple(scores.shape)}, {tuple(masks.shape)}"
        )
    order = torch.argsort(scores.float(), descending=True, stable=True)
    found: list[InstancePrediction] = []
    for i in order.tolist():
        score = float(scores[i])
        if score < options.score_threshold or len(found) >= options.max_instances:
            break
        label = int(labels[i])
        if not 0 <= label < n_classes:
            raise InvalidInputError(
                f"the model predicted label {label}, but it has {n_classes} classes "
                f"(labels 0-{n_classes - 1}); list them all in `classes`"
            )
        mask = paste_mask(masks[i], boxes[i], placement, options.mask_threshold)
        if mask.any():
            score = min(max(score, 0.0), 1.0)
            found.append(
                InstancePrediction(label + 1, score, mask, spread_scores(label, score, n_classes))
            )
    return found
