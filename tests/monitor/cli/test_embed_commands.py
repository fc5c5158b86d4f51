"""``segmon embed`` / ``segmon shadow`` through the command line, with a fake reference model.

``monitor.model.loading.load_model`` is replaced by one returning the fake (the
``model_loads`` fixture), so these run without model weights.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from monitor.cli.main import app
from monitor.storage.schema import JobRun, RunStatus
from tests.support.model_scenes import ModelScenes

runner = CliRunner()


def invoke(*args: str) -> dict[str, Any]:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    payload: dict[str, Any] = json.loads(result.stdout)
    return payload


def test_embed_and_shadow_commands(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    model_scenes: ModelScenes,
    model_loads: list[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SEGMON_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("SEGMON_MODELS__REFERENCE", "my-reference")
    log = model_scenes.write_log(tmp_path / "log", lambda labels: labels[1:])
    invoke("init", "--json")
    assert invoke("ingest", str(log), "--json")["ingested"] == 8
    first = invoke("embed", "--limit", "5", "--batch-size", "2", "--json")
    second = invoke("embed", "--json")
    assert (first["samples"], second["samples"], second["holdout_images"]) == (5, 3, 0)
    assert first["embedder"] == model_scenes.reference().name
    shadow = invoke("shadow", "--json")
    n_labels = sum(len(v) for v in model_scenes.labels.values())
    n_first = sum(1 for v in model_scenes.labels.values() if v)
    assert (shadow["samples"], shadow["matched"], shadow["reference_only"]) == (
        8,
        n_labels - n_first,
        n_first,
    )
    assert model_loads == ["my-reference"] * 3
    result = runner.invoke(app, ["shadow"])
    assert result.exit_code == 0 and "scored 0 samples" in result.stdout
    from monitor.storage.engine import make_engine, session_factory

    engine = make_engine(f"sqlite:///{tmp_path / 'cli.db'}")
    with session_factory(engine)() as s:
        runs = s.execute(select(JobRun.job, JobRun.status).order_by(JobRun.id)).all()
    engine.dispose()
    assert [tuple(r) for r in runs if r.job != "ingest"] == [
        ("embed", RunStatus.SUCCESS),
        ("embed", RunStatus.SUCCESS),
        ("shadow", RunStatus.SUCCESS),
        ("shadow", RunStatus.SUCCESS),
    ]
