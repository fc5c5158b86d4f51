"""Writing checked lines of one source: samples, instances, quarantines and the watermark.

:class:`Ingestor` stores a batch of checked lines (:class:`CheckedLine`) and moves the
source's watermark in the same transaction. Every row is built before the transaction
opens; should the database still refuse something the checks did not foresee, the
batch is written again line by line and the refused line is quarantined as
``internal_error`` with the database's message, so one line never fails its batch and
the watermark always advances.

Identity is (source, request_id): a line seen twice is stored once, except that a
corrected line replaces a quarantined sample with the same request id. The quarantine
is then kept in ``quarantine_history`` and the sample's derived rows (instances,
embeddings, shadow scores, image properties) are dropped, to be made again from the
corrected line.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import Clock
from monitor.errors import InvalidInputError, NotFoundError, QuarantineReason
from monitor.ingest.samplelog import Rejection, SampleRecord
from monitor.limits import (
    IMAGE_URI_CHARS,
    REQUEST_ID_CHARS,
    SOURCE_URI_CHARS,
    storable,
    text_problem,
)
from monitor.storage.schema import (
    Category,
    ImageEmbedding,
    ImageProperties,
    ModelVersion,
    PredictedInstance,
    QuarantineHistory,
    Sample,
    SampleStatus,
    ShadowScore,
    Source,
)

DETAIL_CHARS = 2000
"""Longest quarantine detail stored."""


@dataclass
class IngestReport:
    """What one ingest run did."""

    source: str
    files: int = 0
    lines: int = 0
    ingested: int = 0
    instances: int = 0
    duplicates: int = 0
    replaced: int = 0
    file_events: dict[str, str] = field(default_factory=dict)
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
            "replaced": self.replaced,
            "file_events": dict(sorted(self.file_events.items())),
            "quarantined": dict(sorted(self.quarantined.items())),
        }


@dataclass(frozen=True)
class ImageCheck:
    """Where a line's image is, its sha256, or why it cannot be used."""

    uri: str | None
    sha256: str | None
    problem: Rejection | None


@dataclass(frozen=True)
class CheckedLine:
    """A parsed line with its image check, its fallback id and the watermark after it."""

    key: str
    item: SampleRecord | Rejection
    image: ImageCheck | None = None
    watermark: Mapping[str, Any] | None = None


def storable_key(key: str) -> str:
    """Return ``key`` as a storable request id (hashed if it is too long or odd).

    Examples
    --------
    >>> storable_key("samples.jsonl@0")
    'samples.jsonl@0'
    >>> storable_key("x" * 300)[:7], len(storable_key("x" * 300))
    ('sha256:', 71)
    """
    if key.strip() and text_problem(key, REQUEST_ID_CHARS) is None:
        return key
    digest = hashlib.sha256(key.encode("utf-8", "backslashreplace")).hexdigest()
    return f"sha256:{digest}"


def internal_error(line: CheckedLine, exc: BaseException) -> CheckedLine:
    """Return ``line`` set aside as ``internal_error``, naming the exception."""
    item = line.item
    raw = item.raw if isinstance(item, Rejection) else json.dumps({"request_id": item.request_id})
    rejection = Rejection(
        QuarantineReason.INTERNAL_ERROR,
        f"{type(exc).__name__}: {exc}",
        raw,
        item.request_id,
        item.captured_at,
        item.image,
    )
    return CheckedLine(line.key, rejection, None, line.watermark)


def _data_fault(exc: BaseException) -> bool:
    """Whether a failed write is the data's fault (retry line by line), not the database's."""
    if isinstance(exc, DBAPIError):  # NUL, too long, out of range: DataError on PostgreSQL
        return isinstance(exc, DataError | IntegrityError) and not exc.connection_invalidated
    return isinstance(exc, StatementError | UnicodeError | ValueError | OverflowError | TypeError)


