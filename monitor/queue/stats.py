"""What the annotation queue holds now: depths, age, throughput, budget (CLI and metrics).

Read by ``segmon queue stats`` and by the ``segmon_annotation_queue_*`` metric families
at scrape time; every figure comes from ``queue_items`` rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from monitor.queue.fill import queued_since, start_of_day
from monitor.queue.states import OPEN_STATES
from monitor.storage.schema import Category, QueueItem, QueueState

__all__ = ["LABELED_WINDOW", "QueueStats", "queue_stats"]

LABELED_WINDOW = timedelta(days=1)
"""``labeled_last_day`` counts items labelled this long before ``now``."""


@dataclass(frozen=True)
class QueueStats:
    """The queue at ``now``.

    Attributes
    ----------
    depth
        Items per state (every state present, zeros included).
    depth_by_class
        ``(class name, state) -> items`` predicting that class, for every category and
        open state (``queued``, ``exported``; zeros included); an item counts once per
        class it predicts.
    reasons
        Items ever queued per main reason.
    oldest_queued_age_s
        Seconds since the oldest still-``queued`` item was queued (None when none is).
    labeled_last_day
        Items labelled in the day before ``now``.
    queued_today, daily_budget
        Items queued since midnight UTC, and the daily budget.
    """

    depth: Mapping[str, int]
    depth_by_class: Mapping[tuple[str, str], int] = field(default_factory=dict)
    reasons: Mapping[str, int] = field(default_factory=dict)
    oldest_queued_age_s: float | None = None
    labeled_last_day: int = 0
    queued_today: int = 0
    daily_budget: int = 0

    @property
    def budget_used_ratio(self) -> float | None:
        """Share of the daily budget used today (None with a zero budget)."""
        return self.queued_today / self.daily_budget if self.daily_budget > 0 else None

    def as_dict(self) -> dict[str, Any]:
        """Return the figures as a JSON-able mapping."""
        by_class: dict[str, dict[str, int]] = {}
        for (name, state), n in sorted(self.depth_by_class.items()):
            by_class.setdefault(name, {})[state] = n
        return {
            "depth": dict(self.depth),
            "depth_by_class": by_class,
            "reasons": dict(self.reasons),
            "oldest_queued_age_s": self.oldest_queued_age_s,
            "labeled_last_day": self.labeled_last_day,
            "queued_today": self.queued_today,
            "daily_budget": self.daily_budget,
            "budget_used_ratio": self.budget_used_ratio,
        }


def queue_stats(session: Session, now: datetime, daily_budget: int) -> QueueStats:
    """Compute :class:`QueueStats` from the rows."""
    depth = {str(s): 0 for s in QueueState}
    for state, n in session.execute(
        select(QueueItem.state, func.count()).group_by(QueueItem.state)
    ):
        depth[str(state)] = int(n)
    reasons = {
        str(r): int(n)
        for r, n in session.execute(
            select(QueueItem.reason, func.count()).group_by(QueueItem.reason)
        )
    }
    names = {int(i): str(n) for i, n in session.execute(select(Category.id, Category.name))}
    # Every class has a series per open state from the start (zeros, not gaps).
    by_class = {(name, str(state)): 0 for name in names.values() for state in OPEN_STATES}
    # category_ids is a JSON list: counted here rather than in SQL, one small row per open
    # item (final items pile up forever; their per-class split is not a depth).
    for state, category_ids in session.execute(
        select(QueueItem.state, QueueItem.category_ids).where(QueueItem.state.in_(OPEN_STATES))
    ):
        for cid in category_ids or ():
            key = (names.get(int(cid), str(cid)), str(state))
            by_class[key] = by_class.get(key, 0) + 1
    oldest = session.scalar(
        select(QueueItem.queued_at)
        .where(QueueItem.state == QueueState.QUEUED)
        .order_by(QueueItem.queued_at)
        .limit(1)
    )
    labeled = session.scalar(
        select(func.count())
        .select_from(QueueItem)
        .where(QueueItem.state == QueueState.LABELED, QueueItem.closed_at >= now - LABELED_WINDOW)
    )
    return QueueStats(
        depth=depth,
        depth_by_class=by_class,
        reasons=reasons,
        oldest_queued_age_s=None if oldest is None else max(0.0, (now - oldest).total_seconds()),
        labeled_last_day=int(labeled or 0),
        queued_today=queued_since(session, start_of_day(now)),
        daily_budget=daily_budget,
    )
