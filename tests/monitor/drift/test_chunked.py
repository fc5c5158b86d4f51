from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import ManualClock
from monitor.drift.chunked import BoundedSample, seeded_keys
from monitor.drift.job import run_drift
from monitor.errors import InvalidInputError
from tests.support.drift_scenes import HOUR, REFERENCE, DriftScenes, Shift, production_reference


def test_chunks_keep_the_rows_one_pass_keeps_in_any_order() -> None:
    rng = np.random.default_rng(3)
    ids = np.arange(500, dtype=np.int64)
    images = ids // 3  # three objects per image
    vectors = rng.normal(size=(500, 4))
    whole = BoundedSample(60, seed=11)
    whole.add(ids, vectors, images)
    shuffled = BoundedSample(60, seed=11)
    order = rng.permutation(500)
    for chunk in np.array_split(order, 37):
        shuffled.add(ids[chunk], vectors[chunk], images[chunk])
    assert np.array_equal(whole.vectors(), shuffled.vectors())
    assert np.array_equal(whole.groups(), shuffled.groups())
    kept = whole.groups()
    # whole images are kept (only the last image in may be cut): 60 rows from 20 or 21 images
    counts = np.unique(kept, return_counts=True)[1]
    assert len(kept) == 60 and int((counts < 3).sum()) <= 1
    # the kept images are those of smallest seeded hash
    smallest = np.sort(seeded_keys(np.unique(images), 11))[:20]
    assert set(seeded_keys(np.unique(kept), 11)) >= set(smallest)


def test_a_window_within_the_bound_is_kept_whole_in_id_order() -> None:
    vectors = np.arange(20.0).reshape(10, 2)
    sample = BoundedSample(10, seed=0)
    sample.add(np.arange(7, 10), vectors[7:])
    sample.add(np.arange(3), vectors[:3])
    sample.add(np.arange(3, 7), vectors[3:7])
    assert sample.seen == 10 and np.array_equal(sample.vectors(), vectors)
    sample.add(np.array([10]), np.array([[99.0, 99.0]]))  # one more: one row leaves
    assert sample.vectors().shape == (10, 2) and sample.seen == 11


def test_another_seed_keeps_other_rows_and_k_must_be_positive() -> None:
    ids, vectors = np.arange(100), np.arange(100.0)[:, None]
    a, b = BoundedSample(10, seed=1), BoundedSample(10, seed=2)
    a.add(ids, vectors)
    b.add(ids, vectors)
    assert not np.array_equal(a.vectors(), b.vectors())
    with pytest.raises(InvalidInputError, match="k=0"):
        BoundedSample(0, seed=0)


def checks(
    sessions: sessionmaker[Session], clock: ManualClock, **budget: int
) -> list[tuple[object, ...]]:
    settings = production_reference(alpha=0.05, **budget)
    report = run_drift(sessions, settings, clock)
    return sorted(
        (
            c.family,
            c.class_name,
            c.detector,
            c.result.feature,
            c.result.statistic,
            c.result.threshold,
            c.result.drift_detected,
            c.result.n_reference,
            c.result.n_current,
        )
        for c in report.checks
    )


def test_chunked_drift_decides_as_the_in_memory_read(
    drift_scenes: DriftScenes, clock: ManualClock
) -> None:
    """SQLite and PostgreSQL: 7-row chunks and one whole read give identical checks."""
    drift_scenes.seed = 4
    drift_scenes.production(150, REFERENCE)
    drift_scenes.production(120, HOUR, shifts={"box": Shift(scale=1.3, embedding=3.0)})
    in_memory = checks(drift_scenes.sessions, clock, max_vectors=100, chunk_rows=1_000_000)
    chunked = checks(drift_scenes.sessions, clock, max_vectors=100, chunk_rows=7)
    assert chunked == in_memory
    embedding = [c for c in chunked if c[0] == "image_embedding"]
    assert embedding and all(c[7] == 100 and c[8] == 100 for c in embedding)  # bounded sides
    assert any(c[6] for c in chunked if c[0] == "instance_embedding")  # the shift is still seen
    # within the bound, every vector is used, as before sampling existed
    whole = checks(drift_scenes.sessions, clock, max_vectors=10_000, chunk_rows=7)
    assert {c[7:] for c in whole if c[0] == "image_embedding"} == {(150, 120)}
