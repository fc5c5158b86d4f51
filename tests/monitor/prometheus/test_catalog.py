from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor.errors import NotFoundError
from monitor.prometheus import catalog as mc

FORBIDDEN = {"image_id", "request_id", "sample_id", "image", "request", "path", "instance_id"}


def test_names_follow_prometheus_conventions() -> None:
    names = [m.name for m in mc.CATALOG]
    assert len(names) == len(set(names))
    for m in mc.CATALOG:
        assert re.fullmatch(r"segmon_[a-z0-9_]+", m.name), m.name
        assert m.name.endswith("_total") == (m.kind == "counter"), m.name
        assert m.help.strip(), m.name
        assert not FORBIDDEN & set(m.labels), m.name
        assert len(set(m.labels)) == len(m.labels), m.name


def test_brief_metrics_are_present_with_their_labels() -> None:
    expected = {
        "segmon_drift_statistic": ("detector", "feature", "family"),
        "segmon_class_iou_ratio": ("class_name", "model_version"),
        "segmon_class_ap_ratio": ("class_name", "model_version"),
        "segmon_coco_ap_ratio": ("metric", "model_version"),
        "segmon_shadow_agreement_ratio": ("class_name",),
        "segmon_slo_error_ratio": ("slo", "window"),
        "segmon_slo_burn_rate": ("slo", "window"),
        "segmon_slo_events": ("slo", "window"),
        "segmon_slo_objective_ratio": ("slo",),
        "segmon_slo_error_budget_remaining_ratio": ("slo",),
        "segmon_annotation_queue_depth": ("state",),
        "segmon_job_last_success_timestamp_seconds": ("job",),
        "segmon_job_duration_seconds": ("job",),
        "segmon_job_runs_total": ("job", "status"),
        "segmon_samples_ingested_total": ("source",),
        "segmon_samples_rejected_total": ("reason",),
    }
    for name, labels in expected.items():
        assert set(labels) <= set(mc.metric(name).labels), name


def test_unknown_metric_is_named() -> None:
    with pytest.raises(NotFoundError, match="'segmon_nope'"):
        mc.metric("segmon_nope")


class _CatalogCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        for m in mc.CATALOG:
            values = ["x"] * len(m.labels)
            fam: CounterMetricFamily | GaugeMetricFamily
            if m.kind == "counter":
                fam = CounterMetricFamily(m.name, m.help, labels=m.labels)
            else:
                fam = GaugeMetricFamily(m.name, m.help, labels=m.labels)
            fam.add_metric(values, 1.0)
            yield fam


def test_prometheus_client_exposes_catalog_names_unchanged() -> None:
    registry = CollectorRegistry()
    registry.register(_CatalogCollector())
    for m in mc.CATALOG:
        labels = dict.fromkeys(m.labels, "x")
        assert registry.get_sample_value(m.name, labels) == 1.0, m.name
        assert mc.is_catalog_series(m.name)
