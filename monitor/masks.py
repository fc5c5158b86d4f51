"""Instance masks: validation and conversion to COCO compressed RLE.

segmon stores every mask as COCO compressed RLE (the ``counts`` string plus the image
size). Conversion is pycocotools'; validation is ours, because pycocotools 2.0.11 does
not check what it is given: a compressed ``counts`` of ``"0"`` or ``""`` decodes to
uninitialised memory, and uncompressed counts that do not add up to ``h * w`` are
accepted silently. :func:`decode_counts` decodes a counts string in numpy, so a mask is
checked (non-negative runs that cover exactly ``h * w`` pixels) before pycocotools
touches it.

Native-code safety: pycocotools' C code trusts its input, and some input kills the
process (polygon coordinates of 1e9 or more segfault ``frPyObjects``; -1e12 makes it run
for minutes). So every value is range-checked in Python first: image sizes are
positive integers with ``h * w`` at most :data:`MAX_MASK_PIXELS`; RLE sizes and counts
are integers, each run at most ``h * w``; polygon coordinates are finite numbers within
:data:`POLYGON_MARGIN` image sizes of the image (``-margin * w <= x <= (1 + margin) * w``,
the same for ``y`` with ``h``), and a segmentation's polygons together are at most
:data:`POLYGON_PERIMETER` times ``h + w`` long (pycocotools' work and memory grow with
the perimeter).
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

MAX_MASK_PIXELS = 2**31 - 1
"""Largest ``h * w`` of a mask: pycocotools stores runs as 32-bit integers."""

POLYGON_MARGIN = 1.0
"""How far outside the image a polygon vertex may lie, in image widths (x) / heights (y)."""

POLYGON_PERIMETER = 100
"""A segmentation's polygons may be at most this many times ``h + w`` long (L-inf)."""


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
    if runs.size and runs.max() > height * width:  # before the sum, which could overflow
        raise MaskError(
            MaskProblem.INVALID_RLE,
            f"RLE has a run of {runs.max()} pixels, more than {height}x{width}",
        )
    total = int(runs.sum())
    if total != height * width:
        raise MaskError(
            MaskProblem.INVALID_RLE,
            f"RLE runs cover {total} pixels, not {height}x{width}={height * width}",
        )


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def check_image_size(height: object, width: object) -> None:
    """Raise :class:`MaskError` unless ``height x width`` can hold a mask pycocotools handles.

    Examples
    --------
    >>> check_image_size(768, 1024)
    >>> check_image_size(70000, 70000)
    Traceback (most recent call last):
    ...
    monitor.masks.MaskError: image of 70000x70000 pixels is too large for a mask (at most 2147483647 pixels)
    """
    if not (_is_int(height) and _is_int(width)):
        raise MaskError(
            MaskProblem.MASK_SIZE_MISMATCH, f"image size {height!r}x{width!r} is not integers"
        )
    h, w = int(height), int(width)  # type: ignore[call-overload]
    if h < 1 or w < 1:
        raise MaskError(MaskProblem.MASK_SIZE_MISMATCH, f"image size {h}x{w} is not positive")
    if h * w > MAX_MASK_PIXELS:
        raise MaskError(
            MaskProblem.MASK_SIZE_MISMATCH,
            f"image of {h}x{w} pixels is too large for a mask (at most {MAX_MASK_PIXELS} pixels)",
        )


def _check_size(size: object, height: int, width: int) -> None:
    if not (
        isinstance(size, Sequence)
        and not isinstance(size, str | bytes)
        and len(size) == 2
        and all(_is_int(v) for v in size)
    ):
        raise MaskError(
            MaskProblem.INVALID_RLE, f"RLE 'size' must be two integers [h, w], got {size!r:.80}"
        )
    if [int(size[0]), int(size[1])] != [height, width]:
        raise MaskError(
            MaskProblem.MASK_SIZE_MISMATCH,
            f"mask size {list(size)} disagrees with image size [{height}, {width}]",
        )


