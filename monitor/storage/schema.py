"""Database schema: SQLAlchemy 2.0 typed ORM models.

Alembic owns the schema (``alembic/versions``); a test checks that these models and the
migrations agree. Times are stored as timezone-aware UTC. Masks are COCO compressed RLE
``counts`` strings; their size is the image's.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from monitor.limits import (
    IMAGE_URI_CHARS,
    MODEL_VERSION_CHARS,
    REQUEST_ID_CHARS,
    SOURCE_URI_CHARS,
)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on every backend (SQLite keeps no offset: store naive UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Store aware datetimes as UTC (naive on SQLite); refuse naive ones."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} given; segmon stores UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return aware UTC datetimes."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base with stable constraint names."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON}


class SampleStatus(enum.StrEnum):
    """Whether a sample was accepted."""

    OK = "ok"
    QUARANTINED = "quarantined"


class RunStatus(enum.StrEnum):
    """State of one job run.

    ``abandoned``: the run's process stopped sending heartbeats while the run was
    ``running`` (killed, or cut off from the database); the leader marks it so.
    """

    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    ABANDONED = "abandoned"


class QueueState(enum.StrEnum):
    """State of one annotation-queue item.

    ``queued -> exported -> labeled | skipped | expired``; a ``queued`` item may also be
    skipped or expire before any export.
    """

    QUEUED = "queued"
    EXPORTED = "exported"
    LABELED = "labeled"
    SKIPPED = "skipped"
    EXPIRED = "expired"


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(cls, name=name, native_enum=False, length=16, values_callable=_values)


def _values(cls: type[enum.Enum]) -> list[str]:
    return [str(member.value) for member in cls]


class Category(Base):
    """A class of the production model, by the id the model emits."""

    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    supercategory: Mapped[str] = mapped_column(String(128), default="")


class ModelVersion(Base):
    """A version of the production model, as named in the sample log."""

    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(MODEL_VERSION_CHARS), unique=True)
    first_seen_at: Mapped[datetime]


class Source(Base):
    """A sample log (directory or fsspec URL) and how far it has been read."""

    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(primary_key=True)
    uri: Mapped[str] = mapped_column(String(SOURCE_URI_CHARS), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]
    last_ingested_at: Mapped[datetime | None]
    # {file name: byte offset after the last line committed}
    watermark: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Sample(Base):
    """One sampled production request: accepted, or quarantined with a reason."""

    __tablename__ = "samples"
    __table_args__ = (
        UniqueConstraint("source_id", "request_id", name="uq_samples_source_request"),
        Index("ix_samples_status_captured", "status", "captured_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    request_id: Mapped[str] = mapped_column(String(REQUEST_ID_CHARS))
    captured_at: Mapped[datetime | None]
    ingested_at: Mapped[datetime]
    model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    image_uri: Mapped[str | None] = mapped_column(String(IMAGE_URI_CHARS))
    image_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    width: Mapped[int | None]
    height: Mapped[int | None]
    latency_ms: Mapped[float | None] = mapped_column(Float)
    status: Mapped[SampleStatus] = mapped_column(_enum(SampleStatus, "sample_status"))
    quarantine_reason: Mapped[str | None] = mapped_column(String(64), index=True)
    quarantine_detail: Mapped[str | None] = mapped_column(Text)
    # The original line of a quarantined sample, so nothing is lost.
    raw: Mapped[str | None] = mapped_column(Text)

    instances: Mapped[list[PredictedInstance]] = relationship(
        back_populates="sample", cascade="all, delete-orphan", passive_deletes=True
    )


class QuarantineHistory(Base):
    """A quarantine that a corrected line with the same request id replaced.

    The sample row then holds the corrected line; this row keeps what was rejected,
    why, and when, so a correction never erases the record of the bad input.
    """

    __tablename__ = "quarantine_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    sample_id: Mapped[int] = mapped_column(ForeignKey("samples.id", ondelete="CASCADE"), index=True)
    reason: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(Text)
    raw: Mapped[str | None] = mapped_column(Text)
    quarantined_at: Mapped[datetime]
    replaced_at: Mapped[datetime]


class PredictedInstance(Base):
    """An instance the production model predicted for a sample."""

    __tablename__ = "predicted_instances"

    id: Mapped[int] = mapped_column(primary_key=True)
    sample_id: Mapped[int] = mapped_column(ForeignKey("samples.id", ondelete="CASCADE"), index=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"))
    score: Mapped[float] = mapped_column(Float)
    bbox_x: Mapped[float] = mapped_column(Float)
    bbox_y: Mapped[float] = mapped_column(Float)
    bbox_w: Mapped[float] = mapped_column(Float)
    bbox_h: Mapped[float] = mapped_column(Float)
    area: Mapped[int]
    rle_counts: Mapped[str] = mapped_column(Text)
    class_scores: Mapped[list[float] | None] = mapped_column(JSON)

    sample: Mapped[Sample] = relationship(back_populates="instances")


class Dataset(Base):
    """A labeled dataset, such as the holdout."""

    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(32), default="holdout")
    source_uri: Mapped[str] = mapped_column(String(2048))
    created_at: Mapped[datetime]

    images: Mapped[list[DatasetImage]] = relationship(
        back_populates="dataset", cascade="all, delete-orphan", passive_deletes=True
    )


class DatasetImage(Base):
    """An image of a labeled dataset."""

    __tablename__ = "dataset_images"
    __table_args__ = (UniqueConstraint("dataset_id", "file_name", name="uq_dataset_images_file"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    source_image_id: Mapped[int] = mapped_column(BigInteger)
    file_name: Mapped[str] = mapped_column(String(1024))
    image_uri: Mapped[str | None] = mapped_column(String(2048))
    """None for an image imported without its file (``holdout import --no-images``)."""
    image_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    width: Mapped[int]
    height: Mapped[int]
    sample_id: Mapped[int | None] = mapped_column(
        ForeignKey("samples.id", ondelete="SET NULL"), index=True
    )
    """The production sample this image is, for labels returned from the annotation queue."""

    dataset: Mapped[Dataset] = relationship(back_populates="images")
    instances: Mapped[list[GroundTruthInstance]] = relationship(
        back_populates="image", cascade="all, delete-orphan", passive_deletes=True
    )


class GroundTruthInstance(Base):
    """A labeled instance. ``id`` is segmon's own (never 0); the file's id is kept."""

    __tablename__ = "ground_truth_instances"

    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(
        ForeignKey("dataset_images.id", ondelete="CASCADE"), index=True
    )
    source_annotation_id: Mapped[int | None] = mapped_column(BigInteger)
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"))
    iscrowd: Mapped[bool] = mapped_column(Boolean, default=False)
    bbox_x: Mapped[float] = mapped_column(Float)
    bbox_y: Mapped[float] = mapped_column(Float)
    bbox_w: Mapped[float] = mapped_column(Float)
    bbox_h: Mapped[float] = mapped_column(Float)
    area: Mapped[int]
    """Pixels in the mask (pycocotools' area of the stored RLE)."""
    coco_area: Mapped[float | None] = mapped_column(Float)
    """The annotation's own ``area`` field, which COCOeval uses for size ranges."""
    rle_counts: Mapped[str] = mapped_column(Text)

    image: Mapped[DatasetImage] = relationship(back_populates="instances")


class JobRun(Base):
    """One run of a job: when, how it ended, what it counted, who ran it.

    ``owner`` is the process that ran it (``host:pid``); while the work runs, that
    process refreshes ``heartbeat_at``. A ``running`` row whose heartbeat stops is marked
    ``abandoned`` by the leader named in ``abandoned_by`` (``finished_at`` is then when).
    """

    __tablename__ = "job_runs"
    __table_args__ = (
        Index("ix_job_runs_job_started", "job", "started_at"),
        Index("ix_job_runs_status", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    status: Mapped[RunStatus] = mapped_column(_enum(RunStatus, "run_status"))
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    owner: Mapped[str | None] = mapped_column(String(255))
    heartbeat_at: Mapped[datetime | None]
    abandoned_by: Mapped[str | None] = mapped_column(String(255))


class LeaderLease(Base):
    """Who leads the replicas of ``segmon run``, as the leader last wrote it.

    The lock (PostgreSQL advisory lock, SQLite ``flock``) decides who leads; this row
    only tells the others who that is and how recently it renewed (every heartbeat).
    """

    __tablename__ = "leader_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255))
    url: Mapped[str | None] = mapped_column(String(2048))
    acquired_at: Mapped[datetime]
    renewed_at: Mapped[datetime]


class ImageEmbedding(Base):
    """An image-level embedding (float16 bytes) of a production sample or a holdout image."""

    __tablename__ = "image_embeddings"
    __table_args__ = (
        UniqueConstraint("embedder", "sample_id", name="uq_image_embeddings_sample"),
        UniqueConstraint("embedder", "dataset_image_id", name="uq_image_embeddings_dataset_image"),
        CheckConstraint("(sample_id IS NULL) <> (dataset_image_id IS NULL)", name="one_owner"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    embedder: Mapped[str] = mapped_column(String(128))
    sample_id: Mapped[int | None] = mapped_column(ForeignKey("samples.id", ondelete="CASCADE"))
    dataset_image_id: Mapped[int | None] = mapped_column(
        ForeignKey("dataset_images.id", ondelete="CASCADE")
    )
    dim: Mapped[int]
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]


class InstanceEmbedding(Base):
    """Backbone features pooled inside one mask (a predicted or a labeled instance)."""

    __tablename__ = "instance_embeddings"
    __table_args__ = (
        UniqueConstraint(
            "embedder", "predicted_instance_id", name="uq_instance_embeddings_predicted"
        ),
        UniqueConstraint(
            "embedder", "ground_truth_instance_id", name="uq_instance_embeddings_ground_truth"
        ),
        CheckConstraint(
            "(predicted_instance_id IS NULL) <> (ground_truth_instance_id IS NULL)",
            name="one_owner",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    embedder: Mapped[str] = mapped_column(String(128))
    predicted_instance_id: Mapped[int | None] = mapped_column(
        ForeignKey("predicted_instances.id", ondelete="CASCADE")
    )
    ground_truth_instance_id: Mapped[int | None] = mapped_column(
        ForeignKey("ground_truth_instances.id", ondelete="CASCADE")
    )
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"))
    dim: Mapped[int]
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]


class EmbedderRecord(Base):
    """What an embedder (the ``embedder`` of stored vectors) is, and when the embed job ran it.

    ``details`` is what the model says of itself (source file and sha256, output
    convention, how instance vectors are made, preprocessing) or, for a plugin, its
    factory. The drift job compares the vectors of the embedder used last by default.
    """

    __tablename__ = "embedders"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    dim: Mapped[int]
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    first_used_at: Mapped[datetime]
    last_used_at: Mapped[datetime]


class DriftResultRow(Base):
    """One detector's verdict on one feature for one window against a reference."""

    __tablename__ = "drift_results"
    __table_args__ = (
        UniqueConstraint(
            "family",
            "feature",
            "detector",
            "class_name",
            "reference",
            "window",
            "window_end",
            name="uq_drift_results_check",
        ),
        Index("ix_drift_results_window_end", "window_end"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("job_runs.id", ondelete="SET NULL"))
    computed_at: Mapped[datetime]
    family: Mapped[str] = mapped_column(String(32))
    feature: Mapped[str] = mapped_column(String(128))
    detector: Mapped[str] = mapped_column(String(64))
    class_name: Mapped[str] = mapped_column(String(128), default="")
    reference: Mapped[str] = mapped_column(String(256))
    embedder: Mapped[str | None] = mapped_column(String(128))
    """Whose vectors an embedding family compared (None for the other families)."""
    window: Mapped[str] = mapped_column(String(16))
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    statistic: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    p_value: Mapped[float | None] = mapped_column(Float)
    drift_detected: Mapped[bool] = mapped_column(Boolean)
    n_reference: Mapped[int]
    n_current: Mapped[int]
    # Per-object checks (one row per object): the images those objects lie on, the
    # unit the detectors permuted. NULL for per-image checks, whose n_* count images.
    n_reference_groups: Mapped[int | None]
    n_current_groups: Mapped[int | None]
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class QualityResult(Base):
    """One evaluation of a model version against a labeled dataset."""

    __tablename__ = "quality_results"
    __table_args__ = (Index("ix_quality_results_version_time", "model_version", "computed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("job_runs.id", ondelete="SET NULL"))
    computed_at: Mapped[datetime]
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    model_version: Mapped[str] = mapped_column(String(128))
    prediction_source: Mapped[str] = mapped_column(String(512))
    iou_threshold: Mapped[float] = mapped_column(Float)
    n_images: Mapped[int]
    n_ground_truth: Mapped[int]
    n_predictions: Mapped[int]
    ap: Mapped[float | None] = mapped_column(Float)
    ap50: Mapped[float | None] = mapped_column(Float)
    mean_iou: Mapped[float | None] = mapped_column(Float)
    precision: Mapped[float | None] = mapped_column(Float)
    recall: Mapped[float | None] = mapped_column(Float)
    report: Mapped[dict[str, Any]] = mapped_column(JSON)

    classes: Mapped[list[ClassQualityRow]] = relationship(
        back_populates="result", cascade="all, delete-orphan", passive_deletes=True
    )


class ClassQualityRow(Base):
    """Per-class figures of one evaluation (None where undefined, never NaN)."""

    __tablename__ = "class_quality"

    id: Mapped[int] = mapped_column(primary_key=True)
    quality_result_id: Mapped[int] = mapped_column(
        ForeignKey("quality_results.id", ondelete="CASCADE"), index=True
    )
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"))
    class_name: Mapped[str] = mapped_column(String(128))
    n_ground_truth: Mapped[int]
    n_predictions: Mapped[int]
    true_positives: Mapped[int]
    false_positives: Mapped[int]
    false_negatives: Mapped[int]
    mean_iou: Mapped[float | None] = mapped_column(Float)
    precision: Mapped[float | None] = mapped_column(Float)
    recall: Mapped[float | None] = mapped_column(Float)
    f1: Mapped[float | None] = mapped_column(Float)
    false_positives_per_image: Mapped[float] = mapped_column(Float)
    ap: Mapped[float | None] = mapped_column(Float)

    result: Mapped[QualityResult] = relationship(back_populates="classes")


class ShadowScore(Base):
    """Agreement of the reference model with production on one sampled image."""

    __tablename__ = "shadow_scores"
    __table_args__ = (
        UniqueConstraint("sample_id", "reference_model", name="uq_shadow_scores_sample"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sample_id: Mapped[int] = mapped_column(ForeignKey("samples.id", ondelete="CASCADE"))
    reference_model: Mapped[str] = mapped_column(String(128))
    computed_at: Mapped[datetime]
    n_production: Mapped[int]
    n_reference: Mapped[int]
    n_matched: Mapped[int]
    mean_iou: Mapped[float | None] = mapped_column(Float)
    agreement: Mapped[float] = mapped_column(Float)

    classes: Mapped[list[ShadowClassScore]] = relationship(
        back_populates="score", cascade="all, delete-orphan", passive_deletes=True
    )


class ShadowClassScore(Base):
    """Per-class shadow counts on one image; ``ious`` lists matched pairs' IoUs."""

    __tablename__ = "shadow_class_scores"

    id: Mapped[int] = mapped_column(primary_key=True)
    shadow_score_id: Mapped[int] = mapped_column(
        ForeignKey("shadow_scores.id", ondelete="CASCADE"), index=True
    )
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"))
    matched: Mapped[int]
    production_only: Mapped[int]
    reference_only: Mapped[int]
    class_disagreements: Mapped[int]
    ious: Mapped[list[float]] = mapped_column(JSON)

    score: Mapped[ShadowScore] = relationship(back_populates="classes")


class ImageProperties(Base):
    """Simple properties of one image, computed once (drift features)."""

    __tablename__ = "image_properties"
    __table_args__ = (
        UniqueConstraint("sample_id", name="uq_image_properties_sample"),
        UniqueConstraint("dataset_image_id", name="uq_image_properties_dataset_image"),
        CheckConstraint("(sample_id IS NULL) <> (dataset_image_id IS NULL)", name="one_owner"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sample_id: Mapped[int | None] = mapped_column(ForeignKey("samples.id", ondelete="CASCADE"))
    dataset_image_id: Mapped[int | None] = mapped_column(
        ForeignKey("dataset_images.id", ondelete="CASCADE")
    )
    brightness: Mapped[float] = mapped_column(Float)
    contrast: Mapped[float] = mapped_column(Float)
    saturation: Mapped[float] = mapped_column(Float)
    sharpness: Mapped[float] = mapped_column(Float)
    width: Mapped[int]
    height: Mapped[int]
    computed_at: Mapped[datetime]


class QueueExportBatch(Base):
    """One export of queue items to an annotation tool's format (a file on disk)."""

    __tablename__ = "queue_export_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    format: Mapped[str] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(String(2048))
    created_at: Mapped[datetime]
    created_by: Mapped[str | None] = mapped_column(String(256))
    n_items: Mapped[int]
    run_id: Mapped[int | None] = mapped_column(ForeignKey("job_runs.id", ondelete="SET NULL"))
    closed_at: Mapped[datetime | None]
    """When every item of the batch was labeled, skipped or expired."""

    items: Mapped[list[QueueItem]] = relationship(back_populates="export_batch")


class QueueItem(Base):
    """A production sample chosen for annotation, with why it was chosen.

    A sample is queued at most once (``uq_queue_items_sample_id``); ``signals`` holds the
    per-signal scores in [0, 1] that made ``priority``, ``reason`` the largest contributor.
    """

    __tablename__ = "queue_items"
    __table_args__ = (
        UniqueConstraint("sample_id", name="uq_queue_items_sample_id"),
        Index("ix_queue_items_state_priority", "state", "priority"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sample_id: Mapped[int] = mapped_column(ForeignKey("samples.id", ondelete="CASCADE"))
    state: Mapped[QueueState] = mapped_column(_enum(QueueState, "queue_state"))
    priority: Mapped[float] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(String(32))
    signals: Mapped[dict[str, float]] = mapped_column(JSON)
    category_ids: Mapped[list[int]] = mapped_column(JSON)
    """Categories the production model predicted on the sample (depth by class)."""
    n_instances: Mapped[int]
    queued_at: Mapped[datetime]
    fill_run_id: Mapped[int | None] = mapped_column(ForeignKey("job_runs.id", ondelete="SET NULL"))
    export_batch_id: Mapped[int | None] = mapped_column(
        ForeignKey("queue_export_batches.id", ondelete="SET NULL"), index=True
    )
    exported_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    """When the item was labeled, skipped or expired."""
    labeled_by: Mapped[str | None] = mapped_column(String(256))
    review_reason: Mapped[str | None] = mapped_column(String(256))
    """Set when the returned labels disagree strongly with both models (possible label error)."""
    review_decision: Mapped[str | None] = mapped_column(String(16))
    """``accepted`` or ``rejected`` once someone reviewed flagged labels (None: not reviewed)."""
    reviewed_at: Mapped[datetime | None]
    reviewed_by: Mapped[str | None] = mapped_column(String(256))

    export_batch: Mapped[QueueExportBatch | None] = relationship(back_populates="items")


class LabelOutcome(Base):
    """Production's predictions against returned labels on one labelled sample, per class.

    Written when labels come back from the annotation queue (:mod:`monitor.queue.labels`):
    within each class, production's instances and the labels are matched one-to-one,
    maximising the total IoU among pairs that overlap at all. ``ious`` lists the matched
    pairs' IoUs; ``production_only`` / ``label_only`` count the unmatched instances. The
    holdout-quality SLI reads these rows as events at the sample's capture time
    (:mod:`monitor.slo.events`).
    """

    __tablename__ = "label_outcomes"
    __table_args__ = (
        UniqueConstraint("dataset_image_id", "category_id", name="uq_label_outcomes_image_class"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_image_id: Mapped[int] = mapped_column(
        ForeignKey("dataset_images.id", ondelete="CASCADE")
    )
    sample_id: Mapped[int] = mapped_column(ForeignKey("samples.id", ondelete="CASCADE"), index=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"))
    ious: Mapped[list[float]] = mapped_column(JSON)
    production_only: Mapped[int]
    label_only: Mapped[int]
    computed_at: Mapped[datetime]


class CanaryResultRow(Base):
    """The verdict on one signal of a candidate model version against the baseline.

    Written by the canary job (:mod:`monitor.drift.canary`) for the window
    ``[window_start, window_end)``; a rerun for the same window replaces its rows.
    """

    __tablename__ = "canary_results"
    __table_args__ = (
        UniqueConstraint(
            "baseline", "candidate", "window_end", "signal", name="uq_canary_results_signal"
        ),
        Index("ix_canary_results_window_end", "window_end"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("job_runs.id", ondelete="SET NULL"))
    computed_at: Mapped[datetime]
    baseline: Mapped[str] = mapped_column(String(128))
    candidate: Mapped[str] = mapped_column(String(128))
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    signal: Mapped[str] = mapped_column(String(64))
    verdict: Mapped[str] = mapped_column(String(32))
    checks: Mapped[int]
    significant: Mapped[int]
    min_p_value: Mapped[float | None] = mapped_column(Float)
    baseline_mean: Mapped[float | None] = mapped_column(Float)
    candidate_mean: Mapped[float | None] = mapped_column(Float)
    n_baseline: Mapped[int]
    """Accepted samples of the baseline in the window."""
    n_candidate: Mapped[int]
    """Accepted samples of the candidate in the window."""
