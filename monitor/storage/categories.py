"""The production model's categories in the database: list, add, rename, remove.

Stored rows refer to a category by its id (instances, embeddings, per-class quality and
shadow rows), and per-class drift and quality rows also carry its name. So:

- **add** needs an id and a name nobody uses yet;
- **rename** changes the name everywhere it is stored, in one transaction, so history
  follows the class (refused when the new name is taken: that would merge two classes);
- **remove** is refused while any stored row refers to the category (its rows would
  lose their class);
- an id never changes: the model emits it, and every stored row keys on it.

The configuration file mirrors the table (``segmon categories`` updates both; see
:func:`monitor.config.write_categories`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from monitor.errors import InvalidInputError, NotFoundError
from monitor.storage.schema import (
    Category,
    ClassQualityRow,
    DriftResultRow,
    GroundTruthInstance,
    InstanceEmbedding,
    PredictedInstance,
    ShadowClassScore,
)

__all__ = [
    "CategoryUsage",
    "add_category",
    "find_category",
    "list_categories",
    "remove_category",
    "rename_category",
]

_REFERRING = (
    ("predicted_instances", PredictedInstance.category_id),
    ("ground_truth_instances", GroundTruthInstance.category_id),
    ("instance_embeddings", InstanceEmbedding.category_id),
    ("class_quality", ClassQualityRow.category_id),
    ("shadow_class_scores", ShadowClassScore.category_id),
)


@dataclass(frozen=True)
class CategoryUsage:
    """A stored category and how many rows of each table refer to it."""

    id: int
    name: str
    supercategory: str
    rows: dict[str, int]

    @property
    def in_use(self) -> bool:
        """Whether any stored row refers to the category."""
        return any(self.rows.values())

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return asdict(self)


def find_category(session: Session, ref: str | int) -> Category:
    """Return the category named ``ref``, or whose id it is (an int or a string of digits).

    Raises
    ------
    NotFoundError
        If there is none; the message lists the stored ones.
    """
    row = session.scalar(select(Category).where(Category.name == str(ref)))
    if row is None and str(ref).lstrip("-").isdigit():
        row = session.get(Category, int(ref))
    if row is None:
        known = ", ".join(f"{c.id}:{c.name}" for c in session.scalars(select(Category)))
        raise NotFoundError(f"no category {ref!r} in the database; stored: {known or 'none'}")
    return row


def _usage(session: Session, category: Category) -> CategoryUsage:
    rows = {
        table: int(session.scalar(select(func.count()).where(column == category.id)) or 0)
        for table, column in _REFERRING
    }
    return CategoryUsage(category.id, category.name, category.supercategory, rows)


def list_categories(session: Session) -> list[CategoryUsage]:
    """Return every stored category, by id, with the rows that refer to it."""
    return [_usage(session, c) for c in session.scalars(select(Category).order_by(Category.id))]


def add_category(session: Session, category_id: int, name: str, supercategory: str = "") -> None:
    """Store a new category.

    Raises
    ------
    InvalidInputError
        If the id or the name is taken, or the name is blank.
    """
    if not name.strip():
        raise InvalidInputError(f"category name {name!r} is blank")
    taken = session.get(Category, category_id)
    if taken is not None:
        raise InvalidInputError(
            f"category id {category_id} is taken by {taken.name!r}; choose a free id "
            "(the id the model emits for the new class)"
        )
    if session.scalar(select(Category).where(Category.name == name)) is not None:
        raise InvalidInputError(f"a category named {name!r} exists already")
    session.add(Category(id=category_id, name=name, supercategory=supercategory))
    session.flush()


def rename_category(session: Session, ref: str | int, new_name: str) -> Category:
    """Rename a category, and the class name stored with its per-class results.

    Raises
    ------
    NotFoundError
        If ``ref`` names no category.
    InvalidInputError
        If ``new_name`` is blank or taken (renaming onto an existing class would merge
        two classes' history).
    """
    category = find_category(session, ref)
    if not new_name.strip():
        raise InvalidInputError(f"category name {new_name!r} is blank")
    if new_name == category.name:
        return category
    if session.scalar(select(Category).where(Category.name == new_name)) is not None:
        raise InvalidInputError(
            f"cannot rename {category.name!r} to {new_name!r}: that name is taken by another "
            "category, and renaming onto it would merge the two classes' stored results"
        )
    old = category.name
    category.name = new_name
    session.execute(
        update(ClassQualityRow)
        .where(ClassQualityRow.category_id == category.id)
        .values(class_name=new_name)
    )
    session.execute(
        update(DriftResultRow).where(DriftResultRow.class_name == old).values(class_name=new_name)
    )
    session.flush()
    return category


def remove_category(session: Session, ref: str | int) -> Category:
    """Delete a category no stored row refers to.

    Raises
    ------
    NotFoundError
        If ``ref`` names no category.
    InvalidInputError
        If rows refer to it (the message says which tables and how many).
    """
    category = find_category(session, ref)
    usage = _usage(session, category)
    if usage.in_use:
        used = ", ".join(f"{n} {table}" for table, n in usage.rows.items() if n)
        raise InvalidInputError(
            f"category {category.name!r} (id {category.id}) is used by stored rows ({used}); "
            "removing it would leave them without a class. Rename it instead, or start a "
            "new database"
        )
    session.delete(category)
    session.flush()
    return category
