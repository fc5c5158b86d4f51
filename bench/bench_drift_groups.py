"""Per-object drift checks with the image as the unit: A/A false alarms and power.

Objects of one image share its camera, light and scene, so they are not independent
draws. The data here are generated from a two-level model with a chosen intra-image
correlation ``rho``: image ``i`` draws an effect ``U_i``, its object ``j`` a private
``E_ij`` from the same distribution, and the object's feature is
``sqrt(rho) U_i + sqrt(1 - rho) E_ij`` (``rho`` is then the correlation of two objects of
one image). Per-object features and their detectors, as the drift job runs them:

* ``instance_embedding`` (``pca_js``, ``mmd``): 32-dimensional vectors, ``U`` and ``E``
  from a fixed anisotropic 6-component Gaussian mixture;
* ``mask_geometry`` (``kolmogorov_smirnov``, ``jensen_shannon``): a log-normal size,
  ``exp(0.5 (sqrt(rho) u_i + sqrt(1 - rho) e_ij))``;
* ``prediction/class_mix`` (``chi_square``): class codes of five classes (one rare); each
  image draws its own class mix from a Dirichlet around the base mix whose
  concentration makes the intra-image correlation of class indicators ``rho``.

``aa``: reference and current windows are drawn from the same model (``--reference``
and ``--current`` images; objects per image 1, 5, 30 or ``var`` = 1 + Poisson with a
gamma-distributed mean, 9 on average, at most 60), ``--trials`` times per cell, for
every detector, objects per image and ``rho``. Each check gets the image of every
object as its group (segmon's calibration: whole images are permuted) and, for the
first ``--object-trials`` trials, also none (the old calibration: objects permuted). A
cell passes when its grouped false alarms lie inside the two-sided binomial(trials,
alpha) interval of level ``1 - 0.01 / cells`` (Bonferroni-widened 99%: with every cell
exactly calibrated, the whole table passes with probability >= 99%).

``power``: the current window changes one class (``target``, base share 25%) of a
scene with four classes and a variable number of objects per image:

* ``grow``: that class's objects grow by the severity (size x (1 + s));
* ``move``: that class's embeddings move by s standard deviations along their first axis;
* ``mix``: that class's share is multiplied by (1 + s) (then renormalised).

Each shift is tested three ways: the per-object check with images as the unit (what
segmon runs), the same check with objects as the unit (only at ``rho = 0``, where it is
valid: the difference is what the correction costs), and the image-level family that
sees the same change (the per-image mean size, the image embedding = mean of the
image's object vectors plus its own image effect, the count of the class per image).
Power is the share of ``--trials`` windows flagged at alpha = 0.05 (severity 0 rows are
A/A controls).

Calibration stays exact with fewer permutations: the permutation p-value
``(k + 1) / (P + 1)`` satisfies ``P(p <= alpha) <= alpha`` for any ``P``, with equality
when ``alpha (P + 1)`` is an integer, so ``--permutations 199`` (alpha 0.05 x 200 = 10)
keeps every detector exact (PCA-JS's Bonferroni over 10 components, alpha / 10 x 200
= 1, stays exact per component and conservative overall).

    nice -n 10 python -m bench.bench_drift_groups aa [--trials 200] [--detectors NAME ...]
    nice -n 10 python -m bench.bench_drift_groups power [--trials 100]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import binom
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]  # no stubs

from bench._common import print_table, write_results
from detectors.base import BaseDetector
from detectors.registry import REGISTRY

ALPHA = 0.05
DIM = 32
PER_OBJECT_DETECTORS = ("pca_js", "mmd", "kolmogorov_smirnov", "jensen_shannon", "chi_square")
OBJECTS = ("1", "5", "30", "var")
RHOS = (0.0, 0.3, 0.6, 0.9)
CLASS_MIX = np.array([0.45, 0.25, 0.15, 0.12, 0.03])
"""Base class mix of the A/A class codes: five classes, one rare."""
SCENE_MIX = np.array([0.40, 0.25, 0.20, 0.15])
"""Base class mix of the power scenes; class 1 (25%) is the one that changes."""
TARGET = 1
SHIFTS: dict[str, tuple[float, ...]] = {
    "grow": (0.0, 0.1, 0.2, 0.4),
    "move": (0.0, 0.25, 0.5, 1.0),
    "mix": (0.0, 0.25, 0.5, 1.0),
}
POWER_RHOS = (0.0, 0.3, 0.6)


class GaussianMixture:
    """A fixed anisotropic Gaussian mixture standing in for object embeddings."""

    def __init__(self, dim: int, seed: int = 12345) -> None:
        rng = np.random.default_rng([seed, dim])
        self.rotation = np.linalg.qr(rng.normal(size=(dim, dim)))[0]
        self.scales = np.logspace(0.5, -1.5, dim)
        self.means = rng.normal(size=(6, dim)) * self.scales * 2.0
        self.weights = rng.dirichlet(np.full(6, 2.0))

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        comp = rng.choice(6, size=n, p=self.weights)
        z = rng.normal(size=(n, self.scales.size)) * self.scales + self.means[comp]
        out: np.ndarray = z @ self.rotation.T
        return out

    def axis_std(self) -> tuple[np.ndarray, float]:
        """The first principal axis of the mixture and its standard deviation."""
        cov = (self.scales**2)[:, None] * np.eye(self.scales.size)
        spread = self.means - self.weights @ self.means
        cov = cov + (spread.T * self.weights) @ spread
        vals, vecs = np.linalg.eigh(self.rotation @ cov @ self.rotation.T)
        return vecs[:, -1], float(np.sqrt(vals[-1]))


MIXTURE = GaussianMixture(DIM)


def objects_per_image(kind: str, n_images: int, rng: np.random.Generator) -> np.ndarray:
    """Objects on each image: a fixed number, or 1 + Poisson(Gamma(2, 4)) capped at 60."""
    if kind != "var":
        return np.full(n_images, int(kind))
    return np.minimum(1 + rng.poisson(rng.gamma(2.0, 4.0, size=n_images)), 60)


def _mixes(base: np.ndarray, rho: float, n_images: int, rng: np.random.Generator) -> np.ndarray:
    """Per-image class mixes: Dirichlet(base (1 / rho - 1)), intra-image correlation rho."""
    if rho == 0.0:
        return np.broadcast_to(base, (n_images, base.size))
    return rng.dirichlet(base * (1.0 / rho - 1.0), size=n_images)


def _classes(mixes: np.ndarray, counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    cum = np.cumsum(mixes, axis=1)
    rows = np.repeat(np.arange(counts.size), counts)
    u = rng.random(rows.size)
    return np.minimum((u[:, None] > cum[rows]).sum(axis=1), mixes.shape[1] - 1)


def aa_window(
    kind: str, name: str, rho: float, n_images: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Values and image of every object of one A/A window for detector ``name``."""
    counts = objects_per_image(kind, n_images, rng)
    image = np.repeat(np.arange(n_images), counts)
    entry = REGISTRY[name]
    if entry.kind == "categorical":
        mixes = _mixes(CLASS_MIX, rho, n_images, rng)
        return _classes(mixes, counts, rng).astype(np.float64), image
    if entry.kind == "numeric":
        effect = rng.normal(size=n_images)[image]
        mixed = np.sqrt(rho) * effect + np.sqrt(1.0 - rho) * rng.normal(size=image.size)
        return np.exp(0.5 * mixed), image
    u = MIXTURE.sample(n_images, rng)[image]
    return np.sqrt(rho) * u + np.sqrt(1.0 - rho) * MIXTURE.sample(image.size, rng), image


