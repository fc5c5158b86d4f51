"""Filling the queue: priority order within the budgets, signals stored, reruns idempotent."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import ManualClock
from monitor.jobs.names import JobName
from monitor.jobs.runs import run_job
from monitor.queue.candidates import read_candidates
from monitor.queue.fill import fill_queue
from monitor.service.schedule import build_jobs
from monitor.storage.schema import DriftResultRow, JobRun, QueueItem, QueueState, RunStatus
from tests.support.drift_scenes import DriftScenes
from tests.support.queue_scenes import NOW, Inst, QueueScenes, queue_settings

UNCERTAINTY = {"uncertainty_max": 1.0}


def items(sessions: sessionmaker[Session]) -> list[QueueItem]:
    with sessions() as session:
        return list(session.scalars(select(QueueItem).order_by(QueueItem.priority.desc())))


def test_fill_queues_the_most_uncertain_first_and_stores_why(
    sessions: sessionmaker[Session], queue_scenes: QueueScenes, tmp_path: Path
) -> None:
    # Uncertainty of a score s at threshold 0.5: 1 - |s - 0.5| / 0.5.
    sure = queue_scenes.sample([Inst(1, 0.99)])
    unsure = queue_scenes.sample([Inst(1, 0.55), Inst(2, 0.97)])
    middle = queue_scenes.sample([Inst(3, 0.8)])
    settings = queue_settings(tmp_path, weights=UNCERTAINTY, run_budget=2)
    report = fill_queue(sessions, settings, ManualClock(NOW), run_id=None, page_size=2)
    assert (report.n_candidates, report.n_queued, report.budget) == (3, 2, 2)
    got = items(sessions)
    assert [i.sample_id for i in got] == [unsure, middle]
    assert sure not in {i.sample_id for i in got}
    first = got[0]
    assert first.state == QueueState.QUEUED and first.reason == "uncertainty_max"
    assert first.signals["uncertainty_max"] == pytest.approx(0.9)
    assert first.signals["uncertainty_mean"] == pytest.approx((0.9 + 0.06) / 2)
    assert "disagreement" not in first.signals  # no shadow row: no signal, not a zero
    assert first.priority == pytest.approx(0.9)
    assert (first.category_ids, first.n_instances, first.queued_at) == ([1, 2], 2, NOW)
    assert got[1].signals["uncertainty_max"] == pytest.approx(0.4)


def test_disagreement_and_drift_signals_come_from_stored_rows(
    sessions: sessionmaker[Session], queue_scenes: QueueScenes, tmp_path: Path
) -> None:
    agreeing = queue_scenes.sample([Inst(1, 0.9)], shadow=(1.0, 0, 0))
    disagreeing = queue_scenes.sample([Inst(1, 0.9), Inst(2, 0.9)], shadow=(0.0, 2, 1))
    settings = queue_settings(tmp_path, weights={"disagreement": 1.0})
    with sessions() as session:
        found = read_candidates(session, settings.queue, NOW)
    at = {int(k): i for i, k in enumerate(found.table.keys)}
    values = found.table.signals["disagreement"]
    assert values[at[disagreeing]] > 0.5 > values[at[agreeing]]
    assert set(found.table.signals) >= {"uncertainty_max", "drift", "image_novelty"}
    assert found.reference is None  # no holdout: novelty is unavailable, not an error
    fill_queue(sessions, settings, ManualClock(NOW))
    assert items(sessions)[0].sample_id == disagreeing
    assert items(sessions)[0].reason == "disagreement"


def test_daily_budget_spans_runs_and_resets_the_next_day(
    sessions: sessionmaker[Session], queue_scenes: QueueScenes, tmp_path: Path
) -> None:
    for score in (0.5, 0.6, 0.7, 0.8, 0.9):
        queue_scenes.sample([Inst(1, score)])
    settings = queue_settings(tmp_path, weights=UNCERTAINTY, daily_budget=3, run_budget=2)
    clock = ManualClock(NOW)
    first = fill_queue(sessions, settings, clock)
    second = fill_queue(sessions, settings, clock)
    third = fill_queue(sessions, settings, clock)
    assert (first.n_queued, second.n_queued, third.n_queued) == (2, 1, 0)
    assert (second.used_today, second.budget, third.budget) == (2, 1, 0)
    queue_scenes.sample([Inst(1, 0.5)], captured_at=NOW + timedelta(hours=11))
    clock.advance(timedelta(hours=12))  # the next UTC day
    fourth = fill_queue(sessions, settings, clock)
    assert (fourth.used_today, fourth.n_queued) == (0, 2)


def test_class_quota_keeps_a_rare_class_and_instance_budget_caps_crowds(
    sessions: sessionmaker[Session], queue_scenes: QueueScenes, tmp_path: Path
) -> None:
    for _ in range(3):
        queue_scenes.sample([Inst(1, 0.5), Inst(1, 0.55)])
    star = queue_scenes.sample([Inst(4, 0.95)])  # least uncertain, only star
    with_quota = queue_settings(
        tmp_path, weights=UNCERTAINTY, run_budget=2, class_quota={"star": 1}
    )
    fill_queue(sessions, with_quota, ManualClock(NOW))
    assert star in {i.sample_id for i in items(sessions)}
    assert len(items(sessions)) == 2
    crowded = queue_settings(tmp_path, weights=UNCERTAINTY, instance_budget=3)
    report = fill_queue(sessions, crowded, ManualClock(NOW))
    assert report.n_queued == 1 and report.n_instances == 2  # a second crowd would cost 4


def test_rerun_is_idempotent_and_every_sample_is_queued_once(
    sessions: sessionmaker[Session], queue_scenes: QueueScenes, tmp_path: Path
) -> None:
    for k in range(6):
        queue_scenes.sample([Inst(1 + k % 4, 0.5 + k / 20)], embedding=[float(k), 1.0, 0.0])
    settings = queue_settings(tmp_path, daily_budget=100)
    first = fill_queue(sessions, settings, ManualClock(NOW), page_size=4)
    again = fill_queue(sessions, settings, ManualClock(NOW), page_size=4)
    assert (first.n_queued, again.n_queued, again.n_candidates) == (6, 0, 0)
    with sessions() as session:
        assert session.scalar(select(func.count(func.distinct(QueueItem.sample_id)))) == 6


def test_near_duplicates_and_unembedded_samples_wait(
    sessions: sessionmaker[Session], queue_scenes: QueueScenes, tmp_path: Path
) -> None:
    a = queue_scenes.sample([Inst(1, 0.5)], embedding=[0.0, 0.0], sha="same")
    b = queue_scenes.sample([Inst(1, 0.6)], embedding=[5.0, 0.0], sha="same")
    c = queue_scenes.sample([Inst(1, 0.7)], embedding=[9.0, 0.0])
    queue_scenes.sample([Inst(1, 0.5)])  # not embedded yet
    settings = queue_settings(tmp_path, weights=UNCERTAINTY)
    report = fill_queue(sessions, settings, ManualClock(NOW))
    assert (report.n_waiting, report.n_duplicates) == (1, 1)
    assert {i.sample_id for i in items(sessions)} == {a, c}
    assert b not in {i.sample_id for i in items(sessions)}


def test_samples_outside_the_lookback_are_not_candidates(
    sessions: sessionmaker[Session], queue_scenes: QueueScenes, tmp_path: Path
) -> None:
    queue_scenes.sample([Inst(1, 0.5)], captured_at=NOW - timedelta(days=3))
    recent = queue_scenes.sample([Inst(1, 0.9)])
    fill_queue(sessions, queue_settings(tmp_path, lookback="1d"), ManualClock(NOW))
    assert [i.sample_id for i in items(sessions)] == [recent]


def test_novelty_against_the_holdout_and_drift_context_from_fired_windows(
    sessions: sessionmaker[Session],
    queue_scenes: QueueScenes,
    drift_scenes: DriftScenes,
    tmp_path: Path,
) -> None:
    drift_scenes.holdout("holdout", 30, embedder="backbone")  # 8-d vectors around 0
    near = queue_scenes.sample(
        [Inst(1, 0.9)], embedding=[0.0] * 8, captured_at=NOW - timedelta(minutes=90)
    )
    far = queue_scenes.sample(
        [Inst(1, 0.9)], embedding=[40.0] * 8, captured_at=NOW - timedelta(minutes=30)
    )
    unchecked = queue_scenes.sample(
        [Inst(1, 0.9)], embedding=[1.0] * 8, captured_at=NOW - timedelta(hours=3)
    )
    with sessions.begin() as session:
        for start, fired in ((NOW - timedelta(hours=2), True), (NOW - timedelta(hours=1), False)):
            session.add(
                DriftResultRow(
                    computed_at=NOW,
                    family="image_embedding",
                    feature="embedding",
                    detector="mmd",
                    class_name="",
                    reference="holdout:holdout",
                    window="1h",
                    window_start=start,
                    window_end=start + timedelta(hours=1),
                    statistic=1.0,
                    threshold=0.5,
                    drift_detected=fired,
                    n_reference=30,
                    n_current=30,
                    details={},
                )
            )
    settings = queue_settings(tmp_path)
    with sessions() as session:
        found = read_candidates(session, settings.queue, NOW)
    assert found.reference == "holdout:holdout" and found.embedder == "backbone"
    at = {int(k): i for i, k in enumerate(found.table.keys)}
    novelty = found.table.signals["image_novelty"]
    assert 0.0 <= novelty[at[near]] < novelty[at[far]] <= 1.0
    drift = found.table.signals["drift"]
    assert drift[at[near]] == 1.0 and drift[at[far]] == 0.0
    assert np.isnan(drift[at[unchecked]])  # no check covered it: no signal
    assert found.table.embeddings is not None and found.table.embeddings.shape == (3, 8)


def test_the_scheduled_queue_job_expires_then_fills_and_is_recorded(
    sessions: sessionmaker[Session], queue_scenes: QueueScenes, tmp_path: Path
) -> None:
    queue_scenes.sample([Inst(1, 0.5)], captured_at=NOW - timedelta(days=9))
    settings = queue_settings(tmp_path, lookback="30d", ttl="7d", run_budget=1)
    old = ManualClock(NOW - timedelta(days=8))
    fill_queue(sessions, settings, old)
    fresh = queue_scenes.sample([Inst(1, 0.6)])
    jobs = {job.name: job for job in build_jobs(sessions, settings, ManualClock(NOW))}
    assert jobs[JobName.QUEUE].interval == timedelta(seconds=settings.schedule.queue_s)
    report, run = run_job(sessions, JobName.QUEUE, ManualClock(NOW), jobs[JobName.QUEUE].work)
    assert (run.counts["expired_queued"], run.counts["queued"]) == (1, 1)
    with sessions() as session:
        row = session.scalars(select(QueueItem).where(QueueItem.sample_id == fresh)).one()
        assert row.fill_run_id == run.run_id
        stored = session.get(JobRun, run.run_id)
        assert stored is not None and stored.status == RunStatus.SUCCESS
        assert stored.counts["queued"] == 1
