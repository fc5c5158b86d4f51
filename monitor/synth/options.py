"""Settings of the scene generator: drift knobs, categories and :class:`SynthConfig`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Literal, get_args

from monitor.errors import InvalidInputError

DriftKnob = Literal["brightness", "contrast", "blur", "noise", "scale", "classmix", "novel"]
"""Names of the drift knobs; each takes a severity in ``[0, 1]``."""

DRIFT_KNOBS: tuple[DriftKnob, ...] = get_args(DriftKnob)
"""All drift knobs, in a fixed order."""

CATEGORIES: tuple[str, ...] = ("disc", "box", "triangle", "star")
"""The known classes; their COCO category ids are 1..K in this order."""

NOVEL_CATEGORY = "ring"
"""The class the ``novel`` knob introduces; it is not in :data:`CATEGORIES`."""

DEFAULT_START = datetime(2026, 11, 23, tzinfo=UTC)


def _validate_drift(drift: Mapping[Any, object]) -> dict[DriftKnob, float]:
    clean: dict[DriftKnob, float] = {}
    for name, severity in drift.items():
        if name not in DRIFT_KNOBS:
            raise InvalidInputError(
                f"unknown drift knob {name!r}; expected one of {', '.join(DRIFT_KNOBS)}"
            )
        if isinstance(severity, bool) or not isinstance(severity, int | float):
            raise InvalidInputError(
                f"drift severity of {name!r} must be a number, got {severity!r}"
            )
        value = float(severity)
        if not math.isfinite(value) or not 0.0 <= value <= 1.0:
            raise InvalidInputError(
                f"drift severity of {name!r} must be in [0, 1], got {severity!r}"
            )
        clean[name] = value
    return {knob: clean[knob] for knob in DRIFT_KNOBS if knob in clean}


def parse_drift(items: Sequence[str]) -> dict[DriftKnob, float]:
    """Parse ``NAME=SEVERITY`` items (as given on the command line) into drift settings.

    Parameters
    ----------
    items
        Strings such as ``"blur=0.5"``; each knob may appear once.

    Returns
    -------
    dict
        Knob name to severity in ``[0, 1]``, in the fixed knob order.

    Raises
    ------
    InvalidInputError
        For a malformed item, an unknown knob, a repeated knob or a severity outside
        ``[0, 1]``; the message names the offending item.

    Examples
    --------
    >>> parse_drift(["noise=0.25", "blur=0.5"])
    {'blur': 0.5, 'noise': 0.25}
    >>> parse_drift(["fog=0.5"])
    Traceback (most recent call last):
    ...
    detectors.errors.InvalidInputError: unknown drift knob 'fog'; expected one of ...
    """
    raw: dict[str, object] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise InvalidInputError(f"drift item {item!r} is not of the form NAME=SEVERITY")
        if name in raw:
            raise InvalidInputError(f"drift knob {name!r} is given more than once")
        try:
            raw[name] = float(value)
        except ValueError:
            raise InvalidInputError(
                f"drift severity in {item!r} is not a number: {value.strip()!r}"
            ) from None
    return _validate_drift(raw)


@dataclass(frozen=True)
class SynthConfig:
    """What :func:`~monitor.synth.generate_scenes` generates.

    Parameters
    ----------
    n_images
        Number of images (request ids ``<request_prefix>000000`` upwards).
    seed
        Seed; the same seed and settings give byte-identical output. Image ``i`` only
        depends on the seed, ``i`` and the settings, not on ``n_images``.
    size
        Width and height of the square images in pixels.
    drift
        Drift knob to severity in ``[0, 1]`` (0 means no drift); see :data:`DriftKnob`.
    start, interval_s
        ``captured_at`` of image ``i`` is ``start + i * interval_s`` seconds (UTC).
    model_version, request_prefix
        Written into the sample log.

    Examples
    --------
    >>> SynthConfig(n_images=2, seed=0, drift={"blur": 0.5}).drift
    mappingproxy({'blur': 0.5})
    >>> SynthConfig(n_images=2, seed=0, drift={"blur": 2.0})
    Traceback (most recent call last):
    ...
    detectors.errors.InvalidInputError: drift severity of 'blur' must be in [0, 1], got 2.0
    """

    n_images: int
    seed: int
    size: int = 256
    drift: Mapping[DriftKnob, float] = field(default_factory=dict)
    start: datetime = DEFAULT_START
    interval_s: float = 60.0
    model_version: str = "prod-2026.11.1"
    request_prefix: str = "r-"

    def __post_init__(self) -> None:
        if isinstance(self.n_images, bool) or not isinstance(self.n_images, int):
            raise InvalidInputError(f"n_images must be an integer, got {self.n_images!r}")
        if self.n_images < 0:
            raise InvalidInputError(f"n_images must be >= 0, got {self.n_images!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise InvalidInputError(f"seed must be a non-negative integer, got {self.seed!r}")
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 64:
            raise InvalidInputError(f"size must be an integer >= 64, got {self.size!r}")
        if not math.isfinite(self.interval_s) or self.interval_s < 0:
            raise InvalidInputError(f"interval_s must be >= 0, got {self.interval_s!r}")
        if self.start.tzinfo is None:
            raise InvalidInputError(f"start must be timezone-aware, got {self.start!r}")
        if not self.model_version:
            raise InvalidInputError("model_version must not be empty")
        object.__setattr__(self, "drift", MappingProxyType(_validate_drift(self.drift)))

    def severity(self, knob: DriftKnob) -> float:
        """Severity of one knob (0 when it is not set)."""
        return float(self.drift.get(knob, 0.0))
