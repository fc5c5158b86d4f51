"""``segmon evaluate``: quality against a labeled holdout; ``segmon evaluate show``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from monitor.cli.app import (
    AppState,
    FromOption,
    JsonFlag,
    ToOption,
    app,
    app_state,
    emit,
    err,
    out,
    progress_bar,
    time_range,
)
from monitor.cli.numbers import num
from monitor.clock import SystemClock

evaluate_app = typer.Typer(
    help="Score predictions against a labeled holdout and store the result; show one.",
    invoke_without_command=True,
)
app.add_typer(evaluate_app, name="evaluate")


def _figure(value: Any, digits: int = 3) -> str:
    """Format a figure for people: rounded, ``-`` where undefined (JSON keeps all digits)."""
    return num(value, places=digits)


def _print_documents(documents: Sequence[Mapping[str, Any]], *, details: bool) -> None:
    table = Table(
        "result", "model version", "images", "AP", "AP50", "mean IoU", "precision", "recall"
    )
    for doc in documents:
        table.add_row(
            str(doc["quality_result_id"]),
            escape(doc["model_version"]),
            str(doc["images"]),
            *(_figure(doc[k]) for k in ("ap", "ap50", "mean_iou", "precision", "recall")),
        )
    out.print(table)
    for doc in documents:
        if doc["unknown_category_predictions"]:
            err.print(
                f"warning: {doc['unknown_category_predictions']} predictions of "
                f"{doc['model_version']} have category ids the configuration does not know; "
                "they were left out (see `segmon categories list`)",
                markup=False,
            )
        if not details:
            continue
        figures = [f"{name} {_figure(value)}" for name, value in doc["coco"].items()]
        out.print(f"result {doc['quality_result_id']}, COCO mask figures:", highlight=False)
        out.print("  " + "  ".join(figures[:6]) + "\n  " + "  ".join(figures[6:]), highlight=False)
        classes = Table(
            "class",
            "GT",
            "pred",
            "mean IoU",
            "precision",
            "recall",
            "F1",
            "FP/image",
            "misses",
            "AP",
            title=f"per class at IoU {num(doc['iou_threshold'])}",
        )
        for c in doc["classes"]:
            classes.add_row(
                escape(c["name"]),
                str(c["n_ground_truth"]),
                str(c["n_predictions"]),
                *(_figure(c[k]) for k in ("mean_iou", "precision", "recall", "f1")),
                _figure(c["false_positives_per_image"], 2),
                str(c["misses"]),
                _figure(c["ap"]),
            )
        out.print(classes)
        sizes = doc["recall_by_size"]
        out.print(
            "recall by size: "
            + ", ".join(
                f"{size} {_figure(s['recall'])} ({s['true_positives']}/{s['n_ground_truth']})"
                for size, s in sizes.items()
            )
        )


def _documents(ctx: typer.Context, result_ids: Sequence[int | None]) -> list[dict[str, Any]]:
    from monitor.quality.documents import load_result, result_document

    with app_state(ctx).sessions()() as session:
        return [result_document(*load_result(session, rid)) for rid in result_ids]


@evaluate_app.callback()
def evaluate(
    ctx: typer.Context,
    holdout: Annotated[
        str | None, typer.Option("--holdout", help="Name of an imported holdout.")
    ] = None,
    labelled: Annotated[
        bool,
        typer.Option(
            "--labelled",
            help="Evaluate the labelled production samples (the dataset labels.dataset that "
            "`segmon queue import` fills): production's stored predictions vs the labels.",
        ),
    ] = False,
    scheduled: Annotated[
        bool,
        typer.Option(
            "--scheduled",
            help="Run the scheduled evaluate job once: every dataset's golden requests and "
            "labelled samples that arrived since its last run (all of them when a full "
            "re-score is due, every schedule.evaluate_full_s).",
        ),
    ] = False,
    full: Annotated[
        bool, typer.Option("--full", help="With --scheduled: re-score everything now.")
    ] = False,
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
    start: FromOption = None,
    end: ToOption = None,
    window: Annotated[
        str,
        typer.Option("--window", help="With --from/--to: length of each capture window."),
    ] = "1d",
    max_windows: Annotated[
        int, typer.Option("--max-windows", min=1, help="With --from/--to: most windows.")
    ] = 2000,
    as_json: JsonFlag = False,
) -> None:
    """Score predictions against a holdout (golden requests by default) and store the result.

    Without --predictions or --model, production samples whose image is a holdout image
    (matched by sha256) are evaluated, one result per model version. With --model the
    model's name (kind, checkpoint and file hash) is the model version. --json prints
    every stored figure: the 12 COCO figures (AP, AP50, ..., ARl), the per-class table,
    recall by size and the confusion matrix. `segmon evaluate show` prints a stored one.
    With --from and --to: the golden requests captured in each --window of that period,
    one stored result per window and model version, stamped with the window's end
    (windows already stored are skipped). With --scheduled: what `segmon run`'s evaluate
    job does, once.
    """
    if ctx.invoked_subcommand is not None:
        return
    from monitor.errors import ConfigError
    from monitor.jobs.names import JobName
    from monitor.jobs.runs import run_job
    from monitor.quality.job import evaluate_holdout

    if full and not scheduled:
        raise ConfigError("--full re-scores with --scheduled; give both")
    if scheduled:
        given = {
            "--holdout": holdout,
            "--labelled": labelled or None,
            "--predictions": predictions,
            "--model": model,
            "--from": start,
            "--to": end,
        }
        clash = [name for name, value in given.items() if value is not None]
        if clash:
            raise ConfigError(f"--scheduled evaluates every dataset; drop {', '.join(clash)}")
        _evaluate_scheduled(app_state(ctx), full=full, as_json=as_json)
        return
    if labelled:
        if holdout is not None:
            raise ConfigError("give --holdout NAME or --labelled, not both")
        holdout = app_state(ctx).settings.labels.dataset
    if holdout is None:
        raise ConfigError(
            "give --holdout NAME (an imported holdout) or --labelled, or `evaluate show`"
        )
    if model is not None and predictions is not None:
        raise ConfigError("give --predictions or --model, not both")
    state = app_state(ctx)
    clock = SystemClock()
    period = time_range(start, end)
    if period is not None:
        if model is not None or predictions is not None:
            raise ConfigError(
                "--from/--to evaluate golden requests per window; drop --model/--predictions"
            )
        _evaluate_windows(state, holdout, period, window, iou_threshold, max_windows, as_json)
        return
    from monitor.jobs.executor import LocalExecutor, opened

    loaded = None
    recipe = None
    if model is not None:
        from monitor.model.loading import load_named, named_recipe

        categories = [c.name for c in state.settings.categories]
        models = state.settings.models
        loaded = load_named(model, models, categories, batch_size=batch_size)
        recipe = named_recipe(model, models, categories, batch_size=batch_size)
    with (
        opened(state.settings.executor, None if loaded is not None else LocalExecutor()) as running,
        progress_bar(f"evaluating {holdout}") as update,
    ):
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
                executor=running,
                recipe=recipe if running.remote else None,
            ),
        )
    documents = _documents(ctx, [result_id for result_id, _, _ in report.results])
    payload: dict[str, Any] = {"holdout": report.holdout, "results": documents}
    if loaded is not None:  # instances of classes the model's classes_map leaves out,
        counted: Counter[str] = Counter()  # counted where the batches ran
        for _, preds, _ in report.results:
            counted.update(preds.ignored)
        payload["ignored"] = dict(sorted(counted.items()))
    emit(as_json, payload, lambda: _print_documents(documents, details=False))


def _evaluate_windows(
    state: AppState,
    holdout: str,
    period: tuple[datetime, datetime],
    window: str,
    iou_threshold: float,
    max_windows: int,
    as_json: bool,
) -> None:
    from monitor.jobs.names import JobName
    from monitor.jobs.runs import run_job
    from monitor.quality.windows import evaluate_windows

    clock = SystemClock()
    sessions = state.sessions()
    with progress_bar(f"evaluating {holdout} per {window}") as update:
        report, _ = run_job(
            sessions,
            JobName.EVALUATE,
            clock,
            lambda run_id: evaluate_windows(
                sessions,
                holdout,
                clock,
                period[0],
                period[1],
                window=window,
                iou_threshold=iou_threshold,
                max_windows=max_windows,
                run_id=run_id,
                progress=update,
            ),
        )
    payload = report.counts()

    def human() -> None:
        out.print(
            f"{report.windows} windows of {window}: {len(report.per_window)} results stored, "
            f"{report.already_stored} windows already stored, "
            f"{report.without_golden} without golden requests",
            highlight=False,
        )
        table = Table("window end", "model version", "images", "AP", "mean IoU", "recall")
        for r in report.per_window:
            table.add_row(
                r["window_end"],
                escape(r["model_version"]),
                str(r["images"]),
                *(_figure(r[k]) for k in ("ap", "mean_iou", "recall")),
            )
        out.print(table)

    emit(as_json, payload, human)


def _evaluate_scheduled(state: AppState, *, full: bool, as_json: bool) -> None:
    from datetime import timedelta

    from monitor.jobs.names import JobName
    from monitor.jobs.runs import run_job
    from monitor.quality.scheduled import evaluate_scheduled, holdout_thresholds

    clock = SystemClock()
    sessions = state.sessions()
    settings = state.settings
    report, run = run_job(
        sessions,
        JobName.EVALUATE,
        clock,
        lambda run_id: evaluate_scheduled(
            sessions,
            clock,
            full_every=timedelta(seconds=settings.schedule.evaluate_full_s),
            iou_thresholds=holdout_thresholds(settings.slos),
            full=full,
            run_id=run_id,
        ),
    )
    payload = {"run_id": run.run_id, **report.counts()}

    def human() -> None:
        since = "the start" if report.since is None else report.since.isoformat()
        out.print(
            f"run {run.run_id} ({report.mode}): what arrived from {since} to "
            f"{report.through.isoformat()}: {len(report.results)} results stored",
            highlight=False,
        )
        if not report.results:
            return
        table = Table("result", "dataset", "model version", "IoU", "images", "AP", "recall")
        for r in payload["results"]:
            table.add_row(
                str(r["quality_result_id"]),
                escape(r["dataset"]),
                escape(r["model_version"]),
                num(r["iou_threshold"]),
                str(r["images"]),
                *(_figure(r[k]) for k in ("ap", "recall")),
            )
        out.print(table)

    emit(as_json, payload, human)


@evaluate_app.command("show")
def show(
    ctx: typer.Context,
    result_id: Annotated[
        int | None,
        typer.Argument(help="A stored evaluation's id (default: the newest).", show_default=False),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Show a stored evaluation: COCO figures, per-class table, recall by size."""
    [document] = _documents(ctx, [result_id])
    emit(as_json, document, lambda: _print_documents([document], details=True))
