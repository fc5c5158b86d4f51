from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from monitor.errors import InvalidInputError
from monitor.synth import (
    CATEGORIES,
    DRIFT_KNOBS,
    SynthConfig,
    generate_scenes,
    parse_drift,
    render_scene,
)


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _decode(rle: dict[str, Any]) -> np.ndarray:
    return mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode("ascii")}).astype(
        bool
    )


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
        masks = [_decode(a["segmentation"]) for a in coco["annotations"] if a["image_id"] == i + 1]
        expected = [m for m, c in zip(scene.masks, scene.category_ids, strict=True) if c > 0]
        assert len(masks) == len(expected)
        for got, want in zip(masks, expected, strict=True):
            assert np.array_equal(got, want)
        if masks:
            assert np.stack(masks).sum(axis=0).max() == 1


def test_occluded_objects_keep_the_texture_of_the_top_object() -> None:
    config = SynthConfig(n_images=1, seed=0, size=128)
    overlapping = 0
    for i in range(30):
        scene = render_scene(np.random.default_rng([9, i, 0]), config)
        assert scene.masks.sum(axis=0).max() <= 1
        overlapping += int(len(scene.masks) >= 2)
        assert all(m.sum() >= 60 for m in scene.masks)
        assert 1 <= len(scene.masks) <= 6
    assert overlapping > 5


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
            mask = _decode(inst["segmentation"])
            ys, xs = np.nonzero(mask)
            assert inst["bbox"][:2] == [xs.min(), ys.min()]
    assert n_instances > 0


def _mean_pixel(drift: dict[str, float]) -> float:
    config = SynthConfig(n_images=1, seed=0, size=96, drift=drift)  # type: ignore[arg-type]
    return float(
        np.mean([render_scene(np.random.default_rng([1, i, 0]), config).image for i in range(8)])
    )


def _images(drift: dict[str, float]) -> np.ndarray:
    config = SynthConfig(n_images=1, seed=0, size=96, drift=drift)  # type: ignore[arg-type]
    return np.stack(
        [render_scene(np.random.default_rng([1, i, 0]), config).image for i in range(8)]
    ).astype(np.float64)


def test_brightness_raises_mean_intensity() -> None:
    assert _mean_pixel({}) < _mean_pixel({"brightness": 0.3}) < _mean_pixel({"brightness": 0.8})


def test_contrast_lowers_pixel_spread() -> None:
    spreads = [_images({"contrast": s}).std(axis=(1, 2)).mean() for s in (0.0, 0.4, 0.9)]
    assert spreads[0] > spreads[1] > spreads[2]


def _roughness(images: np.ndarray) -> float:
    return float(np.abs(np.diff(images, axis=2)).mean())


def test_blur_smooths_and_noise_roughens() -> None:
    base = _roughness(_images({}))
    assert base > _roughness(_images({"blur": 0.3})) > _roughness(_images({"blur": 0.9}))
    assert base < _roughness(_images({"noise": 0.3})) < _roughness(_images({"noise": 0.9}))


def _scenes(drift: dict[str, float], n: int = 60) -> list[Any]:
    config = SynthConfig(n_images=1, seed=0, size=128, drift=drift)  # type: ignore[arg-type]
    return [render_scene(np.random.default_rng([2, i, 0]), config) for i in range(n)]


def test_scale_shrinks_objects() -> None:
    def median_area(drift: dict[str, float]) -> float:
        return float(np.median([m.sum() for s in _scenes(drift) for m in s.masks]))

    assert median_area({}) > median_area({"scale": 0.5}) > median_area({"scale": 1.0})


def test_classmix_skews_the_class_histogram() -> None:
    def histogram(drift: dict[str, float]) -> np.ndarray:
        ids = np.concatenate([s.category_ids for s in _scenes(drift, 120)])
        return np.bincount(ids, minlength=len(CATEGORIES) + 1)[1:] / len(ids)

    clean, skewed = histogram({}), histogram({"classmix": 1.0})
    assert clean.max() - clean.min() < 0.15
    assert skewed[0] > 0.4 and skewed[0] > clean[0] + 0.15
    assert skewed[-1] < clean[-1]


def test_novel_objects_are_predicted_without_ground_truth(tmp_path: Path) -> None:
    summary = generate_scenes(
        tmp_path, SynthConfig(n_images=20, seed=2, size=96, drift={"novel": 1.0})
    )
    assert summary.n_novel > 5
    coco = json.loads((tmp_path / "annotations.json").read_text())
    assert summary.n_instances == len(coco["annotations"])
    gt: dict[int, list[np.ndarray]] = {}
    for ann in coco["annotations"]:
        gt.setdefault(ann["image_id"], []).append(_decode(ann["segmentation"]))
    unmatched = 0
    for i, line in enumerate((tmp_path / "samples.jsonl").read_text().splitlines()):
        for inst in json.loads(line)["instances"]:
            mask = _decode(inst["segmentation"])
            if all((mask & g).sum() == 0 for g in gt.get(i + 1, [])):
                unmatched += 1
    assert unmatched >= summary.n_novel // 2
    clean = generate_scenes(tmp_path / "clean", SynthConfig(n_images=20, seed=2, size=96))
    assert clean.n_novel == 0


def _prediction_quality(tmp_path: Path, drift: dict[str, float]) -> tuple[float, float]:
    config = SynthConfig(n_images=25, seed=8, size=96, drift=drift)  # type: ignore[arg-type]
    summary = generate_scenes(tmp_path, config)
    scores = [
        inst["score"]
        for line in summary.samples.read_text().splitlines()
        for inst in json.loads(line)["instances"]
    ]
    return float(np.mean(scores)), len(scores) / max(summary.n_instances, 1)


def test_production_model_gets_less_confident_under_drift(tmp_path: Path) -> None:
    clean_score, _ = _prediction_quality(tmp_path / "a", {})
    drifted_score, _ = _prediction_quality(tmp_path / "b", {"blur": 1.0, "noise": 1.0})
    assert drifted_score < clean_score - 0.1


def test_parse_drift_and_config_validation() -> None:
    assert parse_drift([]) == {}
    assert parse_drift(["classmix=1", "brightness=0"]) == {"brightness": 0.0, "classmix": 1.0}
    for item, fragment in [
        ("fog=0.1", "fog"),
        ("blur", "blur"),
        ("blur=x", "'x'"),
        ("blur=1.5", "blur"),
        ("noise=-0.1", "noise"),
        ("noise=nan", "noise"),
    ]:
        with pytest.raises(InvalidInputError, match=fragment):
            parse_drift([item])
    with pytest.raises(InvalidInputError, match="more than once"):
        parse_drift(["blur=0.1", "blur=0.2"])
    with pytest.raises(InvalidInputError, match="'haze'"):
        SynthConfig(n_images=1, seed=0, drift={"haze": 0.5})  # type: ignore[dict-item]
    with pytest.raises(InvalidInputError, match="True"):
        SynthConfig(n_images=1, seed=0, drift={"blur": True})
    with pytest.raises(InvalidInputError, match="n_images"):
        SynthConfig(n_images=-1, seed=0)
    assert set(DRIFT_KNOBS) == {
        "brightness",
        "contrast",
        "blur",
        "noise",
        "scale",
        "classmix",
        "novel",
    }
