"""``segmon evaluate``: quality against a labeled holdout."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from monitor.cli_base import JsonFlag, app, app_state, emit, out
from monitor.clock import SystemClock


@app.command()
def evaluate(
    ctx: typer.Context,
    holdout: Annotated[str, typer.Option("--holdout", help="Name of an imported holdout.")],
    predictions: Annotated[
        Path | None,
        typer.Option(
            "--predictions", help="COCO results JSON over the holdout's image ids.", dir_okay=False
        ),
    ] = None,
    model_version: Annotated[
        str | None,
        typer.Option(
            "--model-version", help="Version name for --predictions (default: file name)."
        ),
    ] = None,
    iou_threshold: Annotated[
        float, typer.Option("--iou-threshold", help="IoU at which a prediction matches.")
    ] = 0.5,
    as_json: JsonFlag = False,
) -> None:
    """Score predictions against a holdout (golden requests by default) and store the result.

    Without --predictions, production samples whose image is a holdout image (matched by
    sha256) are evaluated, one result per model version.
    """
    from monitor.jobs import run_job
    from monitor.quality import evaluate_holdout

    state = app_state(ctx)
    clock = SystemClock()
    report, _ = run_job(
        state.sessions(),
        "evaluate",
        clock,
        lambda: evaluate_holdout(
            state.sessions(),
            holdout,
            clock,
            predictions=predictions,
            model_version=model_version,
            iou_threshold=iou_threshold,
        ),
    )
    counts = report.counts()

    def human() -> None:
        table = Table("model version", "images", "AP", "AP50", "mean IoU", "precision", "recall")
        for row in counts["results"]:
            table.add_row(
                row["model_version"],
                str(row["images"]),
                *(
                    f"{row[k]:.3f}" if row[k] is not None else "-"
                    for k in ("ap", "ap50", "mean_iou", "precision", "recall")
                ),
            )
        out.print(table)

    emit(as_json, counts, human)
