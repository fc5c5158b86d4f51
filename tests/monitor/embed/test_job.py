from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import ManualClock
from monitor.embed.job import embed_pending
from monitor.ingest.holdout import import_holdout
from monitor.masks import decode_mask
from monitor.storage.schema import (
    DatasetImage,
    GroundTruthInstance,
    ImageEmbedding,
    InstanceEmbedding,
    PredictedInstance,
    Sample,
    SampleStatus,
)
from monitor.storage.vectors import vectors_from_bytes
from tests.support.databases import MakeDatabase
from tests.support.hostile import write_png_claiming
from tests.support.model_scenes import FakeModel, ModelScenes, features, ingest

START = datetime(2026, 11, 24, tzinfo=UTC)


def load(sessions: sessionmaker[Session], scenes: ModelScenes, tmp_path: Path) -> None:
    """The scenes' sample log (production's simulated predictions) and holdout."""
    clock = ManualClock(START)
    log = tmp_path / "log"
    log.mkdir(parents=True, exist_ok=True)
    (log / "samples.jsonl").write_text((scenes.root / "samples.jsonl").read_text())
    shutil.copytree(scenes.root / "images", log / "images")  # a log's images lie inside it
    ingest(sessions, log, clock)
    import_holdout(
        sessions, scenes.root / "annotations.json", scenes.root / "images", "holdout", clock
    )


def snapshot(sessions: sessionmaker[Session]) -> list[tuple[Any, ...]]:
    """Every stored vector, keyed by what it belongs to (not by row id)."""
    with sessions() as s:
        images = s.execute(
            select(Sample.request_id, DatasetImage.file_name, ImageEmbedding.vector)
            .select_from(ImageEmbedding)
            .outerjoin(Sample, Sample.id == ImageEmbedding.sample_id)
            .outerjoin(DatasetImage, DatasetImage.id == ImageEmbedding.dataset_image_id)
            .order_by(Sample.request_id, DatasetImage.file_name)
        ).all()
        predicted = s.execute(
            select(Sample.request_id, PredictedInstance.rle_counts, InstanceEmbedding.vector)
            .join(
                PredictedInstance, PredictedInstance.id == InstanceEmbedding.predicted_instance_id
            )
            .join(Sample, Sample.id == PredictedInstance.sample_id)
            .order_by(Sample.request_id, PredictedInstance.rle_counts)
        ).all()
        labeled = s.execute(
            select(GroundTruthInstance.rle_counts, InstanceEmbedding.vector)
            .join(
                GroundTruthInstance,
                GroundTruthInstance.id == InstanceEmbedding.ground_truth_instance_id,
            )
            .order_by(GroundTruthInstance.rle_counts)
        ).all()
    return [tuple(r) for r in [*images, *predicted, *labeled]]


def rows(sessions: sessionmaker[Session]) -> list[tuple[Any, ...]]:
    with sessions() as s:
        return [
            *(tuple(r) for r in s.execute(select(ImageEmbedding.__table__).order_by("id"))),
            *(tuple(r) for r in s.execute(select(InstanceEmbedding.__table__).order_by("id"))),
            *(tuple(r) for r in s.execute(select(Sample.id, Sample.status).order_by(Sample.id))),
        ]


def test_embeddings_are_identical_across_databases_and_batch_sizes(
    make_db: MakeDatabase, model_scenes: ModelScenes, tmp_path: Path
) -> None:
    snapshots = []
    for name, batch_size in (("a", 2), ("b", 5)):
        sessions = make_db(name)
        load(sessions, model_scenes, tmp_path / name)
        report = embed_pending(sessions, FakeModel(), ManualClock(START), batch_size=batch_size)
        assert (report.samples, report.holdout_images) == (8, 8)
        snapshots.append(snapshot(sessions))
    assert snapshots[0] == snapshots[1]
    n_instances = sum(len(r["instances"]) for r in model_scenes.records)
    n_labels = sum(len(v) for v in model_scenes.labels.values())
    assert len(snapshots[0]) == 16 + n_instances + n_labels
    # the holdout images are the sampled images: equal bytes, one vector per image
    vectors = {row[-1] for row in snapshots[0][:16]}
    assert len(vectors) == 8


