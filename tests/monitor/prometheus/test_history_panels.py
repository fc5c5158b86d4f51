"""The dashboards' SQL "History" panels, run against PostgreSQL with Grafana's macros."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta

import pytest
from sqlalchemy import Engine, text

from monitor.config import DEFAULT_CATEGORIES
from monitor.prometheus.grafana import dashboard_sql, dashboards, provisioning
from monitor.prometheus.history_panels import HISTORY_DS_TYPE
from monitor.storage.bootstrap import init_database
from monitor.storage.engine import make_engine, session_factory
from tests.support.grafana_sql import ALL, expand
from tests.support.result_rows import NOW, Rows

START, END = NOW - timedelta(days=3), NOW
EVERYTHING = dict.fromkeys(("family", "detector", "class_name", "model_version"), ALL)


@pytest.fixture
def history(postgres_url: str) -> Iterator[Engine]:
    """A PostgreSQL database with three days of drift, quality and shadow rows."""
    engine = make_engine(postgres_url)
    init_database(engine, DEFAULT_CATEGORIES)
    with session_factory(engine)() as session:
        rows = Rows(session)
        for hour in range(1, 72, 6):
            end = START + timedelta(hours=hour)
            rows.drift(end, hour > 48, computed_at=NOW + timedelta(days=1))  # backfilled
            rows.drift(end, False, family="mask_geometry", feature="area", class_name="box")
            rows.quality(end, [(1, "disc", 8, 1, 1), (2, "box", 6, 2, 3)])
            rows.shadow(end - timedelta(minutes=30), end, {1: ([0.9], 1, 0), 2: ([0.4], 0, 1)})
        session.commit()
    yield engine
    engine.dispose()


def _panels() -> list[tuple[str, str, str]]:
    return [
        (name, title, sql) for name, b in dashboards().items() for title, sql in dashboard_sql(b)
    ]


def test_history_panels_exist_and_use_the_postgresql_source() -> None:
    panels = _panels()
    assert {name for name, _, _ in panels} == {"drift", "quality", "debug"}
    assert len(panels) == 9
    for board in dashboards().values():
        for panel in board["panels"]:
            if any("rawSql" in t for t in panel.get("targets", ())):
                assert panel["datasource"] == {"type": HISTORY_DS_TYPE, "uid": "${history}"}
    sources = provisioning()["datasources"]["datasources"]
    assert [s["type"] for s in sources] == ["prometheus", HISTORY_DS_TYPE]


@pytest.mark.postgres
@pytest.mark.parametrize("selection", ["all", "one"])
def test_every_history_panel_returns_rows_on_postgresql(history: Engine, selection: str) -> None:
    variables: dict[str, Sequence[str]] = dict(EVERYTHING)
    if selection == "one":
        variables.update(class_name=["box"], family=["mask_geometry", "image_embedding"])
    seen = 0
    with history.connect() as conn:
        for board, title, sql in _panels():
            if selection == "one" and "fired" in title:
                continue  # nothing of the box class fired
            query = expand(sql, START, END, variables, interval="6h")
            result = conn.execute(text(query))
            found = result.mappings().all()
            assert found, (board, title, query)
            if '"time"' in sql or "timeGroupAlias" in sql:
                assert {"time"} <= set(found[0]), (title, list(found[0]))
            if "time_series" in title or "metric" in sql.split("FROM")[0]:
                assert {"metric", "value"} <= set(found[0]), (title, list(found[0]))
                if selection == "one" and not {"family", "version"} & set(title.split()):
                    # per class: box only
                    assert all("box" in r["metric"] for r in found), (title, found)
            seen += 1
    assert seen >= 7


@pytest.mark.postgres
def test_backfilled_drift_shows_in_history_and_outside_the_range_does_not(
    history: Engine,
) -> None:
    [(_, _, sql)] = [
        p for p in _panels() if p[1] == "History: checks flagged per window, by family"
    ]
    with history.connect() as conn:
        flagged = conn.execute(text(expand(sql, START, END, EVERYTHING))).mappings().all()
        later = conn.execute(
            text(expand(sql, END + timedelta(days=1), END + timedelta(days=2), EVERYTHING))
        ).all()
    by_family: dict[str, float] = {}
    for row in flagged:
        by_family[row["metric"]] = by_family.get(row["metric"], 0) + float(row["value"])
    # 12 windows, those ending after 48 h flagged (4: 49, 55, 61, 67 h), computed a day
    # after the period: the SQL panel shows them, where a scrape never could.
    assert by_family == {"image_embedding (1h)": 4.0, "mask_geometry (1h)": 0.0}
    assert later == []
