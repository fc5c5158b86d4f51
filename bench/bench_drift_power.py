"""Detection power of the embedding-drift detectors under image corruptions.

The 400 images of ``/work/shared/data/borrat`` (1024 x 1024 classroom photos; 68 source
frames appear twice as Roboflow variants) are centre-cropped and resized to ``--size``
pixels, corrupted (brightness, contrast, Gaussian noise, blur, JPEG, haze; three
severities each, plus ``none`` as the A/A control) and embedded once; embeddings are
cached per (embedder, size, corruption, severity) in ``bench/results/cache/*.npz``
(gitignored). The trial loop only indexes precomputed embeddings, so the cost is the
detectors' own work.

Each trial draws a reference window of clean embeddings and a current window of
corrupted ones from ONE pool of images, at random: when ``2 n <= 400`` the images are
shuffled and split (``n`` reference, ``n`` other current images, no image on both
sides); for larger ``n`` (500) both windows are drawn WITH replacement from all 400
images (the pool is too small; duplicates are then expected on both sides). Either way
the pooled sample is exchangeable under ``none``, so its row is a true A/A rate. The
power is the share of ``--trials`` windows flagged at alpha = 0.05. (A fixed half split
of the images, as an earlier version did, compares two different finite image sets: a
powerful detector rightly flags that, which showed up as a broken A/A row.)

Embedders (``--embedder``):

* ``reference`` (default): the built-in segmentation model's backbone,
  ``monitor.model.load_model("reference").embed(images, masks).images``.
* ``random-conv``: a STAND-IN -- two fixed random convolution layers (seeded,
  He-scaled) with ReLU and per-channel mean/std pooling, pure torch, no weights. It
  only exercises the harness; its power says nothing about the real backbone's.
* ``pixel-stats``: per-channel mean, std and 10/50/90% quantiles of the pixels.

    python -m bench.bench_drift_power [--embedder reference] [--trials 100]
        [--detectors pca_divergence mmd domain_classifier] [--sample-sizes 20 50 ...]
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

from bench._common import RESULTS_DIR, print_table, write_results
from detectors import DomainClassifierDetector, MMDDetector, PCADivergenceDetector

DATA = Path("/work/shared/data/borrat")
CACHE = RESULTS_DIR / "cache"
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


def reference_model_embedder(name: str = "reference") -> Embed:
    """Image vectors of a segmon model (``monitor.model.load_model``), batched."""
    try:
        from monitor.model.loading import load_model
    except ImportError as exc:
        raise SystemExit(
            f"monitor.model.load_model is not available ({exc}); until the built-in model "
            "lands, run with --embedder random-conv (a stand-in)"
        ) from exc

    model = load_model(name)

    def embed(images: Images) -> np.ndarray:
        out = []
        for start in range(0, len(images), 32):
            batch = list(images[start : start + 32])
            out.append(np.asarray(model.embed(batch, [[] for _ in batch]).images))
        return np.concatenate(out).astype(np.float32)

    return embed


def random_conv_embedder(dim: int = 64, seed: int = 0) -> Embed:
    """STAND-IN embedder: fixed random conv features (see the module docstring)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    half = dim // 2
    w1 = torch.randn(32, 3, 5, 5, generator=gen) * (2.0 / 75) ** 0.5
    w2 = torch.randn(half, 32, 3, 3, generator=gen) * (2.0 / 288) ** 0.5

    def embed(images: Images) -> np.ndarray:
        out = []
        with torch.inference_mode():
            for start in range(0, len(images), 64):
                x = torch.from_numpy(images[start : start + 64]).permute(0, 3, 1, 2).float() / 255
                h = torch.relu(torch.nn.functional.conv2d(x - 0.5, w1, stride=2))
                h = torch.relu(torch.nn.functional.conv2d(h, w2, stride=2))
                out.append(torch.cat([h.mean(dim=(2, 3)), h.std(dim=(2, 3))], dim=1).numpy())
        return np.concatenate(out).astype(np.float32)

    return embed


def pixel_stats_embedder() -> Embed:
    """Per-channel mean, std and 10/50/90% quantiles of the pixels (15 numbers)."""

    def embed(images: Images) -> np.ndarray:
        x = images.reshape(len(images), -1, 3).astype(np.float64) / 255
        q = np.quantile(x, [0.1, 0.5, 0.9], axis=1).transpose(1, 0, 2).reshape(len(images), -1)
        return np.concatenate([x.mean(axis=1), x.std(axis=1), q], axis=1).astype(np.float32)

    return embed


EMBEDDERS: dict[str, Callable[[], Embed]] = {
    "reference": reference_model_embedder,
    "random-conv": random_conv_embedder,
    "pixel-stats": pixel_stats_embedder,
}


# --- harness -------------------------------------------------------------------------


