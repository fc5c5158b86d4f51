"""Embed throughput on each executor: local vs a Dask local cluster of 1 and 2 workers.

Generates --images scenes (256 px, seeded), ingests them once into a SQLite template,
then for each executor embeds every sample with the bundled embedder into a fresh copy
of that database and records images/s (the workers' models loaded beforehand, so the
figure is steady-state; cluster start-up and model load are reported apart). The Dask
overhead per batch is the round trip of a batch that does no work (submit, schedule,
run, return), timed over --empty-batches batches. Writes
bench/results/bench_executor.json.

    nice -n 10 python -m bench.bench_executor [--images 200] [--batch-size 16]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench._common import print_table, write_results

NOW = datetime(2026, 11, 24, tzinfo=UTC)


@dataclass(frozen=True)
class Nothing:
    """A batch that does no work: measures the executor's own cost per batch."""

    def load(self, item: int) -> int:
        return item

    def compute(self, loaded: list[int]) -> int:
        return len(loaded)


def warm(recipe: Any) -> None:
    """Load the model into a worker's cache (run on every worker)."""
    recipe.get()


def template(root: Path, n: int) -> Path:
    from monitor.clock import ManualClock
    from monitor.config import DEFAULT_CATEGORIES, IngestSettings
    from monitor.ingest.job import ingest_log
    from monitor.storage.bootstrap import init_database
    from monitor.storage.engine import make_engine, session_factory
    from monitor.synth import SynthConfig, generate_scenes

    scenes = root / "scenes"
    generate_scenes(scenes, SynthConfig(n_images=n, seed=17), overwrite=True)
    db = root / "template.db"
    engine = make_engine(f"sqlite:///{db}")
    init_database(engine, DEFAULT_CATEGORIES)
    ingest_log(session_factory(engine), str(scenes), IngestSettings(), ManualClock(NOW))
    engine.dispose()
    return db


def run(db: Path, executor: Any, recipe: Any, batch_size: int) -> tuple[float, int, int]:
    from monitor.clock import ManualClock
    from monitor.config import Settings
    from monitor.embed.job import embed_pending
    from monitor.service.schedule import load_embedder_model
    from monitor.storage.engine import make_engine, session_factory

    engine = make_engine(f"sqlite:///{db}")
    model = load_embedder_model(Settings())
    start = time.perf_counter()
    report = embed_pending(
        session_factory(engine),
        model,
        ManualClock(NOW),
        batch_size=batch_size,
        executor=executor,
        recipe=recipe if executor.remote else None,
    )
    seconds = time.perf_counter() - start
    engine.dispose()
    return seconds, report.samples, int(report.executor["batches"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--empty-batches", type=int, default=200)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()

    import distributed

    from monitor.config import Settings
    from monitor.jobs.executor import DaskExecutor, LocalExecutor
    from monitor.model.loading import embedder_recipe

    settings = Settings()
    recipe = embedder_recipe(settings.models, [c.name for c in settings.categories])
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        db = template(root, args.images)

        def fresh(name: str) -> Path:
            copy = root / f"{name}.db"
            shutil.copy(db, copy)
            return copy

        local = LocalExecutor()
        seconds, n, batches = run(fresh("local"), local, None, args.batch_size)
        start = time.perf_counter()
        list(local.map_batches(Nothing(), [[i] for i in range(args.empty_batches)]))
        empty = (time.perf_counter() - start) / args.empty_batches
        rows.append(
            {
                "executor": "local",
                "workers": 1,
                "images": n,
                "seconds": seconds,
                "images_per_s": n / seconds,
                "batches": batches,
                "overhead_ms_per_batch": 1000 * empty,
                "startup_s": 0.0,
            }
        )
        for workers in args.workers:
            started = time.perf_counter()
            with (
                distributed.LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                ) as cluster,
                distributed.Client(cluster) as client,
            ):
                client.run(warm, recipe)
                startup = time.perf_counter() - started
                executor = DaskExecutor(client, kind="local-cluster")
                seconds, n, batches = run(
                    fresh(f"dask{workers}"), executor, recipe, args.batch_size
                )
                start = time.perf_counter()
                empty_batches = [[i] for i in range(args.empty_batches)]
                list(executor.map_batches(Nothing(), empty_batches))
                empty = (time.perf_counter() - start) / args.empty_batches
            rows.append(
                {
                    "executor": "local-cluster",
                    "workers": workers,
                    "images": n,
                    "seconds": seconds,
                    "images_per_s": n / seconds,
                    "batches": batches,
                    "overhead_ms_per_batch": 1000 * empty,
                    "startup_s": startup,
                }
            )
    print_table(
        ["executor", "workers", "images", "s", "images/s", "overhead ms/batch", "startup s"],
        [
            [
                r["executor"],
                r["workers"],
                r["images"],
                r["seconds"],
                r["images_per_s"],
                r["overhead_ms_per_batch"],
                r["startup_s"],
            ]
            for r in rows
        ],
    )
    path = write_results(
        "bench_executor",
        {
            "images": args.images,
            "batch_size": args.batch_size,
            "cpus": os.cpu_count(),
            "machine": platform.machine(),
            "rows": rows,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
