"""Database fixtures: migrated SQLite and PostgreSQL databases with the default categories."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from monitor.config import DEFAULT_CATEGORIES
from monitor.storage.bootstrap import init_database
from monitor.storage.engine import make_engine, session_factory

PG_ENV = "SEGMON_TEST_POSTGRES_URL"

MakeDatabase = Callable[[str], sessionmaker[Session]]
"""``make_db(name)``: a fresh migrated SQLite database's session factory."""


def _postgres_base_url() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"{PG_ENV} is not set (make test sets it); no PostgreSQL to test against")
    return url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL whose connections use a fresh, private schema (dropped after)."""
    base = _postgres_base_url()
    schema = f"segmon_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(make_url(base).set(drivername="postgresql+psycopg"))
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # no server: skip, do not fail
        admin.dispose()
        pytest.skip(f"PostgreSQL at {base} is not reachable: {exc.__class__.__name__}")
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test that takes this runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'segmon.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A migrated database with the default categories."""
    eng = make_engine(database_url)
    init_database(eng, DEFAULT_CATEGORIES)
    yield eng
    eng.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    """Session factory of the migrated database."""
    return session_factory(engine)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """URL of the SQLite database ``sqlite_sessions`` migrates."""
    return f"sqlite:///{tmp_path / 'drift.db'}"


@pytest.fixture
def sqlite_sessions(sqlite_url: str) -> Iterator[sessionmaker[Session]]:
    """A migrated SQLite database (tests that need not run on PostgreSQL too)."""
    engine: Engine = make_engine(sqlite_url)
    init_database(engine, DEFAULT_CATEGORIES)
    yield session_factory(engine)
    engine.dispose()


@pytest.fixture
def make_db(tmp_path: Path) -> Iterator[MakeDatabase]:
    """Fresh migrated SQLite databases with the default categories, by name."""
    engines: list[Engine] = []

    def make(name: str) -> sessionmaker[Session]:
        engine = make_engine(f"sqlite:///{tmp_path / name}.db")
        init_database(engine, DEFAULT_CATEGORIES)
        engines.append(engine)
        return session_factory(engine)

    yield make
    for engine in engines:
        engine.dispose()
