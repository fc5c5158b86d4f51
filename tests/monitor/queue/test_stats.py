"""Queue metrics read real rows: a fresh registry around the database collector."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from prometheus_client import CollectorRegistry
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import ManualClock
from monitor.prometheus.collector import DatabaseCollector
from monitor.queue.exporter import export_batch
from monitor.queue.fill import fill_queue
from monitor.queue.states import move_item
from monitor.storage.schema import QueueItem, QueueState
from tests.support.queue_scenes import NOW, Inst, QueueScenes, queue_settings


def test_queue_metrics_count_the_rows(
    sessions: sessionmaker[Session], queue_scenes: QueueScenes, tmp_path: Path
) -> None:
    settings = queue_settings(tmp_path, daily_budget=10, weights={"uncertainty_max": 1.0})
    for score in (0.5, 0.6, 0.7):
        queue_scenes.sample([Inst(1, score), Inst(4, 0.9)])
    queue_scenes.sample([Inst(2, 0.8)])
    fill_queue(sessions, settings, ManualClock(NOW))
    batch = export_batch(sessions, settings, ManualClock(NOW), limit=2)
    assert batch is not None
    with sessions.begin() as session:
        item = session.get(QueueItem, batch.item_ids[0])
        assert item is not None
        move_item(session, item, QueueState.LABELED, NOW + timedelta(hours=1))
    registry = CollectorRegistry()
    registry.register(DatabaseCollector(sessions, settings, ManualClock(NOW + timedelta(hours=2))))

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    depth = "segmon_annotation_queue_depth"
    assert [value(depth, state=s) for s in ("queued", "exported", "labeled", "skipped")] == [
        2.0,
        1.0,
        1.0,
        0.0,
    ]
    by_class = "segmon_annotation_queue_depth_by_class"
    assert value(by_class, class_name="disc", state="queued") == 1.0
    assert value(by_class, class_name="box", state="queued") == 1.0
    assert value(by_class, class_name="star", state="exported") == 1.0
    assert value(by_class, class_name="disc", state="labeled") is None  # open states only
    assert value("segmon_annotation_queue_oldest_queued_age_seconds") == 7200.0
    assert value("segmon_annotation_queue_labeled_last_day") == 1.0
    assert value("segmon_annotation_queue_budget_used_ratio") == 0.4
    assert value("segmon_annotation_tasks_created_total", reason="uncertainty_max") == 4.0
    assert value("segmon_annotation_tasks_created_total", reason="drift") == 0.0
