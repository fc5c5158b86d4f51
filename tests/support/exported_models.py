"""Constructed models in each output convention, exported to ONNX and TorchScript.

Every model here "sees" red and green rectangles (pure red / green pixels on black) and
nothing else, so what it must predict on an image is known exactly:

* :class:`ToyYoloSeg`: ``yolo-seg`` outputs, detections in the Ultralytics v8 layout
  ``(B, 4+C+M, A)`` or the YOLOv5 layout ``(B, A, 5+C+M)``, prototypes
  ``(B, 2, h/4, w/4)`` = +-10 logits of the stride-4 rows holding red / green (bands
  across the image: the box crop cuts the columns, so the masks are exact rectangles,
  no rounded corners); a duplicate red anchor (for NMS) and a green anchor below the
  score threshold;
* :class:`ToyMaskRCNN`: ``instances`` outputs of one image (torchvision's export
  convention): red, green and a "kite" (a second box over the green one), with
  input-resolution mask probabilities or 2 x 2 box-relative RoI masks;
* :class:`ToyFeatureMap` / :class:`ToyVectorEmbedder`: image-feature models, a stride-4
  map of the mean colour (plus a constant channel) and one vector per image (mean colour
  and its square) with a ``logits`` output beside it.

:func:`scene` draws such images; rectangles on multiples of 4 pixels keep every expected
mask exact under letterboxing by 1/2, 1 or 2.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pytest

from detectors._typing import ImageArray, MaskArray

if TYPE_CHECKING:
    import torch

YOLO_CLASSES = ("disc", "box", "triangle", "star")
RCNN_CLASSES = ("__background__", "disc", "box", "kite")
RED, GREEN = (255, 0, 0), (0, 255, 0)

Rect = tuple[int, int, int, int]
"""``(y0, y1, x0, x1)``, end exclusive."""


def scene(size: tuple[int, int], red: Rect | None, green: Rect | None) -> ImageArray:
    """A black ``(H, W)`` image with a red and a green rectangle (either may be None)."""
    image = np.zeros((*size, 3), dtype=np.uint8)
    for rect, colour in ((red, RED), (green, GREEN)):
        if rect is not None:
            y0, y1, x0, x1 = rect
            image[y0:y1, x0:x1] = colour
    return image


def rect_mask(size: tuple[int, int], rect: Rect) -> MaskArray:
    """The ``bool (H, W)`` mask of a rectangle."""
    mask = np.zeros(size, dtype=np.bool_)
    y0, y1, x0, x1 = rect
    mask[y0:y1, x0:x1] = True
    return mask


def _colour_masks(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Red and green indicator maps ``(B, H, W)`` of a ``(B, 3, H, W)`` RGB [0, 1] batch."""
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    red = ((r > 0.5) & (g < 0.5) & (b < 0.5)).float()
    green = ((g > 0.5) & (r < 0.5) & (b < 0.5)).float()
    return red, green


