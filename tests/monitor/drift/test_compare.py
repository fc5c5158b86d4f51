"""Canary comparison: a known difference is found, a drift both versions share is not blamed."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from monitor.clock import ManualClock
from monitor.drift.compare import compare_versions
from monitor.drift.features import Population
from monitor.drift.job import run_drift
from monitor.drift.label_scores import label_scores
from monitor.errors import InvalidInputError, NotFoundError
from monitor.storage.schema import DatasetImage, Sample
from tests.support.canary_labels import label_samples
from tests.support.drift_scenes import (
    CLASSES,
    DAY,
    REFERENCE,
    DriftScenes,
    Shift,
    production_reference,
)

ERODED = {name: Shift(scale=0.6) for name in CLASSES.values()}
DARKER_DAY = {name: Shift(scale=1.5, embedding=3.0) for name in CLASSES.values()}


def test_eroded_masks_and_lower_agreement_make_the_candidate_worse(
    drift_scenes: DriftScenes,
) -> None:
    """The core test, on SQLite and PostgreSQL."""
    drift_scenes.production(
        60, DAY, model_version="v1", latency_ms=(80.0, 5.0), agreement=(0.9, 0.05)
    )
    drift_scenes.production(
        60, DAY, ERODED, model_version="v2", latency_ms=(80.0, 5.0), agreement=(0.6, 0.05)
    )
    with drift_scenes.sessions() as session:
        result = compare_versions(session, production_reference(), "v1", "v2", DAY)
    assert (result.n_baseline, result.n_candidate) == (60, 60)
    assert result.verdict("shadow_agreement") == "worse"
    assert result.verdict("drift:mask_geometry") == "different"
    assert result.verdict("latency_ms") == "no_difference"
    # Same scenes for both versions elsewhere: no family but the masks' differs.
    assert result.verdict("drift:image_properties") == "no_difference"
    agreement = next(s for s in result.signals if s.signal == "shadow_agreement")
    assert agreement.baseline_mean is not None and agreement.candidate_mean is not None
    assert agreement.candidate_mean < agreement.baseline_mean
    payload = result.as_dict()
    assert {c["signal"] for c in payload["checks"]} >= {"drift:mask_geometry", "latency_ms"}


def test_a_drift_both_versions_see_is_not_blamed_on_the_candidate(
    drift_scenes: DriftScenes, clock: ManualClock
) -> None:
    drift_scenes.production(60, REFERENCE, model_version="v1")
    drift_scenes.production(60, DAY, DARKER_DAY, model_version="v1")
    drift_scenes.production(60, DAY, DARKER_DAY, model_version="v2")
    # The drift is real: the drift job flags the day against the clean reference...
    drifted = run_drift(drift_scenes.sessions, production_reference(windows=("1d",)), clock)
    assert any(c.family == "mask_geometry" and c.result.drift_detected for c in drifted.checks)
    # ...but both versions see it, so the comparison does not blame the candidate.
    with drift_scenes.sessions() as session:
        result = compare_versions(session, production_reference(), "v1", "v2", DAY)
    verdicts = {s.signal: s.verdict for s in result.signals}
    assert verdicts["drift:mask_geometry"] == "no_difference"
    assert verdicts["drift:instance_embedding"] == "no_difference"
    # Fixed seeds: each signal here is an A/A test, which at alpha 0.05 flags by chance
    # for about one seed in twenty (the Bonferroni correction keeps families at that).
    assert "worse" not in verdicts.values() and "different" not in verdicts.values()
    assert verdicts["latency_ms"] == "not_enough_data"  # no latency logged


def test_a_slower_candidate_is_worse_and_a_faster_one_better(
    sqlite_drift_scenes: DriftScenes,
) -> None:
    sqlite_drift_scenes.production(50, DAY, model_version="v1", latency_ms=(80.0, 5.0))
    sqlite_drift_scenes.production(50, DAY, model_version="v2", latency_ms=(120.0, 5.0))
    sessions = sqlite_drift_scenes.sessions
    with sessions() as session:
        settings = production_reference()
        slower = compare_versions(session, settings, "v1", "v2", DAY)
        faster = compare_versions(session, settings, "v2", "v1", DAY)
    assert slower.verdict("latency_ms") == "worse"
    assert faster.verdict("latency_ms") == "better"


def test_unknown_or_equal_versions_are_refused(sqlite_drift_scenes: DriftScenes) -> None:
    sqlite_drift_scenes.production(5, DAY, model_version="v1")
    with sqlite_drift_scenes.sessions() as session:
        with pytest.raises(NotFoundError, match="'v9'.*v1"):
            compare_versions(session, production_reference(), "v1", "v9", DAY)
        with pytest.raises(InvalidInputError, match="'v1'"):
            compare_versions(session, production_reference(), "v1", "v1", DAY)


def test_masks_that_fall_short_of_the_labels_make_the_candidate_worse_on_quality(
    drift_scenes: DriftScenes,
) -> None:
    """Labelled production samples: the candidate's masks miss a 2-pixel rim of each object."""
    drift_scenes.production(40, DAY, model_version="v1")
    drift_scenes.production(40, DAY, model_version="v2")
    assert label_samples(drift_scenes.sessions, "v1", grow=0) == 40
    assert label_samples(drift_scenes.sessions, "v2", grow=2) == 40
    with drift_scenes.sessions() as session:
        result = compare_versions(session, production_reference(), "v1", "v2", DAY)
    quality = next(s for s in result.signals if s.signal == "quality")
    assert quality.verdict == "worse"
    assert quality.baseline_mean == pytest.approx(1.0)  # exact masks: agreement 1 per image
    assert quality.candidate_mean is not None and quality.candidate_mean < 0.6
    check = next(c for c in result.checks if c.signal == "quality")
    assert (check.result.n_reference, check.result.n_current) == (40, 40)


