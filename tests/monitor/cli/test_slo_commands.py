"""`segmon slo` and `segmon rules`: the configured SLOs, the scheduled jobs, promtool."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from monitor.cli.main import app
from monitor.errors import ConfigError
from tests.support.result_rows import Rows

runner = CliRunner()
CUSTOM = """
database_url: {url}
slos:
  - name: disc-quality
    objective: 0.95
    sli: {{kind: quality, source: shadow, class_name: disc, iou_threshold: 0.75}}
    min_events: 2
  - name: web-availability
    objective: 0.999
    service: web
    sli: {{kind: availability, selector: 'job="web"'}}
"""


def _config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "segmon.yaml"
    path.write_text(CUSTOM.format(url=url))
    return path


def test_slo_json_reports_every_window(
    database_url: str, sessions: sessionmaker[Session], rows: Rows, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    # disc at IoU >= 0.75: 0.8 good, 0.6 bad, 1 production-only -> 3 events, 2 bad.
    rows.shadow(now - timedelta(minutes=2), now - timedelta(minutes=1), {1: ([0.8, 0.6], 1, 0)})
    rows.shadow(now - timedelta(minutes=40), now - timedelta(minutes=1), {2: ([0.1], 4, 4)})
    rows.session.commit()
    result = runner.invoke(app, ["--config", str(_config(tmp_path, database_url)), "slo", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    by_name = {s["slo"]: s for s in doc["slos"]}
    assert list(by_name) == ["disc-quality", "web-availability"]
    disc = by_name["disc-quality"]
    windows = {w["window"]: w for w in disc["windows"]}
    assert list(windows) == ["5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"]
    assert (windows["5m"]["events"], windows["5m"]["bad_events"]) == (3, 2)
    assert windows["5m"]["burn_rate"] == pytest.approx((2 / 3) / 0.05)
    assert windows["1h"]["events"] == 3  # box rows are not disc's
    assert disc["error_budget_remaining"] == pytest.approx(1 - (2 / 3) / 0.05)
    assert by_name["web-availability"]["computed_by"] == "prometheus"
    assert "windows" not in by_name["web-availability"]


@pytest.mark.prometheus
def test_rules_out_passes_promtool(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    out = tmp_path / "rules"
    config = _config(tmp_path, f"sqlite:///{tmp_path / 'never-created.db'}")
    result = runner.invoke(app, ["--config", str(config), "rules", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["slos"] == ["disc-quality", "web-availability"]
    assert doc["jobs"] == {
        "ingest": 300.0,
        "embed": 900.0,
        "shadow": 3600.0,
        "drift": 3600.0,
        "queue": 3600.0,
        "evaluate": 3600.0,
        "canary": 3600.0,
    }  # the scheduled jobs and their intervals
    assert not (tmp_path / "never-created.db").exists()  # no database needed
    slo_rules = (out / "slo.rules.yml").read_text()
    assert "sloth_slo: disc-quality" in slo_rules and 'job="web"' in slo_rules
    jobs = yaml.safe_load((out / "jobs.rules.yml").read_text())
    assert {r["labels"]["job"] for g in jobs["groups"] for r in g["rules"]} == {
        "ingest",
        "embed",
        "shadow",
        "drift",
        "queue",
        "evaluate",
        "canary",
    }
    check = subprocess.run(
        [promtool, "check", "rules", *doc["rule_files"]], capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0, check.stdout + check.stderr
    test = subprocess.run(
        [promtool, "test", "rules", *(Path(p).name for p in doc["test_files"])],
        cwd=out,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert test.returncode == 0, test.stdout + test.stderr
    assert "SUCCESS" in test.stdout + test.stderr
    amtool = shutil.which("amtool")
    if amtool is not None:
        am = subprocess.run(
            [amtool, "check-config", doc["alertmanager"]],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert am.returncode == 0, am.stdout + am.stderr


def test_slo_over_a_past_period_says_when_alerts_would_have_fired(
    database_url: str, rows: Rows, tmp_path: Path
) -> None:
    # disc at IoU >= 0.75: a bad hour (every pair below) in a day of good hours.
    start = datetime(2026, 11, 23, tzinfo=UTC)
    for hour in range(24):
        captured = start + timedelta(hours=hour, minutes=30)
        iou = 0.1 if hour == 12 else 0.9
        rows.shadow(captured, captured + timedelta(minutes=5), {1: ([iou] * 5, 0, 0)})
    rows.session.commit()
    config = _config(tmp_path, database_url)
    result = runner.invoke(
        app,
        ["--config", str(config), "slo", "--from", "2026-11-23", "--to", "2026-11-24", "--json"],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    [disc] = doc["slos"]  # the availability SLO is Prometheus's
    assert disc["slo"] == "disc-quality" and len(disc["points"]) == 24
    # 5 bad of 5 in the hour ending 13:00 -> 1h burn 20 > 14.4, 5m window empty: no page;
    # 6h/30m: the 30m window is empty at every whole hour. Ticket 1d/2h: 5/120 -> <3.
    # 3d/6h: 1d (and 3d) ratio 5/65 at 13:00 = 1.5x > 1, 6h ratio 5/30 = 3.3x: ticket.
    assert [e["severity"] for e in disc["episodes"]] == ["ticket"]
    assert disc["episodes"][0]["started"] == "2026-11-23T13:00:00+00:00"
    at_13 = disc["points"][12]
    assert at_13["at"] == "2026-11-23T13:00:00+00:00" and at_13["firing"] == ["ticket"]
    assert at_13["windows"]["1h"]["bad_events"] == 5


LOOSE = """
database_url: sqlite:///{db}
slos:
  - name: loose-quality
    objective: 0.8
    sli: {{kind: quality, source: shadow}}
"""


def test_rules_refuse_an_unreachable_tier_and_report_the_ones_dropped(tmp_path: Path) -> None:
    config = tmp_path / "segmon.yaml"
    config.write_text(LOOSE.format(db=tmp_path / "x.db"))
    refused = runner.invoke(app, ["--config", str(config), "rules", "--out", str(tmp_path / "r")])
    # the entry point prints a ConfigError as one line on stderr, exit status 2
    assert isinstance(refused.exception, ConfigError)
    message = str(refused.exception)
    assert message.startswith("invalid setting slos.0 = ")
    assert "SLO 'loose-quality': the page tier 14.4x over 1h and 5m can never fire" in message
    assert "burn rate is at most 5 (every event bad)" in message
    assert not (tmp_path / "r").exists()
    config.write_text(LOOSE.format(db=tmp_path / "x.db") + "    unreachable_tiers: drop\n")
    out = tmp_path / "rules"
    result = runner.invoke(app, ["--config", str(config), "rules", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["adjusted_tiers"] == {
        "loose-quality": [
            "page tier 1h/5m (14.4x) dropped: the burn rate is at most 5",
            "page tier 6h/30m (6x) dropped: the burn rate is at most 5",
        ]
    }
    severities = [
        r["labels"]["severity"]
        for g in yaml.safe_load((out / "slo.rules.yml").read_text())["groups"]
        for r in g["rules"]
        if "alert" in r
    ]
    assert severities == ["ticket"]
    human = runner.invoke(app, ["--config", str(config), "rules", "--out", str(out)])
    assert "SLO loose-quality: page tier 6h/30m (6x) dropped" in human.stdout.replace("\n", " ")
