"""``segmon queue import`` and ``segmon queue review``: labels come back from annotators."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from monitor.cli.app import JsonFlag, app_state, emit, err, out, progress_bar
from monitor.cli.queue_commands import queue_app
from monitor.clock import SystemClock


def _print_import(doc: dict[str, Any]) -> None:
    table = Table("items", "count")
    for key in ("labeled", "skipped", "unchanged", "ignored"):
        table.add_row(key, str(len(doc[key])))
    table.add_row("flagged for review", str(len(doc["flagged"])))
    table.add_row("label instances stored", str(doc["instances"]))
    out.print(f"{doc['file']} ({doc['format']}) -> dataset {doc['dataset']}")
    out.print(table)
    for item_id, reason in doc["flagged"].items():
        out.print(f"item {item_id} flagged: {reason}")
    if doc["ignored"]:
        err.print(
            f"warning: items {doc['ignored']} were closed already and the file now says "
            "something else for them; the first labels stand"
        )
    for item_id, shapes in doc["unsupported"].items():
        err.print(f"warning: item {item_id}: shapes that are no instance mask: {shapes}")
    if doc["closed_batches"]:
        out.print(f"export batches closed: {doc['closed_batches']}")


@queue_app.command("import")
def import_(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(help="The returned labels file.", dir_okay=False, show_default=False)
    ],
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="coco (instances JSON), labelstudio (JSON export) or cvat (CVAT for images 1.1 XML).",
        ),
    ],
    annotator: Annotated[
        str | None,
        typer.Option(
            "--annotator", help="Who labelled, where the file does not say (COCO never does)."
        ),
    ] = None,
    review: Annotated[
        bool,
        typer.Option(
            "--review/--no-review",
            help="Flag labels that disagree with production and the reference model "
            "(runs models.reference over the labelled images).",
        ),
    ] = True,
    as_json: JsonFlag = False,
) -> None:
    """Import returned labels as ground truth of labelled production samples.

    Each image is matched to its exported queue item (by the item id the export put in
    the file; CVAT by file name), its classes to the configured categories by name; the
    labels are stored in the dataset labels.dataset (kind labelled) and items move to
    labeled (skipped for cancelled tasks). One transaction per file: an unknown item or
    class writes nothing. Importing again changes nothing: the first labels stand.
    Labels that disagree strongly with both production and the reference are flagged
    (`segmon queue review`).
    """
    from monitor.queue.labels import import_labels
    from monitor.queue.returns import RETURN_FORMATS, read_returned

    if fmt not in RETURN_FORMATS:
        from monitor.errors import ConfigError

        raise ConfigError(f"--format {fmt!r}: use one of {', '.join(RETURN_FORMATS)}")
    state = app_state(ctx)
    settings = state.settings
    returned = read_returned(file, fmt)  # type: ignore[arg-type]  # checked just above
    reference = None
    if review:
        from monitor.service.schedule import load_reference_model

        reference = load_reference_model(settings, settings.labels.batch_size)
    with progress_bar(f"importing {file.name}") as update:
        report = import_labels(
            state.sessions(),
            returned,
            SystemClock(),
            file=str(file),
            fmt=fmt,
            dataset=settings.labels.dataset,
            annotator=annotator,
            reference=reference,
            review_below=settings.labels.review_below,
            min_iou=settings.shadow.min_iou,
            batch_size=settings.labels.batch_size,
            access=settings.images.access(),
            progress=update,
            review=review,
        )
    doc = report.counts()
    emit(as_json, doc, lambda: _print_import(doc))


@queue_app.command("review")
def review_(
    ctx: typer.Context,
    item_id: Annotated[int, typer.Argument(help="The queue item whose labels were flagged.")],
    accept: Annotated[
        bool | None,
        typer.Option(
            "--accept/--reject",
            help="Accept the flagged labels into evaluate and the SLI, or reject them for good.",
            show_default=False,
        ),
    ] = None,
    by: Annotated[str | None, typer.Option("--by", help="Who reviewed (stored).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Decide on labels flagged for review: --accept trusts them, --reject keeps them out."""
    from monitor.errors import ConfigError
    from monitor.queue.review import decide_review

    if accept is None:
        raise ConfigError("give --accept or --reject")
    outcome = decide_review(
        app_state(ctx).sessions(),
        item_id,
        "accepted" if accept else "rejected",
        SystemClock(),
        reviewer=by,
    )
    doc = outcome.counts()
    emit(
        as_json,
        doc,
        lambda: out.print(f"item {item_id}: labels {doc['decision']} ({doc['review_reason']})"),
    )
