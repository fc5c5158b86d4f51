"""``segmon queue`` on a fresh database: init, ingest, embed, shadow, fill, export, and back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from monitor.cli.main import app
from monitor.errors import InvalidInputError
from tests.support.model_scenes import ModelScenes

runner = CliRunner()


def invoke(*args: str) -> Any:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_queue_commands_from_a_fresh_database(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    model_scenes: ModelScenes,
    model_loads: list[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SEGMON_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("SEGMON_MODELS__REFERENCE", "my-reference")
    monkeypatch.setenv("SEGMON_QUEUE__LOOKBACK", "36500d")  # the scenes' capture times
    monkeypatch.setenv("SEGMON_QUEUE__DAILY_BUDGET", "5")
    log = model_scenes.write_log(tmp_path / "log", lambda labels: labels[1:])
    invoke("init", "--json")
    assert invoke("ingest", str(log), "--json")["ingested"] == 8
    assert invoke("embed", "--json")["samples"] == 8
    assert invoke("shadow", "--json")["samples"] == 8

    filled = invoke("queue", "fill", "--json")
    assert (filled["queued"], filled["candidates"], filled["budget"]) == (5, 8, 5)
    assert len(filled["item_ids"]) == 5 and filled["embedder"]
    assert invoke("queue", "fill", "--json")["queued"] == 0  # the day's budget is spent

    listed = invoke("queue", "list", "--json")
    assert [i["id"] for i in listed] == filled["item_ids"]  # highest priority first
    priorities = [i["priority"] for i in listed]
    assert priorities == sorted(priorities, reverse=True)
    shown = invoke("queue", "show", str(listed[0]["id"]), "--json")
    assert shown["signals"] and "disagreement" in shown["signals"]  # every sample was shadowed
    assert shown["reason"] in shown["signals"]

    exported = invoke("queue", "export", "--format", "labelstudio", "--limit", "3", "--json")
    assert exported["items"] == 3 and exported["item_ids"] == filled["item_ids"][:3]
    tasks = json.loads(Path(exported["path"]).read_text())
    assert [t["data"]["segmon_item_id"] for t in tasks] == exported["item_ids"]
    assert Path(exported["extra_files"][0]).name == "labeling_config.xml"

    skipped = invoke("queue", "skip", str(filled["item_ids"][4]), "--json")
    assert skipped["state"] == "skipped"
    stats = invoke("queue", "stats", "--json")
    assert stats["depth"] == {"queued": 1, "exported": 3, "labeled": 0, "skipped": 1, "expired": 0}
    assert (stats["queued_today"], stats["budget_used_ratio"]) == (5, 1.0)
    assert invoke("queue", "list", "--state", "queued", "--json")[0]["id"] == filled["item_ids"][3]

    again = runner.invoke(app, ["queue", "skip", str(filled["item_ids"][4])])
    assert again.exit_code != 0
    human = runner.invoke(app, ["queue", "stats"])
    assert human.exit_code == 0 and "queued today: 5 of 5 (100%)" in human.stdout


def test_queue_fill_over_a_past_period(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    model_scenes: ModelScenes,
    model_loads: list[str],
) -> None:
    # A team pointing segmon at last month's logs: the default look-back (1d before now)
    # holds none of them; --from/--to picks the period.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SEGMON_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("SEGMON_MODELS__REFERENCE", "my-reference")
    log = model_scenes.write_log(tmp_path / "log", lambda labels: labels[1:])
    invoke("init", "--json")
    assert invoke("ingest", str(log), "--json")["ingested"] == 8
    assert invoke("shadow", "--json")["samples"] == 8
    assert invoke("queue", "fill", "--json")["candidates"] == 0
    later = invoke("queue", "fill", "--from", "2100-01-01", "--to", "2100-01-02", "--json")
    assert later["candidates"] == 0
    filled = invoke("queue", "fill", "--from", "1970-01-01", "--to", "2100-01-01", "--json")
    assert (filled["candidates"], filled["queued"]) == (8, 8)
    bad = runner.invoke(app, ["queue", "fill", "--from", "2026-13-01", "--to", "2027-01-01"])
    # the entry point prints it as one line naming the value, exit status 2
    assert isinstance(bad.exception, InvalidInputError) and "'2026-13-01'" in str(bad.exception)
