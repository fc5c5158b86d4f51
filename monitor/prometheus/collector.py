"""Prometheus metrics computed from the database at scrape time.

One custom collector (prometheus-client's ``Collector`` protocol): each scrape runs a
handful of aggregate queries and yields fresh metric families, so every replica serves
the same numbers and nothing is lost on restart. Names, help texts and labels come from
:mod:`monitor.prometheus.catalog`. Counters derived from stored rows (samples ingested,
rejected, job runs) only grow, since rows are never deleted.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from prometheus_client.core import Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import Clock
from monitor.config import Settings
from monitor.errors import QuarantineReason
from monitor.jobs.names import JobName
from monitor.prometheus import catalog as cat
from monitor.prometheus.canary_families import canary_families
from monitor.prometheus.families import (
    MetricFamily,
    drift_families,
    family,
    quality_families,
    queue_families,
    shadow_families,
    slo_families,
)
from monitor.storage.schema import (
    JobRun,
    QuarantineHistory,
    RunStatus,
    Sample,
    SampleStatus,
    Source,
)

__all__ = ["DatabaseCollector", "MetricFamily", "family"]


def _ingest(session: Session) -> Iterator[MetricFamily]:
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
    # a quarantine a corrected line replaced still counts: the counter never goes down
    replaced = dict(
        session.execute(
            select(QuarantineHistory.reason, func.count()).group_by(QuarantineHistory.reason)
        ).all()
    )
    for reason in QuarantineReason:  # every reason, 0 included, so rates start at 0
        total = counts.get(reason.value, 0) + replaced.get(reason.value, 0)
        rejected.add_metric([reason.value], float(total))
    yield rejected


def _jobs(session: Session, job_names: Sequence[JobName]) -> Iterator[MetricFamily]:
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
    """Collects every family of :data:`monitor.prometheus.catalog.CATALOG` on each scrape.

    Parameters
    ----------
    sessions
        Session factory of the database.
    settings
        The SLOs come from ``settings.slos``.
    clock
        ``now`` of the SLO windows and of the shadow-agreement window.
    job_names
        Jobs whose run counters are exported even before their first run.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: Settings,
        clock: Clock,
        job_names: Sequence[JobName] = (JobName.INGEST,),
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.clock = clock
        self.job_names: tuple[JobName, ...] = tuple(job_names)

    def describe(self) -> Iterable[Metric]:
        """Return the families without samples (so registering runs no query)."""
        return [family(m.name) for m in cat.CATALOG]

    def collect(self) -> Iterable[Metric]:
        """Query the database and return fresh metric families, in catalog order."""
        now = self.clock.now()
        with self.sessions() as session:
            found = [
                *_ingest(session),
                *_jobs(session, self.job_names),
                *drift_families(session),
                *quality_families(session),
                *shadow_families(session, now),
                *slo_families(session, self.settings.slos, now),
                *queue_families(session, now, self.settings.queue.daily_budget),
                *canary_families(session),
            ]
        order = {m.name: i for i, m in enumerate(cat.CATALOG)}
        return sorted(found, key=lambda f: order[_family_name(f)])


def _family_name(metric: Metric) -> str:
    # prometheus-client strips ``_total`` from counter family names.
    return f"{metric.name}_total" if metric.type == "counter" else metric.name
