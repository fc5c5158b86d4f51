"""The demo's canary: a made-up worse candidate on the drifted day, compared with stable."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from sqlalchemy import func, select
from typer.testing import CliRunner

from monitor.cli.core_commands import DEMO_CANARY_SHARE
from monitor.cli.main import app
from monitor.config import Settings
from monitor.errors import InvalidInputError
from monitor.masks import decode_mask, encode_mask
from monitor.service.demo import DemoOptions, run_demo
from monitor.service.demo_canary import CANDIDATE_VERSION, SHIFT_PX, add_canary
from monitor.service.demo_outage import OUTAGE_FILE, add_outage
from monitor.storage.engine import make_engine, session_factory
from monitor.storage.schema import CanaryResultRow, ModelVersion, Sample
from monitor.synth import SynthConfig, generate_scenes
from monitor.synth.writer import SAMPLES_FILE

START = datetime(2026, 11, 24, tzinfo=UTC)
STABLE = SynthConfig(n_images=1, seed=0).model_version
# Enough drifted-day requests for the calibrated tests to see the candidate's masks
# (half the day, no outage to dilute it), and a holdout of at least the drift checks'
# min_samples (20 here) so the drift job flags the drifted day; small enough for a test.
OPTIONS = DemoOptions(holdout_images=20, images_per_day=40, outage_images=0, canary_share=0.5)
SMALL = ("--holdout-images", "4", "--images-per-day", "6")


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _day(tmp_path: Path, n: int = 10, outage: int = 4) -> Path:
    day = tmp_path / "day2"
    generate_scenes(day, SynthConfig(n_images=n, seed=3, size=96, start=START, interval_s=600.0))
    if outage:
        add_outage(day, end=START.replace(hour=23), images=outage, minutes=4.0, seed=4)
    return day


def test_the_candidate_gets_its_share_of_each_file_with_shifted_masks(tmp_path: Path) -> None:
    day = _day(tmp_path)
    before = _lines(day / SAMPLES_FILE)
    split = add_canary(day, share=0.3)
    after, outage = _lines(day / SAMPLES_FILE), _lines(day / OUTAGE_FILE)
    assert (split.baseline, split.candidate) == (STABLE, CANDIDATE_VERSION)
    assert (split.requests, split.total) == (3 + 1, 10 + 4)  # floor(0.3 * n) of each file
    assert sum(r["model_version"] == CANDIDATE_VERSION for r in after) == 3
    assert sum(r["model_version"] == CANDIDATE_VERSION for r in outage) == 1
    assert "shifted 16 px" in split.perturbation and "made up" in split.perturbation
    moved = dropped = 0
    for old, new in zip(before, after, strict=True):
        if new["model_version"] == STABLE:
            assert new == old  # the stable version's answers are untouched
            continue
        # the same request, latency and image; only the masks moved
        rest = {k: v for k, v in new.items() if k not in ("instances", "model_version")}
        assert rest == {k: v for k, v in old.items() if k not in ("instances", "model_version")}
        answers = iter(new["instances"])
        for inst in old["instances"]:
            mask = decode_mask(inst["segmentation"]["counts"], *inst["segmentation"]["size"])
            expected = np.zeros_like(mask)
            expected[SHIFT_PX:, SHIFT_PX:] = mask[:-SHIFT_PX, :-SHIFT_PX]
            if not expected.any():
                dropped += 1  # shifted wholly off the image: the candidate misses it
                continue
            got = next(answers)
            shifted = decode_mask(got["segmentation"]["counts"], *got["segmentation"]["size"])
            assert np.array_equal(shifted, expected)
            assert got["bbox"] == list(encode_mask(expected).bbox)
            same = ("category_id", "score", "class_scores")
            assert [got[k] for k in same] == [inst[k] for k in same]
            moved += 1
        assert next(answers, None) is None
    assert moved > 0 and split.dropped_instances == dropped


def test_a_share_of_zero_leaves_the_log_byte_for_byte(tmp_path: Path) -> None:
    day = _day(tmp_path)
    files = {p: p.read_bytes() for p in (day / SAMPLES_FILE, day / OUTAGE_FILE)}
    split = add_canary(day, share=0.0)
    assert split.requests == 0 and split.total == 14
    assert {p: p.read_bytes() for p in files} == files


def test_a_share_outside_zero_to_one_names_the_value(tmp_path: Path) -> None:
    day = _day(tmp_path, n=2, outage=0)
    with pytest.raises(InvalidInputError, match="canary share must be in \\[0, 1\\], got 1.5"):
        add_canary(day, share=1.5)


@pytest.fixture(scope="module")
def canary_demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    workdir = tmp_path_factory.mktemp("demo-canary") / "demo"
    return workdir, run_demo(workdir, Settings(), OPTIONS)


def test_the_candidate_is_worse_on_agreement_and_the_drift_is_not_blamed_on_it(
    canary_demo: tuple[Path, dict[str, Any]],
) -> None:
    workdir, summary = canary_demo
    canary = summary["canary"]
    assert (canary["baseline"], canary["candidate"]) == (STABLE, CANDIDATE_VERSION)
    assert canary["start"] == "2026-11-24T00:00:00+00:00"
    assert canary["end"] == "2026-11-25T00:00:00+00:00"
    assert (canary["n_baseline"], canary["n_candidate"]) == (20, 20) == (
        40 - canary["requests"], canary["requests"],
    )  # fmt: skip
    verdicts = {s["signal"]: s for s in canary["signals"]}
    agreement = verdicts["shadow_agreement"]
    assert agreement["verdict"] == "worse"
    assert agreement["candidate_mean"] < agreement["baseline_mean"]
    assert canary["worse"] == ["shadow_agreement"]  # scores and latencies are stable's
    assert verdicts["latency_ms"]["verdict"] == "no_difference"
    assert verdicts["uncertainty"]["verdict"] == "no_difference"
    # The day drifted (the drift job flags its images against the holdout), yet the
    # families that describe the images see no difference between the two versions.
    assert any(f.startswith("image_properties/") for f in summary["days"][1]["drift_flagged"])
    for family in ("drift:image_embedding", "drift:image_properties"):
        assert verdicts[family]["checks"] > 0 and verdicts[family]["verdict"] == "no_difference"
    assert all(
        s["verdict"] != "worse" for s in canary["signals"] if s["signal"].startswith("drift:")
    )
    # the candidate's requests carry its version into the database
    engine = make_engine(f"sqlite:///{workdir / 'segmon.db'}")
    try:
        with session_factory(engine)() as session:
            counts = dict(
                session.execute(
                    select(ModelVersion.name, func.count(Sample.id))
                    .join(Sample, Sample.model_version_id == ModelVersion.id)
                    .group_by(ModelVersion.name)
                ).all()
            )
            stored = {
                r.signal: r.verdict
                for r in session.scalars(
                    select(CanaryResultRow).where(CanaryResultRow.candidate == CANDIDATE_VERSION)
                )
            }
    finally:
        engine.dispose()
    assert counts[CANDIDATE_VERSION] == canary["requests"] == 20
    # segmon run's canary job made the comparison: its verdicts are stored, exported and
    # read by the SegmonCanaryWorse rule, pending on exactly the signals that are worse
    assert stored == {s["signal"]: s["verdict"] for s in canary["signals"]}
    assert summary["alerts"]["canary"] == [
        {
            "alert": "SegmonCanaryWorse",
            "severity": "ticket",
            "for": "1h",
            "baseline": STABLE,
            "candidate": CANDIDATE_VERSION,
            "signal": signal,
        }
        for signal in canary["worse"]
    ]
    assert json.loads(json.dumps(canary)) == canary  # `segmon demo --json` prints it as is
    # the annotators' labels evaluate each version on its own labelled samples
    queue = summary["queue"]
    versions = [ev["model_version"] for ev in queue["evaluation"]]
    assert len(versions) == len(set(versions)) and set(versions) <= {STABLE, CANDIDATE_VERSION}
    assert sum(ev["images"] for ev in queue["evaluation"]) == queue["labeled"] - len(
        queue["flagged"]
    )


def _invoke(tmp_path: Path, *args: str) -> Any:
    """Run ``segmon demo`` at small sizes through the command line; return its stdout."""
    config = tmp_path / "segmon.yaml"
    config.write_text(yaml.safe_dump({"database_url": f"sqlite:///{tmp_path / 'unused.db'}"}))
    workdir = str(tmp_path / "demo")
    result = CliRunner().invoke(
        app, ["--config", str(config), "demo", "--workdir", workdir, *SMALL, *args],
        env={"COLUMNS": "200"},
    )  # fmt: skip
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def _same_folder(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with its work folder's path (in sources, report paths) made the same."""
    same: dict[str, Any] = json.loads(json.dumps(doc).replace(doc["workdir"], "WORKDIR"))
    return same


