"""Prometheus metrics computed from the database at scrape time.

One custom collector (prometheus-client's ``Collector`` protocol): each scrape runs a
handful of aggregate queries and yields fresh metric families, so every replica serves
the same numbers and nothing is lost on restart. Names, help texts and labels come from
:mod:`monitor.metrics_catalog`. Counters derived from stored rows (samples ingested,
rejected, job runs) only grow, since rows are never deleted.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from monitor import metrics_catalog as cat
from monitor.clock import Clock
from monitor.config import Settings
from monitor.models import JobRun, RunStatus, Sample, SampleStatus, Source
from monitor.samplelog import QuarantineReason

Family = CounterMetricFamily | GaugeMetricFamily


def family(name: str) -> Family:
    """Return an empty metric family for a catalog entry."""
    spec = cat.metric(name)
    kind = CounterMetricFamily if spec.kind == "counter" else GaugeMetricFamily
    return kind(spec.name, spec.help, labels=list(spec.labels))


def _ingest(session: Session) -> Iterator[Family]:
    ingested = family(cat.SAMPLES_INGESTED)
    rows = session.execute(
        select(Source.uri, func.count(Sample.id))
        .outerjoin(Sample, (Sample.source_id == Source.id) & (Sample.status == SampleStatus.OK))
        .group_by(Source.uri)
    )
    for uri, count in rows:
        ingested.add_metric([uri], float(count))
    yield ingested
    rejected = family(cat.SAMPLES_REJECTED)
    counts = dict(
        session.execute(
            select(Sample.quarantine_reason, func.count())
            .where(Sample.status == SampleStatus.QUARANTINED)
            .group_by(Sample.quarantine_reason)
        ).all()
    )
    for reason in QuarantineReason:  # every reason, 0 included, so rates start at 0
        rejected.add_metric([reason.value], float(counts.get(reason.value, 0)))
    yield rejected


def _jobs(session: Session, job_names: Sequence[str]) -> Iterator[Family]:
    runs = family(cat.JOB_RUNS)
    seen: dict[tuple[str, str], int] = {(job, s.value): 0 for job in job_names for s in RunStatus}
    for job, run_status, count in session.execute(
        select(JobRun.job, JobRun.status, func.count()).group_by(JobRun.job, JobRun.status)
    ):
        seen[(job, run_status.value)] = count
    for (job, status), count in sorted(seen.items()):
        runs.add_metric([job, status], float(count))
    yield runs
    last_success = family(cat.JOB_LAST_SUCCESS)
    for job, finished in session.execute(
        select(JobRun.job, func.max(JobRun.finished_at))
        .where(JobRun.status == RunStatus.SUCCESS)
        .group_by(JobRun.job)
        .order_by(JobRun.job)
    ):
        if finished is not None:  # max() keeps the column type: aware UTC
            last_success.add_metric([job], finished.timestamp())
    yield last_success
    duration = family(cat.JOB_DURATION)
    latest = (
        select(JobRun.job, func.max(JobRun.id).label("id"))
        .where(JobRun.finished_at.is_not(None))
        .group_by(JobRun.job)
        .subquery()
    )
    for run in session.scalars(
        select(JobRun).join(latest, JobRun.id == latest.c.id).order_by(JobRun.job)
    ):
        assert run.finished_at is not None
        duration.add_metric([run.job], (run.finished_at - run.started_at).total_seconds())
    yield duration


class DatabaseCollector(Collector):
    """Collects segmon's metrics from the database on every scrape."""

    def __init__(self, sessions: sessionmaker[Session], settings: Settings, clock: Clock) -> None:
        self.sessions = sessions
        self.settings = settings
        self.clock = clock
        self.job_names: tuple[str, ...] = ("ingest",)

    def describe(self) -> Iterable[Metric]:
        """Return the families without samples (so registering runs no query)."""
        return [family(name) for name in self._names()]

    @staticmethod
    def _names() -> tuple[str, ...]:
        return (
            cat.SAMPLES_INGESTED,
            cat.SAMPLES_REJECTED,
            cat.JOB_RUNS,
            cat.JOB_LAST_SUCCESS,
            cat.JOB_DURATION,
        )

    def collect(self) -> Iterable[Metric]:
        """Query the database and return fresh metric families."""
        with self.sessions() as session:
            return [*_ingest(session), *_jobs(session, self.job_names)]
