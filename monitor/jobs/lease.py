"""The leader lease: who leads, checked on a heartbeat that no job schedule drives.

:class:`Leadership` checks the leader lock (:mod:`monitor.jobs.leader`), taking it when
it is free and confirming it when held, and keeps the answer as a :class:`LeaseState`:
this process leads, another does (named from the ``leader_leases`` row), or nobody can
tell because the database is unreachable. While leading, each check also renews the
``leader_leases`` row (who leads, since when, at which URL) and marks the runs whose
heartbeat stopped ``abandoned``. The service (:mod:`monitor.jobs.scheduler`) checks every
heartbeat (5 s by default), so a standby takes over within a heartbeat of the lock's
release.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import delete
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import Clock
from monitor.errors import SegmonError
from monitor.jobs.leader import LeaderLock
from monitor.jobs.runs import abandon_stale_runs, describe_error, process_identity
from monitor.storage.schema import LeaderLease

__all__ = ["LEASE_NAME", "LeaderInfo", "LeaseState", "Leadership", "NotLeaderError", "Role"]

log = logging.getLogger("segmon.lease")

LEASE_NAME = "segmon"
"""The ``leader_leases`` row of ``segmon run``'s replicas."""


class Role(StrEnum):
    """What this process is among the replicas."""

    LEADER = "leader"
    STANDBY = "standby"
    UNKNOWN = "unknown"
    """The lock cannot be checked (the database is unreachable)."""


@dataclass(frozen=True)
class LeaderInfo:
    """The leader as its ``leader_leases`` row names it.

    Examples
    --------
    >>> from datetime import UTC
    >>> t = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    >>> LeaderInfo("db-1:42", "http://10.0.0.5:9464", t, t).describe(t + timedelta(seconds=3))
    'db-1:42 at http://10.0.0.5:9464 (lease renewed 3 s ago)'
    """

    holder: str
    url: str | None
    acquired_at: datetime
    renewed_at: datetime

    def describe(self, now: datetime) -> str:
        """Return who leads, where, and how fresh that news is."""
        where = f" at {self.url}" if self.url else ""
        age = max(0.0, (now - self.renewed_at).total_seconds())
        return f"{self.holder}{where} (lease renewed {age:.0f} s ago)"


@dataclass(frozen=True)
class LeaseState:
    """A process's role at its last check, and who leads as far as it knows.

    Examples
    --------
    >>> from datetime import UTC
    >>> t = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    >>> state = LeaseState(Role.LEADER, "a:1", checked_at=t)
    >>> state.as_of(t + timedelta(seconds=4), timedelta(seconds=15)).role.value
    'leader'
    >>> late = state.as_of(t + timedelta(seconds=20), timedelta(seconds=15))
    >>> late.role.value, late.error
    ('unknown', 'lease not checked for 20 s (allowed 15 s)')
    """

    role: Role
    identity: str
    checked_at: datetime | None = None
    leader: LeaderInfo | None = None
    error: str | None = None

    def as_of(self, now: datetime, max_age: timedelta) -> LeaseState:
        """Return this state, or ``unknown`` when its check is older than ``max_age``."""
        if self.checked_at is None:
            return dataclasses.replace(self, role=Role.UNKNOWN, error=self.error or "not checked")
        age = now - self.checked_at
        if age <= max_age:
            return self
        return dataclasses.replace(
            self,
            role=Role.UNKNOWN,
            error=(
                f"lease not checked for {age.total_seconds():.0f} s "
                f"(allowed {max_age.total_seconds():.0f} s)"
            ),
        )


class NotLeaderError(SegmonError, RuntimeError):
    """Not the leader: ``state.role`` says whether another process leads or none can tell.

    Examples
    --------
    >>> from datetime import UTC
    >>> t = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    >>> leader = LeaderInfo("b:7", None, t, t)
    >>> str(NotLeaderError(LeaseState(Role.STANDBY, "a:1", t, leader), t))
    'a:1 is not the leader; the leader is b:7 (lease renewed 0 s ago)'
    >>> str(NotLeaderError(LeaseState(Role.STANDBY, "a:1", t), t))
    'a:1 is not the leader; no leader is known'
    """

    def __init__(self, state: LeaseState, now: datetime) -> None:
        if state.role is Role.UNKNOWN:
            message = f"{state.identity} cannot tell who leads: {state.error}"
        elif state.leader is not None:
            message = (
                f"{state.identity} is not the leader; the leader is {state.leader.describe(now)}"
            )
        else:
            message = f"{state.identity} is not the leader; no leader is known"
        super().__init__(message)
        self.state = state


