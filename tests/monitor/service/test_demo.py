from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import Settings
from monitor.errors import InvalidInputError
from monitor.service.demo import DemoOptions, run_demo


def test_demo_runs_the_pipeline_and_quarantines_the_broken_lines(tmp_path: Path) -> None:
    options = DemoOptions(holdout_images=8, images_per_day=12)  # 24 outage requests
    summary = run_demo(tmp_path / "demo", Settings(), options)
    status = summary["status"]
    assert summary["holdout"]["images"] == 8 and summary["holdout"]["instances"] > 8
    assert status["samples_ingested"] == 56  # 8 golden requests + 2 days of 12 + 24 in the outage
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
    assert (day1["embedded_images"], day2["embedded_images"]) == (8 + 8 + 12, 12 + 24)
    assert day1["shadow"]["samples"] == 8 + 12 and day2["shadow"]["samples"] == 12 + 24
    assert 0.0 < day1["shadow"]["mean_agreement"] <= 1.0
    assert day1["drift_checks"] > 0 and day2["drift_checks"] > 0
    # day 2 is drifted (brightness, blur): its window flags more than the clean day's
    assert len(day2["drift_flagged"]) > len(day1["drift_flagged"])
    assert any(f.startswith("image_properties/") for f in day2["drift_flagged"])
    assert set(summary["slos"]) >= {"mask-quality-holdout", "mask-quality-shadow"}
    # drift went through the backfill path, and the report has its plots
    report = summary["report"]
    assert report["drift_windows"] == 2  # the drifted day's window is the most drifted
    assert report["most_drifted_window_end"] == "2026-11-25T00:00:00+00:00"
    assert report["drift_plots"] > 5 and report["slo_plots"] >= 2
    page = Path(report["path"]).read_text()
    assert page.count('class="segmon-figure"') >= report["drift_plots"] + report["slo_plots"]
    # the clean day fires nothing; the drifted day, ending in an outage, pages and tickets
    alerts = {d["day"]: d for d in summary["alerts"]["days"]}
    assert alerts["day1"]["firing"] == []
    assert not any(t["fires"] for s in alerts["day1"]["slos"] for t in s["tiers"])
    firing = {(f["slo"], f["severity"]) for f in alerts["day2"]["firing"]}
    assert {("mask-quality-shadow", "page"), ("mask-quality-shadow", "ticket")} <= firing
    # the drift SLO only tickets (page: false); the holdout was evaluated on day 0 only
    assert firing - {("mask-quality-shadow", "page"), ("mask-quality-shadow", "ticket")} <= {
        ("image-drift", "ticket")
    }
    shadow = next(s for s in alerts["day2"]["slos"] if s["slo"] == "mask-quality-shadow")
    page = next(t for t in shadow["tiers"] if (t["severity"], t["long_window"]) == ("page", "1h"))
    assert page["fires"] and page["factor"] == 6.0  # 14.4x capped at objective 0.85
    assert page["long_burn_rate"] > 6.0 and page["short_burn_rate"] > 6.0
    assert min(page["long_events"], page["short_events"]) >= page["min_events"] == 20
    assert "1h " in page["why"] and "> 6 " in page["why"]
    assert shadow["adjusted_tiers"] == [
        "page tier 1h/5m capped from 14.4x to 6x (0.9 of the maximum burn rate 6.667)"
    ]
    assert {s["slo"] for s in summary["alerts"]["skipped"]} == {
        "inference-availability",
        "inference-latency",
    }
    # a second run starts afresh in the same folder and gives the same counts
    again = run_demo(tmp_path / "demo", Settings(), options)
    assert again["status"]["samples_ingested"] == 56 and again["days"] == summary["days"]
    assert again["alerts"] == summary["alerts"]
    assert again["queue"] == summary["queue"]  # the same items, labels and evaluation


def test_the_drifted_day_without_the_outage_does_not_page(tmp_path: Path) -> None:
    options = DemoOptions(holdout_images=4, images_per_day=6, outage_images=0)
    summary = run_demo(tmp_path / "demo", Settings(), options)
    day1, day2 = summary["alerts"]["days"]
    assert day1["firing"] == []
    assert {"slo": "mask-quality-shadow", "severity": "page"} not in day2["firing"]


def test_demo_refuses_a_folder_it_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(InvalidInputError, match="not a segmon demo folder"):
        run_demo(tmp_path, Settings(), DemoOptions(holdout_images=2, images_per_day=2))
    assert (tmp_path / "precious.txt").exists()
