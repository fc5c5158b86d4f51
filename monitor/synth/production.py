"""A simulated production model: ground truth perturbed, worse as drift grows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import binary_dilation, binary_erosion

from detectors._typing import BoolArray
from monitor.synth.options import CATEGORIES, DriftKnob, SynthConfig
from monitor.synth.scene import Scene

#: how much each knob at severity 1 hurts the simulated model (0: not at all)
_HARM: dict[DriftKnob, float] = {
    "brightness": 0.6,
    "contrast": 0.7,
    "blur": 0.8,
    "noise": 0.8,
    "scale": 0.5,
    "classmix": 0.0,
    "novel": 0.0,
}
_MIN_AREA = 10


@dataclass(frozen=True)
class SimulatedInstance:
    """One prediction of the simulated production model.

    Attributes
    ----------
    category_id
        Predicted COCO category id (1..K).
    score
        Confidence, the predicted class's probability.
    mask
        ``H x W`` bool mask.
    class_scores
        Softmax probabilities of the K known classes.
    """

    category_id: int
    score: float
    mask: BoolArray
    class_scores: tuple[float, ...]


def degradation(config: SynthConfig) -> float:
    """How much the drift of ``config`` hurts the simulated model, in ``[0, 1]``.

    Examples
    --------
    >>> degradation(SynthConfig(n_images=1, seed=0))
    0.0
    >>> round(degradation(SynthConfig(n_images=1, seed=0, drift={"blur": 0.5})), 3)
    0.4
    """
    keep = 1.0
    for knob, harm in _HARM.items():
        keep *= 1.0 - harm * config.severity(knob)
    return 1.0 - keep


def _shift(mask: BoolArray, dy: int, dx: int) -> BoolArray:
    out = np.zeros_like(mask)
    h, w = mask.shape
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[yd, xd] = mask[ys, xs]
    return out


def _perturb(mask: BoolArray, rng: np.random.Generator, d: float) -> BoolArray:
    steps = int(rng.integers(0, 2 + round(3 * d)))
    if steps and rng.random() < 0.5:
        mask = binary_erosion(mask, iterations=steps)
    elif steps:
        mask = binary_dilation(mask, iterations=steps)
    reach = 1 + round(3 * d)
    if rng.random() < 0.3 + 0.5 * d:
        dy, dx = (int(v) for v in rng.integers(-reach, reach + 1, 2))
        mask = _shift(mask, dy, dx)
    return np.asarray(mask, dtype=bool)


def _scores(rng: np.random.Generator, category_id: int, boost: float) -> tuple[float, ...]:
    logits = rng.normal(0.0, 0.7, len(CATEGORIES))
    logits[category_id - 1] += boost
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    return tuple(round(float(p), 4) for p in probs)


def _instance(
    rng: np.random.Generator, mask: BoolArray, category_id: int, boost: float
) -> SimulatedInstance | None:
    if mask.sum() < _MIN_AREA:
        return None
    class_scores = _scores(rng, category_id, boost)
    return SimulatedInstance(category_id, class_scores[category_id - 1], mask, class_scores)


def simulate_predictions(
    scene: Scene, rng: np.random.Generator, config: SynthConfig
) -> list[SimulatedInstance]:
    """Predictions of the simulated production model for one scene, best score first.

    Every object (novel ones too) may be missed, get a perturbed mask (erosion, dilation,
    shift) or a wrong class; spurious blobs appear now and then. All errors grow and the
    scores fall with :func:`degradation`. Novel objects are labelled as a known class
    (most often ``disc``) with low confidence.

    Parameters
    ----------
    scene
        The rendered scene (its ground truth).
    rng
        Source of randomness.
    config
        Drift settings.

    Returns
    -------
    list of SimulatedInstance

    Examples
    --------
    >>> from monitor.synth.scene import render_scene
    >>> cfg = SynthConfig(n_images=1, seed=0, size=64)
    >>> scene = render_scene(np.random.default_rng(0), cfg)
    >>> preds = simulate_predictions(scene, np.random.default_rng(1), cfg)
    >>> all(abs(sum(p.class_scores) - 1) < 1e-3 for p in preds)
    True
    """
    d = degradation(config)
    k = len(CATEGORIES)
    size = scene.image.shape[0]
    out: list[SimulatedInstance] = []
    for mask, cat in zip(scene.masks, scene.category_ids.tolist(), strict=True):
        small = mask.sum() < 400
        if cat == 0:  # novel object: some known class, unsure
            if rng.random() < 0.25:
                continue
            guess = 1 if rng.random() < 0.6 else int(rng.integers(1, k + 1))
            inst = _instance(rng, _perturb(mask, rng, d), guess, rng.normal(1.2, 0.5))
        else:
            if rng.random() < 0.03 + 0.45 * d + (0.08 + 0.2 * d) * small:
                continue
            confused = rng.random() < 0.03 + 0.3 * d
            pred = int((cat - 1 + rng.integers(1, k)) % k) + 1 if confused else cat
            boost = rng.normal(1.5, 0.6) if confused else rng.normal(4.0 - 2.5 * d, 0.7)
            inst = _instance(rng, _perturb(mask, rng, d), pred, boost)
        if inst is not None:
            out.append(inst)
    for _ in range(int(rng.poisson(0.08 + 0.8 * d))):  # spurious blobs
        r = rng.uniform(5, 0.08 * size)
        cy, cx = rng.uniform(0, size, 2)
        yy, xx = np.ogrid[0:size, 0:size]
        blob = (yy - cy) ** 2 / (r * rng.uniform(0.5, 1.5)) ** 2 + (xx - cx) ** 2 / r**2 <= 1
        inst = _instance(rng, np.asarray(blob), int(rng.integers(1, k + 1)), rng.normal(1.0, 0.5))
        if inst is not None:
            out.append(inst)
    return sorted(out, key=lambda p: -p.score)
