"""``segmon drift`` (run the drift checks now) and ``segmon report`` (HTML report)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from monitor.cli.app import (
    AppState,
    FromOption,
    JsonFlag,
    ToOption,
    app,
    app_state,
    emit,
    out,
    progress_bar,
    time_range,
)
from monitor.cli.numbers import num
from monitor.clock import SystemClock
from monitor.errors import InvalidInputError

if TYPE_CHECKING:
    from monitor.drift.job import StoredCheck


@app.command()
def drift(
    ctx: typer.Context,
    start: FromOption = None,
    end: ToOption = None,
    max_windows: Annotated[
        int | None,
        typer.Option(
            "--max-windows",
            min=1,
            help="With --from/--to: allow this many windows (default drift.backfill_max_windows).",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Check every feature family in the configured windows against the reference.

    Results are upserted into drift_results (a rerun in the same period replaces the
    same rows); windows with fewer than drift.min_samples images are skipped. After
    downtime the run also computes the windows missed since the newest stored one
    (at most drift.catch_up_windows per length). With --from and --to: every aligned
    window of each length inside that period (a backfill; windows already stored are
    skipped, so a killed backfill resumes where it stopped).
    """
    from monitor.jobs.names import JobName
    from monitor.jobs.runs import run_job
    from monitor.service.schedule import drift_job

    state = app_state(ctx)
    period = time_range(start, end)
    if period is not None:
        _backfill(state, period, max_windows, as_json)
        return
    if max_windows is not None:
        raise InvalidInputError("--max-windows goes with --from and --to")
    clock = SystemClock()
    sessions = state.sessions()
    report, run = run_job(
        sessions,
        JobName.DRIFT,
        clock,
        lambda run_id: drift_job(sessions, state.settings, clock, run_id),
    )
    payload = {
        **report.counts(),
        "run_id": run.run_id,
        "results": [c.as_dict() for c in report.checks],
    }

    def human() -> None:
        out.print(
            f"reference {report.reference}; {len(report.checks)} checks, "
            f"{payload['drift_detected']} flagged; {report.skipped_windows} windows skipped"
            + (f"; {report.windows_behind} missed windows left" if report.windows_behind else "")
        )
        out.print(_checks_table(report.checks))

    emit(as_json, payload, human)


def _checks_table(checks: list[StoredCheck]) -> Table:
    table = Table(
        "window", "family", "feature", "class", "detector", "current", "statistic", "p", "drift"
    )
    for c in sorted(checks, key=lambda c: not c.result.drift_detected):
        r = c.result
        # Per-object checks: the objects, and the images (the unit) they lie on.
        size = f"{r.n_current}"
        if r.n_current_groups is not None:
            size += f" on {r.n_current_groups} images"
        table.add_row(
            c.window,
            c.family,
            r.feature,
            c.class_name,
            c.detector,
            size,
            num(r.statistic),
            num(r.p_value, 3),
            "yes" if r.drift_detected else "no",
        )
    return table


def _backfill(
    state: AppState, period: tuple[datetime, datetime], max_windows: int | None, as_json: bool
) -> None:
    from monitor.drift.backfill import (
        BackfillProgress,
        BackfillReport,
        backfill_drift,
        plan_windows,
    )
    from monitor.jobs.executor import opened
    from monitor.jobs.names import JobName
    from monitor.jobs.runs import run_job

    settings = state.settings.drift
    cap = settings.backfill_max_windows if max_windows is None else max_windows
    plan_windows(settings.windows, *period, cap)  # a refused range touches no database
    clock = SystemClock()
    sessions = state.sessions()
    with progress_bar("drift backfill (windows)") as update:

        def progress(step: BackfillProgress) -> None:
            update(step.done, step.total)

        def backfill(run_id: int) -> BackfillReport:
            # image properties on the configured executor, as the drift job computes them
            with opened(state.settings.executor) as running:
                return backfill_drift(
                    sessions,
                    state.settings.drift,
                    clock,
                    period[0],
                    period[1],
                    run_id=run_id,
                    access=state.settings.images.access(),
                    progress=progress,
                    max_windows=max_windows,
                    executor=running,
                )

        report, run = run_job(sessions, JobName.DRIFT, clock, backfill)
    payload = {**report.counts(), "run_id": run.run_id}

    def human() -> None:
        out.print(
            f"reference {report.drift.reference}; {report.planned} windows from "
            f"{period[0].isoformat()} to {period[1].isoformat()}: {report.computed} computed, "
            f"{report.already_stored} already stored, {report.too_few_images} with too few "
            f"images; {len(report.drift.checks)} checks stored, "
            f"{payload['drift_detected']} flagged"
        )
        table = Table("window", "end", "flagged", "checks")
        for w in report.flagged_windows:
            table.add_row(w["window"], w["end"], str(w["flagged"]), str(w["checks"]))
        if report.flagged_windows:
            out.print(table)

    emit(as_json, payload, human)


@app.command()
def report(
    ctx: typer.Context,
    out_path: Annotated[
        Path, typer.Option("--out", help="HTML file to write.", dir_okay=False)
    ] = Path("report.html"),
    start: FromOption = None,
    end: ToOption = None,
    window: Annotated[
        str | None,
        typer.Option(
            "--window", help="With --from/--to: drift window length drawn (default: longest)."
        ),
    ] = None,
    step: Annotated[
        str, typer.Option("--step", help="With --from/--to: time between SLO evaluations.")
    ] = "1h",
    as_json: JsonFlag = False,
) -> None:
    """Write an HTML drift report: segmon's latest checks and an evidently data-drift report.

    With --from and --to: the period looked back on, as plots (self-contained, no network
    needed to view): per drift family and class each check's statistic against its
    threshold over time with the windows that fired, quality per class, shadow agreement,
    SLO burn rates with the alert factors and the alerts that would have fired, and
    evidently's report of the most drifted window.
    """
    state = app_state(ctx)
    period = time_range(start, end)
    if period is not None:
        from monitor.service.lookback import write_lookback_report

        lookback = write_lookback_report(
            state.sessions(),
            state.settings,
            SystemClock(),
            period[0],
            period[1],
            out_path,
            window=window,
            step=step,
        )
        emit(
            as_json,
            lookback.as_dict(),
            lambda: out.print(
                f"wrote {lookback.path}: {lookback.drift_plots} drift plots over "
                f"{lookback.drift_windows} windows ({lookback.flagged_windows} flagged), "
                f"{lookback.quality_plots} quality, {lookback.slo_plots} SLO plots"
            ),
        )
        return
    if window is not None:
        raise InvalidInputError("--window goes with --from and --to")
    from monitor.drift.report import write_report

    summary = write_report(state.sessions(), state.settings.drift, SystemClock(), out_path)
    emit(
        as_json,
        summary.as_dict(),
        lambda: out.print(
            f"wrote {summary.path}: {summary.drifted} of {summary.checks} checks flagged"
        ),
    )
