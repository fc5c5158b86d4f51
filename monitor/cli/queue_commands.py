"""``segmon queue``: fill, list, show, export, stats and skip annotation-queue items."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer
from rich.table import Table

from monitor.cli.app import FromOption, JsonFlag, ToOption, app, app_state, emit, out, time_range
from monitor.clock import SystemClock

if TYPE_CHECKING:
    from monitor.queue.exporter import ExportFormat, ImageMode

queue_app = typer.Typer(
    help="The annotation queue: what humans should label next, exported to their tools. "
    "Items move queued -> exported -> labeled | skipped | expired.",
    no_args_is_help=True,
)
app.add_typer(queue_app, name="queue")

_STATES = ("queued", "exported", "labeled", "skipped", "expired")


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


@queue_app.command("fill")
def fill(
    ctx: typer.Context,
    limit: Annotated[
        int | None,
        typer.Option("--limit", min=1, help="Queue at most this many items (below the budgets)."),
    ] = None,
    start: FromOption = None,
    end: ToOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Expire old items, then queue the best new samples within the budgets (the queue job).

    Candidates are accepted samples captured within queue.lookback (or in --from/--to,
    for logs of a past period) that are not queued yet; each gets its signals (uncertainty, disagreement, novelty, drift), a priority
    (their weighted mean) and a reason (the signal that contributed most). Per-class
    quotas are filled first, then diversity (k-center greedy on image embeddings) over the
    top queue.diversity_pool, until queue.daily_budget (items queued today count),
    queue.run_budget and queue.instance_budget are used. A rerun adds no sample twice.
    """
    from monitor.jobs.names import JobName
    from monitor.jobs.runs import run_job
    from monitor.queue.expire import expire_items
    from monitor.queue.fill import fill_queue
    from monitor.queue.job import QueueJobReport
    from monitor.slo.duration import parse_duration

    span = time_range(start, end)
    state = app_state(ctx)
    clock = SystemClock()
    sessions = state.sessions()
    settings = state.settings

    def work(run_id: int) -> QueueJobReport:
        expired = expire_items(sessions, parse_duration(settings.queue.ttl), clock.now())
        filled = fill_queue(sessions, settings, clock, run_id=run_id, max_items=limit, span=span)
        return QueueJobReport(expired, filled)

    report, run = run_job(sessions, JobName.QUEUE, clock, work)
    payload = {**report.counts(), "run_id": run.run_id, "item_ids": list(report.filled.item_ids)}

    def human() -> None:
        f = report.filled
        out.print(
            f"queued {f.n_queued} of {f.n_candidates} candidates (budget {f.budget}, "
            f"{f.used_today} queued earlier today of {f.daily_budget}); "
            f"{f.n_duplicates} near-duplicates, {f.n_waiting} waiting for an embedding; "
            f"expired {report.expired.queued + report.expired.exported}"
        )
        if f.reasons:
            out.print("by reason: " + ", ".join(f"{k} {v}" for k, v in sorted(f.reasons.items())))

    emit(as_json, payload, human)


def _item_dict(item: Any, request_id: str | None = None) -> dict[str, Any]:
    return {
        "id": item.id,
        "sample_id": item.sample_id,
        "request_id": request_id,
        "state": str(item.state),
        "priority": item.priority,
        "reason": item.reason,
        "signals": dict(item.signals),
        "category_ids": list(item.category_ids),
        "n_instances": item.n_instances,
        "queued_at": item.queued_at,
        "exported_at": item.exported_at,
        "closed_at": item.closed_at,
        "export_batch_id": item.export_batch_id,
        "fill_run_id": item.fill_run_id,
        "labeled_by": item.labeled_by,
        "review_reason": item.review_reason,
    }


