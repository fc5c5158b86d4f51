"""``/metrics`` of the executor: kind, workers, batches in flight, retries.

A custom collector (computed at scrape time, like the database collector) over the
stats of the service's executor (:class:`~monitor.jobs.executor.SharedExecutor`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from monitor.jobs.executor import ExecutorStats
from monitor.prometheus import catalog as cat
from monitor.prometheus.families import family


class ExecutorCollector(Collector):
    """Yields the executor's families from ``stats()`` at each scrape.

    Examples
    --------
    >>> from prometheus_client import CollectorRegistry
    >>> registry = CollectorRegistry()
    >>> stats = ExecutorStats("dask", "tcp://s:8786", 2, 4, 3, 1, 10)
    >>> registry.register(ExecutorCollector(lambda: stats))
    >>> registry.get_sample_value("segmon_executor_tasks_in_flight")
    3.0
    >>> registry.get_sample_value("segmon_executor_info", {"kind": "dask"})
    1.0
    """

    def __init__(self, stats: Callable[[], ExecutorStats]) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        """Return the executor's metric families, computed now."""
        now = self.stats()
        info = family(cat.EXECUTOR_INFO)
        info.add_metric([now.kind], 1.0)
        yield info
        for name, value in (
            (cat.EXECUTOR_WORKERS, now.workers),
            (cat.EXECUTOR_IN_FLIGHT, now.in_flight),
            (cat.EXECUTOR_RETRIES, now.retries),
            (cat.EXECUTOR_BATCHES, now.batches),
        ):
            metric = family(name)
            metric.add_metric([], float(value))
            yield metric
