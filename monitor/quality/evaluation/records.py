"""Typed inputs of an evaluation: ground-truth and predicted instances.

Masks are COCO compressed RLE dicts (``{"size": [h, w], "counts": str | bytes}``), the form
the database stores. Evaluation never decodes them to pixels: overlaps are computed on the
run-length encoding.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from monitor.errors import InvalidInputError


@dataclass(frozen=True)
class GroundTruth:
    """One labeled instance of the holdout.

    Attributes
    ----------
    image_id
        The holdout image the instance belongs to.
    category_id
        Its class.
    rle
        Its mask, COCO compressed RLE.
    area
        Its area in pixels as the dataset states it (COCO uses the stated area, not the
        mask's pixel count, to bin ground truth into small/medium/large).
    iscrowd
        A crowd region: predictions that fall on it are neither true nor false positives.
    annotation_id
        The dataset's own id, kept for reference only; evaluation numbers instances
        itself, so ids of 0 or ``None`` are fine.

    Examples
    --------
    >>> gt = GroundTruth(image_id=1, category_id=2, rle={"size": [4, 4], "counts": "04<"}, area=4.0)
    >>> gt.iscrowd, gt.annotation_id
    (False, None)
    """

    image_id: int
    category_id: int
    rle: Mapping[str, Any]
    area: float
    iscrowd: bool = False
    annotation_id: int | None = None


@dataclass(frozen=True)
class Prediction:
    """One instance a model predicted.

    Attributes
    ----------
    image_id
        The image it was predicted on.
    category_id
        The predicted class.
    score
        Confidence; higher is more confident. Must be finite.
    rle
        The predicted mask, COCO compressed RLE.
    area
        Pixel count of the mask; computed from ``rle`` when ``None`` (as pycocotools'
        ``loadRes`` does).

    Examples
    --------
    >>> p = Prediction(image_id=1, category_id=2, score=0.9, rle={"size": [4, 4], "counts": "04<"})
    >>> p.area is None
    True
    """

    image_id: int
    category_id: int
    score: float
    rle: Mapping[str, Any]
    area: float | None = None


def mask_size(rle: Mapping[str, Any], what: str) -> tuple[int, int]:
    """Return ``(height, width)`` of a compressed RLE, checking its shape.

    Parameters
    ----------
    rle
        A COCO compressed RLE dict.
    what
        How to name the instance in an error message.

    Returns
    -------
    tuple of int
        The mask's height and width.

    Raises
    ------
    InvalidInputError
        When ``rle`` has no two-element ``size`` or no string ``counts``.

    Examples
    --------
    >>> mask_size({"size": [3, 5], "counts": "0?"}, "prediction 0")
    (3, 5)
    """
    if type(rle) is dict:  # the common case, without the slower ABC check
        size, counts = rle.get("size"), rle.get("counts")
        if type(size) is list and len(size) == 2 and type(counts) in (str, bytes):
            h, w = size
            if type(h) is int and type(w) is int and h >= 0 and w >= 0:
                return h, w
    size = rle.get("size") if isinstance(rle, Mapping) else None
    counts = rle.get("counts") if isinstance(rle, Mapping) else None
    if (
        not isinstance(size, list | tuple)
        or len(size) != 2
        or not all(isinstance(v, int) and v >= 0 for v in size)
    ):
        raise InvalidInputError(f"{what}: mask size must be [height, width], got {size!r}")
    if not isinstance(counts, str | bytes):
        raise InvalidInputError(
            f"{what}: mask counts must be a compressed RLE string, got {type(counts).__name__}"
        )
    return int(size[0]), int(size[1])


def check_score(score: float, what: str) -> float:
    """Return ``score`` as a float, refusing NaN and infinities.

    Parameters
    ----------
    score
        A prediction's confidence.
    what
        How to name the prediction in an error message.

    Returns
    -------
    float
        The score.

    Raises
    ------
    InvalidInputError
        When the score is not a finite number.

    Examples
    --------
    >>> check_score(0.5, "prediction 3")
    0.5
    >>> check_score(float("nan"), "prediction 3")
    Traceback (most recent call last):
    ...
    detectors.errors.InvalidInputError: prediction 3: score must be finite, got nan
    """
    value = float(score)
    if not math.isfinite(value):
        raise InvalidInputError(f"{what}: score must be finite, got {value!r}")
    return value
