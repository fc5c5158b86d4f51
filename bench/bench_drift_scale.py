"""Drift at scale: peak memory and time of the drift job as the window grows.

For each size N (default 10k and 100k; add 1000000 with --sizes), builds a SQLite
database with N reference samples and N samples in the window (captured evenly over
each span), each with an image embedding (float16, --dim) and image properties,
inserted directly (no images, no instances). Then runs the drift job (the
``image_embedding`` and ``image_properties`` families, default detectors) in a fresh
subprocess per size and records its peak RSS (``ru_maxrss``) and wall time. Embedding
vectors stream in chunks into a bounded seeded sample (``drift.max_vectors`` per side),
so their memory stays flat; the scalar families still hold one float per image.
Writes bench/results/bench_drift_scale.json.

    nice -n 10 python -m bench.bench_drift_scale [--sizes 10000 100000] [--dim 32]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench._common import print_table, write_results

NOW = datetime(2026, 11, 24, 12, 30, tzinfo=UTC)
WINDOW = (datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 24, tzinfo=UTC))
REFERENCE = (datetime(2026, 11, 20, tzinfo=UTC), datetime(2026, 11, 22, tzinfo=UTC))


def build(url: str, n: int, dim: int, seed: int = 0) -> None:
    from sqlalchemy import insert

    from monitor.config import DEFAULT_CATEGORIES
    from monitor.storage.bootstrap import init_database
    from monitor.storage.engine import make_engine, session_factory
    from monitor.storage.schema import ImageEmbedding, ImageProperties, Sample, SampleStatus, Source

    engine = make_engine(url)
    init_database(engine, DEFAULT_CATEGORIES)
    sessions = session_factory(engine)
    rng = np.random.default_rng(seed)
    with sessions.begin() as s:
        source = Source(uri="memory://bench", kind="dir", created_at=NOW, watermark={})
        s.add(source)
        s.flush()
        source_id = source.id
    next_id = 1
    for side, (start, end), shift in (("ref", REFERENCE, 0.0), ("cur", WINDOW, 0.1)):
        step = (end - start) / n
        for lo in range(0, n, 20_000):
            hi = min(n, lo + 20_000)
            ids = list(range(next_id, next_id + hi - lo))
            next_id += hi - lo
            vectors = (rng.normal(size=(hi - lo, dim)) + shift).astype(np.float16)
            props = rng.normal(size=(hi - lo, 4)) + shift
            with sessions.begin() as s:
                s.execute(
                    insert(Sample),
                    [
                        {
                            "id": i,
                            "source_id": source_id,
                            "request_id": f"{side}-{i}",
                            "captured_at": start + (lo + k) * step,
                            "ingested_at": NOW,
                            "width": 64,
                            "height": 64,
                            "status": SampleStatus.OK,
                        }
                        for k, i in enumerate(ids)
                    ],
                )
                s.execute(
                    insert(ImageEmbedding),
                    [
                        {
                            "embedder": "bench",
                            "sample_id": i,
                            "dim": dim,
                            "vector": vectors[k].tobytes(),
                            "created_at": NOW,
                        }
                        for k, i in enumerate(ids)
                    ],
                )
                s.execute(
                    insert(ImageProperties),
                    [
                        {
                            "sample_id": i,
                            "brightness": float(props[k, 0]),
                            "contrast": float(props[k, 1]),
                            "saturation": float(props[k, 2]),
                            "sharpness": float(props[k, 3]),
                            "width": 64,
                            "height": 64,
                            "computed_at": NOW,
                        }
                        for k, i in enumerate(ids)
                    ],
                )
    engine.dispose()


def measure(url: str, scalar_checks: bool = True) -> dict[str, Any]:
    """Run the drift job once (in this process) and return peak RSS and time.

    Without ``scalar_checks`` the image properties are still read (their memory counts)
    but not tested, whose permutation calibration dominates the time at large sizes.
    """
    import resource

    from monitor.clock import ManualClock
    from monitor.config import DateRange, DriftDetectors, DriftSettings
    from monitor.drift.job import run_drift
    from monitor.storage.engine import make_engine, session_factory

    settings = DriftSettings(
        reference=DateRange(start=REFERENCE[0], end=REFERENCE[1]),
        windows=("1d",),
        detectors=DriftDetectors(
            instance_embedding=(),
            mask_geometry=(),
            prediction=(),
            image_properties=("kolmogorov_smirnov", "jensen_shannon") if scalar_checks else (),
        ),
    )
    sessions = session_factory(make_engine(url))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    report = run_drift(sessions, settings, ManualClock(NOW))
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "seconds": seconds,
        "peak_rss_mb": peak,
        "rss_before_mb": before,
        "checks": len(report.checks),
        "drift_detected": sorted(
            f"{c.family}/{c.result.feature}/{c.detector}"
            for c in report.checks
            if c.result.drift_detected
        ),
        "n_reference_embedding": max(
            (c.result.n_reference for c in report.checks if c.family == "image_embedding"),
            default=0,
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument(
        "--no-scalar-checks",
        action="store_true",
        help="read the image properties but run only the embedding checks (fast at 1M)",
    )
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, not args.no_scalar_checks)))
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            url = f"sqlite:///{Path(tmp) / f'drift_{n}.db'}"
            started = time.perf_counter()
            build(url, n, args.dim)
            build_s = time.perf_counter() - started
            flags = ["--no-scalar-checks"] if args.no_scalar_checks else []
            child = subprocess.run(
                [sys.executable, "-m", "bench.bench_drift_scale", "--measure", url, *flags],
                check=True,
                capture_output=True,
                text=True,
            )
            result = json.loads(child.stdout.strip().splitlines()[-1])
            rows.append({"window_samples": n, "build_s": build_s, **result})
            Path(url.removeprefix("sqlite:///")).unlink()
    base = rows[0]["peak_rss_mb"]
    for row in rows:
        row["peak_vs_smallest"] = row["peak_rss_mb"] / base
    print_table(
        ["window", "drift s", "peak RSS MB", "x smallest", "emb n_ref", "checks"],
        [
            [
                r["window_samples"],
                r["seconds"],
                r["peak_rss_mb"],
                r["peak_vs_smallest"],
                r["n_reference_embedding"],
                r["checks"],
            ]
            for r in rows
        ],
    )
    name = "bench_drift_scale_embedding_only" if args.no_scalar_checks else "bench_drift_scale"
    path = write_results(
        name,
        {
            "dim": args.dim,
            "scalar_checks": not args.no_scalar_checks,
            "rows": rows,
            "note": "reference and window both hold N samples",
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
