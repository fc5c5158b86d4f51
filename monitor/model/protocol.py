"""The protocols every model segmon runs implements.

Built-in (pure torch), TorchScript, ONNX and plugin models answer the same calls, so the
embed, shadow, predict and evaluate jobs never care which kind they hold: a reference
model is an :class:`InstanceSegmenter` (``predict``), an embedder an :class:`Embedder`
(``embed``), and :class:`SegmentationModel` is both.

Images are ``uint8`` arrays of shape ``(H, W, 3)`` (RGB), any size; masks are ``bool``
arrays of the image's ``(H, W)``. Category ids are 1-based: class ``categories[i]`` is
category id ``i + 1``; callers map them to the configured categories by name.

The adapters (``monitor.model.adapters``, ``monitor.model.exported``) resize every image
to the model's input, run in batches and map masks back to each image's own size. An
image vector is the global average of the model's feature map over the image; an
instance vector is that map averaged inside the mask (each cell weighted by the fraction
of it the mask covers), so even a mask smaller than a cell gets its own vector, or, for
an embedder that gives one vector per image, the vector of the instance's crop; an
empty mask gets the image vector.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from detectors._typing import Float32Array, ImageArray, MaskArray
from monitor.errors import InvalidInputError


@dataclass(frozen=True)
class InstancePrediction:
    """One predicted instance.

    Attributes
    ----------
    category_id
        1-based index into the model's ``categories``.
    score
        Confidence in [0, 1].
    mask
        ``bool`` array of the image's ``(H, W)``.
    class_scores
        Per-class probabilities (length ``len(categories)``, summing to about 1).
    """

    category_id: int
    score: float
    mask: MaskArray
    class_scores: Float32Array


@dataclass(frozen=True)
class Embeddings:
    """Embeddings of a batch of images.

    Attributes
    ----------
    images
        ``float32`` array ``(N, D)``: one pooled backbone vector per image.
    instances
        One ``float32`` array ``(k_i, D)`` per image: backbone features pooled inside each
        of the masks given for that image, in the given order (``(0, D)`` when none).
    """

    images: Float32Array
    instances: list[Float32Array]


@runtime_checkable
class InstanceSegmenter(Protocol):
    """What the shadow, predict and evaluate jobs need of a model: predict instances."""

    name: str
    """A stable identifier, e.g. ``builtin:reference@<sha256[:12]>``; stored with results."""
    categories: tuple[str, ...]
    """Class names; ``categories[i]`` is category id ``i + 1``."""

    def predict(self, images: Sequence[ImageArray]) -> list[list[InstancePrediction]]:
        """Return the instances found in each image (batched internally)."""
        ...


@runtime_checkable
class Embedder(Protocol):
    """What the embed job needs of a model: image and per-mask vectors."""

    name: str
    """A stable identifier; stored as ``embedder`` with every vector."""
    embedding_dim: int
    """``D`` of :class:`Embeddings`."""

    def embed(
        self, images: Sequence[ImageArray], masks: Sequence[Sequence[MaskArray]]
    ) -> Embeddings:
        """Return image vectors and, per image, one vector per given mask."""
        ...


@runtime_checkable
class SegmentationModel(InstanceSegmenter, Embedder, Protocol):
    """What segmon needs of a reference model: predict instances, embed images and masks."""


@runtime_checkable
class Described(Protocol):
    """A model that can say what it is (source, convention, preprocessing), for the records."""

    def describe(self) -> dict[str, Any]:
        """Return JSON-ready facts about the model."""
        ...


@runtime_checkable
class CountsIgnored(Protocol):
    """A model that leaves some classes out (``classes_map``) and counts what it left out."""

    ignored: Counter[str]
    """Instances left out so far, by the model's own class name."""


REQUIRED_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "InstanceSegmenter": ("name", "categories", "predict"),
    "Embedder": ("name", "embedding_dim", "embed"),
    "SegmentationModel": ("name", "categories", "embedding_dim", "predict", "embed"),
}
"""The attributes each protocol requires (checked by the plugin loader, in this order)."""


def category_ids_by_name(
    model_name: str, model_categories: Sequence[str], configured: Mapping[int, str]
) -> dict[int, int]:
    """Map a model's 1-based class ids to configured category ids, by class name.

    Raises
    ------
    InvalidInputError
        When a class of the model is not a configured category; the message names it.

    Examples
    --------
    >>> category_ids_by_name("m", ("box", "disc"), {1: "disc", 2: "box"})
    {1: 2, 2: 1}
    >>> category_ids_by_name("m", ("kite",), {1: "disc"})
    Traceback (most recent call last):
    ...
    detectors.errors.InvalidInputError: model 'm' has class 'kite', which is not a configured category (disc); add it: segmon categories add ID kite
    """
    by_name = {name: cid for cid, name in configured.items()}
    unknown = [name for name in model_categories if name not in by_name]
    if unknown:
        raise InvalidInputError(
            f"model {model_name!r} has class {unknown[0]!r}, which is not a configured "
            f"category ({', '.join(sorted(by_name))}); add it: segmon categories add ID {unknown[0]}"
        )
    return {i + 1: by_name[name] for i, name in enumerate(model_categories)}
