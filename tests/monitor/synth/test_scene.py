"""render_scene: objects that occlude without overlapping, and each drift knob's effect."""

from __future__ import annotations

import numpy as np

from detectors._typing import Float64Array
from monitor.synth import CATEGORIES, DriftKnob, Scene, SynthConfig, render_scene


def test_occluded_objects_keep_the_texture_of_the_top_object() -> None:
    config = SynthConfig(n_images=1, seed=0, size=128)
    overlapping = 0
    for i in range(30):
        scene = render_scene(np.random.default_rng([9, i, 0]), config)
        assert scene.masks.sum(axis=0).max() <= 1
        overlapping += int(len(scene.masks) >= 2)
        assert all(m.sum() >= 60 for m in scene.masks)
        assert 1 <= len(scene.masks) <= 6
    assert overlapping > 5


def _mean_pixel(drift: dict[DriftKnob, float]) -> float:
    config = SynthConfig(n_images=1, seed=0, size=96, drift=drift)
    return float(
        np.mean([render_scene(np.random.default_rng([1, i, 0]), config).image for i in range(8)])
    )


def _images(drift: dict[DriftKnob, float]) -> Float64Array:
    config = SynthConfig(n_images=1, seed=0, size=96, drift=drift)
    return np.stack(
        [render_scene(np.random.default_rng([1, i, 0]), config).image for i in range(8)]
    ).astype(np.float64)


def test_brightness_raises_mean_intensity() -> None:
    assert _mean_pixel({}) < _mean_pixel({"brightness": 0.3}) < _mean_pixel({"brightness": 0.8})


def test_contrast_lowers_pixel_spread() -> None:
    spreads = [_images({"contrast": s}).std(axis=(1, 2)).mean() for s in (0.0, 0.4, 0.9)]
    assert spreads[0] > spreads[1] > spreads[2]


def _roughness(images: Float64Array) -> float:
    return float(np.abs(np.diff(images, axis=2)).mean())


def test_blur_smooths_and_noise_roughens() -> None:
    base = _roughness(_images({}))
    assert base > _roughness(_images({"blur": 0.3})) > _roughness(_images({"blur": 0.9}))
    assert base < _roughness(_images({"noise": 0.3})) < _roughness(_images({"noise": 0.9}))


def _scenes(drift: dict[DriftKnob, float], n: int = 60) -> list[Scene]:
    config = SynthConfig(n_images=1, seed=0, size=128, drift=drift)
    return [render_scene(np.random.default_rng([2, i, 0]), config) for i in range(n)]


def test_scale_shrinks_objects() -> None:
    def median_area(drift: dict[DriftKnob, float]) -> float:
        return float(np.median([m.sum() for s in _scenes(drift) for m in s.masks]))

    assert median_area({}) > median_area({"scale": 0.5}) > median_area({"scale": 1.0})


def test_classmix_skews_the_class_histogram() -> None:
    def histogram(drift: dict[DriftKnob, float]) -> Float64Array:
        ids = np.concatenate([s.category_ids for s in _scenes(drift, 120)])
        return np.bincount(ids, minlength=len(CATEGORIES) + 1)[1:] / len(ids)

    clean, skewed = histogram({}), histogram({"classmix": 1.0})
    assert clean.max() - clean.min() < 0.15
    assert skewed[0] > 0.4 and skewed[0] > clean[0] + 0.15
    assert skewed[-1] < clean[-1]
