"""The ``queue`` job of ``segmon run``: expire old items, then fill within the budgets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import Clock
from monitor.config import Settings
from monitor.queue.expire import ExpireReport, expire_items
from monitor.queue.fill import FillReport, fill_queue
from monitor.slo.duration import parse_duration

__all__ = ["QueueJobReport", "run_queue_job"]


@dataclass(frozen=True)
class QueueJobReport:
    """What one run of the queue job expired and queued."""

    expired: ExpireReport
    filled: FillReport

    def counts(self) -> dict[str, Any]:
        """Return the counts recorded on the job run."""
        return {**self.expired.counts(), **self.filled.counts()}


def run_queue_job(
    sessions: sessionmaker[Session], settings: Settings, clock: Clock, *, run_id: int | None = None
) -> QueueJobReport:
    """Expire items past ``queue.ttl``, then fill the queue (:func:`fill_queue`).

    Expiry goes first so the fill sees the queue as it is now; both are idempotent, so
    a rerun after a crash is safe.
    """
    expired = expire_items(sessions, parse_duration(settings.queue.ttl), clock.now())
    filled = fill_queue(sessions, settings, clock, run_id=run_id)
    return QueueJobReport(expired, filled)