def test_rerun_embeds_nothing_and_changes_no_row(
    make_db: MakeDatabase, model_scenes: ModelScenes, tmp_path: Path
) -> None:
    sessions = make_db("db")
    load(sessions, model_scenes, tmp_path)
    clock = ManualClock(START)
    embed_pending(sessions, FakeModel(), clock, batch_size=3)
    before = rows(sessions)
    clock.advance(timedelta(hours=1))
    model = FakeModel()
    again = embed_pending(sessions, model, clock, batch_size=3)
    assert again.counts() == {
        "embedder": model.name,
        "samples": 0,
        "sample_instances": 0,
        "holdout_images": 0,
        "holdout_instances": 0,
        "quarantined": {},
        "holdout_unreadable": {},
        "holdout_without_pixels": 0,
        "executor": {
            "kind": "local",
            "address": None,
            "workers": 1,
            "threads": 1,
            "in_flight": 0,
            "retries": 0,
            "batches": 0,
        },
    }
    assert model.calls == 0 and rows(sessions) == before
    # another embedder is a separate set of vectors
    other = embed_pending(sessions, FakeModel(name="other"), clock)
    assert (other.samples, other.holdout_images) == (8, 8)


def test_limit_spreads_the_work_over_runs(
    make_db: MakeDatabase, model_scenes: ModelScenes, tmp_path: Path
) -> None:
    sessions = make_db("db")
    load(sessions, model_scenes, tmp_path)
    seen = []
    first = embed_pending(
        sessions,
        FakeModel(),
        ManualClock(START),
        batch_size=4,
        limit=10,
        progress=lambda d, t: seen.append((d, t)),
    )
    assert (first.samples, first.holdout_images) == (8, 2)
    assert seen == [(4, 10), (8, 10), (10, 10)]
    second = embed_pending(sessions, FakeModel(), ManualClock(START), limit=10)
    assert (second.samples, second.holdout_images) == (0, 6)


def test_vectors_are_the_models_output_for_the_right_instances(
    make_db: MakeDatabase, model_scenes: ModelScenes, tmp_path: Path
) -> None:
    sessions = make_db("db")
    load(sessions, model_scenes, tmp_path)
    model = FakeModel()
    embed_pending(sessions, model, ManualClock(START), batch_size=3)
    with sessions() as s:
        checked = 0
        for sample in s.scalars(select(Sample)):
            image = model_scenes.image(Path(sample.image_uri or "").name)
            stored = s.execute(
                select(ImageEmbedding.dim, ImageEmbedding.vector).where(
                    ImageEmbedding.sample_id == sample.id
                )
            ).one()
            expected = features(image, np.ones(image.shape[:2], dtype=bool))
            assert stored.dim == model.embedding_dim
            assert vectors_from_bytes([stored.vector], stored.dim)[0].tolist() == (
                expected.astype(np.float16).astype(np.float32).tolist()
            )
            for inst in sample.instances:
                row = s.execute(
                    select(InstanceEmbedding).where(
                        InstanceEmbedding.predicted_instance_id == inst.id
                    )
                ).scalar_one()
                mask = decode_mask(inst.rle_counts, image.shape[0], image.shape[1])
                want = features(image, mask).astype(np.float16)
                assert row.vector == want.tobytes() and row.category_id == inst.category_id
                checked += 1
        for gt in s.scalars(select(GroundTruthInstance)):
            row = s.execute(
                select(InstanceEmbedding).where(InstanceEmbedding.ground_truth_instance_id == gt.id)
            ).scalar_one()
            image = model_scenes.image(gt.image.file_name)
            mask = decode_mask(gt.rle_counts, gt.image.height, gt.image.width)
            assert row.vector == features(image, mask).astype(np.float16).tobytes()
            assert row.category_id == gt.category_id
            checked += 1
    assert checked == sum(len(r["instances"]) for r in model_scenes.records) + sum(
        len(v) for v in model_scenes.labels.values()
    )


