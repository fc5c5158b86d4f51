"""``segmon report``: one HTML page with segmon's drift summary and an evidently report.

segmon's own part lists the stored checks of the latest window of each length (flagged
first). The tabular part is an evidently ``Report`` with its ``DataDriftPreset`` over a
per-image frame -- image properties plus prediction statistics (instances, mean score,
instances per class) -- of the reference against the longest configured window. With a
holdout reference the frame has ground-truth instances and no ``mean_score`` column.
"""

from __future__ import annotations

import html
import warnings
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import Clock
from monitor.config import DriftSettings
from monitor.drift.features import Population, image_filter, read_instances
from monitor.drift.job import aligned_window, resolve_reference
from monitor.drift.properties import PROPERTY_NAMES
from monitor.slo.duration import parse_duration
from monitor.storage.schema import Category, DatasetImage, DriftResultRow, ImageProperties, Sample

SUMMARY_COLUMNS = (
    "family",
    "feature",
    "class_name",
    "detector",
    "window",
    "statistic",
    "threshold",
    "p_value",
    "drift_detected",
)


@dataclass(frozen=True)
class ReportSummary:
    """What ``segmon report`` wrote."""

    path: Path
    reference: str
    window: str
    window_end: datetime
    n_reference: int
    n_current: int
    columns: tuple[str, ...]
    checks: int
    drifted: int
    evidently_drifted_columns: int | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "path": str(self.path),
            "reference": self.reference,
            "window": self.window,
            "window_end": self.window_end.isoformat(),
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "columns": list(self.columns),
            "checks": self.checks,
            "drifted": self.drifted,
            "evidently_drifted_columns": self.evidently_drifted_columns,
        }


def image_frame(session: Session, pop: Population, class_names: dict[int, str]) -> pd.DataFrame:
    """Return one row per image: properties and prediction statistics.

    Images without stored properties get none of those columns filled (NaN); evidently
    ignores missing values per column.
    """
    owner = DatasetImage if pop.is_holdout else Sample
    prop_owner = ImageProperties.dataset_image_id if pop.is_holdout else ImageProperties.sample_id
    cols = [getattr(ImageProperties, name) for name in PROPERTY_NAMES]
    rows = session.execute(
        select(owner.id, *cols)
        .outerjoin(ImageProperties, prop_owner == owner.id)
        .where(image_filter(pop))
        .order_by(owner.id)
    ).all()
    frame = pd.DataFrame(rows, columns=["image_id", *PROPERTY_NAMES]).set_index("image_id")
    counts: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    scores: dict[int, list[float]] = defaultdict(list)
    for inst in read_instances(session, pop):
        counts["instances"][inst.image_id] += 1
        name = class_names.get(inst.category_id, str(inst.category_id))
        counts[f"n_{name}"][inst.image_id] += 1
        if inst.score is not None:
            scores[inst.image_id].append(inst.score)
    for column in ["instances", *(f"n_{n}" for n in sorted(class_names.values()))]:
        frame[column] = [counts[column].get(i, 0) for i in frame.index]
    if not pop.is_holdout:
        frame["mean_score"] = [
            sum(scores[i]) / len(scores[i]) if scores[i] else float("nan") for i in frame.index
        ]
    return frame.astype(float)


def _latest_checks(session: Session, reference: str) -> list[DriftResultRow]:
    row = DriftResultRow
    latest = (
        select(row.window, func.max(row.window_end).label("end"))
        .where(row.reference == reference)
        .group_by(row.window)
        .subquery()
    )
    stmt = (
        select(row)
        .join(latest, (latest.c.window == row.window) & (latest.c.end == row.window_end))
        .where(row.reference == reference)
        .order_by(row.drift_detected.desc(), row.family, row.feature, row.class_name, row.detector)
    )
    return list(session.scalars(stmt))


