"""The ingest job: read new lines of a sample log into the database.

A sample log is a directory or fsspec URL of ``*.jsonl`` files plus the images they
name (DESIGN.md). Each file's watermark is the byte offset after the last line
committed; a rerun seeks there and reads only what is new. Every batch (lines, their
instances and the new watermark) commits in one transaction, so a process killed
mid-run loses nothing and duplicates nothing: rerun it. Identity is
(source, request_id), enforced by a unique constraint, so a line seen twice is stored
once. Bad input is stored as a quarantined sample with its reason and original line.

A COCO results JSON plus a COCO images JSON is accepted too (:func:`coco_results_records`).
"""

from __future__ import annotations

import hashlib
import io
import json
import posixpath
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any

import fsspec
from PIL import Image, UnidentifiedImageError
from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import Clock
from monitor.config import IngestSettings
from monitor.errors import InvalidInputError, NotFoundError, QuarantineReason
from monitor.ingest.samplelog import (
    Rejection,
    SampleRecord,
    parse_line,
    parse_record,
    parse_timestamp,
)
from monitor.storage.schema import (
    Category,
    ModelVersion,
    PredictedInstance,
    Sample,
    SampleStatus,
    Source,
)

ProgressFn = Callable[[int, int], None]
"""Called with (bytes done, bytes total) after each batch."""


@dataclass
class IngestReport:
    """What one ingest run did."""

    source: str
    files: int = 0
    lines: int = 0
    ingested: int = 0
    instances: int = 0
    duplicates: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)

    def counts(self) -> dict[str, Any]:
        """Return the counts as a JSON-ready dict."""
        return {
            "source": self.source,
            "files": self.files,
            "lines": self.lines,
            "ingested": self.ingested,
            "instances": self.instances,
            "duplicates": self.duplicates,
            "quarantined": dict(sorted(self.quarantined.items())),
        }


@dataclass(frozen=True)
class _Image:
    uri: str
    sha256: str | None
    problem: Rejection | None


class _ImageChecker:
    """Reads each image once: sha256, decodability, size against the line."""

    def __init__(self, fs: fsspec.AbstractFileSystem, root: str, verify: bool) -> None:
        self.fs = fs
        self.root = root
        self.verify = verify

    def resolve(self, image: str) -> str:
        if "://" in image or image.startswith("/"):
            return image
        return posixpath.normpath(posixpath.join(self.root, image))

    def check(self, item: SampleRecord | Rejection) -> _Image | None:
        if isinstance(item, Rejection):
            return None
        path = self.resolve(item.image)
        uri = display_uri(self.fs, path)
        try:
            with self.fs.open(path, "rb") as handle:
                data = handle.read()
        except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
            return _Image(
                uri,
                None,
                _reject(item, QuarantineReason.IMAGE_MISSING, f"image {item.image!r}: {exc}"),
            )
        digest = hashlib.sha256(data).hexdigest()
        try:
            with Image.open(io.BytesIO(data)) as img:
                size = img.size
                if self.verify:
                    img.verify()
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            return _Image(
                uri,
                digest,
                _reject(item, QuarantineReason.IMAGE_UNREADABLE, f"image {item.image!r}: {exc}"),
            )
        if size != (item.width, item.height):
            detail = f"image {item.image!r} is {size[0]}x{size[1]}, the line says {item.width}x{item.height}"
            return _Image(uri, digest, _reject(item, QuarantineReason.IMAGE_SIZE_MISMATCH, detail))
        return _Image(uri, digest, None)


def display_uri(fs: fsspec.AbstractFileSystem, path: str) -> str:
    """Return a path for humans and the database: plain for local files, else a URL."""
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return path if protocol in ("file", "local") else str(fs.unstrip_protocol(path))


def _reject(record: SampleRecord, reason: QuarantineReason, detail: str) -> Rejection:
    raw = json.dumps({"request_id": record.request_id, "image": record.image})
    return Rejection(reason, detail, raw, record.request_id, record.captured_at, record.image)


