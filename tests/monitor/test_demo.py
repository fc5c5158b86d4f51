from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import Settings
from monitor.demo import DemoOptions, run_demo
from monitor.errors import InvalidInputError


def test_demo_runs_the_pipeline_and_quarantines_the_broken_lines(tmp_path: Path) -> None:
    options = DemoOptions(holdout_images=8, images_per_day=10)
    summary = run_demo(tmp_path / "demo", Settings(), options)
    status = summary["status"]
    assert summary["holdout"]["images"] == 8 and summary["holdout"]["instances"] > 8
    assert status["samples_ingested"] == 28  # 8 golden requests + 2 days of 10
    [quality] = summary["quality"]
    assert quality["model_version"] == "prod-2026.11.1" and quality["images"] == 8
    assert 0.0 < quality["ap"] < 1.0  # the simulated production model is good, not perfect
    assert status["quarantined_by_reason"] == {"image_missing": 1, "malformed_json": 1}
    assert {j["job"]: j["last_status"] for j in status["jobs"]} == {
        "evaluate": "success",
        "holdout_import": "success",
        "ingest": "success",
    }
    # a second run starts afresh in the same folder and gives the same counts
    assert run_demo(tmp_path / "demo", Settings(), options)["status"]["samples_ingested"] == 28


def test_demo_refuses_a_folder_it_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(InvalidInputError, match="not a segmon demo folder"):
        run_demo(tmp_path, Settings(), DemoOptions(holdout_images=2, images_per_day=2))
    assert (tmp_path / "precious.txt").exists()
