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
    counts were matched at that threshold).
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
    DriftResultRow,
    QualityResult,
    Sample,
    ShadowClassScore,
    ShadowScore,
)

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
        .where(
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
    stmt: _Query
    if isinstance(sli, QualitySLI):
        query = _shadow_query if sli.source == "shadow" else _holdout_query
        stmt = query(sli, start, now, arrived)
    elif isinstance(sli, DriftSLI):
        stmt = _drift_query(sli, start, now, arrived)
    else:
        raise InvalidInputError(
            f"SLO {spec.name!r} has a {sli.kind} SLI: Prometheus computes it from the "
            "inference service's metrics, segmon has no events for it"
        )
    # The range condition on the event time excludes NULL times; the check is for mypy.
    rows = [(t, n, b) for t, n, b in session.execute(stmt) if t is not None]
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
