"""Detection power of the embedding-drift detectors under image corruptions.

Images of ``/work/shared/data/borrat`` (400 classroom photos) are cut into views (random
crops, flips) at ``--size`` pixels, corrupted (brightness, contrast, Gaussian noise,
blur, JPEG, haze; three severities each, plus ``none`` as an A/A control) and embedded
by a pluggable ``embed(images) -> (n, d) array``. Images are split in half: reference
windows come from clean views of one half, current windows from corrupted views of the
other, so no image appears on both sides. For each corruption x severity x sample size
the power is the share of ``--trials`` windows flagged at alpha = 0.05.

The default embedder, ``random-conv``, is a STAND-IN until the production model's
backbone lands: two fixed random convolution layers (seeded, He-scaled) with ReLU,
followed by per-channel mean and standard-deviation pooling. It is deterministic and
needs no weights; its power says nothing about the real backbone's.

    python -m bench.bench_drift_power [--trials 100] [--embedder random-conv|pixel-stats]
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from bench._common import print_table, write_results
from detectors import DomainClassifierDetector, MMDDetector, PCADivergenceDetector

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "borrat"
SIZES = [20, 50, 100, 200, 500]
ALPHA = 0.05

Images = np.ndarray  # (n, H, W, 3) uint8
Embed = Callable[[Images], np.ndarray]


# --- corruptions: uint8 (H, W, 3) -> uint8 (H, W, 3), severity 1..3 --------------------


def brightness(img: Images, s: int, rng: np.random.Generator) -> Images:
    return _clip(img.astype(np.float32) + 255 * (0.1, 0.2, 0.35)[s - 1])


def contrast(img: Images, s: int, rng: np.random.Generator) -> Images:
    x = img.astype(np.float32)
    mean = x.mean(axis=(0, 1), keepdims=True)
    return _clip((x - mean) * (0.75, 0.5, 0.3)[s - 1] + mean)


def gaussian_noise(img: Images, s: int, rng: np.random.Generator) -> Images:
    sigma = 255 * (0.03, 0.06, 0.12)[s - 1]
    return _clip(img.astype(np.float32) + rng.normal(0, sigma, img.shape))


def blur(img: Images, s: int, rng: np.random.Generator) -> Images:
    radius = (0.6, 1.2, 2.5)[s - 1]
    return np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(radius)))


def jpeg(img: Images, s: int, rng: np.random.Generator) -> Images:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=(30, 15, 6)[s - 1])
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def haze(img: Images, s: int, rng: np.random.Generator) -> Images:
    t = (0.15, 0.3, 0.5)[s - 1]
    return _clip(img.astype(np.float32) * (1 - t) + 230.0 * t)


def _clip(x: np.ndarray) -> Images:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


CORRUPTIONS: dict[str, Callable[[Images, int, np.random.Generator], Images]] = {
    "brightness": brightness,
    "contrast": contrast,
    "gaussian_noise": gaussian_noise,
    "blur": blur,
    "jpeg": jpeg,
    "haze": haze,
}


# --- embedders -----------------------------------------------------------------------


def random_conv_embedder(dim: int = 64, seed: int = 0) -> Embed:
    """Stand-in embedder: fixed random conv features (see module docstring)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    half = dim // 2
    w1 = torch.randn(32, 3, 5, 5, generator=gen) * (2.0 / 75) ** 0.5
    w2 = torch.randn(half, 32, 3, 3, generator=gen) * (2.0 / 288) ** 0.5

    def embed(images: Images) -> np.ndarray:
        out = []
        with torch.inference_mode():
            for start in range(0, len(images), 256):
                x = torch.from_numpy(images[start : start + 256]).permute(0, 3, 1, 2).float() / 255
                h = torch.relu(torch.nn.functional.conv2d(x - 0.5, w1, stride=2))
                h = torch.relu(torch.nn.functional.conv2d(h, w2, stride=2))
                out.append(torch.cat([h.mean(dim=(2, 3)), h.std(dim=(2, 3))], dim=1).numpy())
        return np.concatenate(out).astype(np.float64)

    return embed


def pixel_stats_embedder() -> Embed:
    """Per-channel mean, std and 10/50/90% quantiles of the pixels (15 numbers)."""

    def embed(images: Images) -> np.ndarray:
        x = images.reshape(len(images), -1, 3).astype(np.float64) / 255
        q = np.quantile(x, [0.1, 0.5, 0.9], axis=1).transpose(1, 0, 2).reshape(len(images), -1)
        return np.concatenate([x.mean(axis=1), x.std(axis=1), q], axis=1)

    return embed


