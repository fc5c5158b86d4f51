"""Shared plumbing of the ``segmon`` command line: the app, its state, output helpers.

Command modules (``monitor/cli/*_commands.py``) register their commands on :data:`app`;
:mod:`monitor.cli.main` imports them all and holds the entry point.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.text import Text

from monitor.config import DEFAULT_CONFIG_PATH, Settings, load_settings
from monitor.secrets import RedactingFilter, redact, url_password

if TYPE_CHECKING:  # the engine is made on first use: `segmon --help` loads no SQLAlchemy
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

app = typer.Typer(
    name="segmon",
    help="Monitor an instance-segmentation model in production: drift, quality, SLOs, annotation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database migrations (Alembic).", no_args_is_help=True)
holdout_app = typer.Typer(help="Labeled holdout datasets.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(holdout_app, name="holdout")

_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def escape_controls(text: str) -> str:
    r"""Return ``text`` with control characters escaped, so a terminal only shows them.

    Newlines and tabs stay; other C0/C1 controls (escape sequences, carriage returns,
    bells), bidirectional overrides and lone surrogates become ``\xNN`` / ``\uNNNN``.

    Examples
    --------
    >>> escape_controls("r-1\x1b[31m red\u202e\ud800 [/bold]\n")
    'r-1\\x1b[31m red\\u202e\\ud800 [/bold]\n'
    """
    if text.isascii() and text.isprintable():
        return text
    out = []
    for ch in text:
        if ch in "\n\t":
            out.append(ch)
        elif ch in _BIDI_CONTROLS or unicodedata.category(ch) in ("Cc", "Cs"):
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


class SafeConsole(Console):
    """A console that shows every string as it is: no markup, no emoji, controls escaped.

    Everything segmon prints may carry user-supplied text (request ids, file names,
    error messages naming bad values), so no string is ever read as rich markup and no
    control character reaches the terminal. Styles are given explicitly (``style=``).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(markup=False, emoji=False, highlight=False, **kwargs)

    def render_str(self, text: str, **kwargs: Any) -> Text:
        """Render ``text`` literally, control characters escaped."""
        kwargs["markup"] = False
        kwargs["emoji"] = False
        return super().render_str(escape_controls(text), **kwargs)


out = SafeConsole()
err = SafeConsole(stderr=True)


def secrets_in(env: Mapping[str, str], settings: Settings | None = None) -> list[str]:
    """Return the secret values that must never be printed (admin token, DB password)."""
    found = [env.get("SEGMON_ADMIN_TOKEN", "").strip()]
    for url in (env.get("SEGMON_DATABASE_URL"), settings.database_url if settings else None):
        if url:
            found.append(url_password(url) or "")
    return [s for s in found if s]


def print_error(message: str, secrets: list[str] | None = None) -> None:
    """Print one line ``error: MESSAGE`` on stderr, secrets redacted, controls escaped."""
    first = message.strip().split("\n")[0] if message.strip() else message
    err.print(Text("error:", style="bold red"), redact(first, secrets or []), soft_wrap=True)


def configure_logging(level: int, secrets: list[str]) -> None:
    """Log to stderr at ``level``, every record redacted (:class:`RedactingFilter`)."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(secrets))
    logging.basicConfig(level=level, handlers=[handler], force=True)


JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]

PushgatewayOption = Annotated[
    str | None,
    typer.Option(
        "--pushgateway",
        metavar="URL",
        help="Also push segmon's metrics to this Prometheus Pushgateway (e.g. http://host:9091).",
    ),
]

FromOption = Annotated[
    str | None,
    typer.Option(
        "--from",
        metavar="TIME",
        help="Start of a past period (ISO 8601 date or time; no zone means UTC). Needs --to.",
    ),
]
ToOption = Annotated[
    str | None,
    typer.Option("--to", metavar="TIME", help="End of the period (as --from). Needs --from."),
]


def time_range(start: str | None, end: str | None) -> tuple[datetime, datetime] | None:
    """Parse ``--from`` / ``--to``: both or neither; the start before the end."""
    from monitor.clock import check_range, parse_instant
    from monitor.errors import InvalidInputError

    if start is None and end is None:
        return None
    if start is None or end is None:
        given, missing = ("--from", "--to") if end is None else ("--to", "--from")
        raise InvalidInputError(f"{given} needs {missing} too (a period has two ends)")
    parsed = (parse_instant(start, "--from"), parse_instant(end, "--to"))
    check_range(*parsed)
    return parsed


@dataclass
class AppState:
    """What every command gets: settings built once, the engine made on first use."""

    config_path: Path
    settings: Settings
    _engine: Engine | None = field(default=None, repr=False)
    _checked: bool = field(default=False, repr=False)

    @property
    def engine(self) -> Engine:
        """The database engine (created on first use)."""
        if self._engine is None:
            from monitor.storage.engine import make_engine

            self._engine = make_engine(self.settings.database_url)
        return self._engine

    def sessions(self) -> sessionmaker[Session]:
        """Return a session factory for the configured database, checked to be migrated."""
        from monitor.storage.engine import require_schema, session_factory

        if not self._checked:
            require_schema(self.engine)
            self._checked = True
        return session_factory(self.engine)


def app_state(ctx: typer.Context) -> AppState:
    """Return the state the root command built (settings, engine)."""
    found = ctx.find_root().obj
    assert isinstance(found, AppState)
    return found


def emit(as_json: bool, payload: Any, human: Callable[[], None]) -> None:
    """Print ``payload`` as one JSON document when ``as_json``, else call ``human``."""
    if as_json:
        sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")
    else:
        human()


@contextmanager
def progress_bar(description: str) -> Iterator[Callable[[int, int], None]]:
    """Show a rich progress bar on stderr; yields ``update(done, total)``."""
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f}"),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )
    task = progress.add_task(description, total=None)

    def update(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total)

    with progress:
        yield update


@app.callback()
def _main(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            envvar="SEGMON_CONFIG",
            help=f"YAML config file (default {DEFAULT_CONFIG_PATH}; missing means all defaults).",
        ),
    ] = None,
) -> None:
    path = config or DEFAULT_CONFIG_PATH
    ctx.obj = AppState(path, load_settings(path, os.environ))