def test_equally_good_masks_make_no_quality_difference(
    sqlite_drift_scenes: DriftScenes,
) -> None:
    sqlite_drift_scenes.production(40, DAY, model_version="v1")
    sqlite_drift_scenes.production(40, DAY, model_version="v2")
    label_samples(sqlite_drift_scenes.sessions, "v1", grow=1)
    label_samples(sqlite_drift_scenes.sessions, "v2", grow=1)
    with sqlite_drift_scenes.sessions() as session:
        result = compare_versions(session, production_reference(), "v1", "v2", DAY)
    assert result.verdict("quality") == "no_difference"


def test_without_labels_quality_has_not_enough_data(sqlite_drift_scenes: DriftScenes) -> None:
    sqlite_drift_scenes.production(40, DAY, model_version="v1")
    sqlite_drift_scenes.production(40, DAY, model_version="v2")
    label_samples(sqlite_drift_scenes.sessions, "v1", grow=0)
    label_samples(sqlite_drift_scenes.sessions, "v2", grow=2, every=4)  # 10 < min_samples 20
    with sqlite_drift_scenes.sessions() as session:
        result = compare_versions(session, production_reference(), "v1", "v2", DAY)
    assert result.verdict("quality") == "not_enough_data"
    assert not [c for c in result.checks if c.signal == "quality"]


def test_golden_requests_are_scored_against_the_holdout_and_own_labels_win(
    sqlite_drift_scenes: DriftScenes,
) -> None:
    """A sample whose image is a holdout image is labelled by the holdout's ground truth."""
    sqlite_drift_scenes.holdout("golden", 6)
    sqlite_drift_scenes.production(6, DAY, model_version="v1")
    sessions = sqlite_drift_scenes.sessions
    with sessions.begin() as session:
        shas = session.scalars(select(DatasetImage.image_sha256).order_by(DatasetImage.id)).all()
        samples = session.scalars(select(Sample).order_by(Sample.id)).all()
        for sample, sha in zip(samples, shas, strict=True):
            sample.image_sha256 = sha
    pop = Population("v1", start=DAY[0], end=DAY[1], model_version="v1")
    with sessions() as session:
        golden = label_scores(session, pop)
    # Holdout ground truth was drawn apart from production's masks: scored, and poor.
    assert golden.shape == (6,) and float(golden.max()) < 0.5
    label_samples(sessions, "v1", grow=0, every=2)  # own labels on samples 1, 3, 5
    with sessions() as session:
        mixed = label_scores(session, pop)
    assert mixed[::2].tolist() == [1.0, 1.0, 1.0]
    assert mixed[1::2].tolist() == golden[1::2].tolist()
