"""Grafana panels over the stored history: SQL on the PostgreSQL data source.

The Prometheus panels show what was scraped live; results computed later (a backfill,
``segmon drift --from --to``) never reach them. These panels read the results tables
themselves through Grafana's PostgreSQL data source (``${history}``, provisioned beside
Prometheus), so backfilled windows and per-class timelines show up over any time range.

Queries use Grafana's macros (``$__timeFilter``, ``$__timeGroupAlias``) and filter by the
dashboard's variables in their regex form (``${class_name:regex}``: the "All" value is
``.*``), so the same variables drive the Prometheus and the SQL panels. Every query is
run against PostgreSQL in the tests with the macros expanded as Grafana expands them.
"""

from __future__ import annotations

from typing import Final

from monitor.prometheus.grafana_json import JSON, panel

__all__ = [
    "HISTORY_DS",
    "HISTORY_DS_TYPE",
    "drift_history_panels",
    "history_datasource_var",
    "quality_history_panels",
    "samples_per_version_panel",
]

HISTORY_DS_TYPE: Final = "grafana-postgresql-datasource"
HISTORY_DS: Final[JSON] = {"type": HISTORY_DS_TYPE, "uid": "${history}"}


def history_datasource_var() -> JSON:
    """Return the ``history`` variable: the PostgreSQL data source of segmon's tables."""
    return {
        "name": "history",
        "label": "History (PostgreSQL)",
        "type": "datasource",
        "query": HISTORY_DS_TYPE,
        "current": {},
        "hide": 0,
        "refresh": 1,
        "regex": "",
    }


def _match(column: str, variable: str) -> str:
    return f"{column} ~ '^(${{{variable}:regex}})$'"


def _sql_panel(
    kind: str,
    title: str,
    sql: str,
    grid: tuple[int, int, int, int],
    *,
    unit: str = "short",
    description: str = "",
    table: bool = False,
) -> JSON:
    target = {
        "datasource": HISTORY_DS,
        "refId": "A",
        "rawSql": " ".join(sql.split()),
        "rawQuery": True,
        "editorMode": "code",
        "format": "table" if table else "time_series",
    }
    return panel(kind, title, [target], grid, unit, description, datasource=HISTORY_DS)


def drift_history_panels(top: int) -> list[JSON]:
    """Panels of the drift dashboard over ``drift_results``, from row ``top`` down."""
    where = "$__timeFilter(window_end) AND " + " AND ".join(
        _match(c, v)
        for c, v in (
            ("family", "family"),
            ("detector", "detector"),
            ("class_name", "class_name"),
        )
    )
    return [
        _sql_panel(
            "timeseries",
            "History: statistic / threshold of every stored check",
            f"""SELECT window_end AS "time",
                family || ' ' || feature || ' ' || class_name || ' (' || detector || ', '
                || "window" || ')' AS metric,
                statistic / NULLIF(threshold, 0) AS value
            FROM drift_results WHERE {where} ORDER BY 1, 2""",
            (0, top, 24, 9),
            description="From drift_results: every window computed, backfilled ones "
            "included. Above 1: the check fired.",
        ),
        _sql_panel(
            "timeseries",
            "History: checks flagged per window, by family",
            f"""SELECT window_end AS "time", family || ' (' || "window" || ')' AS metric,
                sum(CASE WHEN drift_detected THEN 1 ELSE 0 END) AS value
            FROM drift_results WHERE {where} GROUP BY 1, 2 ORDER BY 1, 2""",
            (0, top + 9, 12, 8),
        ),
        _sql_panel(
            "timeseries",
            "History: checks flagged per window, by class",
            f"""SELECT window_end AS "time", class_name || ' (' || "window" || ')' AS metric,
                sum(CASE WHEN drift_detected THEN 1 ELSE 0 END) AS value
            FROM drift_results WHERE {where} AND class_name <> ''
            GROUP BY 1, 2 ORDER BY 1, 2""",
            (12, top + 9, 12, 8),
        ),
        _sql_panel(
            "table",
            "History: checks that fired",
            f"""SELECT window_end AS "time", "window", family, feature, class_name, detector,
                statistic, threshold, p_value, n_current, reference
            FROM drift_results WHERE {where} AND drift_detected
            ORDER BY window_end DESC, family, feature, class_name LIMIT 500""",
            (0, top + 17, 24, 9),
            table=True,
        ),
    ]


