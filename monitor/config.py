"""Settings: one YAML file validated by pydantic, ``SEGMON_*`` environment overrides.

Settings are built once (in the CLI's entry point) and passed down; no module reads the
environment at import time. Overrides use ``SEGMON_<FIELD>`` for top-level fields and
``SEGMON_<SECTION>__<FIELD>`` for nested ones, e.g. ``SEGMON_INGEST__BATCH_SIZE=500``;
``SEGMON_DATABASE_URL`` sets the database.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from detectors.registry import FeatureKind, detector_names
from monitor.errors import ConfigError
from monitor.images import ImageAccess
from monitor.limits import DEFAULT_MAX_IMAGE_BYTES, DEFAULT_MAX_PIXELS
from monitor.secrets import redact
from monitor.slo.duration import parse_duration
from monitor.slo.spec import SLOConfig, SLOSpec, default_slos
from sampling.signals import DEFAULT_WEIGHTS, SIGNALS

ENV_PREFIX = "SEGMON_"
DEFAULT_CONFIG_PATH = Path("segmon.yaml")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CategorySpec(_Section):
    """One class of the production model."""

    id: int = Field(ge=0, description="category id the production model emits (0 allowed)")
    name: str = Field(min_length=1)
    supercategory: str = ""


class IngestSettings(_Section):
    """How sample logs are read."""

    batch_size: int = Field(default=1000, ge=1, le=100_000, description="lines per transaction")
    verify_images: bool = Field(
        default=True, description="open every image: readable, and its size matches the line"
    )


Convention = Literal["instances", "yolo-seg", "heads"]
"""Output conventions of exported models (README: "Models")."""

OUTPUT_ROLES: dict[str, tuple[str, ...]] = {
    "instances": ("boxes", "labels", "scores", "masks", "features"),
    "yolo-seg": ("detections", "prototypes"),
    "heads": (),
    "embedder": ("features",),
}
"""Outputs each convention reads, which ``output_names`` may point at an output."""

_PLUGIN = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class ModelSpec(_Section):
    """A model segmon hosts: a bundled name or model file, or a Python plugin.

    The plain string form (``reference: reference`` or ``reference: model.onnx``) is
    ``{path: ...}`` with everything else detected from the file.
    """

    path: str | None = Field(
        default=None, description="bundled name (production, reference) or model file"
    )
    python: str | None = Field(
        default=None, description="plugin factory 'package.module:factory' (imported at load)"
    )
    options: dict[str, Any] = Field(
        default_factory=dict, description="keyword arguments of the plugin factory"
    )
    format: Literal["onnx", "torchscript", "safetensors"] | None = Field(
        default=None, description="file format; None: by suffix"
    )
    outputs: Convention | None = Field(
        default=None, description="output convention; None: detected from output names/shapes"
    )
    output_names: dict[str, str] = Field(
        default_factory=dict, description="which model output plays which role"
    )
    input_size: tuple[int, int] | None = Field(
        default=None, description="model input (height, width); None: from the model"
    )
    resize: Literal["letterbox", "resize"] | None = Field(
        default=None, description="keep aspect (letterbox) or stretch; None: by convention"
    )
    pad_value: int = Field(default=114, ge=0, le=255, description="letterbox padding grey")
    channels: Literal["RGB", "BGR"] = "RGB"
    pixel_range: Literal["0-1", "0-255"] = Field(
        default="0-1", description="value range of pixels before mean/std"
    )
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    batch: int | Literal["dynamic", "none"] | None = Field(
        default=None, description="fixed batch size, dynamic, or none (one CHW image per call)"
    )
    classes: tuple[str, ...] | None = Field(
        default=None, description="class names by label index; None: from the model metadata"
    )
    classes_map: dict[str, str | None] = Field(
        default_factory=dict, description="model class -> configured category (null drops it)"
    )
    unmapped: Literal["error", "ignore"] = Field(
        default="error", description="a class that is no configured category: error, or ignore"
    )
    score_threshold: float = Field(default=0.25, ge=0.0, le=1.0)
    iou_threshold: float = Field(default=0.7, gt=0.0, le=1.0, description="NMS (yolo-seg)")
    mask_threshold: float = Field(default=0.5, gt=0.0, lt=1.0)
    max_instances: int = Field(default=100, ge=1, le=10_000)
    device: str | None = Field(default=None, description="cpu, cuda or cuda:N; None: auto")

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        return {"path": value} if isinstance(value, str) else value

    @field_validator("input_size", mode="before")
    @classmethod
    def _square(cls, value: Any) -> Any:
        return (value, value) if isinstance(value, int | str) else value

    @field_validator("input_size")
    @classmethod
    def _positive(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is not None and (min(value) < 8 or max(value) > 8192):
            raise ValueError(f"input_size {list(value)} must be between 8 and 8192 pixels")
        return value

    @field_validator("batch")
    @classmethod
    def _batch(cls, value: int | str | None) -> int | str | None:
        if isinstance(value, int) and not 1 <= value <= 4096:
            raise ValueError(f"batch {value} must be between 1 and 4096")
        return value

    @field_validator("std")
    @classmethod
    def _nonzero_std(cls, value: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(v <= 0 for v in value):
            raise ValueError(f"std {list(value)} must be positive")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> ModelSpec:
        if (self.path is None) == (self.python is None):
            raise ValueError("give exactly one of path (a model file or bundled name) or python")
        if self.python is not None and not _PLUGIN.match(self.python):
            raise ValueError(f"python {self.python!r} must look like 'package.module:factory'")
        if self.options and self.python is None:
            raise ValueError("options are the plugin factory's arguments; they need python")
        allowed = {role for roles in OUTPUT_ROLES.values() for role in roles}
        unknown = sorted(set(self.output_names) - allowed)
        if unknown:
            raise ValueError(f"unknown output role(s) {unknown}; choose from {sorted(allowed)}")
        return self

    def label(self) -> str:
        """Return the path or plugin, for messages."""
        return self.path if self.path is not None else f"python:{self.python}"


class ImageSettings(_Section):
    """What image references may reach, and how large an image may be."""

    allowed_roots: tuple[str, ...] = Field(
        default=(),
        description="folders or URL prefixes images may come from besides the log's folder",
    )
    max_bytes: int = Field(
        default=DEFAULT_MAX_IMAGE_BYTES, ge=1, description="largest image file read, in bytes"
    )
    max_pixels: int = Field(
        default=DEFAULT_MAX_PIXELS,
        ge=1,
        le=2**31 - 1,
        description="largest image decoded (width x height); larger: image_too_large",
    )

    def access(self) -> ImageAccess:
        """Return these settings as the image reader's :class:`~monitor.images.ImageAccess`."""
        return ImageAccess(self.allowed_roots, self.max_bytes, self.max_pixels)


