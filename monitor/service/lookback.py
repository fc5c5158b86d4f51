"""``segmon report --from T1 --to T2``: a period looked back on, as plots a person reads.

One self-contained HTML page (plotly.js inlined once, no network at view time):

- **drift**, one plot per family and class: for every feature and detector of that
  family (small multiples, one row each) the statistic of every window of the period
  against its calibrated threshold, the windows that fired marked;
- **quality**, one plot per model version: mean IoU, precision and recall per class of
  every evaluation stored in the period (golden requests per window from
  ``segmon evaluate --from --to``, plus any other evaluation run then);
- **shadow agreement** per class and window: matched / (matched + production-only) of
  the samples captured in the window (the ``segmon_shadow_agreement_ratio`` definition);
- **burn rates**, one plot per SLO: every alert window's burn rate as of each step, the
  page and ticket factors as lines, and the alerts that would have fired shaded
  (:func:`monitor.slo.events.read_slo_history`);
- evidently's data-drift report of the most drifted window (most checks flagged)
  against the reference.

The page stays readable for 90 daily windows and 10 classes because no plot holds more
than one family and class (or one model version, or one SLO): 90 points per line, a
row per feature and detector, sections folded per family. Every figure is stored once,
as plotly JSON in a ``<script type="application/json" class="segmon-figure">`` with
``data-kind``, ``data-family`` and ``data-class`` attributes, and drawn by one small
script: tests and other tools read the figures back from the page.
"""

from __future__ import annotations

import html
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import Clock, check_range
from monitor.config import Settings
from monitor.drift.features import Population
from monitor.drift.job import resolve_reference
from monitor.drift.report import evidently_html, image_frame
from monitor.slo.duration import parse_duration
from monitor.slo.events import read_slo_history
from monitor.slo.history import SLOHistory
from monitor.slo.policy import DEFAULT_POLICY
from monitor.slo.spec import SLOSpec
from monitor.storage.schema import (
    Category,
    ClassQualityRow,
    DriftResultRow,
    QualityResult,
    Sample,
    ShadowClassScore,
    ShadowScore,
)

__all__ = ["Figure", "LookbackSummary", "read_figures", "write_lookback_report"]

_ALERT_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
_ROW_HEIGHT = 170


@dataclass(frozen=True)
class Figure:
    """One plot of the page: what it shows and its plotly JSON."""

    kind: str
    title: str
    spec: dict[str, Any]
    family: str = ""
    class_name: str = ""


@dataclass(frozen=True)
class LookbackSummary:
    """What ``segmon report --from --to`` wrote."""

    path: Path
    start: datetime
    end: datetime
    window: str
    reference: str
    drift_windows: int
    drift_plots: int
    flagged_windows: int
    most_drifted_window_end: datetime | None
    quality_plots: int
    shadow_windows: int
    slo_plots: int
    evidently_drifted_columns: int | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        end = self.most_drifted_window_end
        return {
            "path": str(self.path),
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "window": self.window,
            "reference": self.reference,
            "drift_windows": self.drift_windows,
            "drift_plots": self.drift_plots,
            "flagged_windows": self.flagged_windows,
            "most_drifted_window_end": None if end is None else end.isoformat(),
            "quality_plots": self.quality_plots,
            "shadow_windows": self.shadow_windows,
            "slo_plots": self.slo_plots,
            "evidently_drifted_columns": self.evidently_drifted_columns,
        }


def _iso(values: Iterable[datetime]) -> list[str]:
    return [v.astimezone(UTC).isoformat() for v in values]