def _summary_html(checks: list[DriftResultRow], summary: dict[str, str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in SUMMARY_COLUMNS)
    body = []
    for check in checks:
        cells = []
        for column in SUMMARY_COLUMNS:
            value = getattr(check, column)
            text = f"{value:.4g}" if isinstance(value, float) else str(value)
            cells.append(f"<td>{html.escape(text)}</td>")
        flag = ' class="drift"' if check.drift_detected else ""
        body.append(f"<tr{flag}>{''.join(cells)}</tr>")
    facts = "".join(
        f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in summary.items()
    )
    table = (
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        if checks
        else "<p>No stored drift checks for this reference yet (run <code>segmon drift</code>).</p>"
    )
    return f'<section id="segmon-summary"><h2>segmon drift summary</h2><dl>{facts}</dl>{table}</section>'


def evidently_html(reference: pd.DataFrame, current: pd.DataFrame) -> tuple[str, int | None]:
    """Return evidently's DataDriftPreset HTML of ``current`` vs ``reference``, drifted columns."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    columns = [c for c in reference.columns if c in current.columns]
    definition = DataDefinition(numerical_columns=columns)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # constant columns (image sizes)
        snapshot = Report([DataDriftPreset()]).run(
            Dataset.from_pandas(current[columns], data_definition=definition),
            Dataset.from_pandas(reference[columns], data_definition=definition),
        )
    drifted: int | None = None
    for metric in snapshot.dict()["metrics"]:
        if metric["metric_name"].startswith("DriftedColumnsCount"):
            drifted = int(metric["value"]["count"])
    return snapshot.get_html_str(as_iframe=False), drifted


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>segmon drift report</title>
<style>body{{font-family:sans-serif;margin:1.5em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 6px;text-align:left}}tr.drift{{background:#fdd}}
dt{{font-weight:bold;float:left;clear:left;width:12em}}dd{{margin-left:12em}}
iframe{{width:100%;height:1400px;border:1px solid #ccc}}</style></head><body>
<h1>segmon drift report</h1>
{summary}
<section id="evidently-report"><h2>Tabular drift (evidently DataDriftPreset)</h2>
{evidently}
</section></body></html>
"""


def write_report(
    sessions: sessionmaker[Session], settings: DriftSettings, clock: Clock, out: Path
) -> ReportSummary:
    """Write the HTML report to ``out``.

    Parameters
    ----------
    sessions
        Session factory.
    settings
        The ``drift:`` section (reference and windows).
    clock
        ``now`` decides the current window (the longest configured one).
    out
        The HTML file to write (parent folders are created).

    Returns
    -------
    ReportSummary
    """
    window = max(settings.windows, key=lambda w: parse_duration(w))
    start, end = aligned_window(clock.now(), parse_duration(window))
    with sessions() as session:
        reference = resolve_reference(session, settings.reference)
        class_names = {c.id: c.name for c in session.scalars(select(Category))}
        ref_frame = image_frame(session, reference, class_names)
        cur_frame = image_frame(session, Population(window, start=start, end=end), class_names)
        checks = _latest_checks(session, reference.label)
        facts = {
            "reference": reference.label,
            "current window": f"{window}: {start.isoformat()} to {end.isoformat()}",
            "images": f"{len(ref_frame)} reference, {len(cur_frame)} current",
            "checks flagged": f"{sum(c.drift_detected for c in checks)} of {len(checks)}",
        }
        summary = _summary_html(checks, facts)
    drifted: int | None = None
    if min(len(ref_frame), len(cur_frame)) >= 2:
        evidently_html_str, drifted = evidently_html(ref_frame, cur_frame)
        embedded = f'<iframe srcdoc="{html.escape(evidently_html_str, quote=True)}"></iframe>'
    else:
        embedded = "<p>Too few images on one side for the tabular report.</p>"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(_PAGE.format(summary=summary, evidently=embedded), encoding="utf-8")
    return ReportSummary(
        path=out,
        reference=reference.label,
        window=window,
        window_end=end,
        n_reference=len(ref_frame),
        n_current=len(cur_frame),
        columns=tuple(c for c in ref_frame.columns if c in cur_frame.columns),
        checks=len(checks),
        drifted=sum(c.drift_detected for c in checks),
        evidently_drifted_columns=drifted,
    )
