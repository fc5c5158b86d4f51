"""Alembic environment: runs migrations on segmon's engine (SQLite batch mode on)."""

from __future__ import annotations

import os
from logging.config import fileConfig
from typing import Any

from sqlalchemy.types import TypeDecorator

from alembic import context
from monitor.storage.engine import make_engine
from monitor.storage.schema import Base

config = context.config
if config.config_file_name is not None and "engine" not in config.attributes:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Render segmon's type decorators as their plain implementation type."""
    if type_ == "type" and isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl!r}"
    return False


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    if engine is None:
        engine = make_engine(os.environ.get("SEGMON_DATABASE_URL", "sqlite:///segmon.db"))
    with engine.begin() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            render_item=render_item,
        )
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("segmon migrations run online only: give a database URL")
run_migrations_online()
