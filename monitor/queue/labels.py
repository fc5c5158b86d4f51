"""Labels come back: returned annotations become ground truth of labelled production samples.

:func:`import_labels` takes the records a returned file was parsed into
(:mod:`monitor.queue.returns`) and, in **one transaction per file** (an error anywhere
writes nothing; only the labelled dataset itself is created just before, on first use):

- matches each image to its queue item: by the item id the export put into the file
  (Label Studio ``data.segmon_item_id``, COCO ``segmon_item_id``); where the format
  lost it (CVAT renumbers images), by the image's name: the export's own
  ``<item id>_<sample image name>`` (:func:`exported_name`, e.g. ``00000123_r-9.jpg``,
  checked against the item's sample), else the one exported item whose sample's image
  has that base name (exports that reference images by URL keep their names). An image that matches no item, or an item that was never exported or
  has expired, is an error naming the image;
- maps each returned class to a configured category **by name** (unknown: an error
  naming it and the image);
- checks each mask against the sample's size;
- stores the labels as ground truth (``ground_truth_instances``, areas and boxes by
  pycocotools, :func:`monitor.ingest.holdout.ground_truth_row`) of an image of the dataset
  ``labels.dataset`` (kind ``labelled``; created on first use) that *is* the production
  sample (``dataset_images.sample_id``; the sample's image, size and sha256);
- writes the per-class outcome of production's stored prediction against the labels
  (``label_outcomes``, :func:`match_by_class`), which the holdout-quality SLI reads;
- flags labels that disagree strongly with production and the reference model
  (:mod:`monitor.queue.review`);
- moves items ``exported -> labeled`` (``skipped`` for tasks the annotator cancelled)
  with ``labeled_by`` and ``closed_at``, and closes an export batch once every item of
  it is closed.

Concurrent imports of one file on PostgreSQL label each item once: the write locks each
item (``FOR UPDATE``) and re-reads its state, and an item closed meanwhile is left as it
is (``unchanged``). On SQLite, run one import at a time (one process writes).

**Importing again is idempotent.** An item already labeled or skipped is left as it is
(the first labels returned stand) and listed under ``unchanged``, or under ``ignored``
when the file now says something else for it (other masks or classes, skipped vs
labeled): to relabel, review and reject it, then queue it again.
"""

from __future__ import annotations

import posixpath
import re
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils
from scipy.optimize import linear_sum_assignment
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import Clock
from monitor.errors import InvalidInputError
from monitor.images import ImageAccess, ImageProblem, read_image
from monitor.ingest.holdout import ground_truth_row
from monitor.masks import CompressedMask, MaskError, decode_mask, to_compressed
from monitor.model.protocol import InstanceSegmenter
from monitor.quality.shadow import Instance, reference_category_ids
from monitor.queue.review import review_labels
from monitor.storage.schema import (
    Category,
    Dataset,
    DatasetImage,
    GroundTruthInstance,
    LabelOutcome,
    PredictedInstance,
    QueueExportBatch,
    QueueItem,
    QueueState,
    Sample,
)
from monitor.storage.trusted import LABELLED_KIND
from sampling.formats.records import ReturnedImage

_CLOSED = (QueueState.LABELED, QueueState.SKIPPED, QueueState.EXPIRED)
_EXPORTED_NAME = re.compile(r"(\d{1,18})_(.+)")


@dataclass(frozen=True)
class ClassOutcome:
    """Production against the labels for one class on one image.

    Attributes
    ----------
    ious
        IoU of each matched (production, label) pair, in label order.
    production_only
        Production instances of the class no label matched (false positives).
    label_only
        Labels of the class no production instance matched (misses).
    """

    ious: tuple[float, ...]
    production_only: int
    label_only: int


