"""The demo's outage: requests answered with no masks, whose true instances stay known."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from monitor.service.demo_outage import OUTAGE_FILE, add_outage
from monitor.synth import SynthConfig, generate_scenes

START = datetime(2026, 11, 24, tzinfo=UTC)


def test_outage_requests_have_no_instances_and_their_truth_joins_the_day(tmp_path: Path) -> None:
    day = tmp_path / "day2"
    generate_scenes(day, SynthConfig(n_images=3, seed=2, start=START, interval_s=600.0))
    before = json.loads((day / "annotations.json").read_text())
    n = add_outage(day, end=START.replace(hour=12), images=4, minutes=8.0, seed=5)
    assert n == 4
    lines = [json.loads(x) for x in (day / OUTAGE_FILE).read_text().splitlines()]
    assert [line["instances"] for line in lines] == [[]] * 4
    assert all(line["request_id"].startswith("out-") for line in lines)
    assert all((day / line["image"]).is_file() for line in lines)
    after = json.loads((day / "annotations.json").read_text())
    names = {img["file_name"] for img in after["images"]}
    assert {Path(line["image"]).name for line in lines} <= names
    assert len(after["images"]) == len(before["images"]) + 4
    # ids stay unique, the day's own annotations unchanged, the outage's truth added
    assert len({a["id"] for a in after["annotations"]}) == len(after["annotations"])
    assert len({i["id"] for i in after["images"]}) == len(after["images"])
    assert after["annotations"][: len(before["annotations"])] == before["annotations"]
    outage_ids = {i["id"] for i in after["images"] if i["file_name"].startswith("out-")}
    assert any(a["image_id"] in outage_ids for a in after["annotations"])
