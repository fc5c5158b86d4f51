"""Opening exported files from a config: what is detected, what must be declared."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from monitor.config import ModelSpec
from monitor.errors import ConfigError, InvalidInputError, UnsafeFormatError
from monitor.model.adapters import OnnxModel
from monitor.model.export import export_onnx
from monitor.model.exported import ExportedSegmenter
from monitor.model.hosting import file_format, open_embedder, open_segmenter
from monitor.model.network import SegmentationNetwork
from tests.support.exported_models import ExportedToys


def _spec(path: Path, **declared: object) -> ModelSpec:
    return ModelSpec.model_validate({"path": str(path), "device": "cpu", **declared})


def test_what_the_file_says_is_used_and_the_config_overrides_it(
    exported_toys: ExportedToys,
) -> None:
    path = exported_toys.yolo_v8_onnx
    detected = open_segmenter(path, _spec(path))
    declared = open_segmenter(
        path, _spec(path, classes=["a", "b", "c", "d"], batch=2, resize="resize")
    )
    assert isinstance(detected, ExportedSegmenter) and isinstance(declared, ExportedSegmenter)
    assert detected.runner.prep.input_size == (64, 64)  # the file's fixed height and width
    assert (detected.runner.prep.mode, declared.runner.prep.mode) == ("letterbox", "resize")
    assert declared.categories == ("a", "b", "c", "d") and declared.runner.batch == 2
    with pytest.raises(InvalidInputError, match="fit neither .* with C=3 classes and M=2"):
        open_segmenter(path, _spec(path, classes=["a", "b", "c"]))
    fixed = exported_toys.yolo_v5_onnx  # its input is fixed at 1 x 3 x 64 x 64
    with pytest.raises(
        ConfigError,
        match="input_size \\[128, 128\\] disagrees with the file's fixed input \\[64, 64\\]",
    ):
        open_segmenter(fixed, _spec(fixed, input_size=128))


def test_what_cannot_be_told_must_be_declared(exported_toys: ExportedToys, tmp_path: Path) -> None:
    vector = exported_toys.vector_onnx
    with pytest.raises(
        ConfigError,
        match="cannot tell the output convention of models.reference \\(toy-vector.onnx\\) from its outputs: embedding float32 \\(1, 6\\); logits float32 \\(1, 10\\)",
    ):
        open_segmenter(vector, _spec(vector, input_size=32), where="models.reference")
    script = exported_toys.vector_torchscript
    with pytest.raises(ConfigError, match="does not fix its input size; declare input_size"):
        open_embedder(script, _spec(script))
    rcnn = exported_toys.rcnn_onnx
    with pytest.raises(ConfigError, match="declared `heads` but carries no segmon network config"):
        open_segmenter(rcnn, _spec(rcnn, outputs="heads"))


def test_yolo_without_a_size_and_instances_without_classes(
    tmp_path: Path, exported_toys: ExportedToys
) -> None:
    import torch

    from tests.support.exported_models import _torch_modules

    toys = _torch_modules()

    def trace(module: torch.nn.Module, path: Path) -> None:
        with warnings.catch_warnings():  # the toys' constants: expected in a trace
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(module, torch.zeros(1, 3, 64, 64))  # type: ignore[no-untyped-call]  # untyped in torch
            torch.jit.save(traced, str(path))

    bare_yolo = tmp_path / "bare-yolo.pt"  # no config.txt: neither size nor names
    trace(toys["yolo"](), bare_yolo)
    with pytest.raises(ConfigError, match="a yolo-seg model needs its input_size"):
        open_segmenter(bare_yolo, _spec(bare_yolo))
    sized = open_segmenter(bare_yolo, _spec(bare_yolo, input_size=64))
    assert sized.categories == ("0", "1", "2", "3")  # no names: label indices
    bare_rcnn = tmp_path / "bare-rcnn.pt"
    trace(toys["rcnn"](), bare_rcnn)
    with pytest.raises(ConfigError, match="carries no class names; list them in `classes`"):
        open_segmenter(bare_rcnn, _spec(bare_rcnn))


def test_exports_of_the_builtin_network_keep_running_as_heads(
    tiny_network: SegmentationNetwork, tmp_path: Path
) -> None:
    pytest.importorskip("onnx", reason="onnx (extra segmon[onnx]) is not installed")
    path = export_onnx(tiny_network, tmp_path / "tiny.onnx")
    assert isinstance(open_segmenter(path, _spec(path)), OnnxModel)
    assert isinstance(open_embedder(path, _spec(path)), OnnxModel)


def test_formats_by_suffix_and_pickles_refused() -> None:
    assert file_format(Path("m.ts")) == "torchscript"
    for name in ("m.pth", "m.ckpt", "m.bin", "m"):
        with pytest.raises(UnsafeFormatError, match="refusing to load"):
            file_format(Path(name))
