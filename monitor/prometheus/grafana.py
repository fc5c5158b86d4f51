"""Grafana dashboards generated from the metrics catalog.

Three boards for three audiences (executive, on-call, debug:
:mod:`monitor.prometheus.audience_boards`) and four deep-dive boards (overview, drift,
quality, annotation queue, built here) plus the provisioning files Grafana reads at
start-up. Every Prometheus panel queries ``${datasource}`` (a Prometheus
data source variable) and only names from :mod:`monitor.prometheus.catalog`, series
recorded by the generated rules (``slo:*``) and Prometheus's own ``ALERTS``. The drift and
quality dashboards also carry "History" panels: SQL over the results tables through the
PostgreSQL data source ``${history}`` (:mod:`monitor.prometheus.history_panels`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final

from monitor.prometheus import catalog as mc
from monitor.prometheus import grafana_json as gj
from monitor.prometheus.audience_boards import AUDIENCE_BOARDS, audience_boards
from monitor.prometheus.canary_panels import CANARY_ROW_HEIGHT, canary_panels
from monitor.prometheus.grafana_json import JSON
from monitor.prometheus.history_panels import (
    HISTORY_DS_TYPE,
    drift_history_panels,
    history_datasource_var,
    quality_history_panels,
)
from monitor.slo.policy import DEFAULT_POLICY, AlertPolicy
from monitor.slo.spec import SLOSpec, default_slos

__all__ = [
    "DASHBOARDS",
    "DEEP_DIVE_BOARDS",
    "dashboard_queries",
    "dashboard_sql",
    "dashboards",
    "provisioning",
    "write_dashboards",
]

#: The deep-dive boards, linked from the audience boards (:mod:`.audience_boards`).
DEEP_DIVE_BOARDS: Final = ("overview", "drift", "quality", "annotation-queue")
DASHBOARDS: Final = (*AUDIENCE_BOARDS, *DEEP_DIVE_BOARDS)


def _overview() -> JSON:
    slo = 'slo=~"$slo"'
    variables = [gj.query_var("slo", mc.SLO_OBJECTIVE, "slo", "SLO")]
    panels = [
        gj.panel(
            "stat",
            "Error budget left (period)",
            [gj.target(f"max by (slo) ({mc.SLO_BUDGET_REMAINING}{{{slo}}})", "{{slo}}")],
            (0, 0, 12, 6),
            "percentunit",
            "1 - bad / allowed bad over the SLO period; negative when overspent.",
        ),
        gj.panel(
            "stat",
            "Objective",
            [gj.target(f"max by (slo) ({mc.SLO_OBJECTIVE}{{{slo}}})", "{{slo}}")],
            (12, 0, 12, 6),
            "percentunit",
        ),
        gj.panel(
            "timeseries",
            "Burn rate by window",
            [
                gj.target(
                    f"max by (slo, window) ({mc.SLO_BURN_RATE}{{{slo}}})", "{{slo}} {{window}}"
                )
            ],
            (0, 6, 12, 8),
            description="Event-time burn rate (0 while a window has too few events). "
            "Pages at 14.4x (1h & 5m) or 6x (6h & 30m).",
        ),
        gj.panel(
            "timeseries",
            "Error ratio by window",
            [
                gj.target(
                    f"max by (slo, window) ({mc.SLO_ERROR_RATIO}{{{slo}}})", "{{slo}} {{window}}"
                )
            ],
            (12, 6, 12, 8),
            "percentunit",
        ),
        gj.panel(
            "table",
            "Events per window",
            [
                gj.target(f"max by (slo, window) ({mc.SLO_EVENTS}{{{slo}}})", instant=True),
                gj.target(f"max by (slo, window) ({mc.SLO_BAD_EVENTS}{{{slo}}})", instant=True),
            ],
            (0, 14, 12, 8),
        ),
        gj.panel(
            "table",
            "Firing alerts",
            [gj.target('ALERTS{alertstate="firing"}', instant=True)],
            (12, 14, 12, 8),
        ),
        gj.panel(
            "timeseries",
            "Error budget left, every SLO (Sloth series)",
            [
                gj.target(
                    "max by (sloth_service, sloth_slo) (slo:period_error_budget_remaining:ratio)",
                    "{{sloth_service}} {{sloth_slo}}",
                )
            ],
            (0, 22, 12, 8),
            "percentunit",
            "Includes the inference service's availability and latency SLOs.",
        ),
        gj.panel(
            "timeseries",
            "Seconds since last successful job run",
            [
                gj.target(
                    f"time() - max by (job) ({mc.JOB_LAST_SUCCESS})",
                    "{{job}}",
                )
            ],
            (12, 22, 12, 8),
            "s",
        ),
        gj.panel(
            "timeseries",
            "Samples ingested and rejected",
            [
                gj.target(
                    f"sum by (source) (rate({mc.SAMPLES_INGESTED}[$__rate_interval]))",
                    "ingested {{source}}",
                ),
                gj.target(
                    f"sum by (reason) (rate({mc.SAMPLES_REJECTED}[$__rate_interval]))",
                    "rejected {{reason}}",
                ),
            ],
            (0, 30, 12, 8),
            "reqps",
        ),
        gj.panel(
            "timeseries",
            "Job runs by status",
            [
                gj.target(
                    f"sum by (job, status) (increase({mc.JOB_RUNS}[$__rate_interval]))",
                    "{{job}} {{status}}",
                )
            ],
            (12, 30, 12, 8),
        ),
    ]
    return gj.dashboard("overview", "Overview", variables, panels)


def _drift() -> JSON:
    sel = 'family=~"$family", detector=~"$detector", class_name=~"$class_name"'
    by = "by (detector, feature, family, class_name)"
    legend = "{{family}} {{feature}} {{class_name}} ({{detector}})"
    variables = [
        gj.query_var("family", mc.DRIFT_STATISTIC, "family", "Feature family"),
        gj.query_var("detector", mc.DRIFT_STATISTIC, "detector", "Detector"),
        gj.query_var("class_name", mc.DRIFT_STATISTIC, "class_name", "Class"),
    ]
    panels = [
        gj.panel(
            "timeseries",
            "Drift statistic / threshold",
            [
                gj.target(
                    f"max {by} ({mc.DRIFT_STATISTIC}{{{sel}}}) / "
                    f"max {by} ({mc.DRIFT_THRESHOLD}{{{sel}}} > 0)",
                    legend,
                )
            ],
            (0, 0, 24, 9),
            description="Above 1 means the latest check exceeds its calibrated threshold.",
        ),
        gj.panel(
            "timeseries",
            "Drift statistic",
            [gj.target(f"max {by} ({mc.DRIFT_STATISTIC}{{{sel}}})", legend)],
            (0, 9, 12, 8),
        ),
        gj.panel(
            "timeseries",
            "Calibrated threshold",
            [gj.target(f"max {by} ({mc.DRIFT_THRESHOLD}{{{sel}}})", legend)],
            (12, 9, 12, 8),
        ),
        gj.panel(
            "timeseries",
            "Features flagged, per family",
            [gj.target(f"sum by (family) ({mc.DRIFT_DETECTED}{{{sel}}})", "{{family}}")],
            (0, 17, 12, 8),
        ),
        gj.panel(
            "timeseries",
            "Features flagged, per class",
            [
                gj.target(
                    f'sum by (class_name) ({mc.DRIFT_DETECTED}{{{sel}, class_name!=""}})',
                    "{{class_name}}",
                )
            ],
            (12, 17, 12, 8),
        ),
        gj.panel(
            "table",
            "Currently drifting",
            [gj.target(f"max {by} ({mc.DRIFT_DETECTED}{{{sel}}}) > 0", instant=True)],
            (0, 25, 12, 8),
        ),
        gj.panel(
            "table",
            "p-values (where the detector gives one)",
            [gj.target(f"min {by} ({mc.DRIFT_P_VALUE}{{{sel}}})", instant=True)],
            (12, 25, 12, 8),
        ),
        *drift_history_panels(top=33),
    ]
    return gj.dashboard("drift", "Drift", [*variables, history_datasource_var()], panels)


def _quality() -> JSON:
    mv = 'model_version=~"$model_version"'
    sel = f'{mv}, class_name=~"$class_name"'
    variables = [
        gj.query_var("model_version", mc.CLASS_IOU, "model_version", "Model version"),
        gj.query_var("class_name", mc.CLASS_IOU, "class_name", "Class"),
    ]
    per_class = "{{class_name}} {{model_version}}"
    panels = [
        gj.panel(
            "timeseries",
            "COCO mask AP",
            [
                gj.target(
                    f"max by (metric, model_version) ({mc.COCO_AP}{{{mv}}})",
                    "{{metric}} {{model_version}}",
                )
            ],
            (0, 0, 12, 8),
            "percentunit",
        ),
        gj.panel(
            "timeseries",
            "Recall by object size",
            [
                gj.target(
                    f"max by (area, model_version) ({mc.RECALL_BY_SIZE}{{{mv}}})",
                    "{{area}} {{model_version}}",
                )
            ],
            (12, 0, 12, 8),
            "percentunit",
        ),
        gj.panel(
            "timeseries",
            "Mask IoU per class",
            [gj.target(f"max by (class_name, model_version) ({mc.CLASS_IOU}{{{sel}}})", per_class)],
            (0, 8, 12, 8),
            "percentunit",
        ),
        gj.panel(
            "timeseries",
            "Mask AP per class",
            [gj.target(f"max by (class_name, model_version) ({mc.CLASS_AP}{{{sel}}})", per_class)],
            (12, 8, 12, 8),
            "percentunit",
        ),
        gj.panel(
            "timeseries",
            "Shadow agreement per class (no labels needed)",
            [
                gj.target(
                    f"max by (class_name, model_version) ({mc.SHADOW_AGREEMENT}{{{sel}}})",
                    per_class,
                )
            ],
            (0, 16, 12, 8),
            "percentunit",
        ),
        gj.panel(
            "timeseries",
            "False positives per image and class",
            [
                gj.target(
                    f"max by (class_name, model_version) ({mc.CLASS_FALSE_POSITIVES}{{{sel}}})",
                    per_class,
                )
            ],
            (12, 16, 12, 8),
        ),
        gj.panel(
            "table",
            "Class confusions (true → predicted)",
            [
                gj.target(
                    f"max by (true_class, predicted_class, model_version) "
                    f'({mc.CLASS_CONFUSION}{{{mv}, true_class=~"$class_name"}}) > 0',
                    instant=True,
                )
            ],
            (0, 24, 24, 10),
            "percentunit",
        ),
        *canary_panels(34),
        *quality_history_panels(top=34 + CANARY_ROW_HEIGHT),
    ]
    return gj.dashboard("quality", "Quality", [*variables, history_datasource_var()], panels)


def _queue() -> JSON:
    variables = [
        gj.query_var("state", mc.QUEUE_DEPTH, "state", "State"),
        gj.query_var("class_name", mc.QUEUE_DEPTH_BY_CLASS, "class_name", "Class"),
    ]
    panels = [
        gj.panel(
            "stat",
            "Items per state",
            [gj.target(f'sum by (state) ({mc.QUEUE_DEPTH}{{state=~"$state"}})', "{{state}}")],
            (0, 0, 12, 5),
        ),
        gj.panel(
            "stat",
            "Oldest queued item",
            [gj.target(f"max({mc.QUEUE_OLDEST_AGE})", "age")],
            (12, 0, 4, 5),
            "s",
        ),
        gj.panel(
            "stat",
            "Labelled in the last day",
            [gj.target(f"max({mc.QUEUE_LABELED_LAST_DAY})", "labelled")],
            (16, 0, 4, 5),
        ),
        gj.panel(
            "stat",
            "Daily budget used",
            [gj.target(f"max({mc.QUEUE_BUDGET_USED})", "used")],
            (20, 0, 4, 5),
            "percentunit",
        ),
        gj.panel(
            "timeseries",
            "Queue depth over time",
            [gj.target(f'sum by (state) ({mc.QUEUE_DEPTH}{{state=~"$state"}})', "{{state}}")],
            (0, 5, 12, 8),
        ),
        gj.panel(
            "timeseries",
            "Open items by class",
            [
                gj.target(
                    f"sum by (class_name, state) "
                    f'({mc.QUEUE_DEPTH_BY_CLASS}{{class_name=~"$class_name", state=~"$state"}})',
                    "{{class_name}} {{state}}",
                )
            ],
            (12, 5, 12, 8),
        ),
        gj.panel(
            "timeseries",
            "Items queued per day, by main reason",
            [
                gj.target(
                    f"sum by (reason) (increase({mc.QUEUE_TASKS_CREATED}[1d]))",
                    "{{reason}}",
                )
            ],
            (0, 13, 12, 8),
        ),
        gj.panel(
            "timeseries",
            "Queue job: seconds since last success",
            [
                gj.target(
                    f'time() - max by (job) ({mc.JOB_LAST_SUCCESS}{{job=~"queue"}})',
                    "{{job}}",
                )
            ],
            (12, 13, 12, 8),
            "s",
        ),
    ]
    return gj.dashboard("annotation-queue", "Annotation queue", variables, panels)


def dashboards(
    slos: Sequence[SLOSpec] | None = None, policy: AlertPolicy = DEFAULT_POLICY
) -> dict[str, JSON]:
    """Return every dashboard by file stem: the three audience boards, then the deep dives.

    Parameters
    ----------
    slos
        The SLOs the executive and on-call boards draw (default :func:`default_slos`).
    policy
        The page and ticket tiers the on-call board's burn-rate thresholds come from.

    Examples
    --------
    >>> boards = dashboards()
    >>> list(boards)  # doctest: +NORMALIZE_WHITESPACE
    ['executive', 'oncall', 'debug', 'overview', 'drift', 'quality', 'annotation-queue']
    >>> boards["drift"]["templating"]["list"][0]["type"]
    'datasource'
    """
    return {
        **audience_boards(default_slos() if slos is None else slos, policy),
        "overview": _overview(),
        "drift": _drift(),
        "quality": _quality(),
        "annotation-queue": _queue(),
    }


def dashboard_queries(board: JSON) -> Iterator[str]:
    """Yield every PromQL expression of a dashboard: panel targets and variable queries.

    Examples
    --------
    >>> next(dashboard_queries(dashboards()["quality"]))
    'label_values(segmon_class_iou_ratio, model_version)'
    """
    for var in board["templating"]["list"]:
        if var["type"] == "query":
            yield var["definition"]
    for panel in board["panels"]:
        for target in panel.get("targets", ()):  # a row header has none
            if "expr" in target:
                yield target["expr"]


def dashboard_sql(board: JSON) -> Iterator[tuple[str, str]]:
    """Yield ``(panel title, SQL)`` of every PostgreSQL panel of a dashboard.

    Examples
    --------
    >>> title, sql = next(dashboard_sql(dashboards()["drift"]))
    >>> title, sql.split()[:3]
    ('History: statistic / threshold of every stored check', ['SELECT', 'window_end', 'AS'])
    """
    for panel in board["panels"]:
        for target in panel.get("targets", ()):
            if "rawSql" in target:
                yield panel["title"], target["rawSql"]


def provisioning(dashboards_path: str = "/var/lib/grafana/dashboards/segmon") -> dict[str, JSON]:
    """Return Grafana's provisioning files: the dashboard provider and the data source.

    Examples
    --------
    >>> provisioning()["datasources"]["datasources"][0]["type"]
    'prometheus'
    """
    return {
        "dashboards": {
            "apiVersion": 1,
            "providers": [
                {
                    "name": "segmon",
                    "orgId": 1,
                    "folder": "segmon",
                    "type": "file",
                    "disableDeletion": False,
                    "allowUiUpdates": False,
                    "updateIntervalSeconds": 60,
                    "options": {"path": dashboards_path, "foldersFromFilesStructure": False},
                }
            ],
        },
        "datasources": {
            "apiVersion": 1,
            "datasources": [
                {
                    "name": "Prometheus",
                    "uid": "prometheus",
                    "type": "prometheus",
                    "access": "proxy",
                    "url": "http://127.0.0.1:9090",
                    "isDefault": True,
                    "jsonData": {"timeInterval": "30s"},
                },
                {
                    # segmon's own database, read-only: the "History" panels. Grant a
                    # reader role SELECT on the results tables; the password comes from
                    # Grafana's environment.
                    "name": "segmon history",
                    "uid": "segmon-history",
                    "type": HISTORY_DS_TYPE,
                    "access": "proxy",
                    "url": "127.0.0.1:5432",
                    "user": "segmon_reader",
                    "jsonData": {
                        "database": "segmon",
                        "sslmode": "disable",
                        "postgresVersion": 1500,
                        "timescaledb": False,
                    },
                    "secureJsonData": {"password": "$SEGMON_GRAFANA_DB_PASSWORD"},
                },
            ],
        },
    }


def write_dashboards(
    out_dir: Path, slos: Sequence[SLOSpec] | None = None, policy: AlertPolicy = DEFAULT_POLICY
) -> list[Path]:
    """Write the dashboards (``<name>.json``) and ``provisioning/*.yaml`` under ``out_dir``.

    ``slos`` and ``policy`` are those of :func:`dashboards`.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     [p.name for p in write_dashboards(Path(d))]  # doctest: +NORMALIZE_WHITESPACE
    ['executive.json', 'oncall.json', 'debug.json', 'overview.json', 'drift.json',
     'quality.json', 'annotation-queue.json', 'dashboards.yaml', 'datasources.yaml']
    """
    from monitor.prometheus.rules import GENERATED_HEADER
    from monitor.prometheus.yamlio import dump_yaml

    written = []
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, board in dashboards(slos, policy).items():
        path = out_dir / f"{name}.json"
        path.write_text(json.dumps(board, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    prov = out_dir / "provisioning"
    prov.mkdir(exist_ok=True)
    for name, doc in provisioning().items():
        path = prov / f"{name}.yaml"
        path.write_text(dump_yaml(doc, header=GENERATED_HEADER), encoding="utf-8")
        written.append(path)
    return written
