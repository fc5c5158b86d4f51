"""COCO RLE and polygons to and from mask arrays, checked before native code sees them.

Every format's masks pass through COCO compressed RLE, the form segmon stores. Decoding is
done here in numpy (:func:`coco_counts`), so a counts string is checked (well-formed,
non-negative runs covering exactly ``h * w`` pixels) before anything trusts it:
pycocotools' C decoder does not check and reads uninitialised memory on bad input.
Polygons are rasterised by pycocotools (the same rasteriser COCO evaluation uses) after
their coordinates are range-checked (huge coordinates crash its C code): each vertex lies
within one image size of the image, and a segmentation's outline is at most
:data:`POLYGON_PERIMETER` times ``h + w`` long.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from pycocotools import mask as mask_utils

from sampling.formats.records import BinaryMask, FormatError

__all__ = [
    "MAX_MASK_PIXELS",
    "POLYGON_PERIMETER",
    "coco_counts",
    "image_size",
    "mask_to_rle",
    "polygons_to_rle",
    "rle_to_mask",
]

MAX_MASK_PIXELS = 2**31 - 1
"""Largest ``h * w`` of a mask: pycocotools stores runs as 32-bit integers."""

POLYGON_PERIMETER = 100
"""A segmentation's polygons may be at most this many times ``h + w`` long (L-inf)."""


def image_size(height: object, width: object, *, where: str, field: str) -> tuple[int, int]:
    """Check an image size: positive integers with ``h * w`` at most :data:`MAX_MASK_PIXELS`.

    Examples
    --------
    >>> image_size(4, 6, where="image 1", field="size")
    (4, 6)
    >>> image_size(0, 6, where="image 1", field="size")
    Traceback (most recent call last):
    ...
    sampling.formats.records.FormatError: image 1: size: must be positive integers, got [0, 6]
    """
    ok = all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (height, width))
    if not ok:
        raise FormatError(where, field, f"must be positive integers, got [{height}, {width}]")
    h, w = int(height), int(width)  # type: ignore[call-overload]  # checked ints above
    if h * w > MAX_MASK_PIXELS:
        raise FormatError(where, field, f"{h} x {w} is more than {MAX_MASK_PIXELS} pixels")
    return h, w


def coco_counts(counts: str, *, where: str, field: str) -> npt.NDArray[np.int64]:
    """Decode a COCO compressed RLE counts string into its run lengths.

    The string holds one variable-length number per run, 5 bits per character (offset
    48, bit 0x20 = more characters follow, bit 0x10 of the last = negative); from the
    fourth run on, a number is the difference to the run two before.

    Examples
    --------
    >>> coco_counts("7420a0", where="mask", field="counts").tolist()
    [7, 4, 2, 4, 19]
    """
    raw = np.frombuffer(counts.encode("latin-1", "replace"), dtype=np.uint8).astype(np.int64)
    if raw.size == 0:
        raise FormatError(where, field, "empty counts")
    c = raw - 48
    if int(c.min()) < 0 or int(c.max()) > 63:
        raise FormatError(where, field, f"character outside '0'..'o' in {counts[:40]!r}")
    more = (c & 0x20) != 0
    if bool(more[-1]):
        raise FormatError(where, field, f"counts end inside a number: {counts[-20:]!r}")
    ends = np.flatnonzero(~more)
    starts = np.concatenate(([0], ends[:-1] + 1))
    group = np.repeat(np.arange(ends.size), ends - starts + 1)
    position = np.arange(c.size) - starts[group]
    if int(position.max()) > 7:
        raise FormatError(where, field, "a run needs more than 35 bits")
    values = np.zeros(ends.size, dtype=np.int64)
    np.add.at(values, group, (c & 0x1F) << (5 * position))
    negative = (c[ends] & 0x10) != 0
    values[negative] -= np.int64(1) << (5 * (position[ends[negative]] + 1))
    runs = values.copy()
    for parity in (1, 2):  # x[m] += x[m - 2] from m = 3 on, within each parity chain
        chain = runs[parity::2]
        chain[:] = np.cumsum(chain)
    return runs


