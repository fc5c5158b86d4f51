"""Backfill time: ``segmon drift --from --to`` over 30 daily windows of 1,000 samples each.

Writes a generated reference (1,000 samples over two days) and 30 days of production
(``--per-day`` samples a day, each with one or two objects of each of the four
classes, their masks, embeddings and image properties) straight into a fresh SQLite
database (or a private schema of ``--postgres URL``), then times
:func:`monitor.drift.backfill.backfill_drift` over the 30 daily windows with every
family and the default detectors, and a rerun (every window already stored: skipped).
Wall time depends on what else runs on the machine; CPU seconds of the process (BLAS
threads included) and the load average are recorded beside it. Results in
``bench/results/bench_backfill.json``.

    nice -n 10 python -m bench.bench_backfill [--days 30] [--per-day 1000] [--postgres URL]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, make_url, text

from bench._common import print_table, write_results
from monitor.clock import ManualClock
from monitor.config import DEFAULT_CATEGORIES, DateRange, DriftSettings
from monitor.drift.backfill import BackfillProgress, backfill_drift
from monitor.storage.bootstrap import init_database
from monitor.storage.engine import make_engine, session_factory
from tests.support.drift_scenes import DriftScenes

FIRST = datetime(2026, 10, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def run(url: str, days: int, per_day: int) -> dict[str, Any]:
    engine = make_engine(url)
    init_database(engine, DEFAULT_CATEGORIES)
    sessions = session_factory(engine)
    scenes = DriftScenes(sessions)
    reference = (FIRST - 2 * DAY, FIRST)
    t0 = time.perf_counter()
    scenes.production(per_day, reference)
    for k in range(days):
        scenes.production(per_day, (FIRST + k * DAY, FIRST + (k + 1) * DAY))
    populate_s = time.perf_counter() - t0
    settings = DriftSettings(
        reference=DateRange(start=reference[0], end=reference[1]), windows=("1d",)
    )
    clock = ManualClock(FIRST + (days + 1) * DAY)
    window_s: list[float] = []
    last = [time.perf_counter()]

    def progress(step: BackfillProgress) -> None:
        now = time.perf_counter()
        window_s.append(now - last[0])
        last[0] = now

    t0, c0 = time.perf_counter(), time.process_time()
    report = backfill_drift(sessions, settings, clock, FIRST, FIRST + days * DAY, progress=progress)
    backfill_s, backfill_cpu_s = time.perf_counter() - t0, time.process_time() - c0
    t0 = time.perf_counter()
    rerun = backfill_drift(sessions, settings, clock, FIRST, FIRST + days * DAY)
    rerun_s = time.perf_counter() - t0
    engine.dispose()
    return {
        "backend": make_url(url).get_backend_name(),
        "days": days,
        "samples_per_day": per_day,
        "populate_s": populate_s,
        "backfill_s": backfill_s,
        "backfill_cpu_s": backfill_cpu_s,
        "load_average_1m_after": os.getloadavg()[0],
        "windows_computed": report.computed,
        "checks_stored": len(report.drift.checks),
        "per_window_s_median": sorted(window_s)[len(window_s) // 2] if window_s else None,
        "per_window_s_max": max(window_s) if window_s else None,
        "rerun_s": rerun_s,
        "rerun_already_stored": rerun.already_stored,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--per-day", type=int, default=1000)
    parser.add_argument("--postgres", metavar="URL", help="also run on a private schema here")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        results.append(run(f"sqlite:///{Path(tmp) / 'bench.db'}", args.days, args.per_day))
    if args.postgres:
        schema = f"bench_backfill_{uuid.uuid4().hex[:8]}"
        admin = create_engine(args.postgres)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            url = make_url(args.postgres).update_query_dict({"options": f"-csearch_path={schema}"})
            results.append(run(url.render_as_string(hide_password=False), args.days, args.per_day))
        finally:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
    print_table(
        [
            "backend",
            "windows",
            "samples/day",
            "backfill s",
            "CPU s",
            "s/window (median)",
            "rerun s",
        ],
        [
            [
                r["backend"],
                r["windows_computed"],
                r["samples_per_day"],
                r["backfill_s"],
                r["backfill_cpu_s"],
                r["per_window_s_median"],
                r["rerun_s"],
            ]
            for r in results
        ],
    )
    path = write_results(
        "bench_backfill",
        {"machine": platform.platform(), "python": platform.python_version(), "runs": results},
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
