"""Export batches: the documents, the images, and exactly-once under concurrency and kill -9."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import ManualClock
from monitor.config import Settings
from monitor.queue.batchdir import LOCK_NAME, StagedBatch, remove_orphans
from monitor.queue.exporter import export_batch
from monitor.queue.fill import fill_queue
from monitor.storage.schema import PredictedInstance, QueueExportBatch, QueueItem, QueueState
from sampling.formats.cvat import parse_cvat_xml
from sampling.formats.labelstudio import brush_decode
from tests.support.paths import REPO
from tests.support.queue_scenes import NOW, Inst, QueueScenes, queue_settings

FORMATS = ("coco", "labelstudio", "cvat")


def document_items(path: Path, fmt: str) -> list[int]:
    """The queue item ids a batch document lists (CVAT: by the image file name)."""
    if fmt == "coco":
        return [int(image["id"]) for image in json.loads(path.read_text())["images"]]
    if fmt == "labelstudio":
        return [int(task["data"]["segmon_item_id"]) for task in json.loads(path.read_text())]
    return [
        int(Path(image.file_name).name.split("_")[0]) for image in parse_cvat_xml(path.read_text())
    ]


def fill(
    sessions: sessionmaker[Session], queue_scenes: QueueScenes, tmp_path: Path, n: int
) -> Settings:
    for k in range(n):
        queue_scenes.sample([Inst(1 + k % 4, 0.5 + (k % 10) / 25), Inst(2, 0.9)])
    settings = queue_settings(tmp_path, daily_budget=1000)
    assert fill_queue(sessions, settings, ManualClock(NOW)).n_queued == n
    return settings


def check_exactly_once(sessions: sessionmaker[Session], fmt: str, n: int) -> None:
    """Every item exported in exactly one committed batch whose file lists exactly it."""
    with sessions() as session:
        queued = session.scalars(
            select(QueueItem).where(QueueItem.state == QueueState.QUEUED)
        ).all()
        assert queued == []
        batches = session.scalars(select(QueueExportBatch)).all()
        seen: list[int] = []
        for batch in batches:
            members = sorted(
                session.scalars(select(QueueItem.id).where(QueueItem.export_batch_id == batch.id))
            )
            assert Path(batch.path).is_file(), batch.path
            assert sorted(document_items(Path(batch.path), fmt)) == members
            assert batch.n_items == len(members)
            assert not (Path(batch.path).parent / LOCK_NAME).exists()
            seen += members
        assert len(seen) == len(set(seen)) == n


@pytest.mark.parametrize("fmt", FORMATS)
def test_export_writes_the_top_items_with_their_predictions_and_images(
    sessions: sessionmaker[Session], queue_scenes: QueueScenes, tmp_path: Path, fmt: str
) -> None:
    settings = fill(sessions, queue_scenes, tmp_path, 3)
    with sessions() as session:
        ranked = list(
            session.scalars(select(QueueItem.id).order_by(QueueItem.priority.desc(), QueueItem.id))
        )
    report = export_batch(sessions, settings, ManualClock(NOW), fmt=fmt, limit=2)  # type: ignore[arg-type]
    assert report is not None and list(report.item_ids) == ranked[:2]
    path = Path(report.path)
    assert path.parent.name == f"batch-{report.batch_id:06d}-{fmt}"
    assert document_items(path, fmt) == ranked[:2]
    images = sorted((path.parent / "images").iterdir())
    assert len(images) == 2 and all(p.stat().st_size > 0 for p in images)
    assert report.n_masks == 4 and report.missing_images == ()
    if fmt == "labelstudio":
        assert "<BrushLabels" in (path.parent / "labeling_config.xml").read_text()
    with sessions() as session:
        items = {i.id: i for i in session.scalars(select(QueueItem))}
        assert {i for i, it in items.items() if it.state == QueueState.EXPORTED} == set(ranked[:2])
        assert {items[i].export_batch_id for i in ranked[:2]} == {report.batch_id}
        assert items[ranked[0]].exported_at == NOW
        stored = session.scalars(
            select(PredictedInstance.rle_counts)
            .where(PredictedInstance.sample_id == items[ranked[0]].sample_id)
            .order_by(PredictedInstance.id)
        ).all()
    # The pre-annotation is the production mask, bit for bit.
    masks = [mask_utils.decode({"size": [24, 24], "counts": c.encode()}) for c in stored]
    if fmt == "coco":
        doc = json.loads(path.read_text())
        first = [a for a in doc["annotations"] if a["image_id"] == ranked[0]]
        assert [a["segmentation"]["counts"] for a in first] == list(stored)
    elif fmt == "labelstudio":
        task = json.loads(path.read_text())[0]
        results = task["predictions"][0]["result"]
        assert task["predictions"][0]["score"] == pytest.approx(items[ranked[0]].priority)
        decoded = [brush_decode(r["value"]["rle"], 24, 24) for r in results]
        assert all(np.array_equal(d, m) for d, m in zip(decoded, masks, strict=True))
    second = export_batch(sessions, settings, ManualClock(NOW), fmt=fmt, limit=2)  # type: ignore[arg-type]
    assert second is not None and list(second.item_ids) == ranked[2:]
    assert export_batch(sessions, settings, ManualClock(NOW), fmt=fmt) is None  # type: ignore[arg-type]
    check_exactly_once(sessions, fmt, 3)


def test_images_linked_or_referenced_by_url(
    sessions: sessionmaker[Session], queue_scenes: QueueScenes, tmp_path: Path
) -> None:
    settings = fill(sessions, queue_scenes, tmp_path, 2)
    linked = export_batch(sessions, settings, ManualClock(NOW), fmt="coco", limit=1, images="link")
    assert linked is not None
    doc = json.loads(Path(linked.path).read_text())
    copy = Path(linked.path).parent / doc["images"][0]["file_name"]
    originals = {p.name: p for p in queue_scenes.image_dir.iterdir()}
    original = originals[copy.name.split("_", 1)[1]]
    assert os.path.samefile(copy, original)
    url_settings = queue_settings(
        tmp_path,
        export={
            "images": "url",
            "url_prefix": "https://img.example/x/",
            "url_root": str(queue_scenes.image_dir),
        },
    )
    by_url = export_batch(sessions, url_settings, ManualClock(NOW), fmt="labelstudio")
    assert by_url is not None
    task = json.loads(Path(by_url.path).read_text())[0]
    assert task["data"]["image"].startswith("https://img.example/x/img-")
    assert not any((Path(by_url.path).parent / "images").iterdir())


def test_concurrent_exports_never_hand_out_an_item_twice(
    sessions: sessionmaker[Session], queue_scenes: QueueScenes, tmp_path: Path
) -> None:
    settings = fill(sessions, queue_scenes, tmp_path, 24)
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def exporter() -> None:
        try:
            start.wait()
            while export_batch(sessions, settings, ManualClock(NOW), fmt="coco", limit=2):
                pass
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=exporter) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    check_exactly_once(sessions, "coco", 24)
    with sessions() as session:
        assert len(session.scalars(select(QueueExportBatch)).all()) == 12


_KILLED_EXPORT = """
import os, signal, sys
from pathlib import Path
from monitor.clock import ManualClock
from monitor.queue import batchdir, exporter as export
from monitor.storage.engine import make_engine, session_factory
from tests.support.queue_scenes import NOW, queue_settings

