"""Drift detectors: pure numpy/scipy/scikit-learn, no database and no I/O."""

from __future__ import annotations
