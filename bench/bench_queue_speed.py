"""Annotation-queue speed: fill from 100,000 candidates, export 1,000 items per format.

    nice -n 10 python -m bench.bench_queue_speed --samples 100000 --export 1000

Builds (once, cached under --cache) a SQLite database of ``--samples`` accepted samples
captured in the last day, each with 1-4 predicted instances (compressed-RLE masks of a
``--size`` square image, class scores), a float16 image embedding of ``--dim`` values, and
a shadow row for every other sample; rows are inserted directly. Then, each in a child
process so its peak resident memory is its own:

- ``fill``: :func:`monitor.queue.fill.fill_queue` with the default signals, diversity
  (k-center greedy) over the top ``--pool`` candidates and a budget of ``--export`` items
  (target: <= 10 s);
- ``export FORMAT``: :func:`monitor.queue.export.export_batch` of those items, images
  copied, for coco, labelstudio and cvat (target: <= 30 s each); the items are put back
  to ``queued`` between formats.

Wall seconds are compared with the targets; CPU seconds and the 1-minute load average
are recorded beside them (on a shared machine the wall time includes waiting for a CPU).
Results in ``bench/results/bench_queue_speed.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from bench._common import print_table, write_results

REPO = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
TARGETS = {"fill": 10.0, "export": 30.0}


def build(db: Path, images: Path, n: int, dim: int, size: int, seed: int = 0) -> None:
    """Write the candidate database (skipped when the cached one is complete)."""
    marker = db.with_suffix(f".done-{n}-{dim}-{size}")
    if marker.exists():
        return
    from PIL import Image
    from sqlalchemy import insert

    from monitor.config import DEFAULT_CATEGORIES
    from monitor.masks import encode_mask
    from monitor.storage.bootstrap import init_database
    from monitor.storage.engine import make_engine
    from monitor.storage.schema import (
        ImageEmbedding,
        ModelVersion,
        PredictedInstance,
        Sample,
        ShadowScore,
        Source,
    )

    db.unlink(missing_ok=True)
    engine = make_engine(f"sqlite:///{db}")
    init_database(engine, DEFAULT_CATEGORIES)
    rng = np.random.default_rng(seed)
    images.mkdir(parents=True, exist_ok=True)
    n_files = 1000
    for k in range(n_files):
        pixels = rng.integers(0, 255, (size // 8, size // 8, 3), dtype=np.uint8)
        Image.fromarray(pixels).resize((size, size)).save(images / f"{k:05d}.png")
    masks = []
    yy, xx = np.mgrid[0:size, 0:size]
    for _ in range(64):
        cy, cx, r = rng.uniform(0.2, 0.8) * size, rng.uniform(0.2, 0.8) * size, size / 10
        m = encode_mask((yy - cy) ** 2 + (xx - cx) ** 2 < (r * rng.uniform(0.5, 1.5)) ** 2)
        masks.append(m)
    centres = rng.normal(size=(20, dim)) * 3
    with engine.begin() as conn:
        conn.execute(
            insert(Source),
            [{"id": 1, "uri": "bench://log", "kind": "dir", "created_at": NOW, "watermark": {}}],
        )
        conn.execute(insert(ModelVersion), [{"id": 1, "name": "prod-1", "first_seen_at": NOW}])
        chunk = 5000
        inst_id = 0
        for start in range(0, n, chunk):
            ids = range(start + 1, min(n, start + chunk) + 1)
            samples, instances, vectors, shadows = [], [], [], []
            for i in ids:
                samples.append(
                    {
                        "id": i,
                        "source_id": 1,
                        "request_id": f"r-{i:07d}",
                        "captured_at": NOW - timedelta(seconds=float(rng.uniform(60, 86000))),
                        "ingested_at": NOW,
                        "model_version_id": 1,
                        "image_uri": str(images / f"{i % n_files:05d}.png"),
                        "image_sha256": f"{i:064x}",
                        "width": size,
                        "height": size,
                        "status": "ok",
                    }
                )
                for _ in range(int(rng.integers(1, 5))):
                    inst_id += 1
                    m = masks[int(rng.integers(0, len(masks)))]
                    cat = int(rng.integers(1, 5))
                    probs = rng.dirichlet(np.ones(4)).tolist()
                    x, y, w, h = m.bbox
                    instances.append(
                        {
                            "id": inst_id,
                            "sample_id": i,
                            "category_id": cat,
                            "score": float(rng.uniform(0.3, 1.0)),
                            "bbox_x": x,
                            "bbox_y": y,
                            "bbox_w": w,
                            "bbox_h": h,
                            "area": m.area,
                            "rle_counts": m.counts,
                            "class_scores": probs,
                        }
                    )
                v = centres[int(rng.integers(0, len(centres)))] + rng.normal(size=dim)
                vectors.append(
                    {
                        "embedder": "backbone",
                        "sample_id": i,
                        "dim": dim,
                        "vector": v.astype("<f2").tobytes(),
                        "created_at": NOW,
                    }
                )
                if i % 2 == 0:
                    agreement = float(rng.uniform(0, 1))
                    shadows.append(
                        {
                            "sample_id": i,
                            "reference_model": "reference",
                            "computed_at": NOW,
                            "n_production": 2,
                            "n_reference": 2,
                            "n_matched": 1,
                            "mean_iou": 0.7,
                            "agreement": agreement,
                        }
                    )
            conn.execute(insert(Sample), samples)
            conn.execute(insert(PredictedInstance), instances)
            conn.execute(insert(ImageEmbedding), vectors)
            conn.execute(insert(ShadowScore), shadows)
    engine.dispose()
    marker.write_text("done\n")


def _settings(db: Path, out: Path, export: int, pool: int) -> Any:
    from monitor.config import Settings

    return Settings.model_validate(
        {
            "database_url": f"sqlite:///{db}",
            "queue": {
                "daily_budget": export,
                "diversity_pool": pool,
                "lookback": "1d",
                "export": {"out_dir": str(out), "images": "copy"},
            },
        }
    )


def child(phase: str, db: Path, out: Path, export: int, pool: int) -> dict[str, Any]:
    """Run one phase and return its seconds, result and peak memory."""
    from monitor.clock import ManualClock
    from monitor.storage.engine import make_engine, session_factory

    settings = _settings(db, out, export, pool)
    sessions = session_factory(make_engine(settings.database_url))
    started = time.perf_counter()
    cpu_started = time.process_time()
    if phase == "fill":
        from monitor.queue.fill import fill_queue

        report = fill_queue(sessions, settings, ManualClock(NOW))
        result: dict[str, Any] = {"queued": report.n_queued, "candidates": report.n_candidates}
    else:
        from monitor.queue.exporter import export_batch

        done = export_batch(sessions, settings, ManualClock(NOW), fmt=phase, limit=export)  # type: ignore[arg-type]
        assert done is not None
        result = {
            "items": len(done.item_ids),
            "masks": done.n_masks,
            "bytes": Path(done.path).stat().st_size,
        }
    seconds = time.perf_counter() - started
    cpu_s = time.process_time() - cpu_started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    load = os.getloadavg()[0]
    return {
        "phase": phase,
        "seconds": seconds,
        "cpu_s": cpu_s,
        "load_1m": load,
        "peak_rss_mb": peak_mb,
        **result,
    }


def _reset(db: Path, out: Path) -> None:
    """Put the items back to queued and remove the batches (rows and folders)."""
    import shutil

    from sqlalchemy import text

    shutil.rmtree(out, ignore_errors=True)

    from monitor.storage.engine import make_engine

    engine = make_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE queue_items SET state='queued', export_batch_id=NULL, exported_at=NULL")
        )
        conn.execute(text("DELETE FROM queue_export_batches"))
    engine.dispose()


def _run_child(args: argparse.Namespace, phase: str, db: Path, out: Path) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "bench.bench_queue_speed",
        "--child",
        phase,
        "--cache",
        str(args.cache),
        "--export",
        str(args.export),
        "--pool",
        str(args.pool),
        "--samples",
        str(args.samples),
        "--dim",
        str(args.dim),
        "--size",
        str(args.size),
    ]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{phase} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--export", type=int, default=1000)
    parser.add_argument("--pool", type=int, default=5000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/segmon-bench-queue"))
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    db = args.cache / f"queue-{args.samples}.db"
    out = args.cache / "exports"
    if args.child:
        print(json.dumps(child(args.child, db, out, args.export, args.pool)))
        return
    t0 = time.perf_counter()
    build(db, args.cache / "images", args.samples, args.dim, args.size)
    build_s = time.perf_counter() - t0
    from sqlalchemy import text

    from monitor.storage.engine import make_engine

    engine = make_engine(f"sqlite:///{db}")
    with engine.begin() as conn:  # a fresh queue on the cached candidates
        conn.execute(text("DELETE FROM queue_items"))
        conn.execute(text("DELETE FROM queue_export_batches"))
    engine.dispose()
    shutil.rmtree(out, ignore_errors=True)
    rows = [_run_child(args, "fill", db, out)]
    for fmt in ("coco", "labelstudio", "cvat"):
        _reset(db, out)
        rows.append(_run_child(args, fmt, db, out))
    for row in rows:
        target = TARGETS["fill" if row["phase"] == "fill" else "export"]
        row["target_s"] = target
        row["within_target"] = row["seconds"] <= target
    print_table(
        ["phase", "seconds", "cpu s", "load", "peak MB", "target s", "ok"],
        [
            [
                r["phase"],
                r["seconds"],
                r["cpu_s"],
                r["load_1m"],
                r["peak_rss_mb"],
                r["target_s"],
                r["within_target"],
            ]
            for r in rows
        ],
    )
    path = write_results(
        "bench_queue_speed",
        {
            "command": " ".join(["python -m bench.bench_queue_speed", *sys.argv[1:]]),
            "samples": args.samples,
            "export": args.export,
            "pool": args.pool,
            "dim": args.dim,
            "size": args.size,
            "build_s": build_s,
            "runs": rows,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
