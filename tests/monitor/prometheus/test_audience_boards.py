"""The executive, on-call and debug boards: what each audience sees, drawn from the config."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest

from monitor.prometheus import catalog as mc
from monitor.prometheus.audience_boards import (
    AUDIENCE_BOARDS,
    DEBUG_EXTRA_ROWS,
    PROMETHEUS_SERIES,
    audience_boards,
    debug_board,
    executive_board,
    oncall_board,
)
from monitor.prometheus.canary_panels import canary_panels
from monitor.prometheus.grafana import dashboard_queries, dashboard_sql, write_dashboards
from monitor.prometheus.grafana_json import panel, target
from monitor.prometheus.promql import metric_names
from monitor.prometheus.rules import slo_rule_groups
from monitor.slo.policy import (
    DEFAULT_POLICY,
    AlertPolicy,
    BurnRateAlert,
    BurnRateCondition,
    resolve_tiers,
)
from monitor.slo.spec import DriftSLI, QualitySLI, SLOSpec, default_slos

JSON = dict[str, Any]
STRICT = SLOSpec(name="strict-quality", objective=0.99, period="28d", sli=QualitySLI())
SLOS = [*default_slos(), STRICT]


def _exprs(p: JSON) -> list[str]:
    return [t["expr"] for t in p.get("targets", ()) if "expr" in t]


def _titled(board: JSON, title: str) -> JSON:
    found: list[JSON] = [p for p in board["panels"] if p["title"] == title]
    assert len(found) == 1, (title, [p["title"] for p in board["panels"]])
    return found[0]


def _steps(p: JSON) -> list[tuple[float | None, str]]:
    return [(s["value"], s["color"]) for s in p["fieldConfig"]["defaults"]["thresholds"]["steps"]]


def test_executive_board_shows_compliance_budget_quality_per_version_and_volume() -> None:
    board = executive_board(SLOS)
    assert board["uid"] == "segmon-executive"
    assert len(board["panels"]) <= 8  # few panels
    assert all(p["description"] for p in board["panels"])  # every panel explained

    compliance = _titled(board, "Targets met? Good events over each SLO period")
    assert compliance["type"] == "stat"
    # each SLO over its own period: the default ones over 30d, the strict one over 28d
    exprs = _exprs(compliance)
    assert len(exprs) == 2
    assert "slo:sli_error:ratio_rate30d" in exprs[0] and "mask-quality-holdout" in exprs[0]
    assert "slo:sli_error:ratio_rate28d" in exprs[1] and "strict-quality" in exprs[1]
    assert "strict-quality" not in exprs[0]
    # the threshold of each SLO's value is its own objective
    by_slo = {
        o["matcher"]["options"]: o["properties"][0]["value"]["steps"]
        for o in compliance["fieldConfig"]["overrides"]
    }
    assert set(by_slo) == {s.name for s in SLOS}
    for slo in SLOS:
        assert by_slo[slo.name][1] == {"color": "green", "value": slo.objective}
        assert by_slo[slo.name][0]["color"] == "red"
    assert "99% over 28d" in compliance["description"]

    for title in ("Error budget left", "Error budget left over time"):
        budget = _titled(board, title)
        assert _exprs(budget) == ["max by (sloth_slo) (slo:period_error_budget_remaining:ratio)"]
        assert (0.0, "orange") in _steps(budget)
    assert _titled(board, "Error budget left")["type"] == "stat"

    quality = _titled(board, "Model quality per model version (labelled images)")
    assert quality["type"] == "timeseries"
    assert all("by (model_version)" in e for e in _exprs(quality))
    assert {mc.COCO_AP, mc.CLASS_IOU} == set().union(*(metric_names(e) for e in _exprs(quality)))
    assert [t["legendFormat"].endswith("{{model_version}}") for t in quality["targets"]] == [
        True,
        True,
    ]
    volume = _titled(board, "Samples monitored")
    assert mc.SAMPLES_INGESTED in _exprs(volume)[0]
    assert {lnk["url"] for lnk in board["links"][1:]} == {"/d/segmon-oncall", "/d/segmon-debug"}


def _burn_panels(board: JSON) -> dict[str, JSON]:
    return {
        p["title"].removeprefix("Burn rate: "): p
        for p in board["panels"]
        if p["title"].startswith("Burn rate: ")
    }


def _expected_steps(slo: SLOSpec, policy: AlertPolicy) -> list[tuple[float, str]]:
    resolved = resolve_tiers(
        policy,
        slo=slo.name,
        objective=slo.objective,
        severities=slo.severities,
        unreachable=slo.unreachable_tiers,
    )
    colour: dict[float, str] = {}
    for alert in resolved.alerts:
        for cond in alert.conditions:
            colour[cond.factor] = (
                "red" if alert.severity == "page" else colour.get(cond.factor, "orange")
            )
    return sorted(colour.items())


@pytest.mark.parametrize(
    "policy",
    [
        DEFAULT_POLICY,
        AlertPolicy(
            page=BurnRateAlert("page", (BurnRateCondition("2h", "10m", 5.0),)),
            ticket=BurnRateAlert("ticket", (BurnRateCondition("12h", "1h", 2.0),)),
        ),
    ],
    ids=["default", "custom"],
)
def test_oncall_burn_rates_draw_each_slo_tiers_from_the_resolved_policy(
    policy: AlertPolicy,
) -> None:
    board = oncall_board(SLOS, policy)
    burn = _burn_panels(board)
    # the SLOs segmon computes; the inference service's page through ALERTS only
    assert list(burn) == [s.name for s in SLOS if s.computed_by_segmon]
    for slo in SLOS:
        if not slo.computed_by_segmon:
            continue
        p = burn[slo.name]
        assert _steps(p) == [(None, "green"), *_expected_steps(slo, policy)], slo.name
        windows = {
            w for a in slo.alert_policy(policy).alerts for c in a.conditions for w in c.windows
        }
        [expr] = _exprs(p)
        assert f'slo="{slo.name}"' in expr and mc.SLO_BURN_RATE in expr
        selected = re.search(r'window=~"([^"]+)"', expr)
        assert selected is not None and set(selected.group(1).split("|")) == windows
        assert p["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] == "dashed"
    if policy is DEFAULT_POLICY:
        # objective 0.9: 14.4x can never fire, capped to 9x as the SLO says; no 14.4 line
        assert _steps(burn["mask-quality-holdout"]) == [
            (None, "green"),
            (1.0, "orange"),
            (3.0, "orange"),
            (6.0, "red"),
            (9.0, "red"),
        ]
        assert "capped from 14.4x to 9x" in burn["mask-quality-holdout"]["description"]
        # page: false: ticket tiers only
        assert {c for _, c in _steps(burn["image-drift"])} == {"green", "orange"}
        # objective 0.99 keeps the workbook's 14.4x
        assert (14.4, "red") in _steps(burn["strict-quality"])


def test_oncall_board_shows_alerts_jobs_executor_drift_and_ingest_health() -> None:
    board = oncall_board(SLOS)
    assert board["uid"] == "segmon-oncall"
    exprs = [e for p in board["panels"] for e in _exprs(p)]
    text = "\n".join(exprs)
    assert 'ALERTS{alertstate="firing"}' in exprs
    for name in (
        mc.JOB_LAST_SUCCESS,
        mc.EXECUTOR_IN_FLIGHT,
        mc.EXECUTOR_RETRIES,
        mc.SAMPLES_REJECTED,
        "up",
    ):
        assert name in text, name
    assert any(mc.JOB_RUNS in e and "failed" in e for e in exprs)
    drift = _titled(board, "Drift checks flagging now, per family")
    assert _exprs(drift) == [f"sum by (family) ({mc.DRIFT_DETECTED})"]
    assert board["links"][-1]["url"] == "/d/segmon-debug"


def test_debug_board_has_a_variable_per_dimension_and_uses_each() -> None:
    board = debug_board()
    assert board["uid"] == "segmon-debug"
    names = [v["name"] for v in board["templating"]["list"]]
    assert {"class_name", "family", "model_version", "state"} <= set(names)
    queries = [e for p in board["panels"] for e in _exprs(p)]
    sql = [s for _, s in dashboard_sql(board)]
    for var in ("class_name", "family", "model_version", "state"):
        assert any(f'=~"${var}"' in q for q in queries), var
    rows = [p["title"] for p in board["panels"] if p["type"] == "row"]
    assert rows == [
        "Per class ($class_name)",
        "Per feature family ($family)",
        "Per model version ($model_version)",
        "Annotation queue ($state)",
        "Canary: candidate vs baseline",  # DEBUG_EXTRA_ROWS
    ]
    iou = _titled(board, "Mask IoU per class")
    assert "by (class_name, model_version)" in _exprs(iou)[0]
    ratio = _titled(board, "Drift statistic / threshold per feature")
    assert (1.0, "red") in _steps(ratio)
    # sample volume per version: only the stored samples carry the version
    assert len(sql) == 1 and "model_versions" in sql[0] and "${model_version:regex}" in sql[0]
    queue = "\n".join(q for q in queries if "annotation" in q)
    for name in (mc.QUEUE_DEPTH, mc.QUEUE_DEPTH_BY_CLASS, mc.QUEUE_OLDEST_AGE):
        assert name in queue
    assert mc.QUEUE_LABELED_LAST_DAY in queue


def test_extra_rows_go_below_the_debug_board() -> None:
    assert debug_board() == debug_board(DEBUG_EXTRA_ROWS)
    assert (canary_panels,) == DEBUG_EXTRA_ROWS
    plain = debug_board(())
    bottom = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in plain["panels"])
    seen: list[int] = []

    def canary(y: int) -> list[JSON]:
        seen.append(y)
        return [panel("timeseries", "Canary", [target("segmon_canary")], (0, y, 24, 8))]

    board = debug_board([canary])
    assert seen == [bottom]
    assert board["panels"][:-1] == plain["panels"]
    assert board["panels"][-1]["title"] == "Canary"
    assert board["panels"][-1]["id"] == len(plain["panels"]) + 1
    _assert_layout(board)


def _assert_layout(board: JSON) -> None:
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)), board["uid"]
    boxes = []
    for p in board["panels"]:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["w"] > 0 and g["x"] + g["w"] <= 24 and g["h"] > 0, p["title"]
        boxes.append((p["title"], g["x"], g["y"], g["x"] + g["w"], g["y"] + g["h"]))
    for a, b in itertools.combinations(boxes, 2):
        overlap = a[1] < b[3] and b[1] < a[3] and a[2] < b[4] and b[2] < a[4]
        assert not overlap, (board["uid"], a, b)


@pytest.mark.parametrize("name", AUDIENCE_BOARDS)
def test_panels_have_unique_ids_and_do_not_overlap(name: str) -> None:
    _assert_layout(audience_boards(SLOS)[name])


@pytest.mark.parametrize("name", AUDIENCE_BOARDS)
def test_every_expression_reads_catalog_recorded_or_prometheus_series(name: str) -> None:
    recorded = {
        r["record"]
        for slo in SLOS
        for group in slo_rule_groups(slo)
        for r in group["rules"]
        if "record" in r
    }
    board = audience_boards(SLOS)[name]
    exprs = list(dashboard_queries(board))
    assert exprs
    for expr in exprs:
        if expr.startswith("label_values("):  # Grafana asks for the metric's series
            expr = expr.removeprefix("label_values(").split(",")[0]
        for series in metric_names(re.sub(r"\$\w+", "1m", expr)):
            assert (
                mc.is_catalog_series(series) or series in recorded or series in PROMETHEUS_SERIES
            ), (series, expr)


def test_written_boards_follow_the_configured_slos(tmp_path: Path) -> None:
    drift_only = [
        SLOSpec(
            name="embedding-drift",
            objective=0.98,
            sli=DriftSLI(feature_family="image_embedding"),
            min_events=1,
        )
    ]
    write_dashboards(tmp_path, drift_only)
    oncall = json.loads((tmp_path / "oncall.json").read_text())
    assert list(_burn_panels(oncall)) == ["embedding-drift"]
    executive = json.loads((tmp_path / "executive.json").read_text())
    assert "98% over 30d" in executive["panels"][0]["description"]
