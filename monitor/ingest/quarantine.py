"""``segmon quarantine``: what was rejected, and why."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.storage.schema import QuarantineHistory, Sample, SampleStatus, Source


@dataclass(frozen=True)
class QuarantinedSample:
    """One rejected line."""

    source: str
    request_id: str
    reason: str
    detail: str
    captured_at: str | None
    raw: str | None
    replaced_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def list_quarantined(
    session: Session, reason: str | None = None, limit: int = 100
) -> list[QuarantinedSample]:
    """Return quarantined samples, newest ingest first, optionally of one reason."""
    query = (
        select(Sample, Source.uri)
        .join(Source)
        .where(Sample.status == SampleStatus.QUARANTINED)
        .order_by(Sample.ingested_at.desc(), Sample.id.desc())
        .limit(limit)
    )
    if reason is not None:
        query = query.where(Sample.quarantine_reason == reason)
    return [
        QuarantinedSample(
            source=uri,
            request_id=sample.request_id,
            reason=sample.quarantine_reason or "",
            detail=sample.quarantine_detail or "",
            captured_at=sample.captured_at.isoformat() if sample.captured_at else None,
            raw=sample.raw,
        )
        for sample, uri in session.execute(query)
    ]


def list_replaced(
    session: Session, reason: str | None = None, limit: int = 100
) -> list[QuarantinedSample]:
    """Return quarantines that corrected lines replaced, newest replacement first.

    Each keeps the rejected line's reason, detail and original text, and when it was
    replaced (``replaced_at``); the sample itself now holds the corrected line.
    """
    query = (
        select(QuarantineHistory, Sample.request_id, Source.uri)
        .join(Sample, QuarantineHistory.sample_id == Sample.id)
        .join(Source, Sample.source_id == Source.id)
        .order_by(QuarantineHistory.replaced_at.desc(), QuarantineHistory.id.desc())
        .limit(limit)
    )
    if reason is not None:
        query = query.where(QuarantineHistory.reason == reason)
    return [
        QuarantinedSample(
            source=uri,
            request_id=request_id,
            reason=row.reason,
            detail=row.detail or "",
            captured_at=None,
            raw=row.raw,
            replaced_at=row.replaced_at.isoformat(),
        )
        for row, request_id, uri in session.execute(query)
    ]
