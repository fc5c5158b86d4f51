"""`segmon predict` and `segmon train` through the command line."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from typer.testing import CliRunner

from monitor.cli.main import app
from monitor.model.checkpoint import load_checkpoint
from monitor.synth import SynthConfig, generate_scenes
from tests.support.exported_models import ExportedToys, rect_mask
from tests.support.hosted_scenes import (
    EXPECTED,
    HOSTED,
    SCENES,
    hosted_config,
    instances_of,
    invoke_json,
)
from tests.support.paths import REPO

runner = CliRunner()


def _coco(path: Path) -> COCO:
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(path))


def test_segmon_predict_writes_coco_results_for_a_folder_and_a_coco_file(tmp_path: Path) -> None:
    scenes = tmp_path / "scenes"
    generate_scenes(scenes, SynthConfig(n_images=3, seed=21, size=128))
    out = tmp_path / "results.json"
    result = runner.invoke(
        app,
        [
            "predict",
            "--model",
            "production",
            "--images",
            str(scenes / "images"),
            "--out",
            str(out),
            "--batch-size",
            "2",
            "--device",
            "cpu",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["images"] == 3 and payload["model"].startswith("builtin:production@")
    sidecar = json.loads((tmp_path / "results.images.json").read_text())
    assert [(i["id"], i["file_name"]) for i in sidecar["images"]] == [
        (1, "r-000000.png"),
        (2, "r-000001.png"),
        (3, "r-000002.png"),
    ]
    results = json.loads(out.read_text())
    assert len(results) == payload["instances"] > 0
    with contextlib.redirect_stdout(io.StringIO()):
        loaded = _coco(scenes / "annotations.json").loadRes(str(out))
    assert {a["image_id"] for a in loaded.dataset["annotations"]} <= {1, 2, 3}
    assert all(1 <= a["category_id"] <= 4 for a in loaded.dataset["annotations"])

    from_coco = tmp_path / "from_coco.json"
    result = runner.invoke(
        app,
        [
            "predict",
            "--model",
            "production",
            "--images",
            str(scenes / "annotations.json"),
            "--out",
            str(from_coco),
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(from_coco.read_text()) == results
    assert not (tmp_path / "from_coco.images.json").exists()


def test_segmon_train_writes_safetensors_with_metadata(tiny_scenes: Path, tmp_path: Path) -> None:
    weights = tmp_path / "tiny.safetensors"
    result = CliRunner().invoke(
        app,
        [
            "train",
            "--data",
            str(tiny_scenes / "annotations.json"),
            "--images",
            str(tiny_scenes / "images"),
            "--out",
            str(weights),
            "--steps",
            "2",
            "--batch-size",
            "2",
            "--size",
            "64",
            "--width",
            "4",
            "--augment",
            "flip",
            "--augment",
            "photometric",
            "--seed",
            "3",
            "--device",
            "cpu",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["steps"] == 2 and payload["augment"] == [
        "blur",
        "brightness",
        "contrast",
        "flip",
        "noise",
    ]
    network, training = load_checkpoint(weights)
    assert network.config.categories == ("disc", "box", "triangle", "star")
    assert network.config.width == 4 and network.config.input_size == 64
    assert training["seed"] == 3


@pytest.mark.parametrize("kind", HOSTED)
def test_segmon_predict_runs_the_configured_hosted_model(
    kind: str, exported_toys: ExportedToys, colour_dataset: Path, tmp_path: Path
) -> None:
    config = hosted_config(tmp_path / "segmon.yaml", tmp_path / "segmon.db", kind, exported_toys)
    out = tmp_path / "results.json"
    payload = invoke_json(
        config, "predict", "--model", "reference", "--images", str(colour_dataset / "images"),
        "--out", str(out), "--batch-size", "4", "--device", "cpu",
    )  # fmt: skip
    assert payload["images"] == EXPECTED.images and payload["instances"] == EXPECTED.instances
    assert payload["categories"][:2] == ["disc", "box"]
    assert payload["ignored"] == ({"kite": EXPECTED.kites} if kind == "maskrcnn-onnx" else {})
    sidecar = json.loads((tmp_path / "results.images.json").read_text())
    names = {i["id"]: (i["file_name"], (i["height"], i["width"])) for i in sidecar["images"]}
    found: dict[str, dict[int, np.ndarray]] = {}
    for result in json.loads(out.read_text()):
        name, size = names[result["image_id"]]
        rle = dict(result["segmentation"], counts=result["segmentation"]["counts"].encode())
        found.setdefault(name, {})[result["category_id"]] = mask_utils.decode(rle).astype(bool)
        assert result["score"] > 0.25 and len(result["class_scores"]) == len(payload["categories"])
    for name, size, *_ in SCENES:  # every mask is its rectangle, pixel for pixel
        want = {cat: rect_mask(size, rect) for cat, rect in instances_of(name)}
        assert sorted(found.get(name, {})) == sorted(want), name
        for cat, mask in want.items():
            assert np.array_equal(found[name][cat], mask), (kind, name, cat)


def test_a_model_segmon_cannot_read_is_one_line_exit_2(
    exported_toys: ExportedToys, colour_dataset: Path, tmp_path: Path
) -> None:
    config = tmp_path / "segmon.yaml"
    config.write_text(yaml.safe_dump({"models": {"reference": str(exported_toys.vector_onnx)}}))
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "--config", str(config), "predict", "--model",
         "reference", "--images", str(colour_dataset / "images"), "--out", str(tmp_path / "r.json")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "cannot tell the output convention of model (toy-vector.onnx)" in done.stderr
    assert "embedding float32 (1, 6); logits float32 (1, 10)" in done.stderr
