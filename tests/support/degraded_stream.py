"""A degraded stream: a drifted generated log, ingested and scored, results stored.

The Prometheus integration test scrapes what :func:`build_degraded_stream` leaves in the
database; shadow rows score production against the labeled truth, drift rows hold real
detectors' verdicts on clean vs drifted images. A canary version (:data:`CANARY`) served
the same golden requests with eroded masks (:func:`add_canary`), and the canary job
compared it with the stable version, so its quality verdict is ``worse``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from detectors._typing import Float64Array
from monitor.clock import Clock, ManualClock
from monitor.config import IngestSettings, Settings
from monitor.drift.canary import CanaryReport, run_canary
from monitor.ingest.holdout import import_holdout
from monitor.ingest.job import ingest_log
from monitor.jobs.names import JobName
from monitor.jobs.runs import run_job
from monitor.masks import decode_mask
from monitor.quality.job import evaluate_holdout
from monitor.storage.schema import (
    DatasetImage,
    DriftResultRow,
    GroundTruthInstance,
    ModelVersion,
    PredictedInstance,
    Sample,
    SampleStatus,
    ShadowClassScore,
    ShadowScore,
    Source,
)
from monitor.synth import DriftKnob, SynthConfig, generate_scenes
from tests.support.drift_scenes import mask_columns
from tests.support.result_rows import Rows

DRIFT: dict[DriftKnob, float] = {"brightness": 0.8, "blur": 0.9, "noise": 0.9}
CANARY = "canary-2026.11.2"
"""The candidate version: two of three of the stable version's golden requests, answered
with masks eroded by 2 px and 1.5 times the latency (its latency verdict is ``worse``)."""


@dataclass(frozen=True)
class DegradedStream:
    """A database filled from a generated, drifted sample log plus the results it implies."""

    database_url: str
    sessions: sessionmaker[Session]
    now: datetime
    n_samples: int
    canary: CanaryReport | None = None


def _rle(height: int, width: int, counts: str) -> dict[str, Any]:
    return {"size": [height, width], "counts": counts.encode()}


def shadow_against_truth(
    sessions: sessionmaker[Session], computed_at: datetime, match_iou: float = 0.1
) -> int:
    """Score production against the labeled truth of the same images, as a shadow job would.

    The reference model here is the holdout's ground truth (a perfect reference); pairs
    are matched greedily per class by IoU (at least ``match_iou``), and every matched
    pair's IoU is stored, so the SLO grades them at its own threshold.
    """
    written = 0
    with sessions.begin() as session:
        truth: dict[str, tuple[int, int, list[tuple[int, str]]]] = {}
        for image in session.scalars(select(DatasetImage)):
            labeled = session.scalars(
                select(GroundTruthInstance).where(GroundTruthInstance.image_id == image.id)
            ).all()
            if image.image_sha256 is None:  # imported without its file: no golden request
                continue
            truth[image.image_sha256] = (
                image.height,
                image.width,
                [(g.category_id, g.rle_counts) for g in labeled],
            )
        samples = session.scalars(select(Sample).where(Sample.status == SampleStatus.OK)).all()
        for sample in samples:
            if sample.image_sha256 not in truth:
                continue
            h, w, gts = truth[sample.image_sha256]
            preds = session.scalars(
                select(PredictedInstance).where(PredictedInstance.sample_id == sample.id)
            ).all()
            classes: dict[int, ShadowClassScore] = {}
            for cat in sorted({c for c, _ in gts} | {p.category_id for p in preds}):
                g = [_rle(h, w, counts) for c, counts in gts if c == cat]
                p = [_rle(h, w, x.rle_counts) for x in preds if x.category_id == cat]
                ious: list[float] = []
                if g and p:
                    matrix = np.asarray(mask_utils.iou(p, g, [0] * len(g)), dtype=float)
                    while matrix.size and matrix.max() >= match_iou:
                        i, j = np.unravel_index(int(np.argmax(matrix)), matrix.shape)
                        ious.append(round(float(matrix[i, j]), 6))
                        matrix[i, :] = -1.0
                        matrix[:, j] = -1.0
                classes[cat] = ShadowClassScore(
                    category_id=cat,
                    matched=len(ious),
                    production_only=len(p) - len(ious),
                    reference_only=len(g) - len(ious),
                    class_disagreements=0,
                    ious=ious,
                )
            matched = sum(c.matched for c in classes.values())
            all_ious = [i for c in classes.values() for i in c.ious]
            score = ShadowScore(
                sample_id=sample.id,
                reference_model="holdout-truth",
                computed_at=computed_at,
                n_production=len(preds),
                n_reference=len(gts),
                n_matched=matched,
                mean_iou=float(np.mean(all_ious)) if all_ious else None,
                agreement=matched / len(preds) if preds else 1.0,
            )
            score.classes = list(classes.values())
            session.add(score)
            written += 1
    return written


def _thumbnails(folder: Path) -> Float64Array:
    paths = sorted((folder / "images").iterdir())
    return np.stack(
        [
            np.asarray(Image.open(p).convert("L").resize((8, 8)), dtype=np.float64).ravel() / 255
            for p in paths
        ]
    )


def drift_rows_from_images(
    sessions: sessionmaker[Session], reference: Path, current: Path, now: datetime
) -> None:
    """Run real detectors (reference scenes vs drifted ones) and store their verdicts."""
    from detectors import JensenShannonDetector, PCADivergenceDetector

    ref, cur = _thumbnails(reference), _thumbnails(current)
    halves = np.array_split(cur, 2)
    with sessions.begin() as session:
        for k, half in enumerate(halves):
            end = now - timedelta(minutes=30 * (len(halves) - 1 - k))
            checks = [
                (
                    "image_embedding",
                    "",
                    PCADivergenceDetector(n_components=4, n_permutations=200).fit(ref).score(half),
                ),
                (
                    "image_properties",
                    "",
                    JensenShannonDetector(n_bins=8, n_permutations=200, feature="brightness")
                    .fit(ref.mean(axis=1))
                    .score(half.mean(axis=1)),
                ),
                (
                    "instance_properties",
                    "disc",
                    JensenShannonDetector(n_bins=8, n_permutations=200, feature="contrast")
                    .fit(ref.std(axis=1))
                    .score(half.std(axis=1)),
                ),
            ]
            for fam, class_name, result in checks:
                session.add(
                    DriftResultRow(
                        computed_at=end,
                        family=fam,
                        feature=result.feature,
                        detector=result.detector,
                        class_name=class_name,
                        reference="clean-scenes",
                        window="30m",
                        window_start=end - timedelta(minutes=30),
                        window_end=end,
                        statistic=result.statistic,
                        threshold=result.threshold,
                        p_value=result.p_value,
                        drift_detected=result.drift_detected,
                        n_reference=result.n_reference,
                        n_current=result.n_current,
                    )
                )


def add_canary(
    sessions: sessionmaker[Session], now: datetime, erode: int = 2, slower: float = 1.5
) -> int:
    """Add :data:`CANARY`'s answers to two of three accepted samples (fewer than stable's).

    The same image, masks eroded by ``erode`` pixels (an object eroded away is missed),
    ``slower`` times the latency. They come from their own source (``memory://canary``),
    so the stable source's counts are unchanged. Returns the samples added.
    """
    from scipy.ndimage import binary_erosion

    with sessions.begin() as session:
        accepted = session.scalars(
            select(Sample).where(Sample.status == SampleStatus.OK).order_by(Sample.id)
        ).all()
        samples = [s for k, s in enumerate(accepted) if k % 3]
        source = Source(uri="memory://canary", kind="dir", created_at=now, watermark={})
        version = ModelVersion(name=CANARY, first_seen_at=now)
        session.add_all([source, version])
        session.flush()
        for sample in samples:
            copy = Sample(
                source_id=source.id,
                request_id=f"canary-{sample.request_id}",
                captured_at=sample.captured_at,
                ingested_at=now,
                model_version_id=version.id,
                image_uri=sample.image_uri,
                image_sha256=sample.image_sha256,
                width=sample.width,
                height=sample.height,
                latency_ms=None if sample.latency_ms is None else sample.latency_ms * slower,
                status=SampleStatus.OK,
            )
            session.add(copy)
            session.flush()
            h, w = sample.height or 0, sample.width or 0
            for inst in session.scalars(
                select(PredictedInstance).where(PredictedInstance.sample_id == sample.id)
            ):
                mask = binary_erosion(decode_mask(inst.rle_counts, h, w), iterations=erode)
                if not mask.any():
                    continue
                session.add(
                    PredictedInstance(
                        sample_id=copy.id,
                        category_id=inst.category_id,
                        score=inst.score,
                        class_scores=inst.class_scores,
                        **mask_columns(mask),
                    )
                )
        return len(samples)


def build_degraded_stream(
    root: Path, database_url: str, now: datetime, n_images: int = 60, clock: Clock | None = None
) -> DegradedStream:
    """Generate a drifted stream ending at ``now``, ingest it and store its results."""
    from monitor.config import DEFAULT_CATEGORIES
    from monitor.storage.bootstrap import init_database
    from monitor.storage.engine import make_engine, session_factory

    interval = 40.0
    start = now - timedelta(seconds=interval * n_images)
    clean = root / "clean"
    drifted = root / "drifted"
    generate_scenes(clean, SynthConfig(n_images=n_images, seed=11, size=64, start=start))
    generate_scenes(
        drifted,
        SynthConfig(
            n_images=n_images, seed=12, size=64, drift=DRIFT, start=start, interval_s=interval
        ),
    )
    engine = make_engine(database_url)
    init_database(engine, DEFAULT_CATEGORIES)
    sessions = session_factory(engine)
    clock = clock or ManualClock(now)
    import_holdout(sessions, drifted / "annotations.json", drifted / "images", "holdout", clock)
    run_job(
        sessions,
        JobName.INGEST,
        clock,
        lambda _run: ingest_log(sessions, str(drifted), IngestSettings(), clock),
    )
    run_job(
        sessions,
        JobName.EVALUATE,
        clock,
        lambda run: evaluate_holdout(sessions, "holdout", clock, run_id=run),
    )
    shadow_against_truth(sessions, computed_at=now)
    drift_rows_from_images(sessions, clean, drifted, now)
    with sessions.begin() as session:
        rows = Rows(session)
        for job in ("shadow", "drift", "queue"):
            rows.job(job, now)
    add_canary(sessions, now)
    settings = Settings.model_validate({"drift": {"min_samples": 20}})
    canary, _ = run_job(
        sessions, JobName.CANARY, clock, lambda run: run_canary(sessions, settings, clock, run)
    )
    assert isinstance(canary, CanaryReport)
    return DegradedStream(database_url, sessions, now, n_images, canary)
