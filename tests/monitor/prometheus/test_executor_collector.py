from __future__ import annotations

from prometheus_client import CollectorRegistry

from monitor.config import ExecutorSettings
from monitor.jobs.executor import SharedExecutor
from monitor.prometheus.catalog import METRICS
from monitor.prometheus.executor_collector import ExecutorCollector


class Halves:
    def load(self, item: int) -> int:
        return item // 2

    def compute(self, loaded: list[int]) -> int:
        return sum(loaded)


def test_metrics_follow_the_service_executor_from_configured_to_used() -> None:
    shared = SharedExecutor(ExecutorSettings())
    registry = CollectorRegistry()
    registry.register(ExecutorCollector(shared.stats))
    assert registry.get_sample_value("segmon_executor_info", {"kind": "local"}) == 1.0
    assert registry.get_sample_value("segmon_executor_workers") == 0.0  # not opened yet
    executor = shared.get()
    assert list(executor.map_batches(Halves(), [[2, 4], [6]])) == [3, 3]
    assert registry.get_sample_value("segmon_executor_workers") == 1.0
    assert registry.get_sample_value("segmon_executor_batches_total") == 2.0
    assert registry.get_sample_value("segmon_executor_retries_total") == 0.0
    assert registry.get_sample_value("segmon_executor_tasks_in_flight") == 0.0
    assert shared.get() is executor  # kept open between runs
    shared.close()
    assert registry.get_sample_value("segmon_executor_batches_total") == 0.0


def test_every_executor_family_is_in_the_catalog() -> None:
    names = {f.name for f in ExecutorCollector(SharedExecutor(ExecutorSettings()).stats).collect()}
    assert names == {
        "segmon_executor_info",
        "segmon_executor_workers",
        "segmon_executor_tasks_in_flight",
        "segmon_executor_retries",  # prometheus-client strips _total from counter families
        "segmon_executor_batches",
    }
    assert {"segmon_executor_retries_total", "segmon_executor_batches_total"} <= set(METRICS)
