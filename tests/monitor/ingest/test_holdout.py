from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import ManualClock
from monitor.config import CategorySpec
from monitor.errors import InvalidInputError
from monitor.ingest.holdout import DatasetExistsError, import_holdout
from monitor.masks import encode_mask
from monitor.storage.bootstrap import sync_categories
from monitor.storage.schema import Category, DatasetImage, GroundTruthInstance
from tests.support.hostile import write_png_claiming

CLOCK = ManualClock(datetime(2026, 11, 24, tzinfo=UTC))


def reference_area(
    segmentation: list[list[float]] | dict[str, Any], height: int, width: int
) -> int:
    """pycocotools' area of the decoded mask, computed independently of segmon."""
    if isinstance(segmentation, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    elif isinstance(segmentation["counts"], list):
        rle = mask_utils.frPyObjects(segmentation, height, width)
    else:
        rle = {"size": segmentation["size"], "counts": segmentation["counts"].encode()}
    return int(mask_utils.decode(rle).sum())


def test_borrat_train_imports_with_exact_areas(
    sessions: sessionmaker[Session], borrat: Path
) -> None:
    sync_categories(sessions, [CategorySpec(id=5, name="human")])
    coco = borrat / "train" / "_annotations.coco.json"
    report = import_holdout(sessions, coco, borrat / "train", "borrat-train", CLOCK)
    assert (report.images, report.instances, report.renumbered) == (320, 326, False)
    assert report.unused_categories == ("objects",)
    doc = json.loads(coco.read_text())
    images = {img["id"]: img for img in doc["images"]}
    expected = {
        a["id"]: reference_area(
            a["segmentation"], images[a["image_id"]]["height"], images[a["image_id"]]["width"]
        )
        for a in doc["annotations"]
    }
    kinds = {type(a["segmentation"]).__name__ for a in doc["annotations"]}
    assert kinds == {"dict", "list"}  # RLE and polygons both exercised
    with sessions() as s:
        rows = s.execute(
            select(
                GroundTruthInstance.source_annotation_id,
                GroundTruthInstance.area,
                GroundTruthInstance.category_id,
            )
        ).all()
        names = s.scalars(select(DatasetImage.file_name)).all()
    assert {r.source_annotation_id: r.area for r in rows} == expected
    assert {r.category_id for r in rows} == {5}
    assert sum(n.startswith("-") for n in names) > 0


def write_coco(root: Path, first_id: int, categories: tuple[str, ...] = ("disc", "box")) -> Path:
    images_dir = root / "images"
    images_dir.mkdir(parents=True)
    anns, imgs = [], []
    next_id = first_id
    for i in range(3):
        Image.fromarray(np.full((20, 30, 3), 40 * i, np.uint8)).save(images_dir / f"-img{i}.png")
        imgs.append({"id": i, "file_name": f"-img{i}.png", "width": 30, "height": 20})
        for k in range(len(categories)):
            mask = np.zeros((20, 30), bool)
            mask[2 + k * 8 : 8 + k * 8, 3 + i : 12 + i] = True
            m = encode_mask(mask)
            anns.append(
                {
                    "id": next_id,
                    "image_id": i,
                    "category_id": 7 + k,
                    "iscrowd": 0,
                    "bbox": list(m.bbox),
                    "area": 1,
                    "segmentation": {"size": [20, 30], "counts": m.counts},
                }
            )
            next_id += 1
    cats = [{"id": 7 + k, "name": name} for k, name in enumerate(categories)]
    path = root / "coco.json"
    path.write_text(json.dumps({"images": imgs, "annotations": anns, "categories": cats}))
    return path


def test_annotation_ids_from_zero_are_renumbered(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    path = write_coco(tmp_path, first_id=0)
    report = import_holdout(sessions, path, tmp_path / "images", "zero", CLOCK)
    assert report.renumbered and report.instances == 6
    with sessions() as s:
        rows = s.execute(
            select(
                GroundTruthInstance.id,
                GroundTruthInstance.source_annotation_id,
                GroundTruthInstance.category_id,
                Category.name,
            ).join(Category)
        ).all()
    assert min(r.id for r in rows) >= 1
    assert sorted(r.source_annotation_id for r in rows) == list(range(6))
    # matched by name: file ids 7/8 become the model's disc/box ids
    assert {r.name: r.category_id for r in rows} == {"disc": 1, "box": 2}


def test_unknown_category_and_duplicate_name_are_refused(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    bad = write_coco(tmp_path / "a", first_id=1, categories=("disc", "zebra"))
    with pytest.raises(InvalidInputError, match="zebra"):
        import_holdout(sessions, bad, tmp_path / "a" / "images", "h", CLOCK)
    good = write_coco(tmp_path / "b", first_id=1)
    import_holdout(sessions, good, tmp_path / "b" / "images", "h", CLOCK)
    with pytest.raises(DatasetExistsError, match="'h'"):
        import_holdout(sessions, good, tmp_path / "b" / "images", "h", CLOCK)


def test_image_size_disagreeing_with_file_is_named(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    path = write_coco(tmp_path, first_id=1)
    Image.fromarray(np.zeros((21, 30, 3), np.uint8)).save(tmp_path / "images" / "-img1.png")
    with pytest.raises(InvalidInputError, match=r"-img1.png.*30x21"):
        import_holdout(sessions, path, tmp_path / "images", "h", CLOCK)
    with sessions() as s:
        assert s.scalars(select(DatasetImage)).all() == []  # nothing half-imported


def _edit(path: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))
    return path


def _count_images(sessions: sessionmaker[Session]) -> int:
    with sessions() as s:
        return len(s.scalars(select(DatasetImage)).all())


def test_annotations_for_unknown_images_are_reported_and_refused(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    def orphan(doc: dict[str, Any]) -> None:
        extra = dict(doc["annotations"][0], id=100, image_id=42)
        doc["annotations"] += [extra, dict(extra, id=101)]

    path = _edit(write_coco(tmp_path, first_id=1), orphan)
    with pytest.raises(
        InvalidInputError,
        match=r"2 annotations refer to images the file does not have \(image_id 42: 2 annotations\)",
    ):
        import_holdout(sessions, path, tmp_path / "images", "h", CLOCK)
    assert _count_images(sessions) == 0


def test_duplicate_annotation_ids_are_reported_and_refused(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    def duplicate(doc: dict[str, Any]) -> None:
        doc["annotations"][3]["id"] = doc["annotations"][0]["id"]

    path = _edit(write_coco(tmp_path, first_id=1), duplicate)
    with pytest.raises(
        InvalidInputError, match=r"annotation ids used more than once: 1 \(2 times\)"
    ):
        import_holdout(sessions, path, tmp_path / "images", "h", CLOCK)
    assert _count_images(sessions) == 0


@pytest.mark.parametrize(
    ("file_name", "words"),
    [
        ("../outside.png", "outside"),
        ("/etc/hostname", "outside"),
        ("link.png", "outside"),
        ("fifo.png", "not a regular file (a FIFO)"),
        ("huge.png", "image_too_large"),
    ],
)
def test_holdout_images_are_confined_and_bounded(
    sessions: sessionmaker[Session], tmp_path: Path, file_name: str, words: str
) -> None:
    path = write_coco(tmp_path / "coco", first_id=1)
    images = tmp_path / "coco" / "images"
    shutil.copyfile(images / "-img0.png", tmp_path / "coco" / "outside.png")
    (images / "link.png").symlink_to(tmp_path / "coco" / "outside.png")
    os.mkfifo(images / "fifo.png")
    write_png_claiming(images / "huge.png", 30000, 30000)
    _edit(path, lambda doc: doc["images"][0].update(file_name=file_name))
    with pytest.raises(InvalidInputError, match=re.escape(words)):
        import_holdout(sessions, path, images, "h", CLOCK)
    assert _count_images(sessions) == 0


def test_polygon_of_1e12_is_refused_before_pycocotools(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    def huge(doc: dict[str, Any]) -> None:
        doc["annotations"][0]["segmentation"] = [[0, 0, 1e12, 0, 1e12, 1e12]]

    path = _edit(write_coco(tmp_path, first_id=1), huge)
    with pytest.raises(InvalidInputError, match=r"annotation 1 .*x=1000000000000.0 is outside"):
        import_holdout(sessions, path, tmp_path / "images", "h", CLOCK)