class Ingestor:
    """Writes checked lines into the database for one source."""

    def __init__(self, sessions: sessionmaker[Session], uri: str, kind: str, clock: Clock) -> None:
        self.sessions = sessions
        self.clock = clock
        problem = text_problem(uri, SOURCE_URI_CHARS)
        if problem is not None:
            raise InvalidInputError(f"source {uri!r:.200} {problem}: it cannot be stored")
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

    def write(self, lines: Sequence[CheckedLine]) -> None:
        """Store a batch and move the watermark; a refused line is quarantined alone."""
        if not lines:
            return
        try:
            self._write(lines)
        except Exception as exc:
            if not _data_fault(exc):
                raise
            self._versions.clear()  # ids made in the rolled-back transaction are gone
            for line in lines:
                try:
                    self._write([line])
                except Exception as line_exc:
                    if not _data_fault(line_exc):
                        raise
                    self._versions.clear()
                    self._write([internal_error(line, line_exc)])

    def move_watermark(self, watermark: Mapping[str, Any]) -> None:
        """Move the watermark past lines that stored nothing (blank lines)."""
        merged = dict(self.watermark) | dict(watermark)
        with self.sessions.begin() as session:
            source = session.get_one(Source, self.source_id)
            source.watermark = merged
            source.last_ingested_at = self.clock.now()
        self.watermark = merged

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

    def _row(
        self,
        request_id: str,
        item: SampleRecord | Rejection,
        image: ImageCheck | None,
        now: datetime,
    ) -> dict[str, Any]:
        row: dict[str, Any] = {
            "source_id": self.source_id,
            "request_id": request_id,
            "ingested_at": now,
            "image_uri": storable(image.uri, IMAGE_URI_CHARS) if image and image.uri else None,
            "image_sha256": image.sha256 if image else None,
        }
        if isinstance(item, SampleRecord):
            return row | {
                "captured_at": item.captured_at,
                "model_version_id": self._versions.get(item.model_version or ""),
                "width": item.width,
                "height": item.height,
                "latency_ms": item.latency_ms,
                "status": SampleStatus.OK,
                "quarantine_reason": None,
                "quarantine_detail": None,
                "raw": None,
            }
        return row | {
            "captured_at": item.captured_at,
            "model_version_id": None,
            "width": None,
            "height": None,
            "latency_ms": None,
            "status": SampleStatus.QUARANTINED,
            "quarantine_reason": item.reason.value,
            "quarantine_detail": storable(item.detail, DETAIL_CHARS),
            "raw": storable(item.raw),
        }

    @staticmethod
    def _instance_rows(sample_id: int, record: SampleRecord) -> list[dict[str, Any]]:
        return [
            {
                "sample_id": sample_id,
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
            for inst in record.instances
        ]

    def _write(self, lines: Sequence[CheckedLine]) -> None:
        now = self.clock.now()
        with self.sessions.begin() as session:
            effective = [
                (
                    storable_key(line.item.request_id or line.key),
                    line.image.problem if line.image and line.image.problem else line.item,
                    line.image,
                )
                for line in lines
            ]
            existing = {
                r.request_id: (r.id, r.status)
                for r in session.execute(
                    select(Sample.request_id, Sample.id, Sample.status).where(
                        Sample.source_id == self.source_id,
                        Sample.request_id.in_({rid for rid, _, _ in effective}),
                    )
                )
            }
            self._version_ids(
                session,
                (
                    i.model_version
                    for _, i, _ in effective
                    if isinstance(i, SampleRecord) and i.model_version
                ),
            )
            new: dict[str, tuple[SampleRecord | Rejection, ImageCheck | None]] = {}
            replaced_in_batch: dict[str, Rejection] = {}
            replacing: list[tuple[int, SampleRecord, ImageCheck | None]] = []
            counts: Counter[str] = Counter()
            duplicates = 0
            for request_id, item, image in effective:
                corrected = isinstance(item, SampleRecord)
                if request_id in existing:
                    sample_id, status = existing[request_id]
                    if corrected and status is SampleStatus.QUARANTINED:
                        assert isinstance(item, SampleRecord)
                        replacing.append((sample_id, item, image))
                        existing[request_id] = (sample_id, SampleStatus.OK)
                    else:
                        duplicates += 1
                    continue
                if request_id in new:
                    earlier = new[request_id][0]
                    if corrected and isinstance(earlier, Rejection):
                        replaced_in_batch[request_id] = earlier
                        counts[earlier.reason.value] -= 1
                        new[request_id] = (item, image)
                    else:
                        duplicates += 1
                    continue
                new[request_id] = (item, image)
                if isinstance(item, Rejection):
                    counts[item.reason.value] += 1
            rows = [self._row(rid, item, image, now) for rid, (item, image) in new.items()]
            instance_rows: list[dict[str, Any]] = []
            history: list[dict[str, Any]] = []
            if rows:
                inserted = session.execute(
                    insert(Sample).returning(
                        Sample.request_id, Sample.id, sort_by_parameter_order=True
                    ),
                    rows,
                ).all()
                ids = {r.request_id: r.id for r in inserted}
                for rid, (item, _) in new.items():
                    if isinstance(item, SampleRecord):
                        instance_rows += self._instance_rows(ids[rid], item)
                for rid, old in replaced_in_batch.items():
                    history.append(
                        {
                            "sample_id": ids[rid],
                            "reason": old.reason.value,
                            "detail": storable(old.detail, DETAIL_CHARS),
                            "raw": storable(old.raw),
                            "quarantined_at": now,
                            "replaced_at": now,
                        }
                    )
            replaced_ids = [sample_id for sample_id, _, _ in replacing]
            if replaced_ids:
                originals = {
                    r.id: r
                    for r in session.execute(
                        select(
                            Sample.id,
                            Sample.quarantine_reason,
                            Sample.quarantine_detail,
                            Sample.raw,
                            Sample.ingested_at,
                        ).where(Sample.id.in_(replaced_ids))
                    )
                }
                for table, column in (
                    (PredictedInstance, PredictedInstance.sample_id),
                    (ImageEmbedding, ImageEmbedding.sample_id),
                    (ShadowScore, ShadowScore.sample_id),
                    (ImageProperties, ImageProperties.sample_id),
                ):
                    session.execute(delete(table).where(column.in_(replaced_ids)))
                for sample_id, record, image in replacing:
                    original = originals[sample_id]
                    history.append(
                        {
                            "sample_id": sample_id,
                            "reason": original.quarantine_reason or "",
                            "detail": original.quarantine_detail,
                            "raw": original.raw,
                            "quarantined_at": original.ingested_at,
                            "replaced_at": now,
                        }
                    )
                    values = self._row(record.request_id, record, image, now)
                    values.pop("source_id")
                    values.pop("request_id")
                    session.execute(update(Sample).where(Sample.id == sample_id).values(**values))
                    instance_rows += self._instance_rows(sample_id, record)
            if instance_rows:
                session.execute(insert(PredictedInstance), instance_rows)
            if history:
                session.execute(insert(QuarantineHistory), history)
            watermark = dict(self.watermark)
            for line in lines:
                if line.watermark is not None:
                    watermark.update(line.watermark)
            source = session.get_one(Source, self.source_id)
            source.watermark = watermark
            source.last_ingested_at = now
        # committed: only now does the report count it
        self.watermark = watermark
        accepted = [i for i, _ in new.values() if isinstance(i, SampleRecord)]
        self.report.ingested += len(accepted) + len(replacing)
        self.report.instances += len(instance_rows)
        self.report.duplicates += duplicates
        self.report.replaced += len(replacing) + len(replaced_in_batch)
        self.report.quarantined.update({k: v for k, v in counts.items() if v})
        self.report.lines += len(lines)
