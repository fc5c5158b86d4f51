"""Scalar drift features read a page of images at a time: bounded, and as decided in memory."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import yaml
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from detectors import JensenShannonDetector
from detectors.histogram import (
    MergedCounts,
    bin_counts,
    bin_counts_from_below,
    counts_below,
    reference_bin_edges,
)
from detectors.kullback_leibler import KullbackLeiblerDetector
from detectors.population_stability import PopulationStabilityIndexDetector
from monitor.cli.main import app
from monitor.clock import ManualClock
from monitor.config import DriftDetectors
from monitor.drift.features import FAMILIES, FeatureKey, Population, VectorBudget, read_features
from monitor.drift.job import DriftReport, run_drift, stable_seed
from monitor.drift.scalars import ScalarStream
from monitor.errors import InvalidInputError
from monitor.storage.schema import Category, ImageProperties, Sample
from tests.support.drift_scenes import HOUR, REFERENCE, DriftScenes, Shift, production_reference

SCALARS = DriftDetectors(image_embedding=(), instance_embedding=())
"""Only the scalar families (they are what this file is about)."""


def chunks(n: int, size: int) -> list[slice]:
    return [slice(start, start + size) for start in range(0, n, size)]


@pytest.mark.parametrize("size", [1, 7, 1000])
def test_merged_counts_equal_the_counts_of_the_whole_array(size: int) -> None:
    rng = np.random.default_rng(5)
    reference, window = rng.normal(size=300), rng.normal(0.2, 1.0, size=1000)
    ids = np.arange(1000, dtype=np.int64)
    stream = ScalarStream(100, seed=3, reference=reference)
    for part in chunks(1000, size):
        stream.add(ids[part], window[part])
    merged = stream.merged(window_distinct=True)
    assert merged is not None and merged.tie_free and merged.n_current == 1000
    for n_bins in (2, 4, 10, 17):
        edges = reference_bin_edges(np.sort(reference), n_bins)
        whole = bin_counts(edges, window, n_bins)
        assert np.array_equal(bin_counts_from_below(merged.below, n_bins), whole)
    # the sample is the one a single whole pass keeps, in id order
    whole_pass = ScalarStream(100, seed=3)
    whole_pass.add(ids, window)
    assert np.array_equal(stream.values(), whole_pass.values()) and stream.sampled


def test_a_window_value_equal_to_a_reference_value_is_a_tie() -> None:
    reference = np.array([0.5, 1.5, 2.5, 3.5])
    stream = ScalarStream(100, seed=0, reference=reference)
    stream.add(np.arange(3), np.array([0.1, 2.0, 9.0]))
    merged = stream.merged(window_distinct=True)
    assert merged is not None and merged.tie_free
    stream.add(np.arange(3, 5), np.array([1.5, 7.0]))  # 1.5 is a reference value
    merged = stream.merged(window_distinct=True)
    assert merged is not None and not merged.tie_free
    tied_reference = ScalarStream(100, 0, np.array([1.0, 1.0, 2.0])).merged(window_distinct=True)
    assert tied_reference is not None and not tied_reference.tie_free


@pytest.mark.parametrize(
    "detector", [JensenShannonDetector, KullbackLeiblerDetector, PopulationStabilityIndexDetector]
)
def test_histogram_detectors_score_merged_counts_as_the_whole_window(
    detector: type[JensenShannonDetector],
) -> None:
    rng = np.random.default_rng(8)
    reference = rng.normal(size=400)
    for shift, drifted in ((0.0, False), (0.4, True)):
        window = rng.normal(shift, 1.0, size=3000)
        fitted = detector(random_state=11).fit(reference)
        below = sum(counts_below(np.sort(reference), window[part]) for part in chunks(3000, 7))
        merged = fitted.score_merged(MergedCounts(np.asarray(below), tie_free=True))
        assert merged == fitted.score(window)
        assert merged.drift_detected is drifted and merged.n_current == 3000
    with pytest.raises(InvalidInputError, match="tie-free"):
        fitted.score_merged(MergedCounts(np.asarray(below), tie_free=False))
    with pytest.raises(InvalidInputError, match="fitted on 400"):
        fitted.score_merged(MergedCounts(np.zeros(10, dtype=np.int64), tie_free=True))
    grouped = detector(random_state=11).fit(reference, groups=np.arange(400) // 2)
    with pytest.raises(InvalidInputError, match="groups"):
        grouped.score_merged(MergedCounts(np.asarray(below), tie_free=True))


def scene(scenes: DriftScenes) -> None:
    """150 reference images, 120 in the window: boxes grow, images brighten."""
    scenes.seed = 9
    scenes.production(150, REFERENCE)
    scenes.production(120, HOUR, shifts={"box": Shift(scale=1.3)})
    window = select(Sample.id).where(Sample.captured_at >= HOUR[0])
    with scenes.sessions.begin() as session:
        session.execute(
            update(ImageProperties)
            .where(ImageProperties.sample_id.in_(window))
            .values(brightness=ImageProperties.brightness + 0.08)
        )


def run(sessions: sessionmaker[Session], **budget: int) -> DriftReport:
    settings = production_reference(alpha=0.05, detectors=SCALARS, **budget)
    return run_drift(sessions, settings, ManualClock(datetime(2026, 11, 24, 12, 30, tzinfo=UTC)))


def outcome(report: DriftReport) -> list[tuple[object, ...]]:
    return sorted(
        (c.family, c.class_name, c.detector, c.result.feature, *c.columns().values())
        for c in report.checks
    )


def test_scalar_checks_decide_alike_for_any_chunk_and_as_in_memory(
    drift_scenes: DriftScenes,
) -> None:
    """SQLite and PostgreSQL: chunks of 1, 7 and all images; within and beyond the bound."""
    scene(drift_scenes)
    sessions = drift_scenes.sessions
    for max_values in (10_000, 100):
        reports = [run(sessions, max_values=max_values, chunk_rows=c) for c in (1, 7, 100_000)]
        assert outcome(reports[0]) == outcome(reports[1]) == outcome(reports[2])
        checks = {
            (c.family, c.result.feature, c.class_name, c.detector): c for c in reports[0].checks
        }
        flagged = {k[:3] for k, c in checks.items() if c.result.drift_detected}
        assert {("mask_geometry", "area", "box"), ("image_properties", "brightness", "")} <= flagged
        js = ("image_properties", "brightness", "", "jensen_shannon")
        ks = ("image_properties", "brightness", "", "kolmogorov_smirnov")
        if max_values == 100:  # beyond: KS tests 100 per side, JS merges the whole window
            assert (checks[ks].result.n_reference, checks[ks].result.n_current) == (100, 100)
            assert (checks[js].result.n_reference, checks[js].result.n_current) == (100, 120)
            width = checks[("image_properties", "width", "", "jensen_shannon")].result
            assert width.n_current == 100  # every width is 40: ties, so the sample is tested
            area = checks[("mask_geometry", "area", "box", "kolmogorov_smirnov")].result
            assert area.n_current <= 100 and area.n_current_groups is not None
            assert area.n_current_groups < 120  # whole images of a sample
        else:  # within: every value, as before chunking
            assert checks[ks].result.n_current == checks[js].result.n_current == 120
    # in memory: the reference's sample, the whole window array, the same detector and seed
    with sessions() as session:
        names = {c.id: c.name for c in session.scalars(select(Category))}
        ref_pop = Population("production", start=REFERENCE[0], end=REFERENCE[1])
        sampled = read_features(
            session, ref_pop, FAMILIES, names, None, VectorBudget(max_values=100)
        )
        whole = read_features(
            session, Population("1h", start=HOUR[0], end=HOUR[1]), FAMILIES, names, None
        )
    key = FeatureKey("image_properties", "brightness", "", "numeric")
    assert sampled.arrays[key].size == 100 and whole.arrays[key].size == 120
    seed = stable_seed(
        *js[:2], "jensen_shannon", "", reports[0].reference, "1h", HOUR[1].isoformat()
    )
    in_memory = JensenShannonDetector(random_state=seed, feature="brightness").fit(
        sampled.arrays[key]
    )
    assert checks[js].result == in_memory.score(whole.arrays[key])


def test_segmon_drift_json_samples_a_window_beyond_max_values(
    sqlite_drift_scenes: DriftScenes, sqlite_url: str, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    sqlite_drift_scenes.production(150, (now - timedelta(days=12), now - timedelta(days=10)))
    sqlite_drift_scenes.production(
        260, (now - timedelta(days=2), now), shifts={"box": Shift(scale=1.6)}
    )
    config = tmp_path / "segmon.yaml"
    drift = {
        "reference": {"start": now - timedelta(days=12), "end": now - timedelta(days=10)},
        "windows": ["1d"],
        "min_samples": 20,
        "max_values": 100,
        "detectors": {"image_embedding": [], "instance_embedding": []},
    }
    config.write_text(yaml.safe_dump({"database_url": sqlite_url, "drift": drift}))
    result = CliRunner().invoke(app, ["--config", str(config), "drift", "--json"])
    assert result.exit_code == 0, result.output
    rows = {
        (r["family"], r["feature"], r["class_name"], r["detector"]): r
        for r in json.loads(result.stdout)["results"]
    }
    window_images = json.loads(result.stdout)["windows"][0]["n_images"]
    assert window_images > 100
    ks = rows[("image_properties", "brightness", "", "kolmogorov_smirnov")]
    js = rows[("image_properties", "brightness", "", "jensen_shannon")]
    assert (ks["n_reference"], ks["n_current"]) == (100, 100)
    assert (js["n_reference"], js["n_current"]) == (100, window_images)
    assert rows[("mask_geometry", "area", "box", "kolmogorov_smirnov")]["drift_detected"]
