"""The simulated production model: novel objects predicted, less confident under drift."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from detectors._typing import MaskArray
from monitor.synth import DriftKnob, SynthConfig, generate_scenes
from tests.support.mask_arrays import decode


def test_novel_objects_are_predicted_without_ground_truth(tmp_path: Path) -> None:
    summary = generate_scenes(
        tmp_path, SynthConfig(n_images=20, seed=2, size=96, drift={"novel": 1.0})
    )
    assert summary.n_novel > 5
    coco = json.loads((tmp_path / "annotations.json").read_text())
    assert summary.n_instances == len(coco["annotations"])
    gt: dict[int, list[MaskArray]] = {}
    for ann in coco["annotations"]:
        gt.setdefault(ann["image_id"], []).append(decode(ann["segmentation"]))
    unmatched = 0
    for i, line in enumerate((tmp_path / "samples.jsonl").read_text().splitlines()):
        for inst in json.loads(line)["instances"]:
            mask = decode(inst["segmentation"])
            if all((mask & g).sum() == 0 for g in gt.get(i + 1, [])):
                unmatched += 1
    assert unmatched >= summary.n_novel // 2
    clean = generate_scenes(tmp_path / "clean", SynthConfig(n_images=20, seed=2, size=96))
    assert clean.n_novel == 0


def _prediction_quality(tmp_path: Path, drift: dict[DriftKnob, float]) -> tuple[float, float]:
    config = SynthConfig(n_images=25, seed=8, size=96, drift=drift)
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
