"""The ``segmon`` command line: thin wrappers around library functions.

Every command that reports something takes ``--json`` and then prints one JSON
document on stdout; progress bars and logs go to stderr. Commands live in
``monitor/cli/*_commands.py`` (one module per area); importing them registers them.
"""

from __future__ import annotations

import typer

from monitor.cli import (  # noqa: F401  (importing registers the commands)
    categories_commands,
    core_commands,
    drift_commands,
    embed_commands,
    model_commands,
    quality_commands,
    slo_commands,
)
from monitor.cli.app import app, err
from monitor.errors import SegmonError

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point: domain errors become one line on stderr, exit 2."""
    try:
        code = app(standalone_mode=False)
    except SegmonError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)  # one line
        raise SystemExit(2) from None
    except typer.Abort:
        raise SystemExit(130) from None
    except typer.TyperException as exc:  # typer's (vendored click) usage errors
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        raise SystemExit(getattr(exc, "exit_code", 2)) from None
    raise SystemExit(code if isinstance(code, int) else 0)
