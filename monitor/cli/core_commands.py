"""Core commands: init, db, holdout, ingest, quarantine, status, synth, demo, run."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from monitor.cli.app import (
    JsonFlag,
    PushgatewayOption,
    app,
    app_state,
    configure_logging,
    db_app,
    emit,
    err,
    holdout_app,
    out,
    progress_bar,
    secrets_in,
)
from monitor.clock import SystemClock
from monitor.config import EXAMPLE_CONFIG

DEMO_HOLDOUT_IMAGES = 120
DEMO_IMAGES_PER_DAY = 150
DEMO_CANARY_SHARE = 0.3  # DemoOptions.canary_share; a test checks they agree


@app.command()
def init(
    ctx: typer.Context,
    categories_from: Annotated[
        Path | None,
        typer.Option(
            "--categories-from",
            help="Take the model's categories from a COCO file: a new config gets exactly "
            "these (ids as in the file, 0 allowed); an existing one gains those it lacks.",
            exists=True,
            dir_okay=False,
            metavar="COCO_JSON",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Write a commented config if none exists, then create or upgrade the database."""
    from monitor.config import (
        load_settings,
        merge_categories,
        read_coco_categories,
        write_categories,
    )
    from monitor.storage.bootstrap import init_database

    state = app_state(ctx)
    wrote = False
    if not state.config_path.exists():
        state.config_path.write_text(EXAMPLE_CONFIG)
        wrote = True
    if categories_from is not None:
        extra = read_coco_categories(categories_from)
        current = [] if wrote else list(load_settings(state.config_path).categories)
        write_categories(state.config_path, merge_categories(current, extra))
        state.settings = load_settings(state.config_path, os.environ)
    report = init_database(state.engine, state.settings.categories)
    payload = {
        "config": str(state.config_path),
        "config_written": wrote,
        "database": state.engine.url.render_as_string(hide_password=True),
        "revision": report.revision,
        "categories_added": list(report.categories_added),
        "categories": [c.model_dump() for c in state.settings.categories],
    }
    emit(
        as_json,
        payload,
        lambda: out.print(
            f"{'wrote' if wrote else 'kept'} {state.config_path}; database at revision {report.revision}"
        ),
    )


