"""Fixtures for the SLO integration tests: result rows, a degraded stream, real binaries."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import Clock, ManualClock
from monitor.config import IngestSettings
from monitor.ingest.holdout import import_holdout
from monitor.ingest.job import ingest_log
from monitor.jobs.names import JobName
from monitor.jobs.runs import run_job
from monitor.quality.job import evaluate_holdout
from monitor.storage.schema import (
    ClassQualityRow,
    Dataset,
    DatasetImage,
    DriftResultRow,
    GroundTruthInstance,
    JobRun,
    ModelVersion,
    PredictedInstance,
    QualityResult,
    RunStatus,
    Sample,
    SampleStatus,
    ShadowClassScore,
    ShadowScore,
    Source,
)
from monitor.synth import SynthConfig, generate_scenes

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


# --- rows ---------------------------------------------------------------------------


@dataclass
class Rows:
    """Inserts realistic result rows (the jobs that write them are built elsewhere)."""

    session: Session
    _n: int = 0

    def source(self) -> Source:
        src = self.session.scalar(select(Source).where(Source.uri == "mem://log"))
        if src is None:
            src = Source(uri="mem://log", kind="dir", created_at=NOW - timedelta(days=60))
            self.session.add(src)
            self.session.flush()
        return src

    def version(self, name: str = "prod-2026.11.1") -> ModelVersion:
        mv = self.session.scalar(select(ModelVersion).where(ModelVersion.name == name))
        if mv is None:
            mv = ModelVersion(name=name, first_seen_at=NOW - timedelta(days=60))
            self.session.add(mv)
            self.session.flush()
        return mv

    def sample(self, captured_at: datetime, version: str = "prod-2026.11.1") -> Sample:
        self._n += 1
        sample = Sample(
            source_id=self.source().id,
            request_id=f"r-{self._n:06d}",
            captured_at=captured_at,
            ingested_at=captured_at,
            model_version_id=self.version(version).id,
            status=SampleStatus.OK,
        )
        self.session.add(sample)
        self.session.flush()
        return sample

    def shadow(
        self,
        captured_at: datetime,
        computed_at: datetime,
        classes: dict[int, tuple[list[float], int, int]],
        version: str = "prod-2026.11.1",
    ) -> ShadowScore:
        """``classes``: category id -> (matched pairs' IoUs, production_only, reference_only)."""
        sample = self.sample(captured_at, version)
        matched = sum(len(ious) for ious, _, _ in classes.values())
        n_prod = matched + sum(p for _, p, _ in classes.values())
        n_ref = matched + sum(r for _, _, r in classes.values())
        ious_all = [i for ious, _, _ in classes.values() for i in ious]
        score = ShadowScore(
            sample_id=sample.id,
            reference_model="reference-v1",
            computed_at=computed_at,
            n_production=n_prod,
            n_reference=n_ref,
            n_matched=matched,
            mean_iou=float(np.mean(ious_all)) if ious_all else None,
            agreement=matched / n_prod if n_prod else 1.0,
        )
        score.classes = [
            ShadowClassScore(
                category_id=cat,
                matched=len(ious),
                production_only=prod,
                reference_only=ref,
                class_disagreements=0,
                ious=ious,
            )
            for cat, (ious, prod, ref) in classes.items()
        ]
        self.session.add(score)
        self.session.flush()
        return score

    def dataset(self) -> Dataset:
        ds = self.session.scalar(select(Dataset).where(Dataset.name == "holdout"))
        if ds is None:
            ds = Dataset(name="holdout", source_uri="mem://holdout", created_at=NOW)
            self.session.add(ds)
            self.session.flush()
        return ds

    def quality(
        self,
        computed_at: datetime,
        classes: Sequence[tuple[int, str, int, int, int]],
        *,
        version: str = "prod-2026.11.1",
        iou_threshold: float = 0.5,
        report: dict[str, Any] | None = None,
        mean_iou: float | None = 0.8,
        ap: float | None = 0.6,
    ) -> QualityResult:
        """``classes``: (category id, name, true positives, false positives, false negatives)."""
        tp = sum(c[2] for c in classes)
        fp = sum(c[3] for c in classes)
        fn = sum(c[4] for c in classes)
        result = QualityResult(
            computed_at=computed_at,
            dataset_id=self.dataset().id,
            model_version=version,
            prediction_source="production",
            iou_threshold=iou_threshold,
            n_images=10,
            n_ground_truth=tp + fn,
            n_predictions=tp + fp,
            ap=ap,
            ap50=ap,
            mean_iou=mean_iou,
            precision=tp / (tp + fp) if tp + fp else None,
            recall=tp / (tp + fn) if tp + fn else None,
            report=report or {},
        )
        result.classes = [
            ClassQualityRow(
                category_id=cat,
                class_name=name,
                n_ground_truth=t + n,
                n_predictions=t + f,
                true_positives=t,
                false_positives=f,
                false_negatives=n,
                mean_iou=mean_iou if t else None,
                precision=t / (t + f) if t + f else None,
                recall=t / (t + n) if t + n else None,
                f1=None,
                false_positives_per_image=f / 10,
                ap=ap,
            )
            for cat, name, t, f, n in classes
        ]
        self.session.add(result)
        self.session.flush()
        return result

    def drift(
        self,
        window_end: datetime,
        detected: bool,
        *,
        family: str = "image_embedding",
        feature: str = "embedding",
        detector: str = "pca_divergence",
        class_name: str = "",
        statistic: float = 0.2,
        threshold: float = 0.1,
        p_value: float | None = 0.01,
        computed_at: datetime | None = None,
    ) -> DriftResultRow:
        row = DriftResultRow(
            computed_at=computed_at or window_end,
            family=family,
            feature=feature,
            detector=detector,
            class_name=class_name,
            reference="holdout",
            window="1h",
            window_start=window_end - timedelta(hours=1),
            window_end=window_end,
            statistic=statistic,
            threshold=threshold,
            p_value=p_value,
            drift_detected=detected,
            n_reference=200,
            n_current=60,
        )
        self.session.add(row)
        self.session.flush()
        return row

    def job(self, name: str, finished_at: datetime, seconds: float = 2.0) -> JobRun:
        run = JobRun(
            job=name,
            started_at=finished_at - timedelta(seconds=seconds),
            finished_at=finished_at,
            status=RunStatus.SUCCESS,
            counts={},
        )
        self.session.add(run)
        self.session.flush()
        return run


@pytest.fixture
def rows(sessions: sessionmaker[Session]) -> Iterator[Rows]:
    """A row writer on the test database; tests call ``rows.session.commit()``."""
    with sessions() as session:
        yield Rows(session)


# --- a degraded stream --------------------------------------------------------------

DRIFT = {"brightness": 0.8, "blur": 0.9, "noise": 0.9}


@dataclass(frozen=True)
class DegradedStream:
    """A database filled from a generated, drifted sample log plus the results it implies."""

    database_url: str
    sessions: sessionmaker[Session]
    now: datetime
    n_samples: int


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
            gts = session.scalars(
                select(GroundTruthInstance).where(GroundTruthInstance.image_id == image.id)
            ).all()
            truth[image.image_sha256] = (
                image.height,
                image.width,
                [(g.category_id, g.rle_counts) for g in gts],
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


def _thumbnails(folder: Path) -> np.ndarray:  # type: ignore[type-arg]
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
    return DegradedStream(database_url, sessions, now, n_images)


# --- processes ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(url: str, timeout: float = 5.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return bytes(response.read())


def wait_until(check: Callable[[], bool], deadline_s: float, step_s: float = 0.25) -> bool:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            if check():
                return True
        except OSError:
            pass
        time.sleep(step_s)
    return False


@pytest.fixture
def processes() -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start processes that are killed when the test ends, whatever happens."""
    started: list[subprocess.Popen[bytes]] = []

    def start(args: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
        handle = log.open("wb")
        proc = subprocess.Popen(list(args), stdout=handle, stderr=subprocess.STDOUT)
        handle.close()
        started.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in started:
            proc.terminate()
        for proc in started:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (apt-get install prometheus / .ci/system-deps)")
    return path


@dataclass(frozen=True)
class Kit:
    """Helpers for test modules (importlib mode: tests cannot import the conftest)."""

    now: datetime = NOW
    free_port: Callable[[], int] = free_port
    http_get: Callable[..., bytes] = http_get
    wait_until: Callable[..., bool] = wait_until
    binary: Callable[[str], str] = binary
    build_degraded_stream: Callable[..., DegradedStream] = build_degraded_stream


@pytest.fixture
def kit() -> Kit:
    return Kit()
