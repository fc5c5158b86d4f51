"""The scheduled jobs: their intervals, and a reference model loaded once, when first needed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import ManualClock
from monitor.config import Settings
from monitor.jobs.names import JobName
from monitor.service.schedule import SourcesFailedError, build_jobs, ingest_sources
from monitor.storage.schema import Sample
from tests.support.drift_scenes import NOW
from tests.support.model_scenes import ModelScenes, ingest
from tests.support.samplelog import LogBuilder


def test_the_scheduler_runs_drift_hourly(sqlite_sessions: sessionmaker[Session]) -> None:
    jobs = {
        j.name: j.interval.total_seconds()
        for j in build_jobs(sqlite_sessions, Settings(), ManualClock(NOW))
    }
    assert jobs == {
        "ingest": 300.0,
        "embed": 900.0,
        "shadow": 3600.0,
        "drift": 3600.0,
        "evaluate": 3600.0,
        "queue": 3600.0,
        "canary": 3600.0,
    }


def test_scheduled_jobs_load_the_model_once(
    sessions: sessionmaker[Session],
    model_scenes: ModelScenes,
    model_loads: list[str],
    tmp_path: Path,
) -> None:
    clock = ManualClock(datetime(2026, 11, 24, tzinfo=UTC))
    ingest(sessions, model_scenes.write_log(tmp_path / "log", lambda labels: labels), clock)
    jobs = {job.name: job for job in build_jobs(sessions, Settings(), clock)}
    assert jobs[JobName.EMBED].interval == timedelta(seconds=900)
    assert jobs[JobName.SHADOW].interval == timedelta(seconds=3600)
    assert model_loads == []  # building the jobs loads nothing
    assert jobs[JobName.EMBED].work(1).counts()["samples"] == 8
    assert jobs[JobName.SHADOW].work(2).counts()["mean_agreement"] == 1.0
    assert jobs[JobName.EMBED].work(3).counts()["samples"] == 0
    assert model_loads == ["reference"]


def test_each_source_is_ingested_independently(
    sessions: sessionmaker[Session], log_builder: LogBuilder, tmp_path: Path
) -> None:
    """A missing source does not keep the sources after it from being ingested."""
    log_builder.write([log_builder.line(i) for i in range(3)])
    missing = str(tmp_path / "nowhere")
    settings = Settings(sources=(missing, str(log_builder.root)))
    with pytest.raises(SourcesFailedError, match="1 of 2 sources failed") as info:
        ingest_sources(sessions, settings, ManualClock(NOW))
    report = info.value.report
    assert report.sources[str(log_builder.root)]["ingested"] == 3
    assert list(report.errors) == [missing] and "nowhere" in report.errors[missing]
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Sample)) == 3


def test_the_evaluate_job_runs_on_its_schedule_and_has_a_staleness_alert(
    sqlite_sessions: sessionmaker[Session],
) -> None:
    from monitor.config import ScheduleSettings
    from monitor.prometheus.rules import job_rule_groups

    settings = Settings(schedule=ScheduleSettings(evaluate_s=1800))
    jobs = {j.name: j.interval for j in build_jobs(sqlite_sessions, settings, ManualClock(NOW))}
    assert jobs[JobName.EVALUATE] == timedelta(minutes=30)
    stale = [
        r["expr"]
        for r in job_rule_groups(jobs)[0]["rules"]
        if r["labels"]["job"] == "evaluate" and r["alert"] == "SegmonJobStale"
    ]
    assert stale == [
        'time() - max by (job) (segmon_job_last_success_timestamp_seconds{job="evaluate"}) > 5400'
    ]
