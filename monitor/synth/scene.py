"""Rendering of one generated scene: background, textured shapes, occlusion, image drift."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw
from scipy.ndimage import gaussian_filter

from detectors._typing import BoolArray, Float64Array
from monitor.synth.options import CATEGORIES, NOVEL_CATEGORY, SynthConfig

MAX_OBJECTS = 6
MIN_VISIBLE_FRACTION = 0.45
MIN_VISIBLE_AREA = 60
_PLACEMENT_TRIES = 25
#: class name -> texture; shapes and textures both tell the classes apart
TEXTURES = {
    "disc": "solid",
    "box": "stripes",
    "triangle": "checker",
    "star": "dots",
    "ring": "waves",
}


@dataclass(frozen=True)
class Scene:
    """One rendered scene.

    Attributes
    ----------
    image
        ``H x W x 3`` uint8 RGB image, drift applied.
    masks
        ``N x H x W`` bool visible (occlusion-aware) masks, bottom-most object first;
        they never overlap.
    category_ids
        ``N`` COCO category ids (1..K into :data:`CATEGORIES`); 0 marks an object of the
        novel class, which has no ground-truth category.
    """

    image: NDArray[np.uint8]
    masks: BoolArray
    category_ids: NDArray[np.int64]

    @property
    def known(self) -> BoolArray:
        """Which instances belong to a known category."""
        return np.asarray(self.category_ids > 0)


def _class_probabilities(classmix: float) -> Float64Array:
    k = len(CATEGORIES)
    uniform = np.full(k, 1.0 / k)
    skewed = 0.55 ** np.arange(k)
    skewed /= skewed.sum()
    return np.asarray((1.0 - classmix) * uniform + classmix * skewed)


def _background(rng: np.random.Generator, size: int) -> Float64Array:
    kind = rng.integers(3)
    if kind == 0:  # linear gradient between two colours
        a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        angle = rng.uniform(0, 2 * math.pi)
        yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
        t = (xx * math.cos(angle) + yy * math.sin(angle)) * 0.5 + 0.5
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-9)
        img = a + (b - a) * t[..., None]
    elif kind == 1:  # smooth colour noise
        cells = int(rng.integers(3, 9))
        small = rng.uniform(0, 255, (cells, cells, 3)).astype(np.uint8)
        img = np.asarray(
            Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC), np.float64
        )
    else:  # flat random colour
        img = np.broadcast_to(rng.uniform(0, 255, 3), (size, size, 3)).copy()
    return np.asarray(img + rng.normal(0, 6, (size, size, 3)))


def _polygon_mask(points: Float64Array, size: int) -> BoolArray:
    canvas = Image.new("L", (size, size), 0)
    ImageDraw.Draw(canvas).polygon([(float(x), float(y)) for x, y in points], fill=1)
    return np.asarray(canvas, dtype=bool)


def _shape_mask(name: str, cx: float, cy: float, r: float, angle: float, size: int) -> BoolArray:
    if name in ("disc", "ring"):
        yy, xx = np.ogrid[0:size, 0:size]
        d2 = (xx - cx) ** 2 + (yy - cy) ** 2
        mask = d2 <= r * r
        return np.asarray(mask & (d2 >= (0.5 * r) ** 2)) if name == "ring" else np.asarray(mask)
    if name == "box":
        corners = np.array([(-1, -0.7), (1, -0.7), (1, 0.7), (-1, 0.7)]) * r
    elif name == "triangle":
        t = np.array([-90.0, 30.0, 150.0]) * math.pi / 180
        corners = np.stack([np.cos(t), np.sin(t)], axis=1) * r * 1.15
    else:  # star: five points, inner radius 0.45
        t = np.arange(10) * math.pi / 5 - math.pi / 2
        radii = np.where(np.arange(10) % 2 == 0, 1.2, 0.5) * r
        corners = np.stack([np.cos(t) * radii, np.sin(t) * radii], axis=1)
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    return _polygon_mask(corners @ rot.T + np.array([cx, cy]), size)


def _texture(
    name: str,
    rng: np.random.Generator,
    geometry: tuple[float, float, float, float],
    under: Float64Array,
    size: int,
) -> Float64Array:
    cx, cy, r, angle = geometry
    a = rng.uniform(0, 255, 3)
    for _ in range(10):  # keep the main colour apart from what lies underneath
        if np.abs(a - under).sum() >= 120:
            break
        a = rng.uniform(0, 255, 3)
    b = np.clip(255 - a + rng.normal(0, 30, 3), 0, 255)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    u = (xx - cx) * math.cos(angle) + (yy - cy) * math.sin(angle)
    v = -(xx - cx) * math.sin(angle) + (yy - cy) * math.cos(angle)
    kind = TEXTURES[name]
    if kind == "solid":
        t = 0.25 * np.sqrt(u * u + v * v) / max(r, 1.0)  # soft radial shading
    elif kind == "stripes":
        t = (np.floor(u / rng.uniform(3.0, 5.0)) % 2).astype(np.float64)
    elif kind == "checker":
        cell = rng.uniform(4.0, 7.0)
        t = ((np.floor(u / cell) + np.floor(v / cell)) % 2).astype(np.float64)
    elif kind == "dots":
        step = rng.uniform(6.0, 9.0)
        du, dv = (u % step) - step / 2, (v % step) - step / 2
        t = (du * du + dv * dv <= (0.3 * step) ** 2).astype(np.float64)
    else:  # waves: concentric sine
        t = 0.5 + 0.5 * np.sin(np.sqrt(u * u + v * v) / rng.uniform(1.5, 2.5))
    return np.asarray(a + (b - a) * t[..., None])


def _apply_image_drift(
    img: Float64Array, rng: np.random.Generator, config: SynthConfig
) -> NDArray[np.uint8]:
    blur, contrast = config.severity("blur"), config.severity("contrast")
    brightness, noise = config.severity("brightness"), config.severity("noise")
    if blur > 0:
        img = gaussian_filter(img, sigma=(3.0 * blur, 3.0 * blur, 0.0))
    if contrast > 0:
        mean = img.mean(axis=(0, 1), keepdims=True)
        img = mean + (img - mean) * (1.0 - 0.75 * contrast)
    if brightness > 0:
        img = img + 110.0 * brightness
    if noise > 0:
        img = img + rng.normal(0.0, 45.0 * noise, img.shape)
    return np.asarray(np.clip(np.rint(img), 0, 255), dtype=np.uint8)


def render_scene(rng: np.random.Generator, config: SynthConfig) -> Scene:
    """Render one scene with the drift of ``config`` applied; pure and in memory.

    Objects are drawn bottom to top; an object is only placed where it leaves every object
    under it at least 45 % (and 60 px) visible, so the visible masks are exact and disjoint.

    Parameters
    ----------
    rng
        Source of randomness; the scene is a function of its state and ``config``.
    config
        Image size and drift severities (``n_images`` and ``seed`` are not used here).

    Returns
    -------
    Scene
        The image, visible masks and category ids (0 for objects of the novel class).

    Examples
    --------
    >>> cfg = SynthConfig(n_images=1, seed=0, size=64)
    >>> scene = render_scene(np.random.default_rng(3), cfg)
    >>> scene.image.shape, scene.category_ids.tolist(), scene.masks.sum(axis=(1, 2)).tolist()
    ((64, 64, 3), [4, 3, 1, 2], [142, 188, 195, 89])
    >>> bool(scene.masks.sum(axis=0).max() <= 1)
    True
    """
    layout_rng, texture_rng, pixel_rng = rng.spawn(3)
    size = config.size
    scale = 1.0 - 0.6 * config.severity("scale")
    probabilities = _class_probabilities(config.severity("classmix"))
    novel_rate = 0.5 * config.severity("novel")
    img = _background(texture_rng, size)
    full: list[BoolArray] = []
    visible: list[BoolArray] = []
    ids: list[int] = []
    for _ in range(int(layout_rng.integers(1, MAX_OBJECTS + 1))):
        is_novel = bool(layout_rng.random() < novel_rate)
        cat = int(layout_rng.choice(len(CATEGORIES), p=probabilities)) + 1
        name = NOVEL_CATEGORY if is_novel else CATEGORIES[cat - 1]
        for _ in range(_PLACEMENT_TRIES):
            r = max(layout_rng.uniform(0.07, 0.17) * size * scale, 5.0)
            cx, cy = layout_rng.uniform(r * 0.6, size - r * 0.6, 2)
            angle = layout_rng.uniform(0, 2 * math.pi)
            mask = _shape_mask(name, cx, cy, r, angle, size)
            if mask.sum() < MIN_VISIBLE_AREA:
                continue
            rest = [vis & ~mask for vis in visible]
            if all(
                v.sum() >= max(MIN_VISIBLE_FRACTION * f.sum(), MIN_VISIBLE_AREA)
                for v, f in zip(rest, full, strict=True)
            ):
                break
        else:
            continue  # no room left for this object
        visible = [*rest, mask]
        full.append(mask)
        ids.append(0 if is_novel else cat)
        texture = _texture(name, texture_rng, (cx, cy, r, angle), img[mask].mean(axis=0), size)
        img[mask] = texture[mask]
    masks = np.stack(visible) if visible else np.zeros((0, size, size), dtype=bool)
    return Scene(
        image=_apply_image_drift(img, pixel_rng, config),
        masks=masks,
        category_ids=np.asarray(ids, dtype=np.int64),
    )
