"""A plugin model (``models.reference: {python: "tests.support.plugin_model:make_model"}``).

:class:`ColourModel` is what a team writes to wrap a model segmon cannot load from a
file: it finds the red and the green rectangles of the toy scenes
(:mod:`tests.support.exported_models`) in numpy, and embeds an image or a mask as its
mean colour. The other factories return objects that break the protocol, for the
loader's error messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from detectors._typing import Float32Array, ImageArray, MaskArray
from monitor.model.protocol import Embeddings, InstancePrediction


def colour_masks(image: ImageArray) -> tuple[MaskArray, MaskArray]:
    """The red and the green pixels of an RGB image."""
    r, g, b = (image[..., i] > 127 for i in range(3))
    return r & ~g & ~b, g & ~r & ~b


def _mean_colour(image: ImageArray, mask: MaskArray) -> Float32Array:
    inside = image[mask]
    if inside.size == 0:
        inside = image.reshape(-1, 3)
    return np.asarray(inside.astype(np.float64).mean(axis=0) / 255.0, dtype=np.float32)


@dataclass
class ColourModel:
    """Finds red (``disc``) and green (``box``) rectangles; embeds mean colours."""

    name: str = "plugin:colour@1"
    categories: tuple[str, ...] = ("disc", "box")
    embedding_dim: int = 3
    score: float = 0.9

    def predict(self, images: Sequence[ImageArray]) -> list[list[InstancePrediction]]:
        out = []
        for image in images:
            found = []
            for category_id, mask in enumerate(colour_masks(image), start=1):
                if mask.any():
                    scores = np.array([0.05, 0.05], dtype=np.float32)
                    scores[category_id - 1] = 0.95
                    found.append(InstancePrediction(category_id, self.score, mask, scores))
            out.append(found)
        return out

    def embed(
        self, images: Sequence[ImageArray], masks: Sequence[Sequence[MaskArray]]
    ) -> Embeddings:
        full = [_mean_colour(im, np.ones(im.shape[:2], dtype=bool)) for im in images]
        per = [
            np.stack([_mean_colour(im, m) for m in ms]) if ms else np.zeros((0, 3), np.float32)
            for im, ms in zip(images, masks, strict=True)
        ]
        return Embeddings(np.stack(full).astype(np.float32), per)


def make_model(**options: Any) -> ColourModel:
    """The plugin factory: options become the model's fields."""
    return ColourModel(**options)


class _SegmenterOnly:
    name = "plugin:segmenter-only@1"
    categories = ("disc", "box")

    def predict(self, images: Sequence[ImageArray]) -> list[list[InstancePrediction]]:
        return ColourModel().predict(images)


def make_segmenter(**options: Any) -> Any:
    """A plugin that predicts but cannot embed (no ``embedding_dim``, no ``embed``)."""
    return _SegmenterOnly()


class _NoPredict:
    name = "plugin:broken@1"
    categories = ("disc",)


def make_broken(**options: Any) -> Any:
    """A plugin whose model lacks ``predict``."""
    return _NoPredict()


def make_listed(**options: Any) -> Any:
    """A plugin whose categories are a list, not a tuple."""
    model = ColourModel()
    model.categories = ["disc", "box"]  # type: ignore[assignment]  # the mistake under test
    return model


def make_failing(**options: Any) -> Any:
    """A plugin factory that raises."""
    raise RuntimeError(f"cannot reach the model server {options.get('url')!r}")
