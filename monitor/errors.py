"""Domain errors.

Every error segmon raises on purpose subclasses :class:`SegmonError` and the matching
built-in, so callers can catch either. Messages name the offending value.
"""

from __future__ import annotations


class SegmonError(Exception):
    """Root of segmon's own errors."""


class ConfigError(SegmonError, ValueError):
    """A setting is missing or invalid."""


class InvalidInputError(SegmonError, ValueError):
    """Input data (a line, a mask, an array) is malformed."""


class NotFoundError(SegmonError, LookupError):
    """A named thing (dataset, model, sample) does not exist."""


class NotFittedError(SegmonError, RuntimeError):
    """A detector or model was used before ``fit``."""


class UnsafeFormatError(SegmonError, ValueError):
    """A file in a format segmon refuses to load (for example a pickle checkpoint)."""