def make(name: str, permutations: int, seed: int) -> BaseDetector:
    entry = REGISTRY[name]
    cls = entry.detector_class()
    return cls(alpha=ALPHA, random_state=seed, n_permutations=permutations, **entry.params)


def run_aa(args: argparse.Namespace) -> dict[str, Any]:
    cells = [(d, k, r) for d in args.detectors for k in args.objects for r in args.rhos]
    family = args.family_cells or len(cells)
    q = 0.01 / family / 2
    lo_fw, hi_fw = binom.ppf([q, 1 - q], args.trials, ALPHA).tolist()
    lo99, hi99 = binom.ppf([0.005, 0.995], args.trials, ALPHA).tolist()
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    for name, kind, rho in cells:
        t0 = time.perf_counter()
        grouped = by_object = 0
        n_objects = 0
        for trial in range(args.trials):
            cell = [PER_OBJECT_DETECTORS.index(name), OBJECTS.index(kind), round(rho * 100)]
            rng = np.random.default_rng([args.seed, *cell, trial])
            x, image = aa_window(kind, name, rho, args.reference + args.current, rng)
            cut = int(np.searchsorted(image, args.reference))
            n_objects += x.shape[0]
            det = make(name, args.permutations, trial)
            result = det.fit(x[:cut], groups=image[:cut]).score(x[cut:], groups=image[cut:])
            grouped += result.drift_detected
            if trial < args.object_trials:
                by_object += det.fit(x[:cut]).score(x[cut:]).drift_detected
        row = {
            "detector": name,
            "objects_per_image": kind,
            "rho": rho,
            "trials": args.trials,
            "mean_objects": n_objects / args.trials,
            "false_alarms": grouped,
            "rate": grouped / args.trials,
            "inside_99": lo99 <= grouped <= hi99,
            "inside_familywise_99": lo_fw <= grouped <= hi_fw,
            "object_unit_trials": args.object_trials,
            "object_unit_rate": by_object / args.object_trials if args.object_trials else None,
            "seconds_per_trial": (time.perf_counter() - t0) / args.trials,
        }
        rows.append(row)
        print(
            f"{name:18s} objects={kind:>3s} rho={rho:.1f} rate={row['rate']:.3f} "
            f"(object unit {row['object_unit_rate']}) [{time.perf_counter() - started:.0f} s]",
            flush=True,
        )
    return {
        "mode": "aa",
        "alpha": ALPHA,
        "trials": args.trials,
        "reference_images": args.reference,
        "current_images": args.current,
        "permutations": args.permutations,
        "threads": args.threads,
        "cells": len(cells),
        "family_cells": family,
        "rule": "false alarms inside the two-sided binomial(trials, alpha) interval of level "
        "1 - 0.01/family_cells (99% family-wise, Bonferroni)",
        "interval_99_alarms": [lo99, hi99],
        "interval_familywise_99_alarms": [lo_fw, hi_fw],
        "all_inside_familywise_99": all(r["inside_familywise_99"] for r in rows),
        "seconds": round(time.perf_counter() - started, 1),
        "rows": rows,
    }