def _uncompressed_runs(counts: Sequence[Any], height: int, width: int) -> npt.NDArray[np.int64]:
    if len(counts) > height * width + 1:
        raise MaskError(
            MaskProblem.INVALID_RLE,
            f"RLE has {len(counts)} runs, more than {height}x{width} pixels allow",
        )
    limit = height * width
    for value in counts:
        if not _is_int(value):
            raise MaskError(MaskProblem.INVALID_RLE, f"RLE count {value!r:.40} is not an integer")
        if value < 0:
            raise MaskError(MaskProblem.INVALID_RLE, f"RLE has a negative run length {value}")
        if value > limit:
            raise MaskError(
                MaskProblem.INVALID_RLE,
                f"RLE has a run of {value} pixels, more than {height}x{width}",
            )
    return np.asarray(counts, dtype=np.int64)


def _from_rle_object(rle: Any) -> CompressedMask:
    area = int(mask_utils.area(rle))
    x, y, w, h = (float(v) for v in mask_utils.toBbox(rle))
    counts = rle["counts"]
    text = counts.decode("ascii") if isinstance(counts, bytes) else str(counts)
    return CompressedMask(int(rle["size"][0]), int(rle["size"][1]), text, area, (x, y, w, h))


def _coordinate(value: object) -> float:
    if not isinstance(value, int | float | np.integer | np.floating) or isinstance(value, bool):
        raise MaskError(
            MaskProblem.INVALID_POLYGON, f"polygon coordinate {value!r:.40} is not a number"
        )
    try:
        number = float(value)
    except OverflowError:  # an integer beyond float range
        number = math.inf
    if not math.isfinite(number):
        raise MaskError(
            MaskProblem.INVALID_POLYGON, f"polygon has a non-finite value {value!r:.40}"
        )
    return number


def check_polygons(segmentation: Sequence[Any], height: int, width: int) -> list[list[float]]:
    """Validate COCO polygons for an ``height x width`` image before pycocotools sees them.

    Every coordinate must be a finite number within :data:`POLYGON_MARGIN` image sizes
    of the image, every polygon needs at least three points, and the polygons together
    may be at most :data:`POLYGON_PERIMETER` ``* (h + w)`` long.

    Raises
    ------
    MaskError
        With ``problem`` ``invalid_polygon``, naming the offending value.

    Examples
    --------
    >>> check_polygons([[0, 0, 4, 0, 4, 3]], height=4, width=5)
    [[0.0, 0.0, 4.0, 0.0, 4.0, 3.0]]
    >>> check_polygons([[0, 0, 1e12, 0, 1e12, 1e12]], height=4, width=5)
    Traceback (most recent call last):
    ...
    monitor.masks.MaskError: polygon coordinate x=1000000000000.0 is outside [-5.0, 10.0] (image 5 wide, margin 1.0 widths)
    """
    polygons: list[list[float]] = []
    low_x, high_x = -POLYGON_MARGIN * width, (1 + POLYGON_MARGIN) * width
    low_y, high_y = -POLYGON_MARGIN * height, (1 + POLYGON_MARGIN) * height
    perimeter = 0.0
    for polygon in segmentation:
        if not isinstance(polygon, Sequence) or isinstance(polygon, str | bytes):
            raise MaskError(MaskProblem.INVALID_POLYGON, f"polygon {polygon!r:.80} is not a list")
        if len(polygon) < 6 or len(polygon) % 2:
            raise MaskError(
                MaskProblem.INVALID_POLYGON,
                f"polygon with {len(polygon)} coordinates; needs an even number, at least 6",
            )
        coords = [_coordinate(v) for v in polygon]
        for x in coords[0::2]:
            if not low_x <= x <= high_x:
                raise MaskError(
                    MaskProblem.INVALID_POLYGON,
                    f"polygon coordinate x={x!r} is outside [{low_x}, {high_x}] "
                    f"(image {width} wide, margin {POLYGON_MARGIN} widths)",
                )
        for y in coords[1::2]:
            if not low_y <= y <= high_y:
                raise MaskError(
                    MaskProblem.INVALID_POLYGON,
                    f"polygon coordinate y={y!r} is outside [{low_y}, {high_y}] "
                    f"(image {height} high, margin {POLYGON_MARGIN} heights)",
                )
        xs, ys = np.asarray(coords[0::2]), np.asarray(coords[1::2])
        perimeter += float(
            np.maximum(np.abs(np.diff(xs, append=xs[:1])), np.abs(np.diff(ys, append=ys[:1]))).sum()
        )
        polygons.append(coords)
    if not polygons:
        raise MaskError(MaskProblem.INVALID_POLYGON, "segmentation is an empty polygon list")
    if perimeter > POLYGON_PERIMETER * (height + width):
        raise MaskError(
            MaskProblem.INVALID_POLYGON,
            f"polygons are {perimeter:.0f} pixels long, more than {POLYGON_PERIMETER} x "
            f"({height} + {width})",
        )
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
    check_image_size(height, width)
    if isinstance(segmentation, Mapping):
        _check_size(segmentation.get("size"), height, width)
        counts = segmentation.get("counts")
        if isinstance(counts, str | bytes):
            raw = counts.encode("utf-8", "replace") if isinstance(counts, str) else counts
            if not raw.isascii():
                raise MaskError(MaskProblem.INVALID_RLE, f"RLE counts {counts!r:.40} are not ASCII")
            _check_runs(decode_counts(raw), height, width)
            return _from_rle_object({"size": [height, width], "counts": raw})
        if isinstance(counts, Sequence):
            runs = _uncompressed_runs(counts, height, width)
            _check_runs(runs, height, width)
            rle = mask_utils.frPyObjects(
                {"size": [height, width], "counts": [int(c) for c in runs]}, height, width
            )
            return _from_rle_object(rle)
        raise MaskError(MaskProblem.INVALID_RLE, f"RLE counts of type {type(counts).__name__}")
    if isinstance(segmentation, Sequence) and not isinstance(segmentation, str | bytes):
        polygons = check_polygons(segmentation, height, width)
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


