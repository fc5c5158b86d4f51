"""Loading: a bundled name or a file by suffix (anything unsafe refused); configured models."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import pytest

from monitor.config import ModelSpec, ModelsSettings
from monitor.errors import ConfigError, NotFoundError, UnsafeFormatError
from monitor.model.classmap import ClassMappedModel
from monitor.model.loading import load_embedder, load_model, load_named, load_reference
from tests.support.exported_models import ExportedToys
from tests.support.plugin_model import ColourModel


def test_load_model_dispatches_by_suffix_and_refuses_the_rest(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="missing.onnx"):
        load_model(str(tmp_path / "missing.onnx"))
    odd = tmp_path / "model.h5"
    odd.write_bytes(b"\x89HDF")
    with pytest.raises(UnsafeFormatError, match="model.h5"):
        load_model(str(odd))
    fake = tmp_path / "model.pt"
    fake.write_bytes(b"not a zip")
    with pytest.raises(UnsafeFormatError, match="model.pt"):
        load_model(str(fake))


def test_load_reference_from_a_spec_plugin_or_plain_name(exported_toys: ExportedToys) -> None:
    plain = load_reference(ModelSpec(path="production"))
    assert plain.name.startswith("builtin:production@")
    declared = load_reference(
        ModelSpec(
            path=str(exported_toys.rcnn_onnx),
            classes_map={"__background__": None},
            unmapped="ignore",
        ),
        ["disc", "box"],
    )
    assert isinstance(declared, ClassMappedModel)
    assert declared.categories == ("disc", "box") and declared.left_out == (
        "__background__",
        "kite",
    )
    plugin = load_reference(ModelSpec(python="tests.support.plugin_model:make_model"))
    assert isinstance(plugin, ColourModel)


def test_the_embedder_defaults_to_the_reference_when_it_can_embed(
    exported_toys: ExportedToys,
) -> None:
    yolo = ModelsSettings(
        reference=ModelSpec(path=str(exported_toys.yolo_v8_onnx), classes_map={"disc": "round"})
    )
    reference = load_reference(yolo.reference, ["round", "box"])
    embedder = load_embedder(yolo, reference)
    assert isinstance(reference, ClassMappedModel)
    assert embedder is cast(object, reference.inner)  # the unmapped model embeds
    rcnn = ModelsSettings(reference=ModelSpec(path=str(exported_toys.rcnn_onnx)))
    with pytest.raises(ConfigError, match="has no feature map to embed with; set models.embedder"):
        load_embedder(rcnn)
    segmenter_only = ModelsSettings(
        reference=ModelSpec(python="tests.support.plugin_model:make_segmenter")
    )
    with pytest.raises(ConfigError, match="without `embedding_dim`; an Embedder needs"):
        load_embedder(segmenter_only)
    separate = ModelsSettings(
        reference=rcnn.reference, embedder=ModelSpec(path=str(exported_toys.featuremap_onnx))
    )
    assert load_embedder(separate).name.startswith("onnx:toy-featuremap@")
    plugin = ModelsSettings(embedder=ModelSpec(python="tests.support.plugin_model:make_model"))
    assert isinstance(load_embedder(plugin), ColourModel)


def test_load_named_reference_means_the_configured_one(exported_toys: ExportedToys) -> None:
    models = ModelsSettings(reference=ModelSpec(path=str(exported_toys.yolo_v5_onnx)))
    assert load_named("reference", models, device="cpu").name.startswith("onnx:toy-yolov5-seg@")
    assert load_named("production", models, device="cpu").name.startswith("builtin:production@")
    default = load_named("reference", ModelsSettings(), device="cpu")
    assert default.name.startswith("builtin:reference@")