def load_images(data: Path, size: int) -> Images:
    """Every image, centre-cropped to a square and resized to ``size`` pixels."""
    files = sorted((data / "train").glob("*.jpg")) + sorted((data / "valid").glob("*.jpg"))
    out = []
    for path in files:
        with Image.open(path) as im:
            im = im.convert("RGB")
            w, h = im.size
            side = min(w, h)
            box = ((w - side) // 2, (h - side) // 2, (w + side) // 2, (h + side) // 2)
            out.append(np.asarray(im.crop(box).resize((size, size), Image.BILINEAR)))
    return np.stack(out)


def cached_embeddings(
    embedder: str, size: int, seed: int, images: Callable[[], Images], embed: Callable[[], Embed]
) -> dict[tuple[str, int], np.ndarray]:
    """Embeddings of the clean and every corrupted image set, from or into the cache."""
    CACHE.mkdir(parents=True, exist_ok=True)
    out: dict[tuple[str, int], np.ndarray] = {}
    variants = [("none", 0)] + [(name, s) for name in CORRUPTIONS for s in (1, 2, 3)]
    for name, severity in variants:
        path = CACHE / f"{embedder}_{size}px_seed{seed}_{name}-{severity}.npz"
        if path.exists():
            out[(name, severity)] = np.load(path)["embeddings"]
            continue
        embed_fn = embed()  # first, so a missing model fails before the images load
        clean = images()
        if name == "none":
            batch = clean
        else:
            rng = np.random.default_rng([seed, severity, list(CORRUPTIONS).index(name)])
            batch = np.stack([CORRUPTIONS[name](v, severity, rng) for v in clean])
        out[(name, severity)] = embed_fn(batch)
        np.savez(path, embeddings=out[(name, severity)])
        print(f"embedded {name}-{severity} -> {path.name}", flush=True)
    return out


def draw_windows(n_images: int, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Reference and current image indices from one pool (see the module docstring)."""
    if 2 * n <= n_images:
        order = rng.permutation(n_images)
        return order[:n], order[n : 2 * n]
    return rng.integers(0, n_images, n), rng.integers(0, n_images, n)


def make_detectors(permutations: int | None) -> dict[str, Callable[[], Any]]:
    def perms(default: int) -> dict[str, int]:
        return {"n_permutations": permutations or default}

    return {
        "pca_divergence": lambda: PCADivergenceDetector(alpha=ALPHA, **perms(2000)),
        "mmd": lambda: MMDDetector(alpha=ALPHA, **perms(200)),
        "domain_classifier": lambda: DomainClassifierDetector(alpha=ALPHA, **perms(1000)),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    loaded: list[Images] = []

    def images() -> Images:
        if not loaded:
            loaded.append(load_images(DATA, args.size))
        return loaded[0]

    embedders: list[Embed] = []

    def embed() -> Embed:
        if not embedders:
            embedders.append(EMBEDDERS[args.embedder]())
        return embedders[0]

    variants = cached_embeddings(args.embedder, args.size, args.seed, images, embed)
    prep_s = time.perf_counter() - t0
    clean = variants[("none", 0)]
    n_images = clean.shape[0]
    detectors = make_detectors(args.permutations)
    chosen = args.detectors or list(detectors)
    rows = []
    for det_name in chosen:
        factory = detectors[det_name]
        for (corruption, severity), emb in variants.items():
            for n in args.sample_sizes:
                hits = 0
                start = time.perf_counter()
                for trial in range(args.trials):
                    rng = np.random.default_rng([args.seed, n, trial])
                    ref_idx, cur_idx = draw_windows(n_images, n, rng)
                    hits += factory().fit(clean[ref_idx]).score(emb[cur_idx]).drift_detected
                rows.append(
                    {
                        "detector": det_name,
                        "corruption": corruption,
                        "severity": severity,
                        "n": n,
                        "with_replacement": 2 * n > n_images,
                        "trials": args.trials,
                        "power": hits / args.trials,
                        "seconds_per_trial": (time.perf_counter() - start) / args.trials,
                    }
                )
            print(f"{det_name} {corruption}-{severity} done", flush=True)
    return {
        "embedder": args.embedder,
        "stand_in": args.embedder != "reference",
        "embedding_dim": int(clean.shape[1]),
        "images": int(n_images),
        "image_size_px": args.size,
        "trials": args.trials,
        "alpha": ALPHA,
        "prep_seconds": prep_s,
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--sample-sizes", type=int, nargs="+", default=SIZES)
    parser.add_argument("--embedder", choices=sorted(EMBEDDERS), default="reference")
    parser.add_argument(
        "--detectors", nargs="+", choices=sorted(make_detectors(None)), help="default: all"
    )
    parser.add_argument("--permutations", type=int, help="override every detector's default")
    parser.add_argument("--size", type=int, default=128, help="image side in pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="bench_drift_power", help="results file name")
    args = parser.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"data not found: {DATA}")
    result = run(args)
    table: dict[tuple[str, str], dict[int, float]] = {}
    for r in result["rows"]:
        key = (r["detector"], f"{r['corruption']}-{r['severity']}")
        table.setdefault(key, {})[r["n"]] = r["power"]
    sizes = args.sample_sizes
    print_table(
        ["detector", "corruption", *[f"n={n}" for n in sizes]],
        [[d, c, *[v[n] for n in sizes]] for (d, c), v in table.items()],
    )
    if result["stand_in"]:
        print(f"NOTE: embedder {args.embedder!r} is a stand-in, not the production backbone")
    print(f"written to {write_results(args.out, result)}")


if __name__ == "__main__":
    main()
