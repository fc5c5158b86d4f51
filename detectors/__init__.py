"""Drift detectors: pure numpy/scipy/scikit-learn, no database and no I/O.

Every detector follows :class:`Detector` (``fit(reference) -> self``,
``score(current) -> DriftResult``) and calibrates its threshold by permuting the pooled
reference + current sample, so the false-alarm rate is ``alpha`` for the actual sample
sizes. torch is imported only inside :class:`MMDDetector.score`.
"""

from __future__ import annotations

from detectors._typing import FloatArray
from detectors.base import BaseDetector, Detector
from detectors.categorical import ChiSquareDetector
from detectors.domain_classifier import DomainClassifierDetector
from detectors.jensen_shannon import JensenShannonDetector
from detectors.kolmogorov_smirnov import KolmogorovSmirnovDetector
from detectors.kullback_leibler import KullbackLeiblerDetector
from detectors.mmd import MMDDetector
from detectors.pca_divergence import PCADivergenceDetector
from detectors.population_stability import PopulationStabilityIndexDetector
from detectors.result import DriftResult
from detectors.wasserstein import WassersteinDetector

UNIVARIATE_DETECTORS: tuple[type[BaseDetector], ...] = (
    JensenShannonDetector,
    KullbackLeiblerDetector,
    PopulationStabilityIndexDetector,
    KolmogorovSmirnovDetector,
    WassersteinDetector,
)
"""Detectors that take one feature, shape ``(n,)`` or ``(n, 1)``."""

MULTIVARIATE_DETECTORS: tuple[type[BaseDetector], ...] = (
    PCADivergenceDetector,
    MMDDetector,
    DomainClassifierDetector,
)
"""Detectors that take embeddings, shape ``(n, d)``."""

CATEGORICAL_DETECTORS: tuple[type[BaseDetector], ...] = (ChiSquareDetector,)
"""Detectors that take one category code per sample, shape ``(n,)``."""

__all__ = [
    "CATEGORICAL_DETECTORS",
    "MULTIVARIATE_DETECTORS",
    "UNIVARIATE_DETECTORS",
    "BaseDetector",
    "ChiSquareDetector",
    "Detector",
    "DomainClassifierDetector",
    "DriftResult",
    "FloatArray",
    "JensenShannonDetector",
    "KolmogorovSmirnovDetector",
    "KullbackLeiblerDetector",
    "MMDDetector",
    "PCADivergenceDetector",
    "PopulationStabilityIndexDetector",
    "WassersteinDetector",
]
