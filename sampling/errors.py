"""Errors of the sampling package: a leaf module any layer may import.

:class:`SamplingError` subclasses segmon's root :class:`~detectors.errors.SegmonError`
(``detectors.errors`` is itself a leaf), so ``except SegmonError`` catches it; the lead
re-exports these from :mod:`monitor.errors`. Each also subclasses the matching built-in,
and every message names the bad value.
"""

from __future__ import annotations

from detectors.errors import SegmonError


class SamplingError(SegmonError):
    """Root of the errors the sampling package raises."""


class InvalidSignalError(SamplingError, ValueError):
    """A signal, its weights, a candidate table or a selection policy is malformed.

    Raised for wrong shapes, values outside [0, 1], NaN where a value is required,
    unknown signal names, ``k < 1`` and negative budgets.
    """


__all__ = ["InvalidSignalError", "SamplingError"]
