"""Generated scenes with many objects per image that share the image's look.

Street scenes hold dozens of objects, and the objects of one image share its camera
distance, its light and its kind of scene. These scenes imitate that: every image draws
a zoom (all its objects grow or shrink together), a light level (background and object
colours), a shape bias (aspect of every object) and a class mix of its own, then 10 to
20 objects from them. Nothing drifts between images: they are independent and
identically distributed, so a random half of them checked against the other half is an
A/A test, and only a check that takes the image as the unit keeps its false-alarm rate.

:func:`write_clustered_scenes` writes one folder of PNG images, a COCO holdout of one
random half (ground truth) and a sample log of the other half whose predictions are
its ground truth.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from detectors._typing import ImageArray, MaskArray
from monitor.config import DEFAULT_CATEGORIES
from monitor.masks import encode_mask

CATEGORY_IDS = tuple(c.id for c in DEFAULT_CATEGORIES)
_COLOURS = np.array([[220, 60, 60], [60, 200, 60], [70, 90, 230], [230, 210, 50]], dtype=float)
"""Base RGB colour of each category (disc, box, triangle, star)."""

Obj = tuple[int, MaskArray]


@dataclass(frozen=True)
class ClusteredScenes:
    """What :func:`write_clustered_scenes` wrote.

    Attributes
    ----------
    images
        Folder of every image (``img-NNNN.png``).
    annotations
        COCO instances file of the holdout half.
    log
        Folder holding ``samples.jsonl``: the other half, predictions = ground truth.
    n_holdout, n_production
        Images in each half.
    n_objects
        Objects over all images.
    """

    images: Path
    annotations: Path
    log: Path
    n_holdout: int
    n_production: int
    n_objects: int


def _shape(
    draw: ImageDraw.ImageDraw, category_id: int, cx: float, cy: float, w: float, h: float
) -> None:
    box = (cx - w, cy - h, cx + w, cy + h)
    if category_id == 1:
        draw.ellipse(box, fill=1)
    elif category_id == 2:
        draw.rectangle(box, fill=1)
    elif category_id == 3:
        draw.polygon([(cx, cy - h), (cx + w, cy + h), (cx - w, cy + h)], fill=1)
    else:
        points = []
        for k in range(8):
            angle = np.pi * k / 4
            radius = 1.0 if k % 2 == 0 else 0.4
            points.append((cx + w * radius * np.cos(angle), cy + h * radius * np.sin(angle)))
        draw.polygon(points, fill=1)


def render_clustered_scene(rng: np.random.Generator, size: int) -> tuple[ImageArray, list[Obj]]:
    """One image and its objects (category id, full mask), drawn from ``rng``."""
    zoom = float(np.exp(rng.normal(0.0, 0.35)))
    light = float(rng.uniform(0.5, 1.0))
    bias = float(np.exp(rng.normal(0.0, 0.3)))
    mix = rng.dirichlet(np.full(len(CATEGORY_IDS), 0.8))
    image = np.empty((size, size, 3))
    image[:] = 30.0 + 90.0 * light + rng.normal(0.0, 8.0, size=3)
    objects: list[Obj] = []
    for _ in range(int(rng.integers(10, 21))):
        category_id = int(rng.choice(CATEGORY_IDS, p=mix))
        radius = (2.0 + 0.6 * category_id) * zoom * float(np.exp(rng.normal(0.0, 0.15)))
        w = radius * bias * float(np.exp(rng.normal(0.0, 0.1)))
        h = radius / bias * float(np.exp(rng.normal(0.0, 0.1)))
        cx, cy = rng.uniform(0, size, size=2)
        canvas = Image.new("L", (size, size), 0)
        _shape(ImageDraw.Draw(canvas), category_id, float(cx), float(cy), w, h)
        mask = np.asarray(canvas, dtype=bool)
        if mask.sum() < 4:
            continue
        colour = _COLOURS[category_id - 1] * light + rng.normal(0.0, 10.0, size=3)
        image[mask] = colour
        objects.append((category_id, mask))
    pixels = np.clip(image + rng.normal(0.0, 4.0, size=image.shape), 0, 255)
    return pixels.round().astype(np.uint8), objects


def _instance(category_id: int, mask: MaskArray) -> dict[str, Any]:
    m = encode_mask(mask)
    return {
        "category_id": category_id,
        "bbox": list(m.bbox),
        "area": m.area,
        "segmentation": {"size": [m.height, m.width], "counts": m.counts},
    }


def write_clustered_scenes(
    root: Path,
    n_images: int,
    seed: int,
    start: datetime,
    interval: timedelta,
    size: int = 64,
) -> ClusteredScenes:
    """Write ``n_images`` scenes; a random half is the holdout, the rest a sample log.

    The production half is captured from ``start`` on, one image every ``interval``.
    """
    images_dir = root / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    holdout = set(np.random.default_rng([seed, 0]).permutation(n_images)[: n_images // 2])
    coco: dict[str, Any] = {
        "images": [],
        "annotations": [],
        "categories": [
            {"id": c.id, "name": c.name, "supercategory": c.supercategory}
            for c in DEFAULT_CATEGORIES
        ],
    }
    lines: list[str] = []
    n_objects = 0
    for i in range(n_images):
        image, objects = render_clustered_scene(np.random.default_rng([seed, 1, i]), size)
        n_objects += len(objects)
        file_name = f"img-{i:04d}.png"
        Image.fromarray(image).save(images_dir / file_name)
        if i in holdout:
            image_id = len(coco["images"]) + 1
            coco["images"].append(
                {"id": image_id, "file_name": file_name, "width": size, "height": size}
            )
            for category_id, mask in objects:
                ann = _instance(category_id, mask)
                ann.update(id=len(coco["annotations"]) + 1, image_id=image_id, iscrowd=0)
                coco["annotations"].append(ann)
            continue
        captured = start + len(lines) * interval
        instances = [
            {k: v for k, v in _instance(c, m).items() if k != "area"} | {"score": 0.9}
            for c, m in objects
        ]
        record = {
            "request_id": f"r-{i:06d}",
            "captured_at": captured.isoformat().replace("+00:00", "Z"),
            "model_version": "prod-2026.11.1",
            "image": str(images_dir / file_name),
            "width": size,
            "height": size,
            "instances": instances,
        }
        lines.append(json.dumps(record))
    annotations = root / "holdout.json"
    annotations.write_text(json.dumps(coco))
    log = root / "log"
    log.mkdir(exist_ok=True)
    (log / "samples.jsonl").write_text("\n".join(lines) + "\n")
    return ClusteredScenes(
        images=images_dir,
        annotations=annotations,
        log=log,
        n_holdout=len(holdout),
        n_production=len(lines),
        n_objects=n_objects,
    )
