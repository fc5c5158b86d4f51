"""Backfill: every aligned drift window of each configured length inside a past period.

``segmon drift --from T1 --to T2`` runs :func:`backfill_drift`. The windows are those of
the scheduled job (:func:`monitor.drift.job.aligned_window`: each ends at a multiple of
its length since the Unix epoch) that lie wholly inside ``[T1, T2]``, computed oldest
first with the same seeds and the same upserts, so a backfilled window and a scheduled
run of the same window store the same rows.

Resumable: each window's rows are stored in one transaction, and a window that already
has rows (for this reference) is skipped, so a backfill killed half-way and run again
computes only the windows it had not finished and leaves the stored ones as they were.
A window with fewer than ``drift.min_samples`` images stores nothing and is looked at
again by the next run (a count, no features read).

A range that would make more than ``drift.backfill_max_windows`` (2000) windows is
refused unless the caller raises the cap (``--max-windows``): 1h windows over a year
are 8,760 windows, which is rarely what was meant.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import Clock, check_range
from monitor.config import DriftSettings
from monitor.drift.job import DriftReport, check_window, read_reference, store_checks
from monitor.drift.properties import fill_image_properties
from monitor.errors import InvalidInputError
from monitor.images import ImageAccess
from monitor.jobs.executor import Executor
from monitor.slo.duration import parse_duration
from monitor.storage.schema import DriftResultRow

__all__ = [
    "BackfillProgress",
    "BackfillReport",
    "PlannedWindow",
    "backfill_drift",
    "plan_windows",
]

Outcome = Literal["computed", "already_stored", "too_few_images"]


@dataclass(frozen=True, order=True)
class PlannedWindow:
    """One window of a backfill: ``[start, end)`` of length ``window``."""

    end: datetime
    start: datetime
    window: str


@dataclass(frozen=True)
class BackfillProgress:
    """Reported to the progress callback after each window."""

    done: int
    total: int
    window: PlannedWindow
    outcome: Outcome


@dataclass
class BackfillReport:
    """What one backfill did (the drift job's report plus what was skipped as stored)."""

    start: datetime
    end: datetime
    planned: int = 0
    computed: int = 0
    already_stored: int = 0
    too_few_images: int = 0
    drift: DriftReport = field(default_factory=DriftReport)
    flagged_windows: list[dict[str, Any]] = field(default_factory=list)

    def counts(self) -> dict[str, Any]:
        """Return counts for the job-run row and ``--json``."""
        return {
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "planned_windows": self.planned,
            "computed_windows": self.computed,
            "already_stored_windows": self.already_stored,
            "too_few_images_windows": self.too_few_images,
            "flagged_windows": self.flagged_windows,
            **{k: v for k, v in self.drift.counts().items() if k != "windows"},
        }


def plan_windows(
    windows: Sequence[str], start: datetime, end: datetime, max_windows: int
) -> list[PlannedWindow]:
    """Return every aligned window of each length lying wholly in ``[start, end]``.

    Sorted by end, then start (oldest first; at one end, the longest window first).

    Raises
    ------
    InvalidInputError
        If ``start`` is not before ``end``, or the range holds more than ``max_windows``
        windows (the message says how many and how to allow them).

    Examples
    --------
    >>> t0 = datetime(2026, 11, 23, 0, 30, tzinfo=UTC)
    >>> plan = plan_windows(["1h", "1d"], t0, t0 + timedelta(days=1), 100)
    >>> len(plan), plan[0].end.isoformat(), plan[-1].window
    (23, '2026-11-23T02:00:00+00:00', '1h')
    >>> plan_windows(["1h"], t0, t0 + timedelta(days=365), 2000)
    Traceback (most recent call last):
    ...
    detectors.errors.InvalidInputError: 2026-11-23T00:30:00+00:00 to 2027-11-23T00:30:00+00:00 \
holds 8759 windows (1h: 8759), more than the cap of 2000; raise it with --max-windows \
(drift.backfill_max_windows) or narrow the range
    """
    check_range(start, end)
    planned: list[PlannedWindow] = []
    per_length: dict[str, int] = {}
    for window in windows:
        step = int(parse_duration(window).total_seconds())
        first_end = -(-int(start.timestamp()) // step) * step + step  # first start >= T1
        last_end = int(end.timestamp()) // step * step
        count = max(0, (last_end - first_end) // step + 1)
        per_length[window] = count
        if sum(per_length.values()) > max_windows:
            continue  # counted for the message; not materialised
        length = timedelta(seconds=step)
        for k in range(count):
            w_end = datetime.fromtimestamp(first_end + k * step, UTC)
            planned.append(PlannedWindow(w_end, w_end - length, window))
    total = sum(per_length.values())
    if total > max_windows:
        detail = ", ".join(f"{w}: {n}" for w, n in per_length.items())
        raise InvalidInputError(
            f"{start.isoformat()} to {end.isoformat()} holds {total} windows ({detail}), "
            f"more than the cap of {max_windows}; raise it with --max-windows "
            "(drift.backfill_max_windows) or narrow the range"
        )
    return sorted(planned, key=lambda p: (p.end, -(p.end - p.start), p.window))


def _stored_ends(
    session: Session, reference: str, window: str, start: datetime, end: datetime
) -> set[datetime]:
    row = DriftResultRow
    ends = session.scalars(
        select(row.window_end)
        .where(
            row.reference == reference,
            row.window == window,
            row.window_end > start,
            row.window_end <= end,
        )
        .distinct()
    )
    return {e.astimezone(UTC) for e in ends}


def backfill_drift(
    sessions: sessionmaker[Session],
    settings: DriftSettings,
    clock: Clock,
    start: datetime,
    end: datetime,
    *,
    run_id: int | None = None,
    access: ImageAccess | None = None,
    progress: Callable[[BackfillProgress], None] | None = None,
    max_windows: int | None = None,
    executor: Executor | None = None,
) -> BackfillReport:
    """Compute and store every aligned window of ``settings.windows`` inside ``[start, end]``.

    Parameters
    ----------
    sessions
        Session factory.
    settings
        The ``drift:`` section (reference, windows, detectors, ``min_samples``).
    clock
        Stamps ``computed_at``.
    start, end
        The period (aware datetimes); only windows wholly inside it are computed.
    run_id
        Job run that produced the rows, if known.
    access
        Caps of the image reader (image properties are filled first, as the job does).
    progress
        Called after every window with how far the backfill is.
    max_windows
        Refuse a range with more windows (default ``drift.backfill_max_windows``).
    executor
        Where the missing image properties are computed, as the drift job does (None:
        in this process; a cluster's workers must reach the image files).

    Returns
    -------
    BackfillReport
        Windows computed, already stored and too small; the checks stored.
    """
    cap = settings.backfill_max_windows if max_windows is None else max_windows
    plan = plan_windows(settings.windows, start, end, cap)
    report = BackfillReport(start=start, end=end, planned=len(plan))
    report.drift.properties = fill_image_properties(sessions, clock, access, executor=executor)
    with sessions() as session:
        reference = read_reference(session, settings)
        label = reference.population.label
        report.drift.reference = label
        report.drift.embedder = reference.embedder
        stored = {w: _stored_ends(session, label, w, start, end) for w in settings.windows}
        for done, planned in enumerate(plan, start=1):
            outcome: Outcome
            if planned.end in stored[planned.window]:
                outcome = "already_stored"
                report.already_stored += 1
            else:
                span = (planned.start, planned.end)
                checks = check_window(
                    session, settings, reference, planned.window, span, report.drift
                )
                if checks is None:
                    outcome = "too_few_images"
                    report.too_few_images += 1
                else:
                    outcome = "computed"
                    report.computed += 1
                    store_checks(sessions, checks, clock.now(), run_id)
                    report.drift.checks.extend(checks)
                    flagged = sum(c.result.drift_detected for c in checks)
                    if flagged:
                        report.flagged_windows.append(
                            {
                                "window": planned.window,
                                "end": planned.end.isoformat(),
                                "flagged": flagged,
                                "checks": len(checks),
                            }
                        )
            if progress is not None:
                progress(BackfillProgress(done, len(plan), planned, outcome))
    return report