class ModelsSettings(_Section):
    """Which models segmon runs itself."""

    reference: ModelSpec = Field(
        default=ModelSpec(path="reference"),
        description="the reference model that shadows production (and embeds by default)",
    )
    embedder: ModelSpec | None = Field(
        default=None, description="image-feature model of the embed job; None: the reference"
    )


class EmbedSettings(_Section):
    """The embed job: image and instance embeddings of samples and the holdout."""

    batch_size: int = Field(default=32, ge=1, le=4096, description="images per model call")
    limit: int | None = Field(default=None, ge=1, description="images per run (None: all)")


class ShadowSettings(_Section):
    """The shadow job: the reference model's agreement with production."""

    batch_size: int = Field(default=16, ge=1, le=4096, description="images per model call")
    limit: int | None = Field(default=None, ge=1, description="samples per run (None: all)")
    min_iou: float = Field(
        default=0.1, gt=0.0, le=1.0, description="a production/reference pair matches from here"
    )


class LabelsSettings(_Section):
    """Labels returned from the annotation queue (``segmon queue import``)."""

    dataset: str = Field(
        default="labelled-production",
        min_length=1,
        max_length=128,
        description="the dataset (kind labelled) that holds the returned labels",
    )
    review_below: float = Field(
        default=0.3,
        ge=0.0,
        le=1.0,
        description="labels whose image agreement with production AND with the reference "
        "is below this are flagged for review",
    )
    batch_size: int = Field(default=16, ge=1, le=4096, description="images per reference call")


ExecutorKind = Literal["local", "dask", "local-cluster"]


class ExecutorSettings(_Section):
    """Where the per-image stages (embed, shadow) run their batches.

    ``local`` (default) runs them in this process; ``dask`` sends them to the Dask
    scheduler at ``address``; ``local-cluster`` starts a Dask cluster of ``n_workers``
    processes on this machine for the run.

    Examples
    --------
    >>> ExecutorSettings(kind="dask", address="tcp://scheduler:8786").address
    'tcp://scheduler:8786'
    >>> ExecutorSettings(kind="dask")
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for ExecutorSettings
    ...executor kind 'dask' needs an address (e.g. tcp://scheduler:8786)...
    """

    kind: ExecutorKind = Field(default="local", description="local, dask or local-cluster")
    address: str | None = Field(
        default=None, description="the Dask scheduler (kind dask), e.g. tcp://scheduler:8786"
    )
    n_workers: int = Field(default=2, ge=1, le=1024, description="worker processes (local-cluster)")
    threads_per_worker: int = Field(
        default=1, ge=1, le=256, description="threads per worker process (local-cluster)"
    )
    max_in_flight: int = Field(
        default=0, ge=0, le=100_000, description="batches in flight; 0: twice the worker threads"
    )
    retries: int = Field(default=3, ge=0, le=100, description="resubmissions of a failed batch")
    connect_timeout_s: float = Field(
        default=10.0, gt=0.0, le=600.0, description="time to reach the scheduler before failing"
    )

    @model_validator(mode="after")
    def _address_matches_kind(self) -> ExecutorSettings:
        if self.kind == "dask":
            if not self.address:
                raise ValueError(
                    f"executor kind {self.kind!r} needs an address (e.g. tcp://scheduler:8786)"
                )
            if "://" not in self.address:
                raise ValueError(
                    f"executor address {self.address!r} needs a protocol, e.g. tcp://{self.address}"
                )
        elif self.address is not None:
            raise ValueError(
                f"executor address {self.address!r} is only for kind 'dask', not {self.kind!r}"
            )
        return self


