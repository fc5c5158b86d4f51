"""The records the export formats exchange with the queue stage, and their error.

The queue stage (``monitor/queue``) turns its rows into :class:`ExportImage` records and
hands them to a format's ``build_*`` function, which returns the document to write; an
import parses a returned document into :class:`ReturnedImage` records. Masks travel as
COCO compressed RLE (``{"size": [h, w], "counts": str}``), the form segmon stores, in
both directions; each format converts to and from its own mask encoding.

A malformed document raises :class:`FormatError`, which names where (task, image or
annotation) and which field was wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from detectors.errors import SegmonError

__all__ = [
    "BinaryMask",
    "ExportImage",
    "ExportMask",
    "FormatError",
    "ReturnedAnnotation",
    "ReturnedImage",
]

BinaryMask = npt.NDArray[np.uint8]
"""A ``(height, width)`` mask of 0 and 1."""


class FormatError(SegmonError, ValueError):
    """A document (or a mask in it) that does not follow its format.

    Parameters
    ----------
    where
        Which task, image or annotation, e.g. ``"task 3"`` or ``"image 'a.jpg'"``.
    field
        The offending field, e.g. ``"value.rle"``.
    problem
        What is wrong with it.

    Examples
    --------
    >>> error = FormatError("task 3", "data.image", "missing")
    >>> str(error), error.where, error.field
    ('task 3: data.image: missing', 'task 3', 'data.image')
    """

    def __init__(self, where: str, field: str, problem: str) -> None:
        super().__init__(f"{where}: {field}: {problem}")
        self.where = where
        self.field = field
        self.problem = problem


@dataclass(frozen=True)
class ExportMask:
    """One production instance, exported as a pre-annotation.

    Attributes
    ----------
    category_id, category_name
        Its class.
    rle
        COCO compressed RLE ``{"size": [h, w], "counts": str}`` of its mask.
    score
        The production model's confidence, or None.
    """

    category_id: int
    category_name: str
    rle: Mapping[str, Any]
    score: float | None


@dataclass(frozen=True)
class ExportImage:
    """One queue item: an image and the production prediction on it.

    Attributes
    ----------
    item_id
        The queue item's id; it goes into the exported task or image so the labels that
        come back find their item.
    file_name
        The image's path relative to the export's image folder, or a URL.
    width, height
        Image size in pixels.
    priority
        The queue priority (Label Studio's prediction ``score``).
    masks
        The production prediction, the annotators' starting point.
    model_version
        The production model version that made the prediction.
    """

    item_id: int
    file_name: str
    width: int
    height: int
    priority: float
    masks: tuple[ExportMask, ...]
    model_version: str


@dataclass(frozen=True)
class ReturnedAnnotation:
    """One instance an annotator returned.

    Attributes
    ----------
    category_name
        Its label, as the tool names it.
    rle
        COCO compressed RLE of its mask (polygons are rasterised).
    """

    category_name: str
    rle: Mapping[str, Any]


@dataclass(frozen=True)
class ReturnedImage:
    """One image of a returned document, with the annotators' instances.

    Attributes
    ----------
    item_id
        The queue item it came from, when the document carries it (Label Studio's
        ``data.segmon_item_id``, COCO's ``segmon_item_id``); None when it cannot be
        recovered (CVAT renumbers images): match on ``file_name`` then.
    file_name
        The image's name or URL as the document gives it.
    width, height
        Image size in pixels (0 when the document does not say, which only happens for
        a Label Studio task with no mask and no ``segmon_width``/``segmon_height``).
    annotations
        The returned instances (empty: the annotator found no object).
    annotator
        Who labelled it, when the document says (Label Studio ``completed_by``).
    skipped
        True when the annotator skipped the image (Label Studio ``was_cancelled``);
        its ``annotations`` are then empty.
    unsupported
        Shapes present but not usable as instance masks (boxes, points, rotated
        results...), one description each, so nothing is dropped silently.
    """

    item_id: int | None
    file_name: str
    width: int
    height: int
    annotations: tuple[ReturnedAnnotation, ...]
    annotator: str | None
    skipped: bool
    unsupported: tuple[str, ...] = ()
