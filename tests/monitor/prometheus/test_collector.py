"""DatabaseCollector: values from inserted rows and ingest runs, and a live /metrics against the
catalog."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import Clock, ManualClock
from monitor.config import IngestSettings, Settings
from monitor.ingest.job import ingest_log
from monitor.jobs.names import JobName
from monitor.jobs.runs import run_job
from monitor.prometheus import catalog as mc
from monitor.prometheus.audience_boards import PROMETHEUS_SERIES
from monitor.prometheus.collector import DatabaseCollector
from monitor.prometheus.grafana import DASHBOARDS, dashboard_queries
from monitor.prometheus.promql import metric_names
from monitor.service.serve import default_registry
from monitor.service.server import MonitorServer
from monitor.slo.events import read_slo_status
from monitor.slo.spec import QualitySLI, SLOSpec
from tests.support.paths import REPO
from tests.support.result_rows import NOW, Rows
from tests.support.samplelog import LogBuilder

MV = "prod-2026.11.1"
REPORT = {
    "coco": {"ap": 0.41, "ap50": 0.7, "ap75": 0.35, "ap_small": None, "ar100": 0.5},
    "overall": {
        "recall_by_size": {
            "small": {"n_ground_truth": 0, "true_positives": 0, "recall": None},
            "medium": {"n_ground_truth": 4, "true_positives": 3, "recall": 0.75},
            "large": {"n_ground_truth": 2, "true_positives": 2, "recall": 1.0},
        }
    },
    "confusion": {
        "category_ids": [1, 2],
        "names": ["disc", "box"],
        "counts": [[6, 2, 2], [0, 0, 0]],
    },
}


def _fill(rows: Rows, now: datetime) -> None:
    m = timedelta(minutes=1)
    # Drift: the older check of the same series must not be exported.
    rows.drift(now - 90 * m, False, statistic=0.05, threshold=0.1, p_value=0.6)
    rows.drift(now - 30 * m, True, statistic=0.3, threshold=0.12, p_value=None)
    rows.drift(now - 30 * m, True, family="instance_embedding", class_name="disc", statistic=0.4)
    # Quality: the latest evaluation of the version wins.
    rows.quality(now - 2 * 60 * m, [(1, "disc", 1, 1, 1)], mean_iou=0.1, ap=0.1)
    rows.quality(now - 10 * m, [(1, "disc", 8, 2, 2), (2, "box", 0, 0, 0)], report=REPORT)
    rows.quality(now - 20 * m, [(1, "disc", 5, 5, 5)], version="canary", mean_iou=0.5, ap=None)
    # Shadow: within the last day, and one older sample that must not count.
    rows.shadow(now - 4 * m, now, {1: ([0.9, 0.4], 2, 0), 2: ([0.8], 0, 3)})
    rows.shadow(now - 60 * m, now, {1: ([0.7], 0, 1)})
    rows.shadow(now - timedelta(days=2), now, {1: ([], 9, 0)})
    rows.job("ingest", now - 3 * m, seconds=4.0)
    # Canary: the candidate's shadow agreement is worse than the baseline's.
    rows.canary(now - 5 * m, "shadow_agreement", "worse")
    rows.session.commit()


def test_collector_exports_results_and_slos(sessions: sessionmaker[Session], rows: Rows) -> None:
    now = NOW
    _fill(rows, now)
    slo = SLOSpec(
        name="shadow",
        objective=0.85,
        sli=QualitySLI(source="shadow"),
        min_events=3,
        unreachable_tiers="cap",
    )
    settings = Settings(slos=(slo,))
    registry = CollectorRegistry()
    registry.register(DatabaseCollector(sessions, settings, ManualClock(now)))
    value = registry.get_sample_value

    drift = {"detector": "pca_divergence", "feature": "embedding", "family": "image_embedding"}
    image = {**drift, "class_name": ""}
    assert value(mc.DRIFT_STATISTIC, image) == 0.3
    assert value(mc.DRIFT_THRESHOLD, image) == 0.12
    assert value(mc.DRIFT_DETECTED, image) == 1.0
    assert value(mc.DRIFT_P_VALUE, image) is None  # the latest check gives none
    per_class = {**drift, "family": "instance_embedding", "class_name": "disc"}
    assert value(mc.DRIFT_STATISTIC, per_class) == 0.4

    disc = {"class_name": "disc", "model_version": MV}
    assert value(mc.CLASS_IOU, disc) == 0.8 and value(mc.CLASS_AP, disc) == 0.6
    assert value(mc.CLASS_FALSE_POSITIVES, disc) == pytest.approx(0.2)
    assert value(mc.CLASS_IOU, {"class_name": "box", "model_version": MV}) is None  # no match
    assert value(mc.CLASS_IOU, {"class_name": "disc", "model_version": "canary"}) == 0.5
    assert value(mc.CLASS_AP, {"class_name": "disc", "model_version": "canary"}) is None
    assert value(mc.COCO_AP, {"metric": "AP", "model_version": MV}) == 0.41
    assert value(mc.COCO_AP, {"metric": "AR100", "model_version": MV}) == 0.5
    assert value(mc.COCO_AP, {"metric": "APs", "model_version": MV}) is None
    assert value(mc.RECALL_BY_SIZE, {"area": "medium", "model_version": MV}) == 0.75
    assert value(mc.RECALL_BY_SIZE, {"area": "small", "model_version": MV}) is None
    confusion = {"true_class": "disc", "predicted_class": "box", "model_version": MV}
    assert value(mc.CLASS_CONFUSION, confusion) == pytest.approx(0.2)
    missed = {**confusion, "predicted_class": "missed"}
    assert value(mc.CLASS_CONFUSION, missed) == pytest.approx(0.2)
    assert value(mc.CLASS_CONFUSION, {**confusion, "true_class": "box"}) is None  # no truth

    # Shadow agreement over the last day: disc matched 3 of 3 + 2 production-only.
    assert value(mc.SHADOW_AGREEMENT, disc) == pytest.approx(3 / 5)
    assert value(mc.SHADOW_AGREEMENT, {"class_name": "box", "model_version": MV}) == 1.0

    with sessions() as session:
        status = read_slo_status(session, slo, now)
    for w in status.windows:
        labels = {"slo": "shadow", "window": w.window}
        assert value(mc.SLO_EVENTS, labels) == w.events
        assert value(mc.SLO_BAD_EVENTS, labels) == w.bad_events
        assert value(mc.SLO_ERROR_RATIO, labels) == pytest.approx(w.error_ratio)
        assert value(mc.SLO_BURN_RATE, labels) == pytest.approx(w.burn_rate)
    # 5m: disc pairs 0.9 (good) 0.4 (bad) + 2 production-only; box 0.8 good + 3 ref-only.
    assert value(mc.SLO_EVENTS, {"slo": "shadow", "window": "5m"}) == 8
    assert value(mc.SLO_BAD_EVENTS, {"slo": "shadow", "window": "5m"}) == 6
    assert value(mc.SLO_BURN_RATE, {"slo": "shadow", "window": "5m"}) == pytest.approx(
        (6 / 8) / 0.15
    )
    assert value(mc.SLO_OBJECTIVE, {"slo": "shadow"}) == 0.85
    assert value(mc.SLO_BUDGET_REMAINING, {"slo": "shadow"}) == pytest.approx(
        status.error_budget_remaining
    )
    for state in ("queued", "exported", "labeled", "skipped", "expired"):
        assert value(mc.QUEUE_DEPTH, {"state": state}) == 0.0  # no item yet: zeros, not gaps
    assert value(mc.QUEUE_OLDEST_AGE, {}) == 0.0
    assert value(mc.JOB_DURATION, {"job": "ingest"}) == 4.0


def _live_metrics(
    sessions: sessionmaker[Session], settings: Settings, clock: Clock
) -> dict[str, set[str]]:
    server = MonitorServer(
        ("127.0.0.1", 0), default_registry(sessions, settings, clock), sessions, None, None
    )
    server.start()
    try:
        import urllib.request

        with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as response:
            text = response.read().decode()
    finally:
        server.stop()
    samples: dict[str, set[str]] = {}
    for fam in text_string_to_metric_families(text):
        for sample in fam.samples:
            samples.setdefault(sample.name, set()).add(json.dumps(sample.labels, sort_keys=True))
    return samples


def test_live_metrics_hold_every_catalog_family_and_every_dashboard_metric(
    sessions: sessionmaker[Session], rows: Rows
) -> None:
    _fill(rows, NOW)
    live = _live_metrics(sessions, Settings(), ManualClock(NOW))
    missing = [m.name for m in mc.CATALOG if m.name not in live]
    assert missing == []
    for labels in live.values():  # never per-image or per-request labels
        for key in json.loads(next(iter(labels))):
            assert key not in {"image_id", "request_id", "sample_id", "image"}

    boards = sorted((REPO / "dashboards").glob("*.json"))
    assert [b.stem for b in boards] == sorted(DASHBOARDS)
    queried: set[str] = set()
    for path in boards:
        for expr in dashboard_queries(json.loads(path.read_text())):
            expr = (
                expr.removeprefix("label_values(").split(",")[0]
                if "label_values(" in expr
                else expr
            )
            queried |= metric_names(expr.replace("$__rate_interval", "5m"))
    segmon = {name for name in queried if name.startswith("segmon_")}
    assert segmon and segmon <= set(live), sorted(segmon - set(live))
    # The rest are series Prometheus itself makes: recorded by the rules, ALERTS, up...
    assert {n for n in queried - segmon if not n.startswith("slo:")} == PROMETHEUS_SERIES


def test_collector_reads_ingest_and_job_rows(
    sessions: sessionmaker[Session], log_builder: LogBuilder
) -> None:
    clock = ManualClock(datetime(2026, 11, 24, tzinfo=UTC))
    log_builder.write([log_builder.line() for _ in range(4)] + ["not json"])
    uri = str(log_builder.root)
    run_job(
        sessions,
        JobName.INGEST,
        clock,
        lambda _run: ingest_log(sessions, uri, IngestSettings(), clock),
    )
    registry = CollectorRegistry()
    registry.register(DatabaseCollector(sessions, Settings(), clock))
    assert registry.get_sample_value("segmon_samples_ingested_total", {"source": uri}) == 4
    assert (
        registry.get_sample_value("segmon_samples_rejected_total", {"reason": "malformed_json"})
        == 1
    )
    assert (
        registry.get_sample_value("segmon_samples_rejected_total", {"reason": "invalid_rle"}) == 0
    )
    assert (
        registry.get_sample_value("segmon_job_runs_total", {"job": "ingest", "status": "success"})
        == 1
    )
    assert (
        registry.get_sample_value("segmon_job_runs_total", {"job": "ingest", "status": "failed"})
        == 0
    )
    assert (
        registry.get_sample_value("segmon_job_last_success_timestamp_seconds", {"job": "ingest"})
        == clock.now().timestamp()
    )
    assert registry.get_sample_value("segmon_job_duration_seconds", {"job": "ingest"}) == 0.0
