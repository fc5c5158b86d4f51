"""Detection power of the drift job's feature families on generated scenes.

Scenes come from ``monitor.synth`` (``render_scene`` + ``simulate_predictions``, the
simulated production model). For each trial a clean reference window (``--reference``
images) is compared with a current window (``--current`` images) drawn with one drift
knob at a given severity -- ``classmix`` (the class mix skews) and ``novel`` (objects of
an unseen class appear, mostly predicted as ``disc``) -- or with none (an A/A control:
its column is the false-alarm rate). Features are those of ``monitor.drift.features``,
computed without the model from the predicted masks and the image; the detectors are
the drift job's defaults (``detectors.registry.make_detector``).

A family raises one alarm per window when any of its checks has a permutation p-value
``<= alpha / n_checks`` (Bonferroni), so every family's false-alarm rate is at most
``alpha`` however many classes and features it holds, and the power columns compare
like with like. As in the drift job, per-object checks (one value per object) take the
image of every object as its group, so whole images are permuted (``--unit object``
permutes objects instead: the calibration before images became the unit). Families:

``image_properties`` (image level)
    brightness, contrast, saturation, sharpness of each image (KS, JS).
``image_geometry`` (image level, the baseline)
    per image: the mean area, aspect and boundary length of its instances and their
    count (KS, JS): the image-level average a per-class drift can hide in.
``mask_geometry`` (per class)
    per class: area, aspect, boundary of each instance and count per image (KS, JS).
``prediction`` (class mix and per-class scores)
    class mix (chi-square), score per class and instances per image (JS).
``image_embedding`` / ``instance_embedding`` (only with ``--embedder NAME``)
    image vectors and per-class instance vectors of ``monitor.model.load_model(NAME)``
    (PCA-JS), where that module exists.

    nice -n 10 python -m bench.bench_drift_families [--trials 20] [--size 96] [--unit object]
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench._common import print_table, write_results
from detectors.registry import make_detector
from monitor.drift.features import boundary_length
from monitor.drift.job import stable_seed
from monitor.drift.properties import image_properties
from monitor.synth import CATEGORIES, SynthConfig, render_scene, simulate_predictions

ALPHA = 0.05
CELLS: list[tuple[str, float]] = [
    ("none", 0.0),
    ("classmix", 0.25),
    ("classmix", 0.5),
    ("classmix", 1.0),
    ("novel", 0.25),
    ("novel", 0.5),
    ("novel", 1.0),
]
NUMERIC = ("kolmogorov_smirnov", "jensen_shannon")
Check = tuple[str, str, str]  # (family, feature, class)


@dataclass
class Window:
    """Feature values of one window: numeric lists, class codes, embeddings."""

    numeric: dict[Check, list[float]] = field(default_factory=lambda: defaultdict(list))
    class_mix: list[float] = field(default_factory=list)
    vectors: dict[Check, list[np.ndarray]] = field(default_factory=lambda: defaultdict(list))
    images: dict[Check, list[int]] = field(default_factory=lambda: defaultdict(list))
    """For per-object checks: the image of every value (the group the detectors permute)."""
    n_images: int = 0


Embed = Callable[[np.ndarray, list[np.ndarray]], tuple[np.ndarray, list[np.ndarray]]]


CLASS_MIX: Check = ("prediction", "class_mix", "")


def _add_scene(
    window: Window, image: np.ndarray, preds: Sequence[Any], embed: Embed | None
) -> None:
    index = window.n_images
    window.n_images += 1
    props = image_properties(image)
    for name in ("brightness", "contrast", "saturation", "sharpness"):
        window.numeric[("image_properties", name, "")].append(getattr(props, name))
    areas, aspects, bounds = [], [], []
    per_class: dict[str, int] = dict.fromkeys(CATEGORIES, 0)
    for p in preds:
        cls = CATEGORIES[p.category_id - 1]
        ys, xs = np.nonzero(p.mask)
        area = float(p.mask.sum())
        aspect = (xs.max() - xs.min() + 1) / (ys.max() - ys.min() + 1)
        boundary = float(boundary_length(p.mask))
        for feature, value in (("area", area), ("aspect", aspect), ("boundary", boundary)):
            window.numeric[("mask_geometry", feature, cls)].append(float(value))
            window.images[("mask_geometry", feature, cls)].append(index)
        window.numeric[("prediction", "score", cls)].append(float(p.score))
        window.images[("prediction", "score", cls)].append(index)
        window.class_mix.append(float(p.category_id))
        window.images[CLASS_MIX].append(index)
        per_class[cls] += 1
        areas.append(area)
        aspects.append(aspect)
        bounds.append(boundary)
    for cls, n in per_class.items():
        window.numeric[("mask_geometry", "count", cls)].append(float(n))
    window.numeric[("prediction", "instances_per_image", "")].append(float(len(preds)))
    window.numeric[("image_geometry", "count", "")].append(float(len(preds)))
    if preds:
        for feature, values in (("area", areas), ("aspect", aspects), ("boundary", bounds)):
            window.numeric[("image_geometry", f"mean_{feature}", "")].append(float(np.mean(values)))
    if embed is not None:
        image_vec, instance_vecs = embed(image, [p.mask for p in preds])
        window.vectors[("image_embedding", "embedding", "")].append(image_vec)
        for p, vec in zip(preds, instance_vecs, strict=True):
            cls = CATEGORIES[p.category_id - 1]
            window.vectors[("instance_embedding", "embedding", cls)].append(vec)
            window.images[("instance_embedding", "embedding", cls)].append(index)


def make_window(
    n: int, knob: str, severity: float, size: int, seed: Sequence[int], embed: Embed | None
) -> Window:
    drift = {} if knob == "none" or severity == 0 else {knob: severity}
    config = SynthConfig(n_images=1, seed=0, size=size, drift=drift)  # type: ignore[arg-type]
    window = Window()
    for i in range(n):
        rng = np.random.default_rng([*seed, i])
        scene = render_scene(rng, config)
        preds = simulate_predictions(scene, rng, config)
        _add_scene(window, scene.image, preds, embed)
    return window


def _groups(window: Window, key: Check, by_image: bool) -> np.ndarray | None:
    """The image of each value of a per-object check (None: per-image, or objects as unit)."""
    if not by_image or key not in window.images:
        return None
    return np.asarray(window.images[key], dtype=np.int64)


def _units(values: Any, groups: np.ndarray | None) -> int:
    """What min_samples counts, as in the job: images for per-object checks."""
    return len(values) if groups is None else int(np.unique(groups).size)


def family_p_values(
    ref: Window, cur: Window, min_samples: int, by_image: bool = True
) -> dict[str, list[float]]:
    """Every check's permutation p-value, grouped by family."""
    out: dict[str, list[float]] = defaultdict(list)
    for key in sorted(set(ref.numeric) & set(cur.numeric)):
        a, b = np.asarray(ref.numeric[key]), np.asarray(cur.numeric[key])
        ga, gb = _groups(ref, key, by_image), _groups(cur, key, by_image)
        if min(_units(a, ga), _units(b, gb)) < min_samples:
            continue
        for name in NUMERIC:
            if key[0] == "prediction" and name != "jensen_shannon":
                continue  # the job's prediction defaults: chi-square + JS
            det = make_detector(name, alpha=ALPHA, seed=stable_seed(*key, name), feature=key[1])
            out[key[0]].append(_p(det.fit(a, groups=ga).score(b, groups=gb).p_value))
    det = make_detector("chi_square", alpha=ALPHA, seed=1, feature="class_mix")
    ga, gb = _groups(ref, CLASS_MIX, by_image), _groups(cur, CLASS_MIX, by_image)
    result = det.fit(ref.class_mix, groups=ga).score(cur.class_mix, groups=gb)
    out["prediction"].append(_p(result.p_value))
    for key in sorted(set(ref.vectors) & set(cur.vectors)):
        a2, b2 = np.stack(ref.vectors[key]), np.stack(cur.vectors[key])
        ga, gb = _groups(ref, key, by_image), _groups(cur, key, by_image)
        if min(_units(a2, ga), _units(b2, gb)) < min_samples:
            continue
        det = make_detector("pca_js", alpha=ALPHA, seed=stable_seed(*key), feature=key[1])
        out[key[0]].append(_p(det.fit(a2, groups=ga).score(b2, groups=gb).p_value))
    return out


