"""generate_scenes: byte-identical reruns, a COCO holdout and a sample log that follow the
contract, masks equal to the drawn pixels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from monitor.errors import InvalidInputError
from monitor.synth import CATEGORIES, SynthConfig, generate_scenes, render_scene
from tests.support.mask_arrays import decode


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("clean")
    generate_scenes(out, SynthConfig(n_images=12, seed=5, size=96))
    return out


def test_two_runs_are_byte_identical(tmp_path: Path) -> None:
    config = SynthConfig(n_images=6, seed=3, size=96, drift={"noise": 0.5, "novel": 0.5})
    generate_scenes(tmp_path / "a", config)
    generate_scenes(tmp_path / "b", config)
    first, second = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert len(first) == 8
    assert first == second
    generate_scenes(tmp_path / "c", SynthConfig(n_images=6, seed=4, size=96))
    assert _files(tmp_path / "c") != first


def test_existing_output_needs_overwrite(tmp_path: Path) -> None:
    generate_scenes(tmp_path, SynthConfig(n_images=3, seed=0, size=64))
    with pytest.raises(InvalidInputError, match="overwrite"):
        generate_scenes(tmp_path, SynthConfig(n_images=2, seed=0, size=64))
    generate_scenes(tmp_path, SynthConfig(n_images=2, seed=0, size=64), overwrite=True)
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == [
        "r-000000.png",
        "r-000001.png",
    ]


def test_rle_masks_equal_drawn_pixels_and_do_not_overlap(clean: Path) -> None:
    config = SynthConfig(n_images=12, seed=5, size=96)
    coco = json.loads((clean / "annotations.json").read_text())
    for image in coco["images"]:
        i = image["id"] - 1
        scene = render_scene(np.random.default_rng([config.seed, i, 0]), config)
        stored = np.asarray(Image.open(clean / "images" / image["file_name"]))
        assert np.array_equal(stored, scene.image)
        masks = [decode(a["segmentation"]) for a in coco["annotations"] if a["image_id"] == i + 1]
        expected = [m for m, c in zip(scene.masks, scene.category_ids, strict=True) if c > 0]
        assert len(masks) == len(expected)
        for got, want in zip(masks, expected, strict=True):
            assert np.array_equal(got, want)
        if masks:
            assert np.stack(masks).sum(axis=0).max() == 1


def test_coco_file_loads_and_areas_match(clean: Path) -> None:
    coco = COCO(str(clean / "annotations.json"))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == list(CATEGORIES)
    anns = coco.loadAnns(coco.getAnnIds())
    assert anns and min(a["id"] for a in anns) == 1
    for ann in anns:
        mask = coco.annToMask(ann)
        assert ann["area"] == int(mask.sum())
        ys, xs = np.nonzero(mask)
        assert ann["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
        assert ann["iscrowd"] == 0
    for image in coco.loadImgs(coco.getImgIds()):
        assert (clean / "images" / image["file_name"]).is_file()
        assert (image["width"], image["height"]) == (96, 96)


def test_sample_log_follows_the_contract(clean: Path) -> None:
    lines = (clean / "samples.jsonl").read_text().splitlines()
    assert len(lines) == 12
    keys = {
        "request_id",
        "captured_at",
        "model_version",
        "image",
        "width",
        "height",
        "latency_ms",
        "instances",
    }
    n_instances = 0
    for i, line in enumerate(lines):
        record = json.loads(line)
        assert set(record) == keys
        assert record["request_id"] == f"r-{i:06d}"
        assert record["captured_at"] == f"2026-11-23T00:{i:02d}:00Z"
        assert record["model_version"] == "prod-2026.11.1"
        assert (clean / record["image"]).is_file()
        assert record["latency_ms"] > 0
        for inst in record["instances"]:
            n_instances += 1
            assert set(inst) == {"category_id", "score", "bbox", "segmentation", "class_scores"}
            assert 1 <= inst["category_id"] <= len(CATEGORIES)
            assert len(inst["class_scores"]) == len(CATEGORIES)
            assert abs(sum(inst["class_scores"]) - 1) < 1e-3
            assert inst["score"] == inst["class_scores"][inst["category_id"] - 1]
            assert inst["segmentation"]["size"] == [96, 96]
            assert isinstance(inst["segmentation"]["counts"], str)
            mask = decode(inst["segmentation"])
            ys, xs = np.nonzero(mask)
            assert inst["bbox"][:2] == [xs.min(), ys.min()]
    assert n_instances > 0
