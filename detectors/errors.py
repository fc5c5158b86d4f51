"""Errors the pure layers raise: a leaf module any layer may import.

``detectors`` and ``sampling`` raise these; :mod:`monitor.errors` re-exports them beside
the service's own errors, so ``except SegmonError`` catches every error segmon raises on
purpose. Each subclasses the matching built-in too, and its message names the bad value.
"""

from __future__ import annotations


class SegmonError(Exception):
    """Root of segmon's own errors."""


class InvalidInputError(SegmonError, ValueError):
    """Input data (a line, a mask, an array) is malformed."""


class NotFittedError(SegmonError, RuntimeError):
    """A detector or model was used before ``fit``."""


__all__ = ["InvalidInputError", "NotFittedError", "SegmonError"]