def reduced_shape(height: int, width: int, factor: int) -> tuple[int, int]:
    """Return the ``(h, w)`` of an image shrunk by an integer ``factor`` (rounded up, as PIL).

    Examples
    --------
    >>> reduced_shape(999, 1001, 4)
    (250, 251)
    """
    return -(-height // factor), -(-width // factor)


def decode_mask_reduced(counts: str, height: int, width: int, factor: int) -> npt.NDArray[np.bool_]:
    """Decode a stored mask straight to ``factor`` times smaller, never at full size.

    A cell of the reduced mask is set when any pixel of its ``factor x factor`` block is
    (so a small object never vanishes). Memory is that of the reduced mask plus one
    entry per run and per column, however large the image.

    Examples
    --------
    >>> decode_mask_reduced("5220003", 4, 5, 2).astype(int)
    array([[1, 1, 0],
           [1, 1, 0]])
    >>> bool((decode_mask_reduced("5220003", 4, 5, 1) == decode_mask("5220003", 4, 5)).all())
    True
    """
    if factor < 1:
        raise InvalidInputError(f"factor must be >= 1, got {factor}")
    runs = decode_counts(counts)
    _check_runs(runs, height, width)
    out_h, out_w = reduced_shape(height, width, factor)
    ends = np.cumsum(runs)
    starts = ends - runs
    fg = (np.arange(runs.size) % 2 == 1) & (runs > 0)
    s, e = starts[fg], ends[fg]
    first_col, last_col = s // height, (e - 1) // height
    spans = last_col - first_col + 1
    group = np.repeat(np.arange(s.size), spans)
    offset = np.arange(group.size) - np.repeat(np.cumsum(spans) - spans, spans)
    col = first_col[group] + offset
    row_start = np.where(col == first_col[group], s[group] % height, 0)
    row_end = np.where(col == last_col[group], (e[group] - 1) % height + 1, height)
    diff = np.zeros((out_w, out_h + 1), dtype=np.int32)
    np.add.at(diff, (col // factor, row_start // factor), 1)
    np.add.at(diff, (col // factor, (row_end - 1) // factor + 1), -1)
    return np.ascontiguousarray((np.cumsum(diff, axis=1)[:, :out_h] > 0).T)
