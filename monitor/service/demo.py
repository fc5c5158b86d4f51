"""``segmon demo``: the whole pipeline on generated data, in simulated time.

Generates a labeled holdout and two days of production sample log (a clean day, then a
day with photometric drift), creates a fresh SQLite database in the work folder, and
runs the jobs the scheduler runs, in simulated time:

1. import the holdout; ingest the production model's predictions on the holdout images
   (golden requests) and evaluate them; evaluate the reference model over the holdout;
2. per day: ingest the log (day 2 carries deliberately broken lines, which end in
   quarantine), embed the new images with the reference model and shadow-score them;
   the drifted day ends with an outage (production answers its last requests with no
   masks, :mod:`monitor.service.demo_outage`); a share of its requests is served by a
   canary, a made-up worse candidate version (:mod:`monitor.service.demo_canary`);
3. compute the drift checks of both days' windows against the holdout through the
   backfill path (:func:`monitor.drift.backfill.backfill_drift`, what
   ``segmon drift --from --to`` runs);
4. compare the canary with the stable version over the drifted day
   (:func:`monitor.drift.compare.compare_versions`, what ``segmon compare`` runs);
5. on the drifted day, fill the annotation queue, export it, label it with the generated
   ground truth and evaluate production on those labels (:mod:`monitor.service.demo_queue`);
6. write the look-back report with its plots (``report.html`` in the work folder),
   report SLO burn rates, the burn-rate alerts that fire at the end of each day and why
   (:mod:`monitor.service.demo_alerts`), and what the database holds.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from monitor.clock import ManualClock
from monitor.config import DriftSettings, Settings
from monitor.drift.backfill import backfill_drift
from monitor.embed.job import embed_pending
from monitor.errors import InvalidInputError
from monitor.ingest.holdout import import_holdout
from monitor.ingest.job import ingest_log
from monitor.jobs.names import JobName
from monitor.jobs.runs import run_job
from monitor.model.protocol import SegmentationModel
from monitor.quality.job import evaluate_holdout
from monitor.quality.shadow import shadow_pending
from monitor.service.demo_alerts import alert_report, canary_alerts
from monitor.service.demo_canary import CanarySplit, DemoCanary, add_canary, compare_canary
from monitor.service.demo_outage import add_outage
from monitor.service.demo_queue import run_queue_demo
from monitor.service.lookback import write_lookback_report
from monitor.service.status import read_status
from monitor.slo.burn import SLOStatus
from monitor.slo.events import read_slo_status
from monitor.storage.bootstrap import init_database
from monitor.storage.engine import make_engine, session_factory

MARKER = ".segmon-demo"
START = datetime(2026, 11, 23, tzinfo=UTC)


@dataclass(frozen=True)
class DemoOptions:
    """Sizes of the generated data."""

    holdout_images: int = 120
    images_per_day: int = 150
    seed: int = 7
    drift: dict[str, float] = field(default_factory=lambda: {"brightness": 0.6, "blur": 0.5})
    outage_images: int | None = None
    """Requests answered with no masks at the end of the drifted day, two a minute
    (0: no outage; None: a third of ``images_per_day``, at least 24)."""

    canary_share: float = 0.3
    """Share of the drifted day's requests (outage included, by weighted round robin)
    served by the canary, a made-up candidate version worse than the stable one (0: no
    canary; see :mod:`monitor.service.demo_canary`)."""

    @property
    def outage(self) -> int:
        """The number of outage requests."""
        if self.outage_images is not None:
            return self.outage_images
        return max(24, self.images_per_day // 3)


def _prepare(workdir: Path) -> None:
    if workdir.exists():
        if not (workdir / MARKER).exists() and any(workdir.iterdir()):
            raise InvalidInputError(
                f"{str(workdir)!r} exists and is not a segmon demo folder; choose another --workdir"
            )
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    (workdir / MARKER).write_text("made by `segmon demo`; deleted and remade by the next run\n")


def _break_some_lines(log: Path) -> None:
    """Append the kinds of bad input production logs carry, to show quarantine at work."""
    with (log / "samples.jsonl").open("a") as handle:
        handle.write('{"request_id": "bad-1", "captured_at": \n')
        handle.write(
            json.dumps(
                {
                    "request_id": "bad-2",
                    "captured_at": "2026-11-24T12:00:00Z",
                    "image": "images/not-there.png",
                    "width": 256,
                    "height": 256,
                    "instances": [],
                }
            )
            + "\n"
        )


def _drift_settings(settings: Settings, options: DemoOptions) -> DriftSettings:
    """One daily window against the demo's holdout; small demos lower ``min_samples``."""
    return settings.drift.model_copy(
        update={
            "reference": "holdout",
            "windows": ("1d",),
            "min_samples": min(settings.drift.min_samples, max(2, options.images_per_day // 2)),
        }
    )


def _slo_summary(status: SLOStatus) -> dict[str, Any]:
    one_day = next(w for w in status.windows if w.window == "1d")
    return {
        "error_budget_remaining": status.error_budget_remaining,
        "events_1d": one_day.events,
        "burn_rate_1d": one_day.burn_rate,
    }


def run_demo(
    workdir: Path,
    settings: Settings,
    options: DemoOptions = DemoOptions(),
    say: Callable[[str], None] = lambda _: None,
    reference: SegmentationModel | None = None,
) -> dict[str, Any]:
    """Run the pipeline on generated data in ``workdir`` and return a summary.

    The database is a fresh SQLite file in ``workdir`` (the configured database is
    left alone); the clock is simulated, starting at the first generated capture time.
    ``reference`` is the model that embeds and shadow-scores (default: the configured
    ``models.reference`` and ``models.embedder``).
    """
    from monitor.service.schedule import load_embedder_model, load_reference_model
    from monitor.synth import SynthConfig, generate_scenes

    _prepare(workdir)
    clock = ManualClock(START)
    say("generating scenes: holdout and two days of production")
    generate_scenes(
        workdir / "holdout", SynthConfig(n_images=options.holdout_images, seed=options.seed)
    )
    day = timedelta(days=1)
    interval = day.total_seconds() / options.images_per_day
    generate_scenes(
        workdir / "log" / "day1",
        SynthConfig(
            n_images=options.images_per_day, seed=options.seed + 1, start=START, interval_s=interval
        ),
    )
    generate_scenes(
        workdir / "log" / "day2",
        SynthConfig(
            n_images=options.images_per_day,
            seed=options.seed + 2,
            start=START + day,
            interval_s=interval,
            drift=options.drift,  # type: ignore[arg-type]
            request_prefix="d2-",
        ),
    )
    if options.outage:
        add_outage(
            workdir / "log" / "day2",
            end=START + 2 * day,
            images=options.outage,
            minutes=options.outage / 2,
            seed=options.seed + 3,
            drift=options.drift,  # type: ignore[arg-type]  # validated by SynthConfig
        )
    split: CanarySplit | None = None
    if options.canary_share:
        split = add_canary(workdir / "log" / "day2", share=options.canary_share)
    _break_some_lines(workdir / "log" / "day2")
    engine = make_engine(f"sqlite:///{workdir / 'segmon.db'}")
    init_database(engine, settings.categories)
    sessions = session_factory(engine)
    say("importing the holdout")
    holdout, _ = run_job(
        sessions,
        JobName.HOLDOUT_IMPORT,
        clock,
        lambda _run: import_holdout(
            sessions,
            workdir / "holdout" / "annotations.json",
            workdir / "holdout" / "images",
            "holdout",
            clock,
        ),
    )
    say("ingesting golden requests (the holdout's images, seen by production) and evaluating")
    golden, _ = run_job(
        sessions,
        JobName.INGEST,
        clock,
        lambda _run: ingest_log(sessions, str(workdir / "holdout"), settings.ingest, clock),
    )
    quality, _ = run_job(
        sessions,
        JobName.EVALUATE,
        clock,
        lambda run: evaluate_holdout(sessions, "holdout", clock, run_id=run),
    )
    model = reference if reference is not None else load_reference_model(settings)
    embedder = reference if reference is not None else load_embedder_model(settings, model)
    say(f"evaluating the reference model {model.name} over the holdout")
    reference_quality, _ = run_job(
        sessions,
        JobName.EVALUATE,
        clock,
        lambda run: evaluate_holdout(sessions, "holdout", clock, model=model, run_id=run),
    )
    drift_settings = _drift_settings(settings, options)
    reports = [golden.counts()]
    days: list[dict[str, Any]] = []
    for name in ("day1", "day2"):
        clock.advance(day)
        say(f"{name}: ingesting the production log, embedding, shadow scoring")
        log = str(workdir / "log" / name)
        report, _ = run_job(
            sessions,
            JobName.INGEST,
            clock,
            lambda _run, log=log: ingest_log(sessions, log, settings.ingest, clock),  # type: ignore[misc]  # default binds this day's log (B023)
        )
        reports.append(report.counts())
        embedded, _ = run_job(
            sessions,
            JobName.EMBED,
            clock,
            lambda _run: embed_pending(
                sessions, embedder, clock, batch_size=settings.embed.batch_size
            ),
        )
        shadowed, _ = run_job(
            sessions,
            JobName.SHADOW,
            clock,
            lambda _run: shadow_pending(
                sessions,
                model,
                clock,
                min_iou=settings.shadow.min_iou,
                batch_size=settings.shadow.batch_size,
            ),
        )
        days.append(
            {
                "day": name,
                "ingest": report.counts(),
                "embedded_images": embedded.samples + embedded.holdout_images,
                "shadow": shadowed.counts(),
            }
        )
    say("drift checks of both days through the backfill path")
    period = (START, START + 2 * day)
    backfill, _ = run_job(
        sessions,
        JobName.DRIFT,
        clock,
        lambda run: backfill_drift(sessions, drift_settings, clock, *period, run_id=run),
    )
    for k, entry in enumerate(days):
        end = START + (k + 1) * day
        checks = [c for c in backfill.drift.checks if c.window_end == end]
        entry["drift_checks"] = len(checks)
        entry["drift_flagged"] = sorted(
            {
                "/".join(filter(None, (c.family, c.class_name, c.result.feature)))
                for c in checks
                if c.result.drift_detected
            }
        )
    canary: DemoCanary | None = None
    if split is not None:
        say(f"day2: comparing the canary {split.candidate} with {split.baseline}")
        canary = compare_canary(
            sessions,
            settings.model_copy(update={"drift": drift_settings}),
            split,
            (START + day, START + 2 * day),
        )
    queue = run_queue_demo(sessions, settings, clock, workdir, options.images_per_day, model, say)
    say("writing the look-back report with its plots")
    lookback = write_lookback_report(
        sessions,
        settings.model_copy(update={"drift": drift_settings}),
        clock,
        *period,
        workdir / "report.html",
    )
    with sessions() as session:
        status = read_status(session).to_dict()
        slos = {
            spec.name: _slo_summary(read_slo_status(session, spec, clock.now()))
            for spec in settings.slos
            if spec.computed_by_segmon
        }
    day_ends = {d["day"]: START + (i + 1) * day for i, d in enumerate(days)}
    alerts = alert_report(sessions, settings.slos, day_ends)
    alerts["canary"] = canary_alerts(sessions)
    engine.dispose()
    summary: dict[str, Any] = {
        "alerts": alerts,
        "workdir": str(workdir),
        "holdout": holdout.counts(),
        "quality": quality.counts()["results"] + reference_quality.counts()["results"],
        "ingest": reports,
        "days": days,
        "slos": slos,
        "status": status,
        "report": lookback.as_dict(),
        "queue": queue.to_dict(),
    }
    if canary is not None:
        summary["canary"] = canary.to_dict()
    return summary
