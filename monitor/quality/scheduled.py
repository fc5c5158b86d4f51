"""The scheduled evaluate job: score what arrived since the last run, per model version.

``segmon run`` runs :func:`evaluate_scheduled` every ``schedule.evaluate_s`` seconds
(``segmon evaluate --scheduled`` runs it once by hand). Each run covers what arrived in
``(since, through]``, where ``through`` is the run's start (the clock's now) and
``since`` is the ``through`` of the previous successful scheduled run (read back from
``job_runs.counts``, so it survives restarts and moves between replicas):

- golden requests (production samples whose image is a holdout image) **ingested** in
  that span, scored against every holdout by
  :func:`~monitor.quality.job.golden_predictions`;
- labelled production samples whose labels were **imported** (queue item closed as
  labeled) or **accepted** after review in that span, scored against the labelled
  dataset by :func:`~monitor.quality.job.labelled_predictions`.

So each arrival is scored once, by the first run after it; a run with nothing new
stores nothing. Every ``schedule.evaluate_full_s`` (and on the first run ever) the run
is a **full re-score** of everything that arrived up to ``through``. Results are stored
as ``quality_results`` rows (one per dataset, model version and IoU threshold) stamped
with the run's id and ``computed_at = through``, all in one transaction, so a run that
fails stores nothing and the next one covers its span. ``prediction_source`` says what
a row covers: ``production`` for a full re-score (as ``segmon evaluate`` writes),
``production:arrived:SINCE/THROUGH`` for what arrived in a span. The IoU thresholds are
those of the configured holdout-quality SLOs (0.5 without one), so their SLI events and
the quality metrics read the new rows as they read any evaluation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import Clock
from monitor.errors import InvalidInputError
from monitor.jobs.names import JobName
from monitor.quality.evaluation import QualityReport
from monitor.quality.job import (
    Holdout,
    PredictionSet,
    golden_predictions,
    labelled_predictions,
    load_holdout,
    score_predictions,
    store_report,
)
from monitor.slo.spec import QualitySLI, SLOSpec
from monitor.storage.schema import Dataset, DatasetImage, JobRun, QueueItem, QueueState, RunStatus
from monitor.storage.trusted import LABELLED_KIND

__all__ = [
    "EvaluateMode",
    "ScheduledEvaluation",
    "Watermark",
    "arrived_source",
    "evaluate_scheduled",
    "holdout_thresholds",
    "last_watermark",
]

EvaluateMode = Literal["incremental", "full"]

SCHEDULED_KEY = "scheduled"
"""The key of ``job_runs.counts`` that marks a scheduled evaluate run and holds its span."""


@dataclass(frozen=True)
class Watermark:
    """Where the previous successful scheduled evaluate runs left off.

    ``through``: the end of the last run's span (None: no run yet); ``last_full``: the
    end of the last full re-score's span.
    """

    through: datetime | None = None
    last_full: datetime | None = None

    def mode(self, now: datetime, full_every: timedelta) -> EvaluateMode:
        """Return the mode of a run starting at ``now``: full when one is due.

        Examples
        --------
        >>> from datetime import UTC
        >>> t = datetime(2026, 11, 30, tzinfo=UTC)
        >>> Watermark().mode(t, timedelta(days=1))
        'full'
        >>> Watermark(t, t).mode(t + timedelta(hours=1), timedelta(days=1))
        'incremental'
        >>> Watermark(t, t).mode(t + timedelta(days=1), timedelta(days=1))
        'full'
        """
        if self.through is None or self.last_full is None or now - self.last_full >= full_every:
            return "full"
        return "incremental"


def arrived_source(since: datetime, through: datetime) -> str:
    """Return the ``prediction_source`` of what arrived in ``(since, through]``.

    Examples
    --------
    >>> from datetime import UTC
    >>> t = datetime(2026, 11, 30, tzinfo=UTC)
    >>> arrived_source(t, t + timedelta(hours=1))
    'production:arrived:2026-11-30T00:00:00+00:00/2026-11-30T01:00:00+00:00'
    """
    return f"production:arrived:{since.isoformat()}/{through.isoformat()}"


def holdout_thresholds(slos: Iterable[SLOSpec]) -> tuple[float, ...]:
    """Return the IoU thresholds of the holdout-quality SLOs, sorted (``(0.5,)`` for none).

    Examples
    --------
    >>> from monitor.slo.spec import default_slos
    >>> holdout_thresholds(default_slos())
    (0.5,)
    >>> holdout_thresholds([])
    (0.5,)
    """
    found = {
        s.sli.iou_threshold
        for s in slos
        if isinstance(s.sli, QualitySLI) and s.sli.source == "holdout"
    }
    return tuple(sorted(found)) or (0.5,)


def last_watermark(session: Session) -> Watermark:
    """Read the spans of the previous successful scheduled evaluate runs from ``job_runs``.

    Runs of ``segmon evaluate --holdout`` share the job name but carry no span; they
    are skipped.
    """
    runs = session.scalars(
        select(JobRun)
        .where(JobRun.job == str(JobName.EVALUATE), JobRun.status == RunStatus.SUCCESS)
        .order_by(JobRun.started_at.desc(), JobRun.id.desc())
    )
    through: datetime | None = None
    for run in runs:
        span = (run.counts or {}).get(SCHEDULED_KEY)
        if not isinstance(span, dict):
            continue
        end = datetime.fromisoformat(span["through"])
        if through is None:
            through = end
        if span.get("mode") == "full":
            return Watermark(through, end)
    return Watermark(through, None)


@dataclass
class ScheduledEvaluation:
    """What one scheduled evaluate run stored."""

    mode: EvaluateMode
    since: datetime | None
    through: datetime
    results: list[tuple[int, str, PredictionSet, QualityReport]] = field(default_factory=list)
    """(quality result id, dataset name, predictions, report) of every stored row."""

    def counts(self) -> dict[str, Any]:
        """Return the counts for the job-run row (they carry the span) and ``--json``."""
        return {
            SCHEDULED_KEY: {
                "mode": self.mode,
                "since": None if self.since is None else self.since.isoformat(),
                "through": self.through.isoformat(),
            },
            "results": [
                {
                    "quality_result_id": result_id,
                    "dataset": dataset,
                    "model_version": preds.model_version,
                    "source": preds.source,
                    "iou_threshold": report.iou_threshold,
                    "images": len(preds.image_ids),
                    "ap": report.coco.ap,
                    "mean_iou": report.overall.mean_iou,
                    "precision": report.overall.precision,
                    "recall": report.overall.recall,
                }
                for result_id, dataset, preds, report in self.results
            ],
        }


def _restricted(holdout: Holdout, image_ids: set[int]) -> Holdout:
    return dataclasses.replace(
        holdout,
        images={i: img for i, img in holdout.images.items() if i in image_ids},
        ground_truth=tuple(g for g in holdout.ground_truth if g.image_id in image_ids),
    )


def _labelled_arrivals(
    session: Session, holdout: Holdout, since: datetime | None, through: datetime
) -> set[int]:
    """Images of the labelled dataset whose labels were imported or accepted in the span."""

    def within(column: Any) -> Any:
        return column <= through if since is None else and_(column > since, column <= through)

    arrived = select(QueueItem.sample_id).where(
        QueueItem.state == QueueState.LABELED,
        or_(
            within(QueueItem.closed_at),
            and_(QueueItem.review_decision == "accepted", within(QueueItem.reviewed_at)),
        ),
    )
    found = session.scalars(
        select(DatasetImage.id).where(
            DatasetImage.dataset_id == holdout.dataset_id, DatasetImage.sample_id.in_(arrived)
        )
    )
    return set(found) & set(holdout.images)  # load_holdout kept the trusted ones


def _prediction_sets(
    session: Session, holdout: Holdout, since: datetime | None, through: datetime, source: str
) -> tuple[Holdout, list[PredictionSet]]:
    if holdout.kind == LABELLED_KIND:
        holdout = _restricted(holdout, _labelled_arrivals(session, holdout, since, through))
        sets = labelled_predictions(session, holdout)
    else:
        sets = golden_predictions(session, holdout, ingested=(since, through))
    return holdout, [dataclasses.replace(p, source=source) for p in sets]


def evaluate_scheduled(
    sessions: sessionmaker[Session],
    clock: Clock,
    *,
    full_every: timedelta,
    iou_thresholds: Sequence[float] = (0.5,),
    full: bool = False,
    run_id: int | None = None,
) -> ScheduledEvaluation:
    """Score what arrived since the last scheduled run (or everything, when a full one is due).

    Parameters
    ----------
    sessions
        Session factory.
    clock
        Its now ends the span this run covers and stamps the stored results.
    full_every
        A full re-score runs when the last one ended at least this long ago.
    iou_thresholds
        One result per dataset, model version and threshold.
    full
        Re-score everything now, whether or not one is due.
    run_id
        The job run that writes the results (``quality_results.run_id``).
    """
    bad = [t for t in iou_thresholds if not 0.0 < t <= 1.0]
    if bad or not iou_thresholds:
        raise InvalidInputError(f"iou_thresholds must be in (0, 1], got {list(iou_thresholds)}")
    through = clock.now()
    with sessions() as session:
        mark = last_watermark(session)
        mode: EvaluateMode = "full" if full else mark.mode(through, full_every)
        since = None if mode == "full" else mark.through
        source = "production" if since is None else arrived_source(since, through)
        names = list(session.scalars(select(Dataset.name).order_by(Dataset.id)))
        scored: list[tuple[Holdout, PredictionSet]] = []
        for name in names:
            holdout, sets = _prediction_sets(
                session, load_holdout(session, name), since, through, source
            )
            scored.extend((holdout, preds) for preds in sets)
    out = ScheduledEvaluation(mode, since, through)
    reports = [
        (holdout, preds, score_predictions(holdout, preds, threshold))
        for holdout, preds in scored
        for threshold in iou_thresholds
    ]
    with sessions.begin() as session:  # all or nothing: a failed run leaves its span open
        for holdout, preds, report in reports:
            row = store_report(
                session, holdout, preds, report, clock, run_id=run_id, computed_at=through
            )
            out.results.append((row.id, holdout.name, preds, report))
    return out