class ScheduleSettings(_Section):
    """How often ``segmon run`` runs each job, in seconds."""

    ingest_s: int = Field(default=300, ge=1, description="read new sample-log lines")
    embed_s: int = Field(default=900, ge=1, description="embed new samples and holdout images")
    shadow_s: int = Field(default=3600, ge=1, description="score new samples with the reference")
    drift_s: int = Field(default=3600, ge=1, description="drift checks (segmon drift)")
    queue_s: int = Field(default=3600, ge=1, description="fill the annotation queue, expire items")
    evaluate_s: int = Field(
        default=3600, ge=1, description="score golden requests and labels that arrived since"
    )
    evaluate_full_s: int = Field(
        default=86400, ge=1, description="re-score every golden request and label this often"
    )
    canary_s: int = Field(
        default=3600, ge=1, description="compare candidate model versions with the baseline"
    )
    misfire_grace_s: int = Field(
        default=300, ge=1, description="how late a missed run may still start"
    )


def _detectors(*kinds: FeatureKind) -> Callable[[tuple[str, ...]], tuple[str, ...]]:
    """Return a validator: every name is a registered detector of one of these kinds."""
    allowed = detector_names(*kinds)

    def check(value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [name for name in value if name not in allowed]
        if unknown:
            raise ValueError(
                f"unknown {' or '.join(kinds)} detector(s) {unknown}; choose from {list(allowed)}"
            )
        return value

    return check


EmbeddingDetectors = Annotated[tuple[str, ...], AfterValidator(_detectors("embedding"))]
NumericDetectors = Annotated[tuple[str, ...], AfterValidator(_detectors("numeric"))]
PredictionDetectors = Annotated[
    tuple[str, ...], AfterValidator(_detectors("numeric", "categorical"))
]
"""Detector names per kind of feature, checked against :data:`detectors.registry.REGISTRY`."""


class DateRange(_Section):
    """A span of production (event time, ``samples.captured_at``): ``[start, end)``."""

    start: AwareDatetime
    end: AwareDatetime

    @model_validator(mode="after")
    def _ordered(self) -> DateRange:
        if self.end <= self.start:
            raise ValueError(
                f"end {self.end.isoformat()} is not after start {self.start.isoformat()}"
            )
        return self


class DriftDetectors(_Section):
    """Which detectors each feature family runs (each on the features it accepts)."""

    image_embedding: EmbeddingDetectors = ("pca_js", "mmd")
    instance_embedding: EmbeddingDetectors = ("pca_js",)
    mask_geometry: NumericDetectors = ("kolmogorov_smirnov", "jensen_shannon")
    prediction: PredictionDetectors = ("chi_square", "jensen_shannon")
    image_properties: NumericDetectors = ("kolmogorov_smirnov", "jensen_shannon")


class DriftSettings(_Section):
    """The drift job (``segmon drift``): reference, windows, detectors."""

    reference: str | DateRange | None = Field(
        default=None,
        description="holdout name, or {start, end} of production; None: the only holdout",
    )
    windows: tuple[str, ...] = Field(
        default=("1h", "1d"), min_length=1, description="rolling event-time windows"
    )
    alpha: float = Field(default=0.05, gt=0.0, lt=1.0, description="false-alarm rate per check")
    min_samples: int = Field(default=30, ge=2, description="smaller windows are skipped")
    embedder: str | None = Field(
        default=None, description="embedder of the embedding families; None: most rows"
    )
    detectors: DriftDetectors = DriftDetectors()
    catch_up_windows: int = Field(
        default=24,
        ge=1,
        description="missed windows (per length) a scheduled run computes after downtime",
    )
    backfill_max_windows: int = Field(
        default=2000,
        ge=1,
        description="most windows `segmon drift --from --to` computes without --max-windows",
    )
    max_vectors: int = Field(
        default=5_000,
        ge=100,
        le=10_000_000,
        description="embedding vectors per feature and side; larger windows are sampled",
    )
    chunk_rows: int = Field(
        default=10_000, ge=1, le=1_000_000, description="rows read from the database at a time"
    )
    sample_seed: int = Field(default=0, ge=0, description="which rows a sampled window keeps")
    max_values: int = Field(
        default=10_000,
        ge=100,
        le=10_000_000,
        description="scalar values per feature and side; larger sides are sampled by image",
    )

    @field_validator("windows")
    @classmethod
    def _valid_windows(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for window in value:
            parse_duration(window)  # a ConfigError (a ValueError) names the bad one
        if len(set(value)) != len(value):
            raise ValueError(f"duplicate windows in {list(value)}")
        return value


def _duration(value: str) -> str:
    parse_duration(value)  # a ConfigError (a ValueError) names the bad one
    return value


Duration = Annotated[str, AfterValidator(_duration)]
"""A Prometheus-style duration (``30m``, ``1d``, ``7d``), checked when loaded."""


class QueueExportSettings(_Section):
    """Defaults of ``segmon queue export``: format, how images travel, batch size."""

    format: Literal["coco", "labelstudio", "cvat"] = Field(
        default="labelstudio", description="file format of an export batch"
    )
    images: Literal["copy", "link", "url"] = Field(
        default="copy",
        description="copy images beside the file, link them (hard, else symbolic), or "
        "reference them by URL (url_prefix + the path under url_root)",
    )
    url_prefix: str | None = Field(
        default=None, description="with images: url, the URL images are served under"
    )
    url_root: str | None = Field(
        default=None,
        description="with images: url, the folder whose relative paths follow url_prefix "
        "(unset: the image's file name)",
    )
    limit: int = Field(default=100, ge=1, le=100_000, description="items per export batch")
    out_dir: Path | None = Field(
        default=None, description="where export batches are written; unset: DATA_DIR/queue"
    )

    @model_validator(mode="after")
    def _prefix_for_urls(self) -> QueueExportSettings:
        if self.images == "url" and not self.url_prefix:
            raise ValueError("queue.export.images is url but queue.export.url_prefix is not set")
        return self


class QueueSettings(_Section):
    """The annotation queue: signals, their weights, budgets, diversity, expiry, export."""

    weights: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_WEIGHTS),
        description=f"weight per signal ({', '.join(SIGNALS)}); missing signals weigh 0",
    )
    daily_budget: int = Field(
        default=200, ge=0, description="items queued per UTC day, all fills together"
    )
    run_budget: int | None = Field(default=None, ge=1, description="items per fill (None: daily)")
    instance_budget: int | None = Field(
        default=None, ge=1, description="predicted instances per fill (crowded images cost more)"
    )
    class_quota: dict[str, int] = Field(
        default_factory=dict, description="class name -> minimum items per fill (rare classes)"
    )
    diversity_pool: int | None = Field(
        default=None,
        ge=1,
        description="k-center greedy over this many top-priority candidates "
        "(None: 4 x the fill's item budget, so diversity does not override priority)",
    )
    duplicate_distance: float = Field(
        default=0.0, ge=0.0, description="image embeddings closer than this are near-duplicates"
    )
    uncertainty_threshold: float = Field(
        default=0.5, gt=0.0, lt=1.0, description="the production model's decision threshold"
    )
    novelty_k: int = Field(default=5, ge=1, le=1000, description="neighbours of the novelty score")
    lookback: Duration = Field(
        default="1d", description="candidates: samples captured this long before the fill"
    )
    reference: str | DateRange | None = Field(
        default=None,
        description="novelty reference: holdout name or {start, end}; unset: drift.reference",
    )
    ttl: Duration = Field(default="7d", description="a queued or exported item expires after")
    embedder: str | None = Field(
        default=None, description="embedder of the stored vectors; unset: the latest used"
    )
    seed: int = Field(default=0, ge=0, description="seed of the diversity step")
    export: QueueExportSettings = QueueExportSettings()

    @field_validator("weights")
    @classmethod
    def _known_signals(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(SIGNALS))
        if unknown:
            raise ValueError(f"unknown signal(s) {unknown}; choose from {list(SIGNALS)}")
        negative = {k: v for k, v in value.items() if not v >= 0.0}
        if negative:
            raise ValueError(f"signal weights must be >= 0, got {negative}")
        if sum(value.values()) <= 0.0:
            raise ValueError(f"at least one signal weight must be positive, got {value}")
        return value

    @field_validator("class_quota")
    @classmethod
    def _non_negative_quota(cls, value: dict[str, int]) -> dict[str, int]:
        bad = {k: v for k, v in value.items() if v < 0}
        if bad:
            raise ValueError(f"class quotas must be >= 0, got {bad}")
        return value


