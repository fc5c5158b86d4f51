"""The sample-line validator: hostile lines are rejected with a reason, nothing raises.

The fuzzing tests throw random JSON structures, strings and numbers at the validator
(and, fewer, through the database on SQLite and PostgreSQL): every line becomes a
record or a rejection whose reason is a :class:`QuarantineReason`, and a record holds
only values every backend stores.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from itertools import count
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import ManualClock
from monitor.errors import QuarantineReason
from monitor.ingest.samplelog import Rejection, SampleRecord, parse_line, parse_record
from monitor.ingest.store import CheckedLine, Ingestor, storable_key
from monitor.limits import EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, text_problem
from monitor.storage.schema import Sample, SampleStatus
from tests.support.hostile import hostile_lines
from tests.support.samplelog import LogBuilder

CATEGORIES = frozenset({1, 2, 3, 4})
REASONS = {reason.value for reason in QuarantineReason}
FUZZ_EXAMPLES = 1000
"""Examples of each validator-only fuzzing test (database fuzzing runs fewer)."""

IMAGE_FREE = {
    "timestamp overflowing UTC",
    "lone surrogate in request_id",
    "NUL in request_id",
    "NUL in model_version",
    "300-character request_id",
    "uncompressed RLE counts of 2**70",
    "JSON nested 100,000 deep",
    "non-numeric polygon coordinates",
    "non-numeric RLE size",
    "polygon coordinates of 1e12",
    "score beyond float range",
    "image size beyond the pixel cap",
}
"""Cases the validator decides alone (the others need the image on disk)."""


@pytest.mark.parametrize("case", sorted(IMAGE_FREE))
def test_each_hostile_line_is_rejected_with_its_reason(log_builder: LogBuilder, case: str) -> None:
    line, reason = hostile_lines(log_builder)[case]
    text = line if isinstance(line, str) else json.dumps(line)
    result = parse_line(text, CATEGORIES)
    assert isinstance(result, Rejection), case
    assert result.reason.value == reason, (case, result.detail)
    assert result.raw == text  # nothing is lost
    if result.request_id is not None:
        assert text_problem(result.request_id, 256) is None


def test_timestamps_are_range_checked_after_conversion_to_utc(log_builder: LogBuilder) -> None:
    cases = {
        "0001-01-01T00:00:00+01:00": "before year 1 in UTC",
        "9999-12-31T23:00:00-02:00": "after year 9999 in UTC",
        "1969-12-31T23:59:59Z": "outside [1970-01-01",
        "2200-01-01T00:00:00Z": "outside [1970-01-01",
    }
    for stamp, detail in cases.items():
        result = parse_record(log_builder.line(1, captured_at=stamp), CATEGORIES)
        assert isinstance(result, Rejection) and result.reason.value == "invalid_timestamp"
        assert detail in result.detail, (stamp, result.detail)
    edge = parse_record(log_builder.line(2, captured_at="1970-01-01T01:00:00+01:00"), CATEGORIES)
    assert isinstance(edge, SampleRecord) and edge.captured_at == EARLIEST_TIMESTAMP


def test_an_unforeseen_exception_is_an_internal_error_naming_it(log_builder: LogBuilder) -> None:
    class Exploding(dict[str, Any]):
        def get(self, key: str, default: Any = None) -> Any:
            if key == "latency_ms":
                raise KeyError("boom")
            return super().get(key, default)

    result = parse_record(Exploding(log_builder.line(3)), CATEGORIES, raw="the line")
    assert isinstance(result, Rejection)
    assert (result.reason.value, result.detail, result.raw) == (
        "internal_error",
        "KeyError: 'boom'",
        "the line",
    )
    assert result.request_id == "r-000003"


# ---- fuzzing -------------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([2**63, 2**70, -(2**70), 10**400])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
    | st.sampled_from(["", "\x00", "\ud800", "[/bold]", "\x1b[31m", "0", "Z", "1e12"])
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(), children, max_size=6)
    ),
    max_leaves=20,
)
FIELDS = (
    "request_id",
    "captured_at",
    "model_version",
    "image",
    "width",
    "height",
    "latency_ms",
    "instances",
)
INSTANCE_FIELDS = ("category_id", "score", "bbox", "segmentation", "class_scores")


@st.composite
def mutated_lines(draw: st.DrawFn) -> dict[str, Any]:
    """A valid line with some fields (or instance fields) replaced by random JSON."""
    line: dict[str, Any] = {
        "request_id": "r-1",
        "captured_at": "2026-11-23T10:00:00Z",
        "model_version": "prod-1",
        "image": "images/r-1.png",
        "width": 32,
        "height": 24,
        "latency_ms": 80.0,
        "instances": [
            {
                "category_id": 1,
                "score": 0.9,
                "bbox": [1, 1, 4, 3],
                "segmentation": draw(
                    st.sampled_from(
                        [
                            {"size": [24, 32], "counts": "i03e000000Wd0"},
                            {"size": [24, 32], "counts": [100, 12, 656]},
                            [[1, 1, 5, 1, 5, 4, 1, 4]],
                        ]
                    )
                ),
                "class_scores": [0.25, 0.25, 0.25, 0.25],
            }
        ],
    }
    targets = [("line", f) for f in FIELDS] + [("instance", f) for f in INSTANCE_FIELDS]
    targets += [("segmentation", "size"), ("segmentation", "counts")]
    changes: st.SearchStrategy[list[tuple[str, str]]] = st.just([]) | st.lists(
        st.sampled_from(targets), min_size=1, max_size=2, unique=True
    )
    for where, name in draw(changes):
        value = draw(json_values)
        instances = line["instances"]
        instance = instances[0] if isinstance(instances, list) and instances else None
        if where == "line":
            line[name] = value
        elif isinstance(instance, dict) and where == "instance":
            instance[name] = value
        elif isinstance(instance, dict) and isinstance(instance.get("segmentation"), dict):
            instance["segmentation"][name] = value
    return line


def _check_outcome(result: SampleRecord | Rejection) -> None:
    """A record holds only storable values; a rejection has a known reason."""
    event(result.reason.value if isinstance(result, Rejection) else "stored")
    if isinstance(result, Rejection):
        assert result.reason.value in REASONS
        return
    assert text_problem(result.request_id, 256) is None and result.request_id.strip()
    assert text_problem(result.image, 2048) is None
    assert result.model_version is None or text_problem(result.model_version, 128) is None
    assert EARLIEST_TIMESTAMP <= result.captured_at < LATEST_TIMESTAMP
    assert result.captured_at.tzinfo is not None
    assert 0 < result.width * result.height <= 50_000_000
    assert result.latency_ms is None or math.isfinite(result.latency_ms)
    for inst in result.instances:
        assert 0.0 <= inst.score <= 1.0 and all(math.isfinite(v) for v in inst.bbox)
        assert (inst.mask.height, inst.mask.width) == (result.height, result.width)


def _as_text(value: Any) -> str:
    return json.dumps(value, allow_nan=True)


@settings(max_examples=FUZZ_EXAMPLES, deadline=None)
@given(json_values)
def test_fuzz_random_json_documents(value: Any) -> None:
    _check_outcome(parse_line(_as_text(value), CATEGORIES))


@settings(max_examples=FUZZ_EXAMPLES, deadline=None)
@given(mutated_lines())
def test_fuzz_lines_with_random_fields(line: dict[str, Any]) -> None:
    _check_outcome(parse_line(_as_text(line), CATEGORIES))


@settings(max_examples=FUZZ_EXAMPLES, deadline=None)
@given(st.text() | st.binary().map(lambda b: b.decode("utf-8", "replace")))
def test_fuzz_random_strings(text: str) -> None:
    _check_outcome(parse_line(text, CATEGORIES))


_ids = count()


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(line=mutated_lines())
def test_fuzz_lines_are_stored_or_quarantined_with_a_reason(
    sessions: sessionmaker[Session], line: dict[str, Any]
) -> None:
    """Through the database (SQLite and PostgreSQL): stored, or quarantined with a reason."""
    clock = ManualClock(datetime(2026, 11, 24, tzinfo=UTC))
    key = f"fuzz@{next(_ids)}"
    if isinstance(line.get("request_id"), str):
        line["request_id"] = f"{line['request_id']}-{key}"
    result = parse_line(_as_text(line), CATEGORIES)
    ingestor = Ingestor(sessions, "memory://fuzz", "samplelog", clock)
    ingestor.write([CheckedLine(key, result, None, {"f.jsonl": 1})])
    request_id = storable_key(result.request_id or key)
    with sessions() as session:
        stored = session.execute(
            select(Sample.status, Sample.quarantine_reason).where(Sample.request_id == request_id)
        ).one_or_none()
    assert stored is not None, f"line {line!r:.200} left no row"
    status, reason = stored
    assert status is SampleStatus.OK or reason in REASONS
