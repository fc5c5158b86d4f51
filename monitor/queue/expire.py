"""Expire queue items nobody labelled in time.

A ``queued`` item expires ``queue.ttl`` after it was queued; an ``exported`` one ``ttl``
after its export (annotators get the whole time-to-live once they have it). Expired
items are final (:mod:`monitor.queue.states`); a batch whose items are all final is closed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, sessionmaker

from monitor.queue.states import move_item
from monitor.storage.schema import QueueItem, QueueState

__all__ = ["ExpireReport", "expire_items"]


@dataclass(frozen=True)
class ExpireReport:
    """Items expired, per state they were in."""

    queued: int
    exported: int

    def counts(self) -> dict[str, Any]:
        """Return the report as job-run counts."""
        return {"expired_queued": self.queued, "expired_exported": self.exported}


def expire_items(sessions: sessionmaker[Session], ttl: timedelta, now: datetime) -> ExpireReport:
    """Move open items older than ``ttl`` to ``expired`` (one transaction)."""
    cutoff = now - ttl
    counts = {QueueState.QUEUED: 0, QueueState.EXPORTED: 0}
    with sessions.begin() as session:
        items = session.scalars(
            select(QueueItem)
            .where(
                or_(
                    and_(QueueItem.state == QueueState.QUEUED, QueueItem.queued_at < cutoff),
                    and_(
                        QueueItem.state == QueueState.EXPORTED,
                        QueueItem.exported_at < cutoff,
                    ),
                )
            )
            .order_by(QueueItem.id)
            .with_for_update(skip_locked=True)
        ).all()
        for item in items:
            counts[item.state] += 1
            move_item(session, item, QueueState.EXPIRED, now)  # closes a finished batch
    return ExpireReport(counts[QueueState.QUEUED], counts[QueueState.EXPORTED])
