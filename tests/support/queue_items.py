"""Exported queue items written straight to the database, and the files annotators return.

The labels-import tests need production samples (an image on disk, production's stored
masks) whose queue items were exported; :class:`QueueRows` writes those rows directly
(the fill and export code is tested on its own). :func:`returned_coco`,
:func:`returned_labelstudio` and :func:`returned_cvat` build the documents an annotation
tool gives back, with the export formats' own builders (``sampling.formats``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from detectors._typing import ImageArray, MaskArray
from monitor.config import DEFAULT_CATEGORIES
from monitor.masks import encode_mask
from monitor.storage.schema import (
    ModelVersion,
    PredictedInstance,
    QueueExportBatch,
    QueueItem,
    QueueState,
    Sample,
    SampleStatus,
    Source,
)
from sampling.formats.coco_json import build_coco
from sampling.formats.cvat import build_cvat_xml
from sampling.formats.labelstudio import build_tasks
from sampling.formats.records import ExportImage, ExportMask

START = datetime(2026, 11, 24, tzinfo=UTC)
NAMES = {c.id: c.name for c in DEFAULT_CATEGORIES}
Instance = tuple[int, MaskArray]
"""A category id and a ``bool`` mask."""


def box(y: int, x: int, h: int, w: int, shape: tuple[int, int] = (12, 16)) -> MaskArray:
    """A rectangle mask."""
    mask = np.zeros(shape, dtype=bool)
    mask[y : y + h, x : x + w] = True
    return mask


def read_pixels(path: str) -> ImageArray:
    """The RGB pixels of an image file (what a model is given)."""
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"), dtype=np.uint8)


@dataclass
class QueueRows:
    """Writes production samples (image file + predicted instances) and their queue items."""

    session: Session
    folder: Path
    width: int = 16
    height: int = 12
    _n: int = 0

    def _source(self) -> Source:
        src = self.session.scalar(select(Source).where(Source.uri == str(self.folder)))
        if src is None:
            src = Source(uri=str(self.folder), kind="dir", created_at=START - timedelta(days=9))
            self.session.add(src)
            self.session.flush()
        return src

    def _version(self, name: str) -> ModelVersion:
        mv = self.session.scalar(select(ModelVersion).where(ModelVersion.name == name))
        if mv is None:
            mv = ModelVersion(name=name, first_seen_at=START - timedelta(days=9))
            self.session.add(mv)
            self.session.flush()
        return mv

    def sample(
        self,
        production: Sequence[Instance],
        *,
        captured_at: datetime = START,
        version: str = "prod-a",
    ) -> Sample:
        """A sample whose image is a new seeded PNG and whose production masks are given."""
        self._n += 1
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"r-{self._n:04d}.png"
        rng = np.random.default_rng(self._n)
        pixels = rng.integers(0, 255, (self.height, self.width, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(path)
        sample = Sample(
            source_id=self._source().id,
            request_id=f"r-{self._n:04d}",
            captured_at=captured_at,
            ingested_at=captured_at,
            model_version_id=self._version(version).id,
            image_uri=str(path),
            image_sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
            width=self.width,
            height=self.height,
            status=SampleStatus.OK,
        )
        self.session.add(sample)
        self.session.flush()
        for k, (category_id, mask) in enumerate(production):
            m = encode_mask(mask)
            self.session.add(
                PredictedInstance(
                    sample_id=sample.id,
                    category_id=category_id,
                    score=0.9 - 0.1 * k,
                    bbox_x=m.bbox[0],
                    bbox_y=m.bbox[1],
                    bbox_w=m.bbox[2],
                    bbox_h=m.bbox[3],
                    area=m.area,
                    rle_counts=m.counts,
                )
            )
        self.session.flush()
        return sample

    def batch(self, fmt: str = "coco", n_items: int = 0) -> QueueExportBatch:
        """An open export batch."""
        row = QueueExportBatch(
            format=fmt, path=f"/exports/{fmt}", created_at=START, n_items=n_items
        )
        self.session.add(row)
        self.session.flush()
        return row

    def item(
        self,
        sample: Sample,
        batch: QueueExportBatch | None = None,
        state: QueueState = QueueState.EXPORTED,
    ) -> QueueItem:
        """A queue item of ``sample``, exported in ``batch`` (or in ``state``)."""
        row = QueueItem(
            sample_id=sample.id,
            state=state,
            priority=0.5,
            reason="uncertainty",
            signals={"uncertainty": 0.5},
            category_ids=[],
            n_instances=0,
            queued_at=START,
            export_batch_id=None if batch is None else batch.id,
            exported_at=None if batch is None else START,
        )
        self.session.add(row)
        self.session.flush()
        return row


def export_image(item_id: int, file_name: str, labels: Sequence[Instance]) -> ExportImage:
    """The record a format builder takes, with ``labels`` as the image's masks."""
    masks = []
    for category_id, mask in labels:
        m = encode_mask(mask)
        masks.append(
            ExportMask(
                category_id,
                NAMES[category_id],
                {"size": [m.height, m.width], "counts": m.counts},
                None,
            )
        )
    height, width = labels[0][1].shape if labels else (12, 16)
    return ExportImage(item_id, file_name, int(width), int(height), 0.5, tuple(masks), "prod-a")


def returned_coco(images: Sequence[ExportImage]) -> dict[str, Any]:
    """A COCO instances file of the annotators' labels (``segmon_item_id`` per image)."""
    return build_coco(images, sorted(NAMES.items()))


def returned_labelstudio(
    images: Sequence[ExportImage],
    *,
    annotator: str = "ann@example.com",
    cancelled: Sequence[int] = (),
) -> list[dict[str, Any]]:
    """A Label Studio JSON export: each task's brush results as its annotator's annotation.

    Tasks of the items in ``cancelled`` carry a cancelled (skipped) annotation instead.
    """
    tasks = build_tasks(images)
    for k, task in enumerate(tasks):
        task["id"] = 100 + k
        result = task.pop("predictions")[0]["result"]
        skipped = task["data"]["segmon_item_id"] in cancelled
        task["annotations"] = [
            {
                "id": 200 + k,
                "completed_by": {"id": 3, "email": annotator},
                "was_cancelled": skipped,
                "result": [] if skipped else [dict(r, origin="manual") for r in result],
            }
        ]
    return tasks


def returned_cvat(images: Sequence[ExportImage]) -> str:
    """A CVAT for images 1.1 XML of the labels (CVAT keeps image names, not item ids)."""
    return build_cvat_xml(images, [NAMES[i] for i in sorted(NAMES)])
