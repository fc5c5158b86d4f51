"""The drift job: families, per-class shifts, reruns, small windows, holdout reference."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import ManualClock
from monitor.config import DriftSettings
from monitor.drift.job import run_drift
from monitor.errors import ConfigError, NotFoundError
from monitor.storage.schema import DriftResultRow, EmbedderRecord, ImageEmbedding
from tests.support.drift_scenes import (
    CLASSES,
    DAY,
    HOUR,
    NOW,
    REFERENCE,
    DriftScenes,
    Shift,
    production_reference,
)

ROW_FIELDS = tuple(  # every stored column but the row's id, run and time of computation
    c.name
    for c in DriftResultRow.__table__.columns
    if c.name not in ("id", "run_id", "computed_at")
)


def stored(sessions: sessionmaker[Session]) -> list[dict[str, Any]]:
    with sessions() as s:
        rows = s.scalars(select(DriftResultRow).order_by(DriftResultRow.id)).all()
        return [{f: getattr(r, f) for f in ROW_FIELDS} for r in rows]


def keys(rows: list[dict[str, Any]]) -> set[tuple[str, str, str, str]]:
    return {(r["family"], r["feature"], r["detector"], r["class_name"]) for r in rows}


def test_every_family_stores_rows_and_a_rerun_replaces_them(
    drift_scenes: DriftScenes, clock: ManualClock
) -> None:
    """The core test, on SQLite and PostgreSQL."""
    sessions = drift_scenes.sessions
    drift_scenes.production(60, REFERENCE)
    drift_scenes.production(30, HOUR)
    settings = production_reference()
    report = run_drift(sessions, settings, clock)
    first = stored(sessions)
    found = keys(first)
    names = sorted(CLASSES.values())
    expected = {
        ("image_embedding", "embedding", "pca_js", ""),
        ("image_embedding", "embedding", "mmd", ""),
        ("prediction", "class_mix", "chi_square", ""),
        ("prediction", "instances_per_image", "jensen_shannon", ""),
        *(("prediction", "score", "jensen_shannon", n) for n in names),
        *(("instance_embedding", "embedding", "pca_js", n) for n in names),
        *(
            ("mask_geometry", f, d, n)
            for f in ("area", "aspect", "boundary", "count")
            for d in ("kolmogorov_smirnov", "jensen_shannon")
            for n in names
        ),
        *(
            ("image_properties", f, d, "")
            for f in ("brightness", "contrast", "saturation", "sharpness", "width", "height")
            for d in ("kolmogorov_smirnov", "jensen_shannon")
        ),
    }
    assert found == expected
    assert len(first) == len(expected) == len(report.checks)
    assert {(r["reference"], r["window"], r["window_start"], r["window_end"]) for r in first} == {
        (report.reference, "1h", *HOUR)
    }
    assert all(
        r["n_reference"] == 60 and r["n_current"] == 30
        for r in first
        if r["feature"] in ("embedding",) and r["class_name"] == ""
    )
    # Per-object checks (one row per object, 1 or 2 objects of each class per image)
    # record the images their objects lie on; per-image checks record no groups.
    per_object = {"area", "aspect", "boundary", "class_mix", "embedding", "score"}
    for r in first:
        if r["feature"] in per_object and (r["class_name"] or r["feature"] == "class_mix"):
            assert (r["n_reference_groups"], r["n_current_groups"]) == (60, 30), r
            assert r["n_reference"] > 60 and r["n_current"] > 30
        else:
            assert (r["n_reference_groups"], r["n_current_groups"]) == (None, None), r

    # Later in the same hour: same windows, same seeds, same rows (upserted, not added).
    clock.advance(NOW.replace(minute=59) - NOW)
    run_drift(sessions, settings, clock)
    assert stored(sessions) == first


def test_shift_in_one_class_is_flagged_for_that_class_only(
    sqlite_drift_scenes: DriftScenes, clock: ManualClock
) -> None:
    sqlite_drift_scenes.seed = 1
    sqlite_drift_scenes.production(100, REFERENCE)
    sqlite_drift_scenes.production(60, HOUR, shifts={"box": Shift(scale=1.5, embedding=1.5)})
    report = run_drift(sqlite_drift_scenes.sessions, production_reference(alpha=0.01), clock)
    flagged = {
        (c.family, c.result.feature, c.class_name) for c in report.checks if c.result.drift_detected
    }
    assert ("mask_geometry", "area", "box") in flagged
    assert ("mask_geometry", "boundary", "box") in flagged
    assert ("instance_embedding", "embedding", "box") in flagged
    # The shifted features of every other class stay quiet (15 checks at alpha 0.01;
    # unrelated features of other classes may raise the odd false alarm at that rate).
    shifted = {"area", "boundary", "embedding"}
    others = {(f, feat, c) for f, feat, c in flagged if c not in ("box", "") and feat in shifted}
    assert not others, others
    # The image-level families see no change: the shift lives inside one class.
    assert not {f for f, _, c in flagged if c == ""} & {"image_embedding", "image_properties"}


def test_no_shift_is_not_flagged(sqlite_drift_scenes: DriftScenes, clock: ManualClock) -> None:
    sqlite_drift_scenes.seed = 2
    sqlite_drift_scenes.production(80, REFERENCE)
    sqlite_drift_scenes.production(50, HOUR)
    report = run_drift(sqlite_drift_scenes.sessions, production_reference(alpha=0.01), clock)
    assert len(report.checks) > 50
    flagged = [c for c in report.checks if c.result.drift_detected]
    # 0.01 x ~56 checks: about 0.6 false alarms expected; 3 or more has probability ~2%.
    assert len(flagged) <= 2, [(c.family, c.result.feature, c.class_name) for c in flagged]


def test_windows_below_min_samples_are_skipped_and_counted(
    sqlite_drift_scenes: DriftScenes, clock: ManualClock
) -> None:
    sqlite_drift_scenes.production(40, REFERENCE)
    sqlite_drift_scenes.production(25, HOUR)
    sqlite_drift_scenes.production(10, DAY)  # the 1d window holds only these
    settings = production_reference(windows=("1h", "1d"), min_samples=20)
    report = run_drift(sqlite_drift_scenes.sessions, settings, clock)
    assert report.skipped_windows == 1
    assert [w["n_images"] for w in report.windows] == [25, 10]
    rows = stored(sqlite_drift_scenes.sessions)
    assert rows and {r["window"] for r in rows} == {"1h"}
    assert all(np.isfinite(r["statistic"]) and np.isfinite(r["threshold"]) for r in rows)
    strict = run_drift(
        sqlite_drift_scenes.sessions,
        production_reference(windows=("1h", "1d"), min_samples=30),
        clock,
    )
    assert strict.skipped_windows == 2 and not strict.checks


def test_checks_with_too_few_values_are_skipped_not_stored(
    sqlite_drift_scenes: DriftScenes, clock: ManualClock
) -> None:
    sqlite_drift_scenes.production(15, REFERENCE)  # 15 images, 15 to 30 instances per class
    sqlite_drift_scenes.production(30, HOUR)
    report = run_drift(sqlite_drift_scenes.sessions, production_reference(min_samples=20), clock)
    rows = stored(sqlite_drift_scenes.sessions)
    # Every feature has 15 reference images; per-object features have up to 30 objects
    # per class, but min_samples counts the images they lie on: all skipped and counted
    # (6 properties, the image embedding, instances per image and class mix, and per
    # class the count, area, aspect, boundary, score and instance embedding).
    assert not rows and not report.checks
    assert report.skipped_checks["too_few_samples"] == 6 + 1 + 2 + 6 * len(CLASSES)


def test_min_samples_counts_images_for_per_object_checks(
    sqlite_drift_scenes: DriftScenes, clock: ManualClock
) -> None:
    sqlite_drift_scenes.production(24, REFERENCE)  # 24 images, 24 to 48 objects per class
    sqlite_drift_scenes.production(30, HOUR)
    strict = run_drift(sqlite_drift_scenes.sessions, production_reference(min_samples=25), clock)
    assert not strict.checks  # no check has 25 reference images, whatever its objects
    report = run_drift(sqlite_drift_scenes.sessions, production_reference(min_samples=24), clock)
    areas = [c.result for c in report.checks if c.result.feature == "area"]
    assert len(areas) == 2 * len(CLASSES)
    assert all(r.n_reference_groups == 24 and r.n_current_groups == 30 for r in areas)
    assert max(r.n_reference for r in areas) >= 25  # enough objects, too few images above


def test_holdout_reference_reads_ground_truth_and_skips_scores(
    sqlite_drift_scenes: DriftScenes, clock: ManualClock
) -> None:
    sqlite_drift_scenes.seed = 3
    sqlite_drift_scenes.holdout("golden", 60)
    sqlite_drift_scenes.production(40, HOUR, shifts={"triangle": Shift(scale=1.6)})
    settings = DriftSettings(windows=("1h",), min_samples=20, alpha=0.01)
    report = run_drift(sqlite_drift_scenes.sessions, settings, clock)
    assert report.reference == "holdout:golden"
    found = {(c.family, c.result.feature) for c in report.checks}
    assert {
        ("image_embedding", "embedding"),
        ("instance_embedding", "embedding"),
        ("mask_geometry", "area"),
        ("prediction", "class_mix"),
        ("image_properties", "brightness"),
    } <= found
    assert ("prediction", "score") not in found  # ground truth has no scores
    assert report.skipped_checks["missing_in_reference"] == len(CLASSES)
    flagged = {
        (c.result.feature, c.class_name)
        for c in report.checks
        if c.family == "mask_geometry" and c.result.drift_detected
    }
    assert ("area", "triangle") in flagged
    assert {c for _, c in flagged} == {"triangle"}
    assert {r["reference"] for r in stored(sqlite_drift_scenes.sessions)} == {"holdout:golden"}


def test_reference_must_resolve(sqlite_sessions: sessionmaker[Session], clock: ManualClock) -> None:
    with pytest.raises(ConfigError, match="0 holdouts"):
        run_drift(sqlite_sessions, DriftSettings(), clock)
    with pytest.raises(NotFoundError, match="'missing'"):
        run_drift(sqlite_sessions, DriftSettings(reference="missing"), clock)


def test_the_labelled_production_dataset_is_no_default_reference(
    sqlite_sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    from monitor.drift.job import resolve_reference
    from monitor.storage.schema import Dataset

    with sqlite_sessions.begin() as s:
        for name, kind in (("holdout", "holdout"), ("labelled-production", "labelled")):
            s.add(Dataset(name=name, kind=kind, source_uri="x", created_at=clock.now()))
    with sqlite_sessions() as s:
        assert resolve_reference(s, None).label == "holdout:holdout"


def test_drift_compares_the_embedder_used_last_and_names_it(
    sqlite_drift_scenes: DriftScenes, clock: ManualClock
) -> None:
    sessions = sqlite_drift_scenes.sessions
    sqlite_drift_scenes.production(60, REFERENCE, embedder="old")
    sqlite_drift_scenes.production(30, HOUR, embedder="old")
    with sessions.begin() as s:  # a new embedder has re-embedded all but 10 images
        for row in s.scalars(select(ImageEmbedding).order_by(ImageEmbedding.id).limit(80)).all():
            s.add(ImageEmbedding(
                embedder="new", sample_id=row.sample_id, dim=row.dim, vector=row.vector,
                created_at=row.created_at,
            ))  # fmt: skip
    assert run_drift(sessions, production_reference(), clock).embedder == "old"  # most rows
    with sessions.begin() as s:
        for name, used in (("old", DAY[0]), ("new", NOW)):
            s.add(
                EmbedderRecord(name=name, dim=4, details={}, first_used_at=used, last_used_at=used)
            )
    report = run_drift(sessions, production_reference(), clock)
    assert report.embedder == "new"
    checked = {(c.family, c.embedder) for c in report.checks}
    # only "new" image vectors are compared (it has no instance vectors: none compared)
    assert {e for f, e in checked if f.endswith("_embedding")} == {"new"}
    assert {e for f, e in checked if not f.endswith("_embedding")} == {None}
    rows = stored(sessions)
    assert {r["embedder"] for r in rows if r["family"] == "image_embedding"} == {"new"}
    named = run_drift(sessions, production_reference(embedder="old"), clock)
    assert named.embedder == "old"