where, url, tmp = sys.argv[1], sys.argv[2], Path(sys.argv[3])
if where == "after_rename":
    publish = batchdir.StagedBatch.publish
    def killed(self, name):
        publish(self, name)
        os.kill(os.getpid(), signal.SIGKILL)
    batchdir.StagedBatch.publish = killed
else:
    write_file = export.write_file
    def killed_write(path, data):
        write_file(path, data)
        os.kill(os.getpid(), signal.SIGKILL)
    export.write_file = killed_write
sessions = session_factory(make_engine(url))
export.export_batch(sessions, queue_settings(tmp), ManualClock(NOW), fmt=sys.argv[4], limit=3)
"""


@pytest.mark.parametrize(
    ("where", "fmt"), [("after_rename", "cvat"), ("while_writing", "labelstudio")]
)
def test_export_killed_then_rerun_exports_every_item_exactly_once(
    database_url: str,
    sessions: sessionmaker[Session],
    queue_scenes: QueueScenes,
    tmp_path: Path,
    where: str,
    fmt: str,
) -> None:
    settings = fill(sessions, queue_scenes, tmp_path, 5)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = [sys.executable, "-c", _KILLED_EXPORT, where, database_url, str(tmp_path), fmt]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == -9, done.stderr
    with sessions() as session:
        assert session.scalars(select(QueueExportBatch)).all() == []
        states = set(session.scalars(select(QueueItem.state)))
        assert states == {QueueState.QUEUED}  # nothing was handed out
    left = [p.name for p in (tmp_path / "exports").iterdir()]
    assert len(left) == 1  # the killed attempt's folder: garbage
    first = export_batch(sessions, settings, ManualClock(NOW), fmt=fmt, limit=3)  # type: ignore[arg-type]
    assert first is not None and first.removed_orphans == tuple(left)
    while export_batch(sessions, settings, ManualClock(NOW), fmt=fmt, limit=3):  # type: ignore[arg-type]
        pass
    check_exactly_once(sessions, fmt, 5)
    names = sorted(p.name for p in (tmp_path / "exports").iterdir())
    with sessions() as session:
        committed = sorted(
            Path(p).parent.name for p in session.scalars(select(QueueExportBatch.path))
        )
    assert names == committed


_KILLED_FILL = """
import os, signal, sys
from pathlib import Path
from sqlalchemy.orm import Session
from monitor.clock import ManualClock
from monitor.queue.fill import fill_queue
from monitor.storage.engine import make_engine, session_factory
from monitor.storage.schema import QueueItem
from tests.support.queue_scenes import NOW, queue_settings

