"""Time one /metrics scrape (DatabaseCollector) on a database of N samples and results.

    python -m bench.bench_scrape --samples 10000 --results 1000 [--postgres URL]

Fills a fresh database with ``--samples`` shadow-scored samples (2 classes each, over the
last 30 days) and ``--results`` drift checks, plus 50 evaluations, then times
``generate_latest`` on the default registry (median of ``--repeat``).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client import generate_latest
from sqlalchemy import insert, text

from bench._common import print_table, write_results
from monitor.clock import ManualClock
from monitor.config import DEFAULT_CATEGORIES, Settings
from monitor.service.serve import default_registry
from monitor.storage.bootstrap import init_database
from monitor.storage.engine import make_engine, session_factory
from monitor.storage.schema import (
    ClassQualityRow,
    Dataset,
    DriftResultRow,
    ModelVersion,
    QualityResult,
    Sample,
    SampleStatus,
    ShadowClassScore,
    ShadowScore,
    Source,
)

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)


def fill(url: str, n_samples: int, n_results: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    engine = make_engine(url)
    init_database(engine, DEFAULT_CATEGORIES)
    period = 30 * 86400
    with engine.begin() as conn:
        conn.execute(
            insert(Source), [{"id": 1, "uri": "bench://log", "kind": "dir", "created_at": NOW}]
        )
        conn.execute(insert(ModelVersion), [{"id": 1, "name": "prod", "first_seen_at": NOW}])
        conn.execute(
            insert(Dataset), [{"id": 1, "name": "holdout", "source_uri": "x", "created_at": NOW}]
        )
        offsets = np.sort(rng.uniform(0, period, n_samples))
        times = [NOW - timedelta(seconds=float(o)) for o in offsets]
        conn.execute(
            insert(Sample),
            [
                {
                    "id": i + 1,
                    "source_id": 1,
                    "request_id": f"r-{i}",
                    "captured_at": t,
                    "ingested_at": t,
                    "model_version_id": 1,
                    "status": SampleStatus.OK,
                }
                for i, t in enumerate(times)
            ],
        )
        conn.execute(
            insert(ShadowScore),
            [
                {
                    "id": i + 1,
                    "sample_id": i + 1,
                    "reference_model": "ref",
                    "computed_at": t,
                    "n_production": 4,
                    "n_reference": 4,
                    "n_matched": 3,
                    "mean_iou": 0.7,
                    "agreement": 0.75,
                }
                for i, t in enumerate(times)
            ],
        )
        class_rows: list[dict[str, Any]] = []
        for i in range(n_samples):
            for cat in (1 + i % 4, 1 + (i + 1) % 4):
                k = int(rng.integers(0, 4))
                class_rows.append(
                    {
                        "shadow_score_id": i + 1,
                        "category_id": cat,
                        "matched": k,
                        "production_only": int(rng.integers(0, 2)),
                        "reference_only": int(rng.integers(0, 2)),
                        "class_disagreements": 0,
                        "ious": [round(float(v), 3) for v in rng.uniform(0.2, 1.0, k)],
                    }
                )
        conn.execute(insert(ShadowClassScore), class_rows)
        conn.execute(
            insert(DriftResultRow),
            [
                {
                    "computed_at": NOW - timedelta(hours=j // 20),
                    "family": "image_embedding" if j % 2 else "image_properties",
                    "feature": f"f{j % 20}",
                    "detector": "jensen_shannon",
                    "class_name": "",
                    "reference": "holdout",
                    "window": "1h",
                    "window_start": NOW - timedelta(hours=j // 20 + 1),
                    "window_end": NOW - timedelta(hours=j // 20),
                    "statistic": float(rng.uniform()),
                    "threshold": 0.5,
                    "p_value": float(rng.uniform()),
                    "drift_detected": bool(rng.uniform() < 0.1),
                    "n_reference": 100,
                    "n_current": 50,
                    "details": {},
                }
                for j in range(n_results)
            ],
        )
        for r in range(50):
            rid = conn.execute(
                insert(QualityResult).returning(QualityResult.id),
                [
                    {
                        "computed_at": NOW - timedelta(hours=6 * r),
                        "dataset_id": 1,
                        "model_version": "prod",
                        "prediction_source": "production",
                        "iou_threshold": 0.5,
                        "n_images": 100,
                        "n_ground_truth": 400,
                        "n_predictions": 400,
                        "report": {"coco": {"ap": 0.5}},
                    }
                ],
            ).scalar_one()
            conn.execute(
                insert(ClassQualityRow),
                [
                    {
                        "quality_result_id": rid,
                        "category_id": c.id,
                        "class_name": c.name,
                        "n_ground_truth": 100,
                        "n_predictions": 100,
                        "true_positives": 80,
                        "false_positives": 20,
                        "false_negatives": 20,
                        "mean_iou": 0.7,
                        "false_positives_per_image": 0.2,
                        "ap": 0.5,
                    }
                    for c in DEFAULT_CATEGORIES
                ],
            )
    engine.dispose()


def time_scrape(url: str, repeat: int) -> tuple[float, int]:
    engine = make_engine(url)
    sessions = session_factory(engine)
    registry = default_registry(sessions, Settings(database_url=url), ManualClock(NOW))
    generate_latest(registry)  # warm-up: connections, statement caches
    times = []
    size = 0
    for _ in range(repeat):
        start = time.perf_counter()
        size = len(generate_latest(registry))
        times.append(time.perf_counter() - start)
    engine.dispose()
    return statistics.median(times), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--results", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--postgres", help="PostgreSQL URL (a fresh schema is used)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        targets = [("sqlite", f"sqlite:///{Path(tmp) / 'bench.db'}")]
        if args.postgres:
            schema = f"bench_scrape_{int(time.time())}"
            admin = make_engine(args.postgres)
            with admin.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            sep = "&" if "?" in args.postgres else "?"
            targets.append(("postgresql", f"{args.postgres}{sep}options=-csearch_path%3D{schema}"))
        try:
            for name, url in targets:
                fill(url, args.samples, args.results)
                seconds, size = time_scrape(url, args.repeat)
                rows.append([name, args.samples, args.results, seconds * 1000, size])
        finally:
            if args.postgres:
                with admin.begin() as conn:
                    conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                admin.dispose()
    headers = ["database", "samples", "drift results", "scrape ms (median)", "bytes"]
    print_table(headers, rows)
    write_results(
        "bench_scrape",
        {"repeat": args.repeat, "rows": [dict(zip(headers, r, strict=True)) for r in rows]},
    )


if __name__ == "__main__":
    main()
