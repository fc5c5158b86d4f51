"""The single source of truth for segmon's exported Prometheus metrics.

Collectors take names, types, help texts and label names from here; generated rules and
dashboards may only query names listed here (or configured production-service metrics,
or series recorded by segmon's own rules). Labels are low-cardinality by design: model
versions, class names, detectors, features, SLO names, windows, job names — never image
or request ids.

Notes
-----
The ``job`` label of the ``segmon_job_*`` metrics names a segmon job (``ingest``,
``drift``…) and clashes with the ``job`` label Prometheus attaches to every scraped
target: scrape segmon with ``honor_labels: true`` (see
``dashboards/prometheus/prometheus.yml``) or Prometheus renames it ``exported_job``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

from monitor.errors import NotFoundError

__all__ = [
    "CATALOG",
    "METRICS",
    "MetricKind",
    "MetricSpec",
    "is_catalog_series",
    "metric",
]

MetricKind = Literal["counter", "gauge", "histogram"]

# Drift
DRIFT_STATISTIC: Final = "segmon_drift_statistic"
DRIFT_THRESHOLD: Final = "segmon_drift_threshold"
DRIFT_DETECTED: Final = "segmon_drift_detected"
DRIFT_P_VALUE: Final = "segmon_drift_p_value"
# Quality against the labeled holdout
CLASS_IOU: Final = "segmon_class_iou_ratio"
CLASS_AP: Final = "segmon_class_ap_ratio"
COCO_AP: Final = "segmon_coco_ap_ratio"
RECALL_BY_SIZE: Final = "segmon_recall_by_size_ratio"
CLASS_FALSE_POSITIVES: Final = "segmon_class_false_positives_per_image"
CLASS_CONFUSION: Final = "segmon_class_confusion_ratio"
# Shadow scoring
SHADOW_AGREEMENT: Final = "segmon_shadow_agreement_ratio"
# SLOs
SLO_ERROR_RATIO: Final = "segmon_slo_error_ratio"
SLO_BURN_RATE: Final = "segmon_slo_burn_rate"
SLO_EVENTS: Final = "segmon_slo_events"
SLO_BAD_EVENTS: Final = "segmon_slo_bad_events"
SLO_OBJECTIVE: Final = "segmon_slo_objective_ratio"
SLO_BUDGET_REMAINING: Final = "segmon_slo_error_budget_remaining_ratio"
# Annotation queue
QUEUE_DEPTH: Final = "segmon_annotation_queue_depth"
QUEUE_TASKS_CREATED: Final = "segmon_annotation_tasks_created_total"
QUEUE_DEPTH_BY_CLASS: Final = "segmon_annotation_queue_depth_by_class"
QUEUE_OLDEST_AGE: Final = "segmon_annotation_queue_oldest_queued_age_seconds"
QUEUE_LABELED_LAST_DAY: Final = "segmon_annotation_queue_labeled_last_day"
QUEUE_BUDGET_USED: Final = "segmon_annotation_queue_budget_used_ratio"
# Jobs
JOB_LAST_SUCCESS: Final = "segmon_job_last_success_timestamp_seconds"
JOB_DURATION: Final = "segmon_job_duration_seconds"
JOB_RUNS: Final = "segmon_job_runs_total"
# Executor (where the per-image stages run their batches)
EXECUTOR_INFO: Final = "segmon_executor_info"
EXECUTOR_WORKERS: Final = "segmon_executor_workers"
EXECUTOR_IN_FLIGHT: Final = "segmon_executor_tasks_in_flight"
EXECUTOR_RETRIES: Final = "segmon_executor_retries_total"
EXECUTOR_BATCHES: Final = "segmon_executor_batches_total"
# Ingest
SAMPLES_INGESTED: Final = "segmon_samples_ingested_total"
SAMPLES_REJECTED: Final = "segmon_samples_rejected_total"
# Canary comparison (candidate model version against the baseline)
CANARY_WORSE: Final = "segmon_canary_worse"
CANARY_VERDICT: Final = "segmon_canary_verdict"
CANARY_MIN_P_VALUE: Final = "segmon_canary_min_p_value"
CANARY_SIGNAL_MEAN: Final = "segmon_canary_signal_mean"
CANARY_SAMPLES: Final = "segmon_canary_samples"

DRIFT_LABELS: Final = ("detector", "feature", "family", "class_name")


@dataclass(frozen=True)
class MetricSpec:
    """One exported metric family.

    Attributes
    ----------
    name
        Full exposed name; counters end in ``_total`` (prometheus-client's
        ``CounterMetricFamily`` strips and re-adds the suffix).
    kind
        ``counter``, ``gauge`` or ``histogram``.
    help
        The HELP text.
    labels
        Label names, in the order collectors should pass values.
    """

    name: str
    kind: MetricKind
    help: str
    labels: tuple[str, ...] = ()

    @property
    def series_names(self) -> tuple[str, ...]:
        """Sample names this family exposes and that PromQL may query.

        Examples
        --------
        >>> metric("segmon_job_runs_total").series_names
        ('segmon_job_runs_total',)
        """
        if self.kind == "histogram":
            return (f"{self.name}_bucket", f"{self.name}_count", f"{self.name}_sum")
        return (self.name,)


def _m(name: str, kind: MetricKind, help_: str, *labels: str) -> MetricSpec:
    return MetricSpec(name=name, kind=kind, help=help_, labels=tuple(labels))


#: Every metric segmon exports, in a stable order.
CATALOG: Final[tuple[MetricSpec, ...]] = (
    _m(
        DRIFT_STATISTIC,
        "gauge",
        "Latest drift statistic of a detector on a feature (class_name empty for "
        "image-level features).",
        *DRIFT_LABELS,
    ),
    _m(
        DRIFT_THRESHOLD,
        "gauge",
        "Calibrated threshold of the latest drift check at the configured false-alarm rate.",
        *DRIFT_LABELS,
    ),
    _m(
        DRIFT_DETECTED,
        "gauge",
        "1 when the latest drift check flagged drift, else 0.",
        *DRIFT_LABELS,
    ),
    _m(
        DRIFT_P_VALUE,
        "gauge",
        "p-value of the latest drift check, for detectors that give one.",
        *DRIFT_LABELS,
    ),
    _m(
        CLASS_IOU,
        "gauge",
        "Mean mask IoU of matched instances per class on the labeled holdout.",
        "class_name",
        "model_version",
    ),
    _m(
        CLASS_AP,
        "gauge",
        "COCO mask AP@[.5:.95] per class on the labeled holdout.",
        "class_name",
        "model_version",
    ),
    _m(
        COCO_AP,
        "gauge",
        "COCO mask summary metric (AP, AP50, AP75, APs, APm, APl, AR100) on the holdout.",
        "metric",
        "model_version",
    ),
    _m(
        RECALL_BY_SIZE,
        "gauge",
        "Instance recall at IoU 0.5 by COCO object size (small, medium, large).",
        "area",
        "model_version",
    ),
    _m(
        CLASS_FALSE_POSITIVES,
        "gauge",
        "Unmatched predicted instances per image and class on the labeled holdout.",
        "class_name",
        "model_version",
    ),
    _m(
        CLASS_CONFUSION,
        "gauge",
        "Fraction of ground-truth instances of true_class predicted as predicted_class.",
        "true_class",
        "predicted_class",
        "model_version",
    ),
    _m(
        SHADOW_AGREEMENT,
        "gauge",
        "Fraction of production instances the reference model agrees with (IoU match).",
        "class_name",
        "model_version",
    ),
    _m(
        SLO_ERROR_RATIO,
        "gauge",
        "Event-time error ratio of an SLO over a window (0 when the window is empty).",
        "slo",
        "window",
    ),
    _m(
        SLO_BURN_RATE,
        "gauge",
        "Error-budget burn rate of an SLO over a window; 0 while the window has too few events.",
        "slo",
        "window",
    ),
    _m(
        SLO_EVENTS,
        "gauge",
        "Events whose event time falls in the window.",
        "slo",
        "window",
    ),
    _m(
        SLO_BAD_EVENTS,
        "gauge",
        "Bad events whose event time falls in the window.",
        "slo",
        "window",
    ),
    _m(SLO_OBJECTIVE, "gauge", "Objective of an SLO as a ratio of good events.", "slo"),
    _m(
        SLO_BUDGET_REMAINING,
        "gauge",
        "Error budget left over the SLO period (negative when overspent).",
        "slo",
    ),
    _m(QUEUE_DEPTH, "gauge", "Annotation queue items per state.", "state"),
    _m(
        QUEUE_TASKS_CREATED,
        "counter",
        "Annotation queue items ever queued, by the signal that contributed most.",
        "reason",
    ),
    _m(
        QUEUE_DEPTH_BY_CLASS,
        "gauge",
        "Open annotation queue items (queued, exported) predicting a class, per state.",
        "class_name",
        "state",
    ),
    _m(
        QUEUE_OLDEST_AGE,
        "gauge",
        "Seconds since the oldest still-queued annotation item was queued (0 when none).",
    ),
    _m(
        QUEUE_LABELED_LAST_DAY,
        "gauge",
        "Annotation queue items labelled in the 24 hours before the scrape.",
    ),
    _m(
        QUEUE_BUDGET_USED,
        "gauge",
        "Share of the daily annotation budget queued since midnight UTC.",
    ),
    _m(
        JOB_LAST_SUCCESS,
        "gauge",
        "Unix time of the last successful run of a segmon job.",
        "job",
    ),
    _m(JOB_DURATION, "gauge", "Wall-clock duration of the latest run of a segmon job.", "job"),
    _m(JOB_RUNS, "counter", "Runs of a segmon job by final status.", "job", "status"),
    _m(
        EXECUTOR_INFO,
        "gauge",
        "1, labelled with the executor the per-image stages run their batches on "
        "(embed, shadow, drift image properties; local, dask, local-cluster).",
        "kind",
    ),
    _m(EXECUTOR_WORKERS, "gauge", "Worker processes of the executor (0 until first used)."),
    _m(EXECUTOR_IN_FLIGHT, "gauge", "Batches submitted to the executor and not yet returned."),
    _m(
        EXECUTOR_RETRIES,
        "counter",
        "Batches submitted again after their task failed (e.g. its worker died).",
    ),
    _m(EXECUTOR_BATCHES, "counter", "Batches the executor returned."),
    _m(SAMPLES_INGESTED, "counter", "Samples stored by the ingest job per source.", "source"),
    _m(
        SAMPLES_REJECTED,
        "counter",
        "Samples quarantined by the ingest job per machine-readable reason.",
        "reason",
    ),
    _m(
        CANARY_WORSE,
        "gauge",
        "1 when the latest canary verdict on a signal is that the candidate is worse, else 0.",
        "baseline",
        "candidate",
        "signal",
    ),
    _m(
        CANARY_VERDICT,
        "gauge",
        "Latest canary verdict on a signal, one series per verdict (1 for the current).",
        "baseline",
        "candidate",
        "signal",
        "verdict",
    ),
    _m(
        CANARY_MIN_P_VALUE,
        "gauge",
        "Smallest p-value of the latest canary checks of a signal (before Bonferroni).",
        "baseline",
        "candidate",
        "signal",
    ),
    _m(
        CANARY_SIGNAL_MEAN,
        "gauge",
        "Mean of a directed canary signal over a version's samples in the latest window.",
        "model_version",
        "role",
        "signal",
    ),
    _m(
        CANARY_SAMPLES,
        "gauge",
        "Accepted samples of a version in the latest canary window (role baseline|candidate).",
        "model_version",
        "role",
    ),
)

#: Catalog by metric family name.
METRICS: Final[Mapping[str, MetricSpec]] = MappingProxyType({m.name: m for m in CATALOG})

_SERIES: Final[frozenset[str]] = frozenset(s for m in CATALOG for s in m.series_names)


def metric(name: str) -> MetricSpec:
    """Return the catalog entry for ``name``.

    Raises
    ------
    NotFoundError
        If segmon exports no metric of that name.

    Examples
    --------
    >>> metric("segmon_slo_burn_rate").labels
    ('slo', 'window')
    """
    try:
        return METRICS[name]
    except KeyError:
        raise NotFoundError(f"metric {name!r} is not in segmon's metrics catalog") from None


def is_catalog_series(name: str) -> bool:
    """Whether PromQL may query ``name`` as a series segmon exports.

    Examples
    --------
    >>> is_catalog_series("segmon_drift_detected"), is_catalog_series("segmon_image_id")
    (True, False)
    """
    return name in _SERIES
