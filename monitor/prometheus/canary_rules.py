"""The canary alert: a candidate model version significantly worse than the baseline.

``SegmonCanaryWorse`` fires per (baseline, candidate, signal) while the latest stored
canary verdict on that signal is ``worse`` (``segmon_canary_worse == 1``) for
:data:`CANARY_FOR`. It is written into ``drift.rules.yml`` beside the drift alert (both
say "what production sees changed"), and tested there by ``promtool test rules``.

Severity ``ticket``, not ``page``: the verdict is a statistical test over a day of
samples, recomputed by an hourly job, so it moves on the scale of hours and at
``drift.alpha`` a signal can be flagged by chance; the action it calls for (hold or
roll back a canary rollout) is a release decision for working hours, not a wake-up.
An outage of the candidate pages anyway through the quality and service SLOs.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Final

from monitor.prometheus import catalog as mc
from monitor.slo.duration import format_duration

__all__ = ["CANARY_ALERT", "CANARY_FOR", "CANARY_LABELS", "canary_rule_groups"]

CANARY_ALERT: Final = "SegmonCanaryWorse"
CANARY_FOR: Final = timedelta(hours=1)
"""How long the verdict must stay ``worse``: about two hourly runs of the canary job."""
CANARY_LABELS: Final = ("baseline", "candidate", "signal")


def canary_rule_groups(
    canary_for: timedelta = CANARY_FOR, severity: str = "ticket"
) -> list[dict[str, Any]]:
    """Return the canary alert group.

    Examples
    --------
    >>> rule = canary_rule_groups()[0]["rules"][0]
    >>> rule["expr"], rule["for"], rule["labels"]
    ('max by (baseline, candidate, signal) (segmon_canary_worse) == 1', '1h', {'severity': 'ticket'})
    """
    labels = ", ".join(CANARY_LABELS)
    return [
        {
            "name": "segmon-canary-alerts",
            "rules": [
                {
                    "alert": CANARY_ALERT,
                    "expr": f"max by ({labels}) ({mc.CANARY_WORSE}) == 1",
                    "for": format_duration(canary_for),
                    "labels": {"severity": severity},
                    "annotations": {
                        "summary": (
                            "Candidate {{ $labels.candidate }} is worse than "
                            "{{ $labels.baseline }} on {{ $labels.signal }}."
                        ),
                        "description": (
                            "The canary comparison finds model version "
                            "{{ $labels.candidate }} significantly worse than the baseline "
                            "{{ $labels.baseline }} on signal {{ $labels.signal }} (same "
                            f"time window, calibrated test) for more than "
                            f"{format_duration(canary_for)}; see `segmon compare --baseline "
                            "{{ $labels.baseline }} --candidate {{ $labels.candidate }}`."
                        ),
                    },
                }
            ],
        }
    ]
