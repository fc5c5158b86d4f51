"""``segmon report --from --to``: one plot per family and class, self-contained HTML."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import ManualClock
from monitor.config import Settings
from monitor.drift.backfill import backfill_drift
from monitor.service.lookback import write_lookback_report
from monitor.storage.schema import DriftResultRow
from tests.support.drift_scenes import REFERENCE, DriftScenes, Shift, production_reference
from tests.support.result_rows import Rows

FIRST = datetime(2026, 11, 22, tzinfo=UTC)
DAY = timedelta(days=1)
DAYS = 4


def figures(page: str) -> list[tuple[dict[str, str], dict[str, Any]]]:
    """Every figure the page embeds: its attributes and its plotly JSON."""
    found = []
    pattern = r'<script type="application/json" class="segmon-figure" ([^>]*)>(.*?)</script>'
    for attrs, body in re.findall(pattern, page, flags=re.S):
        found.append((dict(re.findall(r'(data-[a-z]+)="([^"]*)"', attrs)), json.loads(body)))
    return found


def test_report_draws_every_family_and_class_over_the_period(
    sessions: sessionmaker[Session], rows: Rows, tmp_path: Path
) -> None:
    """SQLite and PostgreSQL."""
    scenes = DriftScenes(sessions)
    scenes.production(80, REFERENCE)
    for k in range(DAYS):
        day = FIRST + k * DAY
        shifts = {"box": Shift(scale=1.6, embedding=2.0)} if k == DAYS - 1 else None
        scenes.production(30, (day, day + DAY), shifts=shifts)
    drift = production_reference(windows=("1d",), alpha=0.01)
    clock = ManualClock(FIRST + 20 * DAY)
    backfill_drift(sessions, drift, clock, FIRST, FIRST + DAYS * DAY)
    for k in range(DAYS):  # a daily golden evaluation and a shadow-scored sample a day
        at = FIRST + (k + 1) * DAY
        rows.quality(at, [(1, "disc", 8, 1, 1), (2, "box", 7 - k, 2, 1 + k)])
        rows.shadow(at - DAY / 2, at, {1: ([0.9, 0.8], 1, 0), 2: ([0.7], k, 0)})
    rows.session.commit()

    out = tmp_path / "look" / "report.html"
    settings = Settings(drift=drift)
    summary = write_lookback_report(sessions, settings, clock, FIRST, FIRST + DAYS * DAY, out)
    page = out.read_text()

    # Self-contained: plotly.js inlined once, nothing fetched from a network.
    assert page.count('document.querySelectorAll("script.segmon-figure")') == 1
    assert not re.search(r'<script[^>]+src="https?:', page)
    assert len(re.findall(r"plotly\.js v\d", page)) == 1

    found = figures(page)
    kinds = Counter(a["data-kind"] for a, _ in found)
    with sessions() as s:
        stored = s.scalars(select(DriftResultRow)).all()
        expected = {(r.family, r.class_name) for r in stored}
        per_series = Counter((r.family, r.class_name, r.feature, r.detector) for r in stored)
        fired = Counter(
            (r.family, r.class_name, r.feature, r.detector) for r in stored if r.drift_detected
        )
    drift_plots = {
        (a["data-family"], a["data-class"]): f for a, f in found if a["data-kind"] == "drift"
    }
    assert set(drift_plots) == expected and kinds["drift"] == len(expected) == summary.drift_plots
    assert ("mask_geometry", "box") in drift_plots and ("image_properties", "") in drift_plots
    for (family, class_name), fig in drift_plots.items():
        for trace in fig["data"]:
            key = (family, class_name, trace["meta"]["feature"], trace["meta"]["detector"])
            n = fired[key] if trace["meta"]["series"] == "fired" else per_series[key]
            assert len(trace["x"]) == len(trace["y"]) == n, (key, trace["meta"])
        statistic = [t for t in fig["data"] if t["meta"]["series"] == "statistic"]
        assert statistic and all(len(t["x"]) == DAYS for t in statistic)
    # The shifted class's last day is marked as fired on its area check.
    box = drift_plots[("mask_geometry", "box")]
    [area_fired] = [
        t
        for t in box["data"]
        if t["meta"] == {"series": "fired", "feature": "area", "detector": "kolmogorov_smirnov"}
    ]
    assert area_fired["x"][-1].startswith((FIRST + DAYS * DAY).date().isoformat())

    [quality] = [f for a, f in found if a["data-kind"] == "quality"]
    recall = {t["name"]: t["y"] for t in quality["data"] if t["meta"]["series"] == "recall"}
    assert recall["box"] == [7 / 8, 6 / 8, 5 / 8, 4 / 8] and len(recall["disc"]) == DAYS
    [shadow] = [f for a, f in found if a["data-kind"] == "shadow"]
    agreement = {t["name"]: t["y"] for t in shadow["data"]}
    assert agreement["box"] == [1.0, 0.5, 1 / 3, 0.25] and summary.shadow_windows == DAYS
    slo_plots = [(a, f) for a, f in found if a["data-kind"] == "slo"]
    assert {a["data-family"] for a, _ in slo_plots} == {
        s.name for s in settings.slos if s.computed_by_segmon
    }
    specs = {s.name: s for s in settings.slos}
    for attrs, fig in slo_plots:
        burn = [t for t in fig["data"] if t["meta"]["series"] == "burn_rate"]
        assert len(burn) == 7 and all(len(t["x"]) == DAYS * 24 for t in burn)
        # the SLO's own tiers: capped factors where the objective caps them, no 14.4x then
        tiers = specs[attrs["data-family"]].alert_policy().alerts
        lines = {s["y0"] for s in fig["layout"]["shapes"] if s["type"] == "line"}
        assert lines == {c.factor for a in tiers for c in a.conditions}
    assert {
        s["y0"] for a, f in slo_plots for s in f["layout"]["shapes"] if s["type"] == "line"
    } >= {
        1.0,
        6.0,
        9.0,
    } and 14.4 not in {s["y0"] for _, f in slo_plots for s in f["layout"]["shapes"]}

    # evidently's report of the most drifted window is attached.
    assert summary.most_drifted_window_end is not None
    assert 'id="evidently-report"' in page and "<iframe srcdoc=" in page
