"""The ``segmon`` command line: thin wrappers around library functions.

Every command that reports something takes ``--json`` and then prints one JSON
document on stdout; progress bars and logs go to stderr. Commands live in
``monitor/cli/*_commands.py`` (one module per area); importing them registers them.

Failures a user can fix are one line on stderr (``error: ...``), exit status 2, never a
traceback: segmon's own errors, an unreachable or refusing database. Secrets (the
database password, the admin token) are redacted from that line and from every log
line, and nothing printed is read as rich markup.
"""

from __future__ import annotations

import logging
import os

import typer

from monitor.cli import (  # noqa: F401  (importing registers the commands)
    categories_commands,
    compare_commands,
    core_commands,
    drift_commands,
    embed_commands,
    model_commands,
    quality_commands,
    queue_commands,
    queue_import_commands,
    slo_commands,
)
from monitor.cli.app import app, configure_logging, print_error, secrets_in
from monitor.errors import SegmonError

__all__ = ["app", "main"]


def database_failure(exc: BaseException) -> str | None:
    r"""Return a one-line description if ``exc`` is the database failing, else None.

    Examples
    --------
    >>> from sqlalchemy.exc import OperationalError
    >>> database_failure(OperationalError("SELECT 1", {}, Exception("connection refused\nhint")))
    'database unreachable: connection refused'
    >>> database_failure(ValueError("x")) is None
    True
    """
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    if isinstance(exc, OperationalError | InterfaceError):
        cause = str(exc.orig).strip() or type(exc.orig).__name__
        return f"database unreachable: {cause.splitlines()[0]}"
    if isinstance(exc, DBAPIError):
        cause = str(exc.orig).strip() or type(exc.orig).__name__
        return f"database refused the request: {cause.splitlines()[0]}"
    return None


def main() -> None:
    """Console-script entry point: user-fixable failures become one line on stderr, exit 2."""
    secrets = secrets_in(os.environ)
    configure_logging(logging.WARNING, secrets)
    try:
        code = app(standalone_mode=False)
    except SegmonError as exc:
        print_error(str(exc), secrets)
        raise SystemExit(2) from None
    except typer.Abort:
        raise SystemExit(130) from None
    except typer.TyperException as exc:  # typer's (vendored click) usage errors
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        raise SystemExit(getattr(exc, "exit_code", 2)) from None
    except Exception as exc:
        failure = database_failure(exc) if type(exc).__module__.startswith("sqlalchemy") else None
        if failure is None:
            raise
        print_error(failure, secrets)
        raise SystemExit(2) from None
    raise SystemExit(code if isinstance(code, int) else 0)
