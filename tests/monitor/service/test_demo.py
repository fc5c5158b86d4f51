from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import Settings
from monitor.errors import InvalidInputError
from monitor.service.demo import DemoOptions, run_demo


def test_demo_runs_the_pipeline_and_quarantines_the_broken_lines(tmp_path: Path) -> None:
    options = DemoOptions(holdout_images=8, images_per_day=12)
    summary = run_demo(tmp_path / "demo", Settings(), options)
    status = summary["status"]
    assert summary["holdout"]["images"] == 8 and summary["holdout"]["instances"] > 8
    assert status["samples_ingested"] == 32  # 8 golden requests + 2 days of 12
    production, reference = summary["quality"]
    assert production["model_version"] == "prod-2026.11.1" and production["images"] == 8
    assert 0.0 < production["ap"] < 1.0  # the simulated production model is good, not perfect
    assert reference["model_version"].startswith("builtin:reference@")
    assert reference["images"] == 8 and reference["ap"] > 0.3
    assert status["quarantined_by_reason"] == {"image_missing": 1, "malformed_json": 1}
    assert {j["job"]: j["last_status"] for j in status["jobs"]} == {
        "evaluate": "success",
        "holdout_import": "success",
        "ingest": "success",
        "embed": "success",
        "shadow": "success",
        "drift": "success",
        "queue": "success",
    }
    day1, day2 = summary["days"]
    # day 1 embeds the holdout, the golden requests and its own images; day 2 its own
    assert (day1["embedded_images"], day2["embedded_images"]) == (8 + 8 + 12, 12)
    assert day1["shadow"]["samples"] == 8 + 12 and day2["shadow"]["samples"] == 12
    assert 0.0 < day1["shadow"]["mean_agreement"] <= 1.0
    assert day1["drift_checks"] > 0 and day2["drift_checks"] > 0
    # day 2 is drifted (brightness, blur): its window flags more than the clean day's
    assert len(day2["drift_flagged"]) > len(day1["drift_flagged"])
    assert any(f.startswith("image_properties/") for f in day2["drift_flagged"])
    assert set(summary["slos"]) >= {"mask-quality-holdout", "mask-quality-shadow"}
    # a second run starts afresh in the same folder and gives the same counts
    again = run_demo(tmp_path / "demo", Settings(), options)
    assert again["status"]["samples_ingested"] == 32 and again["days"] == summary["days"]
    assert again["queue"] == summary["queue"]  # the same items, labels and evaluation


def test_demo_refuses_a_folder_it_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(InvalidInputError, match="not a segmon demo folder"):
        run_demo(tmp_path, Settings(), DemoOptions(holdout_images=2, images_per_day=2))
    assert (tmp_path / "precious.txt").exists()
