"""``segmon categories``: the model's classes in the database and the config, together."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from monitor.cli.app import JsonFlag, app, app_state, emit, out

categories_app = typer.Typer(
    help="The production model's categories: list, add, rename, remove (database and config).",
    no_args_is_help=True,
)
app.add_typer(categories_app, name="categories")

RefArgument = Annotated[str, typer.Argument(help="A category's name or id.", metavar="NAME|ID")]


def _save_config(ctx: typer.Context, update: dict[int, tuple[str, str] | None]) -> None:
    """Apply ``{id: (name, supercategory) | None}`` to the config's categories and save."""
    from monitor.config import CategorySpec, load_settings, write_categories

    state = app_state(ctx)
    current = {c.id: c for c in state.settings.categories}
    for category_id, value in update.items():
        if value is None:
            current.pop(category_id, None)
        else:
            current[category_id] = CategorySpec(
                id=category_id, name=value[0], supercategory=value[1]
            )
    write_categories(state.config_path, sorted(current.values(), key=lambda c: c.id))
    state.settings = load_settings(state.config_path, os.environ)


@categories_app.command("list")
def list_(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List the stored categories, the rows that use each, and whether the config agrees."""
    from monitor.storage.categories import list_categories

    state = app_state(ctx)
    with state.sessions()() as session:
        stored = list_categories(session)
    config = {c.id: c.name for c in state.settings.categories}
    rows = [
        c.as_dict() | {"in_config": config.get(c.id) == c.name, "config_name": config.get(c.id)}
        for c in stored
    ]
    only_config = [
        {"id": i, "name": n} for i, n in config.items() if i not in {c.id for c in stored}
    ]

    def human() -> None:
        table = Table("id", "name", "supercategory", "stored rows", "config")
        for row in rows:
            note = "same" if row["in_config"] else escape(str(row["config_name"] or "missing"))
            table.add_row(
                str(row["id"]),
                escape(str(row["name"])),
                escape(str(row["supercategory"])),
                str(sum(row["rows"].values())),
                note,
            )
        for row in only_config:
            table.add_row(str(row["id"]), escape(str(row["name"])), "", "-", "not in database")
        out.print(table)

    emit(as_json, {"categories": rows, "only_in_config": only_config}, human)


@categories_app.command("add")
def add(
    ctx: typer.Context,
    category_id: Annotated[int, typer.Argument(help="The id the model emits for the class.")],
    name: Annotated[str, typer.Argument(help="The class name.")],
    supercategory: Annotated[str, typer.Option("--supercategory", help="COCO supercategory.")] = "",
    as_json: JsonFlag = False,
) -> None:
    """Add a category to the database and the config."""
    from monitor.storage.categories import add_category

    state = app_state(ctx)
    with state.sessions().begin() as session:
        add_category(session, category_id, name, supercategory)
    _save_config(ctx, {category_id: (name, supercategory)})
    payload = {"id": category_id, "name": name, "supercategory": supercategory}
    emit(
        as_json,
        payload,
        lambda: out.print(f"added {category_id}:{name}", markup=False, highlight=False),
    )


@categories_app.command("rename")
def rename(
    ctx: typer.Context,
    ref: RefArgument,
    new_name: Annotated[str, typer.Argument(help="The new name.")],
    as_json: JsonFlag = False,
) -> None:
    """Rename a category in the database (stored per-class results follow) and the config."""
    from monitor.storage.categories import find_category, rename_category

    state = app_state(ctx)
    with state.sessions().begin() as session:
        old = find_category(session, ref).name
        category = rename_category(session, ref, new_name)
        renamed = (category.id, category.name, category.supercategory)
    _save_config(ctx, {renamed[0]: (renamed[1], renamed[2])})
    payload = {"id": renamed[0], "old_name": old, "name": renamed[1]}
    emit(
        as_json,
        payload,
        lambda: out.print(
            f"renamed {renamed[0]}:{old} to {renamed[1]}", markup=False, highlight=False
        ),
    )


@categories_app.command("remove")
def remove(ctx: typer.Context, ref: RefArgument, as_json: JsonFlag = False) -> None:
    """Remove a category no stored row uses, from the database and the config."""
    from monitor.storage.categories import remove_category

    state = app_state(ctx)
    with state.sessions().begin() as session:
        category = remove_category(session, ref)
        removed = (category.id, category.name)
    _save_config(ctx, {removed[0]: None})
    emit(
        as_json,
        {"id": removed[0], "name": removed[1]},
        lambda: out.print(f"removed {removed[0]}:{removed[1]}", markup=False, highlight=False),
    )
