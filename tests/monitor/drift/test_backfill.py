"""Backfill: every aligned window of a past period, resumable, and the job's catch-up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import ManualClock
from monitor.drift.backfill import BackfillProgress, backfill_drift, plan_windows
from monitor.drift.job import run_drift
from monitor.errors import InvalidInputError
from monitor.storage.engine import make_engine, session_factory
from monitor.storage.schema import DriftResultRow
from tests.support.drift_scenes import REFERENCE, DriftScenes, Shift, production_reference
from tests.support.paths import REPO

DAY = timedelta(days=1)
FIRST = datetime(2026, 11, 22, tzinfo=UTC)
DRIFT_DAY = datetime(2026, 11, 25, tzinfo=UTC)
SHIFTED = {("mask_geometry", "area", "box"), ("instance_embedding", "embedding", "box")}
FIELDS = tuple(
    c.name
    for c in DriftResultRow.__table__.columns
    if c.name not in ("id", "run_id", "computed_at")
)


def days_of_production(scenes: DriftScenes, n_days: int, per_day: int) -> None:
    """Reference span, then ``n_days`` from FIRST; the box class shifts from DRIFT_DAY on."""
    scenes.production(100, REFERENCE)
    for k in range(n_days):
        day = FIRST + k * DAY
        shifts = {"box": Shift(scale=1.6, embedding=2.0)} if day >= DRIFT_DAY else None
        scenes.production(per_day, (day, day + DAY), shifts=shifts)


def rows(sessions: sessionmaker[Session]) -> list[tuple[Any, ...]]:
    with sessions() as s:
        found = s.scalars(select(DriftResultRow)).all()
        return sorted(tuple(getattr(r, f) for f in FIELDS) for r in found)


def flagged_ends(sessions: sessionmaker[Session]) -> dict[datetime, set[tuple[str, str, str]]]:
    out: dict[datetime, set[tuple[str, str, str]]] = {}
    with sessions() as s:
        for r in s.scalars(select(DriftResultRow)):
            end = r.window_end.astimezone(UTC)
            out.setdefault(end, set())
            if r.drift_detected:
                out[end].add((r.family, r.feature, r.class_name))
    return out


def test_backfill_flags_the_drift_day_and_not_the_days_before(
    drift_scenes: DriftScenes,
) -> None:
    """SQLite and PostgreSQL: a shift from a known day on shows in that day's window first."""
    days_of_production(drift_scenes, 5, 40)
    settings = production_reference(windows=("1d",), alpha=0.01)
    steps: list[BackfillProgress] = []
    clock = ManualClock(FIRST + 10 * DAY)
    report = backfill_drift(
        drift_scenes.sessions, settings, clock, FIRST, FIRST + 5 * DAY, progress=steps.append
    )
    ends = [FIRST + k * DAY for k in range(1, 6)]
    assert [s.window.end for s in steps] == ends
    assert [(s.done, s.total) for s in steps] == [(k, 5) for k in range(1, 6)]
    assert report.computed == 5 and report.already_stored == 0
    flagged = flagged_ends(drift_scenes.sessions)
    assert sorted(flagged) == ends
    for end in ends:
        if end - DAY >= DRIFT_DAY:  # the window [Nov 25, Nov 26) and later
            assert flagged[end] >= SHIFTED, (end, flagged[end])
        else:
            assert not SHIFTED & flagged[end], (end, flagged[end])
    # The first flagged window of the shifted checks is the drift day's.
    first = min(e for e in ends if flagged[e] >= SHIFTED)
    assert first - DAY == DRIFT_DAY

    # A rerun skips every stored window and changes nothing.
    before = rows(drift_scenes.sessions)
    again = backfill_drift(drift_scenes.sessions, settings, clock, FIRST, FIRST + 5 * DAY)
    assert (again.computed, again.already_stored) == (0, 5)
    assert rows(drift_scenes.sessions) == before


