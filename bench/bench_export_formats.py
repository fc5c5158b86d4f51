"""Speed and memory of the annotation queue's export formats (issue 13: export ≤ 30 s).

Builds ITEMS queue items of SIZE x SIZE images with MASKS production masks each (shapes
drawn from a pool of 64 seeded ellipses, a third with holes, some touching the border),
then per format, in a fresh child process: the time to build the document and serialise
it (``json.dumps`` / the XML text), its size, and the time of the round trip back
(parse the text and decode every mask to COCO RLE, as an import does), checking that
every mask comes back exactly. Reports each child's peak RSS (VmHWM). Writes
bench/results/bench_export_formats.json.

    python -m bench.bench_export_formats --items 1000 --masks 5 --size 512
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

import numpy as np

from bench._common import print_table, write_results
from sampling.formats.coco_json import build_coco, parse_coco
from sampling.formats.cvat import build_cvat_xml, parse_cvat_xml
from sampling.formats.labelstudio import build_tasks, parse_export
from sampling.formats.mask_codec import mask_to_rle
from sampling.formats.records import ExportImage, ExportMask

FORMATS = ("coco", "labelstudio", "cvat")
CATEGORIES = ((1, "disc"), (2, "box"), (3, "triangle"), (4, "star"))


def _pool(rng: np.random.Generator, size: int, n: int = 64) -> list[dict[str, Any]]:
    yy, xx = np.mgrid[0:size, 0:size]
    rles = []
    for k in range(n):
        cy, cx = rng.uniform(0, size, 2)
        ry, rx = rng.uniform(size / 40, size / 4, 2)
        inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
        if k % 3 == 0:
            inside &= ((yy - cy) / (ry / 3)) ** 2 + ((xx - cx) / (rx / 3)) ** 2 > 1.0
        if not inside.any():
            inside[size // 2, size // 2] = True
        rles.append(mask_to_rle(inside.astype(np.uint8)))
    return rles


def _images(items: int, masks: int, size: int, seed: int) -> list[ExportImage]:
    rng = np.random.default_rng(seed)
    pool = _pool(rng, size)
    images = []
    for item in range(items):
        picks = rng.integers(len(pool), size=masks)
        classes = rng.integers(len(CATEGORIES), size=masks)
        instances = tuple(
            ExportMask(CATEGORIES[c][0], CATEGORIES[c][1], pool[p], round(float(rng.random()), 3))
            for p, c in zip(picks, classes, strict=True)
        )
        images.append(
            ExportImage(
                item + 1,
                f"queue/{item + 1:06d}.jpg",
                size,
                size,
                float(rng.random()),
                instances,
                "prod-2026.11.1",
            )
        )
    return images


def _peak_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _child(fmt: str, items: int, masks: int, size: int, seed: int) -> dict[str, Any]:
    images = _images(items, masks, size, seed)
    names = [name for _, name in CATEGORIES]
    start = time.perf_counter()
    if fmt == "coco":
        text = json.dumps(build_coco(images, CATEGORIES))
    elif fmt == "labelstudio":
        text = json.dumps(build_tasks(images))
    else:
        text = build_cvat_xml(images, names)
    build_s = time.perf_counter() - start
    if fmt == "labelstudio":  # an annotator accepted every pre-annotation as it was
        tasks = json.loads(text)
        for task in tasks:
            task["annotations"] = [{"id": 1, "result": task["predictions"][0]["result"]}]
        text = json.dumps(tasks)
    start = time.perf_counter()
    if fmt == "coco":
        returned = parse_coco(json.loads(text))
    elif fmt == "labelstudio":
        returned = parse_export(json.loads(text))
    else:
        returned = parse_cvat_xml(text)
    parse_s = time.perf_counter() - start
    exact = all(
        [a.rle for a in back.annotations] == [m.rle for m in image.masks]
        for image, back in zip(images, returned, strict=True)
    )
    return {
        "format": fmt,
        "build_s": round(build_s, 3),
        "roundtrip_decode_s": round(parse_s, 3),
        "document_mib": round(len(text.encode()) / 2**20, 2),
        "masks": sum(len(i.masks) for i in images),
        "exact": exact,
        "peak_rss_mib": round(_peak_mib(), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--masks", type=int, default=5)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", choices=FORMATS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.items, args.masks, args.size, args.seed)))
        return
    rows = []
    for fmt in FORMATS:
        done = subprocess.run(
            [sys.executable, "-m", "bench.bench_export_formats", "--child", fmt,
             "--items", str(args.items), "--masks", str(args.masks), "--size", str(args.size),
             "--seed", str(args.seed)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    keys = ["format", "build_s", "roundtrip_decode_s", "document_mib", "masks", "exact",
            "peak_rss_mib"]  # fmt: skip
    print_table(keys, [[row[k] for k in keys] for row in rows])
    path = write_results(
        "bench_export_formats",
        {
            "command": "python -m bench.bench_export_formats "
            f"--items {args.items} --masks {args.masks} --size {args.size} --seed {args.seed}",
            "items": args.items,
            "masks_per_item": args.masks,
            "image_size": args.size,
            "target_export_s": 30,
            "results": rows,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
