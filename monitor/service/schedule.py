"""The jobs ``segmon run`` schedules, built from the settings."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import Clock
from monitor.config import Settings
from monitor.drift.canary import run_canary
from monitor.drift.job import DriftReport, run_drift
from monitor.errors import SegmonError
from monitor.ingest.job import ingest_log
from monitor.jobs.executor import Executor, SharedExecutor, opened
from monitor.jobs.names import JobName
from monitor.jobs.scheduler import JobSpec
from monitor.quality.scheduled import evaluate_scheduled, holdout_thresholds
from monitor.queue.job import run_queue_job
from monitor.secrets import redact

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from monitor.embed.job import EmbedReport
    from monitor.model.protocol import Embedder, InstanceSegmenter
    from monitor.quality.shadow import ShadowReport


@dataclass
class IngestAllReport:
    """Ingest counts of every configured source, and the error of each that failed."""

    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def counts(self) -> dict[str, Any]:
        """Return the per-source counts."""
        return {"sources": self.sources, "errors": self.errors}


class SourcesFailedError(SegmonError, RuntimeError):
    """Some sources could not be ingested; the others were (``report`` has both)."""

    def __init__(self, report: IngestAllReport) -> None:
        failed = "; ".join(f"{uri!r}: {error}" for uri, error in report.errors.items())
        super().__init__(
            f"{len(report.errors)} of {len(report.errors) + len(report.sources)} sources "
            f"failed ({failed}); the others were ingested"
        )
        self.report = report


def ingest_sources(
    sessions: sessionmaker[Session], settings: Settings, clock: Clock
) -> IngestAllReport:
    """Ingest what is new in every configured source, each independently of the others.

    A source that fails (missing, unreadable, its database writes refused) does not keep
    the sources after it from being ingested; once all were tried, the failures are
    raised together, so the job run is recorded as failed, naming them.

    Raises
    ------
    SourcesFailedError
        If any source failed; its ``report`` holds the counts of the others.
    """
    report = IngestAllReport()
    access = settings.images.access()
    for uri in settings.sources:
        try:
            ingested = ingest_log(sessions, uri, settings.ingest, clock, access=access)
        except Exception as exc:  # one source's boundary
            report.errors[uri] = redact(f"{type(exc).__name__}: {exc}")
            log.warning("ingest of source %r failed: %s", uri, report.errors[uri])
            continue
        report.sources[uri] = ingested.counts()
    if report.errors:
        raise SourcesFailedError(report)
    return report


def load_reference_model(settings: Settings, batch_size: int = 16) -> InstanceSegmenter:
    """Load the configured reference model (``settings.models.reference``)."""
    from monitor.model.loading import load_reference

    categories = [c.name for c in settings.categories]
    return load_reference(settings.models.reference, categories, batch_size=batch_size)


def load_embedder_model(
    settings: Settings, reference: InstanceSegmenter | None = None, batch_size: int = 16
) -> Embedder:
    """Load the configured embedder (``settings.models.embedder``; unset: the reference).

    Given the loaded ``reference`` that the embedder turns out to be, the two share one
    forward pass per image (:func:`~monitor.model.loading.share_forward_pass`): the
    caller runs the shadow job with that reference in this process.
    """
    from monitor.model.loading import load_embedder, share_forward_pass

    categories = [c.name for c in settings.categories]
    embedder = load_embedder(settings.models, reference, categories, batch_size=batch_size)
    if reference is not None:
        share_forward_pass(reference, embedder)
    return embedder


class LazyModel:
    """The reference model and the embedder, each loaded on first use and then kept.

    Without ``models.embedder`` the embedder is the reference model, loaded once.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._model: InstanceSegmenter | None = None
        self._embedder: Embedder | None = None
        self._lock = threading.Lock()

    def _reference(self) -> InstanceSegmenter:
        if self._model is None:
            self._model = load_reference_model(self.settings)
        return self._model

    def get(self) -> InstanceSegmenter:
        """Return the reference model, loading it the first time."""
        with self._lock:
            return self._reference()

    def embedder(self) -> Embedder:
        """Return the embedder, loading it (or the reference it defaults to) the first time."""
        with self._lock:
            if self._embedder is None:
                reference = self._reference() if self.settings.models.embedder is None else None
                self._embedder = load_embedder_model(self.settings, reference)
            return self._embedder