def quality_history_panels(top: int) -> list[JSON]:
    """Panels of the quality dashboard over the quality and shadow tables."""
    per_class = (
        "FROM class_quality c JOIN quality_results q ON q.id = c.quality_result_id "
        "WHERE $__timeFilter(q.computed_at) AND "
        + _match("q.model_version", "model_version")
        + " AND "
        + _match("c.class_name", "class_name")
    )
    return [
        _sql_panel(
            "timeseries",
            "History: mask IoU per class (every stored evaluation)",
            f"""SELECT q.computed_at AS "time", c.class_name || ' ' || q.model_version AS metric,
                c.mean_iou AS value {per_class} AND c.mean_iou IS NOT NULL ORDER BY 1, 2""",
            (0, top, 12, 8),
            unit="percentunit",
            description="From quality_results / class_quality: golden requests per window "
            "(segmon evaluate --from --to) at each window's end.",
        ),
        _sql_panel(
            "timeseries",
            "History: recall per class",
            f"""SELECT q.computed_at AS "time", c.class_name || ' ' || q.model_version AS metric,
                c.recall AS value {per_class} AND c.recall IS NOT NULL ORDER BY 1, 2""",
            (12, top, 12, 8),
            unit="percentunit",
        ),
        _sql_panel(
            "timeseries",
            "History: shadow agreement per class (by capture time)",
            """SELECT $__timeGroupAlias(s.captured_at, $__interval), cat.name AS metric,
                sum(c.matched) * 1.0 / NULLIF(sum(c.matched + c.production_only), 0) AS value
            FROM shadow_class_scores c
            JOIN shadow_scores sh ON sh.id = c.shadow_score_id
            JOIN samples s ON s.id = sh.sample_id
            JOIN categories cat ON cat.id = c.category_id
            JOIN model_versions mv ON mv.id = s.model_version_id
            WHERE $__timeFilter(s.captured_at) AND """
            + _match("mv.name", "model_version")
            + " AND "
            + _match("cat.name", "class_name")
            + " GROUP BY 1, 2 ORDER BY 1, 2",
            (0, top + 8, 12, 8),
            unit="percentunit",
            description="matched / (matched + production-only) of the samples captured in "
            "each interval, as segmon_shadow_agreement_ratio defines it.",
        ),
        _sql_panel(
            "table",
            "History: evaluations",
            """SELECT q.computed_at AS "time", q.model_version, q.prediction_source,
                q.n_images, q.ap, q.mean_iou, q.precision, q.recall
            FROM quality_results q WHERE $__timeFilter(q.computed_at) AND """
            + _match("q.model_version", "model_version")
            + " ORDER BY q.computed_at DESC LIMIT 500",
            (12, top + 8, 12, 8),
            table=True,
        ),
    ]


def samples_per_version_panel(grid: tuple[int, int, int, int]) -> JSON:
    """Panel of the samples captured per model version and interval, from ``samples``.

    No metric carries the model version of the sampled traffic; the stored samples do.
    """
    return _sql_panel(
        "timeseries",
        "History: samples per model version (by capture time)",
        """SELECT $__timeGroupAlias(s.captured_at, $__interval), mv.name AS metric,
            count(*) AS value
        FROM samples s JOIN model_versions mv ON mv.id = s.model_version_id
        WHERE $__timeFilter(s.captured_at) AND s.status = 'ok' AND """
        + _match("mv.name", "model_version")
        + " GROUP BY 1, 2 ORDER BY 1, 2",
        grid,
        description="Accepted samples (quarantined ones left out) captured in each "
        "interval, per model version: how much traffic each version serves.",
    )
