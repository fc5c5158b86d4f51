"""Three Grafana boards, one per audience: executive, on-call and debug.

- **executive** (``segmon-executive``): are the SLOs met over their period, how much
  error budget is left and how it moved, model quality per model version, how many
  samples were monitored. Few panels, descriptions for a non-engineer.
- **on-call** (``segmon-oncall``): what needs action now: burn rate per SLO and window
  with the SLO's own page and ticket factors drawn as thresholds (from the resolved alert
  policy, capped or dropped tiers included), firing alerts, job and executor health,
  drift checks flagging per family, scrape and ingest health. Links to the debug board.
- **debug** (``segmon-debug``): where it is going wrong: per class, per feature family,
  per model version and the annotation queue, each a row filtered by a variable
  (``$class_name``, ``$family``, ``$model_version``, ``$state``); further rows (the
  canary's) are appended through :data:`DEBUG_EXTRA_ROWS`.

The four deep-dive boards of :mod:`monitor.prometheus.grafana` (overview, drift,
quality, annotation queue) stay as they are; every board links to the others through
the ``segmon`` tag drop-down. Panels query only catalog metrics, series recorded by the
generated rules (``slo:*``) and the series Prometheus itself makes
(:data:`PROMETHEUS_SERIES`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Final

from monitor.prometheus import catalog as mc
from monitor.prometheus import grafana_json as gj
from monitor.prometheus.canary_panels import canary_panels
from monitor.prometheus.grafana_json import JSON, Flow
from monitor.prometheus.history_panels import history_datasource_var, samples_per_version_panel
from monitor.slo.policy import DEFAULT_POLICY, AlertPolicy
from monitor.slo.spec import SLOSpec

__all__ = [
    "AUDIENCE_BOARDS",
    "DEBUG_EXTRA_ROWS",
    "PROMETHEUS_SERIES",
    "SCRAPE_JOB",
    "ExtraRows",
    "audience_boards",
    "burn_thresholds",
    "debug_board",
    "executive_board",
    "oncall_board",
]

#: File stems (and uids, after ``segmon-``) of the three boards.
AUDIENCE_BOARDS: Final = ("executive", "oncall", "debug")
#: Series Prometheus makes itself (alert state, scrape health) that the boards query.
PROMETHEUS_SERIES: Final = frozenset({"ALERTS", "up", "scrape_duration_seconds"})
#: The ``job_name`` of the scrape config of segmon (``dashboards/prometheus/prometheus.yml``).
SCRAPE_JOB: Final = "segmon"

ExtraRows = Callable[[int], list[JSON]]
"""A block of panels for the bottom of the debug board: given the first free ``y``, it
returns its panels (a row header first), laid out from that ``y`` down."""

#: Blocks appended below the debug board's own rows, in order: the canary row.
DEBUG_EXTRA_ROWS: Final[tuple[ExtraRows, ...]] = (canary_panels,)

_PERCENT: Final = "percentunit"
_BUDGET_STEPS: Final = gj.thresholds("red", (0.0, "orange"), (0.25, "green"))
_SEVERITY_COLOUR: Final = {"ticket": "orange", "page": "red"}
#: One colour for values that are neither good nor bad (Grafana's default turns red at 80).
_NEUTRAL: Final = gj.thresholds("blue")


def _pct(value: float) -> str:
    return f"{value * 100:.4g}%"


def _by_period(slos: Sequence[SLOSpec]) -> dict[str, list[str]]:
    periods: dict[str, list[str]] = defaultdict(list)
    for slo in slos:
        periods[slo.period_label].append(slo.name)
    return dict(periods)


def _objective_overrides(slos: Sequence[SLOSpec]) -> list[JSON]:
    """Per SLO (the series named by its ``sloth_slo``): red below its objective, else green."""
    return [
        {
            "matcher": {"id": "byName", "options": slo.name},
            "properties": [
                {"id": "thresholds", "value": gj.thresholds("red", (slo.objective, "green"))}
            ],
        }
        for slo in slos
    ]


def _stat(graph: bool = True) -> JSON:
    return {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "colorMode": "background",
        "graphMode": "area" if graph else "none",
        "textMode": "value_and_name",
        "orientation": "auto",
        "justifyMode": "auto",
    }


def executive_board(slos: Sequence[SLOSpec]) -> JSON:
    """Return the executive board: SLOs met, error budget left, quality per version, volume.

    Compliance and budget read the Sloth series the generated rules record for every
    SLO (segmon's own and the inference service's), each SLO over its own period.

    Examples
    --------
    >>> from monitor.slo.spec import default_slos
    >>> board = executive_board(default_slos())
    >>> board["uid"], [p["title"] for p in board["panels"]][:2]
    ('segmon-executive', ['Targets met? Good events over each SLO period', 'Error budget left'])
    """
    periods = _by_period(slos)
    compliance = [
        gj.target(
            f"1 - max by (sloth_slo) (slo:sli_error:ratio_rate{period}"
            f'{{sloth_slo=~"{"|".join(names)}"}})',
            "{{sloth_slo}}",
        )
        for period, names in periods.items()
    ]
    targets = ", ".join(f"{s.name} {_pct(s.objective)} over {s.period_label}" for s in slos)
    budget = "max by (sloth_slo) (slo:period_error_budget_remaining:ratio)"
    flow = Flow()
    panels = [
        gj.panel(
            "stat",
            "Targets met? Good events over each SLO period",
            compliance,
            flow.at(12, 6),
            _PERCENT,
            "Each service-level objective (SLO) promises a share of good events (correct "
            "masks, no drift alarm, answered requests) over its period. Green: the promise "
            f"is kept so far; red: it is broken. Promises: {targets}.",
            defaults={"decimals": 2},
            overrides=_objective_overrides(slos),
            options=_stat(graph=False),
        ),
        gj.panel(
            "stat",
            "Error budget left",
            [gj.target(budget, "{{sloth_slo}}")],
            flow.at(12, 6),
            _PERCENT,
            "Each SLO allows a few bad events per period: its error budget. 100% means "
            "untouched, 0% used up, below 0 overspent (the promise is broken). Orange "
            "under 25%: changes that risk quality should wait.",
            defaults={"thresholds": _BUDGET_STEPS, "decimals": 1},
            options=_stat(),
        ),
        gj.panel(
            "timeseries",
            "Error budget left over time",
            [gj.target(budget, "{{sloth_slo}}")],
            flow.at(24, 8),
            _PERCENT,
            "How fast each SLO's budget is being spent: a steep fall means trouble now, "
            "a line below the red 0 mark means the period's promise is already broken.",
            defaults={
                "thresholds": _BUDGET_STEPS,
                "custom": {"thresholdsStyle": {"mode": "dashed"}},
            },
        ),
        gj.panel(
            "timeseries",
            "Model quality per model version (labelled images)",
            [
                gj.target(
                    f'max by (model_version) ({mc.COCO_AP}{{metric="AP"}})',
                    "mask AP {{model_version}}",
                ),
                gj.target(
                    f"avg by (model_version) ({mc.CLASS_IOU})", "mean mask IoU {{model_version}}"
                ),
            ],
            flow.at(12, 8),
            _PERCENT,
            "How well each model version outlines objects on images people labelled: "
            "mask AP (the standard COCO score) and mean overlap (IoU) with the true "
            "outline, averaged over classes. Higher is better; compare versions.",
            defaults={"min": 0, "max": 1},
        ),
        gj.panel(
            "timeseries",
            "Agreement with the reference model per model version (no labels needed)",
            [
                gj.target(
                    f"avg by (model_version) ({mc.SHADOW_AGREEMENT})",
                    "{{model_version}}",
                )
            ],
            flow.at(12, 8),
            _PERCENT,
            "Share of the production model's objects that an independent reference "
            "model finds too, on live traffic (last day), averaged over classes. A drop "
            "warns before labelled results arrive.",
            defaults={"min": 0, "max": 1},
        ),
        gj.panel(
            "stat",
            "Samples monitored",
            [
                gj.target(f"sum(increase({mc.SAMPLES_INGESTED}[$__range]))", "monitored in range"),
                gj.target(
                    f"sum(increase({mc.SAMPLES_REJECTED}[$__range]))",
                    "unusable, set aside",
                ),
            ],
            flow.at(24, 5),
            description="Production requests sampled and checked in the selected time "
            "range, and those set aside as unreadable or malformed (see the on-call "
            "board).",
            defaults={"decimals": 0, "thresholds": _NEUTRAL},
            options=_stat(),
        ),
    ]
    return gj.dashboard(
        "executive",
        "Executive",
        [],
        panels,
        links=[
            gj.board_link("On-call board", "segmon-oncall"),
            gj.board_link("Debug board", "segmon-debug"),
        ],
    )


def burn_thresholds(slo: SLOSpec, policy: AlertPolicy = DEFAULT_POLICY) -> JSON:
    """Return the burn-rate thresholds of ``slo``: its resolved ticket and page factors.

    Each factor of a tier that can fire (capped ones at their capped value, dropped ones
    left out) becomes a step, orange for ticket and red for page tiers.

    Examples
    --------
    >>> from monitor.slo.spec import QualitySLI
    >>> slo = SLOSpec(name="q", objective=0.9, sli=QualitySLI(), unreachable_tiers="cap")
    >>> [(s["value"], s["color"]) for s in burn_thresholds(slo)["steps"]]
    [(None, 'green'), (1.0, 'orange'), (3.0, 'orange'), (6.0, 'red'), (9.0, 'red')]
    """
    colour: dict[float, str] = {}
    for alert in slo.alert_policy(policy).alerts:
        for cond in alert.conditions:
            if colour.get(cond.factor) != "red":
                colour[cond.factor] = _SEVERITY_COLOUR[alert.severity]
    return gj.thresholds("green", *sorted(colour.items()))


def _tiers_text(slo: SLOSpec, policy: AlertPolicy) -> str:
    resolved = slo.alert_policy(policy)
    parts = [
        f"{alert.severity}s at "
        + " or ".join(
            f"{c.factor:g}x over both {c.long_window} and {c.short_window}"
            for c in alert.conditions
        )
        for alert in resolved.alerts
    ]
    changed = "".join(f" ({a.describe()})" for a in resolved.adjustments)
    return "; ".join(parts) + changed


def _burn_panel(slo: SLOSpec, policy: AlertPolicy, grid: tuple[int, int, int, int]) -> JSON:
    windows: list[str] = []
    for alert in slo.alert_policy(policy).alerts:
        for cond in alert.conditions:
            windows.extend(w for w in cond.windows if w not in windows)
    selector = f'slo="{slo.name}", window=~"{"|".join(windows)}"'
    return gj.panel(
        "timeseries",
        f"Burn rate: {slo.name}",
        [gj.target(f"max by (window) ({mc.SLO_BURN_RATE}{{{selector}}})", "{{window}}")],
        grid,
        description=f"Event-time burn rate per window (0 while a window holds fewer than "
        f"{slo.min_events} events). {_tiers_text(slo, policy)}.",
        defaults={
            "thresholds": burn_thresholds(slo, policy),
            "min": 0,
            "custom": {"thresholdsStyle": {"mode": "dashed"}},
        },
    )


def oncall_board(slos: Sequence[SLOSpec], policy: AlertPolicy = DEFAULT_POLICY) -> JSON:
    """Return the on-call board: burn rates against the tiers, alerts, jobs, drift, ingest.

    Burn-rate panels cover the SLOs segmon computes (quality, drift); the inference
    service's SLOs page through the same alerts and show in the firing-alerts table.

    Examples
    --------
    >>> from monitor.slo.spec import default_slos
    >>> board = oncall_board(default_slos())
    >>> [p["title"] for p in board["panels"] if p["title"].startswith("Burn")]
    ['Burn rate: mask-quality-holdout', 'Burn rate: mask-quality-shadow', 'Burn rate: image-drift']
    >>> board["links"][-1]["url"]
    '/d/segmon-debug'
    """
    flow = Flow()
    panels: list[JSON] = [
        gj.panel(
            "table",
            "Firing alerts",
            [gj.target('ALERTS{alertstate="firing"}', instant=True)],
            flow.at(24, 7),
            description="Every alert Prometheus is firing now: SLO burn rates (page, "
            "ticket), stale jobs, drift. Each alert's runbook is in its annotations.",
        ),
        flow.row("SLO burn rates (dashed: the SLO's ticket and page factors)"),
    ]
    panels.extend(
        _burn_panel(slo, policy, flow.at(12, 8)) for slo in slos if slo.computed_by_segmon
    )
    job = "by (job)"
    panels += [
        flow.row("Jobs and executor"),
        gj.panel(
            "bargauge",
            "Seconds since each job last succeeded",
            [gj.target(f"time() - max {job} ({mc.JOB_LAST_SUCCESS})", "{{job}}")],
            flow.at(8, 8),
            "s",
            "A job older than a few of its intervals is stuck or failing (the "
            "staleness alerts fire at the configured factor).",
            defaults={"thresholds": _NEUTRAL},
        ),
        gj.panel(
            "timeseries",
            "Failed and abandoned job runs",
            [
                gj.target(
                    f"sum by (job, status) "
                    f'(increase({mc.JOB_RUNS}{{status=~"failed|abandoned"}}[1h]))',
                    "{{job}} {{status}}",
                )
            ],
            flow.at(8, 8),
            description="Runs per hour that failed or were abandoned (their process "
            "died); `segmon status` shows the error.",
            defaults={"thresholds": gj.thresholds("green", (0.5, "red"))},
        ),
        gj.panel(
            "timeseries",
            "Executor: batches in flight, workers, retries",
            [
                gj.target(f"max({mc.EXECUTOR_IN_FLIGHT})", "in flight"),
                gj.target(f"max({mc.EXECUTOR_WORKERS})", "workers"),
                gj.target(f"sum(increase({mc.EXECUTOR_RETRIES}[$__rate_interval]))", "retries"),
            ],
            flow.at(8, 8),
            description="Embed and shadow batches submitted and not yet back, the "
            "executor's workers, and batches resubmitted after a task failed.",
        ),
        flow.row("Drift and input now"),
        gj.panel(
            "stat",
            "Drift checks flagging now, per family",
            [gj.target(f"sum by (family) ({mc.DRIFT_DETECTED})", "{{family}}")],
            flow.at(8, 6),
            description="Latest check of each feature that exceeds its calibrated "
            "threshold; the debug board shows which features.",
            defaults={"thresholds": gj.thresholds("green", (1.0, "orange")), "decimals": 0},
            options=_stat(),
        ),
        gj.panel(
            "stat",
            "segmon scraped",
            [
                gj.target(f'max(up{{job="{SCRAPE_JOB}"}})', "up"),
                gj.target(f'max(scrape_duration_seconds{{job="{SCRAPE_JOB}"}})', "scrape s"),
            ],
            flow.at(4, 6),
            description="1 when Prometheus reaches segmon's /metrics; the scrape time "
            "is the collector's database queries (orange above 10 s).",
            defaults={"thresholds": gj.thresholds("red", (1.0, "green"))},
            overrides=[
                {
                    "matcher": {"id": "byName", "options": "scrape s"},
                    "properties": [
                        {"id": "unit", "value": "s"},
                        {"id": "thresholds", "value": gj.thresholds("green", (10.0, "orange"))},
                    ],
                }
            ],
            options=_stat(graph=False),
        ),
        gj.panel(
            "timeseries",
            "Samples ingested and rejected per second",
            [
                gj.target(
                    f"sum(rate({mc.SAMPLES_INGESTED}[$__rate_interval]))",
                    "ingested",
                ),
                gj.target(
                    f"sum by (reason) (rate({mc.SAMPLES_REJECTED}[$__rate_interval]))",
                    "rejected {{reason}}",
                ),
            ],
            flow.at(12, 6),
            "reqps",
            "Rejected samples are quarantined with a reason; `segmon quarantine` lists them.",
        ),
    ]
    return gj.dashboard(
        "oncall",
        "On-call",
        [],
        panels,
        links=[
            gj.board_link("Executive board", "segmon-executive"),
            gj.board_link("Debug board", "segmon-debug"),
        ],
    )


def _bottom(panels: Sequence[JSON]) -> int:
    return max((p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels), default=0)


def debug_board(extra_rows: Sequence[ExtraRows] = DEBUG_EXTRA_ROWS) -> JSON:
    """Return the debug board: per class, per feature family, per model version, queue.

    Parameters
    ----------
    extra_rows
        Blocks appended at the bottom (default :data:`DEBUG_EXTRA_ROWS`), each called
        with the first free ``y``.

    Examples
    --------
    >>> board = debug_board()
    >>> [p["title"].split(" (")[0] for p in board["panels"] if p["type"] == "row"]
    ['Per class', 'Per feature family', 'Per model version', 'Annotation queue', 'Canary: candidate vs baseline']
    >>> [v["name"] for v in board["templating"]["list"]]
    ['datasource', 'class_name', 'family', 'model_version', 'state', 'history']
    """
    variables = [
        gj.query_var("class_name", mc.CLASS_IOU, "class_name", "Class"),
        gj.query_var("family", mc.DRIFT_STATISTIC, "family", "Feature family"),
        gj.query_var("model_version", mc.SHADOW_AGREEMENT, "model_version", "Model version"),
        gj.query_var("state", mc.QUEUE_DEPTH, "state", "Queue state"),
        history_datasource_var(),
    ]
    cls, fam = 'class_name=~"$class_name"', 'family=~"$family"'
    mv, state = 'model_version=~"$model_version"', 'state=~"$state"'
    per_class = "by (class_name, model_version)"
    check = "by (family, feature, detector, class_name)"
    flow = Flow()
    panels = [
        flow.row("Per class ($class_name)"),
        *(
            gj.panel(
                "timeseries",
                title,
                [
                    gj.target(
                        f"max {per_class} ({name}{{{cls}, {mv}}})",
                        "{{class_name}} {{model_version}}",
                    )
                ],
                flow.at(8, 8),
                unit,
            )
            for title, name, unit in (
                ("Mask IoU per class", mc.CLASS_IOU, _PERCENT),
                ("Mask AP per class", mc.CLASS_AP, _PERCENT),
                ("Shadow agreement per class", mc.SHADOW_AGREEMENT, _PERCENT),
                ("False positives per image and class", mc.CLASS_FALSE_POSITIVES, "short"),
            )
        ),
        gj.panel(
            "timeseries",
            "Drift checks flagging per class",
            [
                gj.target(
                    f'sum by (class_name) ({mc.DRIFT_DETECTED}{{{cls}, class_name!=""}})',
                    "{{class_name}}",
                )
            ],
            flow.at(8, 8),
        ),
        gj.panel(
            "timeseries",
            "Open annotation items per class",
            [
                gj.target(
                    f"sum by (class_name) ({mc.QUEUE_DEPTH_BY_CLASS}{{{cls}, {state}}})",
                    "{{class_name}}",
                )
            ],
            flow.at(8, 8),
        ),
        flow.row("Per feature family ($family)"),
        gj.panel(
            "timeseries",
            "Drift statistic / threshold per feature",
            [
                gj.target(
                    f"max {check} ({mc.DRIFT_STATISTIC}{{{fam}, {cls}}}) / "
                    f"max {check} ({mc.DRIFT_THRESHOLD}{{{fam}, {cls}}} > 0)",
                    "{{family}} {{feature}} {{class_name}} ({{detector}})",
                )
            ],
            flow.at(16, 9),
            description="Above the red line at 1 the latest check exceeds its "
            "calibrated threshold.",
            defaults={
                "thresholds": gj.thresholds("green", (1.0, "red")),
                "custom": {"thresholdsStyle": {"mode": "dashed"}},
            },
        ),
        gj.panel(
            "timeseries",
            "Checks flagging, of all checks, per family",
            [
                gj.target(f"sum by (family) ({mc.DRIFT_DETECTED}{{{fam}}})", "{{family}} flagging"),
                gj.target(f"count by (family) ({mc.DRIFT_DETECTED}{{{fam}}})", "{{family}} checks"),
            ],
            flow.at(8, 9),
        ),
        gj.panel(
            "table",
            "Latest check per feature: statistic, threshold, p-value",
            [
                gj.target(f"max {check} ({name}{{{fam}, {cls}}})", instant=True)
                for name in (mc.DRIFT_STATISTIC, mc.DRIFT_THRESHOLD, mc.DRIFT_P_VALUE)
            ],
            flow.at(24, 8),
            options={"showHeader": True},
            transformations=[{"id": "merge", "options": {}}],
        ),
        flow.row("Per model version ($model_version)"),
        gj.panel(
            "timeseries",
            "Shadow agreement per version",
            [
                gj.target(
                    f"avg by (model_version) ({mc.SHADOW_AGREEMENT}{{{mv}}})",
                    "{{model_version}}",
                )
            ],
            flow.at(8, 8),
            _PERCENT,
            "Mean over classes of the reference model's agreement on the last day's samples.",
        ),
        gj.panel(
            "timeseries",
            "COCO mask summary per version",
            [
                gj.target(
                    f"max by (metric, model_version) ({mc.COCO_AP}{{{mv}}})",
                    "{{metric}} {{model_version}}",
                )
            ],
            flow.at(8, 8),
            _PERCENT,
        ),
        gj.panel(
            "timeseries",
            "Recall by object size per version",
            [
                gj.target(
                    f"max by (area, model_version) ({mc.RECALL_BY_SIZE}{{{mv}}})",
                    "{{area}} {{model_version}}",
                )
            ],
            flow.at(8, 8),
            _PERCENT,
        ),
        samples_per_version_panel(flow.at(24, 8)),
        flow.row("Annotation queue ($state)"),
        gj.panel(
            "timeseries",
            "Queue depth by state",
            [gj.target(f"sum by (state) ({mc.QUEUE_DEPTH}{{{state}}})", "{{state}}")],
            flow.at(12, 8),
        ),
        gj.panel(
            "timeseries",
            "Open items by class and state",
            [
                gj.target(
                    f"sum by (class_name, state) ({mc.QUEUE_DEPTH_BY_CLASS}{{{cls}, {state}}})",
                    "{{class_name}} {{state}}",
                )
            ],
            flow.at(12, 8),
        ),
        *(
            gj.panel(
                "stat",
                title,
                [gj.target(f"max({name})", legend)],
                flow.at(8, 5),
                unit,
                defaults={"thresholds": _NEUTRAL},
            )
            for title, name, legend, unit in (
                ("Oldest queued item", mc.QUEUE_OLDEST_AGE, "age", "s"),
                ("Labelled in the last day", mc.QUEUE_LABELED_LAST_DAY, "labelled", "short"),
                ("Daily budget used", mc.QUEUE_BUDGET_USED, "used", _PERCENT),
            )
        ),
    ]
    for block in extra_rows:
        panels.extend(block(_bottom(panels)))
    return gj.dashboard(
        "debug",
        "Debug",
        variables,
        panels,
        links=[
            gj.board_link("On-call board", "segmon-oncall"),
            gj.board_link("Executive board", "segmon-executive"),
        ],
    )


def audience_boards(
    slos: Sequence[SLOSpec], policy: AlertPolicy = DEFAULT_POLICY
) -> dict[str, JSON]:
    """Return the executive, on-call and debug boards by file stem.

    Examples
    --------
    >>> from monitor.slo.spec import default_slos
    >>> list(audience_boards(default_slos()))
    ['executive', 'oncall', 'debug']
    """
    return {
        "executive": executive_board(slos),
        "oncall": oncall_board(slos, policy),
        "debug": debug_board(),
    }
