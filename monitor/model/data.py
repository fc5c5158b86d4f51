"""Training data of the built-in model: COCO instances loaded into memory, and its targets.

Every image is resized to the model's square input; its instances become one instance-id
map. From that map come the three Panoptic-DeepLab targets: per-pixel semantic class,
a Gaussian heatmap around each instance's center of mass and, per stride-4 cell, the
offset from the cell's center to its instance's center.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image
from pycocotools import mask as mask_utils

from monitor.errors import InvalidInputError, NotFoundError
from monitor.masks import to_compressed
from monitor.model.network import OUTPUT_STRIDE

CENTER_SIGMA = 8.0
"""Standard deviation, in input pixels, of the Gaussian around each instance center."""


@dataclass(frozen=True)
class Targets:
    """Training targets of a batch of images of side ``S`` (``s = S / 4``).

    Attributes
    ----------
    semantic
        ``uint8 (N, S, S)``: 0 background, ``c`` for category id ``c``.
    center
        ``float32 (N, s, s)``: max over instances of a Gaussian around the center.
    offset
        ``float32 (N, 2, s, s)``: (dy, dx) in input pixels from cell center to instance
        center; 0 on background.
    foreground
        ``bool (N, s, s)``: cells that belong to an instance.
    """

    semantic: npt.NDArray[np.uint8]
    center: npt.NDArray[np.float32]
    offset: npt.NDArray[np.float32]
    foreground: npt.NDArray[np.bool_]


@dataclass(frozen=True)
class TrainingData:
    """Images and their targets, in memory.

    Attributes
    ----------
    categories
        Class names, in category-id order (from the COCO ``categories``).
    images
        ``uint8 (N, S, S, 3)``.
    targets
        The targets of every image.
    """

    categories: tuple[str, ...]
    images: npt.NDArray[np.uint8]
    targets: Targets

    def __len__(self) -> int:
        return int(self.images.shape[0])


def _cell_centers(size: int) -> npt.NDArray[np.float32]:
    cells = size // OUTPUT_STRIDE
    return np.asarray(
        np.arange(cells) * OUTPUT_STRIDE + (OUTPUT_STRIDE - 1) / 2.0, dtype=np.float32
    )


def make_targets(
    instance_map: npt.NDArray[np.int32], classes: npt.NDArray[np.int64]
) -> tuple[
    npt.NDArray[np.uint8], npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.bool_]
]:
    """Return the semantic, center, offset and foreground targets of one image.

    Parameters
    ----------
    instance_map
        ``(S, S)`` map: 0 background, ``k`` for instance ``k`` (1-based).
    classes
        Category id of instance ``k`` at index ``k - 1``.

    Returns
    -------
    tuple
        ``semantic (S, S)``, ``center (S/4, S/4)``, ``offset (2, S/4, S/4)``,
        ``foreground (S/4, S/4)``.

    Examples
    --------
    >>> ids = np.zeros((8, 8), dtype=np.int32); ids[0:4, 0:4] = 1
    >>> sem, center, offset, fg = make_targets(ids, np.array([3]))
    >>> int(sem.max()), fg.astype(int).tolist(), offset[:, 0, 0].tolist()
    (3, [[1, 0], [0, 0]], [0.0, 0.0])
    >>> round(float(center[0, 0]), 3), round(float(center[1, 1]), 3)
    (1.0, 0.779)
    """
    size = instance_map.shape[0]
    lut = np.concatenate([[0], classes]).astype(np.uint8)
    semantic = lut[instance_map]
    cells = _cell_centers(size)
    cy, cx = np.meshgrid(cells, cells, indexing="ij")
    sample = np.minimum(np.rint(cells).astype(np.int64), size - 1)
    cell_ids = instance_map[np.ix_(sample, sample)]
    center = np.zeros(cy.shape, dtype=np.float32)
    offset = np.zeros((2, *cy.shape), dtype=np.float32)
    for k in range(1, len(classes) + 1):
        ys, xs = np.nonzero(instance_map == k)
        if ys.size == 0:
            continue
        my, mx = float(ys.mean()), float(xs.mean())
        gauss = np.exp(-((cy - my) ** 2 + (cx - mx) ** 2) / (2 * CENTER_SIGMA**2))
        np.maximum(center, gauss.astype(np.float32), out=center)
        inside = cell_ids == k
        offset[0][inside] = my - cy[inside]
        offset[1][inside] = mx - cx[inside]
    return semantic, center, offset, cell_ids > 0


def _instance_map(
    anns: list[dict[str, Any]], height: int, width: int, size: int, category_index: dict[int, int]
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int64]]:
    full = np.zeros((height, width), dtype=np.int32)
    classes: list[int] = []
    # larger objects first so smaller (usually in front) ones win where masks overlap
    for ann in sorted(anns, key=lambda a: -float(a.get("area", 0.0))):
        if ann.get("iscrowd", 0):
            continue
        rle = to_compressed(ann["segmentation"], height, width).rle()
        mask = mask_utils.decode(rle).astype(bool)
        classes.append(category_index[int(ann["category_id"])])
        full[mask] = len(classes)
    if (height, width) != (size, size):
        full = np.asarray(
            Image.fromarray(full).resize((size, size), Image.Resampling.NEAREST), dtype=np.int32
        )
    return full, np.asarray(classes, dtype=np.int64)


def load_coco(coco_json: Path, images_dir: Path, size: int) -> TrainingData:
    """Load a COCO instances file and its images, resized to ``size``, with targets.

    Parameters
    ----------
    coco_json
        COCO instances JSON (RLE or polygon segmentations).
    images_dir
        Folder the images' ``file_name`` are relative to.
    size
        Side of the square model input.

    Returns
    -------
    TrainingData

    Raises
    ------
    NotFoundError
        If the JSON or an image is missing.
    InvalidInputError
        If the file has no categories or no images.
    """
    if not coco_json.is_file():
        raise NotFoundError(f"COCO file {coco_json} does not exist")
    coco = json.loads(coco_json.read_text(encoding="utf-8"))
    cats = sorted(coco.get("categories", []), key=lambda c: int(c["id"]))
    if not cats or not coco.get("images"):
        raise InvalidInputError(f"{coco_json} has no categories or no images")
    category_index = {int(c["id"]): i + 1 for i, c in enumerate(cats)}
    by_image: dict[int, list[dict[str, Any]]] = {}
    for ann in coco.get("annotations", []):
        by_image.setdefault(int(ann["image_id"]), []).append(ann)
    images: list[npt.NDArray[np.uint8]] = []
    semantic, center, offset, foreground = [], [], [], []
    for info in coco["images"]:
        path = images_dir / info["file_name"]
        if not path.is_file():
            raise NotFoundError(f"image {path} (of {coco_json}) does not exist")
        with Image.open(path) as raw:
            img = raw.convert("RGB")
            height, width = img.height, img.width
            if (height, width) != (size, size):
                img = img.resize((size, size), Image.Resampling.BILINEAR)
            images.append(np.asarray(img, dtype=np.uint8))
        ids, classes = _instance_map(
            by_image.get(int(info["id"]), []), height, width, size, category_index
        )
        sem, cen, off, fg = make_targets(ids, classes)
        semantic.append(sem)
        center.append(cen)
        offset.append(off)
        foreground.append(fg)
    return TrainingData(
        categories=tuple(str(c["name"]) for c in cats),
        images=np.stack(images),
        targets=Targets(
            semantic=np.stack(semantic),
            center=np.stack(center),
            offset=np.stack(offset),
            foreground=np.stack(foreground),
        ),
    )