@dataclass
class Window:
    """One window of power scenes: every object's image, class, size and embedding."""

    n_images: int
    image: np.ndarray
    cls: np.ndarray
    size: np.ndarray
    vector: np.ndarray
    image_vector: np.ndarray


def power_window(
    shift: str, severity: float, rho: float, n_images: int, rng: np.random.Generator
) -> Window:
    """Scenes of four classes; ``shift`` changes class :data:`TARGET` by ``severity``."""
    counts = objects_per_image("var", n_images, rng)
    image = np.repeat(np.arange(n_images), counts)
    base = SCENE_MIX.copy()
    if shift == "mix":
        base[TARGET] *= 1.0 + severity
        base /= base.sum()
    cls = _classes(_mixes(base, rho, n_images, rng), counts, rng)
    effect = rng.normal(size=n_images)[image]
    log_size = np.log(20.0 + 15.0 * cls) + 0.5 * (
        np.sqrt(rho) * effect + np.sqrt(1.0 - rho) * rng.normal(size=image.size)
    )
    size = np.exp(log_size)
    if shift == "grow":
        size[cls == TARGET] *= 1.0 + severity
    u = MIXTURE.sample(n_images, rng)
    vector = np.sqrt(rho) * u[image] + np.sqrt(1.0 - rho) * MIXTURE.sample(image.size, rng)
    vector += 0.5 * cls[:, None]  # classes sit apart
    if shift == "move":
        axis, std = MIXTURE.axis_std()
        vector[cls == TARGET] += severity * std * axis
    # The image embedding sees the image as a whole: the mean of its objects' vectors
    # plus a look of its own (background, light) of the same spread.
    sums = np.zeros((n_images, DIM))
    np.add.at(sums, image, vector)
    image_vector = sums / counts[:, None] + MIXTURE.sample(n_images, rng)
    return Window(n_images, image, cls, size, vector, image_vector)


