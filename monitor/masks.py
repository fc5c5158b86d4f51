"""Instance masks: validation and conversion to COCO compressed RLE.

segmon stores every mask as COCO compressed RLE (the ``counts`` string plus the image
size). Conversion is pycocotools'; validation is ours, because pycocotools 2.0.11 does
not check what it is given: a compressed ``counts`` of ``"0"`` or ``""`` decodes to
uninitialised memory, and uncompressed counts that do not add up to ``h * w`` are
accepted silently. :func:`decode_counts` decodes a counts string in numpy, so a mask is
checked (non-negative runs that cover exactly ``h * w`` pixels) before pycocotools
touches it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt
from pycocotools import mask as mask_utils

from monitor.errors import InvalidInputError


class MaskProblem(StrEnum):
    """Machine-readable reasons a mask is rejected."""

    INVALID_RLE = "invalid_rle"
    INVALID_POLYGON = "invalid_polygon"
    MASK_SIZE_MISMATCH = "mask_size_mismatch"


class MaskError(InvalidInputError):
    """A segmentation that cannot be turned into a valid mask.

    Parameters
    ----------
    problem
        The machine-readable reason.
    message
        What was wrong, naming the offending value.
    """

    def __init__(self, problem: MaskProblem, message: str) -> None:
        super().__init__(message)
        self.problem = problem


@dataclass(frozen=True)
class CompressedMask:
    """A validated mask in COCO compressed RLE.

    Attributes
    ----------
    height, width
        Mask size in pixels.
    counts
        The COCO compressed RLE counts string (ASCII).
    area
        Number of foreground pixels.
    bbox
        ``(x, y, w, h)`` of the foreground, as pycocotools computes it.
    """

    height: int
    width: int
    counts: str
    area: int
    bbox: tuple[float, float, float, float]

    def rle(self) -> dict[str, Any]:
        """Return the pycocotools RLE dict (``counts`` as bytes)."""
        return {"size": [self.height, self.width], "counts": self.counts.encode("ascii")}


def decode_counts(counts: str | bytes) -> npt.NDArray[np.int64]:
    """Decode a COCO compressed RLE counts string into run lengths.

    Vectorised port of pycocotools' ``rleFrString``: six-bit groups offset by 48,
    bit 0x20 continues a number, bit 0x10 of the last group is the sign, and runs from
    index 3 on are stored as differences to the run two places earlier.

    Parameters
    ----------
    counts
        The counts string.

    Returns
    -------
    numpy.ndarray
        Run lengths, alternating background and foreground, starting with background.

    Raises
    ------
    MaskError
        If a character is outside the alphabet or the last number is unterminated.

    Examples
    --------
    >>> decode_counts("5220003").tolist()
    [5, 2, 2, 2, 2, 2, 5]
    """
    raw = counts.encode("ascii", "replace") if isinstance(counts, str) else counts
    x = np.frombuffer(raw, dtype=np.uint8).astype(np.int64) - 48
    if x.size == 0:
        return np.zeros(0, dtype=np.int64)
    if x.min() < 0 or x.max() > 63:
        bad = raw[int(np.argmax((x < 0) | (x > 63)))]
        raise MaskError(
            MaskProblem.INVALID_RLE,
            f"RLE counts contain {chr(bad)!r}, outside the compressed-RLE alphabet",
        )
    ends = (x & 0x20) == 0
    if not ends[-1]:
        raise MaskError(MaskProblem.INVALID_RLE, "RLE counts end in the middle of a number")
    number = np.concatenate(([0], np.cumsum(ends)[:-1]))
    starts = np.flatnonzero(np.concatenate(([True], ends[:-1])))
    position = np.arange(x.size) - starts[number]
    if position.max() > 10:
        raise MaskError(MaskProblem.INVALID_RLE, "RLE counts hold a number too long to be a run")
    values = np.zeros(starts.size, dtype=np.int64)
    np.add.at(values, number, (x & 0x1F) << (5 * position))
    last = np.flatnonzero(ends)
    negative = (x[last] & 0x10) != 0
    values[negative] -= np.int64(1) << (5 * (position[last][negative] + 1))
    # Undo the delta coding: run m (m > 2) was stored minus run m - 2.
    runs = values.copy()
    runs[3::2] = np.cumsum(values[1::2])[1:]
    runs[4::2] = np.cumsum(values[2::2])[1:]
    return runs


def _check_runs(runs: npt.NDArray[np.int64], height: int, width: int) -> None:
    if runs.size and runs.min() < 0:
        raise MaskError(MaskProblem.INVALID_RLE, f"RLE has a negative run length {runs.min()}")
    total = int(runs.sum())
    if total != height * width:
        raise MaskError(
            MaskProblem.INVALID_RLE,
            f"RLE runs cover {total} pixels, not {height}x{width}={height * width}",
        )


def _check_size(size: object, height: int, width: int) -> None:
    if not (isinstance(size, Sequence) and len(size) == 2):
        raise MaskError(MaskProblem.INVALID_RLE, f"RLE 'size' must be [h, w], got {size!r}")
    if [int(size[0]), int(size[1])] != [height, width]:
        raise MaskError(
            MaskProblem.MASK_SIZE_MISMATCH,
            f"mask size {list(size)} disagrees with image size [{height}, {width}]",
        )


def _from_rle_object(rle: Any) -> CompressedMask:
    area = int(mask_utils.area(rle))
    x, y, w, h = (float(v) for v in mask_utils.toBbox(rle))
    counts = rle["counts"]
    text = counts.decode("ascii") if isinstance(counts, bytes) else str(counts)
    return CompressedMask(int(rle["size"][0]), int(rle["size"][1]), text, area, (x, y, w, h))


def _polygons(segmentation: Sequence[Any]) -> list[list[float]]:
    polygons: list[list[float]] = []
    for polygon in segmentation:
        if not isinstance(polygon, Sequence) or isinstance(polygon, str):
            raise MaskError(MaskProblem.INVALID_POLYGON, f"polygon {polygon!r} is not a list")
        coords = [float(v) for v in polygon]
        if len(coords) < 6 or len(coords) % 2:
            raise MaskError(
                MaskProblem.INVALID_POLYGON,
                f"polygon with {len(coords)} coordinates; needs an even number, at least 6",
            )
        if not all(math.isfinite(v) for v in coords):
            raise MaskError(MaskProblem.INVALID_POLYGON, f"polygon has a non-finite value {coords}")
        polygons.append(coords)
    if not polygons:
        raise MaskError(MaskProblem.INVALID_POLYGON, "segmentation is an empty polygon list")
    return polygons


def to_compressed(segmentation: object, height: int, width: int) -> CompressedMask:
    """Validate a COCO segmentation and convert it to compressed RLE.

    Parameters
    ----------
    segmentation
        Compressed RLE (``{"size", "counts": str}``), uncompressed RLE
        (``{"size", "counts": [int, ...]}``) or a list of polygons, by COCO's rules.
    height, width
        Size of the image the mask belongs to.

    Returns
    -------
    CompressedMask
        The validated mask with its area and box.

    Raises
    ------
    MaskError
        With ``problem`` set: undecodable RLE, polygon with too few points, or a mask
        whose size disagrees with the image.

    Examples
    --------
    >>> m = to_compressed([[1, 1, 4, 1, 4, 3, 1, 3]], height=4, width=5)
    >>> m.area, m.bbox
    (6, (1.0, 1.0, 3.0, 2.0))
    >>> to_compressed({"size": [4, 5], "counts": "0"}, 4, 5)
    Traceback (most recent call last):
    ...
    monitor.masks.MaskError: RLE runs cover 0 pixels, not 4x5=20
    """
    if isinstance(segmentation, Mapping):
        _check_size(segmentation.get("size"), height, width)
        counts = segmentation.get("counts")
        if isinstance(counts, str | bytes):
            _check_runs(decode_counts(counts), height, width)
            raw = counts.encode("ascii") if isinstance(counts, str) else counts
            return _from_rle_object({"size": [height, width], "counts": raw})
        if isinstance(counts, Sequence):
            try:
                runs = np.asarray(counts, dtype=np.int64)
            except (TypeError, ValueError) as exc:
                raise MaskError(
                    MaskProblem.INVALID_RLE, f"RLE counts {counts!r:.60} {exc}"
                ) from exc
            _check_runs(runs, height, width)
            rle = mask_utils.frPyObjects(
                {"size": [height, width], "counts": list(counts)}, height, width
            )
            return _from_rle_object(rle)
        raise MaskError(MaskProblem.INVALID_RLE, f"RLE counts of type {type(counts).__name__}")
    if isinstance(segmentation, Sequence) and not isinstance(segmentation, str):
        polygons = _polygons(segmentation)
        rle = mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))
        return _from_rle_object(rle)
    raise MaskError(
        MaskProblem.INVALID_RLE,
        f"segmentation of type {type(segmentation).__name__} is not RLE or polygons",
    )


def encode_mask(mask: npt.NDArray[np.bool_] | npt.NDArray[np.uint8]) -> CompressedMask:
    """Encode a binary ``(h, w)`` mask.

    Examples
    --------
    >>> m = np.zeros((4, 5), dtype=bool); m[1:3, 1:4] = True
    >>> encode_mask(m)
    CompressedMask(height=4, width=5, counts='5220003', area=6, bbox=(1.0, 1.0, 3.0, 2.0))
    """
    if mask.ndim != 2:
        raise InvalidInputError(f"mask must be 2-D (h, w), got shape {mask.shape}")
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return _from_rle_object(rle)


def decode_mask(counts: str, height: int, width: int) -> npt.NDArray[np.bool_]:
    """Decode a stored compressed-RLE ``counts`` string into a ``bool`` ``(h, w)`` mask.

    The runs are checked first (:func:`decode_counts`), so a corrupt string raises
    instead of decoding garbage.

    Raises
    ------
    MaskError
        If the counts are not valid compressed RLE for an ``height x width`` mask.

    Examples
    --------
    >>> decode_mask("5220003", 4, 5).astype(int)
    array([[0, 0, 0, 0, 0],
           [0, 1, 1, 1, 0],
           [0, 1, 1, 1, 0],
           [0, 0, 0, 0, 0]])
    """
    _check_runs(decode_counts(counts), height, width)
    rle = {"size": [height, width], "counts": counts.encode("ascii")}
    return np.asarray(mask_utils.decode(rle), dtype=bool)