def _read_new_lines(
    fs: fsspec.AbstractFileSystem, path: str, offset: int, batch_size: int
) -> Iterator[tuple[list[tuple[int, str]], int]]:
    """Yield batches of (byte offset, line) and the offset after the batch.

    A last line without a newline may still be being written: it is left for the
    next run.
    """
    with fs.open(path, "rb") as handle:
        handle.seek(offset)
        position = offset
        batch: list[tuple[int, str]] = []
        for raw in handle:
            if not raw.endswith(b"\n"):
                break
            text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if text.strip():
                batch.append((position, text))
            position += len(raw)
            if len(batch) >= batch_size:
                yield batch, position
                batch = []
        if batch or position != offset:
            yield batch, position


class Ingestor:
    """Writes parsed lines into the database for one source."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        uri: str,
        kind: str,
        settings: IngestSettings,
        clock: Clock,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.clock = clock
        with sessions.begin() as session:
            source = session.scalar(select(Source).where(Source.uri == uri))
            if source is None:
                source = Source(uri=uri, kind=kind, created_at=clock.now(), watermark={})
                session.add(source)
                session.flush()
            self.source_id = source.id
            self.watermark: dict[str, Any] = dict(source.watermark or {})
            self.categories = frozenset(session.scalars(select(Category.id)))
        if not self.categories:
            raise NotFoundError("no categories in the database: run `segmon init` first")
        self.report = IngestReport(source=uri)
        self._versions: dict[str, int] = {}

    def _version_ids(self, session: Session, names: Iterable[str]) -> dict[str, int]:
        missing = sorted(set(names) - self._versions.keys())
        if missing:
            for row in session.execute(
                select(ModelVersion.name, ModelVersion.id).where(ModelVersion.name.in_(missing))
            ):
                self._versions[row.name] = row.id
            for name in sorted(set(missing) - self._versions.keys()):
                version = ModelVersion(name=name, first_seen_at=self.clock.now())
                session.add(version)
                session.flush()
                self._versions[name] = version.id
        return self._versions

    def write_batch(
        self,
        items: Sequence[tuple[str, SampleRecord | Rejection]],
        images: Sequence[_Image | None],
        watermark: Mapping[str, Any] | None,
    ) -> None:
        """Store one batch of (fallback request id, parsed line) and move the watermark."""
        now = self.clock.now()
        with self.sessions.begin() as session:
            ids = [item.request_id if item.request_id else key for key, item in items]
            existing = set(
                session.scalars(
                    select(Sample.request_id).where(
                        Sample.source_id == self.source_id, Sample.request_id.in_(set(ids))
                    )
                )
            )
            versions = self._version_ids(
                session,
                (
                    i.model_version
                    for _, i in items
                    if isinstance(i, SampleRecord) and i.model_version
                ),
            )
            rows: list[dict[str, Any]] = []
            accepted: list[SampleRecord] = []
            for request_id, (_, item), image in zip(ids, items, images, strict=True):
                if request_id in existing:
                    self.report.duplicates += 1
                    continue
                existing.add(request_id)
                if image is not None and image.problem is not None:
                    item = image.problem
                row: dict[str, Any] = {
                    "source_id": self.source_id,
                    "request_id": request_id,
                    "ingested_at": now,
                    "image_uri": image.uri if image else None,
                    "image_sha256": image.sha256 if image else None,
                }
                if isinstance(item, SampleRecord):
                    row |= {
                        "captured_at": item.captured_at,
                        "model_version_id": versions.get(item.model_version or ""),
                        "width": item.width,
                        "height": item.height,
                        "latency_ms": item.latency_ms,
                        "status": SampleStatus.OK,
                    }
                    accepted.append(item)
                else:
                    row |= {
                        "captured_at": item.captured_at,
                        "status": SampleStatus.QUARANTINED,
                        "quarantine_reason": item.reason.value,
                        "quarantine_detail": item.detail[:2000],
                        "raw": item.raw,
                    }
                    self.report.quarantined[item.reason.value] += 1
                rows.append(row)
            if rows:
                inserted = session.execute(
                    insert(Sample).returning(
                        Sample.request_id, Sample.id, sort_by_parameter_order=True
                    ),
                    rows,
                ).all()
                sample_ids = {r.request_id: r.id for r in inserted}
                instance_rows = [
                    {
                        "sample_id": sample_ids[rec.request_id],
                        "category_id": inst.category_id,
                        "score": inst.score,
                        "bbox_x": inst.bbox[0],
                        "bbox_y": inst.bbox[1],
                        "bbox_w": inst.bbox[2],
                        "bbox_h": inst.bbox[3],
                        "area": inst.mask.area,
                        "rle_counts": inst.mask.counts,
                        "class_scores": list(inst.class_scores) if inst.class_scores else None,
                    }
                    for rec in accepted
                    for inst in rec.instances
                ]
                if instance_rows:
                    session.execute(insert(PredictedInstance), instance_rows)
                self.report.ingested += len(accepted)
                self.report.instances += len(instance_rows)
            source = session.get_one(Source, self.source_id)
            if watermark is not None:
                self.watermark.update(watermark)
                source.watermark = dict(self.watermark)
            source.last_ingested_at = now


def _files(fs: fsspec.AbstractFileSystem, root: str) -> list[str]:
    if fs.isfile(root):
        return [root]
    if not fs.isdir(root):
        raise NotFoundError(f"sample log {root!r} does not exist")
    return sorted(p for p in fs.find(root) if p.endswith(".jsonl"))


def ingest_log(
    sessions: sessionmaker[Session],
    uri: str,
    settings: IngestSettings,
    clock: Clock,
    progress: ProgressFn | None = None,
) -> IngestReport:
    """Ingest what is new in a sample log.

    Parameters
    ----------
    sessions
        Session factory of a migrated database holding the model's categories.
    uri
        A local directory, a ``*.jsonl`` file, or any fsspec URL (``memory://``, ``s3://``).
    settings
        Batch size and image verification.
    clock
        Stamps ``ingested_at``.
    progress
        Told (bytes done, bytes total) after every batch.

    Returns
    -------
    IngestReport
        Lines read, samples stored, duplicates skipped, quarantined by reason.
    """
    fs, root = fsspec.core.url_to_fs(uri)
    root = root.rstrip("/") or "/"
    files = _files(fs, root)
    base = posixpath.dirname(root) if fs.isfile(root) else root
    source_uri = display_uri(fs, root)
    ingestor = Ingestor(sessions, source_uri, "samplelog", settings, clock)
    checker = _ImageChecker(fs, base, settings.verify_images)
    sizes = {path: int(fs.size(path)) for path in files}
    total = sum(sizes.values())
    done = 0
    ingestor.report.files = len(files)
    with ThreadPoolExecutor(max_workers=4) as pool:
        for path in files:
            name = (
                str(PurePosixPath(path).relative_to(base))
                if path != base
                else PurePosixPath(path).name
            )
            offset = int(ingestor.watermark.get(name, 0))
            if offset > sizes[path]:
                offset = 0  # the file was truncated or replaced: read it again, dedupe by id
            done += offset
            for batch, position in _read_new_lines(fs, path, offset, settings.batch_size):
                parsed = [
                    (f"{name}@{pos}", parse_line(text, ingestor.categories)) for pos, text in batch
                ]
                images = list(pool.map(lambda kv: checker.check(kv[1]), parsed))
                ingestor.write_batch(parsed, images, {name: position})
                ingestor.report.lines += len(batch)
                done += position - offset
                offset = position
                if progress:
                    progress(done, total)
    return ingestor.report


def coco_results_records(
    results: Sequence[Mapping[str, Any]],
    images: Sequence[Mapping[str, Any]],
    categories: frozenset[int],
    model_version: str | None,
    default_time: datetime,
) -> list[tuple[str, SampleRecord | Rejection]]:
    """Turn a COCO results list plus its COCO images into sample-log records.

    Each image becomes one sample (request id: its ``request_id`` field, else its
    ``file_name``); its results become the instances. ``captured_at`` comes from the
    image's ``captured_at`` or ``date_captured``, else ``default_time``.

    Examples
    --------
    >>> imgs = [{"id": 7, "file_name": "a.png", "width": 5, "height": 4}]
    >>> res = [{"image_id": 7, "category_id": 1, "score": 0.5,
    ...         "segmentation": {"size": [4, 5], "counts": "5220003"}}]
    >>> from datetime import UTC
    >>> [(k, r.instances[0].mask.area) for k, r in coco_results_records(
    ...     res, imgs, frozenset({1}), None, datetime(2026, 1, 1, tzinfo=UTC))]
    [('a.png', 6)]
    """
    by_image: dict[Any, list[Mapping[str, Any]]] = {}
    for result in results:
        by_image.setdefault(result.get("image_id"), []).append(result)
    out: list[tuple[str, SampleRecord | Rejection]] = []
    for image in images:
        key = str(image.get("request_id") or image.get("file_name") or image.get("id"))
        stamp = image.get("captured_at") or image.get("date_captured")
        try:
            captured = parse_timestamp(stamp).isoformat() if stamp else default_time.isoformat()
        except Exception:
            captured = str(stamp)
        line = {
            "request_id": key,
            "captured_at": captured,
            "model_version": model_version,
            "image": image.get("file_name"),
            "width": image.get("width"),
            "height": image.get("height"),
            "instances": [
                {
                    k: r.get(k)
                    for k in ("category_id", "score", "bbox", "segmentation", "class_scores")
                }
                for r in by_image.pop(image.get("id"), [])
            ],
        }
        out.append((key, parse_record(line, categories)))
    for image_id, orphans in by_image.items():
        raw = json.dumps(orphans[0], default=str)
        detail = f"{len(orphans)} results for image_id {image_id!r}, absent from the images file"
        out.append(
            (f"orphan-image-{image_id}", Rejection(QuarantineReason.INVALID_RECORD, detail, raw))
        )
    return out


def ingest_coco_results(
    sessions: sessionmaker[Session],
    results_uri: str,
    images_uri: str,
    image_root: str | None,
    settings: IngestSettings,
    clock: Clock,
    model_version: str | None = None,
) -> IngestReport:
    """Ingest a COCO results JSON with the COCO images JSON it refers to.

    Image ``file_name``s are resolved against ``image_root`` (default: the images
    JSON's folder). Rerunning skips images already stored (by request id).
    """
    fs, results_path = fsspec.core.url_to_fs(results_uri)
    with fs.open(results_path, "rb") as handle:
        results = json.load(handle)
    ifs, images_path = fsspec.core.url_to_fs(images_uri)
    with ifs.open(images_path, "rb") as handle:
        images_doc = json.load(handle)
    images = images_doc.get("images") if isinstance(images_doc, Mapping) else images_doc
    if not isinstance(results, list) or not isinstance(images, list):
        raise InvalidInputError(
            f"{results_uri!r} must be a COCO results list and {images_uri!r} hold an 'images' list"
        )
    source_uri = display_uri(fs, results_path)
    ingestor = Ingestor(sessions, source_uri, "coco-results", settings, clock)
    records = coco_results_records(results, images, ingestor.categories, model_version, clock.now())
    root = image_root or posixpath.dirname(images_path)
    checker = _ImageChecker(ifs, root, settings.verify_images)
    ingestor.report.files = 1
    with ThreadPoolExecutor(max_workers=4) as pool:
        for start in range(0, len(records), settings.batch_size):
            batch = records[start : start + settings.batch_size]
            images_checked = list(pool.map(lambda kv: checker.check(kv[1]), batch))
            ingestor.write_batch(batch, images_checked, None)
            ingestor.report.lines += len(batch)
    return ingestor.report
