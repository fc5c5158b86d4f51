"""Drift detectors: pure numpy/scipy/scikit-learn, no database and no I/O.

Every detector follows :class:`Detector` (``fit(reference, groups=None) -> self``,
``score(current, groups=None) -> DriftResult``) and calibrates its threshold by permuting
the pooled reference + current sample, so the false-alarm rate is ``alpha`` for the
actual sample sizes. Rows that were not sampled independently (the objects of one image)
carry a group label each; the detectors then permute whole groups, so the rate stays
``alpha`` when the groups (images) are exchangeable. torch is imported only inside
:class:`MMDDetector.score`.

Importing this package is cheap: each name below is imported from its module on first
use (PEP 562), so ``detectors.errors`` or ``detectors.registry`` load no scipy or
scikit-learn. :mod:`detectors.registry` names every detector for the config.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from detectors._typing import FloatArray as FloatArray
    from detectors.base import BaseDetector as BaseDetector
    from detectors.base import Detector as Detector
    from detectors.categorical import ChiSquareDetector as ChiSquareDetector
    from detectors.domain_classifier import DomainClassifierDetector as DomainClassifierDetector
    from detectors.jensen_shannon import JensenShannonDetector as JensenShannonDetector
    from detectors.kolmogorov_smirnov import KolmogorovSmirnovDetector as KolmogorovSmirnovDetector
    from detectors.kullback_leibler import KullbackLeiblerDetector as KullbackLeiblerDetector
    from detectors.mmd import MMDDetector as MMDDetector
    from detectors.pca_divergence import PCADivergenceDetector as PCADivergenceDetector
    from detectors.population_stability import (
        PopulationStabilityIndexDetector as PopulationStabilityIndexDetector,
    )
    from detectors.result import DriftResult as DriftResult
    from detectors.wasserstein import WassersteinDetector as WassersteinDetector

    UNIVARIATE_DETECTORS: tuple[type[BaseDetector], ...]
    MULTIVARIATE_DETECTORS: tuple[type[BaseDetector], ...]
    CATEGORICAL_DETECTORS: tuple[type[BaseDetector], ...]

_WHERE = {
    "BaseDetector": "detectors.base",
    "ChiSquareDetector": "detectors.categorical",
    "Detector": "detectors.base",
    "DomainClassifierDetector": "detectors.domain_classifier",
    "DriftResult": "detectors.result",
    "FloatArray": "detectors._typing",
    "JensenShannonDetector": "detectors.jensen_shannon",
    "KolmogorovSmirnovDetector": "detectors.kolmogorov_smirnov",
    "KullbackLeiblerDetector": "detectors.kullback_leibler",
    "MMDDetector": "detectors.mmd",
    "PCADivergenceDetector": "detectors.pca_divergence",
    "PopulationStabilityIndexDetector": "detectors.population_stability",
    "WassersteinDetector": "detectors.wasserstein",
}
_GROUPS = {
    "UNIVARIATE_DETECTORS": (
        "JensenShannonDetector",
        "KullbackLeiblerDetector",
        "PopulationStabilityIndexDetector",
        "KolmogorovSmirnovDetector",
        "WassersteinDetector",
    ),
    "MULTIVARIATE_DETECTORS": (
        "PCADivergenceDetector",
        "MMDDetector",
        "DomainClassifierDetector",
    ),
    "CATEGORICAL_DETECTORS": ("ChiSquareDetector",),
}
"""Detectors by the shape they take: one feature ``(n,)`` or ``(n, 1)``; embeddings
``(n, d)``; one category code per sample ``(n,)``."""

__all__ = sorted([*_WHERE, *_GROUPS])


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use."""
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
    elif name in _GROUPS:
        value = tuple(__getattr__(member) for member in _GROUPS[name])
    else:
        raise AttributeError(f"module 'detectors' has no attribute {name!r}")
    globals()[name] = value
    return value
