"""One full monitoring cycle on generated data: wall time and CPU time of each stage.

Generates --images production scenes and a --holdout of labelled scenes (--size px,
seeded; generation is timed but not part of the cycle), then runs on a fresh SQLite
database, with the ``local`` executor: holdout import, ingest, embed, shadow, drift
(image properties and every check), evaluate (the reference model over the holdout)
and the annotation-queue fill (looking back over every sample). The clock stands just
after the midnight that closes the last day of samples. Records each stage's wall time and share of the
cycle, the process's CPU seconds (user + system, this process and its threads), and
the load average before and after (the machine may be shared). Writes
bench/results/bench_full_cycle.json.

The models are wired as the service wires them: the embedder is loaded with the
reference, so in the default config (the embedder is the reference) the embed stage
also decodes each image's instances and the shadow stage (and evaluate, over the
holdout images embed saw) reuses them (:func:`monitor.model.loading.share_forward_pass`);
the JSON records the memo's hits.

    nice -n 10 python -m bench.bench_full_cycle [--images 10000] [--size 64]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench._common import print_table, write_results


def cpu_seconds() -> float:
    """User + system CPU seconds of this process so far (all threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--holdout", type=int, default=200)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()

    import torch

    from monitor.clock import ManualClock
    from monitor.config import DEFAULT_CATEGORIES, IngestSettings, Settings
    from monitor.ingest.holdout import import_holdout
    from monitor.ingest.job import ingest_log
    from monitor.quality.job import evaluate_holdout
    from monitor.queue.job import run_queue_job
    from monitor.service.schedule import (
        drift_job,
        embed_job,
        load_embedder_model,
        load_reference_model,
        shadow_job,
    )
    from monitor.storage.bootstrap import init_database
    from monitor.storage.engine import make_engine, session_factory
    from monitor.synth import SynthConfig, generate_scenes
    from monitor.synth.options import DEFAULT_START

    settings = Settings.model_validate({"queue": {"lookback": "400d"}})
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="segmon-full-cycle-") as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        production = SynthConfig(n_images=args.images, seed=17, size=args.size)
        generate_scenes(root / "production", production, overwrite=True)
        holdout = SynthConfig(n_images=args.holdout, seed=18, size=args.size, request_prefix="h-")
        generate_scenes(root / "holdout", holdout, overwrite=True)
        generate_s = time.perf_counter() - started

        engine = make_engine(f"sqlite:///{root / 'segmon.db'}")
        init_database(engine, DEFAULT_CATEGORIES)
        sessions = session_factory(engine)
        end = DEFAULT_START + timedelta(seconds=args.images * production.interval_s)
        # just after the midnight that closes the last day of samples: drift's 1d window
        # holds that day; the queue looks back over every sample
        midnight = end.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        clock = ManualClock(midnight + timedelta(minutes=1))
        reference = load_reference_model(settings)
        embedder = load_embedder_model(settings, reference)
        stages: list[tuple[str, Callable[[], Any]]] = [
            (
                "holdout import",
                lambda: import_holdout(
                    sessions,
                    root / "holdout" / "annotations.json",
                    root / "holdout" / "images",
                    "holdout",
                    clock,
                ),
            ),
            (
                "ingest",
                lambda: ingest_log(sessions, str(root / "production"), IngestSettings(), clock),
            ),
            ("embed", lambda: embed_job(sessions, settings, clock, embedder)),
            ("shadow", lambda: shadow_job(sessions, settings, clock, reference)),
            ("drift", lambda: drift_job(sessions, settings, clock)),
            ("evaluate", lambda: evaluate_holdout(sessions, "holdout", clock, model=reference)),
            ("queue fill", lambda: run_queue_job(sessions, settings, clock)),
        ]
        rows: list[dict[str, Any]] = []
        for name, stage in stages:
            wall, cpu = time.perf_counter(), cpu_seconds()
            report = stage()
            wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
            counts = report.counts() if hasattr(report, "counts") else {}
            rows.append({"stage": name, "wall_s": wall, "cpu_s": cpu, "counts": counts})
            print(f"{name}: {wall:.1f} s wall, {cpu:.1f} s CPU", flush=True)
        engine.dispose()
    memo = getattr(embedder, "memo", None)
    shared = None if memo is None else vars(memo.stats())
    total = sum(r["wall_s"] for r in rows)
    for row in rows:
        row["share"] = row["wall_s"] / total
    load_after = os.getloadavg()
    print_table(
        ["stage", "wall s", "CPU s", "share"],
        [
            (r["stage"], round(r["wall_s"], 1), round(r["cpu_s"], 1), f"{r['share']:.0%}")
            for r in rows
        ]
        + [("total", round(total, 1), round(sum(r["cpu_s"] for r in rows), 1), "100%")],
    )
    print(f"generation {generate_s:.1f} s (not in the cycle); load {load_before} -> {load_after}")
    print(f"shared forward pass (embed -> shadow, evaluate): {shared}")
    path = write_results(
        "bench_full_cycle",
        {
            "images": args.images,
            "holdout_images": args.holdout,
            "size_px": args.size,
            "executor": "local",
            "stages": rows,
            "total_wall_s": total,
            "total_cpu_s": sum(r["cpu_s"] for r in rows),
            "generate_s": generate_s,
            "loadavg_before": list(load_before),
            "loadavg_after": list(load_after),
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "shared_forward_pass": shared,
            "python": platform.python_version(),
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
