"""Quality per capture window: golden requests of each window of a past period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import ManualClock
from monitor.config import IngestSettings
from monitor.errors import InvalidInputError
from monitor.ingest.holdout import import_holdout
from monitor.ingest.job import ingest_log
from monitor.quality.windows import evaluate_windows
from monitor.storage.schema import QualityResult
from monitor.synth import SynthConfig, generate_scenes

START = datetime(2026, 11, 23, tzinfo=UTC)
DAY = timedelta(days=1)
CLOCK = ManualClock(START + 10 * DAY)


def test_each_window_scores_its_own_golden_requests_once(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    """SQLite and PostgreSQL: 12 golden requests 4 h apart make two daily windows of 6."""
    scenes = tmp_path / "scenes"
    generate_scenes(
        scenes, SynthConfig(n_images=12, seed=3, size=96, start=START, interval_s=4 * 3600)
    )
    import_holdout(sessions, scenes / "annotations.json", scenes / "images", "h", CLOCK)
    ingest_log(sessions, str(scenes), IngestSettings(), CLOCK)
    # The period ends mid-day: only whole windows inside it count (Nov 24 is cut).
    report = evaluate_windows(sessions, "h", CLOCK, START, START + DAY + DAY / 2)
    assert report.windows == 1
    assert [(r["window_end"], r["images"]) for r in report.per_window] == [
        ((START + DAY).isoformat(), 6)
    ]
    report = evaluate_windows(sessions, "h", CLOCK, START, START + 2 * DAY)
    assert (report.windows, report.already_stored) == (2, 1)
    assert [(r["window_end"], r["images"]) for r in report.per_window] == [
        ((START + 2 * DAY).isoformat(), 6)
    ]
    with sessions() as s:
        stored = s.scalars(select(QualityResult).order_by(QualityResult.computed_at)).all()
        assert [(r.computed_at, r.n_images, r.prediction_source) for r in stored] == [
            (
                START + DAY,
                6,
                f"production:{START.isoformat()}/{(START + DAY).isoformat()}",
            ),
            (
                START + 2 * DAY,
                6,
                f"production:{(START + DAY).isoformat()}/{(START + 2 * DAY).isoformat()}",
            ),
        ]
    again = evaluate_windows(sessions, "h", CLOCK, START - DAY, START + 2 * DAY)
    assert (again.windows, again.already_stored, again.without_golden) == (3, 2, 1)
    assert again.per_window == []


def test_window_counts_are_capped(sqlite_sessions: sessionmaker[Session]) -> None:
    with pytest.raises(InvalidInputError, match="holds 48 windows .* cap of 10"):
        evaluate_windows(
            sqlite_sessions, "h", CLOCK, START, START + 2 * DAY, window="1h", max_windows=10
        )
