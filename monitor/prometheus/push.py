"""Push segmon's metrics to a Prometheus Pushgateway from one-shot CLI runs.

The :class:`~monitor.prometheus.collector.DatabaseCollector` is collected once and pushed with
prometheus-client's ``push_to_gateway`` (HTTP PUT: each push replaces its group).
Everything goes to the group ``job="segmon"``, except the families labelled by a segmon
job (``segmon_job_*``): the Pushgateway sets its grouping key's labels on every metric
of a group, so their own ``job`` label (``ingest``, ``drift``…) would be overwritten and
the series of different jobs would collide (the Pushgateway refuses such a push). They
are pushed as one group per segmon job, ``job="<segmon job>"``, which keeps the ``job``
label the generated staleness rules query. Scrape the Pushgateway with
``honor_labels: true``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

from prometheus_client import CollectorRegistry, push_to_gateway
from prometheus_client.core import Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import Clock
from monitor.config import Settings
from monitor.errors import SegmonError

__all__ = [
    "PUSH_JOB",
    "PushError",
    "push_metrics",
    "split_by_job",
]

#: The grouping key's ``job`` of everything not labelled by a segmon job.
PUSH_JOB: Final = "segmon"


class PushError(SegmonError, OSError):
    """The Pushgateway could not be reached or refused the metrics."""


class _Families(Collector):
    """A collector that returns fixed, already collected families."""

    def __init__(self, families: Sequence[Metric]) -> None:
        self.families = tuple(families)

    def collect(self) -> Iterable[Metric]:
        """Return the families."""
        return self.families


def _copy(metric: Metric, samples: Iterable[Sample]) -> Metric:
    out = Metric(metric.name, metric.documentation, metric.type, metric.unit)
    out.samples = list(samples)
    return out


def split_by_job(families: Iterable[Metric]) -> dict[str, list[Metric]]:
    """Group families by the Pushgateway group (grouping key ``job``) they are pushed to.

    Samples with a ``job`` label go to that job's group, the label removed (the
    grouping key sets it again); everything else goes to :data:`PUSH_JOB`.

    Examples
    --------
    >>> from prometheus_client.core import GaugeMetricFamily
    >>> g = GaugeMetricFamily("segmon_job_duration_seconds", "d", labels=["job"])
    >>> g.add_metric(["ingest"], 1.5); g.add_metric(["drift"], 3.0)
    >>> h = GaugeMetricFamily("segmon_slo_objective_ratio", "o", labels=["slo"])
    >>> h.add_metric(["q"], 0.9)
    >>> groups = split_by_job([g, h])
    >>> sorted(groups), [s.labels for s in groups["ingest"][0].samples]
    (['drift', 'ingest', 'segmon'], [{}])
    """
    groups: dict[str, list[Metric]] = {}
    for metric in families:
        by_job: dict[str, list[Sample]] = {}
        for sample in metric.samples:
            job = sample.labels.get("job", PUSH_JOB)
            labels = {k: v for k, v in sample.labels.items() if k != "job"}
            by_job.setdefault(job, []).append(sample._replace(labels=labels))
        if not by_job:  # an empty family still documents the metric
            by_job[PUSH_JOB] = []
        for job, samples in by_job.items():
            groups.setdefault(job, []).append(_copy(metric, samples))
    return groups


def push_metrics(
    url: str,
    sessions: sessionmaker[Session],
    settings: Settings,
    clock: Clock,
    *,
    timeout_s: float = 30.0,
) -> list[str]:
    """Collect segmon's metrics from the database once and push them to a Pushgateway.

    Parameters
    ----------
    url
        The Pushgateway, ``http://host:port`` or ``host:port``.
    sessions, settings, clock
        As for :class:`~monitor.prometheus.collector.DatabaseCollector`.
    timeout_s
        Per-request timeout.

    Returns
    -------
    list of str
        The ``job`` of each group pushed: ``segmon`` first, then the segmon jobs.

    Raises
    ------
    PushError
        If the Pushgateway cannot be reached or refuses a push (the message names it).
    """
    from monitor.prometheus.collector import DatabaseCollector

    families = list(DatabaseCollector(sessions, settings, clock).collect())
    groups = split_by_job(families)
    order = [PUSH_JOB, *sorted(j for j in groups if j != PUSH_JOB)]
    for job in order:
        registry = CollectorRegistry()
        registry.register(_Families(groups.get(job, [])))
        try:
            push_to_gateway(url, job=job, registry=registry, timeout=timeout_s)
        except OSError as exc:  # urllib's URLError and HTTPError are OSErrors
            raise PushError(f"pushing job {job!r} to Pushgateway {url!r} failed: {exc}") from exc
    return order
