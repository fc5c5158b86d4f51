"""SLO commands: ``segmon slo`` (status per window) and ``segmon rules`` (Prometheus rules)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from monitor.cli.app import (
    AppState,
    FromOption,
    JsonFlag,
    PushgatewayOption,
    ToOption,
    app,
    app_state,
    emit,
    err,
    out,
    time_range,
)
from monitor.cli.numbers import num, percent
from monitor.clock import SystemClock
from monitor.errors import InvalidInputError
from monitor.slo.burn import SLOStatus
from monitor.slo.history import SLOHistory
from monitor.slo.spec import SLOSpec


def _status_json(spec: SLOSpec, status: SLOStatus | None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "slo": spec.name,
        "service": spec.service,
        "sli": spec.sli.kind,
        "objective": spec.objective,
        "period": spec.period_label,
        "min_events": spec.min_events,
        "computed_by": "segmon" if status is not None else "prometheus",
    }
    if status is None:
        doc["note"] = "computed by Prometheus from the service's metrics; see `segmon rules`"
        return doc
    doc["error_budget_remaining"] = status.error_budget_remaining
    doc["windows"] = [
        {
            "window": w.window,
            "events": w.events,
            "bad_events": w.bad_events,
            "error_ratio": w.error_ratio,
            "burn_rate": w.burn_rate,
            "raw_burn_rate": w.raw_burn_rate,
            "guarded": w.guarded,
        }
        for w in status.windows
    ]
    return doc


def _history_json(history: SLOHistory) -> dict[str, Any]:
    return {
        "slo": history.slo,
        "episodes": [
            {
                "severity": e.severity,
                "started": e.started.isoformat(),
                "ended": None if e.ended is None else e.ended.isoformat(),
            }
            for e in history.episodes
        ],
        "points": [
            {
                "at": p.status.now.isoformat(),
                "firing": list(p.firing),
                "error_budget_remaining": p.status.error_budget_remaining,
                "windows": {
                    w.window: {
                        "events": w.events,
                        "bad_events": w.bad_events,
                        "raw_burn_rate": w.raw_burn_rate,
                        "guarded": w.guarded,
                    }
                    for w in p.status.windows
                },
            }
            for p in history.points
        ],
    }


def _slo_history(
    state: AppState, period: tuple[datetime, datetime], step: str, as_json: bool
) -> None:
    from monitor.slo.duration import parse_duration
    from monitor.slo.events import read_slo_history

    length = parse_duration(step)
    with state.sessions()() as session:
        histories = [
            read_slo_history(session, s, period[0], period[1], length)
            for s in state.settings.slos
            if s.computed_by_segmon
        ]
    payload = {
        "from": period[0].isoformat(),
        "to": period[1].isoformat(),
        "step": step,
        "slos": [_history_json(h) for h in histories],
    }

    def human() -> None:
        table = Table("slo", "steps", "alert", "fired at (UTC)", "until")
        for h in histories:
            if not h.episodes:
                table.add_row(h.slo, str(len(h.points)), "none", "", "")
            for i, e in enumerate(h.episodes):
                table.add_row(
                    h.slo if i == 0 else "",
                    str(len(h.points)) if i == 0 else "",
                    e.severity,
                    f"{e.started:%Y-%m-%d %H:%M}",
                    "still firing" if e.ended is None else f"{e.ended:%Y-%m-%d %H:%M}",
                )
        out.print(table)

    emit(as_json, payload, human)


@app.command()
def slo(
    ctx: typer.Context,
    start: FromOption = None,
    end: ToOption = None,
    step: Annotated[
        str, typer.Option("--step", help="With --from/--to: time between evaluations.")
    ] = "1h",
    as_json: JsonFlag = False,
    pushgateway: PushgatewayOption = None,
) -> None:
    """Show every SLO's error ratio and burn rate per event-time window, and budget left.

    With --from and --to: the burn rates as of every --step in that period and the
    page and ticket alerts that would have fired, and when (the generated rules' logic).
    """
    from monitor.prometheus.push import push_metrics
    from monitor.slo.events import read_slo_status

    state = app_state(ctx)
    period = time_range(start, end)
    if period is not None:
        if pushgateway:
            raise InvalidInputError("--pushgateway pushes the present, not a past period")
        _slo_history(state, period, step, as_json)
        return
    clock = SystemClock()
    now = clock.now()
    sessions = state.sessions()
    with sessions() as session:
        statuses = [
            (s, read_slo_status(session, s, now) if s.computed_by_segmon else None)
            for s in state.settings.slos
        ]
    payload = {"now": now.isoformat(), "slos": [_status_json(s, st) for s, st in statuses]}

    def human() -> None:
        table = Table("slo", "objective", "window", "events", "bad", "error ratio", "burn rate")
        for spec, st in statuses:
            if st is None:
                table.add_row(spec.name, num(spec.objective), "(Prometheus)", "", "", "", "")
                continue
            for i, w in enumerate(st.windows):
                burn = num(w.raw_burn_rate) + (" (guarded)" if w.guarded else "")
                table.add_row(
                    spec.name if i == 0 else "",
                    num(spec.objective) if i == 0 else "",
                    w.window,
                    str(w.events),
                    str(w.bad_events),
                    num(w.error_ratio),
                    burn,
                )
            table.add_row("", "", "budget left", "", "", percent(st.error_budget_remaining), "")
        out.print(table)

    emit(as_json, payload, human)
    if pushgateway:
        push_metrics(pushgateway, sessions, state.settings, clock)
        err.print(f"pushed metrics to {pushgateway}", highlight=False)


@app.command()
def rules(
    ctx: typer.Context,
    out_dir: Annotated[
        Path, typer.Option("--out", help="Folder for the rule files, their tests, Alertmanager.")
    ],
    drift_for_s: Annotated[
        int, typer.Option("--drift-for", min=1, help="Seconds drift must last before it alerts.")
    ] = 1800,
    stale_factor: Annotated[
        float,
        typer.Option("--stale-factor", min=1.0, help="A job is stale after this many intervals."),
    ] = 3.0,
    as_json: JsonFlag = False,
) -> None:
    """Write Prometheus rules for the configured SLOs and jobs, promtool tests, Alertmanager."""
    from monitor.prometheus.alertmanager import write_alertmanager_config
    from monitor.prometheus.rulefiles import write_rules
    from monitor.service.schedule import build_jobs
    from monitor.storage.engine import session_factory

    state = app_state(ctx)
    # build_jobs only needs a session factory to close over; nothing connects here.
    jobs = {
        job.name: job.interval
        for job in build_jobs(session_factory(state.engine), state.settings, SystemClock())
    }
    files = write_rules(
        state.settings.slos,
        jobs,
        out_dir,
        drift_for=timedelta(seconds=drift_for_s),
        stale_factor=stale_factor,
    )
    alertmanager = write_alertmanager_config(out_dir / "alertmanager.yml")
    written = [*files.rule_files, *files.test_files, alertmanager]
    adjusted = {
        s.name: [a.describe() for a in s.alert_policy().adjustments]
        for s in state.settings.slos
        if s.alert_policy().adjustments
    }
    payload = {
        "out": str(out_dir),
        "rule_files": [str(p) for p in files.rule_files],
        "test_files": [str(p) for p in files.test_files],
        "alertmanager": str(alertmanager),
        "slos": [s.name for s in state.settings.slos],
        # tiers that could never fire at their SLO's objective, capped or dropped as its
        # unreachable_tiers says (an `error` SLO never loads)
        "adjusted_tiers": adjusted,
        "jobs": {name: interval.total_seconds() for name, interval in sorted(jobs.items())},
    }

    def human() -> None:
        out.print(f"wrote {len(written)} files to {out_dir}: " + ", ".join(p.name for p in written))
        for name, notes in adjusted.items():
            for note in notes:
                out.print(f"SLO {name}: {note}", highlight=False)
        out.print(
            f"check them with: promtool check rules {out_dir}/*.rules.yml && "
            f"promtool test rules {out_dir}/*.test.yml"
        )

    emit(as_json, payload, human)
