"""Adapters for models exported from any architecture (ONNX or TorchScript files).

:class:`ExportedSegmenter` answers :class:`~monitor.model.protocol.SegmentationModel`
for a file whose outputs follow the ``instances`` or ``yolo-seg`` convention
(:mod:`~monitor.model.conventions`); :class:`ExportedEmbedder` answers
:class:`~monitor.model.protocol.Embedder` for an image-feature model (a CLIP or DINO
image encoder, a classification backbone). Both build their input with the declared
:class:`~monitor.model.preprocess.Preprocessing` and map results back to each image's
own size through its :class:`~monitor.model.letterbox.Placement`.

Batches: a model with a dynamic batch axis gets up to ``batch_size`` images per call; a
fixed batch ``B`` gets exactly ``B`` (the last call padded with copies of its last
image, whose outputs are dropped); ``none`` gets one ``(3, h, w)`` image per call. An
``instances`` model always sees one image per call (its outputs have no batch axis).

Embeddings: where a feature map is exposed (``yolo-seg`` prototypes, an ``instances``
model's ``features`` output, an embedder's ``(N, D, h, w)`` output) instance vectors are
the map pooled inside each mask (:func:`~monitor.model.pooling.pool_placed`); an
embedder that returns one vector per image embeds each instance's crop (the mask's
bounding box of the image) instead. An empty mask gets the image vector.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from detectors._typing import Float32Array, ImageArray, MaskArray
from monitor.errors import ConfigError, InvalidInputError
from monitor.model.backends import Backend
from monitor.model.conventions import OutputPlan
from monitor.model.instances import InstancesOptions, decode_instances_outputs
from monitor.model.letterbox import Placement
from monitor.model.pooling import pool_placed
from monitor.model.preprocess import Preprocessing, prepare_inputs
from monitor.model.protocol import Embeddings, InstancePrediction
from monitor.model.yolo import YoloLayout, YoloOptions, decode_yolo_seg

BatchPolicy = int | Literal["dynamic", "none"]
"""A fixed batch size, a dynamic batch axis, or no batch axis (one CHW image a call)."""


@dataclass
class Runner:
    """Runs a backend over images in calls its batch axis accepts.

    Attributes
    ----------
    backend
        The file's runtime.
    prep
        How images become its input.
    batch
        The file's batch policy.
    batch_size
        Images per call when the batch axis is dynamic.
    per_image
        Whether each call takes one image (forced for ``instances`` and ``native``).
    """

    backend: Backend
    prep: Preprocessing
    batch: BatchPolicy = "dynamic"
    batch_size: int = 16
    per_image: bool = False
    calls: int = field(default=0, init=False)

    def chunk_size(self) -> int:
        """Images per call."""
        if self.batch == "none" or self.per_image or self.prep.mode == "native":
            return 1
        return self.batch if isinstance(self.batch, int) else self.batch_size

    def probe(self) -> Tensor:
        """Return a zero input of the file's layout, to learn its outputs from."""
        size = self.prep.input_size if self.prep.mode != "native" else (64, 64)
        n = self.batch if isinstance(self.batch, int) else 1
        probe = torch.zeros((n, 3, *size), device=self.backend.device)
        return probe[0] if self.batch == "none" else probe

    def run(self, images: Sequence[ImageArray]) -> Iterator[tuple[list[Placement], list[Tensor]]]:
        """Yield ``(placements, outputs)`` per call; outputs keep the file's batch axis."""
        step = self.chunk_size()
        for start in range(0, len(images), step):
            chunk = list(images[start : start + step])
            real = len(chunk)
            if isinstance(self.batch, int) and real < self.batch:
                chunk += [chunk[-1]] * (self.batch - real)
            with torch.inference_mode():
                batch, placements = prepare_inputs(chunk, self.prep, self.backend.device)
                outputs = self.backend.run(batch[0] if self.batch == "none" else batch)
            self.calls += 1
            yield placements[:real], outputs


def _image(outputs: list[Tensor], index: int, batched: bool) -> list[Tensor]:
    return [o[index] for o in outputs] if batched else outputs


