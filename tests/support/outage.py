"""A database that a test can switch off: session factories and a leader lock that fail.

:class:`OutageSessions` is a session factory whose sessions fail to start while ``down``
is set, as they do when the database server is stopped; :class:`SwitchableLock` is a
leader lock that raises the same error while ``down``. Both raise SQLAlchemy's
``OperationalError``, the error a real outage gives.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker


def outage_error() -> OperationalError:
    """The error a stopped database gives (a refused connection)."""
    return OperationalError(
        "SELECT 1", {}, ConnectionRefusedError("connection refused: database stopped by the test")
    )


class OutageSessions(sessionmaker[Session]):
    """A session factory whose database is unreachable while ``down`` is True."""

    down: bool = False

    def __call__(self, **local_kw: Any) -> Session:
        """Open a session, or raise ``OperationalError`` while down."""
        if self.down:
            raise outage_error()
        return super().__call__(**local_kw)

    def begin(self) -> AbstractContextManager[Session]:
        """Begin a transaction, or raise ``OperationalError`` while down."""
        if self.down:
            raise outage_error()
        return super().begin()


class SwitchableLock:
    """A leader lock only this process uses: held once taken, unreachable while ``down``."""

    def __init__(self) -> None:
        self.down = False
        self.held = False
        self.free = True

    def try_acquire(self) -> bool:
        """Take the lock if free; raise ``OperationalError`` while down."""
        if self.down:
            self.held = False  # a lost connection loses the lock with it
            raise outage_error()
        if not self.held and self.free:
            self.held = True
        return self.held

    def release(self) -> None:
        """Give the lock up."""
        self.held = False
