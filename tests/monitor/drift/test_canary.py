"""The canary job: versions chosen, verdicts stored per signal, reruns idempotent."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from monitor.clock import ManualClock
from monitor.config import Settings
from monitor.drift.canary import CanaryReport, run_canary
from monitor.jobs.names import JobName
from monitor.jobs.runs import run_job
from monitor.service.schedule import build_jobs
from monitor.storage.schema import CanaryResultRow, JobRun
from tests.support.canary_labels import label_samples
from tests.support.drift_scenes import NOW, DriftScenes

LAST_DAY = (NOW - timedelta(days=1), NOW)


def settings(**canary: object) -> Settings:
    return Settings.model_validate({"drift": {"min_samples": 20}, "canary": canary})


def test_the_canary_job_stores_a_worse_candidate_once_per_window(
    drift_scenes: DriftScenes, clock: ManualClock
) -> None:
    """The core test, on SQLite and PostgreSQL: v1 serves most, v2 is the worse canary."""
    scenes = drift_scenes
    scenes.production(50, LAST_DAY, model_version="v1", agreement=(0.9, 0.05))
    scenes.production(30, LAST_DAY, model_version="v2", agreement=(0.6, 0.05))
    scenes.production(5, LAST_DAY, model_version="v3")  # too few to be compared
    label_samples(scenes.sessions, "v1", grow=0)
    label_samples(scenes.sessions, "v2", grow=2)
    jobs = {j.name: j for j in build_jobs(scenes.sessions, settings(), clock)}
    result, run = run_job(scenes.sessions, JobName.CANARY, clock, jobs[JobName.CANARY].work)
    assert isinstance(result, CanaryReport)
    report = result
    assert (report.baseline, [c.candidate for c in report.comparisons]) == ("v1", ["v2"])
    assert report.samples == {"v1": 50, "v2": 30, "v3": 5}
    assert run.status == "success"
    assert run.counts["worse"] == ["v2:quality", "v2:shadow_agreement"]
    with scenes.sessions() as session:
        rows = {r.signal: r for r in session.scalars(select(CanaryResultRow))}
        job = session.scalars(select(JobRun).where(JobRun.job == "canary")).one()
    assert rows["quality"].verdict == rows["shadow_agreement"].verdict == "worse"
    assert rows["latency_ms"].verdict == "not_enough_data"
    quality = rows["quality"]
    assert (quality.baseline, quality.candidate, quality.run_id) == ("v1", "v2", job.id)
    assert (quality.n_baseline, quality.n_candidate, quality.checks) == (50, 30, 1)
    assert quality.baseline_mean == 1.0
    assert quality.candidate_mean is not None and quality.candidate_mean < 0.6
    assert quality.min_p_value is not None and quality.min_p_value < 0.001
    assert quality.window_end == NOW and quality.window_start == NOW - timedelta(days=1)
    # A rerun at the same time replaces the rows; an hour later adds a window.
    run_canary(scenes.sessions, settings(), clock)
    with scenes.sessions() as session:
        assert session.scalar(select(func.count()).select_from(CanaryResultRow)) == len(rows)
    clock.advance(timedelta(hours=1))
    run_canary(scenes.sessions, settings(), clock)
    with scenes.sessions() as session:
        assert session.scalar(select(func.count()).select_from(CanaryResultRow)) == 2 * len(rows)


def test_configured_versions_are_compared_and_unknown_ones_named(
    sqlite_drift_scenes: DriftScenes, clock: ManualClock
) -> None:
    scenes = sqlite_drift_scenes
    scenes.production(40, LAST_DAY, model_version="v1")
    scenes.production(25, LAST_DAY, model_version="v2")
    report = run_canary(scenes.sessions, settings(baseline="v2", candidates=["v1", "v9"]), clock)
    assert report.baseline == "v2"
    assert [c.candidate for c in report.comparisons] == ["v1"]
    assert report.skipped == {"v9": "candidate: no such model version"}
    missing = run_canary(scenes.sessions, settings(baseline="v0"), clock)
    assert (missing.comparisons, missing.skipped) == ([], {"v0": "baseline: no such model version"})


def test_a_single_version_or_no_traffic_stores_nothing(
    sqlite_drift_scenes: DriftScenes, clock: ManualClock
) -> None:
    scenes = sqlite_drift_scenes
    assert run_canary(scenes.sessions, settings(), clock).baseline is None
    scenes.production(40, LAST_DAY, model_version="v1")
    only = run_canary(scenes.sessions, settings(), clock)
    assert (only.baseline, only.comparisons) == ("v1", [])
    with scenes.sessions() as session:
        assert session.scalar(select(func.count()).select_from(CanaryResultRow)) == 0


def test_the_canary_job_is_scheduled_unless_disabled(
    sqlite_drift_scenes: DriftScenes, clock: ManualClock
) -> None:
    sessions = sqlite_drift_scenes.sessions
    on = {j.name: j.interval for j in build_jobs(sessions, settings(), clock)}
    assert on[JobName.CANARY] == timedelta(hours=1)
    off = {j.name for j in build_jobs(sessions, settings(enabled=False), clock)}
    assert JobName.CANARY not in off
