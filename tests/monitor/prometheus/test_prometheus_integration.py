"""A real Prometheus scrapes segmon's /metrics of a degraded stream: the page fires.

The stream is generated with drift (``monitor.synth``), ingested with
``monitor.ingest.job.ingest_log``, evaluated against its labeled holdout with
``monitor.quality.job.evaluate_holdout``; shadow rows score production against the labeled
truth, and drift rows hold real detectors' verdicts on clean vs drifted images.
Prometheus loads the rules ``segmon rules`` generates for the default SLOs. A slower
canary version served part of the stream; the canary job's verdict reaches the canary
panels and puts its alert in pending.
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.clock import SystemClock
from monitor.config import Settings
from monitor.prometheus.canary_rules import CANARY_ALERT
from monitor.prometheus.grafana import dashboard_queries
from monitor.prometheus.promql import substitute_variables
from monitor.prometheus.rulefiles import write_rules
from monitor.prometheus.rules import BURN_ALERT
from monitor.service.schedule import build_jobs
from monitor.service.serve import default_registry
from monitor.service.server import MonitorServer
from tests.support.degraded_stream import CANARY, build_degraded_stream
from tests.support.paths import REPO
from tests.support.processes import StartProcess, binary, free_port, http_get

pytestmark = pytest.mark.prometheus
DEADLINE_S = 60.0
POLL_S = 0.5
# Every template variable as Grafana's "All" sends it; Grafana's interval variables.
VARIABLES = {
    "slo": ".*",
    "family": ".*",
    "detector": ".*",
    "class_name": ".*",
    "model_version": ".*",
    "state": ".*",
    "__rate_interval": "1m",
    "__interval": "1s",
    "__range": "1h",
}


def _api(base: str, path: str, **params: str) -> dict[str, Any]:
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    doc: dict[str, Any] = json.loads(http_get(f"{base}/api/v1/{path}{query}"))
    assert doc["status"] == "success", doc
    data: dict[str, Any] = doc["data"]
    return data


def _queries() -> list[str]:
    out = []
    for path in sorted((REPO / "dashboards").glob("*.json")):
        for expr in dashboard_queries(json.loads(path.read_text())):
            if expr.startswith("label_values("):  # Grafana asks for the metric's series
                expr = expr.removeprefix("label_values(").split(",")[0]
            out.append(substitute_variables(expr, VARIABLES))
    return out


def test_page_fires_and_every_dashboard_query_has_data(
    processes: StartProcess, tmp_path: Path
) -> None:
    prometheus = binary("prometheus")
    now = datetime.now(UTC)
    url = f"sqlite:///{tmp_path / 'segmon.db'}"
    stream = build_degraded_stream(tmp_path / "stream", url, now)
    settings = Settings(database_url=url)
    jobs = {j.name: j.interval for j in build_jobs(stream.sessions, settings, SystemClock())}
    rules = write_rules(settings.slos, jobs, tmp_path / "rules", with_tests=False)

    server = MonitorServer(
        ("127.0.0.1", 0),
        default_registry(stream.sessions, settings, SystemClock()),
        stream.sessions,
        None,
        None,
    )
    server.start()
    try:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        config = tmp_path / "prometheus.yml"
        config.write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "rule_files": [str(p) for p in rules.rule_files],
                    "scrape_configs": [
                        {
                            "job_name": "segmon",
                            "honor_labels": True,
                            "static_configs": [{"targets": [server.url.removeprefix("http://")]}],
                        }
                    ],
                }
            )
        )
        log = tmp_path / "prometheus.log"
        processes(
            [
                prometheus,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            log,
        )
        deadline = time.monotonic() + DEADLINE_S
        requests = 0

        def page_firing() -> list[dict[str, Any]]:
            alerts = _api(base, "alerts")["alerts"]
            return [
                a
                for a in alerts
                if a["labels"].get("alertname") == BURN_ALERT
                and a["labels"].get("severity") == "page"
                and a["state"] == "firing"
            ]

        # The holdout evaluation's error ratio (~0.95) is above 6 x its 0.1 budget over
        # 6h and 30m; each SLO's alerts are a rule group evaluated on its own.
        paged: set[str] = set()
        while time.monotonic() < deadline and "mask-quality-holdout" not in paged:
            requests += 1
            with contextlib.suppress(OSError):  # not listening yet
                paged = {a["labels"]["sloth_slo"] for a in page_firing()}
            if "mask-quality-holdout" not in paged:
                time.sleep(POLL_S)
        assert "mask-quality-holdout" in paged, (
            f"no page after {DEADLINE_S}s (firing: {paged}):\n{log.read_text()[-3000:]}"
        )
        assert requests <= DEADLINE_S / POLL_S + 1

        pending = _queries()
        assert len(pending) > 30
        while pending and time.monotonic() < deadline:
            still = []
            for expr in pending:
                if not _api(base, "query", query=expr)["result"]:
                    still.append(expr)  # e.g. rate() needs a second scrape
            pending = still
            if pending:
                time.sleep(POLL_S)
        assert pending == [], f"dashboard queries without data: {pending}"

        # The canary answered slower: its alert is pending (it fires after an hour).
        assert stream.canary is not None and stream.canary.baseline == "prod-2026.11.1"
        canary = [
            (a["labels"]["candidate"], a["labels"]["signal"], a["state"])
            for a in _api(base, "alerts")["alerts"]
            if a["labels"].get("alertname") == CANARY_ALERT
        ]
        assert canary == [(CANARY, "latency_ms", "pending")], canary
    finally:
        server.stop()
