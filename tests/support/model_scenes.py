"""A deterministic fake model, generated scenes and sample logs built from their labels.

The ``model_scenes`` fixture (one per session) is what the embed and shadow tests score;
``model_loads`` replaces ``load_model`` with one returning the scenes' fake reference.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from sqlalchemy.orm import Session, sessionmaker

from detectors._typing import Float32Array, ImageArray, MaskArray
from monitor.clock import ManualClock
from monitor.config import DEFAULT_CATEGORIES, IngestSettings
from monitor.ingest.job import ingest_log
from monitor.masks import encode_mask
from monitor.model.protocol import Embeddings, InstancePrediction
from monitor.synth import SynthConfig, generate_scenes

Instance = tuple[int, MaskArray]
"""A labeled object: its category id and its mask."""
Transform = Callable[[list[Instance]], list[Instance]]
"""What production makes of an image's labels (drop, move, relabel, ...)."""
CATEGORY_NAMES = tuple(c.name for c in DEFAULT_CATEGORIES)
_PROJECTION = np.random.default_rng(0).normal(size=(48, 10)) / 7.0


def image_key(image: ImageArray) -> str:
    """How the fake model recognises an image it has predictions for."""
    return hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()


def features(image: ImageArray, mask: MaskArray) -> Float32Array:
    """Mean and std per channel inside the mask, plus projections of a 4x4 grid of it."""
    pixels = image.astype(np.float64) / 255.0
    inside = pixels[mask]
    stats = (
        np.concatenate([inside.mean(axis=0), inside.std(axis=0)]) if inside.size else np.zeros(6)
    )
    masked = pixels * mask[..., None]
    grid = np.array(
        [
            cell.mean(axis=(0, 1))
            for rows in np.array_split(masked, 4, axis=0)
            for cell in np.array_split(rows, 4, axis=1)
        ]
    ).reshape(-1)
    return np.concatenate([stats, grid @ _PROJECTION]).astype(np.float32)


@dataclass
class FakeModel:
    """Implements the SegmentationModel protocol; predicts what it was given per image."""

    name: str = "fake:reference@0123"
    categories: tuple[str, ...] = CATEGORY_NAMES
    embedding_dim: int = 16
    predictions: dict[str, list[Instance]] = field(default_factory=dict)
    calls: int = 0

    def predict(self, images: Sequence[ImageArray]) -> list[list[InstancePrediction]]:
        self.calls += 1
        scores = np.full(len(self.categories), 1.0 / len(self.categories), dtype=np.float32)
        return [
            [InstancePrediction(c, 0.9, m, scores) for c, m in self.predictions[image_key(im)]]
            for im in images
        ]

    def embed(
        self, images: Sequence[ImageArray], masks: Sequence[Sequence[MaskArray]]
    ) -> Embeddings:
        self.calls += 1
        full = [features(im, np.ones(im.shape[:2], dtype=bool)) for im in images]
        per = [
            np.stack([features(im, m) for m in ms]).astype(np.float32)
            if len(ms)
            else np.zeros((0, self.embedding_dim), dtype=np.float32)
            for im, ms in zip(images, masks, strict=True)
        ]
        return Embeddings(np.stack(full).astype(np.float32), per)


@dataclass(frozen=True)
class ModelScenes:
    """Generated scenes: images, their labels (by file name) and the sample-log lines."""

    root: Path
    labels: dict[str, list[Instance]]
    records: list[dict[str, Any]]

    def image(self, file_name: str) -> ImageArray:
        with Image.open(self.root / "images" / file_name) as img:
            return np.asarray(img.convert("RGB"), dtype=np.uint8)

    def reference(self, **kwargs: Any) -> FakeModel:
        """A fake reference model that predicts exactly the labels."""
        predictions = {image_key(self.image(f)): list(v) for f, v in self.labels.items()}
        return FakeModel(predictions=predictions, **kwargs)

    def write_log(self, out: Path, transform: Transform) -> Path:
        """A sample log over these images whose production instances are transformed labels.

        The images are copied into the log's folder: a sample log's images must lie
        inside it (or an allowed root), so the log can be ingested as it is.
        """
        out.mkdir(parents=True, exist_ok=True)
        (out / "images").mkdir(exist_ok=True)
        lines = []
        for record in self.records:
            file_name = Path(record["image"]).name
            instances = []
            for category_id, mask in transform(list(self.labels[file_name])):
                m = encode_mask(mask)
                instances.append(
                    {
                        "category_id": category_id,
                        "score": 0.9,
                        "bbox": list(m.bbox),
                        "segmentation": {"size": [m.height, m.width], "counts": m.counts},
                    }
                )
            shutil.copyfile(self.root / "images" / file_name, out / "images" / file_name)
            line = dict(record, image=f"images/{file_name}", instances=instances)
            lines.append(json.dumps(line))
        (out / "samples.jsonl").write_text("\n".join(lines) + "\n")
        return out


@pytest.fixture(scope="session")
def model_scenes(tmp_path_factory: pytest.TempPathFactory) -> ModelScenes:
    """Eight generated 96 px scenes, their labels and their sample log (made once)."""
    root = tmp_path_factory.mktemp("scenes")
    generate_scenes(root, SynthConfig(n_images=8, seed=3, size=96), overwrite=True)
    doc = json.loads((root / "annotations.json").read_text())
    names = {image["id"]: image["file_name"] for image in doc["images"]}
    labels: dict[str, list[Instance]] = {name: [] for name in names.values()}
    for ann in doc["annotations"]:
        rle = dict(ann["segmentation"], counts=ann["segmentation"]["counts"].encode())
        mask = np.asarray(mask_utils.decode(rle), dtype=bool)
        labels[names[ann["image_id"]]].append((int(ann["category_id"]), mask))
    records = [json.loads(line) for line in (root / "samples.jsonl").read_text().splitlines()]
    return ModelScenes(root, labels, records)


def ingest(sessions: sessionmaker[Session], log: Path, clock: ManualClock) -> None:
    """Ingest a sample log that must be all good."""
    report = ingest_log(sessions, str(log), IngestSettings(batch_size=3), clock)
    assert report.ingested == report.lines and not report.quarantined


@pytest.fixture
def model_loads(monkeypatch: pytest.MonkeyPatch, model_scenes: ModelScenes) -> list[str]:
    """Names ``load_model`` was called with; it returns the scenes' fake reference."""
    calls: list[str] = []
    model = model_scenes.reference()

    def load_model(name: str) -> FakeModel:
        calls.append(name)
        return model

    import monitor.model.loading  # torch: imported when the fixture runs, not at collection

    monkeypatch.setattr(monitor.model.loading, "load_model", load_model)
    return calls
