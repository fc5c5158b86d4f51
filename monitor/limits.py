"""Limits of what segmon stores: column lengths, storable text, timestamps, image size.

The database refuses some values a JSON line can carry: strings longer than their
column (PostgreSQL enforces ``VARCHAR(n)``), a NUL character (PostgreSQL's ``text``
cannot hold one), lone surrogates (not encodable as UTF-8 by either backend), and
timestamps outside what the rest of segmon computes with. The validators check these
limits *before* the database sees a value, so one odd line is quarantined with a reason
instead of failing the batch; :func:`storable` makes any text (an original line, a
detail message) safe to keep. The schema takes its column lengths from here, so the
two cannot drift apart.
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = [
    "DEFAULT_MAX_IMAGE_BYTES",
    "DEFAULT_MAX_PIXELS",
    "EARLIEST_TIMESTAMP",
    "IMAGE_URI_CHARS",
    "LATEST_TIMESTAMP",
    "MODEL_VERSION_CHARS",
    "REQUEST_ID_CHARS",
    "SOURCE_URI_CHARS",
    "text_problem",
    "storable",
]

REQUEST_ID_CHARS = 256
"""Length of ``samples.request_id``."""

MODEL_VERSION_CHARS = 128
"""Length of ``model_versions.name``."""

IMAGE_URI_CHARS = 2048
"""Length of ``samples.image_uri`` (and of an image reference in a line)."""

SOURCE_URI_CHARS = 1024
"""Length of ``sources.uri``."""

EARLIEST_TIMESTAMP = datetime(1970, 1, 1, tzinfo=UTC)
"""The earliest ``captured_at`` accepted (inclusive), after conversion to UTC."""

LATEST_TIMESTAMP = datetime(2200, 1, 1, tzinfo=UTC)
"""The latest ``captured_at`` accepted (exclusive), after conversion to UTC."""

DEFAULT_MAX_PIXELS = 50_000_000
"""Default pixel cap of an image (``images.max_pixels``): a 50-megapixel photo fits."""

DEFAULT_MAX_IMAGE_BYTES = 64 * 1024 * 1024
"""Default byte cap of one image file (``images.max_bytes``)."""


def text_problem(value: str, max_chars: int) -> str | None:
    r"""Say why ``value`` cannot be stored in a ``max_chars`` column, or return None.

    Examples
    --------
    >>> text_problem("r-1", 256) is None
    True
    >>> text_problem("a\x00b", 256)
    'contains a NUL character'
    >>> text_problem("\ud800", 256)
    'contains a lone surrogate (not UTF-8)'
    >>> text_problem("x" * 300, 256)
    'is 300 characters long, more than 256'
    """
    if "\x00" in value:
        return "contains a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate (not UTF-8)"
    if len(value) > max_chars:
        return f"is {len(value)} characters long, more than {max_chars}"
    return None


def storable(text: str, max_chars: int | None = None) -> str:
    r"""Return ``text`` as every backend can store it: NULs and lone surrogates escaped.

    ``max_chars`` truncates (after escaping).

    Examples
    --------
    >>> storable("a\x00b\ud800c")
    'a\\x00b\\ud800c'
    >>> storable("abcdef", 4)
    'abcd'
    """
    safe = text.replace("\x00", "\\x00")
    try:
        safe.encode("utf-8")
    except UnicodeEncodeError:
        safe = safe.encode("utf-8", "backslashreplace").decode("utf-8")
    return safe if max_chars is None else safe[:max_chars]
