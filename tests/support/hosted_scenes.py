"""Red/green scenes for hosted models, as a user has them: a holdout, a sample log, a config.

:func:`write_colour_dataset` writes images of several sizes (letterboxed into a 64 px
input they scale by 1/2, 1 and 2) with a red ``disc`` and a green ``box`` rectangle on
multiples of 8 pixels, a COCO holdout whose labels are exactly those rectangles, and a
sample log whose production predictions are the same rectangles except on one image,
where production misses the green box. Every hosted toy model
(:mod:`tests.support.exported_models`, :mod:`tests.support.plugin_model`) finds exactly
the rectangles, so what ``segmon predict / embed / shadow / evaluate`` must report is
known: :data:`EXPECTED`.

:func:`hosted_config` writes a ``segmon.yaml`` naming one hosted model as
``models.reference`` (and ``models.embedder`` where the reference has no feature map).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image

from monitor.masks import encode_mask
from tests.support.exported_models import ExportedToys, Rect, rect_mask, scene

SCENES: tuple[tuple[str, tuple[int, int], Rect | None, Rect | None], ...] = (
    ("a.png", (32, 64), (8, 24, 8, 32), (0, 16, 40, 64)),
    ("b.png", (16, 32), (0, 8, 0, 8), (8, 16, 16, 32)),
    ("c.png", (64, 128), (16, 48, 8, 40), (48, 64, 64, 120)),
    ("d.png", (64, 64), (8, 16, 8, 56), None),
    ("e.png", (48, 64), None, (16, 40, 24, 48)),
    ("f.png", (32, 64), (16, 32, 0, 16), (0, 8, 48, 56)),
)
"""File name, (H, W), red rectangle, green rectangle (``y0, y1, x0, x1``)."""

MISSED = "f.png"
"""The image where production misses the green box."""


@dataclass(frozen=True)
class Expected:
    """What every hosted toy model makes of the colour dataset."""

    images: int
    instances: int
    production_instances: int
    shadow_matched: int
    shadow_reference_only: int
    mean_agreement: float
    kites: int  # "kite" instances the toy Mask R-CNN adds (one per green box)


def _expected() -> Expected:
    instances = sum((red is not None) + (green is not None) for _, _, red, green in SCENES)
    agreement = sum(0.5 if name == MISSED else 1.0 for name, *_ in SCENES) / len(SCENES)
    kites = sum(green is not None for *_, green in SCENES)
    return Expected(len(SCENES), instances, instances - 1, instances - 1, 1, agreement, kites)


EXPECTED = _expected()


def instances_of(name: str) -> list[tuple[int, Rect]]:
    """The labeled ``(category_id, rect)`` of one scene (red: disc 1, green: box 2)."""
    for file_name, _, red, green in SCENES:
        if file_name == name:
            return [(c, r) for c, r in ((1, red), (2, green)) if r is not None]
    raise KeyError(name)


def _annotation(i: int, image_id: int, cat: int, size: tuple[int, int], rect: Rect) -> Any:
    m = encode_mask(rect_mask(size, rect))
    return {
        "id": i,
        "image_id": image_id,
        "category_id": cat,
        "segmentation": {"size": [m.height, m.width], "counts": m.counts},
        "area": m.area,
        "bbox": list(m.bbox),
        "iscrowd": 0,
    }


def write_colour_dataset(root: Path) -> Path:
    """Write ``images/``, ``annotations.json`` and ``log/samples.jsonl`` under ``root``."""
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    coco: dict[str, Any] = {
        "images": [],
        "annotations": [],
        "categories": [{"id": 1, "name": "disc"}, {"id": 2, "name": "box"}],
    }
    lines = []
    start = datetime(2026, 11, 23, tzinfo=UTC)
    for k, (name, size, red, green) in enumerate(SCENES):
        Image.fromarray(scene(size, red, green)).save(images / name)
        image_id = k + 1
        coco["images"].append(
            {"id": image_id, "file_name": name, "height": size[0], "width": size[1]}
        )
        produced = []
        for cat, rect in instances_of(name):
            coco["annotations"].append(
                _annotation(len(coco["annotations"]) + 1, image_id, cat, size, rect)
            )
            if name == MISSED and cat == 2:
                continue
            m = encode_mask(rect_mask(size, rect))
            produced.append(
                {
                    "category_id": cat,
                    "score": 0.9,
                    "bbox": list(m.bbox),
                    "segmentation": {"size": [m.height, m.width], "counts": m.counts},
                }
            )
        lines.append(
            json.dumps(
                {
                    "request_id": f"r-{k:04d}",
                    "captured_at": (start + timedelta(minutes=k)).isoformat(),
                    "model_version": "prod-1",
                    "image": str(images / name),
                    "width": size[1],
                    "height": size[0],
                    "instances": produced,
                }
            )
        )
    (root / "annotations.json").write_text(json.dumps(coco))
    (root / "log").mkdir(exist_ok=True)
    (root / "log" / "samples.jsonl").write_text("\n".join(lines) + "\n")
    return root


HOSTED = ("yolo-onnx", "yolo-torchscript", "maskrcnn-onnx", "plugin")
"""The hosted reference models the CLI tests run."""


def hosted_models(kind: str, toys: ExportedToys) -> dict[str, Any]:
    """The ``models:`` section that hosts one toy model as the reference."""
    if kind == "yolo-onnx":
        return {"reference": {"path": str(toys.yolo_v8_onnx), "outputs": "yolo-seg"}}
    if kind == "yolo-torchscript":  # conventions detected; size and classes from config.txt
        return {"reference": str(toys.yolo_v8_torchscript)}
    if kind == "maskrcnn-onnx":  # COCO-style classes: background dropped, kite ignored
        return {
            "reference": {
                "path": str(toys.rcnn_onnx),
                "classes_map": {"__background__": None},
                "unmapped": "ignore",
            },
            "embedder": {"path": str(toys.featuremap_onnx)},
        }
    if kind == "plugin":
        return {
            "reference": {
                "python": "tests.support.plugin_model:make_model",
                "options": {"name": "plugin:colour@2"},
            }
        }
    raise KeyError(kind)


def hosted_config(
    path: Path, database: Path, kind: str, toys: ExportedToys, image_roots: Sequence[Path] = ()
) -> Path:
    """Write a ``segmon.yaml`` with a SQLite database and the hosted reference model.

    ``image_roots`` are folders the sample log's images may come from besides its own
    (``images.allowed_roots``): the colour log names images in a sibling folder.
    """
    config = {
        "database_url": f"sqlite:///{database}",
        "models": hosted_models(kind, toys),
        "drift": {"min_samples": 2},
        "images": {"allowed_roots": [str(r) for r in image_roots]},
    }
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="session")
def colour_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The colour scenes written once: ``images/``, ``annotations.json``, ``log/``."""
    return write_colour_dataset(tmp_path_factory.mktemp("colour_dataset"))


def invoke_json(config: Path, *args: str) -> Any:
    """Run ``segmon --config CONFIG ARGS --json`` in-process; return its JSON document."""
    from typer.testing import CliRunner

    from monitor.cli.main import app

    result = CliRunner().invoke(app, ["--config", str(config), *args, "--json"])
    assert result.exit_code == 0, (args, result.output, result.exception)
    return json.loads(result.stdout)


def fresh_workspace(tmp_path: Path, dataset: Path, kind: str, toys: ExportedToys) -> Path:
    """``segmon init`` and ``segmon holdout import`` on a fresh database; return the config."""
    config = hosted_config(
        tmp_path / "segmon.yaml", tmp_path / "segmon.db", kind, toys, [dataset / "images"]
    )
    invoke_json(config, "init")
    invoke_json(
        config, "holdout", "import", str(dataset / "annotations.json"),
        "--images", str(dataset / "images"), "--name", "colours",
    )  # fmt: skip
    return config