def _p(value: float | None) -> float:
    return 1.0 if value is None else float(value)


def _load_embedder(name: str | None) -> Embed | None:
    if name is None:
        return None
    try:
        from monitor.model.loading import load_model
    except ImportError:
        print(f"--embedder {name}: monitor.model.load_model is not available here; skipped")
        return None
    model = load_model(name)

    def embed(image: np.ndarray, masks: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        out = model.embed([image], [masks])
        return np.asarray(out.images[0]), [np.asarray(v) for v in out.instances[0]]

    return embed


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--reference", type=int, default=150, help="images per reference")
    parser.add_argument("--current", type=int, default=75, help="images per current window")
    parser.add_argument("--size", type=int, default=96, help="scene size in pixels (>= 64)")
    parser.add_argument("--min-samples", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--embedder", default=None, help="model name for the embedding families")
    parser.add_argument(
        "--unit",
        choices=["image", "object"],
        default="image",
        help="what per-object checks permute: whole images (the drift job) or objects",
    )
    parser.add_argument("--out", default="bench_drift_families", help="results file name")
    args = parser.parse_args(argv)
    embed = _load_embedder(args.embedder)
    started = time.perf_counter()
    alarms: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    n_checks: dict[str, int] = {}
    for trial in range(args.trials):
        ref = make_window(args.reference, "none", 0.0, args.size, (args.seed, trial, 0), embed)
        for c, (knob, severity) in enumerate(CELLS):
            cur = make_window(
                args.current, knob, severity, args.size, (args.seed, trial, 1 + c), embed
            )
            by_image = args.unit == "image"
            for family, ps in family_p_values(ref, cur, args.min_samples, by_image).items():
                n_checks[family] = max(n_checks.get(family, 0), len(ps))
                alarms[family][f"{knob}@{severity:g}"] += int(min(ps) <= ALPHA / len(ps))
        print(
            f"trial {trial + 1}/{args.trials} ({time.perf_counter() - started:.0f} s)", flush=True
        )
    columns = [f"{k}@{s:g}" for k, s in CELLS]
    order = [
        "image_properties",
        "image_geometry",
        "image_embedding",
        "mask_geometry",
        "prediction",
        "instance_embedding",
    ]
    families = [f for f in order if f in alarms]
    power = {f: {col: alarms[f][col] / args.trials for col in columns} for f in families}
    print(
        f"\nshare of windows flagged (alpha {ALPHA} per family, Bonferroni over its checks); "
        f"{args.trials} trials, {args.reference} reference vs {args.current} current images"
    )
    print_table(
        ["family", "checks", *columns],
        [[f, n_checks[f], *(power[f][c] for c in columns)] for f in families],
    )
    path = write_results(
        args.out,
        {
            "alpha": ALPHA,
            "trials": args.trials,
            "reference_images": args.reference,
            "current_images": args.current,
            "size": args.size,
            "embedder": args.embedder if embed is not None else None,
            "unit": args.unit,
            "checks_per_family": n_checks,
            "power": power,
            "seconds": round(time.perf_counter() - started, 1),
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