def _box(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, 4)`` ``x1, y1, x2, y2`` of a ``(B, H, W)`` indicator, and whether it is present."""
    import torch

    height, width = mask.shape[-2], mask.shape[-1]
    rows = mask.amax(dim=2) > 0
    cols = mask.amax(dim=1) > 0
    ys = torch.arange(height, dtype=torch.float32)[None]
    xs = torch.arange(width, dtype=torch.float32)[None]
    big = torch.tensor(1e6)
    y1 = torch.where(rows, ys, big).amin(dim=1)
    y2 = torch.where(rows, ys + 1, -big).amax(dim=1)
    x1 = torch.where(cols, xs, big).amin(dim=1)
    x2 = torch.where(cols, xs + 1, -big).amax(dim=1)
    present = rows.float().amax(dim=1)
    boxes = torch.stack([x1, y1, x2, y2], dim=1) * present[:, None]
    return boxes, present


def _torch_modules() -> dict[str, type]:
    """The toy modules (defined when torch is first needed, not at collection)."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    class ToyYoloSeg(nn.Module):
        def __init__(self, layout: str = "v8") -> None:
            super().__init__()
            self.layout = layout

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            red, green = _colour_masks(x)
            rows = torch.stack([red.amax(dim=2), green.amax(dim=2)], dim=1)[..., None]
            bands = rows.expand(-1, -1, -1, x.shape[-1])  # the colour's rows, every column
            protos = (F.avg_pool2d(bands, 4) - 0.5) * 20.0
            (rbox, rhere), (gbox, ghere) = _box(red), _box(green)
            n = x.shape[0]
            c = len(YOLO_CLASSES)

            def anchor(
                box: torch.Tensor, score: torch.Tensor, cls: int, coef: list[float]
            ) -> torch.Tensor:
                xywh = torch.stack(
                    [
                        (box[:, 0] + box[:, 2]) / 2,
                        (box[:, 1] + box[:, 3]) / 2,
                        box[:, 2] - box[:, 0],
                        box[:, 3] - box[:, 1],
                    ],
                    dim=1,
                )
                probs = torch.zeros(n, c)
                probs[:, cls] = 1.0
                coefs = torch.tensor(coef).expand(n, 2)
                if self.layout == "v8":
                    return torch.cat([xywh, probs * score[:, None], coefs], dim=1)
                return torch.cat([xywh, score[:, None], probs, coefs], dim=1)

            anchors = [
                anchor(rbox, 0.9 * rhere, 0, [1.0, 0.0]),
                anchor(rbox + 1.0, 0.6 * rhere, 0, [1.0, 0.0]),  # duplicate: NMS drops it
                anchor(gbox, 0.8 * ghere, 1, [0.0, 1.0]),
                anchor(gbox, 0.1 * ghere, 2, [0.0, 1.0]),  # below the score threshold
            ]
            # empty anchors: like real exports, more anchors than features per anchor
            anchors += [anchor(gbox, 0.0 * ghere, 3, [0.0, 0.0])] * 12
            det = torch.stack(anchors, dim=2 if self.layout == "v8" else 1)
            return det, protos

    class ToyMaskRCNN(nn.Module):
        def __init__(self, roi: bool = False) -> None:
            super().__init__()
            self.roi = roi

        def forward(
            self, x: torch.Tensor
        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
            batch = x if x.ndim == 4 else x[None]
            red, green = _colour_masks(batch)
            (rbox, rhere), (gbox, ghere) = _box(red), _box(green)
            kite = gbox[0] + torch.tensor([0.0, 0.0, 0.0, 0.0])
            boxes = torch.stack([rbox[0], gbox[0], kite])
            labels = torch.tensor([1, 2, 3], dtype=torch.int64)
            scores = torch.stack([0.95 * rhere[0], 0.85 * ghere[0], 0.7 * ghere[0]])
            if self.roi:
                pattern = torch.tensor([1.0, 1.0, 0.0, 0.0])  # the left half of the box
                masks = pattern.expand(3, 1, 4, 4).contiguous()
            else:
                masks = torch.stack([red[0], green[0], green[0]])[:, None]
            return boxes, labels, scores, masks

    class ToyFeatureMap(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            ones = torch.ones_like(x[:, :1])
            return F.avg_pool2d(torch.cat([x, ones], dim=1), 4)

    class ToyVectorEmbedder(nn.Module):
        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            mean = x.mean(dim=(2, 3))
            embedding = torch.cat([mean, mean * mean], dim=1)
            logits = embedding.sum(dim=1, keepdim=True).expand(-1, 10) * 0.1
            return embedding, logits

    return {
        "yolo": ToyYoloSeg,
        "rcnn": ToyMaskRCNN,
        "featuremap": ToyFeatureMap,
        "vector": ToyVectorEmbedder,
    }


@dataclass(frozen=True)
class ExportedToys:
    """Paths of the exported toy models."""

    yolo_v8_onnx: Path
    yolo_v5_onnx: Path
    yolo_v8_torchscript: Path
    rcnn_onnx: Path
    rcnn_roi_onnx: Path
    rcnn_torchscript: Path
    featuremap_onnx: Path
    vector_onnx: Path
    vector_torchscript: Path


def _onnx(
    module: torch.nn.Module,
    example: torch.Tensor,
    path: Path,
    inputs: list[str],
    outputs: list[str],
    dynamic: dict[str, dict[int, str]],
    metadata: dict[str, str] | None = None,
) -> Path:
    import onnx
    import torch

    with torch.no_grad():
        torch.onnx.export(
            module,
            (example,),
            str(path),
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=dynamic,
            opset_version=17,
            dynamo=False,
        )
    model = onnx.load(str(path))
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
    return path


def _torchscript(
    module: torch.nn.Module, example: torch.Tensor, path: Path, extra: dict[str, str]
) -> Path:
    import torch

    with torch.no_grad():
        traced = torch.jit.trace(module, example, check_trace=False)  # type: ignore[no-untyped-call]  # untyped in torch
    torch.jit.save(traced, str(path), _extra_files=extra)
    return path


def export_toys(out: Path) -> ExportedToys:
    """Export every toy model to ``out`` (the exporters' warnings about constants and
    deprecation are expected here and silenced)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _export_toys(out)


def _export_toys(out: Path) -> ExportedToys:
    import torch

    pytest.importorskip("onnx", reason="onnx (extra segmon[onnx]) is not installed")
    pytest.importorskip("onnxruntime", reason="onnxruntime (extra segmon[onnx]) is not installed")
    toys = _torch_modules()
    names = str(dict(enumerate(YOLO_CLASSES)))  # Ultralytics writes str() of a dict
    x64 = torch.zeros(1, 3, 64, 64)
    yolo_meta = {"names": names, "imgsz": "[64, 64]", "task": "segment"}
    batch = {0: "batch"}
    yolo_dyn = {"images": batch, "output0": batch, "output1": batch}
    rcnn_dyn = {
        "images_tensors": {1: "height", 2: "width"},
        "boxes": {0: "n"},
        "labels": {0: "n"},
        "scores": {0: "n"},
        "masks": {0: "n", 2: "height", 3: "width"},
    }
    rcnn_names = json.dumps(list(RCNN_CLASSES))
    return ExportedToys(
        yolo_v8_onnx=_onnx(
            toys["yolo"]("v8"),
            x64,
            out / "toy-yolov8-seg.onnx",
            ["images"],
            ["output0", "output1"],
            yolo_dyn,
            yolo_meta,
        ),
        yolo_v5_onnx=_onnx(
            toys["yolo"]("v5"),
            x64,
            out / "toy-yolov5-seg.onnx",
            ["images"],
            ["output0", "output1"],
            {},
            yolo_meta,
        ),
        yolo_v8_torchscript=_torchscript(
            toys["yolo"]("v8"),
            x64,
            out / "toy-yolov8-seg.torchscript",
            {"config.txt": json.dumps({"names": dict(enumerate(YOLO_CLASSES)), "imgsz": [64, 64]})},
        ),
        rcnn_onnx=_onnx(
            toys["rcnn"](),
            torch.zeros(3, 64, 64),
            out / "toy-maskrcnn.onnx",
            ["images_tensors"],
            ["boxes", "labels", "scores", "masks"],
            rcnn_dyn,
            {"classes": rcnn_names},
        ),
        rcnn_roi_onnx=_onnx(
            toys["rcnn"](roi=True),
            torch.zeros(1, 3, 64, 64),
            out / "toy-maskrcnn-roi.onnx",
            ["input"],
            ["o1", "o2", "o3", "o4"],
            {},
            {"classes": rcnn_names},
        ),
        rcnn_torchscript=_torchscript(
            toys["rcnn"](),
            torch.zeros(1, 3, 64, 64),
            out / "toy-maskrcnn.pt",
            {"classes.json": rcnn_names},
        ),
        featuremap_onnx=_onnx(
            toys["featuremap"](),
            torch.zeros(2, 3, 32, 32),
            out / "toy-featuremap.onnx",
            ["pixel_values"],
            ["features"],
            {"pixel_values": batch, "features": batch},
        ),
        vector_onnx=_onnx(
            toys["vector"](),
            torch.zeros(2, 3, 32, 32),
            out / "toy-vector.onnx",
            ["pixel_values"],
            ["embedding", "logits"],
            {"pixel_values": batch, "embedding": batch, "logits": batch},
        ),
        vector_torchscript=_torchscript(
            toys["vector"](), torch.zeros(2, 3, 32, 32), out / "toy-vector.pt", {}
        ),
    )


@pytest.fixture(scope="session")
def exported_toys(tmp_path_factory: pytest.TempPathFactory) -> ExportedToys:
    """The toy models exported once per session."""
    return export_toys(tmp_path_factory.mktemp("exported_toys"))


def rcnn_kind(path: Path) -> Literal["full", "roi"]:
    """Whether a toy Mask R-CNN export returns input-size or RoI masks."""
    return "roi" if "roi" in path.name else "full"
