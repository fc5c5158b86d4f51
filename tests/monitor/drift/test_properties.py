"""Image properties: computed once per sample and holdout image, and they see what changed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import ManualClock
from monitor.drift.properties import fill_image_properties, image_properties
from monitor.storage.schema import ImageProperties, Sample, SampleStatus, Source
from tests.support.drift_scenes import NOW


def test_image_properties_are_computed_once_for_samples_and_holdout_images(
    sqlite_sessions: sessionmaker[Session], clock: ManualClock, tmp_path: Path
) -> None:
    rng = np.random.default_rng(0)
    pixels = [rng.integers(0, 255, (12, 16, 3), dtype=np.uint8) for _ in range(3)]
    for k, image in enumerate(pixels):
        Image.fromarray(image).save(tmp_path / f"{k}.png")
    with sqlite_sessions.begin() as s:
        src = Source(uri="memory://x", kind="dir", created_at=NOW, watermark={})
        s.add(src)
        s.flush()
        for k, uri in enumerate([*(str(tmp_path / f"{k}.png") for k in range(3)), "/nope.png"]):
            s.add(
                Sample(
                    source_id=src.id,
                    request_id=f"r{k}",
                    captured_at=NOW,
                    ingested_at=NOW,
                    image_uri=uri,
                    status=SampleStatus.OK,
                )
            )
    first = fill_image_properties(sqlite_sessions, clock)
    # the sample whose image is gone is quarantined (as embed and shadow do), not retried
    assert (first.computed, first.unreadable, dict(first.quarantined)) == (
        3,
        0,
        {"image_missing": 1},
    )
    with sqlite_sessions() as s:
        got = s.execute(
            select(Sample.request_id, ImageProperties.brightness, ImageProperties.width)
            .join(ImageProperties, ImageProperties.sample_id == Sample.id)
            .order_by(Sample.request_id)
        ).all()
    assert [g[0] for g in got] == ["r0", "r1", "r2"]
    for (_, brightness, width), image in zip(got, pixels, strict=True):
        assert brightness == pytest.approx(image_properties(image).brightness)
        assert width == 16
    again = fill_image_properties(sqlite_sessions, clock)
    assert again.computed == 0 and again.unreadable == 0 and not again.quarantined
    with sqlite_sessions() as s:
        gone = s.execute(
            select(Sample.status, Sample.quarantine_reason).where(Sample.request_id == "r3")
        )
        assert gone.one() == (SampleStatus.QUARANTINED, "image_missing")


def test_image_properties_see_darker_blurrier_images() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (32, 32, 3)).astype(np.uint8)
    dark = (image * 0.5).astype(np.uint8)
    blurred = ((image.astype(float) + np.roll(image, 1, 0) + np.roll(image, 1, 1)) / 3).astype(
        np.uint8
    )
    base = image_properties(image)
    assert image_properties(dark).brightness < base.brightness
    assert image_properties(blurred).sharpness < base.sharpness / 2
    assert image_properties(np.zeros((4, 4), np.uint8)).saturation == 0.0
