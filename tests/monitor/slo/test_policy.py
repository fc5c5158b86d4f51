from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from monitor.config import load_settings
from monitor.errors import ConfigError
from monitor.prometheus.rules import slo_rule_groups
from monitor.slo.burn import alert_verdicts, slo_status
from monitor.slo.policy import (
    CAP_FRACTION,
    DEFAULT_POLICY,
    UnreachableTierError,
    evaluate_tiers,
    max_burn_rate,
    resolve_tiers,
)
from monitor.slo.spec import DriftSLI, QualitySLI, SLOSpec, default_slos


def _alerts(slo: SLOSpec) -> list[dict[str, object]]:
    return [r for g in slo_rule_groups(slo) for r in g["rules"] if "alert" in r]


def test_unreachable_tier_is_refused_naming_slo_tier_factor_and_max_burn() -> None:
    with pytest.raises(ValidationError) as info:
        SLOSpec(name="mask-q", objective=0.9, sli=QualitySLI())
    message = str(info.value)
    assert "SLO 'mask-q'" in message
    assert "page tier 14.4x over 1h and 5m" in message
    assert "burn rate is at most 10 " in message
    assert "raise the objective above 0.930556" in message
    assert "unreachable_tiers: cap" in message


def test_the_error_carries_its_values_as_data() -> None:
    with pytest.raises(UnreachableTierError) as info:
        resolve_tiers(DEFAULT_POLICY, slo="s", objective=0.85, severities=["page"])
    err = info.value
    assert (err.slo, err.severity, err.condition.factor) == ("s", "page", 14.4)
    assert err.max_burn == pytest.approx(1 / 0.15)
    assert isinstance(err, ConfigError) and isinstance(err, ValueError)


def test_config_file_with_an_unreachable_tier_fails_to_load(tmp_path: Path) -> None:
    path = tmp_path / "segmon.yaml"
    path.write_text(
        "slos:\n"
        "  - name: strict-enough\n"
        "    objective: 0.99\n"
        "    sli: {kind: quality}\n"
        "  - name: loose\n"
        "    objective: 0.8\n"
        "    sli: {kind: quality, source: shadow}\n"
    )
    with pytest.raises(ConfigError, match=r"slos\.1.*SLO 'loose': the page tier 14\.4x"):
        load_settings(path, {})


def test_a_disabled_severity_is_not_checked() -> None:
    # objective 0.5: max burn 2, every page tier and the 3x ticket are unreachable
    with pytest.raises(ValidationError, match="ticket tier 3x over 1d and 2h"):
        SLOSpec(name="d", objective=0.5, sli=DriftSLI(feature_family="x"), page=False)
    only_slow = SLOSpec(
        name="d",
        objective=0.5,
        sli=DriftSLI(feature_family="x"),
        page=False,
        unreachable_tiers="drop",
    )
    (ticket,) = only_slow.alert_policy().alerts
    assert [(c.long_window, c.factor) for c in ticket.conditions] == [("3d", 1.0)]


def test_cap_lowers_the_factor_and_says_so_in_the_rule() -> None:
    slo = SLOSpec(name="q", objective=0.9, sli=QualitySLI(), unreachable_tiers="cap")
    resolved = slo.alert_policy()
    page = resolved.alerts[0]
    assert [(c.long_window, c.short_window, c.factor) for c in page.conditions] == [
        ("1h", "5m", 9.0),
        ("6h", "30m", 6.0),
    ]
    assert CAP_FRACTION * max_burn_rate(0.9) == pytest.approx(9.0)
    assert [a.severity for a in resolved.adjustments] == ["page"]
    rules = {r["labels"]["severity"]: r for r in _alerts(slo)}  # type: ignore[index]
    page_rule = rules["page"]
    assert "> 9)" in str(page_rule["expr"]) and "14.4" not in str(page_rule["expr"])
    annotations = page_rule["annotations"]
    assert isinstance(annotations, dict)
    assert annotations["adjusted_tiers"] == (
        "page tier 1h/5m capped from 14.4x to 9x (0.9 of the maximum burn rate 10) "
        "(unreachable_tiers: cap)"
    )
    assert "adjusted_tiers" not in rules["ticket"]["annotations"]  # type: ignore[operator]


