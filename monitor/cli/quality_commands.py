"""``segmon evaluate``: quality against a labeled holdout."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from monitor.cli.app import JsonFlag, app, app_state, emit, out, progress_bar
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
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="Run this model over the holdout: 'production', 'reference' (models.reference "
            "as configured) or a .safetensors / TorchScript / .onnx file.",
            metavar="NAME|PATH",
        ),
    ] = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="Images per model batch (--model).")
    ] = 16,
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

    Without --predictions or --model, production samples whose image is a holdout image
    (matched by sha256) are evaluated, one result per model version. With --model the
    model's name (kind, checkpoint and file hash) is the model version.
    """
    from monitor.errors import ConfigError
    from monitor.jobs.names import JobName
    from monitor.jobs.runs import run_job
    from monitor.quality.job import evaluate_holdout

    if model is not None and predictions is not None:
        raise ConfigError("give --predictions or --model, not both")
    state = app_state(ctx)
    clock = SystemClock()
    loaded = None
    if model is not None:
        from monitor.model.loading import load_named

        categories = [c.name for c in state.settings.categories]
        loaded = load_named(model, state.settings.models, categories, batch_size=batch_size)
    with progress_bar(f"evaluating {holdout}") as update:
        report, _ = run_job(
            state.sessions(),
            JobName.EVALUATE,
            clock,
            lambda run_id: evaluate_holdout(
                state.sessions(),
                holdout,
                clock,
                predictions=predictions,
                model=loaded,
                model_version=model_version,
                iou_threshold=iou_threshold,
                batch_size=batch_size,
                on_batch=update,
                run_id=run_id,
            ),
        )

    def human() -> None:
        table = Table("model version", "images", "AP", "AP50", "mean IoU", "precision", "recall")
        for _, preds, quality in report.results:
            figures = (
                quality.coco.ap,
                quality.coco.ap50,
                quality.overall.mean_iou,
                quality.overall.precision,
                quality.overall.recall,
            )
            table.add_row(
                preds.model_version,
                str(len(preds.image_ids)),
                *("-" if v is None else f"{v:.3f}" for v in figures),
            )
        out.print(table)

    from monitor.model.protocol import CountsIgnored

    payload = report.counts()
    if loaded is not None:  # instances of classes the model's classes_map leaves out
        counted = loaded.ignored if isinstance(loaded, CountsIgnored) else {}
        payload["ignored"] = dict(sorted(counted.items()))
    emit(as_json, payload, human)