def match_by_class(
    labels: Sequence[tuple[int, Mapping[str, Any]]],
    production: Sequence[tuple[int, Mapping[str, Any]]],
) -> dict[int, ClassOutcome]:
    """Match production's instances to the labels within each class, one-to-one.

    Pairs are chosen to maximise the total IoU (Hungarian assignment) among pairs that
    overlap at all; a pair's IoU is kept, so a reader applies its own threshold (a pair
    below it is one false positive and one miss).

    Parameters
    ----------
    labels, production
        ``(category_id, COCO RLE)`` per instance, all of one image.

    Returns
    -------
    dict
        Category id -> :class:`ClassOutcome`, for every class on either side.

    Examples
    --------
    >>> from monitor.masks import encode_mask
    >>> a = np.zeros((4, 4), bool); a[:2] = True
    >>> b = np.zeros((4, 4), bool); b[:2, :2] = True
    >>> rle = lambda m: encode_mask(m).rle()
    >>> match_by_class([(1, rle(a)), (2, rle(b))], [(1, rle(b)), (3, rle(a))])
    {1: ClassOutcome(ious=(0.5,), production_only=0, label_only=0), 2: ClassOutcome(ious=(), production_only=0, label_only=1), 3: ClassOutcome(ious=(), production_only=1, label_only=0)}
    """
    out: dict[int, ClassOutcome] = {}
    for cat in sorted({c for c, _ in labels} | {c for c, _ in production}):
        gts = [_rle(r) for c, r in labels if c == cat]
        dts = [_rle(r) for c, r in production if c == cat]
        if not gts or not dts:
            out[cat] = ClassOutcome((), len(dts), len(gts))
            continue
        ious = np.asarray(mask_utils.iou(dts, gts, [0] * len(gts)), dtype=np.float64)
        ious = ious.reshape(len(dts), len(gts))
        rows, cols = linear_sum_assignment(ious, maximize=True)
        pairs = sorted((int(c), float(ious[r, c])) for r, c in zip(rows, cols, strict=True))
        kept = [iou for _, iou in pairs if iou > 0.0]
        out[cat] = ClassOutcome(tuple(kept), len(dts) - len(kept), len(gts) - len(kept))
    return out


def _rle(rle: Mapping[str, Any]) -> dict[str, Any]:
    counts = rle["counts"]
    return {
        "size": list(rle["size"]),
        "counts": counts.encode() if isinstance(counts, str) else counts,
    }


@dataclass
class ImportReport:
    """What one ``segmon queue import`` did."""

    file: str
    format: str
    dataset: str
    labeled: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    unchanged: list[int] = field(default_factory=list)
    ignored: list[int] = field(default_factory=list)
    """Items closed already for which the file now says something else (not applied)."""
    flagged: dict[int, str] = field(default_factory=dict)
    instances: int = 0
    closed_batches: list[int] = field(default_factory=list)
    unsupported: dict[int, list[str]] = field(default_factory=dict)
    """Shapes the file holds that are no instance mask (boxes, points), per item."""
    reference_model: str | None = None

    def counts(self) -> dict[str, Any]:
        """Return the report as a JSON-ready dict."""
        return {
            "file": self.file,
            "format": self.format,
            "dataset": self.dataset,
            "labeled": sorted(self.labeled),
            "skipped": sorted(self.skipped),
            "unchanged": sorted(self.unchanged),
            "ignored": sorted(self.ignored),
            "flagged": {str(k): v for k, v in sorted(self.flagged.items())},
            "instances": self.instances,
            "closed_batches": sorted(self.closed_batches),
            "unsupported": {str(k): v for k, v in sorted(self.unsupported.items())},
            "reference_model": self.reference_model,
        }


@dataclass
class _Pending:
    """One returned image matched to its item, checked, waiting to be written."""

    returned: ReturnedImage
    item_id: int
    sample_id: int
    height: int
    width: int
    image_uri: str | None
    image_sha256: str | None
    labels: list[tuple[int, CompressedMask]]
    production: list[tuple[int, str]]
    review_reason: str | None = None


def _where(returned: ReturnedImage) -> str:
    item = "" if returned.item_id is None else f" (queue item {returned.item_id})"
    return f"image {returned.file_name!r}{item}"


def _base(file_name: str) -> str:
    return posixpath.basename(file_name.replace("\\", "/"))


def exported_name(file_name: str) -> tuple[int, str] | None:
    """Split an exported image's name ``<item id>_<sample image name>`` (the export's copies).

    ``segmon queue export`` copies or links each image as ``images/00000123_r-9.jpg``:
    the item id, zero-padded, then the sample image's own base name. CVAT keeps image
    names (not ids), so this is how its returned images find their items.

    Examples
    --------
    >>> exported_name("images/00000123_r-9.jpg"), exported_name("r-9.jpg")
    ((123, 'r-9.jpg'), None)
    """
    found = _EXPORTED_NAME.fullmatch(_base(file_name))
    return (int(found.group(1)), found.group(2)) if found else None