@db_app.command("upgrade")
def db_upgrade(
    ctx: typer.Context,
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Migrate the database up (to the newest revision by default)."""
    from monitor.storage import engine as db

    state = app_state(ctx)
    db.upgrade(state.engine, revision)
    out.print(f"database at revision {db.current_revision(state.engine)}")


@db_app.command("downgrade")
def db_downgrade(
    ctx: typer.Context,
    revision: Annotated[str, typer.Argument(help="Target revision ('base' removes everything).")],
) -> None:
    """Migrate the database down to REVISION."""
    from monitor.storage import engine as db

    state = app_state(ctx)
    db.downgrade(state.engine, revision)
    out.print(f"database at revision {db.current_revision(state.engine)}")


@db_app.command("current")
def db_current(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Show the database's migration revision."""
    from monitor.storage import engine as db

    revision = db.current_revision(app_state(ctx).engine)
    emit(as_json, {"revision": revision}, lambda: out.print(revision or "(empty database)"))


@holdout_app.command("import")
def holdout_import(
    ctx: typer.Context,
    coco_json: Annotated[
        Path, typer.Argument(help="COCO instances JSON.", exists=True, dir_okay=False)
    ],
    name: Annotated[str, typer.Option("--name", help="Name of the new dataset.")],
    images: Annotated[
        Path | None,
        typer.Option("--images", help="Folder of the images.", exists=True, file_okay=False),
    ] = None,
    no_images: Annotated[
        bool,
        typer.Option(
            "--no-images",
            help="Import the annotations alone (sizes from the file) to evaluate results "
            "files; embed, shadow and image properties skip these images.",
        ),
    ] = False,
    add_categories: Annotated[
        bool,
        typer.Option(
            "--add-categories",
            help="Add the file's categories the model lacks (by name) under the file's ids, "
            "to the database and the config, instead of refusing them.",
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Import a COCO instances file (and its images) as a labeled holdout."""
    from monitor.config import CategorySpec, load_settings, merge_categories, write_categories
    from monitor.errors import ConfigError
    from monitor.ingest.holdout import import_holdout
    from monitor.jobs.names import JobName
    from monitor.jobs.runs import run_job

    if (images is None) == (not no_images):
        raise ConfigError("give --images DIR, or --no-images to import the annotations alone")
    state = app_state(ctx)
    with progress_bar(f"import {name}") as update:
        report, _ = run_job(
            state.sessions(),
            JobName.HOLDOUT_IMPORT,
            SystemClock(),
            lambda _run: import_holdout(
                state.sessions(),
                coco_json,
                images,
                name,
                SystemClock(),
                update,
                add_categories=add_categories,
                access=state.settings.images.access(),
            ),
        )
    if report.added_categories:
        added = [CategorySpec(id=i, name=n, supercategory=s) for i, n, s in report.added_categories]
        write_categories(state.config_path, merge_categories(state.settings.categories, added))
        state.settings = load_settings(state.config_path, os.environ)
    emit(
        as_json,
        report.counts(),
        lambda: out.print(
            f"imported {report.name!r}: {report.images} images, {report.instances} instances"
            + ("" if report.with_images else " (annotations only: --no-images)")
            + (" (annotation ids renumbered: the file used id 0)" if report.renumbered else "")
            + (
                "; added categories "
                + ", ".join(f"{i}:{n}" for i, n, _ in report.added_categories)
                + f" to the database and {state.config_path}"
                if report.added_categories
                else ""
            ),
            markup=False,
            highlight=False,
        ),
    )


@app.command()
def ingest(
    ctx: typer.Context,
    url: Annotated[
        str,
        typer.Argument(
            help="Sample-log directory, *.jsonl file, fsspec URL, or COCO results JSON."
        ),
    ],
    coco_images: Annotated[
        str | None,
        typer.Option("--coco-images", help="COCO images JSON, when URL is a COCO results file."),
    ] = None,
    image_root: Annotated[
        str | None,
        typer.Option("--image-root", help="Folder of the COCO images (default: beside the JSON)."),
    ] = None,
    model_version: Annotated[
        str | None, typer.Option("--model-version", help="Model version of a COCO results file.")
    ] = None,
    as_json: JsonFlag = False,
    pushgateway: PushgatewayOption = None,
) -> None:
    """Read the new lines of a sample log; quarantine what is bad, carry on."""
    from monitor.ingest.job import IngestReport, ingest_coco_results, ingest_log
    from monitor.jobs.names import JobName
    from monitor.jobs.runs import run_job

    state = app_state(ctx)
    clock = SystemClock()

    def work(_run_id: int) -> IngestReport:
        if url.endswith(".json"):
            if coco_images is None:
                raise typer.BadParameter("a COCO results file (*.json) needs --coco-images")
            return ingest_coco_results(
                state.sessions(),
                url,
                coco_images,
                image_root,
                state.settings.ingest,
                clock,
                model_version,
                access=state.settings.images.access(),
            )
        with progress_bar("ingest") as update:
            return ingest_log(
                state.sessions(),
                url,
                state.settings.ingest,
                clock,
                update,
                access=state.settings.images.access(),
            )

    report, _ = run_job(state.sessions(), JobName.INGEST, clock, work)
    emit(
        as_json,
        report.counts(),
        lambda: out.print(
            f"{report.lines} lines: {report.ingested} samples ({report.instances} instances), "
            f"{sum(report.quarantined.values())} quarantined, {report.duplicates} duplicates"
        ),
    )
    if pushgateway:
        from monitor.prometheus.push import push_metrics

        push_metrics(pushgateway, state.sessions(), state.settings, clock)


@app.command()
def quarantine(
    ctx: typer.Context,
    reason: Annotated[str | None, typer.Option("--reason", help="Only this reason.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many rows.")] = 100,
    history: Annotated[
        bool,
        typer.Option("--history", help="List quarantines that corrected lines replaced, instead."),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """List quarantined samples and why they were rejected (request ids shown literally)."""
    from monitor.ingest.quarantine import list_quarantined, list_replaced

    with app_state(ctx).sessions()() as session:
        rows = (list_replaced if history else list_quarantined)(session, reason, limit)

    def human() -> None:
        table = Table("request_id", "reason", "detail")
        for row in rows:
            table.add_row(row.request_id, row.reason, row.detail)
        out.print(table)

    emit(as_json, [r.to_dict() for r in rows], human)


@app.command()
def status(
    ctx: typer.Context, as_json: JsonFlag = False, pushgateway: PushgatewayOption = None
) -> None:
    """Show counts of samples (quarantined by reason), instances, datasets and job runs."""
    from monitor.service.status import read_status

    state = app_state(ctx)
    with state.sessions()() as session:
        result = read_status(session, state.settings.executor)
    if pushgateway:
        from monitor.prometheus.push import push_metrics

        push_metrics(pushgateway, state.sessions(), state.settings, SystemClock())

    def human() -> None:
        table = Table("what", "count")
        table.add_row("samples ingested", str(result.samples_ingested))
        table.add_row("samples quarantined", str(result.samples_quarantined))
        for why, n in result.quarantined_by_reason.items():
            table.add_row(f"  {why}", str(n))
        table.add_row("predicted instances", str(result.predicted_instances))
        for name, counts in result.datasets.items():
            table.add_row(
                f"dataset {name}", f"{counts['images']} images, {counts['instances']} instances"
            )
        table.add_row("job runs", str(result.job_runs))
        where = result.executor.get("address") or ""
        table.add_row("executor", f"{result.executor.get('kind', '-')} {where}".strip())
        for job, stats in result.executor.get("last_runs", {}).items():
            table.add_row(
                f"  last {job} run",
                f"{stats.get('kind')}: {stats.get('workers')} workers, "
                f"{stats.get('batches')} batches, {stats.get('retries')} retries",
            )
        out.print(table)

    emit(as_json, result.to_dict(), human)


@app.command()
def synth(
    out_dir: Annotated[
        Path, typer.Argument(help="Output folder (images/, annotations.json, samples.jsonl).")
    ],
    images: Annotated[int, typer.Option("--images", help="Number of scenes.")] = 200,
    seed: Annotated[int, typer.Option("--seed", help="Random seed; same seed, same bytes.")] = 0,
    drift: Annotated[
        list[str] | None,
        typer.Option(
            "--drift",
            help="NAME=SEVERITY in [0, 1]; repeatable. Names: brightness, contrast, blur, noise, "
            "scale, classmix, novel.",
        ),
    ] = None,
    size: Annotated[int, typer.Option("--size", help="Image side in pixels (at least 64).")] = 256,
    as_json: JsonFlag = False,
) -> None:
    """Generate scenes: a COCO holdout (annotations.json) and a sample log (samples.jsonl)."""
    from monitor.synth import SynthConfig, generate_scenes, parse_drift

    config = SynthConfig(n_images=images, seed=seed, size=size, drift=parse_drift(drift or []))
    with progress_bar("synth") as update:
        summary = generate_scenes(out_dir, config, lambda done: update(done, images))
    payload = {
        "out": str(summary.out),
        "images": summary.n_images,
        "instances": summary.n_instances,
        "categories": list(summary.categories),
    }
    emit(as_json, payload, lambda: out.print(f"wrote {summary.n_images} scenes to {summary.out}"))


@app.command()
def demo(
    ctx: typer.Context,
    workdir: Annotated[
        Path,
        typer.Option(
            "--workdir", help="Folder for generated data and the demo's own SQLite database."
        ),
    ] = Path("var/demo"),
    seed: Annotated[int, typer.Option("--seed")] = 7,
    holdout_images: Annotated[
        int, typer.Option("--holdout-images", min=2, help="Images in the generated holdout.")
    ] = DEMO_HOLDOUT_IMAGES,
    images_per_day: Annotated[
        int, typer.Option("--images-per-day", min=2, help="Production requests per simulated day.")
    ] = DEMO_IMAGES_PER_DAY,
    canary_share: Annotated[
        float,
        typer.Option(
            "--canary-share",
            min=0.0,
            max=1.0,
            help="Share of the drifted day's requests served by a made-up worse candidate "
            "version, compared with the stable one at the end (0: no canary).",
        ),
    ] = DEMO_CANARY_SHARE,
    live: Annotated[
        bool,
        typer.Option(
            "--live",
            help="Then page through a real Prometheus and Alertmanager on 127.0.0.1 (Debian's "
            "prometheus, prometheus-alertmanager) and print what the webhook received.",
        ),
    ] = False,
    live_timeout_s: Annotated[
        float, typer.Option("--live-timeout", min=1.0, help="Seconds --live waits for the page.")
    ] = 90.0,
    as_json: JsonFlag = False,
) -> None:
    """Run the whole pipeline on generated data, in simulated time, in a fresh folder."""
    from datetime import datetime

    from monitor.cli.demo_output import print_alerts, print_canary, print_live
    from monitor.cli.numbers import num, percent
    from monitor.service.demo import DemoOptions, run_demo
    from monitor.service.demo_queue import describe_queue
    from monitor.service.live import run_live

    settings = app_state(ctx).settings
    summary = run_demo(
        workdir,
        settings,
        DemoOptions(
            holdout_images=holdout_images,
            images_per_day=images_per_day,
            seed=seed,
            canary_share=canary_share,
        ),
        lambda m: err.print(m, style="dim"),
    )
    if live:
        last = datetime.fromisoformat(summary["alerts"]["days"][-1]["at"])
        summary["live"] = run_live(
            f"sqlite:///{workdir / 'segmon.db'}",
            settings,
            last,
            timeout_s=live_timeout_s,
            say=lambda m: err.print(m, style="dim"),
        ).to_dict()

    def human() -> None:
        st = summary["status"]
        out.print(Text("segmon demo", style="bold"), f"in {summary['workdir']}")
        out.print(
            f"holdout: {summary['holdout']['images']} images, {summary['holdout']['instances']} instances"
        )
        out.print(
            f"production: {st['samples_ingested']} samples ingested, {st['predicted_instances']} instances, "
            f"{st['samples_quarantined']} quarantined {st['quarantined_by_reason']}"
        )
        for q in summary["quality"]:
            out.print(
                f"quality of {q['model_version']} on the holdout: AP {num(q['ap'], places=3)}, "
                f"AP50 {num(q['ap50'], places=3)}, recall {num(q['recall'], places=3)}"
            )
        for d in summary["days"]:
            sh = d["shadow"]
            agreement = sh["mean_agreement"]
            flagged = ", ".join(d["drift_flagged"]) or "none"
            out.print(
                f"{d['day']}: {d['embedded_images']} images embedded; shadow agreement "
                f"{num(agreement, 3)} over {sh['samples']} samples; "
                f"drift flagged by {len(d['drift_flagged'])} of {d['drift_checks']} checks: {flagged}"
            )
        for name, slo in summary["slos"].items():
            out.print(
                f"SLO {name}: 1d burn rate {num(slo['burn_rate_1d'])}, "
                f"error budget left {percent(slo['error_budget_remaining'])}"
            )
        print_alerts(summary["alerts"])
        if "canary" in summary:
            print_canary(summary["canary"])
        if "live" in summary:
            print_live(summary["live"])
        out.print(*describe_queue(summary["queue"]), sep="\n", highlight=False)
        out.print(f"job runs: {num(st['job_runs'])}")
        out.print(f"look-back report with plots: {summary['report']['path']}")

    emit(as_json, summary, human)


@app.command("run")
def run_service(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option("--host", help="Bind address (default: server.host).")
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", help="Port; 0 picks a free one (default: server.port).")
    ] = None,
) -> None:
    """Run the service: scheduled jobs, /metrics, /healthz and the admin API, until SIGTERM."""
    import logging

    from monitor.service.serve import serve

    settings = app_state(ctx).settings
    server = settings.server.model_copy(
        update={k: v for k, v in (("host", host), ("port", port)) if v is not None}
    )
    configure_logging(logging.INFO, secrets_in(os.environ, settings))
    serve(
        settings.model_copy(update={"server": server}),
        os.environ,
        on_ready=lambda url: err.print(
            f"segmon listening on {url} (metrics at {url}/metrics)", highlight=False
        ),
    )