class ServerSettings(_Section):
    """The long-running service's HTTP server (``segmon run``)."""

    host: str = "127.0.0.1"
    port: int = Field(default=9464, ge=0, le=65535)
    workers: int = Field(default=8, ge=1, le=256, description="threads that answer requests")
    max_connections: int = Field(
        default=64, ge=1, le=10_000, description="open connections; more are refused with 503"
    )
    request_timeout_s: float = Field(
        default=10.0, gt=0.0, le=300.0, description="time a client has to send its request"
    )

    @model_validator(mode="after")
    def _enough_connections(self) -> ServerSettings:
        if self.max_connections < self.workers:
            raise ValueError(
                f"max_connections {self.max_connections} is below workers {self.workers}"
            )
        return self


class LeaderSettings(_Section):
    """Leader election among ``segmon run`` replicas.

    Examples
    --------
    >>> LeaderSettings().lease_s
    15.0
    >>> LeaderSettings(heartbeat_s=10, abandon_after_s=20)
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for LeaderSettings
      Value error, abandon_after_s 20.0 must be at least 3 heartbeats (30.0 s) ...
    """

    heartbeat_s: float = Field(
        default=5.0,
        ge=1.0,
        le=60.0,
        description="how often leadership is checked and running jobs renew their heartbeat",
    )
    abandon_after_s: float = Field(
        default=60.0, description="a running job without a heartbeat for this long is abandoned"
    )

    @property
    def lease_s(self) -> float:
        """Seconds a silent leader keeps the lock (PostgreSQL): three heartbeats."""
        return 3 * self.heartbeat_s

    @model_validator(mode="after")
    def _abandon_after_heartbeats(self) -> LeaderSettings:
        if self.abandon_after_s < 3 * self.heartbeat_s:
            raise ValueError(
                f"abandon_after_s {self.abandon_after_s} must be at least 3 heartbeats "
                f"({3 * self.heartbeat_s} s)"
            )
        return self


