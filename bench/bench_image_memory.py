"""Peak memory of embedding one large image: bounded by the model's input vs full size.

Writes a SIDE x SIDE PNG with two masks (a large box and a 3 x 2 object) once, then in
a fresh child process per mode loads it as the embed job does
(:func:`monitor.embed.tasks.load_image`) and embeds it with the reference model:
``bounded`` shrinks image and masks to at most 4x the model's input side (the jobs'
behaviour), ``full`` decodes and embeds at full size (the behaviour before). Reports
each child's peak RSS (VmHWM) and the baseline of torch plus the model. The pixel cap is lifted
for the measurement (the default cap, 50 MP, refuses a 144 MP image outright). Writes
bench/results/bench_image_memory.json.

    python -m bench.bench_image_memory [--side 12000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from bench._common import print_table, write_results
from monitor.masks import encode_mask

CHILD = """
import json, sys
from monitor.embed.tasks import ImageTask, StoredMask, load_image, max_side
from monitor.images import ImageAccess
from monitor.model.loading import load_model
folder, side, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def peak_mib():  # VmHWM starts afresh at exec (ru_maxrss would inherit the parent's peak)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
model = load_model("reference", device="cpu")
if mode == "baseline":
    print(json.dumps({"peak_rss_mib": peak_mib()}))
    raise SystemExit(0)
counts = json.load(open(folder + "/masks.json"))
masks = tuple(StoredMask(i, 1, c) for i, c in enumerate(counts))
task = ImageTask(1, folder + "/big.png", side, side, masks)
bound = max_side(model) if mode == "bounded" else None
loaded = load_image(task, ImageAccess(max_pixels=2**31 - 1), bound)
assert loaded.problem is None, loaded.problem
model.embed([loaded.image], [list(loaded.masks)])
print(json.dumps({
    "image_shape": list(loaded.image.shape),
    "small_object_kept": bool(loaded.masks[1].any()),
    "peak_rss_mib": peak_mib(),
}))
"""


def _write_inputs(folder: Path, side: int) -> None:
    img = Image.new("RGB", (side, side), (90, 120, 150))
    img.paste((200, 30, 30), (side // 12, side // 12, side // 3, side // 4))
    img.save(folder / "big.png")
    big = np.zeros((side, side), bool)
    big[side // 12 : side // 4, side // 12 : side // 3] = True
    small = np.zeros((side, side), bool)
    small[side // 2 : side // 2 + 3, side // 2 : side // 2 + 2] = True
    counts = [encode_mask(big).counts, encode_mask(small).counts]
    (folder / "masks.json").write_text(json.dumps(counts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=12000, help="image side in pixels")
    args = parser.parse_args()
    results: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        _write_inputs(Path(tmp), args.side)
        for mode in ("baseline", "bounded", "full"):
            done = subprocess.run(
                [sys.executable, "-W", "ignore", "-c", CHILD, tmp, str(args.side), mode],
                capture_output=True,
                text=True,
                check=True,
            )
            results[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    rows = [
        (mode, r.get("image_shape", "-"), r.get("small_object_kept", "-"), r["peak_rss_mib"])
        for mode, r in results.items()
    ]
    print_table(("mode", "image decoded", "3x2 object kept", "peak RSS MiB"), rows)
    path = write_results("bench_image_memory", {"side": args.side, "modes": results})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
