"""``segmon drift --json`` and ``segmon report --out``: through the command line."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select
from typer.testing import CliRunner

from monitor.cli.main import app
from monitor.drift.job import aligned_window
from monitor.storage.engine import make_engine
from monitor.storage.schema import DriftResultRow, JobRun
from tests.support.clustered_scenes import write_clustered_scenes
from tests.support.drift_scenes import DriftScenes, Shift
from tests.support.model_scenes import FakeModel

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
    with make_engine(sqlite_url).connect() as connection:  # every row names its run
        stamped = connection.execute(select(DriftResultRow.run_id).distinct()).scalars().all()
        job = connection.execute(select(JobRun.job).where(JobRun.id == doc["run_id"])).scalar()
    assert stamped == [doc["run_id"]] and job == "drift"

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


AA_SEED = 0
"""Seed of the A/A scenes; see the tolerance in the test."""
AA_IMAGES = 120
"""Images of the A/A scenes: 60 in the holdout, 60 in production."""


def run_aa_through_the_cli(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> dict[str, Any]:
    """``segmon init`` -> holdout import -> ingest -> embed -> ``drift --json`` on A/A scenes.

    One random half of the generated clustered scenes is the holdout (ground truth), the
    other half production with predictions equal to its ground truth: nothing drifted.
    """
    import monitor.model.loading  # torch: imported when the test runs, not at collection

    monkeypatch.setattr(monitor.model.loading, "load_model", lambda name: FakeModel())
    now = datetime.now(UTC)
    day_start, _ = aligned_window(now, timedelta(days=1))
    scenes = write_clustered_scenes(
        tmp_path / "scenes",
        AA_IMAGES,
        seed,
        start=day_start + timedelta(minutes=5),
        interval=timedelta(minutes=10),
    )
    config = tmp_path / "segmon.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "database_url": database_url,
                "drift": {"reference": "holdout", "windows": ["1d"], "alpha": 0.05},
                # the log names images in a sibling folder: allow it (images.allowed_roots)
                "images": {"allowed_roots": [str(scenes.images)]},
            }
        )
    )

    def invoke(*args: str) -> dict[str, Any]:
        result = runner.invoke(app, ["--config", str(config), *args, "--json"])
        assert result.exit_code == 0, result.output
        payload: dict[str, Any] = json.loads(result.stdout)
        return payload

    invoke("init")
    imported = invoke(
        "holdout",
        "import",
        str(scenes.annotations),
        "--images",
        str(scenes.images),
        "--name",
        "holdout",
    )
    assert imported["images"] == scenes.n_holdout
    assert invoke("ingest", str(scenes.log))["ingested"] == scenes.n_production
    invoke("embed")
    doc = invoke("drift")
    # The table says how many images lie behind a per-object check's objects.
    table = runner.invoke(app, ["--config", str(config), "drift"], env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    assert re.search(r"mask_geometry[ │]+area[ │]+box[ │]+\w+[ │]+\d+ on \d+ images", table.stdout)
    return doc


PER_OBJECT = {"area", "aspect", "boundary", "class_mix", "embedding"}


def test_aa_split_of_clustered_scenes_raises_no_more_false_alarms_than_alpha_allows(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Half the images' ground truth against the other half: nothing drifted.

    10 to 20 objects per image share the image's zoom, light, shape bias and class mix.
    Tolerance: with every check exact at alpha = 0.05, the number of alarms among C
    independent checks is Binomial(C, 0.05); the bounds are its 99% quantiles (at most 5
    of the 29 per-object checks, 7 of all 52). Checks on one feature are positively
    dependent, which fattens that tail, so the scenes' seed is fixed and the test is
    deterministic. Object by object (the calibration before images became the unit),
    the same scenes flag 13 of the 29 per-object checks (6 to 23 over seeds 0 to 5);
    with images as the unit, 0 to 2.
    """
    from scipy.stats import binom

    doc = run_aa_through_the_cli(database_url, tmp_path, monkeypatch, AA_SEED)
    results = doc["results"]
    per_object = [r for r in results if r["n_current_groups"] is not None]
    per_image = [r for r in results if r["n_current_groups"] is None]
    # Every per-object family is checked, with the image as the group.
    assert {(r["family"], r["feature"]) for r in per_object} == {
        ("mask_geometry", "area"),
        ("mask_geometry", "aspect"),
        ("mask_geometry", "boundary"),
        ("instance_embedding", "embedding"),
        ("prediction", "class_mix"),
    }
    assert all(r["feature"] not in PER_OBJECT or r["class_name"] == "" for r in per_image)
    half = AA_IMAGES // 2
    for r in per_object:  # min_samples (30) counts images; many objects per image
        assert 30 <= r["n_reference_groups"] <= half and 30 <= r["n_current_groups"] <= half
        assert r["n_current"] > 3 * r["n_current_groups"]
    assert all(r["n_current"] == half for r in per_image if r["family"] == "image_properties")

    flagged_objects = sum(r["drift_detected"] for r in per_object)
    assert flagged_objects <= binom.ppf(0.99, len(per_object), 0.05) == 5
    assert doc["drift_detected"] <= binom.ppf(0.99, len(results), 0.05) == 7


