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
    """Why a sample was quarantined (the ``reason`` label of the rejected counter).

    ``image_too_large``: more pixels than ``images.max_pixels`` (or bytes than
    ``images.max_bytes``); ``image_forbidden``: the reference leaves the log's folder and
    the configured allow-list, or names something that is not a regular file;
    ``internal_error``: handling the line raised something no check foresaw (the detail
    carries the exception's class and message), so the line is set aside, not the batch.
    """

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
    IMAGE_TOO_LARGE = "image_too_large"
    IMAGE_FORBIDDEN = "image_forbidden"
    INTERNAL_ERROR = "internal_error"
