"""The embed job: image and per-instance embeddings of samples and holdout images.

For every accepted sample without an embedding by this model, the model embeds the image
and, pooled inside each production mask (decoded from the stored RLE), each predicted
instance; every holdout image gets the same, with its labeled instances. Vectors are
stored as little-endian float16 bytes (:mod:`monitor.storage.vectors`), keyed by the
model's ``name`` (the ``embedder``); each run also records in ``embedders`` what that
embedder is (its ``describe()``: source file and hash, how instance vectors are made,
preprocessing) and when it was last used, which the drift job reads to compare only
the vectors of the embedder in use.

Batches run on the configured executor (:mod:`monitor.jobs.executor`): in this process,
images decoded in a thread pool a batch ahead of the model, or as tasks on a Dask
cluster whose workers read the images and load the model themselves. The driver writes
each batch's rows in one transaction, skipping images already embedded (so a batch
computed twice stores nothing twice); a killed run loses at most the batches in flight
and a rerun embeds only what is still missing. A sample
whose image cannot be read is quarantined with its reason and counted.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import exists, func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import Clock
from monitor.embed.tasks import (
    ImageTask,
    LoadedImage,
    load_image,
    max_side,
    paged,
    pending_sample_tasks,
    quarantine_samples,
    tasks_with_masks,
)
from monitor.errors import InvalidInputError
from monitor.images import ImageAccess, ImageProblem
from monitor.jobs.executor import Cached, Executor, LocalExecutor, ModelSource, model_source
from monitor.model.protocol import Described, Embedder, Embeddings
from monitor.storage.schema import (
    Dataset,
    DatasetImage,
    EmbedderRecord,
    GroundTruthInstance,
    ImageEmbedding,
    InstanceEmbedding,
    Sample,
    SampleStatus,
)
from monitor.storage.vectors import vectors_to_bytes

ProgressFn = Callable[[int, int], None]
"""Called with (images done, images pending at the start) after each batch."""


@dataclass
class EmbedReport:
    """What one embed run did."""

    embedder: str
    samples: int = 0
    sample_instances: int = 0
    holdout_images: int = 0
    holdout_instances: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)
    holdout_unreadable: Counter[str] = field(default_factory=Counter)
    holdout_without_pixels: int = 0
    """Holdout images imported without their files (``--no-images``): never embedded."""
    executor: dict[str, Any] = field(default_factory=dict)
    """Where the batches ran: the executor's stats at the end of the run."""

    def counts(self) -> dict[str, Any]:
        """Return the counts as a JSON-ready dict."""
        return {
            "embedder": self.embedder,
            "samples": self.samples,
            "sample_instances": self.sample_instances,
            "holdout_images": self.holdout_images,
            "holdout_instances": self.holdout_instances,
            "quarantined": dict(sorted(self.quarantined.items())),
            "holdout_unreadable": dict(sorted(self.holdout_unreadable.items())),
            "holdout_without_pixels": self.holdout_without_pixels,
            "executor": self.executor,
        }


def run_embed(model: Embedder, loaded: Sequence[LoadedImage]) -> Embeddings:
    """Embed decoded images with their masks, checking the model kept the protocol."""
    images = [item.image for item in loaded if item.image is not None]
    masks = [list(item.masks) for item in loaded]
    result = model.embed(images, masks)
    dim = model.embedding_dim
    counts = [len(m) for m in masks]
    shapes_ok = result.images.shape == (len(images), dim) and [
        v.shape for v in result.instances
    ] == [(k, dim) for k in counts]
    if not shapes_ok:
        raise InvalidInputError(
            f"model {model.name!r} returned embeddings of shape {result.images.shape} and "
            f"{[v.shape for v in result.instances]} for {len(images)} images with {counts} "
            f"masks and embedding_dim {dim}"
        )
    return result


def embedder_details(model: Embedder) -> dict[str, Any]:
    """Return what an embedder says of itself (``describe()``) and its class."""
    kind = f"{type(model).__module__}.{type(model).__qualname__}"
    details = model.describe() if isinstance(model, Described) else {}
    plain: dict[str, Any] = json.loads(json.dumps({"class": kind, **details}, default=str))
    return plain  # JSON-ready: numbers, strings, lists


def record_embedder(session: Session, model: Embedder, now: datetime) -> EmbedderRecord:
    """Create or refresh the ``embedders`` row of ``model`` (its last use is ``now``)."""
    record = session.scalar(select(EmbedderRecord).where(EmbedderRecord.name == model.name))
    details = embedder_details(model)
    if record is None:
        record = EmbedderRecord(
            name=model.name,
            dim=model.embedding_dim,
            details=details,
            first_used_at=now,
            last_used_at=now,
        )
        session.add(record)
    else:
        record.dim, record.details, record.last_used_at = model.embedding_dim, details, now
    session.flush()
    return record


