"""``segmon demo``: the whole pipeline on generated data, in simulated time.

Generates a labeled holdout and two days of production sample log (a clean day, then a
day with photometric drift), creates a fresh SQLite database in the work folder,
imports the holdout, ingests the production model's predictions on the holdout images
(golden requests) and evaluates them, ingests the log (with a few deliberately broken
lines, which end in quarantine), and reports what the database holds. Later stages (embeddings, drift,
quality, SLOs) join here as they land.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from monitor.bootstrap import init_database
from monitor.clock import ManualClock
from monitor.config import Settings
from monitor.db import make_engine, session_factory
from monitor.errors import InvalidInputError
from monitor.holdout import import_holdout
from monitor.ingest import ingest_log
from monitor.jobs import run_job
from monitor.quality import evaluate_holdout
from monitor.status import read_status

MARKER = ".segmon-demo"
START = datetime(2026, 11, 23, tzinfo=UTC)


@dataclass(frozen=True)
class DemoOptions:
    """Sizes of the generated data."""

    holdout_images: int = 120
    images_per_day: int = 150
    seed: int = 7
    drift: dict[str, float] = field(default_factory=lambda: {"brightness": 0.6, "blur": 0.5})


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


def run_demo(
    workdir: Path,
    settings: Settings,
    options: DemoOptions = DemoOptions(),
    say: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Run the pipeline on generated data in ``workdir`` and return a summary.

    The database is a fresh SQLite file in ``workdir`` (the configured database is
    left alone); the clock is simulated, starting at the first generated capture time.
    """
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
    _break_some_lines(workdir / "log" / "day2")
    engine = make_engine(f"sqlite:///{workdir / 'segmon.db'}")
    init_database(engine, settings.categories)
    sessions = session_factory(engine)
    say("importing the holdout")
    holdout, _ = run_job(
        sessions,
        "holdout_import",
        clock,
        lambda: import_holdout(
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
        "ingest",
        clock,
        partial(ingest_log, sessions, str(workdir / "holdout"), settings.ingest, clock),
    )
    quality, _ = run_job(
        sessions, "evaluate", clock, partial(evaluate_holdout, sessions, "holdout", clock)
    )
    reports = [golden.counts()]
    for name in ("day1", "day2"):
        clock.advance(day)
        say(f"ingesting production log {name}")
        report, _ = run_job(
            sessions,
            "ingest",
            clock,
            partial(ingest_log, sessions, str(workdir / "log" / name), settings.ingest, clock),
        )
        reports.append(report.counts())
    with sessions() as session:
        status = read_status(session).to_dict()
    engine.dispose()
    return {
        "workdir": str(workdir),
        "holdout": holdout.counts(),
        "quality": quality.counts()["results"],
        "ingest": reports,
        "status": status,
    }
