from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.jobs.names import JobName
from monitor.prometheus.alertmanager import write_alertmanager_config
from monitor.prometheus.catalog import is_catalog_series
from monitor.prometheus.examples import example_jobs
from monitor.prometheus.promql import metric_names
from monitor.prometheus.rulefiles import write_rules
from monitor.prometheus.rules import BURN_ALERT, service_metric_names
from monitor.slo.policy import DEFAULT_POLICY, BurnRateCondition
from monitor.slo.spec import QualitySLI, SLOConfig, SLOSpec

PROMTOOL = shutil.which("promtool")
AMTOOL = shutil.which("amtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed")
needs_amtool = pytest.mark.skipif(AMTOOL is None, reason="amtool not installed")
SLOS = SLOConfig().slos


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300)


def _load(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(path.read_text())
    return doc


def _all_rules(paths: tuple[Path, ...]) -> list[dict[str, Any]]:
    return [r for p in paths for g in _load(p)["groups"] for r in g["rules"]]


def test_rules_use_sloth_names_and_labels(tmp_path: Path) -> None:
    files = write_rules(SLOS, example_jobs(), tmp_path)
    groups = _load(files.slo)["groups"]
    for slo in SLOS:
        names = {g["name"] for g in groups if g["name"].endswith(slo.sloth_id)}
        assert f"sloth-slo-sli-recordings-{slo.sloth_id}" in names
        assert f"sloth-slo-meta-recordings-{slo.sloth_id}" in names
    for rule in _all_rules((files.slo,)):
        labels = rule["labels"]
        assert {"sloth_id", "sloth_service", "sloth_slo"} <= set(labels), rule
        if rule.get("record", "").startswith("slo:sli_error:ratio_rate"):
            assert rule["record"] == f"slo:sli_error:ratio_rate{labels['sloth_window']}"
        if "alert" in rule:
            assert labels["severity"] == labels["sloth_severity"] in {"page", "ticket"}
    records = {r["record"] for r in _all_rules((files.slo,)) if "record" in r}
    for window in ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"):
        assert f"slo:sli_error:ratio_rate{window}" in records
    # image-drift has page disabled in the defaults: only its ticket alert exists.
    drift = [
        r for r in _all_rules((files.slo,)) if r.get("labels", {}).get("sloth_slo") == "image-drift"
    ]
    assert [r["labels"]["severity"] for r in drift if "alert" in r] == ["ticket"]


def test_alerts_read_burn_rate_and_event_guard_for_segmon_slos(tmp_path: Path) -> None:
    files = write_rules(SLOS, example_jobs(), tmp_path, with_tests=False)
    page = next(
        r
        for r in _all_rules((files.slo,))
        if r.get("alert") == BURN_ALERT
        and r["labels"]["sloth_slo"] == "mask-quality-holdout"
        and r["labels"]["severity"] == "page"
    )
    expr = page["expr"]
    # objective 0.9: burn rate at most 10, so the default config caps 14.4x to 9x
    assert 'segmon_slo_burn_rate{slo="mask-quality-holdout", window="1h"}) > 9)' in expr
    assert 'segmon_slo_burn_rate{slo="mask-quality-holdout", window="5m"}) > 9)' in expr
    assert "14.4" not in expr
    assert "capped from 14.4x to 9x" in page["annotations"]["adjusted_tiers"]
    assert 'segmon_slo_events{slo="mask-quality-holdout", window="6h"}) >= 20' in expr
    assert "> 6" in expr
    assert files.test_files == ()


def test_every_metric_in_rules_is_known(tmp_path: Path) -> None:
    files = write_rules(SLOS, example_jobs(), tmp_path, with_tests=False)
    rules = _all_rules(files.rule_files)
    recorded = {r["record"] for r in rules if "record" in r}
    allowed_service = service_metric_names(SLOS)
    for rule in rules:
        for name in metric_names(rule["expr"]):
            assert is_catalog_series(name) or name in allowed_service or name in recorded, (
                name,
                rule["expr"],
            )


@pytest.mark.prometheus
@needs_promtool
def test_promtool_checks_and_unit_tests_pass(tmp_path: Path) -> None:
    files = write_rules(SLOS, example_jobs(), tmp_path)
    check = _run("promtool", "check", "rules", *map(str, files.rule_files), cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    for test in files.test_files:
        result = _run("promtool", "test", "rules", test.name, cwd=tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
    assert files.slo_test is not None
    cases = _load(files.slo_test)["tests"]
    names = [c["name"] for c in cases]
    for wanted in ("page fires", "only 5m burns", "events", "zero traffic"):
        assert any(wanted in n for n in names), wanted
    fired = [
        c for c in cases if "page fires" in c["name"] and c["alert_rule_test"][0]["exp_alerts"]
    ]
    assert fired and all(
        any(a["exp_labels"]["severity"] == "page" for a in c["alert_rule_test"][0]["exp_alerts"])
        for c in fired
    )


@pytest.mark.prometheus
@needs_promtool
@pytest.mark.parametrize(
    ("severity", "index", "factor"),
    [("page", 0, 50.0), ("ticket", 1, 2.0), ("page", 0, 10.0), ("page", 1, 5.0)],
)
def test_promtool_tests_fail_when_a_threshold_changes(
    tmp_path: Path, severity: str, index: int, factor: float
) -> None:
    files = write_rules(SLOS, example_jobs(), tmp_path)
    alert = getattr(DEFAULT_POLICY, severity)
    conds = list(alert.conditions)
    conds[index] = BurnRateCondition(conds[index].long_window, conds[index].short_window, factor)
    altered = replace(DEFAULT_POLICY, **{severity: replace(alert, conditions=tuple(conds))})
    write_rules(SLOS, example_jobs(), tmp_path, policy=altered, with_tests=False)
    assert (
        f"> {factor:g}" in files.slo.read_text()
    )  # the rule really changed; the test file did not
    assert files.slo_test is not None
    result = _run("promtool", "test", "rules", files.slo_test.name, cwd=tmp_path)
    assert result.returncode != 0, result.stdout
    assert "FAILED" in result.stdout + result.stderr


@pytest.mark.prometheus
@needs_promtool
def test_promtool_tests_fail_without_the_event_guard(tmp_path: Path) -> None:
    slo = SLOSpec(name="q", objective=0.99, sli=QualitySLI(), min_events=50)
    files = write_rules([slo], {}, tmp_path)
    write_rules([replace_min_events(slo, 1)], {}, tmp_path, with_tests=False)
    assert files.slo_test is not None
    result = _run("promtool", "test", "rules", files.slo_test.name, cwd=tmp_path)
    assert result.returncode != 0
    assert "49 events" in result.stdout + result.stderr


def replace_min_events(slo: SLOSpec, n: int) -> SLOSpec:
    return slo.model_copy(update={"min_events": n})


@pytest.mark.prometheus
@needs_promtool
def test_stale_job_threshold_is_tested(tmp_path: Path) -> None:
    files = write_rules([], {JobName.INGEST: timedelta(minutes=5)}, tmp_path)
    write_rules(
        [], {JobName.INGEST: timedelta(minutes=5)}, tmp_path, stale_factor=10, with_tests=False
    )
    assert files.jobs_test is not None
    result = _run("promtool", "test", "rules", files.jobs_test.name, cwd=tmp_path)
    assert result.returncode != 0


@pytest.mark.prometheus
@needs_amtool
def test_alertmanager_example_is_valid_and_routes_by_severity(tmp_path: Path) -> None:
    path = write_alertmanager_config(tmp_path / "alertmanager.yml")
    check = _run("amtool", "check-config", str(path), cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    for labels, receiver in [
        (("severity=page", f"alertname={BURN_ALERT}"), "segmon-page"),
        (("severity=ticket",), "segmon-ticket"),
        (("alertname=Other",), "segmon-default"),
    ]:
        out = _run(
            "amtool", "config", "routes", "test", f"--config.file={path}", *labels, cwd=tmp_path
        )
        assert out.stdout.strip() == receiver, out.stdout + out.stderr
    cfg = _load(path)
    urls = [c["url"] for r in cfg["receivers"] for c in r["webhook_configs"]]
    assert all(u.startswith("http://127.0.0.1:") for u in urls)


@pytest.mark.prometheus
@needs_promtool
def test_promtool_shows_each_tier_firing_at_its_threshold_not_below_with_cap_and_drop(
    tmp_path: Path,
) -> None:
    capped = SLOSpec(name="capped", objective=0.9, sli=QualitySLI(), unreachable_tiers="cap")
    dropped = SLOSpec(name="dropped", objective=0.85, sli=QualitySLI(), unreachable_tiers="drop")
    files = write_rules([capped, dropped], {}, tmp_path)
    assert files.slo_test is not None
    result = _run("promtool", "test", "rules", files.slo_test.name, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    cases = {
        c["name"]: c["alert_rule_test"][0]["exp_alerts"] for c in _load(files.slo_test)["tests"]
    }

    def severities(name: str) -> list[str]:
        return [a["exp_labels"]["severity"] for a in cases[name]]

    # the capped 1h/5m page tier: 9x (0.9 x max burn 10), fires just above, not at or below
    assert severities("capped: page fires at 9.009x over 1h and 5m") == ["page"]
    assert severities("capped: no page at exactly 9x over 1h and 5m") == []
    assert severities("capped: no page at 8.991x over 1h and 5m") == []
    assert severities("capped: page fires at 6.006x over 6h and 30m") == ["page"]
    # 0.85: max burn 6.67; 14.4x dropped, 6x kept; the ticket tiers as in the policy
    assert not any(n.startswith("dropped: ") and "1h and 5m" in n and "page" in n for n in cases)
    assert severities("dropped: page fires at 6.006x over 6h and 30m") == ["page"]
    assert severities("dropped: no page at exactly 6x over 6h and 30m") == []
    assert severities("dropped: ticket fires at 3.003x over 1d and 2h") == ["ticket"]
    assert severities("dropped: no ticket at 2.997x over 1d and 2h") == []
    # a capped rule that is generated uncapped (14.4x) fails the cases written for 9x
    write_rules(
        [capped.model_copy(update={"objective": 0.99}), dropped], {}, tmp_path, with_tests=False
    )
    assert "> 14.4" in files.slo.read_text()
    again = _run("promtool", "test", "rules", files.slo_test.name, cwd=tmp_path)
    assert again.returncode != 0 and "FAILED" in again.stdout + again.stderr
