"""Clocks: the system's, and one the demo and tests can move by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

from monitor.errors import InvalidInputError


class Clock(Protocol):
    """Something that tells the time (aware UTC)."""

    def now(self) -> datetime:
        """Return the current time."""
        ...


class SystemClock:
    """The real time."""

    def now(self) -> datetime:
        """Return the current UTC time."""
        return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told to.

    Examples
    --------
    >>> clock = ManualClock(datetime(2026, 11, 23, tzinfo=UTC))
    >>> clock.advance(timedelta(hours=2)).isoformat()
    '2026-11-23T02:00:00+00:00'
    """

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError(f"ManualClock needs an aware datetime, got {start.isoformat()}")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        """Return the clock's current time."""
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        """Move the clock forward by ``delta`` and return the new time."""
        if delta < timedelta(0):
            raise ValueError(f"cannot move a clock backwards by {delta}")
        self._now += delta
        return self._now


def parse_instant(value: str, what: str = "time") -> datetime:
    """Parse an ISO 8601 date or date-time; one without a zone is UTC.

    Parameters
    ----------
    value
        ``2026-11-23``, ``2026-11-23T10:00``, ``2026-11-23T10:00:00Z`` or with an offset.
    what
        Names the value in the error (``--from``).

    Raises
    ------
    InvalidInputError
        When ``value`` is not such a time; the message names it.

    Examples
    --------
    >>> parse_instant("2026-11-23").isoformat(), parse_instant("2026-11-23T10:30Z").hour
    ('2026-11-23T00:00:00+00:00', 10)
    >>> parse_instant("yesterday", "--from")
    Traceback (most recent call last):
    ...
    detectors.errors.InvalidInputError: --from: 'yesterday' is not an ISO 8601 date or time \
(e.g. 2026-11-23 or 2026-11-23T10:00:00Z)
    """
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInputError(
            f"{what}: {value!r} is not an ISO 8601 date or time "
            "(e.g. 2026-11-23 or 2026-11-23T10:00:00Z)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def check_range(start: datetime, end: datetime) -> None:
    """Raise unless ``start`` is before ``end``.

    Examples
    --------
    >>> check_range(parse_instant("2026-11-24"), parse_instant("2026-11-23"))
    Traceback (most recent call last):
    ...
    detectors.errors.InvalidInputError: --from 2026-11-24T00:00:00+00:00 is not before \
--to 2026-11-23T00:00:00+00:00
    """
    if start >= end:
        raise InvalidInputError(f"--from {start.isoformat()} is not before --to {end.isoformat()}")