def _resolve_by_name(session: Session, returned: Sequence[ReturnedImage]) -> dict[str, int]:
    """Item ids of images without one, from their names (see :mod:`monitor.queue.labels`)."""
    names = {r.file_name for r in returned if r.item_id is None}
    if not names:
        return {}
    rows = session.execute(
        select(QueueItem.id, Sample.image_uri)
        .join(Sample, Sample.id == QueueItem.sample_id)
        .where(QueueItem.state.in_([QueueState.EXPORTED, *_CLOSED]))
    ).all()
    base_of = {int(item_id): _base(str(uri or "")) for item_id, uri in rows}
    by_base: dict[str, list[int]] = defaultdict(list)
    for item_id, base in base_of.items():
        by_base[base].append(item_id)
    found: dict[str, int] = {}
    for name in names:
        split = exported_name(name)
        if split is not None and base_of.get(split[0]) == split[1]:
            found[name] = split[0]  # the export's own name: id and sample image agree
            continue
        candidates = by_base.get(_base(name), [])
        if len(candidates) != 1:
            what = "no exported queue item" if not candidates else "several queue items"
            raise InvalidInputError(
                f"image {name!r} carries no queue item id and {what} has an image named "
                f"{_base(name)!r}; import the file segmon exported (names kept)"
            )
        found[name] = candidates[0]
    return found


def _resolve_items(session: Session, returned: Sequence[ReturnedImage]) -> list[int]:
    by_name = _resolve_by_name(session, returned)
    ids: list[int] = []
    seen: dict[int, str] = {}
    for r in returned:
        item_id = r.item_id if r.item_id is not None else by_name[r.file_name]
        if item_id in seen:
            raise InvalidInputError(
                f"{_where(r)}: queue item {item_id} appears twice in the file "
                f"(also as image {seen[item_id]!r})"
            )
        seen[item_id] = r.file_name
        ids.append(item_id)
    return ids


def _check_masks(
    returned: ReturnedImage, sample: Sample, names: Mapping[str, int]
) -> list[tuple[int, CompressedMask]]:
    height, width = int(sample.height or 0), int(sample.width or 0)
    if returned.width and returned.height and (returned.width, returned.height) != (width, height):
        raise InvalidInputError(
            f"{_where(returned)} is {returned.width}x{returned.height} in the file, but its "
            f"sample {sample.request_id!r} is {width}x{height}"
        )
    labels = []
    for index, ann in enumerate(returned.annotations):
        if ann.category_name not in names:
            raise InvalidInputError(
                f"{_where(returned)}: class {ann.category_name!r} is not a configured category "
                f"({', '.join(sorted(names))}); add it: segmon categories add ID {ann.category_name}"
            )
        try:
            mask = to_compressed(dict(ann.rle), height, width)
        except MaskError as exc:
            raise InvalidInputError(f"{_where(returned)}: annotation {index}: {exc}") from None
        labels.append((names[ann.category_name], mask))
    return labels


def _same_labels(
    stored: Sequence[tuple[int, str]], returned: Sequence[tuple[int, CompressedMask]]
) -> bool:
    return sorted(stored) == sorted((c, m.counts) for c, m in returned)


def _plan(
    session: Session,
    returned: Sequence[ReturnedImage],
    dataset_name: str,
    report: ImportReport,
) -> list[_Pending]:
    """Match, check and sort the returned images; raise on anything wrong (nothing written)."""
    ids = _resolve_items(session, returned)
    items = {i.id: i for i in session.scalars(select(QueueItem).where(QueueItem.id.in_(ids)))}
    samples = {
        s.id: s
        for s in session.scalars(
            select(Sample).where(Sample.id.in_([i.sample_id for i in items.values()]))
        )
    }
    names = {c.name: c.id for c in session.scalars(select(Category))}
    closed_labels = _stored_labels(
        session,
        dataset_name,
        [i.sample_id for i in items.values() if i.state == QueueState.LABELED],
    )
    pending: list[_Pending] = []
    for r, item_id in zip(returned, ids, strict=True):
        item = items.get(item_id)
        if item is None:
            raise InvalidInputError(f"{_where(r)}: no queue item {item_id} exists")
        if item.state in (QueueState.QUEUED, QueueState.EXPIRED):
            raise InvalidInputError(
                f"{_where(r)}: queue item {item_id} is {item.state.value}, not exported; "
                "only exported items take labels"
            )
        sample = samples[item.sample_id]
        labels = [] if r.skipped else _check_masks(r, sample, names)
        if r.unsupported:
            report.unsupported[item_id] = list(r.unsupported)
        if item.state == QueueState.SKIPPED:
            (report.unchanged if r.skipped else report.ignored).append(item_id)
            continue
        if item.state == QueueState.LABELED:
            same = not r.skipped and _same_labels(closed_labels.get(item.sample_id, []), labels)
            (report.unchanged if same else report.ignored).append(item_id)
            continue
        production = [
            (p.category_id, p.rle_counts)
            for p in session.scalars(
                select(PredictedInstance)
                .where(PredictedInstance.sample_id == sample.id)
                .order_by(PredictedInstance.id)
            )
        ]
        pending.append(
            _Pending(
                r,
                item_id,
                sample.id,
                int(sample.height or 0),
                int(sample.width or 0),
                sample.image_uri,
                sample.image_sha256,
                labels,
                production,
            )
        )
    return pending


