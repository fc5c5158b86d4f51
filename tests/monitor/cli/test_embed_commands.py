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
from monitor.storage.engine import make_engine, session_factory
from monitor.storage.schema import EmbedderRecord, ImageEmbedding, JobRun, RunStatus, ShadowScore
from tests.support.exported_models import ExportedToys
from tests.support.hosted_scenes import EXPECTED, HOSTED, fresh_workspace, invoke_json
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


@pytest.mark.parametrize("kind", HOSTED)
def test_embed_shadow_and_drift_with_a_hosted_reference(
    kind: str, exported_toys: ExportedToys, colour_dataset: Path, tmp_path: Path
) -> None:
    config = fresh_workspace(tmp_path, colour_dataset, kind, exported_toys)
    assert invoke_json(config, "ingest", str(colour_dataset / "log"))["ingested"] == EXPECTED.images
    embedded = invoke_json(config, "embed", "--batch-size", "4")
    assert (embedded["samples"], embedded["holdout_images"]) == (EXPECTED.images, EXPECTED.images)
    assert embedded["sample_instances"] == EXPECTED.production_instances
    assert embedded["holdout_instances"] == EXPECTED.instances
    shadow = invoke_json(config, "shadow")
    assert shadow["samples"] == EXPECTED.images
    assert (shadow["matched"], shadow["reference_only"], shadow["production_only"]) == (
        EXPECTED.shadow_matched,
        EXPECTED.shadow_reference_only,
        0,
    )
    assert shadow["class_disagreements"] == 0
    assert shadow["mean_agreement"] == pytest.approx(EXPECTED.mean_agreement)
    kites = {"kite": EXPECTED.kites} if kind == "maskrcnn-onnx" else {}
    assert shadow["reference_ignored"] == kites  # left out by classes_map, and counted
    drift = invoke_json(config, "drift")
    assert drift["embedder"] == embedded["embedder"]
    engine = make_engine(f"sqlite:///{tmp_path / 'segmon.db'}")
    with session_factory(engine)() as session:
        record = session.scalars(select(EmbedderRecord)).one()
        dims = set(session.scalars(select(ImageEmbedding.dim)))
        models = set(session.scalars(select(ShadowScore.reference_model)))
    engine.dispose()
    assert record.name == embedded["embedder"] and dims == {record.dim}
    assert models == {shadow["reference_model"]}
    expected_dim = {"yolo-onnx": 2, "yolo-torchscript": 2, "maskrcnn-onnx": 4, "plugin": 3}
    assert record.dim == expected_dim[kind]
    if kind != "plugin":  # exported files record what they are
        assert record.details["sha256"] and record.details["embedding"] == "masked pooling"
