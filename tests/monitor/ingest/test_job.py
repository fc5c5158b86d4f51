from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fsspec
import pytest
from pycocotools import mask as mask_utils
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import ManualClock
from monitor.config import IngestSettings
from monitor.ingest.job import ingest_coco_results, ingest_log
from monitor.storage.schema import PredictedInstance, Sample, SampleStatus, Source
from tests.support.paths import REPO
from tests.support.samplelog import LogBuilder

CLOCK = ManualClock(datetime(2026, 11, 24, tzinfo=UTC))
SETTINGS = IngestSettings(batch_size=4)


def snapshot(sessions: sessionmaker[Session]) -> list[tuple[Any, ...]]:
    with sessions() as s:
        samples = s.execute(
            select(
                Sample.request_id, Sample.status, Sample.quarantine_reason, Sample.captured_at
            ).order_by(Sample.request_id)
        ).all()
        instances = s.execute(
            select(Sample.request_id, PredictedInstance.category_id, PredictedInstance.rle_counts)
            .join(Sample)
            .order_by(Sample.request_id, PredictedInstance.id)
        ).all()
    return [tuple(r) for r in samples] + [tuple(r) for r in instances]


def test_ingest_stores_samples_and_masks(
    sessions: sessionmaker[Session], log_builder: LogBuilder
) -> None:
    lines = [log_builder.line() for _ in range(10)]
    log_builder.write(lines)
    report = ingest_log(sessions, str(log_builder.root), SETTINGS, CLOCK)
    assert (report.lines, report.ingested, report.instances, report.duplicates) == (10, 10, 20, 0)
    with sessions() as s:
        sample = s.scalars(select(Sample).where(Sample.request_id == "r-000003")).one()
        assert sample.status is SampleStatus.OK
        assert sample.captured_at == datetime(2026, 11, 23, 0, 3, tzinfo=UTC)
        assert sample.width == log_builder.width and len(sample.image_sha256 or "") == 64
        stored = sorted(i.rle_counts for i in sample.instances)
    expected = sorted(inst["segmentation"]["counts"] for inst in lines[3]["instances"])
    assert stored == expected


def test_same_log_twice_leaves_same_rows(
    sessions: sessionmaker[Session], log_builder: LogBuilder
) -> None:
    log_builder.write([log_builder.line() for _ in range(9)])
    ingest_log(sessions, str(log_builder.root), SETTINGS, CLOCK)
    before = snapshot(sessions)
    again = ingest_log(sessions, str(log_builder.root), SETTINGS, CLOCK)
    assert again.lines == 0 and again.ingested == 0
    assert snapshot(sessions) == before


def test_appended_lines_are_the_only_new_rows(
    sessions: sessionmaker[Session], log_builder: LogBuilder
) -> None:
    log_builder.write([log_builder.line() for _ in range(5)])
    ingest_log(sessions, str(log_builder.root), SETTINGS, CLOCK)
    before = snapshot(sessions)
    log_builder.write([log_builder.line() for _ in range(3)])
    report = ingest_log(sessions, str(log_builder.root), SETTINGS, CLOCK)
    assert (report.lines, report.ingested) == (3, 3)
    after = snapshot(sessions)
    assert set(before) <= set(after)
    new_ids = {row[0] for row in set(after) - set(before)}
    assert new_ids == {"r-000005", "r-000006", "r-000007"}


def test_watermark_reset_does_not_duplicate(
    sessions: sessionmaker[Session], log_builder: LogBuilder
) -> None:
    """Even if the watermark is lost, (source, request_id) identity keeps one row per line."""
    log_builder.write([log_builder.line() for _ in range(6)])
    ingest_log(sessions, str(log_builder.root), SETTINGS, CLOCK)
    before = snapshot(sessions)
    with sessions.begin() as s:
        s.scalars(select(Source)).one().watermark = {}
    report = ingest_log(sessions, str(log_builder.root), SETTINGS, CLOCK)
    assert (report.lines, report.ingested, report.duplicates) == (6, 0, 6)
    assert snapshot(sessions) == before


def test_duplicate_request_in_one_file_is_stored_once(
    sessions: sessionmaker[Session], log_builder: LogBuilder
) -> None:
    line = log_builder.line()
    log_builder.write([line, line, log_builder.line()])
    report = ingest_log(sessions, str(log_builder.root), SETTINGS, CLOCK)
    assert (report.ingested, report.duplicates) == (2, 1)