def _holdout_tasks(session: Session, embedder: str, after: int, n: int) -> list[ImageTask]:
    done = exists().where(
        ImageEmbedding.dataset_image_id == DatasetImage.id, ImageEmbedding.embedder == embedder
    )
    rows = session.execute(
        select(DatasetImage.id, DatasetImage.image_uri, DatasetImage.height, DatasetImage.width)
        .join(Dataset)
        .where(
            Dataset.kind == "holdout",
            DatasetImage.image_uri.is_not(None),
            DatasetImage.id > after,
            ~done,
        )
        .order_by(DatasetImage.id)
        .limit(n)
    ).all()
    return tasks_with_masks(session, rows, GroundTruthInstance)


def _sample_done(embedder: str) -> Any:
    return exists().where(
        ImageEmbedding.sample_id == Sample.id, ImageEmbedding.embedder == embedder
    )


def _count_pending(sessions: sessionmaker[Session], embedder: str) -> int:
    with sessions() as session:
        samples = session.scalar(
            select(func.count())
            .select_from(Sample)
            .where(Sample.status == SampleStatus.OK, ~_sample_done(embedder))
        )
        holdout = session.scalar(
            select(func.count())
            .select_from(DatasetImage)
            .join(Dataset)
            .where(
                Dataset.kind == "holdout",
                DatasetImage.image_uri.is_not(None),
                ~exists().where(
                    ImageEmbedding.dataset_image_id == DatasetImage.id,
                    ImageEmbedding.embedder == embedder,
                ),
            )
        )
    return int(samples or 0) + int(holdout or 0)


