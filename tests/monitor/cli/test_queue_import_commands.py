"""``segmon queue import`` / ``queue review`` on the user's path, on a fresh database.

init -> ingest a sample log -> (queue items exported: written directly, the export has
its own tests) -> queue import --json of a COCO file the annotators returned ->
evaluate --holdout labelled-production --json (SQLite and PostgreSQL).
"""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from monitor.masks import decode_mask
from monitor.storage.engine import make_engine, session_factory
from monitor.storage.schema import PredictedInstance, QueueItem, QueueState, Sample
from tests.monitor.cli.test_quality_commands import ok, segmon
from tests.support.queue_items import QueueRows, export_image, returned_coco
from tests.support.samplelog import LogBuilder


def test_init_ingest_queue_import_evaluate_json(
    tmp_path: Path, database_url: str, log_builder: LogBuilder
) -> None:
    log_builder.write([log_builder.line(n_instances=2) for _ in range(3)])
    ok(segmon(tmp_path, database_url, "init", "--json"))
    assert (
        ok(segmon(tmp_path, database_url, "ingest", str(log_builder.root), "--json"))["ingested"]
        == 3
    )
    engine = make_engine(database_url)
    try:
        sessions = session_factory(engine)
        with sessions.begin() as session:
            rows = QueueRows(session, tmp_path)
            batch = rows.batch("coco", 3)
            samples = session.scalars(select(Sample).order_by(Sample.id)).all()
            items = [rows.item(s, batch) for s in samples]
            # The annotators confirm production's masks on every image.
            returned = []
            for item, sample in zip(items, samples, strict=True):
                production = [
                    (p.category_id, decode_mask(p.rle_counts, 24, 32))
                    for p in session.scalars(
                        select(PredictedInstance).where(PredictedInstance.sample_id == sample.id)
                    )
                ]
                returned.append(export_image(item.id, f"{sample.request_id}.png", production))
            item_ids = [i.id for i in items]
    finally:
        engine.dispose()
    coco = tmp_path / "returned.json"
    coco.write_text(json.dumps(returned_coco(returned)))

    doc = ok(
        segmon(
            tmp_path, database_url, "queue", "import", str(coco), "--format", "coco",
            "--annotator", "alice", "--json",
        )
    )  # fmt: skip
    assert doc["labeled"] == sorted(item_ids) and doc["instances"] == 6
    assert doc["flagged"] == {} and doc["closed_batches"] == [batch.id]
    assert doc["reference_model"] is not None  # the bundled reference reviewed them
    again = ok(
        segmon(tmp_path, database_url, "queue", "import", str(coco), "--format", "coco", "--json")
    )
    assert again["labeled"] == [] and again["unchanged"] == sorted(item_ids)

    result = ok(segmon(tmp_path, database_url, "evaluate", "--labelled", "--json"))
    assert result["holdout"] == "labelled-production"
    [only] = result["results"]
    assert (only["model_version"], only["images"]) == ("prod-2026.11.1", 3)
    assert only["coco"]["AP"] == 1.0 and only["recall"] == 1.0

    engine = make_engine(database_url)
    try:
        with session_factory(engine)() as session:
            states = set(session.scalars(select(QueueItem.state)))
    finally:
        engine.dispose()
    assert states == {QueueState.LABELED}


def test_errors_are_one_line_naming_the_value(tmp_path: Path, database_url: str) -> None:
    ok(segmon(tmp_path, database_url, "init", "--json"))
    coco = tmp_path / "returned.json"
    coco.write_text(json.dumps(returned_coco([export_image(41, "lost.png", [])])))
    bad = segmon(
        tmp_path, database_url, "queue", "import", str(coco), "--format", "coco", "--no-review"
    )
    assert bad.returncode == 2
    assert bad.stderr.strip() == "error: image 'lost.png' (queue item 41): no queue item 41 exists"
    fmt = segmon(tmp_path, database_url, "queue", "import", str(coco), "--format", "yolo")
    assert (
        fmt.returncode == 2 and "--format 'yolo': use one of coco, labelstudio, cvat" in fmt.stderr
    )
    review = segmon(tmp_path, database_url, "queue", "review", "41", "--accept")
    assert review.returncode == 2 and review.stderr.strip() == "error: no queue item 41"
