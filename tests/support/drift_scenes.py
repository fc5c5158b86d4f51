"""Drift scenes: generated samples, instances, embeddings and properties in the database.

Fixtures: ``drift_scenes`` (on ``sessions``: SQLite and PostgreSQL),
``sqlite_drift_scenes`` (on ``sqlite_sessions``) and ``clock`` (a manual clock at
:data:`NOW`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from sqlalchemy.orm import Session, sessionmaker

from detectors._typing import Float64Array, MaskArray
from monitor.clock import ManualClock
from monitor.config import DEFAULT_CATEGORIES, DateRange, DriftSettings
from monitor.masks import encode_mask
from monitor.storage.schema import (
    Dataset,
    DatasetImage,
    GroundTruthInstance,
    ImageEmbedding,
    ImageProperties,
    InstanceEmbedding,
    ModelVersion,
    PredictedInstance,
    Sample,
    SampleStatus,
    ShadowScore,
    Source,
)

NOW = datetime(2026, 11, 24, 12, 30, tzinfo=UTC)
"""The 1h window is [11:00, 12:00) of this day; the 1d window is the day before."""
HOUR = (datetime(2026, 11, 24, 11, tzinfo=UTC), datetime(2026, 11, 24, 12, tzinfo=UTC))
DAY = (datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 24, tzinfo=UTC))
REFERENCE = (datetime(2026, 11, 20, tzinfo=UTC), datetime(2026, 11, 22, tzinfo=UTC))
SIZE = 40
DIM = 8
CLASSES = {c.id: c.name for c in DEFAULT_CATEGORIES}


@dataclass(frozen=True)
class Shift:
    """A change of one class's objects: mask side lengths scale, embeddings move."""

    scale: float = 1.0
    embedding: float = 0.0


@dataclass
class DriftScenes:
    """Writes generated production samples or holdout images straight into the database."""

    sessions: sessionmaker[Session]
    seed: int = 0
    _source_id: int | None = field(default=None, repr=False)
    _count: int = 0
    _versions: dict[str, int] = field(default_factory=dict, repr=False)

    def _source(self, session: Session) -> int:
        if self._source_id is None:
            src = Source(uri="memory://log", kind="dir", created_at=NOW, watermark={})
            session.add(src)
            session.flush()
            self._source_id = src.id
        return self._source_id

    def _version(self, session: Session, name: str | None) -> int | None:
        if name is None:
            return None
        if name not in self._versions:
            version = ModelVersion(name=name, first_seen_at=NOW)
            session.add(version)
            session.flush()
            self._versions[name] = version.id
        return self._versions[name]

    def _objects(
        self, rng: np.random.Generator, shifts: Mapping[str, Shift]
    ) -> list[tuple[int, MaskArray, float, Float64Array]]:
        objects = []
        for cat, name in CLASSES.items():
            for _ in range(int(rng.integers(1, 3))):
                shift = shifts.get(name, Shift())
                side = 4 + 2 * cat + rng.normal(0, 1.0)
                h = int(np.clip(round(side * shift.scale), 2, SIZE - 2))
                w = int(np.clip(round(side * rng.uniform(0.7, 1.3) * shift.scale), 2, SIZE - 2))
                y, x = int(rng.integers(0, SIZE - h)), int(rng.integers(0, SIZE - w))
                mask = np.zeros((SIZE, SIZE), dtype=bool)
                mask[y : y + h, x : x + w] = True
                vector = rng.normal(size=DIM) + cat
                vector[0] += shift.embedding
                objects.append((cat, mask, float(rng.beta(5, 2)), vector))
        return objects

    def production(
        self,
        n: int,
        span: tuple[datetime, datetime],
        shifts: Mapping[str, Shift] | None = None,
        embedder: str = "backbone",
        *,
        model_version: str | None = None,
        latency_ms: tuple[float, float] | None = None,
        agreement: tuple[float, float] | None = None,
    ) -> None:
        """Add ``n`` accepted samples captured evenly over ``span``.

        ``model_version`` names the version that served them; ``latency_ms`` and
        ``agreement`` (shadow agreement, clipped to [0, 1]) are drawn from a normal
        ``(mean, sd)`` per sample when given.
        """
        shifts = shifts or {}
        step = (span[1] - span[0]) / n
        with self.sessions.begin() as session:
            source_id = self._source(session)
            version_id = self._version(session, model_version)
            for k in range(n):
                self._count += 1
                rng = np.random.default_rng([self.seed, self._count])
                sample = Sample(
                    source_id=source_id,
                    request_id=f"r-{self._count:06d}",
                    captured_at=span[0] + k * step,
                    ingested_at=NOW,
                    width=SIZE,
                    height=SIZE,
                    status=SampleStatus.OK,
                    model_version_id=version_id,
                    latency_ms=None if latency_ms is None else float(rng.normal(*latency_ms)),
                )
                session.add(sample)
                session.flush()
                if agreement is not None:
                    value = float(np.clip(rng.normal(*agreement), 0.0, 1.0))
                    session.add(_shadow(sample.id, value))
                for cat, mask, score, vector in self._objects(rng, shifts):
                    inst = PredictedInstance(
                        sample_id=sample.id, category_id=cat, score=score, **mask_columns(mask)
                    )
                    session.add(inst)
                    session.flush()
                    session.add(_instance_embedding(embedder, cat, vector, predicted=inst.id))
                session.add(_image_embedding(embedder, rng, sample_id=sample.id))
                session.add(_properties(rng, sample_id=sample.id))

    def holdout(self, name: str, n: int, embedder: str = "backbone") -> int:
        """Add a labeled holdout of ``n`` images (ground truth drawn like production)."""
        with self.sessions.begin() as session:
            dataset = Dataset(name=name, source_uri="memory://holdout", created_at=NOW)
            session.add(dataset)
            session.flush()
            for k in range(n):
                self._count += 1
                rng = np.random.default_rng([self.seed, self._count])
                image = DatasetImage(
                    dataset_id=dataset.id,
                    source_image_id=k + 1,
                    file_name=f"{k}.png",
                    image_uri=f"memory://holdout/{k}.png",
                    image_sha256=f"{k:064d}",
                    width=SIZE,
                    height=SIZE,
                )
                session.add(image)
                session.flush()
                for cat, mask, _, vector in self._objects(rng, {}):
                    gt = GroundTruthInstance(
                        image_id=image.id, category_id=cat, **mask_columns(mask)
                    )
                    session.add(gt)
                    session.flush()
                    session.add(_instance_embedding(embedder, cat, vector, ground_truth=gt.id))
                session.add(_image_embedding(embedder, rng, dataset_image_id=image.id))
                session.add(_properties(rng, dataset_image_id=image.id))
            return dataset.id


