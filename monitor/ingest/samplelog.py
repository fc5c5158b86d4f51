"""The sample-log contract: parse and validate one line into a typed record.

Pure: no files, no database. A line becomes a :class:`SampleRecord` or a
:class:`Rejection` carrying a machine-readable :class:`QuarantineReason`; it never
raises, so one bad line cannot stop a job: anything no check foresaw becomes an
``internal_error`` rejection naming the exception. A record is converted completely
here (timestamps to UTC and range-checked, strings checked against their columns and
for NULs and lone surrogates, every mask range-checked and encoded), so the database
never sees a value it could refuse. Image checks (missing, unreadable, size) need I/O
and live in :mod:`monitor.ingest.job`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from monitor.errors import QuarantineReason
from monitor.limits import (
    DEFAULT_MAX_PIXELS,
    EARLIEST_TIMESTAMP,
    IMAGE_URI_CHARS,
    LATEST_TIMESTAMP,
    MODEL_VERSION_CHARS,
    REQUEST_ID_CHARS,
    text_problem,
)
from monitor.masks import CompressedMask, MaskError, to_compressed


@dataclass(frozen=True)
class InstanceRecord:
    """A validated predicted instance."""

    category_id: int
    score: float
    mask: CompressedMask
    bbox: tuple[float, float, float, float]
    class_scores: tuple[float, ...] | None


@dataclass(frozen=True)
class SampleRecord:
    """A validated sample-log line."""

    request_id: str
    captured_at: datetime
    model_version: str | None
    image: str
    width: int
    height: int
    latency_ms: float | None
    instances: tuple[InstanceRecord, ...]


@dataclass(frozen=True)
class Rejection:
    """A line that cannot be accepted, with what could be read of it."""

    reason: QuarantineReason
    detail: str
    raw: str
    request_id: str | None = None
    captured_at: datetime | None = None
    image: str | None = None


class _Reject(Exception):
    def __init__(self, reason: QuarantineReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


_MASK_REASONS = {
    "invalid_rle": QuarantineReason.INVALID_RLE,
    "invalid_polygon": QuarantineReason.INVALID_POLYGON,
    "mask_size_mismatch": QuarantineReason.MASK_SIZE_MISMATCH,
}


def parse_timestamp(value: object) -> datetime:
    """Parse an ISO-8601 timestamp into aware UTC (naive input is taken as UTC).

    Examples
    --------
    >>> parse_timestamp("2026-11-23T10:00:00Z").isoformat()
    '2026-11-23T10:00:00+00:00'
    >>> parse_timestamp("2026-11-23T11:00:00+01:00").isoformat()
    '2026-11-23T10:00:00+00:00'

    After conversion to UTC it must lie in [1970-01-01, 2200-01-01)
    (:data:`~monitor.limits.EARLIEST_TIMESTAMP`, :data:`~monitor.limits.LATEST_TIMESTAMP`):

    >>> parse_timestamp("0001-01-01T00:00:00+01:00")
    Traceback (most recent call last):
    ...
    monitor.ingest.samplelog._Reject: captured_at '0001-01-01T00:00:00+01:00' is before year 1 in UTC
    """
    if not isinstance(value, str):
        raise _Reject(
            QuarantineReason.INVALID_TIMESTAMP, f"captured_at {value!r:.80} is not a string"
        )
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise _Reject(
            QuarantineReason.INVALID_TIMESTAMP, f"captured_at {value!r:.80} is not ISO-8601"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        utc = parsed.astimezone(UTC)
    except OverflowError:
        year = "before year 1" if parsed.year == 1 else "after year 9999"
        raise _Reject(
            QuarantineReason.INVALID_TIMESTAMP, f"captured_at {value!r} is {year} in UTC"
        ) from None
    if not EARLIEST_TIMESTAMP <= utc < LATEST_TIMESTAMP:
        raise _Reject(
            QuarantineReason.INVALID_TIMESTAMP,
            f"captured_at {value!r} is {utc.isoformat()} in UTC, outside "
            f"[{EARLIEST_TIMESTAMP.isoformat()}, {LATEST_TIMESTAMP.isoformat()})",
        )
    return utc


def _field(obj: Mapping[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    if name not in obj:
        raise _Reject(QuarantineReason.INVALID_RECORD, f"missing field {name!r}")
    value = obj[name]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise _Reject(
            QuarantineReason.INVALID_RECORD,
            f"field {name!r} = {value!r:.80} has type {type(value).__name__}",
        )
    return value


def _text(obj: Mapping[str, Any], name: str, max_chars: int) -> str:
    value = _field(obj, name, str)
    problem = text_problem(value, max_chars)
    if problem is not None:
        raise _Reject(QuarantineReason.INVALID_RECORD, f"{name} {value!r:.80} {problem}")
    return str(value)


def _finite(value: object) -> bool:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


def _parse_instance(
    obj: object, index: int, height: int, width: int, categories: frozenset[int]
) -> InstanceRecord:
    if not isinstance(obj, Mapping):
        raise _Reject(QuarantineReason.INVALID_RECORD, f"instances[{index}] is not an object")
    category = _field(obj, "category_id", int)
    if category not in categories:
        raise _Reject(
            QuarantineReason.UNKNOWN_CATEGORY,
            f"instances[{index}].category_id {category} is not one of {sorted(categories)}",
        )
    score = obj.get("score")
    if not _finite(score) or not 0.0 <= float(score) <= 1.0:  # type: ignore[arg-type]
        raise _Reject(
            QuarantineReason.INVALID_SCORE,
            f"instances[{index}].score {score!r} is not a number in [0, 1]",
        )
    if "segmentation" not in obj:
        raise _Reject(QuarantineReason.INVALID_RECORD, f"instances[{index}] has no segmentation")
    try:
        mask = to_compressed(obj["segmentation"], height, width)
    except MaskError as exc:
        raise _Reject(_MASK_REASONS[exc.problem.value], f"instances[{index}]: {exc}") from None
    bbox = mask.bbox
    if obj.get("bbox") is not None:
        given = obj["bbox"]
        if not (
            isinstance(given, Sequence)
            and len(given) == 4
            and all(_finite(v) for v in given)
            and given[2] >= 0
            and given[3] >= 0
        ):
            raise _Reject(
                QuarantineReason.INVALID_BBOX,
                f"instances[{index}].bbox {given!r:.80} is not [x, y, w, h]",
            )
        bbox = (float(given[0]), float(given[1]), float(given[2]), float(given[3]))
    class_scores = obj.get("class_scores")
    parsed_scores: tuple[float, ...] | None = None
    if class_scores is not None:
        if not (
            isinstance(class_scores, Sequence)
            and class_scores
            and all(_finite(v) and 0.0 <= float(v) <= 1.0 for v in class_scores)
        ):
            raise _Reject(
                QuarantineReason.INVALID_CLASS_SCORES,
                f"instances[{index}].class_scores {class_scores!r:.80} are not probabilities",
            )
        parsed_scores = tuple(float(v) for v in class_scores)
    return InstanceRecord(category, float(score), mask, bbox, parsed_scores)  # type: ignore[arg-type]


def parse_record(
    obj: object,
    categories: frozenset[int],
    raw: str | None = None,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> SampleRecord | Rejection:
    """Validate one decoded sample-log object; never raises.

    Parameters
    ----------
    obj
        The JSON object of one line.
    categories
        Category ids the production model may emit.
    raw
        The original text, kept on a rejection (defaults to ``json.dumps(obj)``).
    max_pixels
        Lines whose ``width * height`` is larger are rejected as ``image_too_large``.

    Returns
    -------
    SampleRecord or Rejection
        A rejection names the reason and the offending value; a sample with one bad
        instance is rejected whole (partial predictions would bias every statistic).
        Anything unforeseen is an ``internal_error`` rejection naming the exception.

    Examples
    --------
    >>> line = {"request_id": "r-1", "captured_at": "2026-11-23T10:00:00Z",
    ...         "image": "images/r-1.png", "width": 5, "height": 4,
    ...         "instances": [{"category_id": 1, "score": 0.9,
    ...                        "segmentation": {"size": [4, 5], "counts": "5220003"}}]}
    >>> rec = parse_record(line, frozenset({1, 2}))
    >>> rec.request_id, rec.instances[0].mask.area
    ('r-1', 6)
    >>> line["instances"][0]["score"] = float("nan")
    >>> parse_record(line, frozenset({1, 2})).reason
    <QuarantineReason.INVALID_SCORE: 'invalid_score'>
    """
    try:
        text = raw if raw is not None else json.dumps(obj, default=str)
    except (RecursionError, ValueError, TypeError) as exc:
        text = f"<unprintable {type(obj).__name__}: {type(exc).__name__}>"
    try:
        return _parse_record(obj, categories, text, max_pixels)
    except Exception as exc:  # the line's own boundary: set it aside, never the batch
        try:  # keep its request id, so a corrected line can replace it
            known = _known_id(obj) if isinstance(obj, Mapping) else None
        except Exception:
            known = None
        return Rejection(
            QuarantineReason.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}"[:2000], text, known
        )


def _known_id(obj: Mapping[str, Any]) -> str | None:
    """Return the line's request id if it can be stored (else the caller uses its key)."""
    request_id = obj.get("request_id")
    if isinstance(request_id, bool) or not isinstance(request_id, str | int):
        return None
    known = str(request_id)
    if not known.strip() or text_problem(known, REQUEST_ID_CHARS) is not None:
        return None
    return known


