"""Generated scenes: images, a labeled COCO holdout and a simulated production sample log.

``generate_scenes`` is what ``segmon synth`` runs; ``render_scene`` is the pure,
in-memory core. Drift knobs (:data:`DriftKnob`) shift the images, the objects or the
class mix, and make the simulated production model worse.
"""

from __future__ import annotations

from monitor.synth.options import (
    CATEGORIES,
    DRIFT_KNOBS,
    NOVEL_CATEGORY,
    DriftKnob,
    SynthConfig,
    parse_drift,
)
from monitor.synth.production import SimulatedInstance, degradation, simulate_predictions
from monitor.synth.scene import Scene, render_scene
from monitor.synth.writer import SynthSummary, generate_scenes

__all__ = [
    "CATEGORIES",
    "DRIFT_KNOBS",
    "NOVEL_CATEGORY",
    "DriftKnob",
    "Scene",
    "SimulatedInstance",
    "SynthConfig",
    "SynthSummary",
    "degradation",
    "generate_scenes",
    "parse_drift",
    "render_scene",
    "simulate_predictions",
]
