from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from monitor.config import (
    EXAMPLE_CONFIG,
    CategorySpec,
    DriftSettings,
    ModelSpec,
    Settings,
    load_settings,
    read_coco_categories,
    write_categories,
)
from monitor.errors import ConfigError
from tests.support.drift_scenes import NOW


def test_example_config_is_valid_and_equals_the_defaults() -> None:
    assert Settings.model_validate(yaml.safe_load(EXAMPLE_CONFIG)) == Settings()


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = tmp_path / "segmon.yaml"
    path.write_text(
        "database_url: sqlite:///a.db\ningest:\n  batch_size: 10\n  verify_images: false\n"
    )
    settings = load_settings(path, {"SEGMON_INGEST__BATCH_SIZE": "20", "OTHER": "x"})
    assert settings.database_url == "sqlite:///a.db"
    assert (settings.ingest.batch_size, settings.ingest.verify_images) == (20, False)
    assert load_settings(path, {"SEGMON_DATABASE_URL": "sqlite://"}).database_url == "sqlite://"


def test_other_segmon_variables_are_not_settings() -> None:
    env = {
        "SEGMON_TEST_POSTGRES_URL": "postgresql://x",
        "SEGMON_ADMIN_TOKEN": "s3cret",
        "SEGMON_CONFIG": "a.yaml",
    }
    assert load_settings(None, env) == Settings()
    with pytest.raises(ConfigError, match="ingest.batchsize"):
        load_settings(None, {"SEGMON_INGEST__BATCHSIZE": "3"})


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("ingest: {batch_size: -1}", "ingest.batch_size = -1"),
        ("ingets: {}", "ingets"),
        ("categories: [{id: 1, name: a}, {id: 2, name: a}]", "duplicate category name: a"),
        ("- just\n- a list", "mapping"),
        ("a: [unclosed", "not valid YAML"),
    ],
)
def test_bad_config_is_named(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "segmon.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=words.replace("[", r"\[")):
        load_settings(path, {})


def test_drift_settings_validate() -> None:
    with pytest.raises(ValueError, match="fortnight"):
        DriftSettings(windows=("fortnight",))
    with pytest.raises(ValueError, match="chi_square"):
        DriftSettings.model_validate({"detectors": {"mask_geometry": ["chi_square"]}})
    with pytest.raises(ValueError, match="not after start"):
        DriftSettings.model_validate({"reference": {"start": NOW, "end": NOW}})
    assert Counter(DriftSettings().windows) == Counter(["1h", "1d"])


def test_write_categories_keeps_every_other_line_and_validates(tmp_path: Path) -> None:
    path = tmp_path / "segmon.yaml"
    path.write_text(EXAMPLE_CONFIG.replace("sources: []", "sources: [/data/log]  # mine"))
    write_categories(path, [CategorySpec(id=0, name="person"), CategorySpec(id=5, name="yes")])
    text = path.read_text()
    assert "sources: [/data/log]  # mine" in text and "# The production model's classes" in text
    assert [(c.id, c.name) for c in load_settings(path).categories] == [(0, "person"), (5, "yes")]
    with pytest.raises(ConfigError, match="duplicate category id"):
        write_categories(path, [CategorySpec(id=1, name="a"), CategorySpec(id=1, name="b")])
    assert [(c.id, c.name) for c in load_settings(path).categories] == [(0, "person"), (5, "yes")]


def test_read_coco_categories_names_a_bad_entry(tmp_path: Path) -> None:
    coco = tmp_path / "c.json"
    coco.write_text('{"categories": [{"id": 0, "name": "a"}, {"id": "x", "name": "b"}]}')
    with pytest.raises(ConfigError, match=r"categories\[1\]"):
        read_coco_categories(coco)


def test_models_take_a_plain_name_or_a_spec(tmp_path: Path) -> None:
    assert Settings().models.reference == ModelSpec(path="reference")
    assert (
        load_settings(None, {"SEGMON_MODELS__REFERENCE": "m.onnx"}).models.reference.path
        == "m.onnx"
    )
    path = tmp_path / "segmon.yaml"
    path.write_text(
        "models:\n"
        "  reference: {path: yolo.onnx, outputs: yolo-seg, input_size: 640,\n"
        "              classes_map: {person: human, kite: null}, unmapped: ignore}\n"
        "  embedder: {python: 'pkg.mod:make', options: {url: 'http://x'}}\n"
    )
    models = load_settings(path, {}).models
    assert models.reference.input_size == (640, 640)
    assert models.reference.classes_map == {"person": "human", "kite": None}
    assert models.embedder is not None and models.embedder.options == {"url": "http://x"}
    env = {"SEGMON_MODELS__REFERENCE__INPUT_SIZE": "320"}
    assert load_settings(path, env).models.reference.input_size == (320, 320)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"path": "a.onnx", "python": "p:f"}, "exactly one of path"),
        ({}, "exactly one of path"),
        ({"python": "p.f"}, "must look like 'package.module:factory'"),
        ({"path": "a.onnx", "options": {"x": 1}}, "options are the plugin factory's arguments"),
        ({"path": "a.onnx", "output_names": {"mask": "o1"}}, "unknown output role"),
        ({"path": "a.onnx", "std": [1, 0, 1]}, "std [1.0, 0.0, 1.0] must be positive"),
        ({"path": "a.onnx", "input_size": 4}, "input_size [4, 4] must be between"),
        ({"path": "a.onnx", "outputs": "mask-rcnn"}, "models.reference.outputs"),
        ({"path": "a.onnx", "batch": 0}, "batch 0 must be between"),
    ],
)
def test_bad_model_specs_name_the_problem(
    spec: dict[str, object], message: str, tmp_path: Path
) -> None:
    path = tmp_path / "segmon.yaml"
    path.write_text(yaml.safe_dump({"models": {"reference": spec}}))
    with pytest.raises(ConfigError) as caught:
        load_settings(path, {})
    assert str(caught.value).startswith("invalid setting models.reference")
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SEGMON_QUEUE__LOOKBACK": "yesterday"}, "queue.lookback = 'yesterday'"),
        ({"SEGMON_QUEUE__DAILY_BUDGET": "-1"}, "queue.daily_budget = '-1'"),
        ({"SEGMON_QUEUE__EXPORT__FORMAT": "yolo"}, "queue.export.format = 'yolo'"),
        ({"SEGMON_QUEUE__EXPORT__IMAGES": "url"}, "url_prefix is not set"),
    ],
)
def test_queue_settings_name_the_bad_value(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(named)):
        load_settings(None, env)


def test_queue_weights_and_quotas_must_name_known_signals_and_classes(tmp_path: Path) -> None:
    path = tmp_path / "segmon.yaml"
    path.write_text("queue: {weights: {uncertainty: 1.0}}\n")
    with pytest.raises(ConfigError, match=r"unknown signal\(s\) \['uncertainty'\]"):
        load_settings(path)
    path.write_text("queue: {class_quota: {zebra: 3}}\n")
    with pytest.raises(ConfigError, match=r"unknown class\(es\) \['zebra'\]"):
        load_settings(path)
    path.write_text("queue: {class_quota: {star: 3}, weights: {drift: 2.0}, ttl: 2d}\n")
    queue = load_settings(path).queue
    assert (queue.class_quota, queue.weights, queue.ttl) == ({"star": 3}, {"drift": 2.0}, "2d")
