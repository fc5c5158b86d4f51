"""Writing generated scenes: images, a COCO holdout and a production sample log."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from detectors._typing import BoolArray
from monitor.errors import InvalidInputError
from monitor.masks import encode_mask
from monitor.synth.options import CATEGORIES, SynthConfig
from monitor.synth.production import simulate_predictions
from monitor.synth.scene import render_scene

ANNOTATIONS_FILE = "annotations.json"
SAMPLES_FILE = "samples.jsonl"
IMAGES_DIR = "images"


@dataclass(frozen=True)
class SynthSummary:
    """What :func:`generate_scenes` wrote.

    Attributes
    ----------
    out
        The output directory.
    n_images
        Images written.
    n_instances
        Ground-truth instances in ``annotations.json`` (novel objects excluded).
    categories
        Category names, COCO ids 1..K in this order.
    n_novel
        Objects of the novel class drawn (they have no ground truth).
    n_predictions
        Instances in the sample log.
    annotations, samples, images
        Paths of the COCO file, the sample log and the image folder.
    """

    out: Path
    n_images: int
    n_instances: int
    categories: tuple[str, ...]
    n_novel: int
    n_predictions: int
    annotations: Path
    samples: Path
    images: Path


def _coco_rle(mask: BoolArray) -> tuple[dict[str, Any], int, list[float]]:
    """COCO compressed RLE (``counts`` as str), area and bbox of a bool mask."""
    m = encode_mask(mask)
    return {"size": [m.height, m.width], "counts": m.counts}, m.area, list(m.bbox)


def format_timestamp(moment: datetime) -> str:
    """ISO-8601 UTC with a ``Z`` (milliseconds only when there are any).

    Examples
    --------
    >>> format_timestamp(datetime(2026, 11, 23, 10, 0, 0, 250000, tzinfo=UTC))
    '2026-11-23T10:00:00.250Z'
    """
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond // 1000:03d}"
    return text + "Z"


def _prepare(out: Path, overwrite: bool) -> Path:
    images = out / IMAGES_DIR
    existing = [p for p in (out / ANNOTATIONS_FILE, out / SAMPLES_FILE) if p.exists()]
    if images.is_dir():
        existing += sorted(images.glob("*.png"))
    if existing and not overwrite:
        raise InvalidInputError(
            f"{out} already holds generated scenes ({existing[0].name}); pass overwrite=True"
        )
    for path in existing:
        path.unlink()
    images.mkdir(parents=True, exist_ok=True)
    return images


def generate_scenes(
    out: Path,
    config: SynthConfig,
    progress: Callable[[int], None] | None = None,
    *,
    overwrite: bool = False,
) -> SynthSummary:
    """Generate scenes into ``out``: images, a COCO holdout and a production sample log.

    Writes ``out/images/<request_id>.png``, ``out/annotations.json`` (COCO instances, the
    visible ground-truth masks of known classes as compressed RLE) and
    ``out/samples.jsonl`` (one line per image with the simulated production model's
    predictions). The same config gives byte-identical files.

    Parameters
    ----------
    out
        Output directory (created if missing).
    config
        What to generate.
    progress
        Called after each image with the number of images written so far.
    overwrite
        Replace scenes generated earlier into ``out``; without it they are an error.

    Returns
    -------
    SynthSummary

    Raises
    ------
    InvalidInputError
        If ``out`` already holds generated scenes and ``overwrite`` is false.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     summary = generate_scenes(Path(tmp), SynthConfig(n_images=3, seed=1, size=64))
    ...     names = sorted(p.name for p in (Path(tmp) / "images").iterdir())
    >>> summary.n_images, summary.categories, names
    (3, ('disc', 'box', 'triangle', 'star'), ['r-000000.png', 'r-000001.png', 'r-000002.png'])
    """
    images_dir = _prepare(out, overwrite)
    coco_images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    lines: list[str] = []
    n_novel = n_predictions = 0
    for i in range(config.n_images):
        scene = render_scene(np.random.default_rng([config.seed, i, 0]), config)
        model_rng = np.random.default_rng([config.seed, i, 1])
        request_id = f"{config.request_prefix}{i:06d}"
        file_name = f"{request_id}.png"
        Image.fromarray(scene.image).save(images_dir / file_name, compress_level=1)
        height, width = scene.image.shape[:2]
        coco_images.append({"id": i + 1, "file_name": file_name, "width": width, "height": height})
        for mask, cat in zip(scene.masks, scene.category_ids.tolist(), strict=True):
            if cat == 0:
                n_novel += 1
                continue
            rle, area, bbox = _coco_rle(mask)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": i + 1,
                    "category_id": cat,
                    "segmentation": rle,
                    "area": area,
                    "bbox": bbox,
                    "iscrowd": 0,
                }
            )
        instances = []
        for pred in simulate_predictions(scene, model_rng, config):
            rle, _, bbox = _coco_rle(pred.mask)
            instances.append(
                {
                    "category_id": pred.category_id,
                    "score": pred.score,
                    "bbox": bbox,
                    "segmentation": rle,
                    "class_scores": list(pred.class_scores),
                }
            )
        n_predictions += len(instances)
        latency = float(model_rng.lognormal(np.log(80.0), 0.25)) + 3.0 * len(instances)
        record = {
            "request_id": request_id,
            "captured_at": format_timestamp(
                config.start + timedelta(seconds=i * config.interval_s)
            ),
            "model_version": config.model_version,
            "image": f"{IMAGES_DIR}/{file_name}",
            "width": width,
            "height": height,
            "latency_ms": round(latency, 2),
            "instances": instances,
        }
        lines.append(json.dumps(record, separators=(",", ":")) + "\n")
        if progress is not None:
            progress(i + 1)
    coco = {
        "info": {"description": "segmon generated scenes", "seed": config.seed},
        "images": coco_images,
        "annotations": annotations,
        "categories": [
            {"id": i + 1, "name": name, "supercategory": "shape"}
            for i, name in enumerate(CATEGORIES)
        ],
    }
    _write_atomic(out / ANNOTATIONS_FILE, json.dumps(coco, separators=(",", ":")))
    _write_atomic(out / SAMPLES_FILE, "".join(lines))
    return SynthSummary(
        out=out,
        n_images=config.n_images,
        n_instances=len(annotations),
        categories=CATEGORIES,
        n_novel=n_novel,
        n_predictions=n_predictions,
        annotations=out / ANNOTATIONS_FILE,
        samples=out / SAMPLES_FILE,
        images=images_dir,
    )


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