def test_unreadable_image_is_quarantined_and_the_others_embedded(
    make_db: MakeDatabase, model_scenes: ModelScenes, tmp_path: Path
) -> None:
    sessions = make_db("db")
    log = model_scenes.write_log(tmp_path / "log", lambda labels: labels)
    images = log / "images"  # the log's own copies: break two of them after ingest
    ingest(sessions, log, ManualClock(START))
    (images / "r-000001.png").write_bytes(b"not a png at all")
    (images / "r-000003.png").unlink()

    report = embed_pending(sessions, FakeModel(), ManualClock(START), batch_size=3)
    assert report.samples == 6
    assert report.counts()["quarantined"] == {"image_missing": 1, "image_unreadable": 1}
    with sessions() as s:
        bad = s.execute(
            select(Sample.request_id, Sample.status, Sample.quarantine_reason)
            .where(Sample.status == SampleStatus.QUARANTINED)
            .order_by(Sample.request_id)
        ).all()
        embedded = set(
            s.scalars(
                select(Sample.request_id).join(
                    ImageEmbedding, ImageEmbedding.sample_id == Sample.id
                )
            )
        )
        detail = s.scalar(select(Sample.quarantine_detail).where(Sample.request_id == "r-000003"))
    assert [tuple(r) for r in bad] == [
        ("r-000001", SampleStatus.QUARANTINED, "image_unreadable"),
        ("r-000003", SampleStatus.QUARANTINED, "image_missing"),
    ]
    assert embedded == {f"r-{i:06d}" for i in (0, 2, 4, 5, 6, 7)}
    assert detail is not None and detail.startswith("embed: ") and "r-000003.png" in detail
    again = embed_pending(sessions, FakeModel(), ManualClock(START))
    assert (again.samples, again.counts()["quarantined"]) == (0, {})


def test_embed_on_every_database(
    sessions: sessionmaker[Session], model_scenes: ModelScenes, tmp_path: Path
) -> None:
    """SQLite and PostgreSQL: stored bytes equal the model's float16 output; reruns add nothing."""
    load(sessions, model_scenes, tmp_path)
    model = FakeModel()
    report = embed_pending(sessions, model, ManualClock(START), batch_size=4)
    assert (report.samples, report.holdout_images) == (8, 8)
    with sessions() as s:
        stored = s.execute(
            select(DatasetImage.file_name, ImageEmbedding.vector).join(
                ImageEmbedding, ImageEmbedding.dataset_image_id == DatasetImage.id
            )
        ).all()
    for file_name, vector in stored:
        image = model_scenes.image(file_name)
        full = np.ones(image.shape[:2], dtype=bool)
        assert vector == features(image, full).astype(np.float16).tobytes()
    before = snapshot(sessions)
    assert embed_pending(sessions, model, ManualClock(START)).samples == 0
    assert snapshot(sessions) == before


def test_an_image_swapped_for_a_huge_one_after_ingest_is_quarantined(
    make_db: MakeDatabase, model_scenes: ModelScenes, tmp_path: Path
) -> None:
    """A 30000 x 30000 PNG (header only) swapped in: quarantined, the others embedded."""
    sessions = make_db("db")
    log = model_scenes.write_log(tmp_path / "log", lambda labels: labels)
    ingest(sessions, log, ManualClock(START))
    write_png_claiming(log / "images" / "r-000002.png", 30000, 30000)
    report = embed_pending(sessions, FakeModel(), ManualClock(START), batch_size=3)
    assert report.samples == 7
    assert report.counts()["quarantined"] == {"image_too_large": 1}
    with sessions() as s:
        assert s.execute(
            select(Sample.request_id, Sample.quarantine_reason).where(
                Sample.status == SampleStatus.QUARANTINED
            )
        ).all() == [("r-000002", "image_too_large")]
    again = embed_pending(sessions, FakeModel(), ManualClock(START))
    assert (again.samples, again.counts()["quarantined"]) == (0, {})  # not retried forever


def test_large_images_and_their_masks_are_shrunk_for_the_model(tmp_path: Path) -> None:
    """Memory per image is bounded by the model's input: image and masks shrink together."""
    from PIL import Image

    from monitor.embed.tasks import ImageTask, StoredMask, load_image, max_side
    from monitor.masks import encode_mask

    path = tmp_path / "big.png"
    Image.new("RGB", (1100, 700), (5, 6, 7)).save(path)
    mask = np.zeros((700, 1100), bool)
    mask[100:103, 200:202] = True  # a 3 x 2 object: it must survive the shrinking
    task = ImageTask(1, str(path), 700, 1100, (StoredMask(1, 1, encode_mask(mask).counts),))

    class Model:
        input_size = 64

    side = max_side(Model())
    loaded = load_image(task, side=side)
    assert side == 256 and loaded.problem is None and loaded.image is not None
    assert loaded.image.shape == (140, 220, 3)  # 5 times smaller
    [small] = loaded.masks
    assert small.shape == (140, 220) and small.sum() == 1 and small[20, 40]
