"""Ingest throughput: sample-log lines with RLE masks into SQLite and PostgreSQL.

    python -m bench.bench_ingest --lines 20000 --backends sqlite postgres

Generates a sample log (distinct PNG image per line, 3 instances per line with
compressed-RLE masks) once under --cache, then times `ingest_log` on a fresh database
per backend, with image verification on (read, sha256, decode check), as the default
config runs it. Reports samples/s and peak resident memory of a child process per run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parents[1]


def make_log(root: Path, n: int, seed: int = 0) -> Path:
    from PIL import Image, ImageDraw

    from monitor.masks import encode_mask

    marker = root / f"done-{n}-{seed}"
    if marker.exists():
        return root
    (root / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    w, h = 256, 192
    yy, xx = np.mgrid[0:h, 0:w]
    start = datetime(2026, 11, 23, tzinfo=UTC)
    with (root / "samples.jsonl").open("w") as log:
        for i in range(n):
            rid = f"r-{i:07d}"
            img = Image.new("RGB", (w, h), tuple(int(v) for v in rng.integers(0, 255, 3)))
            draw = ImageDraw.Draw(img)
            instances = []
            for _ in range(3):
                cx, cy = rng.uniform(20, w - 20), rng.uniform(20, h - 20)
                rx, ry = rng.uniform(8, 40), rng.uniform(8, 40)
                mask = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1
                draw.ellipse(
                    (cx - rx, cy - ry, cx + rx, cy + ry),
                    fill=tuple(int(v) for v in rng.integers(0, 255, 3)),
                )
                m = encode_mask(mask)
                instances.append(
                    {
                        "category_id": int(rng.integers(1, 5)),
                        "score": round(float(rng.uniform(0.3, 1)), 3),
                        "bbox": list(m.bbox),
                        "segmentation": {"size": [h, w], "counts": m.counts},
                        "class_scores": [0.1, 0.2, 0.3, 0.4],
                    }
                )
            img.save(root / "images" / f"{rid}.png")
            line = {
                "request_id": rid,
                "captured_at": (start + timedelta(seconds=i)).isoformat(),
                "model_version": "prod-2026.11.1",
                "image": f"images/{rid}.png",
                "width": w,
                "height": h,
                "latency_ms": round(float(rng.lognormal(4.4, 0.2)), 1),
                "instances": instances,
            }
            log.write(json.dumps(line) + "\n")
    marker.touch()
    return root


CHILD = """
import json, resource, sys, time
from monitor.storage.bootstrap import init_database
from monitor.clock import SystemClock
from monitor.config import DEFAULT_CATEGORIES, IngestSettings
from monitor.storage.engine import make_engine, session_factory
from monitor.ingest.job import ingest_log
engine = make_engine(sys.argv[1])
init_database(engine, DEFAULT_CATEGORIES)
sessions = session_factory(engine)
t0 = time.perf_counter()
report = ingest_log(sessions, sys.argv[2], IngestSettings(batch_size=int(sys.argv[3])), SystemClock())
elapsed = time.perf_counter() - t0
print(json.dumps({"seconds": elapsed, "ingested": report.ingested, "instances": report.instances,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_backend(backend: str, log: Path, batch: int, pg_url: str, work: Path) -> dict[str, object]:
    from sqlalchemy import create_engine, text

    schema = None
    if backend == "sqlite":
        db = work / f"bench-{uuid.uuid4().hex[:6]}.db"
        url = f"sqlite:///{db}"
    else:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(pg_url)
        with admin.begin() as c:
            c.execute(text(f"CREATE SCHEMA {schema}"))
        url = pg_url + ("&" if "?" in pg_url else "?") + f"options=-csearch_path%3D{schema}"
    try:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, url, str(log), str(batch)],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        if schema:
            with admin.begin() as c:
                c.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        elif backend == "sqlite":
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
    result["samples_per_s"] = result["ingested"] / result["seconds"]
    result["backend"] = backend
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=20_000)
    parser.add_argument(
        "--batch", type=int, default=1000, help="lines per transaction (the default config)"
    )
    parser.add_argument(
        "--backends", nargs="+", default=["sqlite", "postgres"], choices=["sqlite", "postgres"]
    )
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/segmon-bench-ingest"))
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "SEGMON_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    args = parser.parse_args()
    t0 = time.perf_counter()
    log = make_log(args.cache / f"log-{args.lines}", args.lines)
    print(
        f"log ready in {time.perf_counter() - t0:.1f}s: {args.lines} lines, 3 RLE instances each",
        file=sys.stderr,
    )
    rows = []
    for backend in args.backends:
        for _ in range(args.repeats):
            rows.append(run_backend(backend, log, args.batch, args.postgres_url, args.cache))
            r = rows[-1]
            print(
                f"{backend:9s} {r['ingested']:>7} samples {r['seconds']:7.2f}s "
                f"{r['samples_per_s']:8.0f} samples/s  peak RSS {r['peak_rss_mib']:.0f} MiB"
            )
    RESULTS.mkdir(exist_ok=True)
    doc = {
        "benchmark": "ingest",
        "lines": args.lines,
        "batch": args.batch,
        "cpus": os.cpu_count(),
        "machine": platform.platform(),
        "when": datetime.now(UTC).isoformat(),
        "runs": rows,
    }
    (RESULTS / "bench_ingest.json").write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
