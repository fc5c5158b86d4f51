"""Plugins: imported only when named, checked against the protocol of their role."""

from __future__ import annotations

import sys

import pytest

from monitor.errors import ConfigError
from monitor.model.plugins import Role, check_plugin, load_plugin
from monitor.model.protocol import SegmentationModel
from tests.support.plugin_model import ColourModel

PLUGIN = "tests.support.plugin_model"


def test_a_plugin_gets_its_options_and_is_checked() -> None:
    model = load_plugin(f"{PLUGIN}:make_model", {"name": "plugin:x@9"}, "SegmentationModel")
    assert isinstance(model, ColourModel) and isinstance(model, SegmentationModel)
    assert model.name == "plugin:x@9"


@pytest.mark.parametrize(
    ("target", "role", "message"),
    [
        (
            "tests.support.no_such_module:make",
            "InstanceSegmenter",
            "cannot import plugin module 'tests.support.no_such_module'",
        ),
        (f"{PLUGIN}:nothing", "InstanceSegmenter", f"module '{PLUGIN}' has no callable 'nothing'"),
        (
            f"{PLUGIN}:make_broken",
            "InstanceSegmenter",
            "the plugin returned a _NoPredict without `predict`; an InstanceSegmenter needs name, categories, predict",
        ),
        (
            f"{PLUGIN}:make_segmenter",
            "Embedder",
            "without `embedding_dim`; an Embedder needs name, embedding_dim, embed",
        ),
        (
            f"{PLUGIN}:make_listed",
            "InstanceSegmenter",
            "`categories` must be a non-empty tuple of class names, got ['disc', 'box']",
        ),
        (
            f"{PLUGIN}:make_failing",
            "InstanceSegmenter",
            "plugin factory 'tests.support.plugin_model:make_failing' failed: RuntimeError(\"cannot reach the model server 'http://x'\")",
        ),
    ],
)
def test_plugin_errors_name_the_problem(target: str, role: Role, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_plugin(
            target, {"url": "http://x"} if "failing" in target else {}, role, "models.reference"
        )
    assert str(caught.value).startswith("models.reference: ")
    assert message in str(caught.value)


def test_typed_attributes_are_checked() -> None:
    with pytest.raises(ConfigError, match="`embedding_dim` must be a positive int, got 0"):
        check_plugin(ColourModel(embedding_dim=0), "SegmentationModel")
    with pytest.raises(ConfigError, match="`name` must be a string of 1-128 characters"):
        check_plugin(ColourModel(name=""), "InstanceSegmenter")


def test_nothing_is_imported_until_a_plugin_is_loaded() -> None:
    sys.modules.pop("tests.support.lazy_plugin_probe", None)
    from monitor.config import Settings

    Settings.model_validate(
        {"models": {"reference": {"python": "tests.support.lazy_plugin_probe:make"}}}
    )
    assert "tests.support.lazy_plugin_probe" not in sys.modules
