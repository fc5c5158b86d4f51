"""``segmon drift --json`` and ``segmon report --out``: through the command line."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from typer.testing import CliRunner

from monitor.cli.main import app
from tests.support.drift_scenes import DriftScenes, Shift

runner = CliRunner()


def test_drift_json_then_report_html(
    sqlite_drift_scenes: DriftScenes, sqlite_url: str, tmp_path: Path
) -> None:
    # The commands use the wall clock: production covers the last two days, so the
    # aligned 1d window (yesterday) holds data whenever the test runs.
    now = datetime.now(UTC)
    sqlite_drift_scenes.production(40, (now - timedelta(days=12), now - timedelta(days=10)))
    sqlite_drift_scenes.production(
        60, (now - timedelta(days=2), now), shifts={"box": Shift(scale=1.6)}
    )
    reference = {"start": now - timedelta(days=12), "end": now - timedelta(days=10)}
    config = tmp_path / "segmon.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "database_url": sqlite_url,
                "drift": {
                    "reference": reference,
                    "windows": ["1d"],
                    "min_samples": 20,
                    "detectors": {"image_embedding": ["pca_js"]},  # no torch import
                },
            }
        )
    )
    result = runner.invoke(app, ["--config", str(config), "drift", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["checks"] == len(doc["results"]) > 0
    flagged = {
        (r["family"], r["feature"], r["class_name"]) for r in doc["results"] if r["drift_detected"]
    }
    assert ("mask_geometry", "area", "box") in flagged

    out = tmp_path / "reports" / "report.html"
    result = runner.invoke(app, ["--config", str(config), "report", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["checks"] == doc["checks"] and summary["drifted"] == doc["drift_detected"]
    assert {"brightness", "instances", "n_box", "mean_score"} <= set(summary["columns"])
    page = out.read_text()
    assert 'id="segmon-summary"' in page and "mask_geometry" in page
    assert 'id="evidently-report"' in page and "<iframe srcdoc=" in page
    assert "evidently" in page.split('id="evidently-report"')[1].lower()
    assert isinstance(summary["evidently_drifted_columns"], int)
