"""Canary metrics from rows the canary job stored: latest verdict per signal, stale pairs out."""

from __future__ import annotations

from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry

from monitor.clock import ManualClock
from monitor.config import Settings
from monitor.drift.canary import run_canary
from monitor.drift.compare import VERDICTS
from monitor.prometheus.collector import DatabaseCollector
from tests.support.canary_labels import label_samples
from tests.support.drift_scenes import NOW, DriftScenes

LAST_DAY = (NOW - timedelta(days=1), NOW)


def settings(*candidates: str) -> Settings:
    return Settings.model_validate(
        {"drift": {"min_samples": 20}, "canary": {"candidates": list(candidates)}}
    )


def test_canary_metrics_follow_the_latest_run(drift_scenes: DriftScenes) -> None:
    """On SQLite and PostgreSQL: v2 is worse than v1; v3 was compared an hour ago only."""
    drift_scenes.production(50, LAST_DAY, model_version="v1", agreement=(0.9, 0.05))
    drift_scenes.production(30, LAST_DAY, model_version="v2", agreement=(0.6, 0.05))
    drift_scenes.production(25, LAST_DAY, model_version="v3", agreement=(0.9, 0.05))
    label_samples(drift_scenes.sessions, "v1", grow=0)
    label_samples(drift_scenes.sessions, "v2", grow=2)
    clock = ManualClock(NOW - timedelta(hours=1))
    earlier = run_canary(drift_scenes.sessions, settings(), clock)
    assert [c.candidate for c in earlier.comparisons] == ["v2", "v3"]
    clock.advance(timedelta(hours=1))
    run_canary(drift_scenes.sessions, settings("v2"), clock)

    registry = CollectorRegistry()
    registry.register(DatabaseCollector(drift_scenes.sessions, settings(), clock))

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    pair = {"baseline": "v1", "candidate": "v2"}
    assert value("segmon_canary_worse", **pair, signal="shadow_agreement") == 1.0
    assert value("segmon_canary_worse", **pair, signal="quality") == 1.0
    assert value("segmon_canary_worse", **pair, signal="latency_ms") == 0.0
    states = {
        v: value("segmon_canary_verdict", **pair, signal="quality", verdict=v) for v in VERDICTS
    }
    assert states == {v: float(v == "worse") for v in VERDICTS}
    p = value("segmon_canary_min_p_value", **pair, signal="quality")
    assert p is not None and p < 0.001
    assert value("segmon_canary_min_p_value", **pair, signal="latency_ms") is None  # no checks
    baseline_mean = value(
        "segmon_canary_signal_mean", model_version="v1", role="baseline", signal="shadow_agreement"
    )
    candidate_mean = value(
        "segmon_canary_signal_mean", model_version="v2", role="candidate", signal="shadow_agreement"
    )
    assert baseline_mean == pytest.approx(0.9, abs=0.03)
    assert candidate_mean == pytest.approx(0.6, abs=0.03)
    assert value("segmon_canary_samples", model_version="v1", role="baseline") == 50.0
    assert value("segmon_canary_samples", model_version="v2", role="candidate") == 30.0
    # v3 was compared by the earlier run only: not exported any more.
    assert value("segmon_canary_samples", model_version="v3", role="candidate") is None
    assert value("segmon_canary_worse", baseline="v1", candidate="v3", signal="quality") is None


def test_no_canary_rows_export_empty_families(drift_scenes: DriftScenes) -> None:
    registry = CollectorRegistry()
    registry.register(DatabaseCollector(drift_scenes.sessions, settings(), ManualClock(NOW)))
    names = {m.name for m in registry.collect() if m.samples}
    assert not {n for n in names if n.startswith("segmon_canary")}
    assert "segmon_canary_worse" in {m.name for m in registry.collect()}