class Leadership:
    """Checks the leader lock and keeps this process's :class:`LeaseState`.

    Parameters
    ----------
    lock
        The leader lock (at most one process holds it).
    sessions
        The database holding ``leader_leases`` and ``job_runs``.
    clock
        Stamps the lease and the abandoned runs.
    identity
        This process's name (``host:pid`` by default).
    url
        Where this process serves its HTTP API (written on the lease while leading).
    stale_after
        A ``running`` job run whose heartbeat is older than this is marked ``abandoned``.
    """

    def __init__(
        self,
        lock: LeaderLock,
        sessions: sessionmaker[Session],
        clock: Clock,
        *,
        identity: str | None = None,
        url: str | None = None,
        stale_after: timedelta = timedelta(seconds=60),
    ) -> None:
        self.lock = lock
        self.sessions = sessions
        self.clock = clock
        self.identity = identity or process_identity()
        self.url = url
        self.stale_after = stale_after
        self._mutex = threading.RLock()
        self._state = LeaseState(Role.UNKNOWN, self.identity, error="not checked yet")
        self._acquired_at: datetime | None = None
        self._was_leader = False

    @property
    def state(self) -> LeaseState:
        """The state at the last check."""
        return self._state

    @property
    def was_leader(self) -> bool:
        """Whether this process led at its last check that could tell."""
        return self._was_leader

    def confirm(self) -> LeaseState:
        """Check the lock now (taking it if free) and return the new state."""
        with self._mutex:
            now = self.clock.now()
            previous = self._state
            try:
                leading = self.lock.try_acquire()
            except Exception as exc:  # any failure to reach the lock: nobody can tell
                if previous.role is not Role.UNKNOWN:
                    log.error("leadership unknown: %s", describe_error(exc))
                self._state = LeaseState(
                    Role.UNKNOWN,
                    self.identity,
                    now,
                    previous.leader,
                    f"database unreachable: {describe_error(exc)}",
                )
                return self._state
            if leading:
                if previous.role is not Role.LEADER or self._acquired_at is None:
                    self._acquired_at = now
                    log.info("%s leads", self.identity)
                info = LeaderInfo(self.identity, self.url, self._acquired_at, now)
                self._state = LeaseState(Role.LEADER, self.identity, now, info)
            else:
                if previous.role is Role.LEADER:
                    log.warning("%s lost the leader lock", self.identity)
                self._acquired_at = None
                known = previous.leader
                if known is not None and known.holder == self.identity:
                    known = None
                self._state = LeaseState(Role.STANDBY, self.identity, now, known)
            self._was_leader = leading
            return self._state

    def check(self) -> LeaseState:
        """Confirm the lock, then renew the lease and abandon dead runs, or read who leads.

        Bookkeeping that fails (the database is busy) is logged and left for the next
        check; the lock alone decides the role.
        """
        with self._mutex:
            state = self.confirm()
            try:
                if state.role is Role.LEADER and state.leader is not None:
                    self._renew(state.leader)
                    marked = abandon_stale_runs(
                        self.sessions,
                        now=state.leader.renewed_at,
                        stale_after=self.stale_after,
                        by=self.identity,
                    )
                    if marked:
                        log.warning("marked runs %s abandoned (no heartbeat)", marked)
                elif state.role is Role.STANDBY:
                    self._state = dataclasses.replace(state, leader=self._read())
            except SQLAlchemyError as exc:
                log.warning("lease bookkeeping failed: %s", describe_error(exc))
            return self._state

    def _renew(self, info: LeaderInfo) -> None:
        with self.sessions.begin() as session:
            row = session.get(LeaderLease, LEASE_NAME)
            if row is None:
                session.add(
                    LeaderLease(
                        name=LEASE_NAME,
                        holder=info.holder,
                        url=info.url,
                        acquired_at=info.acquired_at,
                        renewed_at=info.renewed_at,
                    )
                )
            else:
                row.holder = info.holder
                row.url = info.url
                row.acquired_at = info.acquired_at
                row.renewed_at = info.renewed_at

    def _read(self) -> LeaderInfo | None:
        with self.sessions() as session:
            row = session.get(LeaderLease, LEASE_NAME)
            if row is None or row.holder == self.identity:
                return None
            return LeaderInfo(row.holder, row.url, row.acquired_at, row.renewed_at)

    def release(self) -> None:
        """Give up leadership: clear the lease row if it is ours, then free the lock."""
        with self._mutex:
            if self._state.role is Role.LEADER:
                try:
                    with self.sessions.begin() as session:
                        session.execute(
                            delete(LeaderLease).where(
                                LeaderLease.name == LEASE_NAME,
                                LeaderLease.holder == self.identity,
                            )
                        )
                except SQLAlchemyError as exc:
                    log.warning("clearing the lease row failed: %s", describe_error(exc))
            self.lock.release()
            self._acquired_at = None
            self._was_leader = False
            self._state = LeaseState(Role.STANDBY, self.identity, self.clock.now())