@queue_app.command("list")
def list_items(
    ctx: typer.Context,
    state_name: Annotated[
        str | None,
        typer.Option("--state", help=f"Only items in this state ({', '.join(_STATES)})."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Show at most this many.")] = 50,
    as_json: JsonFlag = False,
) -> None:
    """List queue items, highest priority first, with why each was chosen."""
    from sqlalchemy import select

    from monitor.errors import ConfigError
    from monitor.storage.schema import QueueItem, QueueState, Sample

    if state_name is not None and state_name not in _STATES:
        raise ConfigError(f"unknown state {state_name!r}; choose from {', '.join(_STATES)}")
    state = app_state(ctx)
    stmt = select(QueueItem, Sample.request_id).join(Sample, Sample.id == QueueItem.sample_id)
    if state_name is not None:
        stmt = stmt.where(QueueItem.state == QueueState(state_name))
    stmt = stmt.order_by(QueueItem.priority.desc(), QueueItem.id).limit(limit)
    with state.sessions()() as session:
        rows = [_item_dict(item, request) for item, request in session.execute(stmt)]

    def human() -> None:
        table = Table("id", "request", "state", "priority", "reason", "instances", "queued at")
        for r in rows:
            table.add_row(
                str(r["id"]),
                str(r["request_id"]),
                r["state"],
                _num(r["priority"]),
                r["reason"],
                str(r["n_instances"]),
                _when(r["queued_at"]),
            )
        out.print(table)

    emit(as_json, rows, human)


@queue_app.command("show")
def show(
    ctx: typer.Context,
    item_id: Annotated[int, typer.Argument(metavar="ID", help="The queue item's id.")],
    as_json: JsonFlag = False,
) -> None:
    """Show one queue item: its sample, every signal score, its state and export batch."""
    from sqlalchemy import select

    from monitor.errors import NotFoundError
    from monitor.storage.schema import QueueExportBatch, QueueItem, Sample

    state = app_state(ctx)
    with state.sessions()() as session:
        found = session.execute(
            select(QueueItem, Sample.request_id, Sample.captured_at, Sample.image_uri)
            .join(Sample, Sample.id == QueueItem.sample_id)
            .where(QueueItem.id == item_id)
        ).first()
        if found is None:
            raise NotFoundError(f"no queue item {item_id}")
        item, request_id, captured_at, image_uri = found
        payload = _item_dict(item, request_id)
        payload["captured_at"] = captured_at
        payload["image_uri"] = image_uri
        batch = (
            session.get(QueueExportBatch, item.export_batch_id) if item.export_batch_id else None
        )
        payload["export_path"] = batch.path if batch is not None else None

    def human() -> None:
        out.print(
            f"item {payload['id']} ({payload['state']}): sample {payload['request_id']} "
            f"captured {_when(captured_at)}, priority {_num(payload['priority'])}, "
            f"reason {payload['reason']}"
        )
        for name, value in sorted(payload["signals"].items()):
            out.print(f"  {name:<18} {_num(value)}")
        if payload["export_path"]:
            out.print(f"exported in batch {payload['export_batch_id']}: {payload['export_path']}")

    emit(as_json, payload, human)


@queue_app.command("export")
def export(
    ctx: typer.Context,
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="coco, labelstudio or cvat (default: queue.export.format)."),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option("--limit", min=1, help="Items in the batch (default: queue.export.limit)."),
    ] = None,
    images: Annotated[
        str | None,
        typer.Option(
            "--images",
            help="copy images beside the file, link them, or reference them by url "
            "(default: queue.export.images).",
        ),
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Export directory (default: queue.export.out_dir).", file_okay=False
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Export the highest-priority queued items as one batch folder, exactly once.

    The folder batch-<id>-<format> holds the document (COCO annotations.json, Label
    Studio tasks.json plus labeling_config.xml, or CVAT annotations.xml) with the
    production prediction as pre-annotation and the priority as score, and the images.
    Concurrent exports never hand out the same item; an export killed midway leaves its
    items queued and its folder is removed by the next export.
    """
    from monitor.errors import ConfigError
    from monitor.queue.exporter import export_batch

    if fmt is not None and fmt not in ("coco", "labelstudio", "cvat"):
        raise ConfigError(f"unknown export format {fmt!r}; use coco, labelstudio or cvat")
    if images is not None and images not in ("copy", "link", "url"):
        raise ConfigError(f"unknown image mode {images!r}; use copy, link or url")
    state = app_state(ctx)
    report = export_batch(
        state.sessions(),
        state.settings,
        SystemClock(),
        fmt=cast("ExportFormat | None", fmt),  # checked against the values above
        limit=limit,
        images=cast("ImageMode | None", images),
        out_dir=out_dir,
    )
    payload: dict[str, Any] = (
        {"exported": 0}
        if report is None
        else {
            "exported": len(report.item_ids),
            **report.counts(),
        }
    )

    def human() -> None:
        if report is None:
            out.print("nothing queued: no batch written")
            return
        out.print(
            f"batch {report.batch_id}: {len(report.item_ids)} items, {report.n_masks} "
            f"pre-annotated masks, {report.format} -> {report.path}"
        )
        if report.missing_images:
            out.print(f"images not found for items {list(report.missing_images)}")

    emit(as_json, payload, human)


@queue_app.command("stats")
def stats(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Queue depth per state and class, oldest queued item, labelled today, budget used."""
    from monitor.queue.stats import queue_stats

    state = app_state(ctx)
    with state.sessions()() as session:
        figures = queue_stats(session, SystemClock().now(), state.settings.queue.daily_budget)
    payload = figures.as_dict()

    def human() -> None:
        out.print("depth: " + ", ".join(f"{k} {v}" for k, v in figures.depth.items()))
        age = figures.oldest_queued_age_s
        out.print(
            f"oldest queued: {'-' if age is None else f'{age / 3600:.1f} h'}; "
            f"labelled in the last day: {figures.labeled_last_day}; "
            f"queued today: {figures.queued_today} of {figures.daily_budget}"
            + (
                f" ({figures.budget_used_ratio:.0%})"
                if figures.budget_used_ratio is not None
                else ""
            )
        )
        if payload["depth_by_class"]:
            table = Table("class", "queued", "exported")
            for name, states in payload["depth_by_class"].items():
                table.add_row(name, str(states.get("queued", 0)), str(states.get("exported", 0)))
            out.print(table)

    emit(as_json, payload, human)


@queue_app.command("skip")
def skip(
    ctx: typer.Context,
    item_id: Annotated[int, typer.Argument(metavar="ID", help="The queue item's id.")],
    as_json: JsonFlag = False,
) -> None:
    """Mark an item skipped: not worth labelling (a queued or exported item only)."""
    from monitor.queue.states import skip_item

    state = app_state(ctx)
    now = SystemClock().now()
    with state.sessions().begin() as session:
        item = skip_item(session, item_id, now)
        payload = _item_dict(item)
    emit(as_json, payload, lambda: out.print(f"item {item_id} skipped"))
