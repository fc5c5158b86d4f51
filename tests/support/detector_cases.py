"""The (detector class, parameters) pairs the shared detector suites run.

Each class says which parameters the suites should try in
``BaseDetector._unit_test_params`` (as River's estimators do), so no suite keeps a
table of special cases.
"""

from __future__ import annotations

from typing import Any

import pytest

from detectors import BaseDetector

Case = tuple[type[BaseDetector], dict[str, Any]]


def detector_cases(classes: tuple[type[BaseDetector], ...]) -> list[Case]:
    """Every (class, parameters) pair, the parameters as each class declares them."""
    return [(cls, params) for cls in classes for params in cls._unit_test_params()]


def case_id(case: Case) -> str:
    """``MMDDetector-device=cpu``: the class, then its declared parameters."""
    cls, params = case
    return "-".join([cls.__name__, *(f"{k}={v}" for k, v in params.items())])


def every_detector(classes: tuple[type[BaseDetector], ...]) -> pytest.MarkDecorator:
    """Parametrize a test's ``cls`` and ``params`` over every declared case of ``classes``."""
    cases = detector_cases(classes)
    return pytest.mark.parametrize(("cls", "params"), cases, ids=[case_id(c) for c in cases])
