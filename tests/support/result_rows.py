"""Realistic result rows (shadow, quality, drift, job runs) written straight to the database.

The ``rows`` fixture writes on the test database; the SLO, collector and push tests read
what it wrote at :data:`NOW`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from monitor.storage.schema import (
    CanaryResultRow,
    ClassQualityRow,
    Dataset,
    DriftResultRow,
    JobRun,
    ModelVersion,
    QualityResult,
    RunStatus,
    Sample,
    SampleStatus,
    ShadowClassScore,
    ShadowScore,
    Source,
)

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
"""The time the row-based tests read at (rows are written relative to it)."""


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

    def canary(
        self,
        window_end: datetime,
        signal: str,
        verdict: str,
        *,
        baseline: str = "prod-2026.11.1",
        candidate: str = "canary",
        means: tuple[float | None, float | None] = (0.9, 0.7),
        min_p_value: float | None = 0.001,
    ) -> CanaryResultRow:
        row = CanaryResultRow(
            computed_at=window_end,
            baseline=baseline,
            candidate=candidate,
            window_start=window_end - timedelta(days=1),
            window_end=window_end,
            signal=signal,
            verdict=verdict,
            checks=1,
            significant=int(verdict in ("worse", "better", "different")),
            min_p_value=min_p_value,
            baseline_mean=means[0],
            candidate_mean=means[1],
            n_baseline=400,
            n_candidate=40,
        )
        self.session.add(row)
        self.session.flush()
        return row


@pytest.fixture
def rows(sessions: sessionmaker[Session]) -> Iterator[Rows]:
    """A row writer on the test database; tests call ``rows.session.commit()``."""
    with sessions() as session:
        yield Rows(session)
