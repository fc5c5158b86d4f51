from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from monitor.prometheus.audience_boards import PROMETHEUS_SERIES
from monitor.prometheus.catalog import is_catalog_series
from monitor.prometheus.examples import example_jobs, write_examples
from monitor.prometheus.grafana import DASHBOARDS, dashboard_queries, dashboards
from monitor.prometheus.promql import metric_names, substitute_variables
from monitor.prometheus.rulefiles import write_rules
from monitor.prometheus.rules import service_metric_names
from monitor.slo.spec import SLOConfig
from tests.support.paths import REPO

COMMITTED = REPO / "dashboards"
SAMPLE = {
    "datasource": "prometheus",
    "model_version": "prod-2026.11.1",
    "class_name": "car",
    "family": "image_embedding",
    "detector": "jensen_shannon",
    "slo": "mask-quality-holdout",
    "state": "queued",
    "__rate_interval": "5m",
    "__interval": "1m",
    "__range": "1d",
}


def as_promql(expr: str) -> str:
    """Dashboard query as PromQL, Grafana's label_values(metric, label) as its series query."""
    if expr.startswith("label_values("):
        expr = expr.removeprefix("label_values(").split(",")[0]
    return substitute_variables(expr, SAMPLE)


def test_dashboards_have_datasource_and_model_version_variables() -> None:
    boards = dashboards()
    assert set(boards) == set(DASHBOARDS)
    assert {"overview", "drift", "quality", "annotation-queue", "executive", "oncall"} < set(boards)
    for name, board in boards.items():
        assert board["schemaVersion"] >= 36, name
        ds = board["templating"]["list"][0]
        assert (ds["name"], ds["type"], ds["query"]) == ("datasource", "datasource", "prometheus")
        for panel in board["panels"]:
            if panel["type"] == "row":  # a row header queries nothing
                continue
            # PromQL panels read ${datasource}; the SQL "History" panels ${history}.
            uid = "${history}" if "rawSql" in panel["targets"][0] else "${datasource}"
            assert panel["datasource"]["uid"] == uid, (name, panel["title"])
            assert all(t["datasource"]["uid"] == uid for t in panel["targets"])
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids))
    mv = next(v for v in boards["quality"]["templating"]["list"] if v["name"] == "model_version")
    assert mv["definition"].startswith("label_values(") and "model_version" in mv["definition"]
    overview = json.dumps(boards["overview"])
    assert "ALERTS{" in overview and "segmon_slo_burn_rate" in overview


def test_every_dashboard_metric_is_in_the_catalog(tmp_path: Path) -> None:
    slos = SLOConfig().slos
    files = write_rules(slos, example_jobs(), tmp_path, with_tests=False)
    recorded = {
        r["record"]
        for p in files.rule_files
        for g in yaml.safe_load(p.read_text())["groups"]
        for r in g["rules"]
        if "record" in r
    }
    allowed = service_metric_names(slos) | recorded | PROMETHEUS_SERIES
    for board in dashboards().values():
        for expr in dashboard_queries(board):
            for name in metric_names(as_promql(expr)):
                assert is_catalog_series(name) or name in allowed, (name, expr)


@pytest.mark.prometheus
@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_every_dashboard_expression_passes_promtool(tmp_path: Path) -> None:
    rules = []
    for name, board in dashboards().items():
        for i, expr in enumerate(dashboard_queries(board)):
            record = f"dashboard:{name.replace('-', '_')}:q{i}"
            rules.append({"record": record, "expr": as_promql(expr)})
    path = tmp_path / "dashboards.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(rules)} rules found" in result.stdout


def test_committed_files_match_a_fresh_generation(tmp_path: Path) -> None:
    if not COMMITTED.is_dir():
        pytest.skip(f"no committed dashboards at {COMMITTED}")
    written = write_examples(tmp_path)
    assert written
    for path in written:
        rel = path.relative_to(tmp_path)
        committed = COMMITTED / rel
        assert committed.is_file(), f"{rel} is generated but not committed"
        assert committed.read_bytes() == path.read_bytes(), (
            f"{rel} is stale: run `python -m monitor.prometheus.examples dashboards`"
        )


def test_provisioning_files_point_at_prometheus() -> None:
    prov = COMMITTED / "provisioning"
    if not prov.is_dir():
        pytest.skip(f"no committed provisioning at {prov}")
    ds = yaml.safe_load((prov / "datasources.yaml").read_text())["datasources"][0]
    assert ds["type"] == "prometheus"
    providers = yaml.safe_load((prov / "dashboards.yaml").read_text())["providers"]
    assert providers[0]["type"] == "file"
