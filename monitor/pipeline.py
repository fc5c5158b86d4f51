"""The jobs ``segmon run`` schedules, built from the settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import Clock
from monitor.config import Settings
from monitor.drift import run_drift
from monitor.ingest import ingest_log
from monitor.jobs import HasCounts
from monitor.scheduler import JobSpec


@dataclass
class IngestAllReport(HasCounts):
    """Ingest counts of every configured source."""

    sources: dict[str, dict[str, Any]] = field(default_factory=dict)

    def counts(self) -> dict[str, Any]:
        """Return the per-source counts."""
        return {"sources": self.sources}


def ingest_sources(
    sessions: sessionmaker[Session], settings: Settings, clock: Clock
) -> IngestAllReport:
    """Ingest what is new in every configured source, one after another."""
    report = IngestAllReport()
    for uri in settings.sources:
        report.sources[uri] = ingest_log(sessions, uri, settings.ingest, clock).counts()
    return report


def build_jobs(sessions: sessionmaker[Session], settings: Settings, clock: Clock) -> list[JobSpec]:
    """Return the scheduled jobs for these settings."""
    grace = timedelta(seconds=settings.schedule.misfire_grace_s)
    return [
        JobSpec(
            "ingest",
            timedelta(seconds=settings.schedule.ingest_s),
            lambda: ingest_sources(sessions, settings, clock),
            grace,
        ),
        JobSpec(
            "drift",
            timedelta(seconds=settings.schedule.drift_s),
            lambda: run_drift(sessions, settings.drift, clock),
            grace,
        ),
    ]
