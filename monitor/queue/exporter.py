"""Export queued items to an annotation tool's format: exactly once, whatever is killed when.

One export is one database transaction around one batch folder
(:mod:`monitor.queue.batchdir`):

1. insert the ``queue_export_batches`` row (its id names the folder; on SQLite this
   first write takes the database's single write lock, so exporters run one at a time);
2. claim up to ``limit`` ``queued`` items, highest priority first, with
   ``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL (rows another exporter holds are
   skipped, never handed out twice);
3. write the folder under a staging name: images (copied, linked, or referenced by URL)
   and the document built by :mod:`sampling.formats` with the production prediction as
   pre-annotation and the priority as score;
4. ``fsync`` its files, rename it to ``batch-<id>-<format>``, ``fsync`` the export
   directory;
5. mark the items ``exported`` in that batch, record the final path and the item count,
   and commit -- the state change and the batch row become visible together.

A ``kill -9`` before 5 commits leaves the items ``queued`` and a folder no committed
batch names, which the next export removes (:func:`~monitor.queue.batchdir.remove_orphans`)
before claiming them again; after the commit, the batch and its complete folder both
exist. So after any crash and a rerun, every item is in exactly one committed batch, and
each committed batch's document lists exactly its items.
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import fsspec
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import Clock
from monitor.config import QueueExportSettings, Settings
from monitor.images import ImageAccess, ImageProblem, read_file
from monitor.jobs.runs import process_identity
from monitor.queue.batchdir import StagedBatch, batch_dir_name, remove_orphans, write_file
from monitor.queue.states import move_item
from monitor.storage.schema import (
    Category,
    ModelVersion,
    PredictedInstance,
    QueueExportBatch,
    QueueItem,
    QueueState,
    Sample,
)
from sampling.formats.coco_json import build_coco
from sampling.formats.cvat import build_cvat_xml
from sampling.formats.labelstudio import build_tasks, labeling_config
from sampling.formats.records import ExportImage, ExportMask

log = logging.getLogger(__name__)

__all__ = ["DOCUMENTS", "ExportFormat", "ExportReport", "ImageMode", "export_batch", "export_root"]

ExportFormat = Literal["coco", "labelstudio", "cvat"]
ImageMode = Literal["copy", "link", "url"]

DOCUMENTS: dict[str, str] = {
    "coco": "annotations.json",
    "labelstudio": "tasks.json",
    "cvat": "annotations.xml",
}
"""The document of each format, inside the batch folder (``path`` of the batch row)."""
LABEL_STUDIO_CONFIG = "labeling_config.xml"


@dataclass(frozen=True)
class ExportReport:
    """One export batch: where it is and what it holds."""

    batch_id: int
    format: str
    path: str
    item_ids: tuple[int, ...]
    n_masks: int
    images: str
    missing_images: tuple[int, ...] = ()
    removed_orphans: tuple[str, ...] = ()
    extra_files: tuple[str, ...] = field(default_factory=tuple)

    def counts(self) -> dict[str, Any]:
        """Return the report as a JSON-able mapping."""
        return {
            "batch_id": self.batch_id,
            "format": self.format,
            "path": self.path,
            "items": len(self.item_ids),
            "item_ids": list(self.item_ids),
            "masks": self.n_masks,
            "images": self.images,
            "missing_images": list(self.missing_images),
            "removed_orphans": list(self.removed_orphans),
            "extra_files": list(self.extra_files),
        }


def export_root(settings: Settings) -> Path:
    """Return the export directory: ``queue.export.out_dir``, else ``DATA_DIR/queue``."""
    return settings.queue.export.out_dir or settings.data_dir / "queue"


def _committed_dirs(sessions: sessionmaker[Session]) -> set[str]:
    with sessions() as session:
        return {Path(p).parent.name for p in session.scalars(select(QueueExportBatch.path))}


def export_batch(
    sessions: sessionmaker[Session],
    settings: Settings,
    clock: Clock,
    *,
    fmt: ExportFormat | None = None,
    limit: int | None = None,
    images: ImageMode | None = None,
    out_dir: Path | None = None,
    run_id: int | None = None,
    created_by: str | None = None,
) -> ExportReport | None:
    """Export the highest-priority queued items as one batch (None when none is queued).

    Parameters
    ----------
    sessions
        Session factory.
    settings
        ``queue.export`` gives the defaults of ``fmt``, ``limit``, ``images`` and
        ``out_dir``; ``images`` (the image access) how image files are read.
    clock
        ``created_at`` / ``exported_at``.
    run_id, created_by
        Stamped on the batch row (``created_by`` defaults to ``host:pid``).
    """
    options = settings.queue.export
    fmt = fmt or options.format
    mode: ImageMode = images or options.images
    if mode == "url" and not options.url_prefix:
        from monitor.errors import ConfigError

        raise ConfigError("images by url need queue.export.url_prefix")
    count = limit or options.limit
    root = out_dir or export_root(settings)
    root.mkdir(parents=True, exist_ok=True)
    removed = remove_orphans(root, lambda: _committed_dirs(sessions))
    if removed:
        log.info("removed %d export folders no committed batch names: %s", len(removed), removed)
    now = clock.now()
    staged: StagedBatch | None = None
    try:
        with sessions.begin() as session:
            batch = QueueExportBatch(
                format=fmt,
                path="",
                created_at=now,
                created_by=created_by or process_identity(),
                n_items=0,
                run_id=run_id,
            )
            session.add(batch)
            session.flush()  # SQLite: the write lock is ours from here to the commit
            items = session.scalars(
                select(QueueItem)
                .where(QueueItem.state == QueueState.QUEUED)
                .order_by(QueueItem.priority.desc(), QueueItem.id)
                .limit(count)
                .with_for_update(skip_locked=True)
            ).all()
            if not items:
                session.delete(batch)  # nothing queued: no batch
                return None
            staged = StagedBatch(root)
            records, missing = _records(
                session, items, staged.path, mode, options, settings.images.access()
            )
            categories = [
                (int(i), str(n))
                for i, n in session.execute(
                    select(Category.id, Category.name).order_by(Category.id)
                )
            ]
            extra = _write_document(staged.path, fmt, records, categories)
            final = staged.publish(batch_dir_name(batch.id, fmt))
            batch.path = str(final / DOCUMENTS[fmt])
            batch.n_items = len(items)
            for item in items:
                move_item(session, item, QueueState.EXPORTED, now)
                item.export_batch_id = batch.id
            report = ExportReport(
                batch_id=batch.id,
                format=fmt,
                path=batch.path,
                item_ids=tuple(item.id for item in items),
                n_masks=sum(len(r.masks) for r in records),
                images=mode,
                missing_images=tuple(missing),
                removed_orphans=tuple(removed),
                extra_files=tuple(str(final / name) for name in extra),
            )
    except BaseException:
        if staged is not None:
            staged.discard()  # not committed: the folder is garbage (a crash leaves it)
        raise
    if staged is not None:
        staged.release()
    return report


def _records(
    session: Session,
    items: Sequence[QueueItem],
    folder: Path,
    mode: ImageMode,
    options: QueueExportSettings,
    access: ImageAccess,
) -> tuple[list[ExportImage], list[int]]:
    """Build the export records of ``items`` and place their images; return the misses."""
    sample_ids = [item.sample_id for item in items]
    samples = {
        int(s.id): (s, name)
        for s, name in session.execute(
            select(Sample, ModelVersion.name)
            .outerjoin(ModelVersion, ModelVersion.id == Sample.model_version_id)
            .where(Sample.id.in_(sample_ids))
        )
    }
    names = {int(i): str(n) for i, n in session.execute(select(Category.id, Category.name))}
    masks: dict[int, list[ExportMask]] = defaultdict(list)
    pi = PredictedInstance
    for sample_id, cat, score, counts in session.execute(
        select(pi.sample_id, pi.category_id, pi.score, pi.rle_counts)
        .where(pi.sample_id.in_(sample_ids))
        .order_by(pi.id)
    ):
        sample, _ = samples[int(sample_id)]
        size = [int(sample.height or 0), int(sample.width or 0)]
        masks[int(sample_id)].append(
            ExportMask(
                category_id=int(cat),
                category_name=str(names.get(int(cat), cat)),
                rle={"size": size, "counts": str(counts)},
                score=float(score),
            )
        )
    records: list[ExportImage] = []
    missing: list[int] = []
    for item in items:
        sample, version = samples[item.sample_id]
        uri = sample.image_uri or ""
        file_name, placed = _place_image(item.id, uri, folder, mode, options, access)
        if not placed:
            missing.append(item.id)
        records.append(
            ExportImage(
                item_id=item.id,
                file_name=file_name,
                width=int(sample.width or 0),
                height=int(sample.height or 0),
                priority=float(item.priority),
                masks=tuple(masks.get(item.sample_id, ())),
                model_version=str(version or "unknown"),
            )
        )
    return records, missing


def _base_name(uri: str) -> str:
    return posixpath.basename(uri.rstrip("/")) or "image"


def _place_image(
    item_id: int,
    uri: str,
    folder: Path,
    mode: ImageMode,
    options: QueueExportSettings,
    access: ImageAccess,
) -> tuple[str, bool]:
    """Return the image's name in the document and whether its file is in place."""
    if mode == "url":
        assert options.url_prefix is not None
        relative = _base_name(uri)
        if options.url_root:
            root = options.url_root.rstrip("/") + "/"
            if uri.startswith(root):
                relative = uri[len(root) :]
        return options.url_prefix.rstrip("/") + "/" + relative.lstrip("/"), True
    name = f"images/{item_id:08d}_{_base_name(uri)}"
    target = folder / name
    if not uri:
        return name, False
    local = "://" not in uri or uri.startswith("file://")
    if mode == "link" and local:
        source = uri.removeprefix("file://")
        if os.path.isfile(source) and not os.path.islink(source):
            try:
                os.link(source, target)
            except OSError:
                os.symlink(source, target)
            return name, True
    fs, path = fsspec.core.url_to_fs(uri)
    data = read_file(fs, path, access, follow_symlinks=False)
    if isinstance(data, ImageProblem):
        log.warning("queue item %d: %s", item_id, data.detail)
        return name, False
    write_file(target, data)
    return name, True


def _write_document(
    folder: Path,
    fmt: str,
    records: Sequence[ExportImage],
    categories: Sequence[tuple[int, str]],
) -> list[str]:
    """Write the format's document (and Label Studio's labelling config); return extras."""
    document = folder / DOCUMENTS[fmt]
    if fmt == "coco":
        write_file(document, json.dumps(build_coco(records, categories)).encode())
        return []
    if fmt == "labelstudio":
        write_file(document, json.dumps(build_tasks(records)).encode())
        config = labeling_config([name for _, name in categories])
        write_file(folder / LABEL_STUDIO_CONFIG, config.encode())
        return [LABEL_STUDIO_CONFIG]
    if fmt == "cvat":
        write_file(document, build_cvat_xml(records, [name for _, name in categories]).encode())
        return []
    raise ValueError(f"unknown export format {fmt!r}; use coco, labelstudio or cvat")
