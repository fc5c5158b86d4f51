"""The embed job: image and per-instance embeddings of samples and holdout images.

For every accepted sample without an embedding by this model, the model embeds the image
and, pooled inside each production mask (decoded from the stored RLE), each predicted
instance; every holdout image gets the same, with its labeled instances. Vectors are
stored as little-endian float16 bytes (:mod:`monitor.storage.vectors`), keyed by the
model's ``name`` (the ``embedder``); each run also records in ``embedders`` what that
embedder is (its ``describe()``: source file and hash, how instance vectors are made,
preprocessing) and when it was last used, which the drift job reads to compare only
the vectors of the embedder in use.

Images are decoded in a thread pool a batch ahead of the model
(:mod:`monitor.embed.tasks`); each batch's rows commit in one transaction, so a killed
run loses at most one batch and a rerun embeds only what is still missing. A sample
whose image cannot be read is quarantined with its reason and counted.
"""

from __future__ import annotations

import functools
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
    prefetch,
    quarantine_unreadable,
    tasks_with_masks,
)
from monitor.errors import InvalidInputError
from monitor.images import ImageAccess
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


class _Writer:
    """Stores one batch's embeddings (and quarantines) in one transaction."""

    def __init__(self, sessions: sessionmaker[Session], model: Embedder, clock: Clock) -> None:
        self.sessions = sessions
        self.model = model
        self.clock = clock

    def write(self, loaded: Sequence[LoadedImage], *, holdout: bool) -> tuple[int, int]:
        """Embed and store a batch (quarantining unreadable samples); return the row counts."""
        readable = [item for item in loaded if item.problem is None]
        result = run_embed(self.model, readable) if readable else None
        owner, instance_owner = (
            ("dataset_image_id", "ground_truth_instance_id")
            if holdout
            else ("sample_id", "predicted_instance_id")
        )
        now, name, dim = self.clock.now(), self.model.name, self.model.embedding_dim
        image_rows: list[dict[str, Any]] = []
        instance_rows: list[dict[str, Any]] = []
        if result is not None:
            blobs = vectors_to_bytes(result.images)
            for item, blob, vectors in zip(readable, blobs, result.instances, strict=True):
                image_rows.append(
                    {
                        "embedder": name,
                        owner: item.task.owner_id,
                        "dim": dim,
                        "vector": blob,
                        "created_at": now,
                    }
                )
                for mask, vector in zip(item.task.masks, vectors_to_bytes(vectors), strict=True):
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
        with self.sessions.begin() as session:
            if image_rows:
                session.execute(insert(ImageEmbedding), image_rows)
            if instance_rows:
                session.execute(insert(InstanceEmbedding), instance_rows)
            if not holdout:
                quarantine_unreadable(session, loaded, "embed")
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
    """
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
        pages = paged(fetch, batch_size, left)
        load = functools.partial(load_image, access=access, side=max_side(model))
        for loaded in prefetch(pages, load, workers=workers):
            images, instances = writer.write(loaded, holdout=holdout)
            for item in loaded:
                if item.problem is not None:
                    counter = report.holdout_unreadable if holdout else report.quarantined
                    counter[item.problem.reason.value] += 1
            if holdout:
                report.holdout_images += images
                report.holdout_instances += instances
            else:
                report.samples += images
                report.sample_instances += instances
            done += len(loaded)
            if progress:
                progress(done, total)
    return report