class ExportedSegmenter:
    """A segmentation model exported to ONNX or TorchScript, in a known output convention.

    Parameters
    ----------
    runner
        The file, its preprocessing and batch policy.
    plan
        Its output convention (``instances`` or ``yolo-seg``) and roles.
    categories
        Class names by label index.
    name
        Stable identifier (kind, file stem and hash, declared settings).
    layout
        Layout of ``yolo-seg`` detections.
    score_threshold, iou_threshold, mask_threshold, max_instances
        Decoding thresholds (``iou_threshold``: NMS of ``yolo-seg``).
    details
        What :meth:`describe` adds (source, preprocessing).
    """

    def __init__(
        self,
        runner: Runner,
        plan: OutputPlan,
        categories: tuple[str, ...],
        name: str,
        *,
        layout: YoloLayout | None = None,
        score_threshold: float = 0.25,
        iou_threshold: float = 0.7,
        mask_threshold: float = 0.5,
        max_instances: int = 100,
        details: dict[str, Any] | None = None,
    ) -> None:
        if plan.convention not in ("instances", "yolo-seg"):
            raise ConfigError(
                f"ExportedSegmenter runs instances or yolo-seg, not {plan.convention}"
            )
        if plan.convention == "yolo-seg" and layout is None:
            raise ConfigError("a yolo-seg model needs its detections layout")
        self.runner = runner
        self.plan = plan
        self.categories = categories
        self.name = name
        self.layout = layout
        self.yolo_options = YoloOptions(
            score_threshold, iou_threshold, mask_threshold, max_instances
        )
        self.instances_options = InstancesOptions(score_threshold, mask_threshold, max_instances)
        self.details = details or {}
        if plan.convention == "yolo-seg":
            assert layout is not None
            self.embedding_dim = layout.n_coefficients
        else:
            self.embedding_dim = int(details.get("feature_dim", 0)) if details else 0
        runner.per_image = plan.convention == "instances"

    @property
    def convention(self) -> str:
        """The output convention (``instances`` or ``yolo-seg``)."""
        return self.plan.convention

    def describe(self) -> dict[str, Any]:
        """Return what this model is: convention, classes, preprocessing, source."""
        return {
            "convention": self.plan.convention,
            "classes": len(self.categories),
            "embedding": "masked pooling" if self.embedding_dim else None,
            "preprocessing": self.runner.prep.describe(),
            "batch": self.runner.batch,
            **self.details,
        }

    def _per_image(self, images: Sequence[ImageArray]) -> Iterator[tuple[Placement, list[Tensor]]]:
        batched = self.plan.convention == "yolo-seg"
        for placements, outputs in self.runner.run(images):
            for i, placement in enumerate(placements):
                yield placement, _image(outputs, i, batched)

    def _decode(self, placement: Placement, outputs: list[Tensor]) -> list[InstancePrediction]:
        roles = self.plan.roles
        if self.plan.convention == "yolo-seg":
            assert self.layout is not None
            return decode_yolo_seg(
                outputs[roles["detections"]],
                outputs[roles["prototypes"]],
                self.layout,
                placement,
                self.yolo_options,
            )
        boxes, labels, scores, masks = (
            outputs[roles[r]] for r in ("boxes", "labels", "scores", "masks")
        )
        if boxes.ndim == 3:  # an export that kept the batch axis of its single image
            boxes, labels, scores, masks = boxes[0], labels[0], scores[0], masks[0]
        return decode_instances_outputs(
            boxes, labels, scores, masks, placement, len(self.categories), self.instances_options
        )

    def predict(self, images: Sequence[ImageArray]) -> list[list[InstancePrediction]]:
        """Return the instances found in each image, masks at the image's own size."""
        return [self._decode(p, outputs) for p, outputs in self._per_image(images)]

    def _feature(self, outputs: list[Tensor]) -> Tensor:
        if self.plan.convention == "yolo-seg":
            return outputs[self.plan.roles["prototypes"]]
        if "features" not in self.plan.roles:
            raise ConfigError(
                f"model {self.name!r} exposes no feature map to embed with; set models.embedder "
                "(an image-feature ONNX/TorchScript model or a plugin)"
            )
        feature = outputs[self.plan.roles["features"]]
        return feature[0] if feature.ndim == 4 else feature

    def embed(
        self, images: Sequence[ImageArray], masks: Sequence[Sequence[MaskArray]]
    ) -> Embeddings:
        """Pool the model's feature map (yolo-seg: its prototypes) per image and mask."""
        check_masks(images, masks)
        vectors, instances = [], []
        for (placement, outputs), image_masks in zip(self._per_image(images), masks, strict=True):
            image, inst = pool_placed(self._feature(outputs), list(image_masks), placement)
            vectors.append(image)
            instances.append(inst)
        return Embeddings(stack(vectors, self.embedding_dim), instances)


