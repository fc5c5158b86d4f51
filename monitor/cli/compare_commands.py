"""``segmon compare``: a candidate model version against the baseline, side by side."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from monitor.cli.app import JsonFlag, app, app_state, emit, out
from monitor.cli.numbers import num
from monitor.clock import SystemClock
from monitor.slo.duration import parse_duration

if TYPE_CHECKING:
    from monitor.drift.compare import CanaryComparison


@app.command()
def compare(
    ctx: typer.Context,
    baseline: Annotated[
        str, typer.Option("--baseline", help="The stable model version (as in the sample log).")
    ],
    candidate: Annotated[
        str, typer.Option("--candidate", help="The canary model version to judge.")
    ],
    window: Annotated[
        str, typer.Option("--window", help="Compare the samples of this long before now.")
    ] = "1d",
    as_json: JsonFlag = False,
) -> None:
    """Compare a candidate model version with the baseline over the same window.

    Both versions' samples captured in the last --window are tested against each other
    with the drift job's calibrated detectors (drift features per family, shadow
    agreement, uncertainty, latency, quality on golden and labelled samples): since both sides come from the same times, a
    drift both versions see is not blamed on the candidate. Each signal gets a verdict:
    worse, better, no_difference, different (a significant change without a direction)
    or not_enough_data (fewer than drift.min_samples on a side).
    """
    from monitor.drift.compare import compare_versions

    state = app_state(ctx)
    length = parse_duration(window)
    end = SystemClock().now()
    with state.sessions()() as session:
        result = compare_versions(
            session,
            state.settings.drift,
            baseline,
            candidate,
            (end - length, end),
            uncertainty_threshold=state.settings.queue.uncertainty_threshold,
            min_iou=state.settings.shadow.min_iou,
        )
    emit(as_json, result.as_dict(), lambda: _human(result))


def _human(result: CanaryComparison) -> None:
    out.print(
        f"{result.candidate} ({result.n_candidate} samples) against {result.baseline} "
        f"({result.n_baseline} samples), {result.start:%Y-%m-%d %H:%M} to "
        f"{result.end:%Y-%m-%d %H:%M} UTC"
    )
    # Fits 80 columns: signal names and verdicts are never cut.
    table = Table(box=None, pad_edge=False, header_style="bold")
    for name in ("signal", "baseline", "candidate", "flags", "min p", "verdict"):
        table.add_column(name, no_wrap=True)
    for s in result.signals:
        table.add_row(
            s.signal,
            num(s.baseline_mean),
            num(s.candidate_mean),
            f"{s.significant}/{s.checks}",
            num(s.min_p_value, 3),
            s.verdict,
        )
    out.print(table)
