"""Domain errors, and the reasons bad input is quarantined.

Every error segmon raises on purpose subclasses :class:`SegmonError` and the matching
built-in, so callers can catch either. Messages name the offending value. The errors the
pure layers raise (:class:`SegmonError`, :class:`InvalidInputError`,
:class:`NotFittedError`) are defined in the leaf :mod:`detectors.errors` and re-exported
here; the service's own follow.

:class:`QuarantineReason` is the vocabulary of bad input: every job that cannot use a
sample (ingest, embed, shadow) stores it as quarantined with one of these reasons.
"""

from __future__ import annotations

from enum import StrEnum

from detectors.errors import InvalidInputError, NotFittedError, SegmonError

__all__ = [
    "ConfigError",
    "InvalidInputError",
    "NotFittedError",
    "NotFoundError",
    "QuarantineReason",
    "SegmonError",
    "UnsafeFormatError",
]


class ConfigError(SegmonError, ValueError):
    """A setting is missing or invalid."""


class NotFoundError(SegmonError, LookupError):
    """A named thing (dataset, model, sample) does not exist."""


class UnsafeFormatError(SegmonError, ValueError):
    """A file in a format segmon refuses to load (for example a pickle checkpoint)."""


class QuarantineReason(StrEnum):
    """Why a sample was quarantined (the ``reason`` label of the rejected counter)."""

    MALFORMED_JSON = "malformed_json"
    INVALID_RECORD = "invalid_record"
    INVALID_TIMESTAMP = "invalid_timestamp"
    IMAGE_MISSING = "image_missing"
    IMAGE_UNREADABLE = "image_unreadable"
    IMAGE_SIZE_MISMATCH = "image_size_mismatch"
    MASK_SIZE_MISMATCH = "mask_size_mismatch"
    UNKNOWN_CATEGORY = "unknown_category"
    INVALID_SCORE = "invalid_score"
    INVALID_RLE = "invalid_rle"
    INVALID_POLYGON = "invalid_polygon"
    INVALID_BBOX = "invalid_bbox"
    INVALID_CLASS_SCORES = "invalid_class_scores"