EMBEDDERS: dict[str, Callable[[], Embed]] = {
    "random-conv": random_conv_embedder,
    "pixel-stats": pixel_stats_embedder,
}


# --- harness -------------------------------------------------------------------------


def load_views(data: Path, size: int, views: int, seed: int) -> tuple[Images, np.ndarray]:
    """Random square crops (60-100% of the side) with random flips; returns views, image ids."""
    files = sorted((data / "train").glob("*.jpg")) + sorted((data / "valid").glob("*.jpg"))
    rng = np.random.default_rng(seed)
    out, ids = [], []
    for i, path in enumerate(files):
        with Image.open(path) as im:
            im = im.convert("RGB")
            w, h = im.size
            for _ in range(views):
                side = int(min(w, h) * rng.uniform(0.6, 1.0))
                x0, y0 = rng.integers(0, w - side + 1), rng.integers(0, h - side + 1)
                crop = im.crop((x0, y0, x0 + side, y0 + side)).resize((size, size), Image.BILINEAR)
                arr = np.asarray(crop)
                out.append(arr[:, ::-1] if rng.random() < 0.5 else arr)
                ids.append(i)
    return np.stack(out), np.array(ids)


def make_detectors(fast: bool) -> dict[str, Callable[[], Any]]:
    perms = 199 if fast else 1000
    return {
        "pca_divergence": lambda: PCADivergenceDetector(
            alpha=ALPHA, n_permutations=max(perms, 999)
        ),
        "mmd": lambda: MMDDetector(alpha=ALPHA, n_permutations=min(perms, 200)),
        "domain_classifier": lambda: DomainClassifierDetector(alpha=ALPHA, n_permutations=perms),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    views, ids = load_views(DATA, args.size, args.views, args.seed)
    n_images = int(ids.max()) + 1
    ref_side = np.isin(ids, np.random.default_rng(args.seed).permutation(n_images)[: n_images // 2])
    embed = EMBEDDERS[args.embedder]()
    clean = embed(views)
    variants: dict[tuple[str, int], np.ndarray] = {("none", 0): clean}
    for name, fn in CORRUPTIONS.items():
        for s in (1, 2, 3):
            rng = np.random.default_rng([args.seed, s])
            variants[(name, s)] = embed(np.stack([fn(v, s, rng) for v in views]))
    prep_s = time.perf_counter() - t0
    ref_pool = clean[ref_side]
    cur_idx = np.flatnonzero(~ref_side)
    sizes = [n for n in args.sample_sizes if n <= min(len(ref_pool), cur_idx.size)]
    rows = []
    for det_name, factory in make_detectors(args.fast).items():
        for (corruption, severity), emb in variants.items():
            for n in sizes:
                hits = 0
                start = time.perf_counter()
                for trial in range(args.trials):
                    rng = np.random.default_rng([args.seed, n, trial, severity])
                    ref = ref_pool[rng.choice(len(ref_pool), n, replace=False)]
                    cur = emb[rng.choice(cur_idx, n, replace=False)]
                    hits += factory().fit(ref).score(cur).drift_detected
                rows.append(
                    {
                        "detector": det_name,
                        "corruption": corruption,
                        "severity": severity,
                        "n": n,
                        "trials": args.trials,
                        "power": hits / args.trials,
                        "seconds_per_trial": (time.perf_counter() - start) / args.trials,
                    }
                )
            print(f"{det_name} {corruption}-{severity} done", flush=True)
    return {
        "embedder": args.embedder,
        "embedding_dim": int(clean.shape[1]),
        "views": int(len(views)),
        "view_size_px": args.size,
        "trials": args.trials,
        "alpha": ALPHA,
        "prep_seconds": prep_s,
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--sample-sizes", type=int, nargs="+", default=SIZES)
    parser.add_argument("--embedder", choices=sorted(EMBEDDERS), default="random-conv")
    parser.add_argument("--size", type=int, default=96, help="view side in pixels")
    parser.add_argument("--views", type=int, default=4, help="views per image")
    parser.add_argument("--fast", action="store_true", help="fewer permutations")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"data not found: {DATA}")
    result = run(args)
    sizes = sorted({r["n"] for r in result["rows"]})
    table: dict[tuple[str, str], dict[int, float]] = {}
    for r in result["rows"]:
        table.setdefault((r["detector"], f"{r['corruption']}-{r['severity']}"), {})[r["n"]] = r[
            "power"
        ]
    print_table(
        ["detector", "corruption", *[f"n={n}" for n in sizes]],
        [[d, c, *[v[n] for n in sizes]] for (d, c), v in table.items()],
    )
    print(f"written to {write_results('bench_drift_power', result)}")


if __name__ == "__main__":
    main()
