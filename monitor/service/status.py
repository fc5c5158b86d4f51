"""``segmon status``: counts and latest results, read from the database."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from monitor.config import ExecutorSettings
from monitor.jobs.names import JobName
from monitor.storage.schema import (
    Dataset,
    DatasetImage,
    GroundTruthInstance,
    JobRun,
    PredictedInstance,
    RunStatus,
    Sample,
    SampleStatus,
    Source,
)


@dataclass(frozen=True)
class JobSummary:
    """Runs of one job and how the last one ended."""

    job: str
    runs: int
    last_status: str
    last_started_at: str


@dataclass(frozen=True)
class Status:
    """What the database holds."""

    sources: int
    samples_ingested: int
    samples_quarantined: int
    quarantined_by_reason: dict[str, int]
    predicted_instances: int
    datasets: dict[str, dict[str, int]]
    job_runs: int
    jobs: list[JobSummary]
    executor: dict[str, Any] = field(default_factory=dict)
    """The configured executor (``kind``, ``address``) and, under ``last_runs``, the
    executor stats the latest embed and shadow runs recorded (workers, retries, ...)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def _executor(session: Session, executor: ExecutorSettings | None) -> dict[str, Any]:
    last_runs: dict[str, Any] = {}
    for job in (JobName.EMBED, JobName.SHADOW):
        counts = session.scalar(
            select(JobRun.counts)
            .where(JobRun.job == job.value, JobRun.status == RunStatus.SUCCESS)
            .order_by(JobRun.started_at.desc(), JobRun.id.desc())
            .limit(1)
        )
        if isinstance(counts, dict) and isinstance(counts.get("executor"), dict):
            last_runs[job.value] = counts["executor"]
    configured = {} if executor is None else {"kind": executor.kind, "address": executor.address}
    return {**configured, "last_runs": last_runs}


def read_status(session: Session, executor: ExecutorSettings | None = None) -> Status:
    """Count samples (by status and quarantine reason), instances, datasets and job runs.

    With ``executor`` (the settings), also say which executor is configured; the stats
    the latest embed and shadow runs recorded are read from their job runs.
    """
    by_status = dict(
        session.execute(select(Sample.status, func.count()).group_by(Sample.status)).all()
    )
    reasons = dict(
        session.execute(
            select(Sample.quarantine_reason, func.count())
            .where(Sample.status == SampleStatus.QUARANTINED)
            .group_by(Sample.quarantine_reason)
            .order_by(Sample.quarantine_reason)
        ).all()
    )
    datasets: dict[str, dict[str, int]] = {}
    for name, dataset_id in session.execute(
        select(Dataset.name, Dataset.id).order_by(Dataset.name)
    ):
        images = (
            session.scalar(select(func.count()).where(DatasetImage.dataset_id == dataset_id)) or 0
        )
        instances = (
            session.scalar(
                select(func.count())
                .select_from(GroundTruthInstance)
                .join(DatasetImage)
                .where(DatasetImage.dataset_id == dataset_id)
            )
            or 0
        )
        datasets[name] = {"images": images, "instances": instances}
    jobs: list[JobSummary] = []
    for job, runs in session.execute(
        select(JobRun.job, func.count()).group_by(JobRun.job).order_by(JobRun.job)
    ):
        last = session.scalars(
            select(JobRun)
            .where(JobRun.job == job)
            .order_by(JobRun.started_at.desc(), JobRun.id.desc())
        ).first()
        assert last is not None
        jobs.append(JobSummary(job, runs, last.status.value, last.started_at.isoformat()))
    return Status(
        sources=session.scalar(select(func.count()).select_from(Source)) or 0,
        samples_ingested=by_status.get(SampleStatus.OK, 0),
        samples_quarantined=by_status.get(SampleStatus.QUARANTINED, 0),
        quarantined_by_reason={str(k): v for k, v in reasons.items()},
        predicted_instances=session.scalar(select(func.count()).select_from(PredictedInstance))
        or 0,
        datasets=datasets,
        job_runs=sum(j.runs for j in jobs),
        jobs=jobs,
        executor=_executor(session, executor),
    )