def _parse_record(
    obj: object, categories: frozenset[int], text: str, max_pixels: int
) -> SampleRecord | Rejection:
    if not isinstance(obj, Mapping):
        return Rejection(
            QuarantineReason.INVALID_RECORD,
            f"line is a JSON {type(obj).__name__}, not an object",
            text,
        )
    known_id = _known_id(obj)
    captured: datetime | None = None
    given_image = obj.get("image")
    image = (
        given_image
        if isinstance(given_image, str) and text_problem(given_image, IMAGE_URI_CHARS) is None
        else None
    )
    try:
        request = _text(obj, "request_id", REQUEST_ID_CHARS)
        if not request.strip():
            raise _Reject(QuarantineReason.INVALID_RECORD, "request_id is empty")
        captured = parse_timestamp(obj.get("captured_at"))
        image = _text(obj, "image", IMAGE_URI_CHARS)
        if not image.strip():
            raise _Reject(QuarantineReason.INVALID_RECORD, "image is empty")
        width = _field(obj, "width", int)
        height = _field(obj, "height", int)
        if width <= 0 or height <= 0:
            raise _Reject(
                QuarantineReason.INVALID_RECORD,
                f"image size {str(width):.40}x{str(height):.40} is not positive",
            )
        if width * height > max_pixels:
            raise _Reject(
                QuarantineReason.IMAGE_TOO_LARGE,
                f"image size {str(width):.40}x{str(height):.40} is more than {max_pixels} pixels",
            )
        version = obj.get("model_version")
        if version is not None:
            version = _text(obj, "model_version", MODEL_VERSION_CHARS)
        latency = obj.get("latency_ms")
        if latency is not None and (not _finite(latency) or latency < 0):
            raise _Reject(
                QuarantineReason.INVALID_RECORD, f"latency_ms {latency!r} is not a duration"
            )
        raw_instances = _field(obj, "instances", list)
        instances = tuple(
            _parse_instance(item, i, height, width, categories)
            for i, item in enumerate(raw_instances)
        )
    except _Reject as rej:
        return Rejection(rej.reason, rej.detail, text, known_id, captured, image)
    return SampleRecord(
        request_id=request,
        captured_at=captured,
        model_version=version,
        image=image,
        width=width,
        height=height,
        latency_ms=float(latency) if latency is not None else None,
        instances=instances,
    )


def parse_line(
    line: str, categories: frozenset[int], *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> SampleRecord | Rejection:
    """Decode and validate one JSONL line; never raises.

    Examples
    --------
    >>> parse_line('{"request_id": "r-1", ', frozenset({1})).reason
    <QuarantineReason.MALFORMED_JSON: 'malformed_json'>
    >>> parse_line("[" * 100_000, frozenset({1})).detail
    'not JSON: nested too deeply (RecursionError)'
    """
    try:
        obj = json.loads(line)
    except ValueError as exc:
        return Rejection(QuarantineReason.MALFORMED_JSON, f"not JSON: {exc}", line)
    except RecursionError:
        return Rejection(
            QuarantineReason.MALFORMED_JSON, "not JSON: nested too deeply (RecursionError)", line
        )
    return parse_record(obj, categories, raw=line, max_pixels=max_pixels)