def _stored_labels(
    session: Session, dataset_name: str, sample_ids: Sequence[int]
) -> dict[int, list[tuple[int, str]]]:
    if not sample_ids:
        return {}
    rows = session.execute(
        select(
            DatasetImage.sample_id, GroundTruthInstance.category_id, GroundTruthInstance.rle_counts
        )
        .join(GroundTruthInstance, GroundTruthInstance.image_id == DatasetImage.id)
        .join(Dataset, Dataset.id == DatasetImage.dataset_id)
        .where(Dataset.name == dataset_name, DatasetImage.sample_id.in_(list(sample_ids)))
    ).all()
    out: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for sample_id, category_id, counts in rows:
        if sample_id is not None:
            out[sample_id].append((category_id, counts))
    return out


def _masks(entries: Sequence[tuple[int, str]], height: int, width: int) -> list[Instance]:
    return [(c, decode_mask(counts, height, width)) for c, counts in entries]


def _review(
    pending: Sequence[_Pending],
    reference: InstanceSegmenter | None,
    categories: Mapping[int, int],
    *,
    below: float,
    min_iou: float,
    batch_size: int,
    access: ImageAccess | None,
) -> None:
    labeled = [p for p in pending if not p.returned.skipped]
    for start in range(0, len(labeled), batch_size):
        chunk = labeled[start : start + batch_size]
        found: dict[int, list[Instance] | None] = {}
        if reference is not None:
            readable = []
            for p in chunk:
                pixels = (
                    read_image(p.image_uri, p.height, p.width, access=access)
                    if p.image_uri is not None
                    else None
                )
                if pixels is None or isinstance(pixels, ImageProblem):
                    found[p.item_id] = None
                else:
                    readable.append((p, pixels))
            predicted = reference.predict([px for _, px in readable]) if readable else []
            for (p, _), instances in zip(readable, predicted, strict=True):
                found[p.item_id] = [(categories[i.category_id], i.mask) for i in instances]
        for p in chunk:
            labels = [(c, decode_mask(m.counts, p.height, p.width)) for c, m in p.labels]
            production = _masks(p.production, p.height, p.width)
            verdict = review_labels(
                labels,
                production,
                found.get(p.item_id),
                below=below,
                min_iou=min_iou,
            )
            p.review_reason = verdict.reason


def import_labels(
    sessions: sessionmaker[Session],
    returned: Sequence[ReturnedImage],
    clock: Clock,
    *,
    file: str,
    fmt: str,
    dataset: str = "labelled-production",
    annotator: str | None = None,
    reference: InstanceSegmenter | None = None,
    review_below: float = 0.3,
    min_iou: float = 0.1,
    batch_size: int = 16,
    access: ImageAccess | None = None,
    progress: Callable[[int, int], None] | None = None,
    review: bool = True,
) -> ImportReport:
    """Store the labels of one returned file as ground truth and close their queue items.

    Parameters
    ----------
    sessions
        Session factory of a migrated database.
    returned
        The file's images (:func:`monitor.queue.returns.read_returned`).
    clock
        Stamps ``closed_at`` and the dataset's creation.
    file, fmt
        The file's name and format, for the report.
    dataset
        Name of the dataset of labelled production samples (``labels.dataset``).
    annotator
        ``labeled_by`` of images whose file names no annotator (COCO never does).
    reference
        The reference model for review flags; None reviews against production alone
        (labels that disagree with production are then flagged, the reason says so).
    review_below, min_iou
        See :func:`monitor.queue.review.review_labels`.
    batch_size
        Images per reference-model call.
    access
        Byte and pixel caps of the image reader.
    progress
        Told (images reviewed, images to review).
    review
        False stores every label as trusted (no review flags, no model run).

    Returns
    -------
    ImportReport
        Item ids labeled, skipped, unchanged and ignored; flags; closed batches.

    Raises
    ------
    InvalidInputError
        For an image that matches no exported queue item, a class that is no configured
        category, a mask of the wrong size, or an item twice in the file; the message
        names the image. Nothing is written then.
    """
    report = ImportReport(file, fmt, dataset)
    with sessions() as session:
        existing = session.scalar(select(Dataset).where(Dataset.name == dataset))
        if existing is not None and existing.kind != LABELLED_KIND:
            raise InvalidInputError(
                f"dataset {dataset!r} is a {existing.kind}, not labelled production samples; "
                "set labels.dataset to another name"
            )
        pending = _plan(session, returned, dataset, report)
        categories = reference_category_ids(session, reference) if reference is not None else {}
    if reference is not None and review:
        report.reference_model = reference.name
    if review:
        _review(
            pending,
            reference,
            categories,
            below=review_below,
            min_iou=min_iou,
            batch_size=batch_size,
            access=access,
        )
    if progress is not None:
        progress(len(pending), len(pending))
    now = clock.now()
    dataset_id = _dataset_id(sessions, dataset, now) if pending else None
    with sessions.begin() as session:
        _write(session, pending, dataset_id, annotator, now, report)
    return report


