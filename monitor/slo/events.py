"""SLI events of one SLO, read from the database over event time.

Each SLI kind reads its own results table and aggregates in SQL, one row per distinct
event time (so the numbers leaving the database grow with the number of event times,
not of instances); :func:`monitor.slo.burn.slo_status` then windows them.

``quality``, ``source: shadow``
    From ``shadow_class_scores`` joined to ``shadow_scores`` and the sample; the event
    time is ``samples.captured_at``. Per class row: events = ``matched +
    production_only + reference_only``; bad = matched pairs whose IoU (from ``ious``)
    is below the SLO's threshold + ``production_only`` + ``reference_only``. With a
    ``class_name`` only that class's rows count. Every reference model's scores count.
``quality``, ``source: holdout``
    From ``class_quality`` of **every** stored evaluation (not only the latest per model
    version): each evaluation is a batch of events at its ``quality_results.computed_at``,
    so the windows hold the evaluations run in them and the period averages all of them.
    Events = true positives + false positives + false negatives, bad = false positives
    + false negatives. Only evaluations made at the SLO's IoU threshold count (their
    counts were matched at that threshold). Evaluations of the dataset of labelled
    production samples (kind ``labelled``) are left out here: those samples count once,
    at their own capture times, as below.

    Plus the labelled production samples (labels returned from the annotation queue,
    ``segmon queue import``): from ``label_outcomes`` joined to the sample; the event
    time is ``samples.captured_at``, so labels that arrive days later still land in the
    window the prediction was made in. Per class row (production's instances matched
    one-to-one to the labels within the class, maximising IoU): a matched pair at IoU
    >= the SLO's threshold is one good event (a true positive); a pair below it is two
    bad events (a false positive and a miss, as the evaluator counts it); each
    ``production_only`` (false positive) and ``label_only`` (miss) is one bad event.
    So events = pairs + pairs below + production_only + label_only, bad = 2 x pairs
    below + production_only + label_only. Samples whose labels are flagged for review
    and not accepted are left out (:func:`monitor.storage.trusted.trusted_sample`).
``drift``
    From ``drift_results`` of the SLO's feature family: one event per check at its
    ``window_end``, bad when it flagged drift.

Rows whose result was computed after ``now`` are left out (they had not arrived yet),
as are events outside the SLO's longest window or after ``now``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Float, FunctionElement, Integer, Select, case, func, literal, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler

from detectors._typing import Float64Array, Int64Array
from monitor.errors import InvalidInputError
from monitor.slo.burn import SLOStatus, slo_status
from monitor.slo.duration import parse_duration, slo_windows
from monitor.slo.history import SLOHistory, history_steps, slo_history
from monitor.slo.policy import DEFAULT_POLICY, AlertPolicy
from monitor.slo.spec import DriftSLI, QualitySLI, SLOSpec
from monitor.storage.schema import (
    Category,
    ClassQualityRow,
    Dataset,
    DriftResultRow,
    LabelOutcome,
    QualityResult,
    Sample,
    ShadowClassScore,
    ShadowScore,
)
from monitor.storage.trusted import LABELLED_KIND, trusted_sample

_Query = Select[datetime | None, int, int]

__all__ = [
    "SLIEvents",
    "read_sli_events",
    "read_slo_history",
    "read_slo_status",
    "read_slo_statuses",
]

_THRESHOLD_TOLERANCE = 1e-9


@dataclass(frozen=True)
class SLIEvents:
    """Events of one SLO, aggregated per distinct event time.

    Attributes
    ----------
    slo
        SLO name.
    event_times
        Distinct event times, epoch seconds, ascending.
    total, bad
        Events and bad events at each time.

    Examples
    --------
    >>> e = SLIEvents("q", np.array([0.0, 60.0]), np.array([3, 2]), np.array([1, 0]))
    >>> e.n_events, int(e.bad.sum())
    (5, 1)
    """

    slo: str
    event_times: Float64Array
    total: Int64Array
    bad: Int64Array

    @property
    def n_events(self) -> int:
        """All events read."""
        return int(self.total.sum())


class _CountBelow(FunctionElement[int]):
    """``count`` of the numbers in a JSON array column that are below a threshold."""

    type = Integer()
    name = "count_below"
    inherit_cache = True


@compiles(_CountBelow, "sqlite")
def _count_below_sqlite(element: _CountBelow, compiler: SQLCompiler, **kw: Any) -> str:
    column, threshold = (compiler.process(c, **kw) for c in element.clauses)
    return f"(SELECT count(*) FROM json_each({column}) WHERE json_each.value < {threshold})"


@compiles(_CountBelow, "postgresql")
def _count_below_postgresql(element: _CountBelow, compiler: SQLCompiler, **kw: Any) -> str:
    column, threshold = (compiler.process(c, **kw) for c in element.clauses)
    return (
        f"(SELECT count(*) FROM json_array_elements_text({column}) AS iou(v) "
        f"WHERE CAST(iou.v AS DOUBLE PRECISION) < {threshold})"
    )


def _shadow_query(
    sli: QualitySLI, start: datetime, now: datetime, arrived: datetime | None
) -> _Query:
    row = ShadowClassScore
    below = _CountBelow(row.ious, literal(sli.iou_threshold, Float()))
    outside = row.production_only + row.reference_only
    stmt = (
        select(
            Sample.captured_at,
            func.sum(row.matched + outside),
            func.sum(below + outside),
        )
        .select_from(row)
        .join(ShadowScore, ShadowScore.id == row.shadow_score_id)
        .join(Sample, Sample.id == ShadowScore.sample_id)
        .where(Sample.captured_at > start, Sample.captured_at <= now)
        .group_by(Sample.captured_at)
        .order_by(Sample.captured_at)
    )
    if sli.class_name is not None:
        stmt = stmt.join(Category, Category.id == row.category_id).where(
            Category.name == sli.class_name
        )
    if arrived is not None:
        stmt = stmt.where(ShadowScore.computed_at <= arrived)
    return stmt


def _holdout_query(
    sli: QualitySLI, start: datetime, now: datetime, arrived: datetime | None
) -> _Query:
    row = ClassQualityRow
    bad = row.false_positives + row.false_negatives
    stmt = (
        select(QualityResult.computed_at, func.sum(row.true_positives + bad), func.sum(bad))
        .select_from(row)
        .join(QualityResult, QualityResult.id == row.quality_result_id)
        .join(Dataset, Dataset.id == QualityResult.dataset_id)
        .where(
            Dataset.kind != LABELLED_KIND,
            QualityResult.computed_at > start,
            QualityResult.computed_at <= now,
            QualityResult.iou_threshold.between(
                sli.iou_threshold - _THRESHOLD_TOLERANCE, sli.iou_threshold + _THRESHOLD_TOLERANCE
            ),
        )
        .group_by(QualityResult.computed_at)
        .order_by(QualityResult.computed_at)
    )
    if sli.class_name is not None:
        stmt = stmt.where(row.class_name == sli.class_name)
    return stmt


def _labelled_query(
    sli: QualitySLI, start: datetime, now: datetime, arrived: datetime | None
) -> _Query:
    row = LabelOutcome
    below = _CountBelow(row.ious, literal(sli.iou_threshold, Float()))
    pairs = func.json_array_length(row.ious)
    unmatched = row.production_only + row.label_only
    stmt = (
        select(
            Sample.captured_at,
            func.sum(pairs + below + unmatched),
            func.sum(2 * below + unmatched),
        )
        .select_from(row)
        .join(Sample, Sample.id == row.sample_id)
        .where(
            Sample.captured_at > start,
            Sample.captured_at <= now,
            trusted_sample(row.sample_id),
        )
        .group_by(Sample.captured_at)
        .order_by(Sample.captured_at)
    )
    if sli.class_name is not None:
        stmt = stmt.join(Category, Category.id == row.category_id).where(
            Category.name == sli.class_name
        )
    if arrived is not None:
        stmt = stmt.where(row.computed_at <= arrived)
    return stmt


def _drift_query(sli: DriftSLI, start: datetime, now: datetime, arrived: datetime | None) -> _Query:
    row = DriftResultRow
    stmt = (
        select(row.window_end, func.count(), func.sum(case((row.drift_detected, 1), else_=0)))
        .where(row.family == sli.feature_family, row.window_end > start, row.window_end <= now)
        .group_by(row.window_end)
        .order_by(row.window_end)
    )
    if arrived is not None:
        stmt = stmt.where(row.computed_at <= arrived)
    return stmt


def _aware(now: datetime) -> datetime:
    return (now if now.tzinfo is not None else now.replace(tzinfo=UTC)).astimezone(UTC)


def _longest_window(spec: SLOSpec) -> timedelta:
    return max(parse_duration(w) for w in slo_windows(spec.period))


def read_sli_events(
    session: Session,
    spec: SLOSpec,
    now: datetime,
    *,
    since: datetime | None = None,
    late: bool = False,
) -> SLIEvents:
    """Read the events of ``spec`` from the database, aggregated per event time.

    Parameters
    ----------
    session
        An open session.
    spec
        A quality or drift SLO (``spec.computed_by_segmon``).
    now
        End of the windows; events after it, or computed after it, are left out.
    since
        Start of the events read (default: ``now`` less the SLO's longest window).
    late
        Also read results computed after ``now`` (a look back over history computed
        later: backfilled drift windows, late shadow scores).

    Returns
    -------
    SLIEvents
        Events inside the SLO's longest window ending at ``now``.

    Raises
    ------
    InvalidInputError
        For an availability or latency SLO: Prometheus computes those from the
        inference service's metrics.
    """
    now = _aware(now)
    start = now - _longest_window(spec) if since is None else _aware(since)
    arrived = None if late else now
    sli = spec.sli
    stmts: list[_Query]
    if isinstance(sli, QualitySLI):
        if sli.source == "shadow":
            stmts = [_shadow_query(sli, start, now, arrived)]
        else:
            stmts = [
                _holdout_query(sli, start, now, arrived),
                _labelled_query(sli, start, now, arrived),
            ]
    elif isinstance(sli, DriftSLI):
        stmts = [_drift_query(sli, start, now, arrived)]
    else:
        raise InvalidInputError(
            f"SLO {spec.name!r} has a {sli.kind} SLI: Prometheus computes it from the "
            "inference service's metrics, segmon has no events for it"
        )
    merged: dict[datetime, tuple[int, int]] = {}
    for stmt in stmts:
        # The range condition on the event time excludes NULL times; the check is for mypy.
        for t, n, b in session.execute(stmt):
            if t is not None:
                at = _aware(t)
                seen, seen_bad = merged.get(at, (0, 0))
                merged[at] = (seen + int(n or 0), seen_bad + int(b or 0))
    rows = sorted((t, n, b) for t, (n, b) in merged.items())
    times = np.array([_aware(t).timestamp() for t, _, _ in rows], dtype=np.float64)
    total = np.array([int(n or 0) for _, n, _ in rows], dtype=np.int64)
    bad = np.array([int(b or 0) for _, _, b in rows], dtype=np.int64)
    return SLIEvents(spec.name, times, total, bad)


def read_slo_status(session: Session, spec: SLOSpec, now: datetime) -> SLOStatus:
    """Compute the status (every window, budget left) of one SLO from the database.

    Parameters
    ----------
    session
        An open session.
    spec
        A quality or drift SLO.
    now
        The evaluation instant.

    Returns
    -------
    SLOStatus
        As :func:`monitor.slo.burn.slo_status` computes it from the events.
    """
    events = read_sli_events(session, spec, now)
    return slo_status(spec, events.event_times, _aware(now), bad=events.bad, total=events.total)


def read_slo_statuses(session: Session, slos: Sequence[SLOSpec], now: datetime) -> list[SLOStatus]:
    """Compute the status of every SLO segmon computes itself (quality and drift).

    Availability and latency SLOs are skipped: Prometheus evaluates them.
    """
    return [read_slo_status(session, s, now) for s in slos if s.computed_by_segmon]


def read_slo_history(
    session: Session,
    spec: SLOSpec,
    start: datetime,
    end: datetime,
    step: timedelta,
    policy: AlertPolicy = DEFAULT_POLICY,
) -> SLOHistory:
    """Look back on one SLO: its windows as of every step in ``(start, end]`` and its alerts.

    Every stored result counts, also those computed later than the step (backfilled
    drift windows, late shadow scores): the history says what the alerts would have
    said had every result been there in time.

    Parameters
    ----------
    session
        An open session.
    spec
        A quality or drift SLO.
    start, end
        The period.
    step
        Time between evaluations (e.g. one hour).
    policy
        The page and ticket alerts (the generated rules' policy by default).
    """
    steps = history_steps(_aware(start), _aware(end), step)
    since = _aware(start) - _longest_window(spec)
    events = read_sli_events(session, spec, _aware(end), since=since, late=True)
    return slo_history(
        spec, events.event_times, steps, bad=events.bad, total=events.total, policy=policy
    )