def rle_to_mask(rle: Mapping[str, Any], *, where: str, field: str) -> BinaryMask:
    """Decode a COCO RLE (compressed or uncompressed) into a ``(h, w)`` 0/1 mask, checked.

    Examples
    --------
    >>> rle_to_mask({"size": [2, 3], "counts": "123"}, where="a", field="rle").tolist()
    [[0, 1, 0], [1, 0, 0]]
    >>> rle_to_mask({"size": [2, 3], "counts": [1, 2, 4]}, where="a", field="rle")
    Traceback (most recent call last):
    ...
    sampling.formats.records.FormatError: a: rle.counts: runs cover 7 pixels, the mask has 6
    """
    if not isinstance(rle, Mapping) or "size" not in rle or "counts" not in rle:
        raise FormatError(where, field, "must be an RLE object with 'size' and 'counts'")
    size = rle["size"]
    if not isinstance(size, Sequence) or isinstance(size, str) or len(size) != 2:
        raise FormatError(where, f"{field}.size", f"must be [height, width], got {size!r}")
    h, w = image_size(size[0], size[1], where=where, field=f"{field}.size")
    counts = rle["counts"]
    if isinstance(counts, bytes):
        counts = counts.decode("latin-1")
    if isinstance(counts, str):
        runs = coco_counts(counts, where=where, field=f"{field}.counts")
    elif isinstance(counts, Sequence):
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in counts):
            raise FormatError(where, f"{field}.counts", "uncompressed counts must be integers")
        runs = np.asarray(counts, dtype=np.int64)
    else:
        raise FormatError(where, f"{field}.counts", f"must be a string or a list, got {counts!r}")
    if runs.size and int(runs.min()) < 0:
        raise FormatError(where, f"{field}.counts", f"negative run {int(runs.min())}")
    total = int(runs.sum())
    if total != h * w:
        raise FormatError(
            where, f"{field}.counts", f"runs cover {total} pixels, the mask has {h * w}"
        )
    values = (np.arange(runs.size) % 2).astype(np.uint8)
    flat = np.repeat(values, runs)
    return flat.reshape(w, h).T  # a view in column-major order, as COCO lays it out


def image_mask(
    rle: Mapping[str, Any], height: int, width: int, *, where: str, k: int
) -> BinaryMask:
    """Decode the ``k``-th exported mask of an image and check it has the image's size.

    Examples
    --------
    >>> image_mask({"size": [2, 3], "counts": "123"}, 2, 3, where="a", k=0).sum()
    np.uint64(2)
    >>> image_mask({"size": [2, 3], "counts": "123"}, 3, 2, where="a", k=1)
    Traceback (most recent call last):
    ...
    sampling.formats.records.FormatError: a: masks[1].rle.size: [2, 3] differs from the image's [3, 2]
    """
    mask = rle_to_mask(rle, where=where, field=f"masks[{k}].rle")
    if mask.shape != (height, width):
        raise FormatError(
            where,
            f"masks[{k}].rle.size",
            f"{list(mask.shape)} differs from the image's [{height}, {width}]",
        )
    return mask


def mask_to_rle(mask: npt.NDArray[Any]) -> dict[str, Any]:
    """Encode a 2-D mask (nonzero = inside) as COCO compressed RLE, counts as a string.

    Examples
    --------
    >>> mask_to_rle(np.array([[0, 1, 0], [1, 0, 0]], dtype=np.uint8))
    {'size': [2, 3], 'counts': '123'}
    """
    encoded = mask_utils.encode(np.asfortranarray(mask != 0, dtype=np.uint8))
    return {"size": [int(v) for v in encoded["size"]], "counts": encoded["counts"].decode("ascii")}


def polygons_to_rle(
    polygons: Sequence[Sequence[float]], height: int, width: int, *, where: str, field: str
) -> dict[str, Any]:
    """Rasterise polygons (flat ``[x1, y1, x2, y2, ...]`` pixel coordinates) into one mask.

    Examples
    --------
    >>> rle = polygons_to_rle([[0, 0, 4, 0, 4, 2, 0, 2]], 3, 5, where="a", field="points")
    >>> int(rle_to_mask(rle, where="a", field="rle").sum())
    8
    """
    h, w = image_size(height, width, where=where, field="size")
    if not polygons:
        raise FormatError(where, field, "no polygon")
    checked: list[list[float]] = []
    length = 0.0
    for polygon in polygons:
        coords = [float(v) for v in polygon] if _numbers(polygon) else None
        if coords is None or len(coords) < 6 or len(coords) % 2:
            raise FormatError(
                where, field, f"a polygon needs at least 3 (x, y) numbers, got {polygon!r}"
            )
        xs, ys = np.asarray(coords[0::2]), np.asarray(coords[1::2])
        if not (np.isfinite(xs).all() and np.isfinite(ys).all()):
            raise FormatError(where, field, "a coordinate is not finite")
        if xs.min() < -w or xs.max() > 2 * w or ys.min() < -h or ys.max() > 2 * h:
            raise FormatError(
                where, field, f"a vertex lies more than one image size outside {w} x {h}"
            )
        closed_x, closed_y = np.append(xs, xs[0]), np.append(ys, ys[0])
        length += float(np.maximum(np.abs(np.diff(closed_x)), np.abs(np.diff(closed_y))).sum())
        checked.append(coords)
    if length > POLYGON_PERIMETER * (h + w):
        raise FormatError(where, field, f"outline of {length:.0f} px is too long for {w} x {h}")
    rles = mask_utils.frPyObjects(checked, h, w)
    merged = mask_utils.merge(rles)
    return {"size": [h, w], "counts": merged["counts"].decode("ascii")}


def _numbers(values: object) -> bool:
    return (
        isinstance(values, Sequence)
        and not isinstance(values, str)
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    )