def embed_job(
    sessions: sessionmaker[Session],
    settings: Settings,
    clock: Clock,
    model: Embedder,
    *,
    limit: int | None = None,
    batch_size: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    executor: Executor | None = None,
) -> EmbedReport:
    """Embed what is pending, with the configured batch size and limit unless given.

    Batches run on ``executor``, else on one opened from ``settings.executor`` for this
    run (a Dask cluster's workers load the configured embedder themselves, once each).
    """
    from monitor.embed.job import embed_pending
    from monitor.model.loading import embedder_recipe

    with opened(settings.executor, executor) as running:
        recipe = embedder_recipe(settings.models, _category_names(settings))
        return embed_pending(
            sessions,
            model,
            clock,
            batch_size=batch_size or settings.embed.batch_size,
            limit=limit if limit is not None else settings.embed.limit,
            progress=progress,
            access=settings.images.access(),
            executor=running,
            recipe=recipe if running.remote else None,
        )


def _category_names(settings: Settings) -> list[str]:
    return [c.name for c in settings.categories]


def shadow_job(
    sessions: sessionmaker[Session],
    settings: Settings,
    clock: Clock,
    model: InstanceSegmenter,
    *,
    limit: int | None = None,
    batch_size: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    executor: Executor | None = None,
) -> ShadowReport:
    """Shadow-score what is pending, with the configured settings unless given.

    Batches run on ``executor``, else on one opened from ``settings.executor`` for this
    run (a Dask cluster's workers load the configured reference model, once each).
    """
    from monitor.model.loading import reference_recipe
    from monitor.quality.shadow import shadow_pending

    with opened(settings.executor, executor) as running:
        recipe = reference_recipe(settings.models.reference, _category_names(settings))
        return shadow_pending(
            sessions,
            model,
            clock,
            min_iou=settings.shadow.min_iou,
            batch_size=batch_size or settings.shadow.batch_size,
            limit=limit if limit is not None else settings.shadow.limit,
            progress=progress,
            access=settings.images.access(),
            executor=running,
            recipe=recipe if running.remote else None,
        )


def drift_job(
    sessions: sessionmaker[Session],
    settings: Settings,
    clock: Clock,
    run_id: int | None = None,
    *,
    executor: Executor | None = None,
) -> DriftReport:
    """Run the drift job; the missing image properties are computed on the executor.

    Batches run on ``executor``, else on one opened from ``settings.executor`` for this
    run (no model: a cluster's workers only read the images).
    """
    with opened(settings.executor, executor) as running:
        return run_drift(
            sessions,
            settings.drift,
            clock,
            run_id=run_id,
            access=settings.images.access(),
            executor=running,
        )


def build_jobs(
    sessions: sessionmaker[Session],
    settings: Settings,
    clock: Clock,
    executor: SharedExecutor | None = None,
) -> list[JobSpec]:
    """Return the scheduled jobs for these settings.

    Embed, shadow and drift's image properties run their batches on ``executor`` (kept
    open between runs), else
    on one opened from ``settings.executor`` for each run.
    """

    def running() -> Executor | None:
        return executor.get() if executor is not None else None

    grace = timedelta(seconds=settings.schedule.misfire_grace_s)
    schedule = settings.schedule
    model = LazyModel(settings)
    jobs = [
        JobSpec(
            JobName.INGEST,
            timedelta(seconds=schedule.ingest_s),
            lambda _run: ingest_sources(sessions, settings, clock),
            grace,
        ),
        JobSpec(
            JobName.EMBED,
            timedelta(seconds=schedule.embed_s),
            lambda _run: embed_job(sessions, settings, clock, model.embedder(), executor=running()),
            grace,
        ),
        JobSpec(
            JobName.SHADOW,
            timedelta(seconds=schedule.shadow_s),
            lambda _run: shadow_job(sessions, settings, clock, model.get(), executor=running()),
            grace,
        ),
        JobSpec(
            JobName.DRIFT,
            timedelta(seconds=schedule.drift_s),
            lambda run_id: drift_job(sessions, settings, clock, run_id, executor=running()),
            grace,
        ),
        JobSpec(
            JobName.EVALUATE,
            timedelta(seconds=schedule.evaluate_s),
            lambda run_id: evaluate_scheduled(
                sessions,
                clock,
                full_every=timedelta(seconds=schedule.evaluate_full_s),
                iou_thresholds=holdout_thresholds(settings.slos),
                run_id=run_id,
            ),
            grace,
        ),
        JobSpec(
            JobName.QUEUE,
            timedelta(seconds=schedule.queue_s),
            lambda run_id: run_queue_job(sessions, settings, clock, run_id=run_id),
            grace,
        ),
    ]
    if settings.canary.enabled:
        jobs.append(
            JobSpec(
                JobName.CANARY,
                timedelta(seconds=schedule.canary_s),
                lambda run_id: run_canary(sessions, settings, clock, run_id),
                grace,
            )
        )
    return jobs
