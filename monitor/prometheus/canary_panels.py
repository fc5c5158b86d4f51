"""Grafana panels of the canary comparison: a row any dashboard can place.

:func:`canary_panels` returns a row "Canary: candidate vs baseline" and, under it, the
latest verdict per (baseline, candidate, signal) as a table, the "worse" flags over
time, each directed signal's mean per version and role, and the samples each version
had in the window (``segmon_canary_*``, :mod:`monitor.prometheus.canary_families`).
The quality dashboard places it, and the debug board appends it
(:data:`monitor.prometheus.audience_boards.DEBUG_EXTRA_ROWS`); each at its own ``y``.
"""

from __future__ import annotations

from monitor.prometheus import catalog as mc
from monitor.prometheus.grafana_json import JSON, panel, row, target

__all__ = ["CANARY_ROW", "CANARY_ROW_HEIGHT", "canary_panels"]

CANARY_ROW = "Canary: candidate vs baseline"
CANARY_ROW_HEIGHT = 17
"""Grid units the row and its panels take (a 1-unit row and two rows of 8)."""


def canary_panels(y: int) -> list[JSON]:
    """Return the canary row and its panels, starting at grid row ``y``.

    Examples
    --------
    >>> panels = canary_panels(40)
    >>> [(p["type"], p["gridPos"]["y"]) for p in panels]
    [('row', 40), ('table', 41), ('timeseries', 41), ('timeseries', 49), ('timeseries', 49)]
    """
    mv = 'model_version=~"$model_version"'
    pair = "{{candidate}} vs {{baseline}}: {{signal}}"
    return [
        row(CANARY_ROW, y),
        panel(
            "table",
            "Canary verdicts (latest run)",
            [
                target(
                    f"max by (baseline, candidate, signal, verdict) ({mc.CANARY_VERDICT}) == 1",
                    instant=True,
                )
            ],
            (0, y + 1, 12, 8),
            description=(
                "Per signal, the latest verdict of the canary job: worse, better, "
                "no_difference, different (a significant change without a direction) or "
                "not_enough_data; both versions are read over the same window."
            ),
        ),
        panel(
            "timeseries",
            "Candidate significantly worse (1) per signal",
            [target(f"max by (baseline, candidate, signal) ({mc.CANARY_WORSE})", pair)],
            (12, y + 1, 12, 8),
            description="What SegmonCanaryWorse alerts on (after 1h at 1).",
        ),
        panel(
            "timeseries",
            "Canary signal mean per version",
            [
                target(
                    f"max by (model_version, role, signal) ({mc.CANARY_SIGNAL_MEAN}{{{mv}}})",
                    "{{signal}} {{model_version}} ({{role}})",
                )
            ],
            (0, y + 9, 12, 8),
            description=(
                "Mean of each directed signal (shadow agreement, uncertainty, latency, "
                "quality on labelled samples) over the window, baseline beside candidate."
            ),
        ),
        panel(
            "timeseries",
            "Canary samples per version",
            [
                target(
                    f"max by (model_version, role) ({mc.CANARY_SAMPLES}{{{mv}}})",
                    "{{model_version}} ({{role}})",
                )
            ],
            (12, y + 9, 12, 8),
        ),
    ]
