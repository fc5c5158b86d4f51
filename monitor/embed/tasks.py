"""Image tasks of the model jobs (embed, shadow): paged from the database, decoded ahead.

A job pages through what is pending (:func:`paged`, keyset by owner id), and
:func:`~monitor.jobs.executor.prefetch` decodes each page's images (PIL via fsspec) and stored masks (RLE) in
a thread pool, a bounded number of pages ahead, while the model works on the current
one. An image that cannot be read becomes a :class:`LoadedImage` with a ``problem``
(never an exception), so one bad file cannot stop a job; for a production sample the
job then quarantines it (:func:`quarantine_unreadable`) with a machine-readable reason,
as ingest does, so it is not retried forever and not lost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import Session

from detectors._typing import ImageArray, MaskArray
from monitor.errors import QuarantineReason
from monitor.images import ImageAccess, ImageProblem, read_image, reduction_factor
from monitor.limits import storable
from monitor.masks import MaskError, decode_mask, decode_mask_reduced
from monitor.storage.schema import GroundTruthInstance, PredictedInstance, Sample, SampleStatus

T = TypeVar("T")
U = TypeVar("U")


@dataclass(frozen=True)
class StoredMask:
    """A stored instance mask: its row id, category and compressed-RLE counts."""

    instance_id: int
    category_id: int
    counts: str


@dataclass(frozen=True)
class ImageTask:
    """One image to load: the id of the row that owns it, where it is, its masks."""

    owner_id: int
    uri: str
    height: int
    width: int
    masks: tuple[StoredMask, ...] = ()


@dataclass(frozen=True)
class LoadedImage:
    """A task with its decoded RGB image and masks, or the problem that stopped it."""

    task: ImageTask
    image: ImageArray | None
    masks: tuple[MaskArray, ...]
    problem: ImageProblem | None = None


MODEL_SIDE_FACTOR = 4
"""Images are decoded at most this many times the model's input side (see :func:`max_side`)."""


def max_side(model: object) -> int | None:
    """Return the longest image side a job decodes for ``model``, or None (no bound).

    A model resizes every image to its square input anyway, so decoding more than
    :data:`MODEL_SIDE_FACTOR` times that side only costs memory: larger images (and
    their masks) are shrunk by an integer factor on decode, which bounds the memory of
    one image by the model's input size. Models without an ``input_size`` get None.

    Examples
    --------
    >>> class Model:
    ...     input_size = 256
    >>> max_side(Model()), max_side(object())
    (1024, None)
    """
    size = getattr(model, "input_size", None)
    if isinstance(size, int) and not isinstance(size, bool) and size > 0:
        return MODEL_SIDE_FACTOR * size
    return None


def load_image(
    task: ImageTask, access: ImageAccess | None = None, side: int | None = None
) -> LoadedImage:
    """Decode a task's image and masks (runs in a worker thread); never raises.

    The image is read through :func:`~monitor.images.read_image` (regular files only,
    byte and pixel caps: a problem quarantines the sample); with ``side`` a larger image
    and its masks are shrunk by the same integer factor. Anything unforeseen becomes an
    ``internal_error`` problem, so one image cannot fail the job.
    """
    try:
        pixels = read_image(task.uri, task.height, task.width, access=access, max_side=side)
        if isinstance(pixels, ImageProblem):
            return LoadedImage(task, None, (), pixels)
        factor = reduction_factor(task.height, task.width, side)
        masks = tuple(
            decode_mask(m.counts, task.height, task.width)
            if factor == 1
            else decode_mask_reduced(m.counts, task.height, task.width, factor)
            for m in task.masks
        )
    except MaskError as exc:
        return LoadedImage(task, None, (), ImageProblem(QuarantineReason(exc.problem), str(exc)))
    except Exception as exc:  # one image's boundary: quarantine it, never fail the job
        problem = ImageProblem(QuarantineReason.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")
        return LoadedImage(task, None, (), problem)
    return LoadedImage(task, pixels, masks)


def paged(
    fetch: Callable[[int, int], list[ImageTask]], batch_size: int, limit: int | None = None
) -> Iterator[list[ImageTask]]:
    """Yield pages of pending tasks, ``fetch(after_owner_id, n)`` at a time, up to ``limit``.

    Keyset paging: each page starts after the last owner id of the previous one, so
    rows the job writes meanwhile (or quarantines) are never fetched twice.
    """
    after, left = 0, limit
    while left is None or left > 0:
        tasks = fetch(after, batch_size if left is None else min(batch_size, left))
        if not tasks:
            return
        yield tasks
        after = tasks[-1].owner_id
        if left is not None:
            left -= len(tasks)


def tasks_with_masks(
    session: Session,
    rows: Sequence[tuple[int, str | None, int | None, int | None]],
    masks: type[PredictedInstance] | type[GroundTruthInstance],
) -> list[ImageTask]:
    """Turn ``(id, image_uri, height, width)`` rows into tasks with their stored masks.

    ``masks`` is the instance table whose rows belong to these images (predicted
    instances of samples, labeled instances of dataset images), in id order.
    """
    owner = masks.sample_id if masks is PredictedInstance else GroundTruthInstance.image_id
    found: dict[int, list[StoredMask]] = {row[0]: [] for row in rows}
    if rows:
        for owner_id, instance_id, category_id, counts in session.execute(
            select(owner, masks.id, masks.category_id, masks.rle_counts)
            .where(owner.in_(list(found)))
            .order_by(masks.id)
        ):
            found[owner_id].append(StoredMask(instance_id, category_id, counts))
    return [
        ImageTask(row_id, uri or "", height or 0, width or 0, tuple(found[row_id]))
        for row_id, uri, height, width in rows
    ]


def pending_sample_tasks(
    session: Session, done: ColumnElement[bool], after: int, n: int
) -> list[ImageTask]:
    """Return up to ``n`` accepted samples after id ``after`` not ``done``, with their masks.

    Parameters
    ----------
    session
        An open session.
    done
        A correlated condition on :class:`~monitor.storage.schema.Sample` that is true for samples
        the job has already handled (e.g. an embedding of theirs exists).
    after, n
        Keyset page: ids greater than ``after``, at most ``n`` of them, ascending.
    """
    rows = session.execute(
        select(Sample.id, Sample.image_uri, Sample.height, Sample.width)
        .where(Sample.status == SampleStatus.OK, Sample.id > after, ~done)
        .order_by(Sample.id)
        .limit(n)
    ).all()
    return tasks_with_masks(session, rows, PredictedInstance)


def quarantine_unreadable(session: Session, loaded: Sequence[LoadedImage], job: str) -> int:
    """Quarantine the samples among ``loaded`` whose image could not be used.

    The sample keeps its rows; its status becomes ``quarantined`` with the problem's
    reason, so every job skips it from now on and ``segmon quarantine`` lists it.

    Returns
    -------
    int
        How many samples were quarantined.
    """
    problems = {item.task.owner_id: item.problem for item in loaded if item.problem is not None}
    return quarantine_samples(session, problems, job)


def quarantine_samples(session: Session, problems: Mapping[int, ImageProblem], job: str) -> int:
    """Quarantine samples by id, each with its image problem (``job`` prefixes the detail).

    Returns
    -------
    int
        How many samples were quarantined.
    """
    for sample_id, problem in problems.items():
        session.execute(
            update(Sample)
            .where(Sample.id == sample_id)
            .values(
                status=SampleStatus.QUARANTINED,
                quarantine_reason=problem.reason.value,
                quarantine_detail=storable(f"{job}: {problem.detail}", 2000),
            )
        )
    return len(problems)