def _dataset_id(sessions: sessionmaker[Session], name: str, now: datetime) -> int:
    """Return the labelled dataset's id, creating it first (a concurrent import may too)."""
    for _ in range(2):
        with sessions() as session:
            found = session.scalar(select(Dataset.id).where(Dataset.name == name))
        if found is not None:
            return int(found)
        try:
            with sessions.begin() as session:
                row = Dataset(
                    name=name, kind=LABELLED_KIND, source_uri="annotation-queue", created_at=now
                )
                session.add(row)
                session.flush()
                return row.id
        except IntegrityError:  # created by a concurrent import meanwhile: read it
            continue
    raise InvalidInputError(f"cannot create dataset {name!r}")  # pragma: no cover


def _write(
    session: Session,
    pending: Sequence[_Pending],
    dataset_id: int | None,
    annotator: str | None,
    now: datetime,
    report: ImportReport,
) -> None:
    batches: set[int] = set()
    for p in pending:
        item = session.scalar(select(QueueItem).where(QueueItem.id == p.item_id).with_for_update())
        if item is None or item.state != QueueState.EXPORTED:  # closed meanwhile
            report.unchanged.append(p.item_id)
            continue
        item.labeled_by = p.returned.annotator or annotator
        item.closed_at = now
        if item.export_batch_id is not None:
            batches.add(item.export_batch_id)
        if p.returned.skipped:
            item.state = QueueState.SKIPPED
            report.skipped.append(p.item_id)
            continue
        item.state = QueueState.LABELED
        item.review_reason = p.review_reason
        if p.review_reason is not None:
            report.flagged[p.item_id] = p.review_reason
        report.labeled.append(p.item_id)
        image = DatasetImage(
            dataset_id=dataset_id,
            source_image_id=p.sample_id,
            file_name=f"queue-item-{p.item_id}:{p.returned.file_name}"[:1024],
            image_uri=p.image_uri,
            image_sha256=p.image_sha256,
            width=p.width,
            height=p.height,
            sample_id=p.sample_id,
        )
        session.add(image)
        session.flush()
        if p.labels:
            session.execute(
                insert(GroundTruthInstance),
                [{"image_id": image.id} | ground_truth_row(m, c) for c, m in p.labels],
            )
        report.instances += len(p.labels)
        outcomes = match_by_class(
            [(c, m.rle()) for c, m in p.labels],
            [(c, {"size": [p.height, p.width], "counts": s}) for c, s in p.production],
        )
        if outcomes:
            session.execute(
                insert(LabelOutcome),
                [
                    {
                        "dataset_image_id": image.id,
                        "sample_id": p.sample_id,
                        "category_id": cat,
                        "ious": list(o.ious),
                        "production_only": o.production_only,
                        "label_only": o.label_only,
                        "computed_at": now,
                    }
                    for cat, o in outcomes.items()
                ],
            )
    session.flush()
    for batch_id in sorted(batches):
        open_items = session.scalar(
            select(QueueItem.id)
            .where(
                QueueItem.export_batch_id == batch_id,
                QueueItem.state.in_([QueueState.QUEUED, QueueState.EXPORTED]),
            )
            .limit(1)
        )
        batch = session.get(QueueExportBatch, batch_id)
        if open_items is None and batch is not None and batch.closed_at is None:
            batch.closed_at = now
            report.closed_batches.append(batch_id)