def test_drift_range_errors_name_the_bad_value(sqlite_url: str, tmp_path: Path) -> None:
    config = tmp_path / "segmon.yaml"
    config.write_text(yaml.safe_dump({"database_url": sqlite_url, "drift": {"windows": ["1h"]}}))
    base = ["--config", str(config), "drift"]
    cases = {
        ("--from", "last tuesday", "--to", "2026-11-24"): "--from: 'last tuesday' is not",
        ("--from", "2026-11-24", "--to", "2026-11-23"): "is not before --to 2026-11-23",
        ("--from", "2026-11-24"): "--from needs --to",
        ("--from", "2025-11-24", "--to", "2026-11-24"): "holds 8760 windows (1h: 8760)",
        ("--max-windows", "5"): "--max-windows goes with --from and --to",
    }
    for args, message in cases.items():
        result = runner.invoke(app, [*base, *args])
        assert result.exit_code != 0, args
        assert message in str(result.exception), (args, result.exception)


def test_drift_backfill_json_through_the_command_line(
    sqlite_drift_scenes: DriftScenes, sqlite_url: str, tmp_path: Path
) -> None:
    start = datetime(2026, 11, 22, tzinfo=UTC)
    reference = (start - timedelta(days=2), start)
    sqlite_drift_scenes.production(40, reference)
    sqlite_drift_scenes.production(60, (start, start + timedelta(days=2)))
    config = tmp_path / "segmon.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "database_url": sqlite_url,
                "drift": {
                    "reference": {"start": reference[0], "end": reference[1]},
                    "windows": ["1d"],
                    "min_samples": 20,
                    "backfill_max_windows": 1,
                },
            }
        )
    )
    args = ["--config", str(config), "drift", "--from", "2026-11-22", "--to", "2026-11-24"]
    refused = runner.invoke(app, [*args, "--json"])
    assert "holds 2 windows (1d: 2), more than the cap of 1" in str(refused.exception)
    result = runner.invoke(app, [*args, "--max-windows", "2", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert (doc["planned_windows"], doc["computed_windows"]) == (2, 2)
    assert doc["checks"] > 0 and doc["from"] == "2026-11-22T00:00:00+00:00"
    rerun = json.loads(runner.invoke(app, [*args, "--max-windows", "2", "--json"]).stdout)
    assert (rerun["computed_windows"], rerun["already_stored_windows"]) == (0, 2)


def test_drift_backfill_reads_image_properties_on_the_configured_executor(
    sqlite_sessions: Any, sqlite_url: str, tmp_path: Path
) -> None:
    """``executor: dask`` at an address nobody answers: the backfill's run fails naming it."""
    address = "tcp://127.0.0.1:9"  # discard port: nothing listens
    config = tmp_path / "segmon.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "database_url": sqlite_url,
                "drift": {"windows": ["1d"]},
                "executor": {"kind": "dask", "address": address, "connect_timeout_s": 1},
            }
        )
    )
    args = ["--config", str(config), "drift", "--from", "2026-11-22", "--to", "2026-11-24"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code != 0 and address in str(result.exception)
    with make_engine(sqlite_url).connect() as connection:
        [run] = connection.execute(select(JobRun.job, JobRun.status, JobRun.error)).all()
    assert (run.job, run.status) == ("drift", "failed") and address in (run.error or "")
