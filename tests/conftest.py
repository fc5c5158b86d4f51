"""Shared fixtures: databases (SQLite and PostgreSQL), generated sample logs, real data."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from monitor.config import DEFAULT_CATEGORIES
from monitor.masks import encode_mask
from monitor.storage.bootstrap import init_database
from monitor.storage.engine import make_engine, session_factory

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
BORRAT = SHARED_DATA / "borrat"
PG_ENV = "SEGMON_TEST_POSTGRES_URL"


@pytest.fixture
def borrat() -> Path:
    """The real Borrat dataset beside the checkout, or a skip."""
    if not (BORRAT / "train" / "_annotations.coco.json").exists():
        pytest.skip(f"real data not found at {BORRAT} (../shared/data/borrat beside the checkout)")
    return BORRAT


def _postgres_base_url() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"{PG_ENV} is not set (make test sets it); no PostgreSQL to test against")
    return url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL whose connections use a fresh, private schema (dropped after)."""
    base = _postgres_base_url()
    schema = f"segmon_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(make_url(base).set(drivername="postgresql+psycopg"))
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # no server: skip, do not fail
        admin.dispose()
        pytest.skip(f"PostgreSQL at {base} is not reachable: {exc.__class__.__name__}")
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test that takes this runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'segmon.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A migrated database with the default categories."""
    eng = make_engine(database_url)
    init_database(eng, DEFAULT_CATEGORIES)
    yield eng
    eng.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    """Session factory of the migrated database."""
    return session_factory(engine)


def _png(path: Path, width: int, height: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(path)


@dataclass
class LogBuilder:
    """Writes a sample log (JSONL + PNG images) in a folder, the DESIGN.md contract."""

    root: Path
    width: int = 32
    height: int = 24
    start: datetime = datetime(2026, 11, 23, tzinfo=UTC)
    count: int = 0
    _image_seed: int = field(default=0)

    def line(self, i: int | None = None, n_instances: int = 2, **override: Any) -> dict[str, Any]:
        """A valid line (and its image on disk), with fields overridden as given."""
        i = self.count if i is None else i
        self.count = max(self.count, i + 1)
        rid = f"r-{i:06d}"
        images = self.root / "images"
        images.mkdir(parents=True, exist_ok=True)
        image = images / f"{rid}.png"
        if not image.exists():
            _png(image, self.width, self.height, i)
        rng = np.random.default_rng(i)
        instances = []
        for k in range(n_instances):
            mask = np.zeros((self.height, self.width), dtype=bool)
            y, x = rng.integers(0, self.height - 6), rng.integers(0, self.width - 6)
            mask[y : y + 5, x : x + 6] = True
            m = encode_mask(mask)
            instances.append(
                {
                    "category_id": int(k % len(DEFAULT_CATEGORIES)) + 1,
                    "score": round(float(rng.uniform(0.3, 1.0)), 4),
                    "bbox": list(m.bbox),
                    "segmentation": {"size": [self.height, self.width], "counts": m.counts},
                    "class_scores": [0.25, 0.25, 0.25, 0.25],
                }
            )
        record: dict[str, Any] = {
            "request_id": rid,
            "captured_at": (self.start + timedelta(minutes=i)).isoformat().replace("+00:00", "Z"),
            "model_version": "prod-2026.11.1",
            "image": f"images/{rid}.png",
            "width": self.width,
            "height": self.height,
            "latency_ms": 80.0 + i % 7,
            "instances": instances,
        }
        record.update(override)
        return record

    def write(
        self, lines: list[dict[str, Any] | str], name: str = "samples.jsonl", mode: str = "a"
    ) -> Path:
        """Append lines (dicts become JSON; strings are written as they are)."""
        path = self.root / name
        with path.open(mode) as handle:
            for line in lines:
                handle.write((line if isinstance(line, str) else json.dumps(line)) + "\n")
        return path


@pytest.fixture
def log_builder(tmp_path: Path) -> LogBuilder:
    """A sample-log writer in a fresh folder."""
    root = tmp_path / "log"
    root.mkdir()
    return LogBuilder(root)
