"""Queue scenes: production samples with known signals written straight into the database.

``QueueScenes.sample`` adds one accepted sample with the instances, image file, image
embedding and shadow row a test names, so the signals of each candidate are known.
Fixture ``queue_scenes`` (on ``sessions``: SQLite and PostgreSQL) and ``queue_settings``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from sqlalchemy.orm import Session, sessionmaker

from monitor.config import Settings
from monitor.masks import encode_mask
from monitor.storage.schema import (
    ImageEmbedding,
    ModelVersion,
    PredictedInstance,
    Sample,
    SampleStatus,
    ShadowClassScore,
    ShadowScore,
    Source,
)
from monitor.storage.vectors import vectors_to_bytes

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SIZE = 24
EMBEDDER = "backbone"


@dataclass(frozen=True)
class Inst:
    """One predicted instance: class, score, optional class scores, a square mask."""

    category_id: int
    score: float
    class_scores: tuple[float, ...] | None = None
    side: int = 6


def queue_settings(tmp_path: Path, **queue: Any) -> Settings:
    """Settings whose queue section is ``queue`` (export under ``tmp_path/exports``)."""
    export = {"out_dir": str(tmp_path / "exports"), **queue.pop("export", {})}
    return Settings.model_validate(
        {"data_dir": str(tmp_path / "var"), "queue": {"export": export, **queue}}
    )


@dataclass
class QueueScenes:
    """Writes samples whose signals a test knows; images go under ``image_dir``."""

    sessions: sessionmaker[Session]
    image_dir: Path
    _source_id: int | None = field(default=None, repr=False)
    _version_id: int | None = field(default=None, repr=False)
    _n: int = 0

    def _ids(self, session: Session) -> tuple[int, int]:
        if self._source_id is None or self._version_id is None:
            src = Source(uri="memory://queue-log", kind="dir", created_at=NOW, watermark={})
            mv = ModelVersion(name="prod-1", first_seen_at=NOW)
            session.add_all([src, mv])
            session.flush()
            self._source_id, self._version_id = src.id, mv.id
        return self._source_id, self._version_id

    def sample(
        self,
        instances: Sequence[Inst] = (),
        *,
        captured_at: datetime | None = None,
        embedding: Sequence[float] | None = None,
        sha: str | None = None,
        shadow: tuple[float, int, int] | None = None,
        image: bool = True,
    ) -> int:
        """Add one sample; ``shadow`` is (agreement, production_only, reference_only)."""
        self._n += 1
        n = self._n
        path = self.image_dir / f"img-{n:04d}.png"
        if image:
            self.image_dir.mkdir(parents=True, exist_ok=True)
            pixels = np.full((SIZE, SIZE, 3), n % 255, dtype=np.uint8)
            Image.fromarray(pixels).save(path)
        with self.sessions.begin() as session:
            source_id, version_id = self._ids(session)
            sample = Sample(
                source_id=source_id,
                request_id=f"q-{n:05d}",
                captured_at=captured_at or NOW - timedelta(hours=1),
                ingested_at=NOW - timedelta(minutes=30),
                model_version_id=version_id,
                image_uri=str(path),
                image_sha256=sha if sha is not None else f"{n:064x}",
                width=SIZE,
                height=SIZE,
                status=SampleStatus.OK,
            )
            session.add(sample)
            session.flush()
            for k, inst in enumerate(instances):
                mask = np.zeros((SIZE, SIZE), dtype=bool)
                y = (3 * k) % (SIZE - inst.side)
                mask[y : y + inst.side, 2 : 2 + inst.side] = True
                m = encode_mask(mask)
                x0, y0, w, h = m.bbox
                session.add(
                    PredictedInstance(
                        sample_id=sample.id,
                        category_id=inst.category_id,
                        score=inst.score,
                        bbox_x=x0,
                        bbox_y=y0,
                        bbox_w=w,
                        bbox_h=h,
                        area=m.area,
                        rle_counts=m.counts,
                        class_scores=list(inst.class_scores) if inst.class_scores else None,
                    )
                )
            if embedding is not None:
                session.add(
                    ImageEmbedding(
                        embedder=EMBEDDER,
                        sample_id=sample.id,
                        dim=len(embedding),
                        vector=vectors_to_bytes([list(embedding)])[0],
                        created_at=NOW,
                    )
                )
            if shadow is not None:
                agreement, prod_only, ref_only = shadow
                n_prod = len(instances)
                score = ShadowScore(
                    sample_id=sample.id,
                    reference_model="reference",
                    computed_at=NOW,
                    n_production=n_prod,
                    n_reference=max(0, n_prod - prod_only) + ref_only,
                    n_matched=max(0, n_prod - prod_only),
                    mean_iou=0.8,
                    agreement=agreement,
                )
                cat = instances[0].category_id if instances else 1
                score.classes = [
                    ShadowClassScore(
                        category_id=cat,
                        matched=max(0, n_prod - prod_only),
                        production_only=prod_only,
                        reference_only=ref_only,
                        class_disagreements=0,
                        ious=[],
                    )
                ]
                session.add(score)
            return int(sample.id)


@pytest.fixture
def queue_scenes(sessions: sessionmaker[Session], tmp_path: Path) -> QueueScenes:
    """Queue scenes on the ``sessions`` database (SQLite and PostgreSQL)."""
    return QueueScenes(sessions, tmp_path / "images")