def test_unfinished_last_line_waits_for_the_next_run(
    sessions: sessionmaker[Session], log_builder: LogBuilder
) -> None:
    path = log_builder.write([log_builder.line()])
    partial = json.dumps(log_builder.line())
    with path.open("a") as handle:
        handle.write(partial[:40])
    assert ingest_log(sessions, str(log_builder.root), SETTINGS, CLOCK).lines == 1
    with path.open("a") as handle:
        handle.write(partial[40:] + "\n")
    report = ingest_log(sessions, str(log_builder.root), SETTINGS, CLOCK)
    assert (report.lines, report.ingested, sum(report.quarantined.values())) == (1, 1, 0)


def _rle(counts: str, size: list[int]) -> dict[str, Any]:
    return {"size": size, "counts": counts}


def bad_lines(b: LogBuilder) -> dict[str, dict[str, Any] | str]:
    """One line per kind of bad input, keyed by the reason it must be quarantined with."""
    size = [b.height, b.width]

    def with_instance(i: int, **changes: Any) -> dict[str, Any]:
        line = b.line(i)
        line["instances"][0].update(changes)
        return line

    missing_image = b.line(102)
    missing_image["image"] = "images/nowhere.png"
    unreadable = b.line(103)
    (b.root / "images" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    unreadable["image"] = "images/broken.png"
    return {
        "malformed_json": '{"request_id": "r-000100", "captured_at": ',
        "invalid_timestamp": b.line(101, captured_at="yesterday"),
        "image_missing": missing_image,
        "image_unreadable": unreadable,
        "image_size_mismatch": b.line(104, n_instances=0, width=b.width + 1),
        "mask_size_mismatch": with_instance(105, segmentation=_rle("0?", [b.height + 1, b.width])),
        "unknown_category": with_instance(106, category_id=99),
        "invalid_score": with_instance(107, score=float("nan")),
        "invalid_rle": with_instance(108, segmentation=_rle("0", size)),
        "invalid_polygon": with_instance(109, segmentation=[[1.0, 2.0, 3.0, 4.0]]),
        "invalid_record": b.line(110, instances="none"),
    }


def test_each_bad_input_is_quarantined_with_its_reason(
    sessions: sessionmaker[Session], log_builder: LogBuilder
) -> None:
    good = [log_builder.line(i) for i in range(3)]
    bad = bad_lines(log_builder)
    out_of_range = log_builder.line(111)
    out_of_range["instances"][0]["score"] = 1.5
    log_builder.write([good[0], *bad.values(), good[1], out_of_range, good[2]])
    report = ingest_log(sessions, str(log_builder.root), SETTINGS, CLOCK)
    assert report.ingested == 3
    expected = {reason: 1 for reason in bad}
    expected["invalid_score"] = 2
    assert dict(report.quarantined) == expected
    with sessions() as s:
        rows = s.execute(
            select(
                Sample.request_id, Sample.quarantine_reason, Sample.raw, Sample.quarantine_detail
            ).where(Sample.status == SampleStatus.QUARANTINED)
        ).all()
        ok = set(s.scalars(select(Sample.request_id).where(Sample.status == SampleStatus.OK)))
    assert ok == {"r-000000", "r-000001", "r-000002"}
    by_id = {r.request_id: r for r in rows}
    assert by_id["r-000106"].quarantine_reason == "unknown_category"
    assert "99" in by_id["r-000106"].quarantine_detail
    assert by_id["r-000108"].quarantine_reason == "invalid_rle"
    # nothing is lost: the original line is kept (the malformed one has no id of its own)
    malformed = [r for r in rows if r.quarantine_reason == "malformed_json"]
    assert malformed[0].raw == bad["malformed_json"] and malformed[0].request_id.startswith(
        "samples.jsonl@"
    )


def test_ingest_reads_fsspec_memory_urls(
    sessions: sessionmaker[Session], log_builder: LogBuilder
) -> None:
    fs = fsspec.filesystem("memory")
    lines = [log_builder.line() for _ in range(4)]
    fs.pipe("/prod-log/day1.jsonl", ("\n".join(json.dumps(x) for x in lines) + "\n").encode())
    for line in lines:
        fs.pipe(f"/prod-log/{line['image']}", (log_builder.root / line["image"]).read_bytes())
    fs.pipe("/prod-log/day2.jsonl", (json.dumps(log_builder.line()) + "\n").encode())
    try:
        report = ingest_log(sessions, "memory://prod-log", SETTINGS, CLOCK)
        assert (report.files, report.ingested, dict(report.quarantined)) == (
            2,
            4,
            {"image_missing": 1},
        )
        with sessions() as s:
            uris = set(s.scalars(select(Sample.image_uri).where(Sample.status == SampleStatus.OK)))
        assert all(u is not None and u.startswith("memory://") for u in uris)
        assert ingest_log(sessions, "memory://prod-log", SETTINGS, CLOCK).lines == 0
    finally:
        fs.rm("/prod-log", recursive=True)


def test_missing_log_is_a_clear_error(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    with pytest.raises(LookupError, match="nowhere"):
        ingest_log(sessions, str(tmp_path / "nowhere"), SETTINGS, CLOCK)


def test_coco_results_with_images_json(
    sessions: sessionmaker[Session], log_builder: LogBuilder, tmp_path: Path
) -> None:
    lines = [log_builder.line() for _ in range(3)]
    images = [
        {
            "id": 10 + i,
            "file_name": f"images/{x['request_id']}.png",
            "width": x["width"],
            "height": x["height"],
            "date_captured": x["captured_at"],
        }
        for i, x in enumerate(lines)
    ]
    results = [{"image_id": 10 + i, **inst} for i, x in enumerate(lines) for inst in x["instances"]]
    results.append({"image_id": 99, **lines[0]["instances"][0]})  # no such image
    (tmp_path / "results.json").write_text(json.dumps(results))
    (log_builder.root / "images.json").write_text(json.dumps({"images": images}))
    args = (
        sessions,
        str(tmp_path / "results.json"),
        str(log_builder.root / "images.json"),
        None,
        SETTINGS,
        CLOCK,
    )
    report = ingest_coco_results(*args, model_version="prod-x")
    assert (report.ingested, report.instances, dict(report.quarantined)) == (
        3,
        6,
        {"invalid_record": 1},
    )
    again = ingest_coco_results(*args, model_version="prod-x")
    assert (again.ingested, again.duplicates) == (0, 4)
    with sessions() as s:
        areas = s.scalars(select(PredictedInstance.area).order_by(PredictedInstance.id)).all()
    expected = [
        int(
            mask_utils.area(
                {
                    "size": inst["segmentation"]["size"],
                    "counts": inst["segmentation"]["counts"].encode(),
                }
            )
        )
        for x in lines
        for inst in x["instances"]
    ]
    assert areas == expected


INGEST_SCRIPT = """
import sys
from datetime import UTC, datetime
from monitor.clock import SystemClock
from monitor.config import IngestSettings
from monitor.storage.engine import make_engine, session_factory
from monitor.ingest.job import ingest_log
sessions = session_factory(make_engine(sys.argv[1]))
ingest_log(sessions, sys.argv[2], IngestSettings(batch_size=int(sys.argv[3]), verify_images=False), SystemClock())
"""


def test_kill_9_mid_ingest_then_rerun_loses_and_duplicates_nothing(
    database_url: str, engine: Engine, sessions: sessionmaker[Session], log_builder: LogBuilder
) -> None:
    total = 1500
    log_builder.write([log_builder.line(i, n_instances=1) for i in range(total)])
    script = [sys.executable, "-c", INGEST_SCRIPT, database_url, str(log_builder.root), "20"]
    proc = subprocess.Popen(script, env={**os.environ, "PYTHONPATH": str(REPO)})
    deadline = time.monotonic() + 120
    stored = 0
    try:
        while time.monotonic() < deadline and proc.poll() is None:  # bounded wait
            with sessions() as s:
                stored = s.scalar(select(func.count()).select_from(Sample)) or 0
            if stored >= 100:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "ingest finished before it could be killed; make the log longer"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    with sessions() as s:
        partial = s.scalar(select(func.count()).select_from(Sample)) or 0
    assert 100 <= partial < total
    rerun = subprocess.run(
        script,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=300,
    )
    assert rerun.returncode == 0
    with sessions() as s:
        ids = s.scalars(select(Sample.request_id)).all()
        n_instances = s.scalar(select(func.count()).select_from(PredictedInstance))
    assert len(ids) == len(set(ids)) == total
    assert set(ids) == {f"r-{i:06d}" for i in range(total)}
    assert n_instances == total