def check_masks(images: Sequence[ImageArray], masks: Sequence[Sequence[MaskArray]]) -> None:
    """Raise :class:`InvalidInputError` unless each image has its list of image-sized masks."""
    if len(masks) != len(images):
        raise InvalidInputError(f"{len(images)} images but {len(masks)} mask lists")
    for i, (image, image_masks) in enumerate(zip(images, masks, strict=True)):
        for mask in image_masks:
            if mask.shape != image.shape[:2]:
                raise InvalidInputError(
                    f"mask of image {i} is {mask.shape}, the image is {image.shape[:2]}"
                )


def stack(vectors: Sequence[Float32Array], dim: int) -> Float32Array:
    """Stack image vectors into ``(N, dim)`` float32 (``(0, dim)`` when there are none)."""
    if not vectors:
        return np.zeros((0, dim), dtype=np.float32)
    return np.stack(vectors).astype(np.float32)


def mask_box(mask: MaskArray) -> tuple[int, int, int, int] | None:
    """Return ``(y0, y1, x0, x1)``, the bounding box of a mask's pixels, or None if empty.

    Examples
    --------
    >>> m = np.zeros((5, 6), dtype=bool); m[1:3, 2:5] = True
    >>> mask_box(m), mask_box(np.zeros((2, 2), dtype=bool))
    ((1, 3, 2, 5), None)
    """
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


class ExportedEmbedder:
    """An image-feature model (ONNX or TorchScript): image and instance vectors.

    Parameters
    ----------
    runner
        The file, its preprocessing and batch policy.
    output
        Index of the embedding output.
    kind
        ``map``: ``(N, D, h, w)``, pooled inside masks; ``vector``: ``(N, D)``, instances
        embedded from their crops.
    embedding_dim
        ``D``.
    name
        Stable identifier (kind, file stem and hash, declared settings).
    details
        What :meth:`describe` adds (source).
    """

    def __init__(
        self,
        runner: Runner,
        output: int,
        kind: Literal["map", "vector"],
        embedding_dim: int,
        name: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.runner = runner
        self.output = output
        self.kind = kind
        self.embedding_dim = embedding_dim
        self.name = name
        self.details = details or {}

    def describe(self) -> dict[str, Any]:
        """Return what this embedder is: how instance vectors are made, preprocessing, source."""
        return {
            "embedding": "masked pooling" if self.kind == "map" else "instance crops",
            "preprocessing": self.runner.prep.describe(),
            "batch": self.runner.batch,
            **self.details,
        }

    def _outputs(self, images: Sequence[ImageArray]) -> Iterator[tuple[Placement, Tensor]]:
        for placements, outputs in self.runner.run(images):
            found = outputs[self.output]
            if self.runner.batch == "none":
                found = found[None]
            for i, placement in enumerate(placements):
                yield placement, found[i].float()

    def _vectors(self, images: Sequence[ImageArray]) -> list[Float32Array]:
        out = []
        for _, vector in self._outputs(images):
            flat = vector.reshape(-1)
            if flat.numel() != self.embedding_dim:
                raise InvalidInputError(
                    f"embedder {self.name!r} returned {tuple(vector.shape)}, expected "
                    f"({self.embedding_dim},)"
                )
            out.append(flat.numpy().astype(np.float32))
        return out

    def embed(
        self, images: Sequence[ImageArray], masks: Sequence[Sequence[MaskArray]]
    ) -> Embeddings:
        """Return image vectors and, per image, one vector per given mask."""
        check_masks(images, masks)
        dim = self.embedding_dim
        if self.kind == "map":
            vectors, instances = [], []
            for (placement, feature), image_masks in zip(self._outputs(images), masks, strict=True):
                image, inst = pool_placed(feature, list(image_masks), placement)
                vectors.append(image)
                instances.append(inst)
            return Embeddings(stack(vectors, dim), instances)
        image_vectors = self._vectors(images)
        crops: list[ImageArray] = []  # uint8 (h, w, 3) crops of the masks' boxes
        where: list[tuple[int, int]] = []
        for i, (pixels, image_masks) in enumerate(zip(images, masks, strict=True)):
            for j, mask in enumerate(image_masks):
                box = mask_box(mask)
                if box is not None:
                    y0, y1, x0, x1 = box
                    crops.append(np.ascontiguousarray(pixels[y0:y1, x0:x1]))
                    where.append((i, j))
        instances = [
            np.tile(image_vectors[i], (len(m), 1)).astype(np.float32).reshape(len(m), dim)
            for i, m in enumerate(masks)
        ]
        for (i, j), vector in zip(where, self._vectors(crops) if crops else [], strict=True):
            instances[i][j] = vector
        return Embeddings(stack(image_vectors, dim), instances)
