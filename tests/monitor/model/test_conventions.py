"""Output conventions told from names, then shapes; errors list what was seen."""

from __future__ import annotations

import pytest

from monitor.errors import ConfigError
from monitor.model.conventions import (
    OutputInfo,
    OutputPlan,
    plan_embedder_output,
    plan_outputs,
)


def o(name: str, *shape: int | None, dtype: str = "float32") -> OutputInfo:
    return OutputInfo(name, tuple(shape), dtype)


TORCHVISION = [
    o("boxes", None, 4),
    o("labels", None, dtype="int64"),
    o("scores", None),
    o("masks", None, 1, None, None),
]
# detectron2's TracingAdapter: sorted fields, auto-generated names, an image_size output
DETECTRON2 = [
    o("o0", None, 4),
    o("o1", None, dtype="int64"),
    o("o2", None, 1, 28, 28),
    o("o3", None),
    o("o4", 2, dtype="int64"),
]


def test_names_decide_first() -> None:
    assert plan_outputs(TORCHVISION) == OutputPlan(
        "instances", {"boxes": 0, "labels": 1, "scores": 2, "masks": 3}
    )
    renamed = [
        o("pred_masks", 5, 1, 28, 28),
        o("pred_boxes", 5, 4),
        o("scores", 5),
        o("pred_classes", 5, dtype="int64"),
    ]
    assert plan_outputs(renamed).roles == {"boxes": 1, "labels": 3, "scores": 2, "masks": 0}
    heads = [o(n, 1, 8, 8, 8) for n in ("semantic", "center", "offset", "feature")]
    assert plan_outputs(heads).convention == "heads"


def test_shapes_decide_when_names_say_nothing() -> None:
    plan = plan_outputs([o("x", 1, 37, 100), o("y", 1, 32, 16, 16)])
    assert plan == OutputPlan("yolo-seg", {"detections": 0, "prototypes": 1})
    with_features = [*TORCHVISION, o("features", 1, 256, 50, 50)]
    assert plan_outputs(with_features).roles["features"] == 4


def test_ambiguous_outputs_are_an_error_naming_them_until_output_names_say() -> None:
    with pytest.raises(ConfigError) as caught:
        plan_outputs(DETECTRON2, where="models.reference (d2.onnx)")
    message = str(caught.value)
    assert "cannot tell the output convention of models.reference (d2.onnx)" in message
    assert "o1 int64 (?); o2 float32 (?, 1, 28, 28); o3 float32 (?); o4 int64 (2)" in message
    names = {"boxes": "o0", "labels": "o1", "masks": "o2", "scores": "o3"}
    plan = plan_outputs(DETECTRON2, "instances", names)
    assert plan.roles == {"boxes": 0, "labels": 1, "masks": 2, "scores": 3}


def test_declared_conventions_are_checked() -> None:
    with pytest.raises(ConfigError, match="declared `yolo-seg` but its outputs"):
        plan_outputs(TORCHVISION, "yolo-seg")
    with pytest.raises(
        ConfigError, match="declared `heads` but has 5 outputs, not the built-in network.s 4"
    ):
        plan_outputs(TORCHVISION[:3] + [o("x", 1)] * 2, "heads")
    with pytest.raises(ConfigError, match="output_names.masks = 'nope' is not an output"):
        plan_outputs(TORCHVISION, "instances", {"masks": "nope"})


def test_embedder_outputs() -> None:
    assert plan_embedder_output(
        [o("last_hidden_state", 1, 197, 768), o("pooler_output", 1, 768)]
    ) == (
        1,
        "vector",
    )
    assert plan_embedder_output([o("a", 1, 10), o("b", 1, 64, 7, 7)]) == (1, "map")
    assert plan_embedder_output([o("a", 1, 10), o("b", 1, 20)], "b") == (1, "vector")
    with pytest.raises(ConfigError, match="want \\(N, D\\) or \\(N, D, h, w\\)"):
        plan_embedder_output([o("tokens", 1, 197, 768)])
    with pytest.raises(ConfigError, match="'c' is not an output"):
        plan_embedder_output([o("a", 1, 10)], "c")
