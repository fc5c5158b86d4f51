"""What one side of a drift check reads: a population, and its features keyed by series.

Shared by :mod:`monitor.drift.features` (which reads every family) and
:mod:`monitor.drift.scalars` (the scalar families, streamed in chunks).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.orm import Session

from detectors._typing import Float64Array, Int64Array
from detectors.histogram import MergedCounts
from detectors.registry import FeatureKind
from monitor.errors import InvalidInputError
from monitor.storage.schema import DatasetImage, ModelVersion, Sample, SampleStatus


@dataclass(frozen=True, order=True)
class FeatureKey:
    """Which series a feature array belongs to (``class_name`` is ``""`` for all)."""

    family: str
    feature: str
    class_name: str
    kind: FeatureKind


@dataclass(frozen=True)
class Population:
    """One side of a drift check: a production span, or a holdout dataset.

    Attributes
    ----------
    label
        Stored as ``drift_results.reference`` when this is the reference.
    dataset_id
        The holdout's id, or None for production.
    start, end
        Event-time span ``[start, end)`` of production (by ``samples.captured_at``).
    model_version
        Production only: keep the samples of this model version (by name); None keeps
        every version. A canary comparison reads one population per version.
    """

    label: str
    dataset_id: int | None = None
    start: datetime | None = None
    end: datetime | None = None
    model_version: str | None = None

    @property
    def is_holdout(self) -> bool:
        """Whether this reads a labeled holdout (ground truth, no scores)."""
        return self.dataset_id is not None


@dataclass
class FeatureSet:
    """Features of one population: images read and one array per :class:`FeatureKey`.

    ``groups`` holds, for the per-object arrays only, the id of the image (sample or
    holdout image) of each row, aligned with the array's rows.
    """

    n_images: int
    arrays: dict[FeatureKey, Float64Array] = field(default_factory=dict)
    groups: dict[FeatureKey, Int64Array] = field(default_factory=dict)
    merged: dict[FeatureKey, MergedCounts] = field(default_factory=dict)
    """Per-image scalar features of a window beyond ``max_values``, read against the
    reference: every value counted by reference rank (its array is then a sample)."""
    seen: dict[FeatureKey, int] = field(default_factory=dict)
    """Values read per scalar feature (more than its array holds when sampled)."""

    def add(self, key: FeatureKey, values: Float64Array, images: Int64Array | None = None) -> None:
        """Store one feature array and, for a per-object feature, the image of each row."""
        self.arrays[key] = values
        if images is not None:
            if images.shape != (values.shape[0],):
                raise InvalidInputError(
                    f"{key}: {images.shape[0]} image ids for {values.shape[0]} rows"
                )
            self.groups[key] = images


def image_filter(pop: Population) -> ColumnElement[bool]:
    """Return the WHERE clause selecting the images (samples or holdout images) of ``pop``."""
    if pop.dataset_id is not None:
        return DatasetImage.dataset_id == pop.dataset_id
    conditions = [Sample.status == SampleStatus.OK, Sample.captured_at.is_not(None)]
    if pop.start is not None:
        conditions.append(Sample.captured_at >= pop.start)
    if pop.end is not None:
        conditions.append(Sample.captured_at < pop.end)
    if pop.model_version is not None:
        version = select(ModelVersion.id).where(ModelVersion.name == pop.model_version)
        conditions.append(Sample.model_version_id.in_(version))
    return and_(*conditions)


def count_images(session: Session, pop: Population) -> int:
    """Return the number of images (accepted samples, or holdout images) in ``pop``."""
    table = DatasetImage if pop.is_holdout else Sample
    found = session.scalar(select(func.count()).select_from(table).where(image_filter(pop)))
    return int(found or 0)


@dataclass(frozen=True)
class VectorBudget:
    """How the embedding families of one side are read: streamed, bounded, seeded.

    Attributes
    ----------
    max_rows
        Vectors kept per feature and side (a window with more is sampled:
        :class:`~monitor.drift.chunked.BoundedSample`).
    chunk_rows
        Rows read from the database at a time.
    seed
        Seeds which rows a sampled window keeps.
    max_values
        Values kept per scalar feature and side (image properties, geometry, scores,
        counts): a larger side is a bounded seeded sample of whole images, as the
        vectors are (:mod:`monitor.drift.scalars`).
    """

    max_rows: int = 5_000
    chunk_rows: int = 10_000
    seed: int = 0
    max_values: int = 10_000
