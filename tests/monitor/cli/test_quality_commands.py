"""``segmon evaluate --model reference`` with the configured, hosted reference model."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.exported_models import ExportedToys
from tests.support.hosted_scenes import EXPECTED, HOSTED, fresh_workspace, invoke_json


@pytest.mark.parametrize("kind", HOSTED)
def test_evaluate_model_reference_runs_the_hosted_model(
    kind: str, exported_toys: ExportedToys, colour_dataset: Path, tmp_path: Path
) -> None:
    config = fresh_workspace(tmp_path, colour_dataset, kind, exported_toys)
    report = invoke_json(config, "evaluate", "--holdout", "colours", "--model", "reference")
    [result] = report["results"]
    assert result["images"] == EXPECTED.images
    # the toy models find exactly the labeled rectangles: perfect scores
    assert (result["ap"], result["precision"], result["recall"], result["mean_iou"]) == (
        1.0,
        1.0,
        1.0,
        1.0,
    )
    assert result["source"] == f"model:{result['model_version']}"
    assert report["ignored"] == ({"kite": EXPECTED.kites} if kind == "maskrcnn-onnx" else {})
