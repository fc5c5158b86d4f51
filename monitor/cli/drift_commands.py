"""``segmon drift`` (run the drift checks now) and ``segmon report`` (HTML report)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from monitor.cli.app import JsonFlag, app, app_state, emit, out
from monitor.cli.numbers import num
from monitor.clock import SystemClock


@app.command()
def drift(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Check every feature family in the configured windows against the reference.

    Results are upserted into drift_results (a rerun in the same period replaces the
    same rows); windows with fewer than drift.min_samples images are skipped.
    """
    from monitor.drift.job import run_drift
    from monitor.jobs.names import JobName
    from monitor.jobs.runs import run_job

    state = app_state(ctx)
    clock = SystemClock()
    sessions = state.sessions()
    report, run = run_job(
        sessions,
        JobName.DRIFT,
        clock,
        lambda run_id: run_drift(
            sessions,
            state.settings.drift,
            clock,
            run_id=run_id,
            access=state.settings.images.access(),
        ),
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
        )
        table = Table(
            "window", "family", "feature", "class", "detector", "current", "statistic", "p", "drift"
        )
        for c in sorted(report.checks, key=lambda c: not c.result.drift_detected):
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
        out.print(table)

    emit(as_json, payload, human)


@app.command()
def report(
    ctx: typer.Context,
    out_path: Annotated[
        Path, typer.Option("--out", help="HTML file to write.", dir_okay=False)
    ] = Path("report.html"),
    as_json: JsonFlag = False,
) -> None:
    """Write an HTML drift report: segmon's latest checks and an evidently data-drift report."""
    from monitor.drift.report import write_report

    state = app_state(ctx)
    summary = write_report(state.sessions(), state.settings.drift, SystemClock(), out_path)
    emit(
        as_json,
        summary.as_dict(),
        lambda: out.print(
            f"wrote {summary.path}: {summary.drifted} of {summary.checks} checks flagged"
        ),
    )