def _drift_figures(rows: Sequence[DriftResultRow]) -> list[Figure]:
    from plotly.subplots import make_subplots

    groups: dict[tuple[str, str], dict[tuple[str, str], list[DriftResultRow]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for r in rows:
        groups[(r.family, r.class_name)][(r.feature, r.detector)].append(r)
    figures = []
    for (family, class_name), series in sorted(groups.items()):
        keys = sorted(series)
        fig = make_subplots(
            rows=len(keys),
            cols=1,
            shared_xaxes=True,
            vertical_spacing=min(0.08, 0.3 / len(keys)),
            subplot_titles=[f"{feature} / {detector}" for feature, detector in keys],
        )
        for i, key in enumerate(keys, start=1):
            points = sorted(series[key], key=lambda r: r.window_end)
            x = _iso(r.window_end for r in points)
            first = i == 1
            fig.add_scatter(
                x=x,
                y=[r.statistic for r in points],
                name="statistic",
                mode="lines+markers",
                line={"color": "#1f77b4"},
                marker={"size": 4},
                legendgroup="statistic",
                showlegend=first,
                meta={"series": "statistic", "feature": key[0], "detector": key[1]},
                row=i,
                col=1,
            )
            fig.add_scatter(
                x=x,
                y=[r.threshold for r in points],
                name="calibrated threshold",
                mode="lines",
                line={"color": "#7f7f7f", "dash": "dash"},
                legendgroup="threshold",
                showlegend=first,
                meta={"series": "threshold", "feature": key[0], "detector": key[1]},
                row=i,
                col=1,
            )
            fired = [r for r in points if r.drift_detected]
            fig.add_scatter(
                x=_iso(r.window_end for r in fired),
                y=[r.statistic for r in fired],
                name="drift flagged",
                mode="markers",
                marker={"color": "#d62728", "size": 9, "symbol": "x"},
                legendgroup="fired",
                showlegend=first,
                meta={"series": "fired", "feature": key[0], "detector": key[1]},
                row=i,
                col=1,
            )
        title = f"{family}" + (f" / {class_name}" if class_name else "")
        fig.update_layout(
            title=title,
            height=120 + _ROW_HEIGHT * len(keys),
            margin={"l": 60, "r": 20, "t": 70, "b": 40},
        )
        figures.append(
            Figure("drift", title, json.loads(fig.to_json()), family=family, class_name=class_name)
        )
    return figures


def _quality_figures(session: Session, start: datetime, end: datetime) -> list[Figure]:
    from plotly.subplots import make_subplots

    found = session.execute(
        select(
            QualityResult.model_version,
            QualityResult.computed_at,
            ClassQualityRow.class_name,
            ClassQualityRow.mean_iou,
            ClassQualityRow.precision,
            ClassQualityRow.recall,
        )
        .join(ClassQualityRow, ClassQualityRow.quality_result_id == QualityResult.id)
        .where(QualityResult.computed_at >= start, QualityResult.computed_at <= end)
        .order_by(QualityResult.computed_at, ClassQualityRow.class_name)
    ).all()
    by_version: dict[str, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    for version, at, class_name, mean_iou, precision, recall in found:
        by_version[version][class_name].append((at, mean_iou, precision, recall))
    metrics = ("mean IoU", "precision", "recall")
    figures = []
    for version, classes in sorted(by_version.items()):
        fig = make_subplots(
            rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.08, subplot_titles=metrics
        )
        for n, (class_name, points) in enumerate(sorted(classes.items())):
            for m in range(3):
                fig.add_scatter(
                    x=_iso(p[0] for p in points),
                    y=[p[m + 1] for p in points],
                    name=class_name,
                    mode="lines+markers",
                    marker={"size": 4},
                    legendgroup=class_name,
                    showlegend=m == 0,
                    line={"color": _color(n)},
                    meta={"series": metrics[m], "class_name": class_name},
                    row=m + 1,
                    col=1,
                )
        fig.update_yaxes(range=[0, 1.02])
        title = f"quality per class: {version}"
        fig.update_layout(title=title, height=620, margin={"l": 60, "r": 20, "t": 70, "b": 40})
        figures.append(Figure("quality", title, json.loads(fig.to_json())))
    return figures


def _bucket(at: datetime, length: timedelta) -> datetime:
    step = int(length.total_seconds())
    end_s = -(-int(at.astimezone(UTC).timestamp()) // step) * step
    if end_s == int(at.astimezone(UTC).timestamp()):
        end_s += step  # a capture at a window's start belongs to that window [start, end)
    return datetime.fromtimestamp(end_s, UTC)


def _shadow_figure(
    session: Session, start: datetime, end: datetime, length: timedelta
) -> tuple[Figure | None, int]:
    import plotly.graph_objects as go

    row = ShadowClassScore
    found = session.execute(
        select(
            Category.name, Sample.captured_at, func.sum(row.matched), func.sum(row.production_only)
        )
        .select_from(row)
        .join(ShadowScore, ShadowScore.id == row.shadow_score_id)
        .join(Sample, Sample.id == ShadowScore.sample_id)
        .join(Category, Category.id == row.category_id)
        .where(Sample.captured_at >= start, Sample.captured_at < end)
        .group_by(Category.name, Sample.captured_at)
    ).all()
    counts: dict[str, dict[datetime, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for class_name, captured, matched, production_only in found:
        if captured is None:
            continue
        cell = counts[class_name][_bucket(captured, length)]
        cell[0] += int(matched or 0)
        cell[1] += int(production_only or 0)
    if not counts:
        return None, 0
    fig = go.Figure()
    ends: set[datetime] = set()
    for n, (class_name, by_end) in enumerate(sorted(counts.items())):
        points = [(e, m / (m + p)) for e, (m, p) in sorted(by_end.items()) if m + p > 0]
        ends.update(e for e, _ in points)
        fig.add_scatter(
            x=_iso(e for e, _ in points),
            y=[a for _, a in points],
            name=class_name,
            mode="lines+markers",
            marker={"size": 4},
            line={"color": _color(n)},
            meta={"series": "agreement", "class_name": class_name},
        )
    title = "shadow agreement per class (matched / production instances, by window end)"
    fig.update_layout(
        title=title, height=420, yaxis={"range": [0, 1.02]}, margin={"l": 60, "r": 20, "t": 70}
    )
    return Figure("shadow", title, json.loads(fig.to_json())), len(ends)


def _slo_figure(history: SLOHistory, spec: SLOSpec) -> Figure:
    import plotly.graph_objects as go

    fig = go.Figure()
    x = _iso(p.status.now for p in history.points)
    for n, window in enumerate(_ALERT_WINDOWS):
        fig.add_scatter(
            x=x,
            y=[p.status.window(window).raw_burn_rate for p in history.points],
            name=f"burn {window}",
            mode="lines",
            line={"color": _color(n)},
            meta={"series": "burn_rate", "window": window},
        )
    # The SLO's own tiers: a capped tier is drawn at its capped factor, a dropped one not.
    tiers = spec.alert_policy(DEFAULT_POLICY).alerts
    factors = sorted({c.factor for a in tiers for c in a.conditions})
    for factor in factors:
        fig.add_hline(
            y=factor,
            line={"dash": "dot", "color": "#555", "width": 1},
            annotation_text=f"{factor:g}x",
            annotation_position="top left",
        )
    colors = {"page": "rgba(214,39,40,0.18)", "ticket": "rgba(255,127,14,0.18)"}
    times = [p.status.now for p in history.points]
    # An alert still firing at the end is drawn one step past the last point.
    step = times[-1] - times[-2] if len(times) > 1 else timedelta(0)
    for episode in history.episodes:
        fig.add_vrect(
            x0=episode.started.isoformat(),
            x1=(episode.ended or times[-1] + step).isoformat(),
            fillcolor=colors[episode.severity],
            line_width=0,
            annotation_text=episode.severity,
            annotation_position="top left",
        )
    title = f"SLO {history.slo}: burn rate per window, alert factors, alerts that would have fired"
    fig.update_layout(title=title, height=420, margin={"l": 60, "r": 20, "t": 70, "b": 40})
    return Figure("slo", title, json.loads(fig.to_json()), family=history.slo)


_PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip


def _color(n: int) -> str:
    return _PALETTE[n % len(_PALETTE)]


def _figure_html(index: int, figure: Figure) -> str:
    attrs = (
        f'data-kind="{html.escape(figure.kind)}" data-family="{html.escape(figure.family)}" '
        f'data-class="{html.escape(figure.class_name)}"'
    )
    # "</" inside JSON could end the script element early; JSON allows "<\/".
    payload = json.dumps(figure.spec, separators=(",", ":")).replace("</", "<\\/")
    return (
        f'<div class="plot" id="fig-{index}"></div>'
        f'<script type="application/json" class="segmon-figure" data-target="fig-{index}" '
        f"{attrs}>{payload}</script>"
    )


_DRAW = """<script>
document.querySelectorAll("script.segmon-figure").forEach(function (s) {
  var f = JSON.parse(s.textContent);
  Plotly.newPlot(s.dataset.target, f.data, f.layout, {responsive: true, displaylogo: false});
});
</script>"""

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>segmon: {title}</title>
<style>body{{font-family:sans-serif;margin:1.5em;max-width:1400px}}
details{{margin:0.5em 0}}summary{{font-size:1.15em;cursor:pointer}}
dt{{font-weight:bold;float:left;clear:left;width:14em}}dd{{margin-left:14em}}
iframe{{width:100%;height:1400px;border:1px solid #ccc}}</style>
<script>{plotlyjs}</script></head><body>
<h1>segmon: {title}</h1>
<dl>{facts}</dl>
{sections}
{draw}
</body></html>
"""


def _section(title: str, figures: Sequence[Figure], start_index: int, *, open_: bool) -> str:
    if not figures:
        return f"<details><summary>{html.escape(title)} (nothing stored)</summary></details>"
    body = "".join(_figure_html(start_index + i, f) for i, f in enumerate(figures))
    flag = " open" if open_ else ""
    return (
        f"<details{flag}><summary>{html.escape(title)} ({len(figures)} plots)</summary>"
        f"{body}</details>"
    )


def write_lookback_report(
    sessions: sessionmaker[Session],
    settings: Settings,
    clock: Clock,
    start: datetime,
    end: datetime,
    out: Path,
    *,
    window: str | None = None,
    step: str = "1h",
) -> LookbackSummary:
    """Write the look-back report of ``[start, end]`` to ``out``.

    Parameters
    ----------
    sessions
        Session factory.
    settings
        The whole configuration (drift reference and windows, SLOs).
    clock
        Unused but for symmetry with the other reports (everything is read by event time).
    start, end
        The period.
    out
        The HTML file (parent folders are created).
    window
        Which drift window length to draw (default: the longest configured); shadow
        agreement is bucketed by it too.
    step
        Time between the SLO evaluations.

    Returns
    -------
    LookbackSummary
    """
    import plotly.offline

    del clock
    check_range(start, end)
    drift = settings.drift
    window = window or max(drift.windows, key=parse_duration)
    length = parse_duration(window)
    with sessions() as session:
        reference = resolve_reference(session, drift.reference)
        rows = list(
            session.scalars(
                select(DriftResultRow)
                .where(
                    DriftResultRow.reference == reference.label,
                    DriftResultRow.window == window,
                    DriftResultRow.window_end > start,
                    DriftResultRow.window_end <= end,
                )
                .order_by(DriftResultRow.window_end, DriftResultRow.id)
            )
        )
        drift_figures = _drift_figures(rows)
        quality_figures = _quality_figures(session, start, end)
        shadow_figure, shadow_windows = _shadow_figure(session, start, end, length)
        histories = [
            (read_slo_history(session, spec, start, end, parse_duration(step)), spec)
            for spec in settings.slos
            if spec.computed_by_segmon
        ]
        flagged: dict[datetime, int] = defaultdict(int)
        for r in rows:
            flagged[r.window_end.astimezone(UTC)] += int(r.drift_detected)
        most = max(flagged, key=lambda e: (flagged[e], e)) if flagged else None
        evidently_part, drifted_columns = "<p>No drift windows stored in this period.</p>", None
        if most is not None:
            class_names = {c.id: c.name for c in session.scalars(select(Category))}
            ref_frame = image_frame(session, reference, class_names)
            cur = Population(window, start=most - length, end=most)
            cur_frame = image_frame(session, cur, class_names)
            if min(len(ref_frame), len(cur_frame)) >= 2:
                report_html, drifted_columns = evidently_html(ref_frame, cur_frame)
                evidently_part = (
                    f"<p>The most drifted window, {html.escape(_window_label(cur))}: "
                    f"{flagged[most]} checks flagged.</p>"
                    f'<iframe srcdoc="{html.escape(report_html, quote=True)}"></iframe>'
                )
    slo_figures = [_slo_figure(h, spec) for h, spec in histories if h.points]
    by_family: dict[str, list[Figure]] = defaultdict(list)
    for f in drift_figures:
        by_family[f.family].append(f)
    sections: list[str] = []
    index = 0
    for family, figures in by_family.items():
        sections.append(
            _section(f"drift: {family}", figures, index, open_=family == "image_embedding")
        )
        index += len(figures)
    if not by_family:
        sections.append(_section("drift", [], index, open_=False))
    for title, figures in (
        ("quality per class", quality_figures),
        ("shadow agreement", [shadow_figure] if shadow_figure else []),
        ("SLO burn rates", slo_figures),
    ):
        sections.append(_section(title, figures, index, open_=True))
        index += len(figures)
    sections.append(
        f'<section id="evidently-report"><h2>Tabular drift of the most drifted window '
        f"(evidently DataDriftPreset)</h2>{evidently_part}</section>"
    )
    facts = {
        "period": f"{start.isoformat()} to {end.isoformat()}",
        "reference": reference.label,
        "drift windows": f"{len(flagged)} of {window}, {sum(1 for v in flagged.values() if v)} "
        "with a check flagged",
        "SLO step": step,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        _PAGE.format(
            title=html.escape(f"looking back, {start.date()} to {end.date()}"),
            plotlyjs=plotly.offline.get_plotlyjs(),
            facts="".join(
                f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in facts.items()
            ),
            sections="\n".join(sections),
            draw=_DRAW,
        ),
        encoding="utf-8",
    )
    return LookbackSummary(
        path=out,
        start=start,
        end=end,
        window=window,
        reference=reference.label,
        drift_windows=len(flagged),
        drift_plots=len(drift_figures),
        flagged_windows=sum(1 for v in flagged.values() if v),
        most_drifted_window_end=most,
        quality_plots=len(quality_figures),
        shadow_windows=shadow_windows,
        slo_plots=len(slo_figures),
        evidently_drifted_columns=drifted_columns,
    )


def _window_label(pop: Population) -> str:
    """Say which window a population is, for the page."""
    assert pop.start is not None and pop.end is not None
    return f"{pop.start.isoformat()} to {pop.end.isoformat()}"


_FIGURE = re.compile(
    r'<script type="application/json" class="segmon-figure" data-target="[^"]*" '
    r'data-kind="([^"]*)" data-family="([^"]*)" data-class="([^"]*)">(.*?)</script>',
    re.S,
)


def read_figures(page: str) -> list[Figure]:
    """Return the figures a look-back report embeds, in page order.

    Examples
    --------
    >>> spec = {"data": [{"x": [1, 2], "y": [3, 4]}], "layout": {"title": {"text": "t"}}}
    >>> page = _figure_html(0, Figure("drift", "t", spec, "mask_geometry", "box"))
    >>> [(f.kind, f.family, f.class_name, f.spec["data"][0]["y"]) for f in read_figures(page)]
    [('drift', 'mask_geometry', 'box', [3, 4])]
    """
    out = []
    for kind, family, class_name, body in _FIGURE.findall(page):
        spec = json.loads(body)
        title = spec.get("layout", {}).get("title", {}).get("text", "")
        out.append(
            Figure(
                html.unescape(kind),
                title,
                spec,
                family=html.unescape(family),
                class_name=html.unescape(class_name),
            )
        )
    return out
