"""Generated sample logs (JSONL + PNG images), the contract of DESIGN.md."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from monitor.config import DEFAULT_CATEGORIES
from monitor.masks import encode_mask


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
        self, lines: Sequence[dict[str, Any] | str], name: str = "samples.jsonl", mode: str = "a"
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
