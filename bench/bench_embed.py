"""Embedding throughput of the built-in model: batched vs one image at a time.

For 256 and 512 px images and batch sizes 1, 8, 32, times ``model.embed`` (each image
with three instance masks) against a plain loop that embeds one image per call, and
records peak memory (max RSS on the CPU, ``torch.cuda.max_memory_allocated`` on CUDA;
AMP and channels-last on CUDA are the adapter's defaults). Writes
bench/results/bench_embed_<device>.json.

    nice -n 10 python -m bench.bench_embed --device cpu [--images 64] [--model reference]
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch

from bench._common import print_table, write_results
from monitor.model.loading import load_model
from monitor.synth import SynthConfig, render_scene


def _data(n: int, size: int) -> tuple[list[np.ndarray], list[list[np.ndarray]]]:
    config = SynthConfig(n_images=n, seed=4242, size=size)
    scenes = [render_scene(np.random.default_rng([4242, i, 0]), config) for i in range(n)]
    return [s.image for s in scenes], [list(s.masks[:3]) for s in scenes]


def _peak_mb(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--images", type=int, default=64, help="images per measurement")
    parser.add_argument("--model", default="reference")
    args = parser.parse_args()
    rows = []
    for size in (256, 512):
        images, masks = _data(args.images, size)
        loop_model = load_model(args.model, device=args.device, batch_size=1)
        loop_model.embed(images[:2], masks[:2])  # warm-up
        _sync(args.device)
        start = time.perf_counter()
        for image, image_masks in zip(images, masks, strict=True):
            loop_model.embed([image], [image_masks])
        _sync(args.device)
        loop_rate = len(images) / (time.perf_counter() - start)
        rows.append(
            {
                "size": size,
                "mode": "loop",
                "batch_size": 1,
                "images_per_s": loop_rate,
                "peak_mb": _peak_mb(args.device),
            }
        )
        for batch_size in (1, 8, 32):
            if args.device.startswith("cuda"):
                torch.cuda.reset_peak_memory_stats()
            model = load_model(args.model, device=args.device, batch_size=batch_size)
            model.embed(images[:batch_size], masks[:batch_size])  # warm-up
            _sync(args.device)
            start = time.perf_counter()
            model.embed(images, masks)
            _sync(args.device)
            rate = len(images) / (time.perf_counter() - start)
            rows.append(
                {
                    "size": size,
                    "mode": "batched",
                    "batch_size": batch_size,
                    "images_per_s": rate,
                    "peak_mb": _peak_mb(args.device),
                    "speedup_vs_loop": rate / loop_rate,
                }
            )
    print_table(
        ["size", "mode", "batch", "images/s", "peak MB", "x loop"],
        [
            [
                r["size"],
                r["mode"],
                r["batch_size"],
                round(r["images_per_s"], 1),
                round(r["peak_mb"]),
                round(r.get("speedup_vs_loop", 1.0), 2),
            ]
            for r in rows
        ],
    )
    path = write_results(
        f"bench_embed_{args.device}",
        {
            "device": args.device,
            "model": args.model,
            "images": args.images,
            "torch_threads": torch.get_num_threads(),
            "rows": rows,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