def mask_columns(mask: MaskArray) -> dict[str, Any]:
    """Return the stored columns of an instance mask: box, area and compressed RLE."""
    m = encode_mask(mask)
    x, y, w, h = m.bbox
    return {
        "bbox_x": x,
        "bbox_y": y,
        "bbox_w": w,
        "bbox_h": h,
        "area": m.area,
        "rle_counts": m.counts,
    }


def _shadow(sample_id: int, agreement: float) -> ShadowScore:
    return ShadowScore(
        sample_id=sample_id,
        reference_model="reference",
        computed_at=NOW,
        n_production=1,
        n_reference=1,
        n_matched=1,
        mean_iou=agreement,
        agreement=agreement,
    )


def _image_embedding(embedder: str, rng: np.random.Generator, **owner: int) -> ImageEmbedding:
    vector = rng.normal(size=DIM).astype(np.float16)
    return ImageEmbedding(
        embedder=embedder, dim=DIM, vector=vector.tobytes(), created_at=NOW, **owner
    )


def _instance_embedding(
    embedder: str,
    cat: int,
    vector: Float64Array,
    predicted: int | None = None,
    ground_truth: int | None = None,
) -> InstanceEmbedding:
    return InstanceEmbedding(
        embedder=embedder,
        predicted_instance_id=predicted,
        ground_truth_instance_id=ground_truth,
        category_id=cat,
        dim=DIM,
        vector=vector.astype(np.float16).tobytes(),
        created_at=NOW,
    )


def _properties(rng: np.random.Generator, **owner: int) -> ImageProperties:
    return ImageProperties(
        brightness=float(rng.normal(0.5, 0.1)),
        contrast=float(rng.normal(0.2, 0.05)),
        saturation=float(rng.uniform(0.2, 0.6)),
        sharpness=float(rng.gamma(2.0, 0.01)),
        width=SIZE,
        height=SIZE,
        computed_at=NOW,
        **owner,
    )


def production_reference(**overrides: object) -> DriftSettings:
    """Drift settings with a production reference span, 1h windows, minimum 20."""
    values: dict[str, object] = {
        "reference": DateRange(start=REFERENCE[0], end=REFERENCE[1]),
        "windows": ("1h",),
        "min_samples": 20,
    }
    values.update(overrides)
    return DriftSettings.model_validate(values)


@pytest.fixture
def clock() -> ManualClock:
    """A clock at :data:`NOW`."""
    return ManualClock(NOW)


@pytest.fixture
def drift_scenes(sessions: sessionmaker[Session]) -> DriftScenes:
    """Drift scenes on the shared ``sessions`` fixture (SQLite and PostgreSQL)."""
    return DriftScenes(sessions)


@pytest.fixture
def sqlite_drift_scenes(sqlite_sessions: sessionmaker[Session]) -> DriftScenes:
    """Drift scenes on a SQLite database."""
    return DriftScenes(sqlite_sessions)