add = Session.add
seen = []
def killing_add(self, instance, *a, **k):
    add(self, instance, *a, **k)
    if isinstance(instance, QueueItem):
        seen.append(instance)
        if len(seen) == 3:
            self.flush()
            os.kill(os.getpid(), signal.SIGKILL)
Session.add = killing_add
sessions = session_factory(make_engine(sys.argv[1]))
fill_queue(sessions, queue_settings(Path(sys.argv[2]), daily_budget=1000), ManualClock(NOW))
"""


def test_fill_killed_midway_leaves_nothing_and_the_rerun_queues_each_once(
    database_url: str, sessions: sessionmaker[Session], queue_scenes: QueueScenes, tmp_path: Path
) -> None:
    for k in range(6):
        queue_scenes.sample([Inst(1, 0.5 + k / 20)])
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = [sys.executable, "-c", _KILLED_FILL, database_url, str(tmp_path)]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == -9, done.stderr
    with sessions() as session:
        assert session.scalars(select(QueueItem)).all() == []
    settings = queue_settings(tmp_path, daily_budget=1000)
    assert fill_queue(sessions, settings, ManualClock(NOW)).n_queued == 6
    while export_batch(sessions, settings, ManualClock(NOW), fmt="coco", limit=4):
        pass
    check_exactly_once(sessions, "coco", 6)


def test_orphan_cleanup_spares_a_folder_a_live_exporter_writes(tmp_path: Path) -> None:
    live = StagedBatch(tmp_path)
    dead = StagedBatch(tmp_path)
    dead_name = dead.publish("batch-000007-coco")
    dead._lock.close()  # type: ignore[union-attr]  # as if its process died: lock dropped
    dead._lock = None
    kept = StagedBatch(tmp_path)
    kept_dir = kept.publish("batch-000008-coco")
    kept.release()
    removed = remove_orphans(tmp_path, lambda: {"batch-000008-coco"})
    assert removed == [dead_name.name]
    assert live.path.exists() and kept_dir.exists() and not dead_name.exists()
    live.discard()
    assert not live.path.exists()


def test_a_staging_folder_published_during_the_orphan_sweep_is_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A concurrent exporter renames its staging folder to its batch name between the
    # sweep's listing and its look at the folder: the sweep skips it, it does not fail.
    staged = StagedBatch(tmp_path)
    staged.release()  # its lock file is gone, as after a publish and commit
    real_open = Path.open

    def renamed_away(self: Path, *args: object, **kwargs: object) -> object:
        if self.name == LOCK_NAME and self.parent == staged.path:
            os.replace(staged.path, tmp_path / "batch-000007-coco")
            raise FileNotFoundError(self)
        return real_open(self, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(Path, "open", renamed_away)
    assert remove_orphans(tmp_path, lambda: {"batch-000007-coco"}) == []
    assert (tmp_path / "batch-000007-coco").is_dir()


def test_a_sweep_while_an_exporter_creates_its_lock_leaves_the_folder_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another exporter's orphan sweep runs right after this one opened its lock file and
    # before it locked it (threads of one process: flock is per open file): the sweep
    # must not take the lock first and remove the live folder.
    real_open = Path.open
    swept: list[list[str]] = []

    def open_then_sweep(self: Path, *args: object, **kwargs: object) -> object:
        handle = real_open(self, *args, **kwargs)  # type: ignore[call-overload]
        if self.parent.name.startswith(".staging-") and not swept:
            swept.append(remove_orphans(tmp_path, set))
        return handle

    monkeypatch.setattr(Path, "open", open_then_sweep)
    staged = StagedBatch(tmp_path)  # locks its file: no BlockingIOError
    assert swept == [[]] and staged.path.is_dir()
    monkeypatch.setattr(Path, "open", real_open)
    assert remove_orphans(tmp_path, set) == []  # still held: left alone
    staged.discard()
