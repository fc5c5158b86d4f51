"""The config names of the drift detectors: the one list the configuration derives from.

Each :class:`DetectorEntry` names a detector class, the kind of feature it runs on and
the hyperparameters its config name implies (``pca_kl`` is the PCA detector with the
Kullback-Leibler divergence). Classes are imported when a detector is built, so reading
the names (as config validation does) loads no scipy or scikit-learn.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, cast, get_args

from detectors.base import BaseDetector
from detectors.errors import InvalidInputError

__all__ = [
    "REGISTRY",
    "DetectorEntry",
    "FeatureKind",
    "detector_names",
    "make_detector",
]

FeatureKind = Literal["embedding", "numeric", "categorical"]
"""What a detector compares: embeddings ``(n, d)``, one number per sample, or category codes."""


@dataclass(frozen=True)
class DetectorEntry:
    """A detector as the config names it.

    Attributes
    ----------
    name
        Config name (``pca_js``, ``chi_square``, ...).
    kind
        The kind of feature it runs on.
    target
        ``module:Class`` of the detector.
    params
        Hyperparameters the name implies, passed to the constructor.
    """

    name: str
    kind: FeatureKind
    target: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def detector_class(self) -> type[BaseDetector]:
        """Import and return the detector class."""
        module, _, attr = self.target.partition(":")
        return cast(type[BaseDetector], getattr(importlib.import_module(module), attr))

    def build(self, *, alpha: float, seed: int, feature: str) -> BaseDetector:
        """Return a new detector with these hyperparameters."""
        cls = self.detector_class()
        return cls(alpha=alpha, random_state=seed, feature=feature, **self.params)


def _entries(*entries: DetectorEntry) -> Mapping[str, DetectorEntry]:
    return MappingProxyType({e.name: e for e in entries})


REGISTRY: Mapping[str, DetectorEntry] = _entries(
    DetectorEntry("pca_js", "embedding", "detectors.pca_divergence:PCADivergenceDetector"),
    DetectorEntry(
        "pca_kl",
        "embedding",
        "detectors.pca_divergence:PCADivergenceDetector",
        {"divergence": "kullback_leibler"},
    ),
    DetectorEntry("mmd", "embedding", "detectors.mmd:MMDDetector"),
    DetectorEntry(
        "domain_classifier", "embedding", "detectors.domain_classifier:DomainClassifierDetector"
    ),
    DetectorEntry(
        "kolmogorov_smirnov", "numeric", "detectors.kolmogorov_smirnov:KolmogorovSmirnovDetector"
    ),
    DetectorEntry("jensen_shannon", "numeric", "detectors.jensen_shannon:JensenShannonDetector"),
    DetectorEntry(
        "kullback_leibler", "numeric", "detectors.kullback_leibler:KullbackLeiblerDetector"
    ),
    DetectorEntry(
        "population_stability_index",
        "numeric",
        "detectors.population_stability:PopulationStabilityIndexDetector",
    ),
    DetectorEntry("wasserstein", "numeric", "detectors.wasserstein:WassersteinDetector"),
    DetectorEntry("chi_square", "categorical", "detectors.categorical:ChiSquareDetector"),
)
"""Every detector the config may name, by config name."""


def detector_names(*kinds: FeatureKind) -> tuple[str, ...]:
    """Return the config names of the detectors of these kinds (all kinds if none given).

    Examples
    --------
    >>> detector_names("embedding")
    ('pca_js', 'pca_kl', 'mmd', 'domain_classifier')
    >>> detector_names("categorical")
    ('chi_square',)
    """
    wanted = set(kinds or get_args(FeatureKind))
    return tuple(name for name, entry in REGISTRY.items() if entry.kind in wanted)


def make_detector(name: str, *, alpha: float, seed: int, feature: str) -> BaseDetector:
    """Build the detector a config names (``pca_js``, ``chi_square``, ...).

    Raises
    ------
    InvalidInputError
        If no detector has that name; the message lists the known ones.

    Examples
    --------
    >>> make_detector("pca_kl", alpha=0.05, seed=1, feature="embedding").divergence
    'kullback_leibler'
    >>> make_detector("fog", alpha=0.05, seed=1, feature="x")
    Traceback (most recent call last):
    ...
    detectors.errors.InvalidInputError: unknown drift detector 'fog'; known: chi_square, ...
    """
    entry = REGISTRY.get(name)
    if entry is None:
        raise InvalidInputError(
            f"unknown drift detector {name!r}; known: {', '.join(sorted(REGISTRY))}"
        )
    return entry.build(alpha=alpha, seed=seed, feature=feature)
