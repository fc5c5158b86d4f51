"""The scheduled evaluate job: what arrived since its last run is scored once, per version."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import ManualClock
from monitor.config import IngestSettings
from monitor.errors import InvalidInputError
from monitor.ingest.holdout import import_holdout
from monitor.ingest.job import ingest_log
from monitor.jobs.names import JobName
from monitor.jobs.runs import run_job
from monitor.quality.job import evaluate_holdout
from monitor.quality.scheduled import ScheduledEvaluation, evaluate_scheduled
from monitor.queue.labels import import_labels
from monitor.queue.returns import parse_returned
from monitor.queue.review import decide_review
from monitor.storage.schema import JobRun, QualityResult, QueueItem
from monitor.synth import SynthConfig, generate_scenes
from tests.support.queue_items import Instance, QueueRows, box, export_image, returned_coco

START = datetime(2026, 11, 23, tzinfo=UTC)
HOUR = timedelta(hours=1)
FULL_EVERY = timedelta(days=1)


def scheduled(
    sessions: sessionmaker[Session], clock: ManualClock, *, full: bool = False
) -> ScheduledEvaluation:
    """One scheduled run, recorded in ``job_runs`` as ``segmon run`` records it."""
    report, _ = run_job(
        sessions,
        JobName.EVALUATE,
        clock,
        lambda run_id: evaluate_scheduled(
            sessions, clock, full_every=FULL_EVERY, full=full, run_id=run_id
        ),
    )
    return report


def images_by_version(report: ScheduledEvaluation) -> dict[str, int]:
    return {p.model_version: len(p.image_ids) for _, _, p, _ in report.results}


@pytest.fixture
def golden(tmp_path: Path) -> tuple[Path, list[str]]:
    """12 scenes 1 h apart; the sample log holds the first 6, the rest are returned."""
    scenes = tmp_path / "scenes"
    generate_scenes(scenes, SynthConfig(n_images=12, seed=3, size=96, start=START, interval_s=3600))
    lines = (scenes / "samples.jsonl").read_text().splitlines(keepends=True)
    (scenes / "samples.jsonl").write_text("".join(lines[:6]))
    return scenes, lines[6:]


def test_new_golden_requests_are_scored_once_and_a_full_rescore_takes_all(
    sessions: sessionmaker[Session], golden: tuple[Path, list[str]]
) -> None:
    """SQLite and PostgreSQL: first run scores all, then only what was ingested since."""
    scenes, later = golden
    clock = ManualClock(START + 12 * HOUR)
    import_holdout(sessions, scenes / "annotations.json", scenes / "images", "h", clock)
    ingest_log(sessions, str(scenes), IngestSettings(), clock)
    clock.advance(HOUR)
    first = scheduled(sessions, clock)
    assert (first.mode, first.since) == ("full", None)
    assert images_by_version(first) == {"prod-2026.11.1": 6}
    [(_, dataset, preds, report)] = first.results
    assert (dataset, preds.source, report.n_images) == ("h", "production", 6)

    clock.advance(HOUR)
    assert scheduled(sessions, clock).results == []  # nothing new: nothing stored

    with (scenes / "samples.jsonl").open("a") as log:
        log.write("".join(later))
    clock.advance(HOUR)
    ingest_log(sessions, str(scenes), IngestSettings(), clock)
    arrived_at = clock.now()
    clock.advance(HOUR)
    second = scheduled(sessions, clock)
    assert second.mode == "incremental" and second.since == arrived_at - HOUR
    assert images_by_version(second) == {"prod-2026.11.1": 6}  # only the new six
    [(_, _, preds, _)] = second.results
    assert preds.source == (
        f"production:arrived:{second.since.isoformat()}/{clock.now().isoformat()}"
    )
    clock.advance(HOUR)
    assert scheduled(sessions, clock).results == []  # picked up once

    clock.advance(FULL_EVERY)  # a full re-score is due: all 12 again
    full = scheduled(sessions, clock)
    assert (full.mode, images_by_version(full)) == ("full", {"prod-2026.11.1": 12})
    forced = scheduled(sessions, clock, full=True)
    assert (forced.mode, images_by_version(forced)) == ("full", {"prod-2026.11.1": 12})
    with sessions() as s:
        stored = s.scalars(select(QualityResult).order_by(QualityResult.id)).all()
        runs = {r.id: r for r in s.scalars(select(JobRun))}
        assert [r.n_images for r in stored] == [6, 6, 12, 12]
        assert [r.computed_at for r in stored] == [
            START + 13 * HOUR,
            START + 16 * HOUR,
            START + 41 * HOUR,
            START + 41 * HOUR,
        ]
        assert all(r.run_id is not None and runs[r.run_id].job == "evaluate" for r in stored)


def test_a_manual_evaluate_leaves_the_watermark_alone(
    sessions: sessionmaker[Session], golden: tuple[Path, list[str]]
) -> None:
    scenes, _ = golden
    clock = ManualClock(START + 12 * HOUR)
    import_holdout(sessions, scenes / "annotations.json", scenes / "images", "h", clock)
    ingest_log(sessions, str(scenes), IngestSettings(), clock)
    run_job(
        sessions,
        JobName.EVALUATE,
        clock,
        lambda run_id: evaluate_holdout(sessions, "h", clock, run_id=run_id),
    )
    clock.advance(HOUR)
    # The manual run carries no span: the first scheduled run still scores everything.
    assert scheduled(sessions, clock).mode == "full"
    clock.advance(HOUR)
    run_job(
        sessions,
        JobName.EVALUATE,
        clock,
        lambda run_id: evaluate_holdout(sessions, "h", clock, run_id=run_id),
    )
    clock.advance(HOUR)
    again = scheduled(sessions, clock)
    assert (again.mode, again.results) == ("incremental", [])


def test_a_failed_run_leaves_its_span_to_the_next(
    sessions: sessionmaker[Session], golden: tuple[Path, list[str]]
) -> None:
    scenes, _ = golden
    clock = ManualClock(START + 12 * HOUR)
    import_holdout(sessions, scenes / "annotations.json", scenes / "images", "h", clock)
    ingest_log(sessions, str(scenes), IngestSettings(), clock)
    first = scheduled(sessions, clock)
    clock.advance(HOUR)
    (scenes / "samples.jsonl").write_text("")  # nothing new; a failed run in between

    def broken(run_id: int) -> ScheduledEvaluation:
        evaluate_scheduled(sessions, clock, full_every=FULL_EVERY, run_id=run_id)
        raise RuntimeError("crashed")

    with pytest.raises(RuntimeError, match="crashed"):
        run_job(sessions, JobName.EVALUATE, clock, broken)
    clock.advance(HOUR)
    retry = scheduled(sessions, clock)
    assert retry.since == first.through  # the failed run's span is not skipped


A = box(0, 0, 5, 6)
B = box(6, 9, 5, 6)


def label(
    sessions: sessionmaker[Session], clock: ManualClock, items: list[tuple[int, list[Instance]]]
) -> None:
    doc = returned_coco([export_image(i, f"{i}.png", labels) for i, labels in items])
    import_labels(
        sessions, parse_returned(json.dumps(doc), "coco"), clock, file="x.json", fmt="coco"
    )


def test_newly_labelled_samples_are_scored_once_accepted_ones_when_accepted(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    """SQLite and PostgreSQL: labels imported (or accepted) after a run go in the next."""
    clock = ManualClock(START + 12 * HOUR)
    with sessions.begin() as session:
        rows = QueueRows(session, tmp_path)
        batch = rows.batch()
        items = [
            rows.item(rows.sample([(1, A)], version=v), batch).id
            for v in ("prod-a", "prod-b", "prod-a", "prod-b")
        ]
    label(sessions, clock, [(items[0], [(1, A)])])
    clock.advance(HOUR)
    first = scheduled(sessions, clock)
    assert images_by_version(first) == {"prod-a": 1}
    assert {d for _, d, _, _ in first.results} == {"labelled-production"}

    clock.advance(HOUR)
    label(sessions, clock, [(items[1], [(1, A), (2, B)]), (items[2], [(1, A)])])
    with sessions.begin() as session:  # the prod-a one waits for review
        session.execute(
            update(QueueItem).where(QueueItem.id == items[2]).values(review_reason="odd")
        )
    clock.advance(HOUR)
    second = scheduled(sessions, clock)
    assert second.mode == "incremental"
    assert images_by_version(second) == {"prod-b": 1}
    [(_, _, _, missed)] = second.results
    assert missed.overall.recall == 0.5  # production missed the box
    clock.advance(HOUR)
    assert scheduled(sessions, clock).results == []

    clock.advance(HOUR)
    decide_review(sessions, items[2], "accepted", clock)
    clock.advance(HOUR)
    accepted = scheduled(sessions, clock)
    assert images_by_version(accepted) == {"prod-a": 1}
    clock.advance(HOUR)
    assert scheduled(sessions, clock).results == []

    clock.advance(FULL_EVERY)
    assert images_by_version(scheduled(sessions, clock)) == {"prod-a": 2, "prod-b": 1}


def test_results_per_slo_threshold_and_bad_thresholds_are_refused(
    sessions: sessionmaker[Session], golden: tuple[Path, list[str]]
) -> None:
    scenes, _ = golden
    clock = ManualClock(START + 12 * HOUR)
    import_holdout(sessions, scenes / "annotations.json", scenes / "images", "h", clock)
    ingest_log(sessions, str(scenes), IngestSettings(), clock)
    report = evaluate_scheduled(sessions, clock, full_every=FULL_EVERY, iou_thresholds=(0.5, 0.75))
    assert sorted(r.iou_threshold for _, _, _, r in report.results) == [0.5, 0.75]
    with pytest.raises(InvalidInputError, match=r"iou_thresholds must be in \(0, 1\], got \[0.0\]"):
        evaluate_scheduled(sessions, clock, full_every=FULL_EVERY, iou_thresholds=(0.0,))
