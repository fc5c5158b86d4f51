"""Predictions a model made while embedding, kept for the shadow job: one forward pass for both.

In the default config the embedder *is* the reference model (``builtin:reference``),
so the embed job and the shadow job would run the same network over the same images.
A model holding a :class:`PredictionMemo` (see
:func:`~monitor.model.loading.share_forward_pass`) decodes its instances during
``embed`` from the heads it computed anyway and keeps them here, keyed by the image's
pixels; its ``predict`` takes an image's predictions from the memo (once: a hit removes
the entry) and runs the network only for the others.

The memo only saves work, it never changes what a job stores: the key is a digest of
the decoded pixels (size, dtype and bytes), so a hit is the same model's output for
the same input (computed in another batch, which on the CPU may differ in the last
float bits). Masks are kept as COCO compressed RLE (exact), and the memo holds at
most ``max_bytes``: past it the oldest entries go, and their images are predicted
again when asked for.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pycocotools import mask as mask_utils

from detectors._typing import ImageArray
from monitor.errors import InvalidInputError
from monitor.model.protocol import InstancePrediction

DEFAULT_MAX_BYTES = 64 << 20
"""Default cap of a memo (64 MiB: some 30,000 images of a few small instances each)."""

_ENTRY_OVERHEAD = 64
"""Bytes counted per entry and per instance on top of their arrays (keys, objects)."""


@dataclass(frozen=True)
class _Kept:
    """One instance, compact: its class, score, class scores and RLE counts."""

    category_id: int
    score: float
    class_scores: bytes
    counts: bytes


@dataclass(frozen=True)
class MemoStats:
    """What a memo did since it was made.

    Attributes
    ----------
    kept
        Images put in.
    hits
        Images taken out (predictions reused).
    misses
        Images asked for and not found (predicted again).
    evicted
        Images dropped, oldest first, to stay within ``max_bytes``.
    entries, bytes
        Images held now, and their approximate size.
    """

    kept: int
    hits: int
    misses: int
    evicted: int
    entries: int
    bytes: int


def image_key(image: ImageArray) -> bytes:
    """Return a digest of an image's size, dtype and pixels (the memo's key).

    Examples
    --------
    >>> a = np.zeros((2, 3, 3), np.uint8)
    >>> image_key(a) == image_key(a.copy()), image_key(a) == image_key(a[:, :2])
    (True, False)
    """
    pixels = np.ascontiguousarray(image)
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{pixels.shape}{pixels.dtype.str}".encode())
    digest.update(pixels.data)
    return digest.digest()


class PredictionMemo:
    """Per-image predictions kept until taken once, oldest dropped past ``max_bytes``.

    Thread-safe: the embed and shadow jobs of a service may run at the same time.

    Parameters
    ----------
    max_bytes
        Approximate cap of what the memo holds (RLE bytes, class scores, overhead).

    Examples
    --------
    >>> image = np.zeros((4, 4, 3), np.uint8)
    >>> mask = np.zeros((4, 4), bool); mask[1:3, 1:3] = True
    >>> found = [InstancePrediction(2, 0.75, mask, np.array([0.25, 0.75], np.float32))]
    >>> memo = PredictionMemo()
    >>> memo.put(image, found)
    >>> back = memo.take(image)
    >>> back[0].category_id, back[0].score, bool((back[0].mask == mask).all())
    (2, 0.75, True)
    >>> memo.take(image) is None, memo.stats().hits, memo.stats().misses
    (True, 1, 1)
    """

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_bytes < 0:
            raise InvalidInputError(f"max_bytes must be >= 0, got {max_bytes}")
        self.max_bytes = max_bytes
        self._entries: OrderedDict[bytes, tuple[tuple[int, int], tuple[_Kept, ...], int]] = (
            OrderedDict()
        )
        self._bytes = 0
        self._lock = threading.Lock()
        self._kept = self._hits = self._misses = self._evicted = 0

    def put(self, image: ImageArray, predictions: Sequence[InstancePrediction]) -> None:
        """Keep ``predictions`` of ``image`` (replacing any kept for the same pixels)."""
        size = (int(image.shape[0]), int(image.shape[1]))
        kept = tuple(_compact(inst, size) for inst in predictions)
        cost = _ENTRY_OVERHEAD + sum(
            _ENTRY_OVERHEAD + len(k.counts) + len(k.class_scores) for k in kept
        )
        key = image_key(image)
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old[2]
            if cost > self.max_bytes:
                return
            self._entries[key] = (size, kept, cost)
            self._bytes += cost
            self._kept += 1
            while self._bytes > self.max_bytes:
                _, (_, _, dropped) = self._entries.popitem(last=False)
                self._bytes -= dropped
                self._evicted += 1

    def take(self, image: ImageArray) -> list[InstancePrediction] | None:
        """Return and forget the predictions kept for ``image``; None if none are kept."""
        key = image_key(image)
        with self._lock:
            entry = self._entries.pop(key, None)
            if entry is None:
                self._misses += 1
                return None
            self._bytes -= entry[2]
            self._hits += 1
        size, kept, _ = entry
        return [_expand(k, size) for k in kept]

    def stats(self) -> MemoStats:
        """Return what the memo did and holds."""
        with self._lock:
            return MemoStats(
                self._kept, self._hits, self._misses, self._evicted, len(self._entries), self._bytes
            )


def _compact(inst: InstancePrediction, size: tuple[int, int]) -> _Kept:
    if inst.mask.shape != size:
        raise InvalidInputError(f"mask of {inst.mask.shape} on a {size} image")
    rle = mask_utils.encode(np.asfortranarray(inst.mask, dtype=np.uint8))
    scores = np.ascontiguousarray(inst.class_scores, dtype=np.float32)
    return _Kept(inst.category_id, inst.score, scores.tobytes(), bytes(rle["counts"]))


def _expand(kept: _Kept, size: tuple[int, int]) -> InstancePrediction:
    rle = {"size": [size[0], size[1]], "counts": kept.counts}
    mask = np.ascontiguousarray(mask_utils.decode(rle), dtype=np.bool_)
    scores = np.frombuffer(kept.class_scores, dtype=np.float32).copy()
    return InstancePrediction(kept.category_id, kept.score, mask, scores)