def test_drop_leaves_the_tier_out_and_an_emptied_severity_is_not_generated() -> None:
    slo = SLOSpec(name="q", objective=0.9, sli=QualitySLI(), unreachable_tiers="drop")
    page = slo.alert_policy().alerts[0]
    assert [c.factor for c in page.conditions] == [6.0]
    assert "14.4" not in str(_alerts(slo)[0]["expr"])
    # objective 0.8: max burn 5; both page tiers (14.4x, 6x) go, the ticket stays
    loose = SLOSpec(name="q", objective=0.8, sli=QualitySLI(), unreachable_tiers="drop")
    resolved = loose.alert_policy()
    assert [a.severity for a in resolved.alerts] == ["ticket"]
    assert [a.describe() for a in resolved.adjustments] == [
        "page tier 1h/5m (14.4x) dropped: the burn rate is at most 5",
        "page tier 6h/30m (6x) dropped: the burn rate is at most 5",
    ]
    assert [r["labels"]["severity"] for r in _alerts(loose)] == ["ticket"]  # type: ignore[index]


def test_reachable_tiers_are_left_alone_whatever_the_rule() -> None:
    for rule in ("error", "cap", "drop"):
        slo = SLOSpec(name="q", objective=0.99, sli=QualitySLI(), unreachable_tiers=rule)
        resolved = slo.alert_policy()
        assert resolved.adjustments == ()
        assert [a.conditions for a in resolved.alerts] == [
            DEFAULT_POLICY.page.conditions,
            DEFAULT_POLICY.ticket.conditions,
        ]


def test_default_config_pages_on_a_real_outage_of_each_quality_slo() -> None:
    hour = np.arange(0.0, 3600.0, 5.0)  # an event every 5 s for an hour, all bad
    quality = [s for s in default_slos() if isinstance(s.sli, QualitySLI)]
    assert {s.name for s in quality} == {"mask-quality-holdout", "mask-quality-shadow"}
    for spec in quality:
        outage = slo_status(spec, hour, 3600.0, bad=np.ones(hour.size, bool))
        fired = {(v.severity, v.long_window) for v in alert_verdicts(spec, outage) if v.fires}
        assert ("page", "1h") in fired, spec.name
        # one event in 20 bad is within either budget: nothing fires
        calm = slo_status(spec, hour, 3600.0, bad=np.arange(hour.size) % 20 == 0)
        assert not any(v.fires for v in alert_verdicts(spec, calm)), spec.name


def test_evaluate_tiers_compares_strictly_and_needs_both_windows_and_events() -> None:
    page = [DEFAULT_POLICY.page]
    plenty = dict.fromkeys(("1h", "5m", "6h", "30m"), 100.0)

    def fires(burn: dict[str, float], events: dict[str, float] = plenty) -> list[bool]:
        return [v.fires for v in evaluate_tiers(page, burn, events, 20)]

    assert fires({"1h": 14.41, "5m": 14.41}) == [True, False]
    assert fires({"1h": 14.4, "5m": 15.0}) == [False, False]  # at the factor: no
    assert fires({"1h": 15.0, "5m": 14.39}) == [False, False]  # short window below
    assert fires({"1h": 15.0, "5m": 15.0}, {**plenty, "5m": 19.0}) == [False, False]
    assert fires({"6h": 7.0, "30m": 7.0}) == [False, True]
    (verdict, _) = evaluate_tiers(page, {"1h": 15.0, "5m": 2.0}, plenty, 20)
    assert verdict.describe() == (
        "page 1h/5m: quiet: 1h 15 > 14.4 (100 events); 5m 2 <= 14.4 (100 events)"
    )