# The classes of the generated scenes (``segmon synth``) and the bundled models.
DEFAULT_CATEGORIES: tuple[CategorySpec, ...] = (
    CategorySpec(id=1, name="disc", supercategory="shape"),
    CategorySpec(id=2, name="box", supercategory="shape"),
    CategorySpec(id=3, name="triangle", supercategory="shape"),
    CategorySpec(id=4, name="star", supercategory="shape"),
)


class CanarySettings(_Section):
    """The canary job: candidate model versions against the baseline, stored per signal."""

    enabled: bool = Field(default=True, description="schedule the canary job in segmon run")
    baseline: str | None = Field(
        default=None, description="baseline model version; None: the one with most samples"
    )
    candidates: tuple[str, ...] = Field(
        default=(),
        description="candidate versions; empty: every other version with drift.min_samples",
    )
    window: Duration = Field(
        default="1d", description="compare the samples of this long before now"
    )


class Settings(_Section):
    """All of segmon's settings."""

    database_url: str = Field(
        default="sqlite:///segmon.db", description="SQLAlchemy URL; SQLite file by default"
    )
    data_dir: Path = Field(default=Path("var"), description="where jobs write files")
    categories: tuple[CategorySpec, ...] = DEFAULT_CATEGORIES
    sources: tuple[str, ...] = Field(
        default=(), description="sample logs `segmon run` ingests (directories or fsspec URLs)"
    )
    ingest: IngestSettings = IngestSettings()
    images: ImageSettings = ImageSettings()
    models: ModelsSettings = ModelsSettings()
    embed: EmbedSettings = EmbedSettings()
    shadow: ShadowSettings = ShadowSettings()
    labels: LabelsSettings = LabelsSettings()
    executor: ExecutorSettings = ExecutorSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    server: ServerSettings = ServerSettings()
    leader: LeaderSettings = LeaderSettings()
    drift: DriftSettings = DriftSettings()
    queue: QueueSettings = QueueSettings()
    canary: CanarySettings = CanarySettings()
    slos: tuple[SLOSpec, ...] = Field(
        default_factory=lambda: tuple(default_slos()),
        description="service-level objectives (quality, drift, inference service)",
    )

    @field_validator("slos")
    @classmethod
    def _unique_slos(cls, value: tuple[SLOSpec, ...]) -> tuple[SLOSpec, ...]:
        SLOConfig(slos=list(value))  # names must be unique
        return value

    @field_validator("categories")
    @classmethod
    def _unique_categories(cls, value: tuple[CategorySpec, ...]) -> tuple[CategorySpec, ...]:
        for label in ("id", "name"):
            items = [str(getattr(c, label)) for c in value]
            dupes = sorted({i for i in items if items.count(i) > 1})
            if dupes:
                raise ValueError(f"duplicate category {label}: {', '.join(dupes)}")
        return value

    @model_validator(mode="after")
    def _quota_classes(self) -> Settings:
        names = [c.name for c in self.categories]
        unknown = sorted(set(self.queue.class_quota) - set(names))
        if unknown:
            raise ValueError(f"queue.class_quota names unknown class(es) {unknown}; known: {names}")
        return self


