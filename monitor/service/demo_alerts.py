"""Which burn-rate alerts the demo's SLOs fire, and why.

At the end of each simulated day the demo reads every segmon-computed SLO's windows
from the database (:func:`monitor.slo.events.read_slo_status`) and evaluates its page
and ticket tiers with :func:`monitor.slo.burn.alert_verdicts`: the same tiers, windows,
factors and event guards the generated ``SLOErrorBudgetBurn`` rules compare in PromQL
(the promtool tests check that both agree). SLOs of the inference service (availability,
latency) are computed by Prometheus from that service's metrics, which the demo has not:
they are listed as skipped.

The canary alert (``SegmonCanaryWorse``, :mod:`monitor.prometheus.canary_rules`) is
evaluated by :func:`canary_alerts` over what ``/metrics`` exports from the stored canary
verdicts: the rule's expression, ``segmon_canary_worse == 1``, per (baseline, candidate,
signal). Its ``for`` (an hour) means it fires once the next hourly run agrees; the demo
says so instead of pretending it fired.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from monitor.prometheus import catalog as mc
from monitor.prometheus.canary_families import canary_families
from monitor.prometheus.canary_rules import CANARY_ALERT, CANARY_FOR
from monitor.slo.burn import alert_verdicts
from monitor.slo.duration import format_duration
from monitor.slo.events import read_slo_status
from monitor.slo.policy import DEFAULT_POLICY, AlertPolicy, Severity, TierVerdict
from monitor.slo.spec import SLOSpec

__all__ = ["SLOAlerts", "alert_report", "canary_alerts", "evaluate_slo_alerts"]


@dataclass(frozen=True)
class SLOAlerts:
    """The alert verdicts of one SLO at one instant.

    Attributes
    ----------
    slo
        SLO name.
    at
        The instant the windows end.
    objective, max_burn
        Its objective and the highest burn rate it allows, ``1 / (1 - objective)``.
    verdicts
        One per generated tier (page first).
    adjusted
        Tiers ``unreachable_tiers`` capped or dropped, described.
    """

    slo: str
    at: datetime
    objective: float
    max_burn: float
    verdicts: tuple[TierVerdict, ...]
    adjusted: tuple[str, ...]

    @property
    def firing(self) -> tuple[Severity, ...]:
        """Severities with at least one firing tier, page first."""
        fired = {v.severity for v in self.verdicts if v.fires}
        both: tuple[Severity, Severity] = ("page", "ticket")
        return tuple(s for s in both if s in fired)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``--json`` (full precision)."""
        return {
            "slo": self.slo,
            "at": self.at.isoformat(),
            "objective": self.objective,
            "max_burn_rate": self.max_burn,
            "firing": list(self.firing),
            "adjusted_tiers": list(self.adjusted),
            "tiers": [
                {
                    "severity": v.severity,
                    "long_window": v.long_window,
                    "short_window": v.short_window,
                    "factor": v.factor,
                    "long_burn_rate": v.long_burn,
                    "short_burn_rate": v.short_burn,
                    "long_events": v.long_events,
                    "short_events": v.short_events,
                    "min_events": v.min_events,
                    "fires": v.fires,
                    "why": v.describe(),
                }
                for v in self.verdicts
            ],
        }


def evaluate_slo_alerts(
    session: Session,
    slos: Sequence[SLOSpec],
    at: datetime,
    policy: AlertPolicy = DEFAULT_POLICY,
) -> list[SLOAlerts]:
    """Evaluate the burn-rate alerts of every segmon-computed SLO at ``at``."""
    out: list[SLOAlerts] = []
    for spec in slos:
        if not spec.computed_by_segmon:
            continue
        status = read_slo_status(session, spec, at)
        resolved = spec.alert_policy(policy)
        out.append(
            SLOAlerts(
                slo=spec.name,
                at=status.now,
                objective=spec.objective,
                max_burn=resolved.max_burn,
                verdicts=alert_verdicts(spec, status, policy),
                adjusted=tuple(a.describe() for a in resolved.adjustments),
            )
        )
    return out


def alert_report(
    sessions: sessionmaker[Session],
    slos: Sequence[SLOSpec],
    instants: Mapping[str, datetime],
    policy: AlertPolicy = DEFAULT_POLICY,
) -> dict[str, Any]:
    """Return the demo's alert section: per named instant (a simulated day's end), every SLO.

    Returns
    -------
    dict
        ``{"days": [{"day", "at", "firing": [{"slo", "severity"}], "slos": [...]}],
        "skipped": [{"slo", "reason"}]}``.
    """
    days: list[dict[str, Any]] = []
    with sessions() as session:
        for name, at in instants.items():
            checks = evaluate_slo_alerts(session, slos, at, policy)
            days.append(
                {
                    "day": name,
                    "at": at.isoformat(),
                    "firing": [{"slo": c.slo, "severity": sev} for c in checks for sev in c.firing],
                    "slos": [c.to_dict() for c in checks],
                }
            )
    skipped = [
        {
            "slo": s.name,
            "reason": f"{s.sli.kind} of the {s.service} service: Prometheus computes it "
            "from that service's metrics, which the demo does not have",
        }
        for s in slos
        if not s.computed_by_segmon
    ]
    return {"days": days, "skipped": skipped}


def canary_alerts(sessions: sessionmaker[Session]) -> list[dict[str, Any]]:
    """Return the ``SegmonCanaryWorse`` alerts the exported canary verdicts make pending.

    Evaluates the rule's expression (``segmon_canary_worse == 1`` per baseline,
    candidate and signal) over the samples ``/metrics`` would export now; each alert
    fires once its condition has held for the rule's ``for``.
    """
    with sessions() as session:
        worse = next((f for f in canary_families(session) if f.name == mc.CANARY_WORSE), None)
        samples = [] if worse is None else list(worse.samples)
    return [
        {
            "alert": CANARY_ALERT,
            "severity": "ticket",
            "for": format_duration(CANARY_FOR),
            **{k: sample.labels[k] for k in ("baseline", "candidate", "signal")},
        }
        for sample in samples
        if sample.value == 1.0
    ]
