"""One forward pass for embed and shadow: the prediction memo, the model, the two jobs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy.orm import Session, sessionmaker

from detectors._typing import ImageArray
from monitor.clock import ManualClock
from monitor.config import IngestSettings, Settings
from monitor.ingest.job import ingest_log
from monitor.model.adapters import BuiltinModel, Heads
from monitor.model.classmap import ClassMappedModel
from monitor.model.loading import load_model, share_forward_pass
from monitor.model.memo import PredictionMemo
from monitor.model.protocol import InstancePrediction
from monitor.service.schedule import (
    embed_job,
    load_embedder_model,
    load_reference_model,
    shadow_job,
)
from monitor.synth import SynthConfig, generate_scenes
from tests.support.databases import MakeDatabase
from tests.support.shadow_rows import shadow_rows
from tests.support.tiny_model import scene_images

START = datetime(2026, 11, 24, tzinfo=UTC)


def instance(category: int, mask: np.ndarray[Any, Any]) -> InstancePrediction:
    scores = np.array([0.1, 0.2, 0.3, 0.4], dtype=np.float32)
    return InstancePrediction(category, 0.5 + category / 10, mask, scores)


def test_predictions_come_back_exactly_once() -> None:
    rng = np.random.default_rng(3)
    image = rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)
    masks = [rng.random((20, 30)) < 0.4 for _ in range(3)]
    memo = PredictionMemo()
    memo.put(image, [instance(k + 1, m) for k, m in enumerate(masks)])
    memo.put(np.zeros((20, 30, 3), np.uint8), [])  # an image with no instance is kept too
    back = memo.take(image.copy())  # the same pixels, another array
    assert back is not None and [i.category_id for i in back] == [1, 2, 3]
    assert all(np.array_equal(i.mask, m) for i, m in zip(back, masks, strict=True))
    assert [i.score for i in back] == [0.6, 0.7, 0.8]
    assert np.array_equal(back[0].class_scores, np.array([0.1, 0.2, 0.3, 0.4], dtype=np.float32))
    assert memo.take(image) is None  # taken once
    assert memo.take(np.zeros((20, 30, 3), np.uint8)) == []
    one_pixel_off = image.copy()
    one_pixel_off[0, 0, 0] ^= 1
    memo.put(image, [])
    assert memo.take(one_pixel_off) is None
    stats = memo.stats()
    assert (stats.kept, stats.hits, stats.misses, stats.entries) == (3, 2, 2, 1)


def test_the_oldest_images_go_past_the_cap() -> None:
    images = [np.full((8, 8, 3), k, np.uint8) for k in range(5)]
    mask = np.zeros((8, 8), bool)
    mask[2:5, 2:6] = True
    memo = PredictionMemo(max_bytes=2000)
    for image in images:
        memo.put(image, [instance(1, mask)] * 4)
    stats = memo.stats()
    assert stats.evicted > 0 and stats.bytes <= 2000
    assert stats.entries == len(images) - stats.evicted
    assert memo.take(images[0]) is None and memo.take(images[-1]) is not None


@pytest.fixture(scope="module")
def images() -> list[ImageArray]:
    return scene_images(4)


def _count_forward_passes(model: BuiltinModel) -> list[int]:
    calls: list[int] = []
    run = model.run_network

    def counted(batch: Any) -> Heads:
        calls.append(int(batch.shape[0]))
        return run(batch)

    model.run_network = counted  # type: ignore[method-assign]  # spy on the instance only
    return calls


def test_predict_reuses_what_embed_computed(images: list[ImageArray]) -> None:
    plain = load_model("production", device="cpu")
    expected = plain.predict(images)
    model = load_model("production", device="cpu")
    assert isinstance(model, BuiltinModel)
    memo = share_forward_pass(model, model)
    assert memo is not None and model.memo is memo
    embedded = model.embed(images[:3], [[] for _ in images[:3]])
    assert np.array_equal(embedded.images, plain.embed(images[:3], [[]] * 3).images)
    calls = _count_forward_passes(model)
    found = model.predict(images)
    assert calls == [1]  # only the image embed did not see went through the network
    assert memo.stats().hits == 3 and memo.stats().entries == 0
    for got, want in zip(found, expected, strict=True):
        assert [i.category_id for i in got] == [i.category_id for i in want]
        assert all(np.array_equal(a.mask, b.mask) for a, b in zip(got, want, strict=True))
        assert [i.score for i in got] == pytest.approx([i.score for i in want], abs=1e-5)
    assert sum(len(p) for p in expected) > 0
    model.predict(images[:1])
    assert calls == [1, 1]  # taken once: asked again, it is predicted again


def test_only_an_embedder_that_is_the_reference_shares_its_pass() -> None:
    model = load_model("reference", device="cpu")
    assert isinstance(model, BuiltinModel)
    mapped = ClassMappedModel(model, {"star": None})
    assert share_forward_pass(mapped, model) is model.memo is not None  # under the mapping
    other = load_model("reference", device="cpu")
    assert isinstance(other, BuiltinModel)
    assert share_forward_pass(other, model) is None and other.memo is None


def test_the_shadow_job_after_the_embed_job_runs_no_network_and_stores_the_same_rows(
    make_db: MakeDatabase, tmp_path: Path
) -> None:
    """The service's wiring (embedder loaded with the reference) against separate models."""
    generate_scenes(tmp_path / "scenes", SynthConfig(n_images=12, seed=5, size=96))
    settings, clock = Settings(), ManualClock(START)
    runs: dict[str, sessionmaker[Session]] = {}
    for name in ("separate", "shared"):
        runs[name] = make_db(name)
        ingest_log(runs[name], str(tmp_path / "scenes"), IngestSettings(), clock)
    reference = load_reference_model(settings)
    embed_job(runs["separate"], settings, clock, load_embedder_model(settings))
    expected = shadow_job(runs["separate"], settings, clock, reference)

    reference = load_reference_model(settings)
    embedder = load_embedder_model(settings, reference)
    assert isinstance(reference, BuiltinModel) and embedder is reference
    assert reference.memo is not None
    embed_job(runs["shared"], settings, clock, embedder)
    calls = _count_forward_passes(reference)
    report = shadow_job(runs["shared"], settings, clock, reference)
    assert calls == [] and reference.memo.stats().hits == 12
    assert report.counts()["mean_agreement"] == expected.counts()["mean_agreement"]
    assert shadow_rows(runs["shared"]) == shadow_rows(runs["separate"])
    assert expected.reference_instances > 0