def _env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    """Collect ``SEGMON_*`` variables that name a setting.

    Variables whose first part is not a top-level setting (``SEGMON_CONFIG``,
    ``SEGMON_ADMIN_TOKEN``, ``SEGMON_TEST_POSTGRES_URL``) belong to others and are
    skipped; within a known section, an unknown key is an error as in the file.
    """
    nested: dict[str, Any] = {}
    for key, value in env.items():
        if not key.startswith(ENV_PREFIX):
            continue
        path = key[len(ENV_PREFIX) :].lower().split("__")
        if path[0] not in Settings.model_fields:
            continue
        node = nested
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return nested


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def load_settings(path: Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Build settings from a YAML file and environment overrides.

    Parameters
    ----------
    path
        The YAML file. A missing file means all defaults.
    env
        Environment variables (pass ``os.environ``); ``SEGMON_*`` keys override the file.

    Returns
    -------
    Settings
        Validated settings.

    Raises
    ------
    ConfigError
        If the file is not valid YAML or a value is invalid; the message names it.

    Examples
    --------
    >>> s = load_settings(None, {"SEGMON_DATABASE_URL": "sqlite://", "SEGMON_INGEST__BATCH_SIZE": "7"})
    >>> s.database_url, s.ingest.batch_size
    ('sqlite://', 7)
    >>> load_settings(None, {"SEGMON_INGEST__BATCH_SIZE": "zero"})
    Traceback (most recent call last):
    ...
    monitor.errors.ConfigError: invalid setting ingest.batch_size = 'zero': ...
    """
    data: dict[str, Any] = {}
    if path is not None and path.exists():
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(redact(f"{path} is not valid YAML: {exc}")) from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path} must hold a mapping, not {type(loaded).__name__}")
        data = loaded
    data = _merge(data, _env_overrides(env or {}))
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        message = f"invalid setting {where} = {first.get('input')!r}: {first['msg']}"
        raise ConfigError(redact(message)) from None


_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_ ./-]*")
_YAML_WORDS = {"null", "true", "false", "yes", "no", "on", "off", "y", "n", "~"}


def _yaml_scalar(value: str) -> str:
    if _PLAIN.fullmatch(value) and value.lower() not in _YAML_WORDS and value == value.strip():
        return value
    return json.dumps(value)  # a JSON string is a valid YAML scalar


def categories_yaml(categories: Sequence[CategorySpec]) -> str:
    """Render categories as the config's ``categories:`` block (one flow mapping a line).

    Examples
    --------
    >>> print(categories_yaml([CategorySpec(id=0, name="person"),
    ...                        CategorySpec(id=1, name="traffic light", supercategory="yes")]))
      - {id: 0, name: person, supercategory: ""}
      - {id: 1, name: traffic light, supercategory: "yes"}
    """
    empty = '""'
    return "\n".join(
        f"  - {{id: {c.id}, name: {_yaml_scalar(c.name)}, "
        f"supercategory: {_yaml_scalar(c.supercategory) if c.supercategory else empty}}}"
        for c in categories
    )


def read_coco_categories(path: Path) -> list[CategorySpec]:
    """Read the ``categories`` of a COCO file as category settings (ids as in the file).

    Raises
    ------
    ConfigError
        If the file cannot be read or holds no valid ``categories`` list; the message
        names the bad entry.
    """
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read COCO file {str(path)!r}: {exc}") from exc
    entries = doc.get("categories") if isinstance(doc, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{str(path)!r} has no COCO 'categories' list")
    out: list[CategorySpec] = []
    for index, entry in enumerate(entries):
        try:
            out.append(
                CategorySpec(
                    id=entry["id"],
                    name=entry["name"],
                    supercategory=str(entry.get("supercategory") or ""),
                )
            )
        except (TypeError, KeyError, ValidationError) as exc:
            raise ConfigError(
                f"{str(path)!r}: categories[{index}] = {entry!r:.80} is not a category: {exc}"
            ) from exc
    Settings.model_validate({"categories": [c.model_dump() for c in out]})  # unique ids, names
    return out


def merge_categories(
    current: Sequence[CategorySpec], extra: Sequence[CategorySpec]
) -> list[CategorySpec]:
    """Return ``current`` plus the ``extra`` categories whose names it lacks.

    Raises
    ------
    ConfigError
        If an extra category's id is taken by another name in ``current``.

    Examples
    --------
    >>> have = [CategorySpec(id=1, name="car")]
    >>> [c.name for c in merge_categories(have, [CategorySpec(id=1, name="car"),
    ...                                          CategorySpec(id=2, name="bus")])]
    ['car', 'bus']
    >>> merge_categories(have, [CategorySpec(id=1, name="person")])
    Traceback (most recent call last):
    ...
    monitor.errors.ConfigError: category 'person' has id 1, which the config gives to 'car': ...
    """
    by_id = {c.id: c for c in current}
    names = {c.name for c in current}
    merged = list(current)
    for c in extra:
        if c.name in names:
            continue
        if c.id in by_id:
            raise ConfigError(
                f"category {c.name!r} has id {c.id}, which the config gives to "
                f"{by_id[c.id].name!r}: the model's ids must be unique; rename one "
                f"(`segmon categories rename {by_id[c.id].name} {c.name}`) or start a new config"
            )
        merged.append(c)
        by_id[c.id] = c
        names.add(c.name)
    return merged


def write_categories(path: Path, categories: Sequence[CategorySpec]) -> None:
    """Set the ``categories:`` of a config file, keeping every other line and comment.

    A missing file is first written as the commented example config. The result is
    validated before it replaces the file.

    Raises
    ------
    ConfigError
        If the file is not a YAML mapping, or the result is not valid settings.
    """
    text = path.read_text() if path.exists() else EXAMPLE_CONFIG
    block = categories_yaml(categories)
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    if root is not None and not isinstance(root, yaml.MappingNode):
        raise ConfigError(f"{path} must hold a mapping")
    entry = next(
        ((k, v) for k, v in (root.value if root is not None else []) if k.value == "categories"),
        None,
    )
    if entry is None:
        new = text.rstrip("\n") + "\n\ncategories:\n" + (block or "  []") + "\n"
    else:
        key, value = entry
        items = value.value if isinstance(value, yaml.SequenceNode) else []
        end_mark = items[-1].end_mark if items else value.end_mark
        end = text.find("\n", end_mark.index)
        end = len(text) if end < 0 else end
        line_start = text.rfind("\n", 0, key.start_mark.index) + 1
        head = text[line_start : key.end_mark.index] + ":"
        new = text[:line_start] + head + ("\n" + block if block else " []") + text[end:]
    check = yaml.safe_load(new) or {}
    try:
        Settings.model_validate(check)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(
            f"categories for {path} are not valid at {where}: {first['msg']}"
        ) from exc
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(new)
    tmp.replace(path)


EXAMPLE_CONFIG = """\
# segmon configuration. Every key is optional; shown are the defaults.
# Environment variables override it: SEGMON_DATABASE_URL, SEGMON_<SECTION>__<KEY>.

# SQLAlchemy URL. SQLite (a file beside this config) by default; in production e.g.
# postgresql+psycopg://segmon@db.internal:5432/segmon
database_url: sqlite:///segmon.db

# Where jobs write files (reports, exports, quarantined payloads).
data_dir: var

# The production model's classes: the ids it emits and their names. Holdout
# categories are matched to these by name.
categories:
  - {id: 1, name: disc, supercategory: shape}
  - {id: 2, name: box, supercategory: shape}
  - {id: 3, name: triangle, supercategory: shape}
  - {id: 4, name: star, supercategory: shape}

# Sample logs that `segmon run` ingests on schedule (directories or fsspec URLs).
sources: []

ingest:
  batch_size: 1000      # lines per transaction
  verify_images: true   # open every image; check it decodes and its size matches

images:                 # what image references may reach, checked by every job
  allowed_roots: []     # folders/URL prefixes besides the sample log's own folder
  max_bytes: 67108864   # 64 MiB: larger files are image_too_large
  max_pixels: 50000000  # width x height from the header, checked before decoding

models:
  # The reference model segmon runs itself: a built-in model name or a model file
  # (TorchScript .pt, ONNX .onnx). It shadows production and, unless an embedder is
  # set, embeds images and objects. Your own model (README: "Models"), e.g.
  #   reference: {path: yolov8s-seg.onnx, outputs: yolo-seg, classes_map: {person: human},
  #               unmapped: ignore}
  #   reference: {python: "mypackage.segmon_plugin:make_model", options: {url: ...}}
  reference: reference
  # embedder: {path: dino.onnx, input_size: 224, mean: [0.485, 0.456, 0.406],
  #            std: [0.229, 0.224, 0.225]}   # unset: the reference model's features

embed:                  # the embed job: image and per-object embeddings (float16)
  batch_size: 32        # images per model call
  limit: null           # images per run; null embeds everything pending

shadow:                 # the shadow job: reference predictions vs production's
  batch_size: 16        # images per model call
  limit: null           # samples per run; null scores everything pending
  min_iou: 0.1          # a production/reference pair below this IoU is no match

labels:                 # labels returned from the annotation queue (segmon queue import)
  dataset: labelled-production  # the dataset of labelled production samples
  review_below: 0.3     # flag labels whose image agreement with production AND with
                        # the reference model is below this (possible label error)
  batch_size: 16        # images per reference-model call while reviewing
executor:               # where the per-image stages run their batches (README: "Scaling out")
  kind: local           # local (this process), dask (a scheduler), local-cluster
  # address: tcp://scheduler:8786   # kind dask: the Dask scheduler
  n_workers: 2          # local-cluster: worker processes
  threads_per_worker: 1 # local-cluster: threads per worker
  max_in_flight: 0      # batches in flight; 0: twice the worker threads
  retries: 3            # resubmissions of a batch that failed (e.g. its worker died)
  connect_timeout_s: 10.0

schedule:               # seconds between runs of each job under `segmon run`
  ingest_s: 300
  embed_s: 900
  shadow_s: 3600
  drift_s: 3600
  queue_s: 3600         # fill the annotation queue and expire old items
  evaluate_s: 3600      # score golden requests and labels that arrived since the last run
  evaluate_full_s: 86400  # and re-score all of them this often (a run is full when due)
  canary_s: 3600        # compare candidate model versions with the baseline
  misfire_grace_s: 300  # a run missed by more than this is skipped (runs coalesce)

server:
  host: 127.0.0.1       # segmon run binds here
  port: 9464
  workers: 8            # threads answering requests (idle connections hold none)
  max_connections: 64   # open connections; more are answered 503 and closed
  request_timeout_s: 10 # a client that has not sent its request by then is cut off

leader:                 # replicas of `segmon run` elect one leader that runs the jobs
  heartbeat_s: 5        # leadership check; a standby takes over within about one
  abandon_after_s: 60   # a running job silent this long is marked abandoned

# Drift checks (`segmon drift`): every family's features in rolling event-time
# windows of production (by captured_at, each ending at a multiple of its length)
# against a reference.
drift:
  # reference: holdout          # a holdout's name, or a production span:
  # reference: {start: 2026-11-01T00:00:00Z, end: 2026-11-08T00:00:00Z}
  #                             # unset: the only imported holdout
  windows: [1h, 1d]
  alpha: 0.05                   # false-alarm rate of each check (calibrated thresholds)
  min_samples: 30               # windows with fewer samples are skipped and counted
  catch_up_windows: 24          # after downtime, missed windows a scheduled run computes
                                # (per length; the next run goes on from there)
  backfill_max_windows: 2000    # `segmon drift --from --to` refuses more (--max-windows)
  max_vectors: 5000             # embedding vectors per feature and side; more: a seeded sample
  chunk_rows: 10000             # rows read from the database at a time
  sample_seed: 0                # which rows a sampled window keeps
  max_values: 10000             # scalar values per feature and side; more: a seeded sample
  # embedder: backbone-v1       # unset: the embedder with the most stored vectors
  # detectors:                  # per family; each runs on the features it accepts
  #   image_embedding: [pca_js, mmd]
  #   instance_embedding: [pca_js]                      # per class
  #   mask_geometry: [kolmogorov_smirnov, jensen_shannon]  # per class
  #   prediction: [chi_square, jensen_shannon]          # chi_square: class mix
  #   image_properties: [kolmogorov_smirnov, jensen_shannon]

# The annotation queue (`segmon queue`, and the queue job of `segmon run`): accepted
# samples captured in the look-back span are scored by signals in [0, 1] (higher =
# "label me"), combined by a weighted mean over the signals each sample has, and the
# best are queued within the budgets, diverse by k-center greedy on image embeddings.
queue:
  # weights: {uncertainty_max: ..., disagreement: ..., image_novelty: ...}  # unset: defaults
  daily_budget: 200             # items queued per UTC day, all fills together
  # run_budget: 50              # items per fill (unset: what the day has left)
  # instance_budget: 500        # predicted instances per fill (crowded images cost more)
  # class_quota: {star: 10}     # at least this many items per fill predicting the class
  diversity_pool: null          # k-center over the top candidates (null: 4 x the fill's budget)
  duplicate_distance: 0.0       # image embeddings closer than this are near-duplicates
  uncertainty_threshold: 0.5    # the production model's score threshold
  novelty_k: 5                  # neighbours of the novelty score
  lookback: 1d                  # candidates: samples captured this long before the fill
  # reference: holdout          # novelty reference (holdout or {start, end}); unset: drift's
  ttl: 7d                       # queued/exported items expire after this
  # embedder: backbone-v1       # unset: the embedder the embed job used last
  export:
    format: labelstudio         # coco | labelstudio | cvat
    images: copy                # copy | link | url
    # url_prefix: https://images.example.com/   # images: url -- where the images are served
    # url_root: /data/images    # the folder whose relative paths follow url_prefix
    limit: 100                  # items per export batch
    # out_dir: var/queue        # unset: DATA_DIR/queue

# Canary comparison (the canary job of `segmon run`; `segmon compare` ad hoc): each
# candidate model version's samples of the last `window` are tested against the
# baseline's of the same times, per signal (drift families, shadow agreement,
# uncertainty, latency, quality on labelled samples); verdicts are stored and exported.
canary:
  enabled: true
  baseline: null                # null: the version with the most samples in the window
  candidates: []                # empty: every other version with >= drift.min_samples
  window: 1d

# Service-level objectives. segmon computes quality and drift SLIs itself, from the
# database, over event-time windows (5m, 30m, 1h, 2h, 6h, 1d, 3d and the period);
# availability and latency SLOs of the inference service become Prometheus rules over
# its own metrics (`segmon rules --out DIR`). Per SLO: objective (fraction of good
# events), period (the error-budget window, at least 1d), min_events (windows with
# fewer events never alert), page / ticket (which burn-rate alerts to generate),
# service (the sloth_service label), unreachable_tiers (below).
#
# Page: 14.4x over 1h and 5m, or 6x over 6h and 30m; ticket: 3x over 1d and 2h, or
# 1x over 3d and 6h. A burn rate is at most 1 / (1 - objective) (every event bad), so
# at objective 0.9 the 14.4x tier could never fire. Such a tier is refused at load
# time (unreachable_tiers: error, the default) unless the SLO says cap (the factor
# becomes 0.9 x the maximum, named in the alert's adjusted_tiers annotation) or drop.
slos:
  - name: mask-quality-holdout
    description: Labeled holdout instances matched at IoU >= 0.5.
    objective: 0.9
    period: 30d
    min_events: 20
    unreachable_tiers: cap  # max burn 10: page at 9x over 1h/5m (90 % bad) or 6x over 6h/30m
    # source holdout: good = true positives, bad = false positives + false negatives
    # of every evaluation; add class_name: disc to follow one class.
    sli: {kind: quality, source: holdout, iou_threshold: 0.5}
  - name: mask-quality-shadow
    description: Production instances the reference model agrees with at IoU >= 0.5.
    objective: 0.85
    period: 30d
    unreachable_tiers: cap  # max burn 6.67: page at 6x over 1h/5m or 6h/30m (90 % bad)
    # source shadow: good = matched pairs at IoU >= threshold; bad = pairs below it,
    # production-only and reference-only instances, at the sample's capture time.
    sli: {kind: quality, source: shadow, iou_threshold: 0.5}
  - name: image-drift
    description: Drift checks on image embeddings that flag no drift.
    objective: 0.95
    period: 30d
    min_events: 1       # drift checks run about hourly: few events per window
    page: false         # an hourly signal opens tickets, it does not page
    sli: {kind: drift, feature_family: image_embedding}
  - name: inference-availability
    description: Inference requests answered without a 5xx status.
    objective: 0.999
    period: 30d
    service: inference
    sli: {kind: availability, selector: 'job="inference"', metric: http_requests_total, status_label: code, error_status_regex: 5..}
  - name: inference-latency
    description: Inference requests answered within 500 ms.
    objective: 0.99
    period: 30d
    service: inference
    sli: {kind: latency, selector: 'job="inference"', metric: http_request_duration_seconds, threshold_le: "0.5"}
"""
