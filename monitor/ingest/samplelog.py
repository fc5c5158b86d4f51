"""The sample-log contract: parse and validate one line into a typed record.

Pure: no files, no database. A line becomes a :class:`SampleRecord` or a
:class:`Rejection` carrying a machine-readable :class:`QuarantineReason`; it never
raises for bad data, so one bad line cannot stop a job. Image checks (missing,
unreadable, size) need I/O and live in :mod:`monitor.ingest.job`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from monitor.errors import QuarantineReason
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
    """
    if not isinstance(value, str):
        raise _Reject(QuarantineReason.INVALID_TIMESTAMP, f"captured_at {value!r} is not a string")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise _Reject(
            QuarantineReason.INVALID_TIMESTAMP, f"captured_at {value!r} is not ISO-8601"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


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


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


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
    obj: object, categories: frozenset[int], raw: str | None = None
) -> SampleRecord | Rejection:
    """Validate one decoded sample-log object.

    Parameters
    ----------
    obj
        The JSON object of one line.
    categories
        Category ids the production model may emit.
    raw
        The original text, kept on a rejection (defaults to ``json.dumps(obj)``).

    Returns
    -------
    SampleRecord or Rejection
        A rejection names the reason and the offending value; a sample with one bad
        instance is rejected whole (partial predictions would bias every statistic).

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
    text = raw if raw is not None else json.dumps(obj, default=str)
    if not isinstance(obj, Mapping):
        return Rejection(
            QuarantineReason.INVALID_RECORD,
            f"line is a JSON {type(obj).__name__}, not an object",
            text,
        )
    request_id = obj.get("request_id")
    known_id = str(request_id) if isinstance(request_id, str | int) and request_id != "" else None
    captured: datetime | None = None
    image = obj.get("image") if isinstance(obj.get("image"), str) else None
    try:
        request = _field(obj, "request_id", str)
        if not request.strip():
            raise _Reject(QuarantineReason.INVALID_RECORD, "request_id is empty")
        captured = parse_timestamp(obj.get("captured_at"))
        image = _field(obj, "image", str)
        width = _field(obj, "width", int)
        height = _field(obj, "height", int)
        if width <= 0 or height <= 0:
            raise _Reject(
                QuarantineReason.INVALID_RECORD, f"image size {width}x{height} is not positive"
            )
        version = obj.get("model_version")
        if version is not None and not isinstance(version, str):
            raise _Reject(
                QuarantineReason.INVALID_RECORD, f"model_version {version!r} is not a string"
            )
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


def parse_line(line: str, categories: frozenset[int]) -> SampleRecord | Rejection:
    """Decode and validate one JSONL line.

    Examples
    --------
    >>> parse_line('{"request_id": "r-1", ', frozenset({1})).reason
    <QuarantineReason.MALFORMED_JSON: 'malformed_json'>
    """
    try:
        obj = json.loads(line)
    except ValueError as exc:
        return Rejection(QuarantineReason.MALFORMED_JSON, f"not JSON: {exc}", line)
    return parse_record(obj, categories, raw=line)
