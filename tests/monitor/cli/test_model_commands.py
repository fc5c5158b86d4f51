"""`segmon predict` and `segmon train` through the command line."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

from pycocotools.coco import COCO
from typer.testing import CliRunner

from monitor.cli.main import app
from monitor.model.checkpoint import load_checkpoint
from monitor.synth import SynthConfig, generate_scenes

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
