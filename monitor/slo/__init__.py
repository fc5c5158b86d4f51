"""SLOs for segmon: specs, event-time burn rates, Prometheus rules, dashboards.

Pure code: nothing here touches the database. The SLO job computes
:func:`~monitor.slo.burn.slo_status` from stored rows; collectors export it under the
names in :mod:`monitor.metrics_catalog`; ``segmon rules`` calls
:func:`~monitor.slo.rules.write_rules` and friends.
"""

from __future__ import annotations

from monitor.slo.burn import BurnRate, SLOStatus, burn_rates, slo_status
from monitor.slo.policy import DEFAULT_POLICY, AlertPolicy, BurnRateAlert, BurnRateCondition
from monitor.slo.rules import RuleFiles, write_rules
from monitor.slo.spec import (
    AvailabilitySLI,
    DriftSLI,
    LatencySLI,
    QualitySLI,
    SLOConfig,
    SLOSpec,
    default_slos,
)

__all__ = [
    "DEFAULT_POLICY",
    "AlertPolicy",
    "AvailabilitySLI",
    "BurnRate",
    "BurnRateAlert",
    "BurnRateCondition",
    "DriftSLI",
    "LatencySLI",
    "QualitySLI",
    "RuleFiles",
    "SLOConfig",
    "SLOSpec",
    "SLOStatus",
    "burn_rates",
    "default_slos",
    "slo_status",
    "write_rules",
]
