"""Engines, sessions and migrations.

SQLite gets WAL journaling, foreign keys and a busy timeout on every connection;
PostgreSQL is used as it is. The schema is Alembic's: the migrations live in ``alembic/``
at the repository root and ship inside the wheel as ``monitor/storage/migrations``
(``pyproject.toml`` maps one onto the other); :func:`migrations_dir` finds whichever is
there, and :func:`upgrade` and :func:`downgrade` drive them from Python.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from alembic import command
from monitor.errors import ConfigError, NotFoundError
from monitor.secrets import redact

_INSTALLED_MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_CHECKOUT_MIGRATIONS = Path(__file__).resolve().parents[2] / "alembic"


def migrations_dir() -> Path:
    """Return the folder of the Alembic migrations: the installed copy, else the checkout's.

    Raises
    ------
    NotFoundError
        If neither exists (a broken install).
    """
    for candidate in (_INSTALLED_MIGRATIONS, _CHECKOUT_MIGRATIONS):
        if (candidate / "env.py").is_file():
            return candidate
    raise NotFoundError(
        f"no Alembic migrations at {_INSTALLED_MIGRATIONS} or {_CHECKOUT_MIGRATIONS}: "
        "reinstall segmon"
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(url: str) -> Engine:
    """Create an engine for a SQLAlchemy URL.

    Parameters
    ----------
    url
        ``sqlite:///path.db`` (default), ``sqlite://`` (in memory) or
        ``postgresql+psycopg://user@host:port/db``.

    Returns
    -------
    sqlalchemy.Engine
        With SQLite pragmas (WAL, foreign keys, busy timeout) set on connect.

    Raises
    ------
    ConfigError
        If the URL cannot be parsed or names an unsupported backend.

    Examples
    --------
    >>> make_engine("sqlite://").dialect.name
    'sqlite'
    >>> make_engine("mysql://x")
    Traceback (most recent call last):
    ...
    monitor.errors.ConfigError: database_url 'mysql://x': unsupported backend 'mysql'; use sqlite or postgresql
    >>> make_engine("mysql://segmon:hunter2@db/x")
    Traceback (most recent call last):
    ...
    monitor.errors.ConfigError: database_url 'mysql://segmon:***@db/x': unsupported backend 'mysql'; use sqlite or postgresql
    """
    shown = redact(url)
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise ConfigError(
            redact(f"database_url {shown!r} is not a SQLAlchemy URL: {exc}", [url])
        ) from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(parsed, pool_pre_ping=True)
    raise ConfigError(
        f"database_url {shown!r}: unsupported backend {backend!r}; use sqlite or postgresql"
    )


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Return a session factory bound to ``engine`` (objects stay usable after commit)."""
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config_file() -> Config:
    """Return the Alembic configuration of segmon's migrations (no ini file needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    return cfg


def alembic_config(engine: Engine) -> Config:
    """Return an Alembic configuration that runs on ``engine``'s connection."""
    cfg = alembic_config_file()
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database up to ``revision``."""
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    """Migrate the database down to ``revision``."""
    command.downgrade(alembic_config(engine), revision)


def head_revision() -> str | None:
    """Return the newest migration in ``alembic/versions``."""
    return ScriptDirectory.from_config(alembic_config_file()).get_current_head()


def require_schema(engine: Engine) -> None:
    """Raise a clear error unless the database is migrated to the newest revision.

    Raises
    ------
    NotFoundError
        If the database has no schema, or an older one; the message says what to run.
    """
    where = engine.url.render_as_string(hide_password=True)
    current = current_revision(engine)
    if current is None:
        raise NotFoundError(f"database {where} has no segmon schema: run `segmon init`")
    head = head_revision()
    if current != head:
        raise NotFoundError(
            f"database {where} is at revision {current}, code expects {head}: run `segmon db upgrade`"
        )


def current_revision(engine: Engine) -> str | None:
    """Return the revision the database is at, or None when it has no schema yet."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
