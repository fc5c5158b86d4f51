"""Fill the annotation queue: score the candidates, choose within the budgets, insert.

Budgets: ``queue.daily_budget`` items per UTC day (items already queued since midnight
count against it), at most ``queue.run_budget`` per fill, optionally
``queue.instance_budget`` predicted instances per fill, and ``queue.class_quota`` minimum
items per class, all handed to :func:`sampling.selection.select`.

One fill is one transaction: the chosen items are inserted together or not at all (a
``kill -9`` during a fill leaves nothing half-written; the next fill starts over). A
sample is queued at most once (``uq_queue_items_sample_id``): candidates exclude queued
samples, and the insert skips any that another fill queued meanwhile, so a rerun never
adds an item twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import Clock
from monitor.config import Settings
from monitor.queue.candidates import PAGE_SIZE, read_candidates
from monitor.storage.schema import QueueItem, QueueState
from sampling.selection import SelectionPolicy
from sampling.selection import select as select_items

__all__ = ["FillReport", "fill_queue", "queued_since", "start_of_day"]


@dataclass(frozen=True)
class FillReport:
    """What one fill did.

    Attributes
    ----------
    n_candidates
        Samples scored (after leaving out those waiting for an embedding).
    n_waiting
        Samples in the span left for a later fill (no image embedding yet).
    n_duplicates
        Candidates dropped as near-duplicates of a better one.
    budget
        Items this fill could queue (the day's remainder, capped by ``run_budget``).
    used_today
        Items queued earlier the same UTC day.
    item_ids
        The inserted items, in descending priority.
    reasons
        Items queued per main reason.
    """

    n_candidates: int
    n_waiting: int
    n_duplicates: int
    budget: int
    used_today: int
    daily_budget: int
    item_ids: tuple[int, ...] = ()
    n_instances: int = 0
    reasons: Mapping[str, int] = field(default_factory=dict)
    reference: str | None = None
    embedder: str | None = None

    @property
    def n_queued(self) -> int:
        """Items inserted by this fill."""
        return len(self.item_ids)

    def counts(self) -> dict[str, Any]:
        """Return the report as the job run's counts."""
        return {
            "queued": self.n_queued,
            "candidates": self.n_candidates,
            "waiting_for_embedding": self.n_waiting,
            "duplicates": self.n_duplicates,
            "budget": self.budget,
            "used_today": self.used_today,
            "daily_budget": self.daily_budget,
            "instances": self.n_instances,
            "reasons": dict(self.reasons),
            "reference": self.reference,
            "embedder": self.embedder,
        }


def start_of_day(now: datetime) -> datetime:
    """Return midnight UTC of ``now``'s UTC day (the daily budget's boundary).

    Examples
    --------
    >>> from datetime import timedelta, timezone
    >>> start_of_day(datetime(2026, 11, 30, 1, 30, tzinfo=timezone(timedelta(hours=2))))
    datetime.datetime(2026, 11, 29, 0, 0, tzinfo=datetime.timezone.utc)
    """
    utc = now.astimezone(UTC)
    return utc.replace(hour=0, minute=0, second=0, microsecond=0)


def queued_since(session: Session, since: datetime) -> int:
    """Return how many items were queued at or after ``since`` (any state now)."""
    found = session.scalar(
        select(func.count()).select_from(QueueItem).where(QueueItem.queued_at >= since)
    )
    return int(found or 0)


def fill_queue(
    sessions: sessionmaker[Session],
    settings: Settings,
    clock: Clock,
    *,
    run_id: int | None = None,
    max_items: int | None = None,
    page_size: int = PAGE_SIZE,
    span: tuple[datetime, datetime] | None = None,
) -> FillReport:
    """Queue the best candidates captured in the look-back span, within the budgets.

    Parameters
    ----------
    sessions
        Session factory.
    settings
        ``queue`` (budgets, weights, signals), ``drift.reference`` (the default novelty
        reference) and ``categories`` (class quotas by name).
    clock
        ``now``: the end of the look-back span and the day of the daily budget.
    run_id
        The job run, stamped on the items as ``fill_run_id``.
    max_items
        Cap this fill below the budgets (``segmon queue fill --limit``).
    span
        Candidates captured in ``[start, end)`` instead of the look-back span before
        ``now`` (``segmon queue fill --from --to``); the daily budget is still today's.
    """
    queue = settings.queue
    now = clock.now()
    day = start_of_day(now)
    with sessions() as session:
        used = queued_since(session, day)
    budget = max(0, queue.daily_budget - used)
    for cap in (queue.run_budget, max_items):
        if cap is not None:
            budget = min(budget, cap)
    if budget == 0:
        return FillReport(0, 0, 0, 0, used, queue.daily_budget)
    with sessions() as session:
        candidates = read_candidates(
            session,
            queue,
            now,
            drift_reference=settings.drift.reference,
            page_size=page_size,
            span=span,
        )
    by_name = {c.name: c.id for c in settings.categories}
    policy = SelectionPolicy(
        max_items=budget,
        max_instances=queue.instance_budget,
        class_quota={by_name[name]: n for name, n in queue.class_quota.items()},
        weights=dict(queue.weights),
        diversity_pool=queue.diversity_pool,
        duplicate_distance=queue.duplicate_distance,
        seed=queue.seed,
    )
    chosen = select_items(candidates.table, policy)
    classes = dict(zip(candidates.table.keys.tolist(), candidates.table.classes, strict=True))
    n_instances = dict(
        zip(candidates.table.keys.tolist(), candidates.table.n_instances.tolist(), strict=True)
    )
    ids: list[int] = []
    reasons: dict[str, int] = {}
    instances = 0
    with sessions.begin() as session:
        # Recount inside the transaction: a fill that committed meanwhile used budget.
        room = max(0, queue.daily_budget - queued_since(session, day))
        keys = [item.key for item in chosen.items]
        taken = set(
            session.scalars(select(QueueItem.sample_id).where(QueueItem.sample_id.in_(keys)))
        )
        for item in chosen.items:
            if len(ids) >= room:
                break
            if item.key in taken:
                continue
            row = QueueItem(
                sample_id=int(item.key),
                state=QueueState.QUEUED,
                priority=float(item.priority),
                reason=item.reason,
                signals={k: float(v) for k, v in item.signals.items()},
                category_ids=sorted(int(c) for c in classes[item.key]),
                n_instances=int(n_instances[item.key]),
                queued_at=now,
                fill_run_id=run_id,
            )
            session.add(row)
            session.flush()
            ids.append(row.id)
            reasons[item.reason] = reasons.get(item.reason, 0) + 1
            instances += row.n_instances
    return FillReport(
        n_candidates=chosen.n_candidates,
        n_waiting=candidates.n_waiting,
        n_duplicates=chosen.n_duplicates,
        budget=budget,
        used_today=used,
        daily_budget=queue.daily_budget,
        item_ids=tuple(ids),
        n_instances=instances,
        reasons=reasons,
        reference=candidates.reference,
        embedder=candidates.embedder,
    )