def _count_without_pixels(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        n = session.scalar(
            select(func.count())
            .select_from(DatasetImage)
            .join(Dataset)
            .where(Dataset.kind == "holdout", DatasetImage.image_uri.is_(None))
        )
    return int(n or 0)


@dataclass(frozen=True)
class EmbeddedBatch:
    """One batch's embeddings, as a worker returns them to the driver (no pixels).

    Attributes
    ----------
    tasks
        The batch's tasks, in order.
    problems
        Per task, why its image could not be used (None: embedded).
    embeddings
        The readable tasks' embeddings, in order (None when none was readable).
    """

    tasks: tuple[ImageTask, ...]
    problems: tuple[ImageProblem | None, ...]
    embeddings: Embeddings | None


@dataclass(frozen=True)
class EmbedWork:
    """The embed job's batch work: read each image and its masks, embed the batch.

    Runs in the driver's process (local executor) or on a Dask worker, which gets the
    model from its per-process cache (``model`` is then a
    :class:`~monitor.jobs.executor.Cached` recipe).
    """

    model: ModelSource[Embedder]
    access: ImageAccess | None = None
    side: int | None = None

    def load(self, task: ImageTask) -> LoadedImage:
        """Decode one task's image and masks (never raises)."""
        return load_image(task, self.access, self.side)

    def compute(self, loaded: list[LoadedImage]) -> EmbeddedBatch:
        """Embed the readable images of a batch."""
        readable = [item for item in loaded if item.problem is None]
        result = run_embed(self.model.get(), readable) if readable else None
        return EmbeddedBatch(
            tuple(item.task for item in loaded), tuple(item.problem for item in loaded), result
        )


class _Writer:
    """Stores one batch's embeddings (and quarantines) in one transaction, by key."""

    def __init__(self, sessions: sessionmaker[Session], model: Embedder, clock: Clock) -> None:
        self.sessions = sessions
        self.model = model
        self.clock = clock

    def write(self, batch: EmbeddedBatch, *, holdout: bool) -> tuple[int, int]:
        """Store a computed batch (quarantining unreadable samples); return the row counts.

        Idempotent by key: an image this embedder already has a vector for (a batch
        computed twice, a run racing another) is skipped with its instances.
        """
        readable = [t for t, p in zip(batch.tasks, batch.problems, strict=True) if p is None]
        result = batch.embeddings
        owner, instance_owner = (
            ("dataset_image_id", "ground_truth_instance_id")
            if holdout
            else ("sample_id", "predicted_instance_id")
        )
        owner_column = ImageEmbedding.dataset_image_id if holdout else ImageEmbedding.sample_id
        now, name, dim = self.clock.now(), self.model.name, self.model.embedding_dim
        image_rows: list[dict[str, Any]] = []
        instance_rows: list[dict[str, Any]] = []
        with self.sessions.begin() as session:
            stored = set(
                session.scalars(
                    select(owner_column).where(
                        ImageEmbedding.embedder == name,
                        owner_column.in_([t.owner_id for t in readable]),
                    )
                )
            )
            if result is not None:
                blobs = vectors_to_bytes(result.images)
                for task, blob, vectors in zip(readable, blobs, result.instances, strict=True):
                    if task.owner_id in stored:
                        continue
                    image_rows.append(
                        {
                            "embedder": name,
                            owner: task.owner_id,
                            "dim": dim,
                            "vector": blob,
                            "created_at": now,
                        }
                    )
                    for mask, vector in zip(task.masks, vectors_to_bytes(vectors), strict=True):
                        instance_rows.append(
                            {
                                "embedder": name,
                                instance_owner: mask.instance_id,
                                "category_id": mask.category_id,
                                "dim": dim,
                                "vector": vector,
                                "created_at": now,
                            }
                        )
            if image_rows:
                session.execute(insert(ImageEmbedding), image_rows)
            if instance_rows:
                session.execute(insert(InstanceEmbedding), instance_rows)
            if not holdout:
                problems = {
                    t.owner_id: p for t, p in zip(batch.tasks, batch.problems, strict=True) if p
                }
                quarantine_samples(session, problems, "embed")
        return len(image_rows), len(instance_rows)


def embed_pending(
    sessions: sessionmaker[Session],
    model: Embedder,
    clock: Clock,
    *,
    batch_size: int = 32,
    limit: int | None = None,
    progress: ProgressFn | None = None,
    workers: int = 4,
    access: ImageAccess | None = None,
    executor: Executor | None = None,
    recipe: Cached[Embedder] | None = None,
) -> EmbedReport:
    """Embed every accepted sample and holdout image that this model has not embedded yet.

    Parameters
    ----------
    sessions
        Session factory of a migrated database.
    model
        The embedding model; its ``name`` is stored as ``embedder``.
    clock
        Stamps ``created_at``.
    batch_size
        Images per model call (and per transaction).
    limit
        At most this many images (samples first, then holdout images); None for all.
    progress
        Told (images done, images pending at the start) after each batch.
    workers
        Threads decoding images and masks ahead of the model.
    access
        Byte and pixel caps of the image reader (an image beyond them is quarantined as
        ``image_too_large``); images larger than the model needs are shrunk on decode
        (:func:`~monitor.embed.tasks.max_side`).
    executor
        Where batches run (:mod:`monitor.jobs.executor`); None: in this process, with
        ``workers`` loader threads.
    recipe
        How a remote executor's workers build the model (each once); required when
        ``executor`` is remote.

    Returns
    -------
    EmbedReport
        Images and instances embedded, samples quarantined by reason, holdout images
        that could not be read (left for the next run; holdout import checks them) and
        holdout images imported without their files (skipped).

    Raises
    ------
    InvalidInputError
        If the model returns embeddings of the wrong shape.
    ConfigError
        If ``executor`` is remote and no ``recipe`` says how its workers load the model.
    """
    executor = executor or LocalExecutor(workers=workers)
    work = EmbedWork(model_source(model, executor, recipe), access, max_side(model))
    if batch_size < 1:
        raise InvalidInputError(f"batch_size must be >= 1, got {batch_size}")
    report = EmbedReport(embedder=model.name)
    report.holdout_without_pixels = _count_without_pixels(sessions)
    with sessions.begin() as session:
        record_embedder(session, model, clock.now())
    total = _count_pending(sessions, model.name)
    if limit is not None:
        total = min(total, limit)
    writer = _Writer(sessions, model, clock)
    done = 0

    def fetch_samples(after: int, n: int) -> list[ImageTask]:
        with sessions() as session:
            return pending_sample_tasks(session, _sample_done(model.name), after, n)

    def fetch_holdout(after: int, n: int) -> list[ImageTask]:
        with sessions() as session:
            return _holdout_tasks(session, model.name, after, n)

    for holdout, fetch in ((False, fetch_samples), (True, fetch_holdout)):
        left = None if limit is None else limit - done
        for batch in executor.map_batches(work, paged(fetch, batch_size, left)):
            images, instances = writer.write(batch, holdout=holdout)
            for problem in batch.problems:
                if problem is not None:
                    counter = report.holdout_unreadable if holdout else report.quarantined
                    counter[problem.reason.value] += 1
            if holdout:
                report.holdout_images += images
                report.holdout_instances += instances
            else:
                report.samples += images
                report.sample_instances += instances
            done += len(batch.tasks)
            if progress:
                progress(done, total)
    report.executor = executor.stats().as_dict()
    return report
