from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import yaml

from monitor.config import EXAMPLE_CONFIG, DriftSettings, ModelSpec, Settings, load_settings
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