def test_backfilled_window_matches_the_scheduled_run(sqlite_drift_scenes: DriftScenes) -> None:
    days_of_production(sqlite_drift_scenes, 2, 40)
    settings = production_reference(windows=("1d",))
    sessions = sqlite_drift_scenes.sessions
    run_drift(sessions, settings, ManualClock(FIRST + DAY + timedelta(hours=3)))
    scheduled = rows(sessions)
    with sessions.begin() as s:
        s.execute(delete(DriftResultRow))
    backfill_drift(sessions, settings, ManualClock(FIRST + 9 * DAY), FIRST, FIRST + DAY)
    assert rows(sessions) == scheduled and scheduled


def test_scheduled_job_catches_up_missed_windows_bounded_per_run(
    sqlite_drift_scenes: DriftScenes,
) -> None:
    days_of_production(sqlite_drift_scenes, 5, 30)
    sessions = sqlite_drift_scenes.sessions
    settings = production_reference(windows=("1d",), catch_up_windows=2)
    clock = ManualClock(FIRST + DAY + timedelta(hours=1))
    run_drift(sessions, settings, clock)  # stores the window ending FIRST + 1d
    clock.advance(4 * DAY)  # down for four days: windows ending +2d..+5d are owed
    first = run_drift(sessions, settings, clock)
    assert sorted({c.window_end for c in first.checks}) == [FIRST + 2 * DAY, FIRST + 3 * DAY]
    assert first.windows_behind == 2
    second = run_drift(sessions, settings, clock)
    assert sorted({c.window_end for c in second.checks}) == [FIRST + 4 * DAY, FIRST + 5 * DAY]
    assert second.windows_behind == 0
    assert sorted(flagged_ends(sessions)) == [FIRST + k * DAY for k in range(1, 6)]
    # Caught up: the next run recomputes the latest window only.
    third = run_drift(sessions, settings, clock)
    assert {c.window_end for c in third.checks} == {FIRST + 5 * DAY}


def test_plan_rejects_bad_ranges_naming_the_values() -> None:
    with pytest.raises(InvalidInputError, match="2026-11-23T00:00:00\\+00:00 is not before"):
        plan_windows(["1d"], FIRST + DAY, FIRST, 10)
    with pytest.raises(InvalidInputError, match="holds 48 windows .*cap of 10"):
        plan_windows(["1h"], FIRST, FIRST + 2 * DAY, 10)
    assert len(plan_windows(["1h"], FIRST, FIRST + 2 * DAY, 48)) == 48


def _stored_windows(url: str) -> int:
    engine = make_engine(url)
    try:
        with session_factory(engine)() as s:
            return int(s.scalar(select(func.count(func.distinct(DriftResultRow.window_end)))) or 0)
    finally:
        engine.dispose()


def test_kill_9_midway_and_rerun_give_the_rows_of_an_uninterrupted_run(
    database_url: str, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    """SQLite and PostgreSQL: the CLI backfill is killed after some windows, then rerun."""
    scenes = DriftScenes(sessions)
    scenes.production(60, REFERENCE)
    scenes.production(24 * 30, (FIRST, FIRST + DAY))  # 30 images in each hour of one day
    config = tmp_path / "segmon.yaml"
    config.write_text(
        "drift:\n"
        f"  reference: {{start: {REFERENCE[0].isoformat()}, end: {REFERENCE[1].isoformat()}}}\n"
        "  windows: [1h]\n"
        "  min_samples: 20\n"
    )
    env = {**os.environ, "SEGMON_DATABASE_URL": database_url, "PYTHONPATH": str(REPO)}
    args = [
        sys.executable,
        "-m",
        "monitor",
        "--config",
        str(config),
        "drift",
        "--from",
        FIRST.isoformat(),
        "--to",
        (FIRST + DAY).isoformat(),
        "--json",
    ]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while _stored_windows(database_url) < 3 and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    killed_at = _stored_windows(database_url)
    assert 3 <= killed_at < 24, killed_at  # stopped midway, whole windows only

    done = subprocess.run(args, env=env, capture_output=True, text=True, check=True)
    assert '"already_stored_windows": ' + str(killed_at) in done.stdout, done.stdout
    resumed = rows(sessions)
    assert _stored_windows(database_url) == 24

    with sessions.begin() as s:
        s.execute(delete(DriftResultRow))
    subprocess.run(args, env=env, capture_output=True, check=True)
    assert rows(sessions) == resumed
