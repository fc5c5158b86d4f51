"""``segmon compare --json``: through the command line, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from typer.testing import CliRunner

from monitor.cli.main import app
from tests.support.canary_labels import label_samples
from tests.support.drift_scenes import DriftScenes

runner = CliRunner()


def _config(tmp_path: Path, url: str) -> Path:
    config = tmp_path / "segmon.yaml"
    drift = {"min_samples": 20, "detectors": {"image_embedding": ["pca_js"]}}  # no torch
    config.write_text(yaml.safe_dump({"database_url": url, "drift": drift}))
    return config


def test_compare_json_finds_the_lower_agreement_of_the_candidate(
    drift_scenes: DriftScenes, database_url: str, tmp_path: Path
) -> None:
    # The command uses the wall clock: both versions served the last twelve hours.
    now = datetime.now(UTC)
    span = (now - timedelta(hours=12), now - timedelta(minutes=1))
    drift_scenes.production(40, span, model_version="stable", agreement=(0.9, 0.05))
    drift_scenes.production(40, span, model_version="canary", agreement=(0.5, 0.05))
    label_samples(drift_scenes.sessions, "stable", grow=0)  # exact masks
    label_samples(drift_scenes.sessions, "canary", grow=2)  # masks short of the labels
    config = _config(tmp_path, database_url)
    args = ["--config", str(config), "compare", "--baseline", "stable", "--candidate", "canary"]
    result = runner.invoke(app, [*args, "--window", "1d", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert (doc["baseline"], doc["candidate"]) == ("stable", "canary")
    assert (doc["n_baseline"], doc["n_candidate"]) == (40, 40)
    verdicts = {s["signal"]: s["verdict"] for s in doc["signals"]}
    assert verdicts["shadow_agreement"] == "worse"
    assert verdicts["quality"] == "worse"
    quality = next(s for s in doc["signals"] if s["signal"] == "quality")
    assert quality["baseline_mean"] == 1.0 and quality["candidate_mean"] < 0.6
    assert verdicts["latency_ms"] == "not_enough_data"
    human = runner.invoke(app, args, env={"COLUMNS": "80"})
    assert human.exit_code == 0, human.output
    # on an 80-column terminal every signal's row is whole: name, flags and verdict
    rows = {line.split()[0]: line.split() for line in human.stdout.splitlines() if line}
    for signal in doc["signals"]:
        row = rows[signal["signal"]]
        assert row[-1] == signal["verdict"]
        assert row[-3] == f"{signal['significant']}/{signal['checks']}"


def test_compare_on_a_fresh_database_names_the_unknown_version(
    sqlite_url: str, tmp_path: Path
) -> None:
    config = _config(tmp_path, sqlite_url)
    assert runner.invoke(app, ["--config", str(config), "init"]).exit_code == 0
    result = runner.invoke(
        app, ["--config", str(config), "compare", "--baseline", "v1", "--candidate", "v2", "--json"]
    )
    assert result.exit_code != 0
    assert "no model version 'v1'" in str(result.exception)
