"""Masks as numpy arrays: COCO RLE through pycocotools (the reference), and moves."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from detectors._typing import MaskArray


def encode(mask: MaskArray) -> dict[str, Any]:
    """The compressed COCO RLE of ``mask``, counts as a string (as JSON holds it)."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": list(rle["size"]), "counts": rle["counts"].decode("ascii")}


def decode(rle: Mapping[str, Any]) -> MaskArray:
    """The mask of a compressed COCO RLE whose counts are a string or bytes."""
    r = dict(rle)
    if isinstance(r["counts"], str):
        r["counts"] = r["counts"].encode("ascii")
    return np.asarray(mask_utils.decode(r), dtype=bool)


def shift(mask: MaskArray, dy: int, dx: int) -> MaskArray:
    """Move a mask, filling with background (nothing wraps around)."""
    out = np.zeros_like(mask)
    h, w = mask.shape
    ys, xs = slice(max(dy, 0), h + min(dy, 0)), slice(max(dx, 0), w + min(dx, 0))
    yd, xd = slice(max(-dy, 0), h + min(-dy, 0)), slice(max(-dx, 0), w + min(-dx, 0))
    out[ys, xs] = mask[yd, xd]
    return out
