"""Insert-or-update of result rows by their unique key (SQLite and PostgreSQL).

Result tables (``drift_results``, ``canary_results``) are written by jobs that may run
again over the same window after a crash or a retry; their rows are upserted by the
table's unique key, so a rerun replaces its rows instead of failing or duplicating them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from monitor.errors import ConfigError

BATCH = 500
"""Rows per statement."""


def upsert_rows(
    session: Session, table: Any, rows: Sequence[dict[str, Any]], key: Sequence[str]
) -> None:
    """Insert ``rows`` into ``table`` (an ORM class); a row whose ``key`` exists is updated.

    Raises
    ------
    ConfigError
        If the database is neither SQLite nor PostgreSQL.
    """
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        make: Any = pg_insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        make = sqlite_insert
    else:
        raise ConfigError(f"result rows need SQLite or PostgreSQL, not {dialect!r}")
    for start in range(0, len(rows), BATCH):
        stmt = make(table).values(list(rows[start : start + BATCH]))
        updates = {c: stmt.excluded[c] for c in rows[0] if c not in key}
        session.execute(stmt.on_conflict_do_update(index_elements=list(key), set_=updates))
