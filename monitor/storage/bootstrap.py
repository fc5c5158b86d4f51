"""Bring a database to a usable state: migrate it and register the model's classes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from monitor.errors import ConfigError
from monitor.storage import engine as db
from monitor.storage.schema import Category


class CategoryLike(Protocol):
    """A class of the production model as the config declares it (``CategorySpec``)."""

    @property
    def id(self) -> int:
        """Category id the model emits."""

    @property
    def name(self) -> str:
        """Class name."""

    @property
    def supercategory(self) -> str:
        """COCO supercategory (may be empty)."""


@dataclass(frozen=True)
class InitReport:
    """What ``segmon init`` did to the database."""

    revision: str | None
    categories_added: tuple[str, ...]


def sync_categories(
    sessions: sessionmaker[Session], categories: Sequence[CategoryLike]
) -> tuple[str, ...]:
    """Insert the configured categories that the database lacks.

    A configured id whose stored name differs is refused (it would silently relabel
    every stored instance of that class).

    Returns
    -------
    tuple of str
        Names of the categories added.
    """
    added: list[str] = []
    with sessions.begin() as session:
        stored = {c.id: c for c in session.scalars(select(Category))}
        for spec in categories:
            row = stored.get(spec.id)
            if row is None:
                session.add(Category(id=spec.id, name=spec.name, supercategory=spec.supercategory))
                added.append(spec.name)
            elif row.name != spec.name:
                raise ConfigError(
                    f"category id {spec.id} is {row.name!r} in the database but {spec.name!r} in "
                    f"the config: run `segmon categories rename {row.name} {spec.name}` to rename "
                    "it in the database and the config (stored results follow), or give the new "
                    "class an id of its own in the config"
                )
    return tuple(added)


def init_database(engine: Engine, categories: Sequence[CategoryLike]) -> InitReport:
    """Upgrade the schema to the newest migration and register the categories."""
    db.upgrade(engine)
    added = sync_categories(db.session_factory(engine), categories)
    return InitReport(db.current_revision(engine), added)
