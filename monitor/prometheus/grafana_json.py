"""Building blocks of Grafana dashboard JSON: targets, panels, rows, variables, layout.

Shared by :mod:`monitor.prometheus.grafana` (the deep-dive boards) and
:mod:`monitor.prometheus.audience_boards` (the executive, on-call and debug boards).
Every Prometheus panel and variable reads the ``${datasource}`` data source variable.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

__all__ = [
    "DS",
    "JSON",
    "SCHEMA_VERSION",
    "Flow",
    "board_link",
    "dashboard",
    "datasource_var",
    "panel",
    "query_var",
    "row",
    "target",
    "thresholds",
]

JSON = dict[str, Any]
SCHEMA_VERSION: Final = 39
DS: Final[JSON] = {"type": "prometheus", "uid": "${datasource}"}
GRID_WIDTH: Final = 24


def target(expr: str, legend: str = "", ref: str = "A", instant: bool = False) -> JSON:
    """Return a Prometheus query of a panel; ``instant`` asks for one table row per series.

    Examples
    --------
    >>> target("up", instant=True)["format"]
    'table'
    """
    out: JSON = {"datasource": DS, "expr": expr, "refId": ref, "legendFormat": legend}
    if instant:
        out.update({"instant": True, "range": False, "format": "table"})
    return out


def panel(
    kind: str,
    title: str,
    targets: Sequence[JSON],
    grid: tuple[int, int, int, int],
    unit: str = "short",
    description: str = "",
    *,
    datasource: JSON = DS,
    defaults: JSON | None = None,
    overrides: Sequence[JSON] = (),
    **extra: Any,
) -> JSON:
    """Return a panel at ``grid`` (x, y, width, height), Prometheus unless ``datasource``.

    ``defaults`` adds to the field defaults (thresholds, min, max, ``custom``),
    ``overrides`` are Grafana field overrides, ``extra`` further top-level keys.

    Examples
    --------
    >>> p = panel("stat", "Up", [target("up")], (0, 0, 6, 4), defaults={"min": 0})
    >>> p["gridPos"], p["fieldConfig"]["defaults"], p["targets"][0]["refId"]
    ({'x': 0, 'y': 0, 'w': 6, 'h': 4}, {'unit': 'short', 'min': 0}, 'A')
    """
    x, y, w, h = grid
    refs = "ABCDEFGH"
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": datasource,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "targets": [{**t, "refId": refs[i]} for i, t in enumerate(targets)],
        "fieldConfig": {"defaults": {"unit": unit, **(defaults or {})}, "overrides": [*overrides]},
        "options": {},
        **extra,
    }


def row(title: str, y: int) -> JSON:
    """Return a (never collapsed) row header across the board at ``y``.

    Examples
    --------
    >>> row("Per class", 7)["gridPos"]
    {'x': 0, 'y': 7, 'w': 24, 'h': 1}
    """
    return {
        "type": "row",
        "title": title,
        "collapsed": False,
        "gridPos": {"x": 0, "y": y, "w": GRID_WIDTH, "h": 1},
        "panels": [],
    }


def thresholds(base: str, *steps: tuple[float, str]) -> JSON:
    """Return absolute thresholds: ``base`` colour below the first step, then each step's.

    Examples
    --------
    >>> thresholds("red", (0.9, "green"))["steps"]
    [{'color': 'red', 'value': None}, {'color': 'green', 'value': 0.9}]
    """
    return {
        "mode": "absolute",
        "steps": [{"color": base, "value": None}]
        + [{"color": color, "value": value} for value, color in steps],
    }


def board_link(title: str, uid: str) -> JSON:
    """Return a dashboard link to the board ``uid``, keeping the time range and variables.

    Examples
    --------
    >>> board_link("Debug", "segmon-debug")["url"]
    '/d/segmon-debug'
    """
    return {
        "type": "link",
        "title": title,
        "url": f"/d/{uid}",
        "keepTime": True,
        "includeVars": True,
        "targetBlank": False,
        "asDropdown": False,
        "icon": "dashboard",
        "tags": [],
    }


def datasource_var() -> JSON:
    """Return the ``datasource`` variable: any Prometheus data source."""
    return {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
        "refresh": 1,
        "regex": "",
    }


def query_var(name: str, metric: str, label: str, title: str) -> JSON:
    """Return a multi-value variable over the values of ``label`` of ``metric`` ("All": ``.*``).

    Examples
    --------
    >>> query_var("state", "segmon_annotation_queue_depth", "state", "State")["definition"]
    'label_values(segmon_annotation_queue_depth, state)'
    """
    query = f"label_values({metric}, {label})"
    return {
        "name": name,
        "label": title,
        "type": "query",
        "datasource": DS,
        "definition": query,
        "query": {"query": query, "refId": f"{name}-values"},
        "refresh": 2,
        "includeAll": True,
        "allValue": ".*",
        "multi": True,
        "current": {},
        "sort": 1,
        "hide": 0,
    }


def dashboard(
    uid: str,
    title: str,
    variables: Sequence[JSON],
    panels: Sequence[JSON],
    links: Sequence[JSON] = (),
) -> JSON:
    """Return a dashboard ``segmon-<uid>``; panels are numbered 1, 2, … in order.

    Every board carries the ``segmon`` tag and a drop-down of the other segmon boards;
    ``links`` come after it.

    Examples
    --------
    >>> board = dashboard("x", "X", [], [row("A", 0)])
    >>> board["uid"], board["title"], board["panels"][0]["id"]
    ('segmon-x', 'segmon / X', 1)
    """
    return {
        "uid": f"segmon-{uid}",
        "title": f"segmon / {title}",
        "tags": ["segmon"],
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,
        "timezone": "utc",
        "time": {"from": "now-7d", "to": "now"},
        "refresh": "1m",
        "annotations": {"list": []},
        "links": [
            {"type": "dashboards", "tags": ["segmon"], "asDropdown": True, "title": "segmon"},
            *links,
        ],
        "templating": {"list": [datasource_var(), *variables]},
        "panels": [{**p, "id": i + 1} for i, p in enumerate(panels)],
    }


class Flow:
    """Lays panels out left to right, wrapping at the board's 24 columns.

    A row header starts a fresh line; :attr:`bottom` is the first free ``y`` below
    everything placed, where the next block of panels may start.

    Examples
    --------
    >>> flow = Flow()
    >>> flow.at(12, 8), flow.at(12, 6), flow.at(8, 4)
    ((0, 0, 12, 8), (12, 0, 12, 6), (0, 8, 8, 4))
    >>> flow.row("Queue")["gridPos"]["y"], flow.at(24, 5), flow.bottom
    (12, (0, 13, 24, 5), 18)
    """

    def __init__(self, y: int = 0) -> None:
        self.x = 0
        self.y = y
        self.height = 0

    def newline(self) -> None:
        """Move below the tallest panel of the current line."""
        self.y, self.x, self.height = self.y + self.height, 0, 0

    def at(self, w: int, h: int) -> tuple[int, int, int, int]:
        """Return the grid position of the next ``w`` x ``h`` panel."""
        if not 0 < w <= GRID_WIDTH or h <= 0:
            raise ValueError(f"panel size {w}x{h} does not fit a {GRID_WIDTH}-column board")
        if self.x + w > GRID_WIDTH:
            self.newline()
        pos = (self.x, self.y, w, h)
        self.x += w
        self.height = max(self.height, h)
        return pos

    def row(self, title: str) -> JSON:
        """Return a row header on a fresh line; panels placed next go below it."""
        self.newline()
        header = row(title, self.y)
        self.y += 1
        return header

    @property
    def bottom(self) -> int:
        """The first ``y`` below every panel placed so far."""
        return self.y + self.height