Feature = Callable[[Window], tuple[np.ndarray, np.ndarray | None]]


def _target(w: Window, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = w.cls == TARGET
    return values[keep], w.image[keep]


def _per_image_mean(w: Window) -> np.ndarray:
    return np.bincount(w.image, weights=w.size, minlength=w.n_images) / np.bincount(
        w.image, minlength=w.n_images
    )


# shift -> method -> (feature of a window, detector names, images as the unit?)
METHODS: dict[str, dict[str, tuple[Feature, tuple[str, ...], bool]]] = {
    "grow": {
        "per_object": (
            lambda w: _target(w, w.size),
            ("kolmogorov_smirnov", "jensen_shannon"),
            True,
        ),
        "image_level": (
            lambda w: (_per_image_mean(w), None),
            ("kolmogorov_smirnov", "jensen_shannon"),
            False,
        ),
    },
    "move": {
        "per_object": (lambda w: _target(w, w.vector), ("pca_js", "mmd"), True),
        "image_level": (lambda w: (w.image_vector, None), ("pca_js", "mmd"), False),
    },
    "mix": {
        "per_object": (lambda w: (w.cls.astype(np.float64), w.image), ("chi_square",), True),
        "image_level": (
            lambda w: (
                np.bincount(w.image[w.cls == TARGET], minlength=w.n_images).astype(np.float64),
                None,
            ),
            ("kolmogorov_smirnov", "jensen_shannon"),
            False,
        ),
    },
}
"""Per shift: the per-object check and the image-level family that sees the change."""


def run_power(args: argparse.Namespace) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    cells = [(s, sev, rho) for s in args.shifts for sev in SHIFTS[s] for rho in args.rhos]
    for shift, severity, rho in cells:
        alarms: dict[str, int] = {}
        for trial in range(args.trials):
            cell = [1000 + list(SHIFTS).index(shift), round(severity * 100), round(rho * 100)]
            rng = np.random.default_rng([args.seed, *cell, trial])
            ref = power_window("none", 0.0, rho, args.reference, rng)
            cur = power_window(shift, severity, rho, args.current, rng)
            for method, (feature, names, by_image) in METHODS[shift].items():
                (a, ga), (b, gb) = feature(ref), feature(cur)
                for name in names:
                    det = make(name, args.permutations, trial)
                    if by_image:
                        key = f"{method}/{name}"
                        res = det.fit(a, groups=ga).score(b, groups=gb)
                        alarms[key] = alarms.get(key, 0) + res.drift_detected
                        if rho == 0.0:  # objects as the unit: valid only without correlation
                            key = f"per_object_object_unit/{name}"
                            res = det.fit(a).score(b)
                            alarms[key] = alarms.get(key, 0) + res.drift_detected
                    else:
                        key = f"{method}/{name}"
                        res = det.fit(a).score(b)
                        alarms[key] = alarms.get(key, 0) + res.drift_detected
        row = {
            "shift": shift,
            "severity": severity,
            "rho": rho,
            "trials": args.trials,
            "power": {k: v / args.trials for k, v in sorted(alarms.items())},
        }
        rows.append(row)
        shown = " ".join(f"{k}={v:.2f}" for k, v in row["power"].items())
        print(
            f"{shift:4s} s={severity:<4g} rho={rho:.1f} {shown} "
            f"[{time.perf_counter() - started:.0f} s]",
            flush=True,
        )
    return {
        "mode": "power",
        "alpha": ALPHA,
        "trials": args.trials,
        "reference_images": args.reference,
        "current_images": args.current,
        "permutations": args.permutations,
        "threads": args.threads,
        "target_class_share": float(SCENE_MIX[TARGET]),
        "seconds": round(time.perf_counter() - started, 1),
        "rows": rows,
    }


def _method_order(key: str) -> tuple[int, str]:
    method, _, name = key.partition("/")
    return (["per_object", "per_object_object_unit", "image_level"].index(method), name)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["aa", "power"])
    parser.add_argument("--trials", type=int, default=None, help="200 (aa) / 100 (power)")
    parser.add_argument("--reference", type=int, default=60, help="images per reference")
    parser.add_argument("--current", type=int, default=30, help="images per current window")
    parser.add_argument("--permutations", type=int, default=199)
    parser.add_argument("--detectors", nargs="+", default=list(PER_OBJECT_DETECTORS))
    parser.add_argument("--objects", nargs="+", default=list(OBJECTS), choices=OBJECTS)
    parser.add_argument("--rhos", type=float, nargs="+", default=None)
    parser.add_argument("--shifts", nargs="+", default=list(SHIFTS), choices=list(SHIFTS))
    parser.add_argument(
        "--object-trials", type=int, default=50, help="aa: trials of the old calibration"
    )
    parser.add_argument(
        "--family-cells",
        type=int,
        default=None,
        help="aa: cells the Bonferroni band covers (default: this run's; 80 for the full table "
        "split over several runs)",
    )
    parser.add_argument("--threads", type=int, default=1, help="BLAS and torch threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="results file name")
    args = parser.parse_args(argv)
    if "mmd" in args.detectors or args.mode == "power":
        import torch  # MMD's kernels: on a loaded shared machine one thread is faster

        torch.set_num_threads(args.threads)
    with threadpool_limits(limits=args.threads):
        run_and_report(args)


def run_and_report(args: argparse.Namespace) -> None:
    if args.mode == "aa":
        args.trials = args.trials or 200
        args.rhos = args.rhos or list(RHOS)
        result = run_aa(args)
        print()
        print_table(
            ["detector", "objects", "rho", "rate", "in family 99%", "object unit", "s/trial"],
            [
                [
                    r["detector"],
                    r["objects_per_image"],
                    r["rho"],
                    r["rate"],
                    r["inside_familywise_99"],
                    r["object_unit_rate"],
                    r["seconds_per_trial"],
                ]
                for r in result["rows"]
            ],
        )
        t = result["trials"]
        flo, fhi = result["interval_familywise_99_alarms"]
        print(
            f"\nBonferroni-widened 99% band over {result['family_cells']} cells: "
            f"[{flo / t:.3f}, {fhi / t:.3f}]; all inside: {result['all_inside_familywise_99']}"
        )
    else:
        args.trials = args.trials or 100
        args.rhos = args.rhos or list(POWER_RHOS)
        result = run_power(args)
        print()
        for shift in args.shifts:
            rows = [r for r in result["rows"] if r["shift"] == shift]
            methods = sorted({k for r in rows for k in r["power"]}, key=_method_order)
            print(f"\n{shift}: power at alpha {ALPHA} ({args.trials} trials per cell)")
            print_table(
                ["severity", "rho", *methods],
                [
                    [r["severity"], r["rho"], *(r["power"].get(m, "-") for m in methods)]
                    for r in rows
                ],
            )
    print(f"written to {write_results(args.out or f'bench_drift_groups_{args.mode}', result)}")


if __name__ == "__main__":
    main()
