"""Leader election: one replica runs the jobs, every replica serves metrics.

PostgreSQL: a session-level advisory lock held on a dedicated connection for as long as
the process leads. The process's death closes that connection and frees the lock at
once. The session is also a lease: PostgreSQL ends it (and frees the lock) when the
leader sends nothing for ``lease`` (``idle_session_timeout``) or its host stops
answering TCP keepalives, so a hung or vanished leader frees the lock too. SQLite: an
exclusive ``flock`` on a file beside the database, which allows one leader per machine
(SQLite serves one machine anyway).

Who checks the lock, and how often, is :mod:`monitor.jobs.lease`'s business.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import math
import os
from datetime import timedelta
from pathlib import Path
from typing import IO, Protocol

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.pool import NullPool

log = logging.getLogger("segmon.leader")


def advisory_key(name: str) -> int:
    """Return a ``pg_try_advisory_lock`` key: the first 8 bytes of sha1(name), signed int64.

    Examples
    --------
    >>> advisory_key("segmon-leader")
    76676833252441720
    """
    return int.from_bytes(hashlib.sha1(name.encode("utf-8")).digest()[:8], "big", signed=True)


ADVISORY_KEY = advisory_key("segmon-leader")
"""The leader lock's key, derived (not typed in) so every replica computes the same one."""


def schema_key(schema: str) -> int:
    """Return the leader lock's key for segmon's tables in PostgreSQL schema ``schema``.

    Advisory locks belong to a database, not a schema, so two installs in two schemas of
    one database need two keys; ``public`` keeps :data:`ADVISORY_KEY`.

    Examples
    --------
    >>> schema_key("public") == ADVISORY_KEY
    True
    >>> schema_key("tenant_b")
    7168614374980724279
    """
    return ADVISORY_KEY if schema == "public" else advisory_key(f"segmon-leader:{schema}")


class LeaderLock(Protocol):
    """A lock at most one process holds."""

    def try_acquire(self) -> bool:
        """Return True when this process leads (acquiring the lock if free)."""
        ...

    def release(self) -> None:
        """Give up leadership."""
        ...


def lock_id_parts(key: int) -> tuple[int, int]:
    """Return ``(classid, objid)``: how ``pg_locks`` shows a bigint advisory-lock key.

    Examples
    --------
    >>> lock_id_parts(ADVISORY_KEY)
    (17852716, 1887665784)
    >>> lock_id_parts(-1)
    (4294967295, 4294967295)
    """
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    return unsigned >> 32, unsigned & 0xFFFF_FFFF


_HELD = text(
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
    " AND pid = pg_backend_pid() AND classid::bigint = :hi AND objid::bigint = :lo"
    " AND objsubid = 1"
)


class AdvisoryLock:
    """PostgreSQL ``pg_try_advisory_lock`` on a connection kept open while leading.

    The connection is the lock's own (not from the engine's pool), opened with a
    connect timeout and TCP keepalives; on it the session sets ``idle_session_timeout``
    to ``lease`` and server-side keepalives, so PostgreSQL drops a silent leader. The
    key is ``key``, or :func:`schema_key` of the connection's ``current_schema()``.
    """

    def __init__(
        self, engine: Engine, key: int | None = None, lease: timedelta = timedelta(seconds=15)
    ) -> None:
        if lease < timedelta(seconds=2):
            raise ValueError(f"lease must be at least 2 s, got {lease}")
        self.engine = engine
        self.key = key
        self.lease = lease
        seconds = max(1, math.ceil(lease.total_seconds() / 3))
        self._lock_engine = create_engine(
            engine.url,
            poolclass=NullPool,
            connect_args={
                "connect_timeout": seconds,
                "keepalives": 1,
                "keepalives_idle": seconds,
                "keepalives_interval": 1,
                "keepalives_count": 2,
                "tcp_user_timeout": int(lease.total_seconds() * 1000),
                "application_name": "segmon-leader",
            },
        )
        self._keepalive_s = seconds
        self._conn: Connection | None = None

    def _discard(self) -> None:
        if self._conn is not None:
            try:
                self._conn.invalidate()
                self._conn.close()
            except Exception as exc:  # the connection is gone already
                log.debug("closing the lost leader connection: %s", exc)
            self._conn = None

    def holds(self) -> bool:
        """Return True when this process's session holds the lock (a query on it).

        Raises
        ------
        sqlalchemy.exc.DBAPIError
            If the leader connection fails (then the lock is gone with it).
        """
        if self._conn is None or self.key is None:
            return False
        hi, lo = lock_id_parts(self.key)
        try:
            held = bool(self._conn.execute(_HELD, {"hi": hi, "lo": lo}).scalar())
            self._conn.commit()
        except Exception:
            self._discard()
            raise
        if not held:
            self._discard()
        return held

    def try_acquire(self) -> bool:
        """Take the advisory lock if no other session holds it; renew it if held.

        Raises
        ------
        sqlalchemy.exc.OperationalError
            If the database cannot be reached (leadership is then unknown).
        """
        if self._conn is not None:
            try:
                if self.holds():
                    return True
            except Exception as exc:  # the connection died, and the lock with it
                log.warning("leader connection lost: %s", exc)
        conn = self._lock_engine.connect()
        try:
            idle_ms = int(self.lease.total_seconds() * 1000)
            conn.execute(text(f"SET idle_session_timeout = {idle_ms}"))
            for name, value in (
                ("tcp_keepalives_idle", self._keepalive_s),
                ("tcp_keepalives_interval", 1),
                ("tcp_keepalives_count", 2),
            ):
                conn.execute(text(f"SET {name} = {int(value)}"))
            if self.key is None:
                self.key = schema_key(
                    str(conn.execute(text("SELECT current_schema()")).scalar_one())
                )
            got = bool(
                conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar()
            )
            conn.commit()
        except Exception:
            conn.close()
            raise
        if got:
            self._conn = conn
        else:
            conn.close()
        return got

    def release(self) -> None:
        """Unlock and close the leader connection (a dead connection released it already)."""
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                self._conn.commit()
            except Exception as exc:
                log.warning("releasing the leader lock: %s", exc)
            finally:
                self._discard()


class FileLock:
    """An exclusive, non-blocking ``flock`` on ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[str] | None = None

    def try_acquire(self) -> bool:
        """Take the lock if no other process holds it."""
        if self._handle is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle
        return True

    def release(self) -> None:
        """Unlock and close the lock file."""
        if self._handle is not None:
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


def leader_lock(
    engine: Engine, data_dir: Path, lease: timedelta = timedelta(seconds=15)
) -> LeaderLock:
    """Return the right lock for the engine's backend (``lease``: PostgreSQL only)."""
    if engine.dialect.name == "postgresql":
        return AdvisoryLock(engine, lease=lease)
    database = engine.url.database
    name = Path(database).name if database and database != ":memory:" else "memory"
    return FileLock(data_dir / f"{name}.leader")
