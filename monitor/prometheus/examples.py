"""The committed example artefacts under ``dashboards/``, generated from one example config.

``python -m monitor.prometheus.examples [ROOT]`` rewrites them (ROOT defaults to ``dashboards``);
a test regenerates them into a temporary directory and compares bytes, so the committed
files never go stale.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from monitor.jobs.names import JobName
from monitor.prometheus.alertmanager import write_alertmanager_config
from monitor.prometheus.grafana import write_dashboards
from monitor.prometheus.rulefiles import write_rules
from monitor.prometheus.rules import GENERATED_HEADER
from monitor.prometheus.yamlio import dump_yaml
from monitor.slo.spec import SLOConfig

__all__ = ["example_jobs", "prometheus_config", "write_examples"]


def example_jobs() -> dict[JobName, timedelta]:
    """Return the example job schedule used for the staleness alerts.

    Examples
    --------
    >>> example_jobs()[JobName.INGEST]
    datetime.timedelta(seconds=300)
    """
    return {
        JobName.INGEST: timedelta(minutes=5),
        JobName.EMBED: timedelta(minutes=15),
        JobName.SHADOW: timedelta(hours=1),
        JobName.DRIFT: timedelta(hours=1),
        JobName.EVALUATE: timedelta(hours=1),
        JobName.QUEUE: timedelta(hours=1),
        JobName.CANARY: timedelta(hours=1),
    }


def prometheus_config(
    segmon_target: str = "127.0.0.1:8000", alertmanager_target: str = "127.0.0.1:9093"
) -> dict[str, Any]:
    """Return an example ``prometheus.yml`` that scrapes segmon and loads the rules.

    ``honor_labels: true`` keeps the ``job`` label of ``segmon_job_*`` metrics (the
    segmon job name) instead of renaming it ``exported_job``.

    Examples
    --------
    >>> prometheus_config()["scrape_configs"][0]["honor_labels"]
    True
    """
    return {
        "global": {"scrape_interval": "30s", "evaluation_interval": "30s"},
        "rule_files": [
            "../rules/slo.rules.yml",
            "../rules/drift.rules.yml",
            "../rules/jobs.rules.yml",
        ],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager_target]}]}]},
        "scrape_configs": [
            {
                "job_name": "segmon",
                "honor_labels": True,
                "static_configs": [{"targets": [segmon_target]}],
            }
        ],
    }


def write_examples(
    root: Path, config: SLOConfig | None = None, jobs: Mapping[JobName, timedelta] | None = None
) -> list[Path]:
    """Write dashboards, provisioning, rules, promtool tests and example configs under ``root``.

    Parameters
    ----------
    root
        The ``dashboards/`` directory (or a temporary copy).
    config
        SLOs to generate for (default :class:`SLOConfig`'s default set).
    jobs
        Job schedule (default :func:`example_jobs`).

    Returns
    -------
    list of Path
        Every file written.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     written = write_examples(Path(d))
    ...     sorted(str(p.relative_to(d)) for p in written)[:3]
    ['alertmanager/alertmanager.yml', 'annotation-queue.json', 'debug.json']
    """
    config = config or SLOConfig()
    out = write_dashboards(root, config.slos)
    rules = write_rules(config.slos, jobs or example_jobs(), root / "rules")
    out.extend((*rules.rule_files, *rules.test_files))
    out.append(write_alertmanager_config(root / "alertmanager" / "alertmanager.yml"))
    prom = root / "prometheus" / "prometheus.yml"
    prom.parent.mkdir(parents=True, exist_ok=True)
    prom.write_text(dump_yaml(prometheus_config(), header=GENERATED_HEADER), encoding="utf-8")
    out.append(prom)
    return out


if __name__ == "__main__":  # pragma: no cover - thin entry point
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "dashboards")
    for written in write_examples(target):
        print(written)
