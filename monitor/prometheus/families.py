"""Metric families of the results tables: drift, quality, shadow agreement, SLOs, queue.

Each function runs a few aggregate queries and returns catalog families (names, help
and labels from :mod:`monitor.prometheus.catalog`); :class:`monitor.prometheus.collector.DatabaseCollector`
calls them on every scrape. What each family shows:

- drift: the latest check (by ``window_end``, then id) per (family, feature, detector,
  class_name) — statistic, threshold, detected, and the p-value where there is one;
- quality: the latest evaluation (by ``computed_at``, then id) per model version —
  per-class mean IoU, AP and false positives per image, COCO's summary metrics, recall
  by object size and class confusions, the last three read from the stored report;
- shadow agreement: per class and model version, ``matched / (matched +
  production_only)`` over the samples captured in the last :data:`SHADOW_WINDOW`;
- SLOs: every window of every quality and drift SLO (:mod:`monitor.slo.events`);
- annotation queue: depth per state and per class, the oldest queued item's age, items
  labelled in the last day, the share of the daily budget used (:func:`queue_families`).

Undefined values (no ground truth, no match, an empty window) are left out rather than
exported as NaN.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Final

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from monitor.prometheus import catalog as cat
from monitor.queue.stats import queue_stats
from monitor.slo.events import read_slo_statuses
from monitor.slo.spec import SLOSpec
from monitor.storage.schema import (
    Category,
    ClassQualityRow,
    DriftResultRow,
    ModelVersion,
    QualityResult,
    QueueState,
    Sample,
    ShadowClassScore,
    ShadowScore,
)
from sampling.signals import SIGNALS

__all__ = [
    "COCO_SUMMARY",
    "QUEUE_REASONS",
    "QUEUE_STATES",
    "SHADOW_WINDOW",
    "MetricFamily",
    "drift_families",
    "family",
    "quality_families",
    "queue_families",
    "shadow_families",
    "slo_families",
]

MetricFamily = CounterMetricFamily | GaugeMetricFamily

#: Shadow agreement covers the samples captured this long before the scrape.
SHADOW_WINDOW: Final = timedelta(days=1)
#: ``metric`` label of ``segmon_coco_ap_ratio`` -> key of the stored report's ``coco``.
COCO_SUMMARY: Final[Mapping[str, str]] = {
    "AP": "ap",
    "AP50": "ap50",
    "AP75": "ap75",
    "APs": "ap_small",
    "APm": "ap_medium",
    "APl": "ap_large",
    "AR100": "ar100",
}
#: Annotation queue item states (queued -> exported -> labeled | skipped | expired).
QUEUE_STATES: Final = tuple(str(s) for s in QueueState)
#: Main reasons an item is queued: the signal that contributed most to its priority.
QUEUE_REASONS: Final = SIGNALS


def family(name: str) -> MetricFamily:
    """Return an empty metric family for a catalog entry.

    Examples
    --------
    >>> f = family("segmon_slo_burn_rate")
    >>> f.add_metric(["mask-quality", "1h"], 2.5)
    >>> f.type, f.samples[0].labels
    ('gauge', {'slo': 'mask-quality', 'window': '1h'})
    """
    spec = cat.metric(name)
    kind = CounterMetricFamily if spec.kind == "counter" else GaugeMetricFamily
    return kind(spec.name, spec.help, labels=list(spec.labels))


def drift_families(session: Session) -> Iterator[MetricFamily]:
    """Statistic, threshold, verdict and p-value of the latest check per drift series."""
    row = DriftResultRow
    key = (row.family, row.feature, row.detector, row.class_name)
    ranked = select(
        row.id,
        func.row_number()
        .over(partition_by=key, order_by=(row.window_end.desc(), row.id.desc()))
        .label("rank"),
    ).subquery()
    latest = session.execute(
        select(*key, row.statistic, row.threshold, row.drift_detected, row.p_value)
        .join(ranked, ranked.c.id == row.id)
        .where(ranked.c.rank == 1)
        .order_by(*key)
    ).all()
    statistic = family(cat.DRIFT_STATISTIC)
    threshold = family(cat.DRIFT_THRESHOLD)
    detected = family(cat.DRIFT_DETECTED)
    p_value = family(cat.DRIFT_P_VALUE)
    for fam, feature, detector, class_name, stat, thr, flagged, p in latest:
        labels = [detector, feature, fam, class_name]  # catalog order: DRIFT_LABELS
        statistic.add_metric(labels, float(stat))
        threshold.add_metric(labels, float(thr))
        detected.add_metric(labels, 1.0 if flagged else 0.0)
        if p is not None:
            p_value.add_metric(labels, float(p))
    yield from (statistic, threshold, detected, p_value)


def _latest_quality(session: Session) -> list[tuple[int, str, dict[str, Any]]]:
    ranked = select(
        QualityResult.id,
        func.row_number()
        .over(
            partition_by=QualityResult.model_version,
            order_by=(QualityResult.computed_at.desc(), QualityResult.id.desc()),
        )
        .label("rank"),
    ).subquery()
    rows = session.execute(
        select(QualityResult.id, QualityResult.model_version, QualityResult.report)
        .join(ranked, ranked.c.id == QualityResult.id)
        .where(ranked.c.rank == 1)
        .order_by(QualityResult.model_version)
    ).all()
    return [(rid, version, report) for rid, version, report in rows]


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _report_families(
    version: str, report: Mapping[str, Any]
) -> Iterator[tuple[str, list[str], float]]:
    coco = report.get("coco") or {}
    for label, key in COCO_SUMMARY.items():
        value = _number(coco.get(key))
        if value is not None:
            yield cat.COCO_AP, [label, version], value
    sizes = (report.get("overall") or {}).get("recall_by_size") or {}
    for area in ("small", "medium", "large"):
        value = _number((sizes.get(area) or {}).get("recall"))
        if value is not None:
            yield cat.RECALL_BY_SIZE, [area, version], value
    confusion = report.get("confusion") or {}
    names = list(confusion.get("names") or [])
    columns = [*names, "missed"]
    for true_class, counts in zip(names, confusion.get("counts") or [], strict=False):
        total = sum(counts)
        if total <= 0:
            continue  # no ground truth of this class: no ratio
        for predicted, count in zip(columns, counts, strict=False):
            yield cat.CLASS_CONFUSION, [true_class, predicted, version], count / total


def quality_families(session: Session) -> Iterator[MetricFamily]:
    """Holdout quality of the latest evaluation per model version."""
    latest = _latest_quality(session)
    families = {
        name: family(name)
        for name in (
            cat.CLASS_IOU,
            cat.CLASS_AP,
            cat.COCO_AP,
            cat.RECALL_BY_SIZE,
            cat.CLASS_FALSE_POSITIVES,
            cat.CLASS_CONFUSION,
        )
    }
    version_of = {rid: version for rid, version, _ in latest}
    if version_of:
        rows = session.execute(
            select(
                ClassQualityRow.quality_result_id,
                ClassQualityRow.class_name,
                ClassQualityRow.mean_iou,
                ClassQualityRow.ap,
                ClassQualityRow.false_positives_per_image,
            )
            .where(ClassQualityRow.quality_result_id.in_(list(version_of)))
            .order_by(ClassQualityRow.quality_result_id, ClassQualityRow.category_id)
        ).all()
        for rid, class_name, iou, ap, fp_per_image in rows:
            labels = [class_name, version_of[rid]]
            if iou is not None:
                families[cat.CLASS_IOU].add_metric(labels, float(iou))
            if ap is not None:
                families[cat.CLASS_AP].add_metric(labels, float(ap))
            families[cat.CLASS_FALSE_POSITIVES].add_metric(labels, float(fp_per_image))
    for _, version, report in latest:
        for name, labels, value in _report_families(version, report):
            families[name].add_metric(labels, value)
    yield from families.values()


def shadow_families(session: Session, now: datetime) -> Iterator[MetricFamily]:
    """Shadow agreement per class and model version over the last :data:`SHADOW_WINDOW`."""
    row = ShadowClassScore
    rows = session.execute(
        select(
            Category.name, ModelVersion.name, func.sum(row.matched), func.sum(row.production_only)
        )
        .select_from(row)
        .join(ShadowScore, ShadowScore.id == row.shadow_score_id)
        .join(Sample, Sample.id == ShadowScore.sample_id)
        .join(ModelVersion, ModelVersion.id == Sample.model_version_id)
        .join(Category, Category.id == row.category_id)
        .where(
            Sample.captured_at > now - SHADOW_WINDOW,
            Sample.captured_at <= now,
            ShadowScore.computed_at <= now,
        )
        .group_by(Category.name, ModelVersion.name)
        .order_by(Category.name, ModelVersion.name)
    ).all()
    agreement = family(cat.SHADOW_AGREEMENT)
    for class_name, version, matched, production_only in rows:
        produced = int(matched or 0) + int(production_only or 0)
        if produced > 0:  # no production instance of the class: undefined, left out
            agreement.add_metric([class_name, version], int(matched or 0) / produced)
    yield agreement


def slo_families(
    session: Session, slos: Sequence[SLOSpec], now: datetime
) -> Iterator[MetricFamily]:
    """Per window error ratio, burn rate and (bad) events; objective and budget left.

    Only quality and drift SLOs: the inference service's SLOs are computed by
    Prometheus from that service's metrics (``slo:*`` series of the generated rules).
    """
    names = (
        cat.SLO_ERROR_RATIO,
        cat.SLO_BURN_RATE,
        cat.SLO_EVENTS,
        cat.SLO_BAD_EVENTS,
        cat.SLO_OBJECTIVE,
        cat.SLO_BUDGET_REMAINING,
    )
    families = {name: family(name) for name in names}
    for status in read_slo_statuses(session, slos, now):
        for w in status.windows:
            labels = [status.slo, w.window]
            families[cat.SLO_ERROR_RATIO].add_metric(labels, w.error_ratio)
            families[cat.SLO_BURN_RATE].add_metric(labels, w.burn_rate)  # 0 while guarded
            families[cat.SLO_EVENTS].add_metric(labels, float(w.events))
            families[cat.SLO_BAD_EVENTS].add_metric(labels, float(w.bad_events))
        families[cat.SLO_OBJECTIVE].add_metric([status.slo], status.objective)
        families[cat.SLO_BUDGET_REMAINING].add_metric([status.slo], status.error_budget_remaining)
    yield from families.values()


def queue_families(session: Session, now: datetime, daily_budget: int) -> Iterator[MetricFamily]:
    """Annotation queue: depth per state and per class, oldest age, throughput, budget.

    Read from ``queue_items`` (:func:`monitor.queue.stats.queue_stats`); every state
    has a depth series (zeros included), the age of the oldest queued item is 0 while
    nothing is queued, and the budget ratio is absent with a zero daily budget.
    """
    stats = queue_stats(session, now, daily_budget)
    depth = family(cat.QUEUE_DEPTH)
    for state in QUEUE_STATES:
        depth.add_metric([state], float(stats.depth.get(state, 0)))
    yield depth
    created = family(cat.QUEUE_TASKS_CREATED)
    for reason in QUEUE_REASONS:
        created.add_metric([reason], float(stats.reasons.get(reason, 0)))
    yield created
    by_class = family(cat.QUEUE_DEPTH_BY_CLASS)
    for (class_name, state), n in sorted(stats.depth_by_class.items()):
        by_class.add_metric([class_name, state], float(n))
    yield by_class
    oldest = family(cat.QUEUE_OLDEST_AGE)
    oldest.add_metric([], stats.oldest_queued_age_s or 0.0)  # nothing waiting: no wait
    yield oldest
    labeled = family(cat.QUEUE_LABELED_LAST_DAY)
    labeled.add_metric([], float(stats.labeled_last_day))
    yield labeled
    budget = family(cat.QUEUE_BUDGET_USED)
    if stats.budget_used_ratio is not None:
        budget.add_metric([], stats.budget_used_ratio)
    yield budget
