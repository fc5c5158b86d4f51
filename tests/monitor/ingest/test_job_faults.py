"""The ingest fault suite of issue 15 (items 1-4), on SQLite and PostgreSQL.

No input stalls a log: every hostile line is quarantined with its reason while the good
lines around it are stored and the watermark advances; image references cannot leave
the log's folder, open a FIFO or a device, or decode a huge image; and nothing is
silently lost or duplicated (rotation, two spellings of one log, corrected lines).
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import ManualClock
from monitor.config import IngestSettings
from monitor.images import ImageAccess
from monitor.ingest.job import ingest_log
from monitor.ingest.quarantine import list_quarantined, list_replaced
from monitor.ingest.samplelog import parse_line
from monitor.ingest.store import CheckedLine, Ingestor
from monitor.storage.schema import PredictedInstance, Sample, Source
from tests.support.hostile import hostile_lines, write_png_claiming
from tests.support.samplelog import LogBuilder

CLOCK = ManualClock(datetime(2026, 11, 24, tzinfo=UTC))
SETTINGS = IngestSettings(batch_size=4)


def statuses(sessions: sessionmaker[Session]) -> dict[str, tuple[str, str | None]]:
    with sessions() as s:
        rows = s.execute(select(Sample.request_id, Sample.status, Sample.quarantine_reason))
        return {rid: (status.value, reason) for rid, status, reason in rows}


def watermark(sessions: sessionmaker[Session]) -> dict[str, Any]:
    with sessions() as s:
        return dict(s.scalars(select(Source)).one().watermark)


def test_no_hostile_line_stalls_the_log(
    sessions: sessionmaker[Session], log_builder: LogBuilder
) -> None:
    good = [log_builder.line(i) for i in range(6)]
    cases = hostile_lines(log_builder)
    lines: list[dict[str, Any] | str] = []
    for k, (line, _) in enumerate(cases.values()):
        lines += [line, good[k % len(good)]] if k < len(good) else [line]
    path = log_builder.write(lines)
    report = ingest_log(sessions, str(log_builder.root), SETTINGS, CLOCK)

    expected: dict[str, int] = {}
    for _, reason in cases.values():
        expected[reason] = expected.get(reason, 0) + 1
    assert dict(report.quarantined) == expected
    assert (report.ingested, report.lines) == (6, len(lines))
    rows = statuses(sessions)
    assert {rid for rid, (st, _) in rows.items() if st == "ok"} == {
        line["request_id"] for line in good
    }
    assert len(rows) == len(lines)
    # the watermark is past the last line: a rerun reads nothing and stores nothing new
    mark = watermark(sessions)["samples.jsonl"]
    assert mark["offset"] == path.stat().st_size
    again = ingest_log(sessions, str(log_builder.root), SETTINGS, CLOCK)
    assert (again.lines, again.ingested, sum(again.quarantined.values())) == (0, 0, 0)
    # hostile request ids are stored under the line's file@offset key, the line kept whole
    with sessions() as s:
        quarantined = list_quarantined(s, limit=100)
    raws = {q.raw for q in quarantined}
    for line, _ in cases.values():
        text = line if isinstance(line, str) else json.dumps(line)
        assert text in raws


def test_a_database_refusal_sets_one_line_aside_not_the_batch(
    sessions: sessionmaker[Session], log_builder: LogBuilder
) -> None:
    """A value the checks did not foresee (here: a record forced past them) costs one line."""
    lines = [parse_line(json.dumps(log_builder.line(i)), frozenset({1, 2, 3, 4})) for i in range(3)]
    sneaky = parse_line(json.dumps(log_builder.line(3)), frozenset({1, 2, 3, 4}))
    object.__setattr__(sneaky, "width", 2**70)  # past the validator: no column holds it
    ingestor = Ingestor(sessions, "memory://refusal", "samplelog", CLOCK)
    checked = [
        CheckedLine(f"f@{k}", item, None, {"f.jsonl": k + 1})
        for k, item in enumerate([lines[0], sneaky, lines[1], lines[2]])
    ]
    ingestor.write(checked)
    rows = statuses(sessions)
    assert {rid for rid, (st, _) in rows.items() if st == "ok"} == {
        "r-000000",
        "r-000001",
        "r-000002",
    }
    assert rows["r-000003"] == ("quarantined", "internal_error")
    assert len(rows) == 4
    with sessions() as s:
        detail = s.scalar(select(Sample.quarantine_detail).where(Sample.request_id == "r-000003"))
    assert detail is not None and ("Overflow" in detail or "DataError" in detail), detail
    assert ingestor.watermark == {"f.jsonl": 4}


def test_image_references_are_confined_and_bounded(
    sessions: sessionmaker[Session], log_builder: LogBuilder, tmp_path: Path
) -> None:
    root = log_builder.root
    outside = tmp_path / "outside.png"
    shutil.copyfile(root / log_builder.line(0)["image"], outside)
    (root / "images" / "escape.png").symlink_to(outside)
    os.mkfifo(root / "images" / "fifo.png")
    write_png_claiming(root / "images" / "huge.png", 30000, 30000)
    cases = {
        "r-000001": ("../outside.png", "image_forbidden"),
        "r-000002": (str(outside), "image_forbidden"),
        "r-000003": ("images/escape.png", "image_forbidden"),
        "r-000004": ("images/fifo.png", "image_forbidden"),
        "r-000005": ("/dev/zero", "image_forbidden"),
        "r-000006": ("images/huge.png", "image_too_large"),
        "r-000007": ("images", "image_forbidden"),
    }
    lines = [log_builder.line(0)] + [
        log_builder.line(int(rid[2:]), image=image) for rid, (image, _) in cases.items()
    ]
    log_builder.write(lines)
    report = ingest_log(sessions, str(root), SETTINGS, CLOCK)
    rows = statuses(sessions)
    assert rows["r-000000"] == ("ok", None)
    assert {rid: rows[rid][1] for rid in cases} == {rid: r for rid, (_, r) in cases.items()}
    assert report.ingested == 1
    with sessions() as s:
        hashed = s.scalars(
            select(Sample.image_sha256).where(Sample.request_id.in_(["r-000001", "r-000002"]))
        ).all()
    assert hashed == [None, None]  # a host file outside the log is never read nor hashed
    # an allow-list opens exactly the folders it names
    allowed = ImageAccess(allowed_roots=(str(tmp_path),))
    log_builder.write([log_builder.line(8, image=str(outside))], name="more.jsonl")
    ingest_log(sessions, str(root), SETTINGS, CLOCK, access=allowed)
    assert statuses(sessions)["r-000008"] == ("ok", None)


def test_a_rotated_log_larger_than_the_watermark_is_read_from_its_start(
    sessions: sessionmaker[Session], log_builder: LogBuilder
) -> None:
    path = log_builder.write([log_builder.line(i) for i in range(3)])
    ingest_log(sessions, str(log_builder.root), SETTINGS, CLOCK)
    old_size = path.stat().st_size
    path.rename(log_builder.root / "samples.jsonl.1")  # rotated away (not *.jsonl)
    log_builder.write([log_builder.line(i) for i in range(10, 20)])
    assert path.stat().st_size > old_size
    report = ingest_log(sessions, str(log_builder.root), SETTINGS, CLOCK)
    assert (report.lines, report.ingested) == (10, 10)
    assert report.file_events["samples.jsonl"].startswith("read again from the start: replaced")
    assert len(statuses(sessions)) == 13


def test_a_log_rewritten_in_place_is_read_from_its_start(
    sessions: sessionmaker[Session], log_builder: LogBuilder
) -> None:
    """Same inode, new content (copy-truncate rotation): the head fingerprint sees it."""
    path = log_builder.write([log_builder.line(i) for i in range(3)])
    ingest_log(sessions, str(log_builder.root), SETTINGS, CLOCK)
    inode = path.stat().st_ino
    log_builder.write([log_builder.line(i) for i in range(30, 42)], mode="w")
    assert path.stat().st_ino == inode
    report = ingest_log(sessions, str(log_builder.root), SETTINGS, CLOCK)
    assert (report.lines, report.ingested) == (12, 12)
    assert "rewritten" in report.file_events["samples.jsonl"]


def test_two_spellings_of_one_log_are_one_source(
    sessions: sessionmaker[Session],
    log_builder: LogBuilder,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log_builder.write([log_builder.line(i) for i in range(4)])
    root = log_builder.root
    monkeypatch.chdir(tmp_path)
    link = tmp_path / "current"
    link.symlink_to(root)
    spellings = [
        str(root),
        str(root) + "/",
        str(root / "samples.jsonl"),
        os.path.relpath(root, tmp_path),
        "./log/../log/samples.jsonl",
        str(link),
    ]
    reports = [ingest_log(sessions, spelling, SETTINGS, CLOCK) for spelling in spellings]
    assert [r.ingested for r in reports] == [4, 0, 0, 0, 0, 0]
    assert {r.source for r in reports} == {str(root)}
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Source)) == 1
        assert s.scalar(select(func.count()).select_from(Sample)) == 4


def test_a_corrected_line_replaces_the_quarantined_one(
    sessions: sessionmaker[Session], log_builder: LogBuilder
) -> None:
    bad = log_builder.line(1, captured_at="yesterday")
    log_builder.write([log_builder.line(0), bad])
    ingest_log(sessions, str(log_builder.root), SETTINGS, CLOCK)
    assert statuses(sessions)["r-000001"] == ("quarantined", "invalid_timestamp")
    fixed = log_builder.line(1)
    log_builder.write([fixed, log_builder.line(0)])  # the correction, and a true duplicate
    report = ingest_log(sessions, str(log_builder.root), SETTINGS, CLOCK)
    assert (report.ingested, report.replaced, report.duplicates) == (1, 1, 1)
    assert statuses(sessions)["r-000001"] == ("ok", None)
    with sessions() as s:
        n = s.scalar(
            select(func.count())
            .select_from(PredictedInstance)
            .join(Sample)
            .where(Sample.request_id == "r-000001")
        )
        history = list_replaced(s)
        current = list_quarantined(s)
    assert n == len(fixed["instances"])
    assert [(h.request_id, h.reason, h.raw) for h in history] == [
        ("r-000001", "invalid_timestamp", json.dumps(bad))
    ]
    assert current == []
    # a correction in the same batch as the bad line replaces it too
    bad_score = log_builder.line(2)
    bad_score["instances"][0]["score"] = 2.0
    log_builder.write([bad_score, log_builder.line(2)], name="b.jsonl")
    again = ingest_log(sessions, str(log_builder.root), SETTINGS, CLOCK)
    assert (again.ingested, again.replaced) == (1, 1)
    assert statuses(sessions)["r-000002"] == ("ok", None)
    with sessions() as s:
        assert {h.reason for h in list_replaced(s)} == {
            "invalid_timestamp",
            "invalid_score",
        }


def test_an_image_swapped_for_a_huge_one_after_ingest_is_quarantined_by_drift(
    sessions: sessionmaker[Session], log_builder: LogBuilder
) -> None:
    from monitor.drift.properties import fill_image_properties

    log_builder.write([log_builder.line(i) for i in range(2)])
    ingest_log(sessions, str(log_builder.root), SETTINGS, CLOCK)
    write_png_claiming(log_builder.root / "images" / "r-000001.png", 30000, 30000)
    report = fill_image_properties(sessions, CLOCK)
    assert (report.computed, dict(report.quarantined)) == (1, {"image_too_large": 1})
    assert statuses(sessions)["r-000001"] == ("quarantined", "image_too_large")
    assert fill_image_properties(sessions, CLOCK).computed == 0  # not retried forever


def test_a_fifo_named_like_a_log_file_is_skipped_not_read(
    sessions: sessionmaker[Session], log_builder: LogBuilder
) -> None:
    """Opening a FIFO blocks until a writer comes: a log's files must be regular files."""
    log_builder.write([log_builder.line(0)])
    os.mkfifo(log_builder.root / "blocked.jsonl")
    report = ingest_log(sessions, str(log_builder.root), SETTINGS, CLOCK)
    assert (report.files, report.ingested) == (1, 1)
    assert report.file_events == {"blocked.jsonl": "skipped: not a regular file"}


def test_a_resolved_image_path_longer_than_its_column_is_quarantined(
    sessions: sessionmaker[Session], log_builder: LogBuilder
) -> None:
    """The reference fits its 2048 characters, the log's folder plus it does not."""
    reference = "images/" + "x/" * 1018 + "a.png"
    assert len(reference) == 2048
    log_builder.write([log_builder.line(0), log_builder.line(1, image=reference)])
    ingest_log(sessions, str(log_builder.root), SETTINGS, CLOCK)
    assert statuses(sessions) == {
        "r-000000": ("ok", None),
        "r-000001": ("quarantined", "image_missing"),
    }
    with sessions() as s:
        detail = s.scalar(select(Sample.quarantine_detail).where(Sample.request_id == "r-000001"))
    assert detail is not None and "more than 2048" in detail
