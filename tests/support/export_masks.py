"""Masks and queue items for the export-format tests: shapes with holes, border masks."""

from __future__ import annotations

import numpy as np

from sampling.formats.mask_codec import mask_to_rle
from sampling.formats.records import ExportImage, ExportMask

CATEGORIES: tuple[tuple[int, str], ...] = ((1, "disc"), (2, "box"), (3, "triangle"), (4, "star"))


def blob(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """An ellipse at a random place and size, with a hole in half of the cases."""
    yy, xx = np.mgrid[0:height, 0:width]
    cy, cx = rng.uniform(0, height), rng.uniform(0, width)
    ry, rx = rng.uniform(1, max(height / 2, 1.5)), rng.uniform(1, max(width / 2, 1.5))
    inside: np.ndarray = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
    if rng.random() < 0.5:
        inside &= ((yy - cy) / (ry / 3)) ** 2 + ((xx - cx) / (rx / 3)) ** 2 > 1.0
    return np.asarray(inside, dtype=np.uint8)


def mask_zoo(rng: np.random.Generator, height: int, width: int) -> list[np.ndarray]:
    """Masks every codec must carry exactly: blobs, holes, borders, corners, noise, full."""
    masks = [blob(rng, height, width) for _ in range(4)]
    border = np.zeros((height, width), dtype=np.uint8)
    border[:, -3:] = 1  # touches the right edge, top and bottom
    border[-1, :] = 1  # and the bottom row
    masks.append(border)
    corner = np.zeros((height, width), dtype=np.uint8)
    corner[0, 0] = 1
    masks.append(corner)
    last = np.zeros((height, width), dtype=np.uint8)
    last[-1, -1] = 1
    masks.append(last)
    masks.append((rng.random((height, width)) < 0.3).astype(np.uint8))  # many short runs
    masks.append(np.ones((height, width), dtype=np.uint8))
    ring = np.ones((height, width), dtype=np.uint8)
    ring[1:-1, 1:-1] = 0  # a frame: one hole as large as the image
    masks.append(ring)
    return masks


def export_images(
    rng: np.random.Generator,
    masks_per_image: list[list[np.ndarray]],
    *,
    first_id: int = 101,
    size: tuple[int, int] = (32, 48),
) -> list[ExportImage]:
    """Queue items holding the given masks (category and score drawn at random).

    An image with no mask gets ``size`` (height, width).
    """
    images = []
    for k, masks in enumerate(masks_per_image):
        height, width = masks[0].shape if masks else size
        instances = []
        for mask in masks:
            category_id, name = CATEGORIES[int(rng.integers(len(CATEGORIES)))]
            instances.append(
                ExportMask(category_id, name, mask_to_rle(mask), round(float(rng.random()), 3))
            )
        images.append(
            ExportImage(
                item_id=first_id + k,
                file_name=f"queue/{first_id + k:06d}.jpg",
                width=width,
                height=height,
                priority=round(float(rng.random()), 3),
                masks=tuple(instances),
                model_version="prod-2026.11.1",
            )
        )
    return images
