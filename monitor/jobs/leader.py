"""Leader election: one replica runs the jobs, every replica serves metrics.

PostgreSQL: a session-level advisory lock held on a dedicated connection for as long as
the process leads. SQLite: an exclusive ``flock`` on a file beside the database, which
allows one leader per machine (SQLite serves one machine anyway).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path
from typing import IO, Protocol

from sqlalchemy import Connection, Engine, text


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


class LeaderLock(Protocol):
    """A lock at most one process holds."""

    def try_acquire(self) -> bool:
        """Return True when this process leads (acquiring the lock if free)."""
        ...

    def release(self) -> None:
        """Give up leadership."""
        ...


class AdvisoryLock:
    """PostgreSQL ``pg_try_advisory_lock`` on a connection kept open while leading."""

    def __init__(self, engine: Engine, key: int = ADVISORY_KEY) -> None:
        self.engine = engine
        self.key = key
        self._conn: Connection | None = None

    def try_acquire(self) -> bool:
        """Take the advisory lock if no other session holds it."""
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT 1"))
                return True
            except Exception:  # the connection died: so did the lock
                self._conn = None
        conn = self.engine.connect()
        got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar())
        conn.commit()
        if got:
            self._conn = conn
        else:
            conn.close()
        return got

    def release(self) -> None:
        """Unlock and close the leader connection."""
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                self._conn.commit()
            finally:
                self._conn.close()
                self._conn = None


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


def leader_lock(engine: Engine, data_dir: Path) -> LeaderLock:
    """Return the right lock for the engine's backend."""
    if engine.dialect.name == "postgresql":
        return AdvisoryLock(engine)
    database = engine.url.database
    name = Path(database).name if database and database != ":memory:" else "memory"
    return FileLock(data_dir / f"{name}.leader")