@pytest.fixture(scope="module")
def demo_json(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``segmon demo --json`` at small sizes with the default canary share."""
    doc: dict[str, Any] = json.loads(_invoke(tmp_path_factory.mktemp("demo-json"), "--json"))
    return doc


def test_demo_json_has_the_canary_key(demo_json: dict[str, Any]) -> None:
    assert DemoOptions().canary_share == DEMO_CANARY_SHARE == 0.3
    canary = demo_json["canary"]
    assert canary["candidate"] == CANDIDATE_VERSION and canary["share"] == 0.3
    assert canary["requests"] == 1 + 7  # floor(0.3 * n) of the day's 6, the outage's 24
    assert [s["signal"] for s in canary["signals"]][-4:] == [
        "shadow_agreement", "uncertainty", "latency_ms", "quality",
    ]  # fmt: skip
    assert {c["signal"] for c in canary["checks"]} <= {s["signal"] for s in canary["signals"]}


def test_a_share_of_zero_leaves_no_canary_and_the_rest_of_the_demo_as_it_was(
    demo_json: dict[str, Any], tmp_path: Path
) -> None:
    plain = _same_folder(json.loads(_invoke(tmp_path, "--canary-share", "0", "--json")))
    demo_json = _same_folder(demo_json)
    assert "canary" not in plain  # so the human output has no canary section either
    assert plain["status"]["samples_ingested"] == demo_json["status"]["samples_ingested"]
    engine = make_engine(f"sqlite:///{tmp_path / 'demo' / 'segmon.db'}")
    try:
        with session_factory(engine)() as session:
            assert set(session.scalars(select(ModelVersion.name))) == {STABLE}
    finally:
        engine.dispose()
    # what the canary does not touch is the same in both runs: the clean day whole,
    # the drifted day's requests, images and the drift found in them
    assert plain["ingest"] == demo_json["ingest"]
    assert plain["days"][0] == demo_json["days"][0]
    assert plain["alerts"]["days"][0] == demo_json["alerts"]["days"][0]
    with_canary, without = demo_json["days"][1], plain["days"][1]
    for key in ("ingest", "embedded_images", "drift_checks"):
        assert with_canary[key] == without[key], key
    assert with_canary["shadow"]["samples"] == without["shadow"]["samples"]
    assert [f for f in with_canary["drift_flagged"] if f.startswith("image_")] == [
        f for f in without["drift_flagged"] if f.startswith("image_")
    ]
