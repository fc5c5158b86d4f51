"""Secrets never reach an error message or a log line.

:func:`redact` masks the password of every URL (``scheme://user:password@host``) and
every ``password=`` / ``token=`` / ``secret=`` setting in a text, plus any value passed
in ``secrets`` (the admin token, the database password, wherever they appear).
:class:`RedactingFilter` applies it to every log record; the command line installs it
and redacts each error it prints.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

__all__ = ["MASK", "RedactingFilter", "redact", "url_password"]

MASK = "***"

_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^\s/:@'\"]*:)[^\s@'\"]+(?=@)")
_KEY_VALUE = re.compile(
    r"(?P<head>\b(?:password|passwd|pwd|token|secret|api[_-]?key)\s*[=:]\s*['\"]?)[^\s'\"&;,]+",
    re.IGNORECASE,
)


def url_password(url: str) -> str | None:
    """Return the password in a URL, or None.

    Examples
    --------
    >>> url_password("postgresql://segmon:hunter2@db:5432/segmon")
    'hunter2'
    >>> url_password("sqlite:///segmon.db") is None
    True
    """
    match = _URL_PASSWORD.search(url)
    if match is None:
        return None
    return url[match.end("head") : match.end()]


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Return ``text`` with URL passwords, ``password=``-style values and ``secrets`` masked.

    Examples
    --------
    >>> redact("database_url 'mysql://u:hunter2@db/x': unsupported backend 'mysql'")
    "database_url 'mysql://u:***@db/x': unsupported backend 'mysql'"
    >>> redact("host=db password=hunter2 dbname=x")
    'host=db password=*** dbname=x'
    >>> redact("token abc123 refused", secrets=["abc123"])
    'token *** refused'
    """
    for secret in secrets:
        if secret and len(secret) >= 3:  # masking "a" everywhere would destroy the text
            text = text.replace(secret, MASK)
    text = _URL_PASSWORD.sub(lambda m: m.group("head") + MASK, text)
    return _KEY_VALUE.sub(lambda m: m.group("head") + MASK, text)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts every record's message (and its arguments).

    Examples
    --------
    >>> record = logging.LogRecord("x", logging.ERROR, "f", 1, "connect to %s", ("postgresql://u:pw1@h/db",), None)
    >>> RedactingFilter(["tok-123"]).filter(record), record.getMessage()
    (True, 'connect to postgresql://u:***@h/db')
    """

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record in place; never drop it."""
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        record.msg, record.args = redact(message, self.secrets), None
        return True
