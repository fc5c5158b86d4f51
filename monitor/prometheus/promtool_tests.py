"""``promtool test rules`` unit tests for the generated rule files.

For each SLO and each tier that can fire at its objective (capped tiers at their
capped factor) the tests feed input series that must make the page (and ticket) alert
fire, just above the tier's factor, and series that must not: exactly at the factor
(the rule compares strictly), just below it, a burn on the short window only, too few
events, and zero traffic (where the SLI recording must be 0 or absent, never NaN).
Drift and job-freshness alerts get firing and pending cases too.

The expected alerts come from :func:`monitor.slo.policy.evaluate_tiers`, the alert
logic ``segmon demo`` uses too, over the *policy* the tests are generated with: so
``promtool test rules`` checks that the generated PromQL and that function agree, and
generating the rules with a different policy (say a page factor of 12 instead of 14.4)
and running these tests against them fails.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, Final

from monitor.jobs.names import JobName
from monitor.prometheus import catalog as mc
from monitor.prometheus.canary_rules import CANARY_ALERT, CANARY_FOR, canary_rule_groups
from monitor.prometheus.rules import (
    BURN_ALERT,
    DRIFT_ALERT,
    JOB_NEVER_ALERT,
    JOB_STALE_ALERT,
    burn_alert_rule,
    drift_rule_groups,
    job_rule_groups,
    job_stale_after,
    number,
)
from monitor.slo.duration import ALERT_WINDOWS, format_duration, parse_duration
from monitor.slo.policy import AlertPolicy, BurnRateAlert, evaluate_tiers
from monitor.slo.spec import AvailabilitySLI, LatencySLI, SLOSpec

__all__ = ["rule_tests"]

Doc = dict[str, Any]
_STEPS: Final = 60  # samples per input series, one a minute
_EVAL: Final = "10m"
_MATCHER: Final = re.compile(r'\s*([a-zA-Z_]\w*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')


def _series(name: str, labels: Mapping[str, str], values: str) -> Doc:
    inner = ", ".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{name}{{{inner}}}", "values": values}


def _const(value: float, steps: int = _STEPS) -> str:
    return f"{number(value)}+0x{steps}"


def _expected(
    slo: SLOSpec,
    policy: AlertPolicy,
    burn: Mapping[str, float],
    events: Mapping[str, float],
) -> list[BurnRateAlert]:
    """Return the alerts the policy says must fire for these window values."""
    alerts = slo.alert_policy(policy).alerts
    verdicts = evaluate_tiers(alerts, burn, events, slo.min_events)
    firing = {v.severity for v in verdicts if v.fires}
    return [a for a in alerts if a.severity in firing]


def _exp_alerts(slo: SLOSpec, policy: AlertPolicy, alerts: Sequence[BurnRateAlert]) -> list[Doc]:
    adjusted = slo.alert_policy(policy)
    out = []
    for alert in alerts:
        rule = burn_alert_rule(slo, alert, adjusted.adjustments_of(alert.severity))
        out.append({"exp_labels": rule["labels"], "exp_annotations": rule["annotations"]})
    return out


def _segmon_case(
    slo: SLOSpec, policy: AlertPolicy, name: str, burn: Mapping[str, float], events: float
) -> Doc:
    windows = (*ALERT_WINDOWS, slo.period_label)
    burns = {w: burn.get(w, 0.0) for w in windows}
    counts = dict.fromkeys(windows, events)
    series = []
    for w in windows:
        labels = {"slo": slo.name, "window": w}
        series.append(_series(mc.SLO_BURN_RATE, labels, _const(burns[w])))
        series.append(_series(mc.SLO_ERROR_RATIO, labels, _const(burns[w] * slo.error_budget)))
        series.append(_series(mc.SLO_EVENTS, labels, _const(events)))
    fired = _expected(slo, policy, burns, counts)
    return {
        "name": f"{slo.name}: {name}",
        "interval": "1m",
        "input_series": series,
        "alert_rule_test": [
            {
                "eval_time": _EVAL,
                "alertname": BURN_ALERT,
                "exp_alerts": _exp_alerts(slo, policy, fired),
            }
        ],
    }


def _segmon_cases(slo: SLOSpec, policy: AlertPolicy) -> list[Doc]:
    plenty = max(10 * slo.min_events, 100)
    cases = []
    resolved = slo.alert_policy(policy)
    for alert in resolved.alerts:
        for c in alert.conditions:
            above = c.factor * 1.001
            below = c.factor * 0.999
            both = f"{c.long_window} and {c.short_window}"
            for what, value in (
                (f"{alert.severity} fires at {number(above)}x", above),
                (f"no {alert.severity} at exactly {number(c.factor)}x", c.factor),
                (f"no {alert.severity} at {number(below)}x", below),
            ):
                cases.append(
                    _segmon_case(
                        slo,
                        policy,
                        f"{what} over {both}",
                        {c.long_window: value, c.short_window: value},
                        plenty,
                    )
                )
            cases.append(
                _segmon_case(
                    slo,
                    policy,
                    f"no {alert.severity} when only {c.short_window} burns",
                    {c.long_window: min(0.5, below), c.short_window: above},
                    plenty,
                )
            )
    top = 1.05 * max((c.factor for a in resolved.alerts for c in a.conditions), default=1.0)
    everywhere = dict.fromkeys((*ALERT_WINDOWS, slo.period_label), top)
    cases.append(
        _segmon_case(
            slo,
            policy,
            f"no alert with {slo.min_events - 1} events",
            everywhere,
            slo.min_events - 1,
        )
    )
    zero = _segmon_case(slo, policy, "no alert and SLI 0 at zero traffic", {}, 0)
    labels = {
        "sloth_id": slo.sloth_id,
        "sloth_service": slo.service,
        "sloth_slo": slo.name,
        "sloth_window": "5m",
    }
    zero["promql_expr_test"] = [
        {
            "expr": f'slo:sli_error:ratio_rate5m{{sloth_slo="{slo.name}"}}',
            "eval_time": _EVAL,
            "exp_samples": [
                {"labels": _labels_text("slo:sli_error:ratio_rate5m", labels), "value": 0}
            ],
        }
    ]
    cases.append(zero)
    return cases


def _labels_text(name: str, labels: Mapping[str, str]) -> str:
    return name + "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def _selector_labels(selector: str) -> dict[str, str] | None:
    """Labels that satisfy a selector of equality matchers (None for other matchers)."""
    labels: dict[str, str] = {}
    pos = 0
    while pos < len(selector):
        m = _MATCHER.match(selector, pos)
        if m is None:
            return None
        labels[m.group(1)] = m.group(2)
        pos = m.end()
    return labels


def _pick(regex: str, candidates: Sequence[str], match: bool) -> str | None:
    for value in candidates:
        if (re.fullmatch(regex, value) is not None) == match:
            return value
    return None


_ERROR_CODES: Final = ("500", "503", "5xx", "error", "failure", "false")
_OK_CODES: Final = ("200", "2xx", "ok", "success", "true")


def _service_inputs(slo: SLOSpec, per_minute: float, ratio: float) -> list[Doc] | None:
    sli = slo.sli
    base = _selector_labels(getattr(sli, "selector", ""))
    if base is None:
        return None
    good = per_minute * (1 - ratio)
    bad = per_minute * ratio
    ramp = "0+{}x" + str(_STEPS)
    if isinstance(sli, AvailabilitySLI):
        err = _pick(sli.error_status_regex, _ERROR_CODES, True)
        ok = _pick(sli.error_status_regex, _OK_CODES, False)
        if err is None or ok is None:
            return None
        return [
            _series(sli.metric, {**base, sli.status_label: ok}, ramp.format(number(good))),
            _series(sli.metric, {**base, sli.status_label: err}, ramp.format(number(bad))),
        ]
    if isinstance(sli, LatencySLI):
        return [
            _series(sli.bucket_metric, {**base, "le": sli.threshold_le}, ramp.format(number(good))),
            _series(sli.count_metric, base, ramp.format(number(per_minute))),
        ]
    return None


def _service_case(
    slo: SLOSpec, policy: AlertPolicy, name: str, per_minute: float, ratio: float
) -> Doc | None:
    inputs = _service_inputs(slo, per_minute, ratio)
    if inputs is None:
        return None
    minutes = _STEPS
    windows = (*ALERT_WINDOWS, slo.period_label)
    burn = dict.fromkeys(windows, ratio / slo.error_budget if per_minute > 0 else 0.0)
    events = {w: per_minute * min(parse_duration(w).total_seconds() / 60, minutes) for w in windows}
    fired = _expected(slo, policy, burn, events)
    return {
        "name": f"{slo.name}: {name}",
        "interval": "1m",
        "input_series": inputs,
        "alert_rule_test": [
            {
                "eval_time": f"{minutes}m",
                "alertname": BURN_ALERT,
                "exp_alerts": _exp_alerts(slo, policy, fired),
            }
        ],
    }


def _service_cases(slo: SLOSpec, policy: AlertPolicy) -> list[Doc]:
    ratio = min(20 * slo.error_budget, 1.0)
    factors = [c.factor for a in slo.alert_policy(policy).alerts for c in a.conditions]
    if not factors:
        return []
    top = max(factors)
    cases = [
        _service_case(slo, policy, f"alerts at error ratio {number(ratio)}", 100.0, ratio),
        _service_case(
            slo,
            policy,
            "no alert just below the lowest factor",
            100.0,
            0.9 * slo.error_budget * min(factors),
        ),
        _service_case(
            slo,
            policy,
            f"no alert under {slo.min_events} requests per window",
            slo.min_events / (2 * _STEPS),
            min(1.0, 1.5 * top * slo.error_budget),
        ),
    ]
    zero = _service_case(slo, policy, "no alert and no SLI series at zero traffic", 0.0, 0.0)
    if zero is not None:
        zero["promql_expr_test"] = [
            {
                "expr": f'slo:sli_error:ratio_rate5m{{sloth_slo="{slo.name}"}}',
                "eval_time": f"{_STEPS}m",
                "exp_samples": [],
            }
        ]
    return [c for c in (*cases, zero) if c is not None]


def _drift_tests(drift_for: timedelta) -> Doc:
    rule = drift_rule_groups(drift_for)[0]["rules"][0]
    labels = {
        "detector": "jensen_shannon",
        "feature": "instance_embedding",
        "family": "instance_embedding",
        "class_name": "car",
    }
    pending = max(drift_for - timedelta(minutes=1), timedelta(minutes=1))
    fired = drift_for + timedelta(minutes=1)
    steps = int(fired.total_seconds() // 60) + 5
    annotations = {
        k: v.replace("{{ $labels.detector }}", labels["detector"])
        .replace("{{ $labels.family }}", labels["family"])
        .replace("{{ $labels.feature }}", labels["feature"])
        .replace("{{ $labels.class_name }}", labels["class_name"])
        for k, v in rule["annotations"].items()
    }
    exp = {"exp_labels": {**labels, **rule["labels"]}, "exp_annotations": annotations}
    other = {**labels, "class_name": "person"}
    return {
        "rule_files": ["drift.rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "name": f"drift alert waits {format_duration(drift_for)}, then fires",
                "interval": "1m",
                "input_series": [
                    _series(mc.DRIFT_DETECTED, labels, _const(1, steps)),
                    _series(mc.DRIFT_DETECTED, other, _const(0, steps)),
                ],
                "alert_rule_test": [
                    {
                        "eval_time": format_duration(pending),
                        "alertname": DRIFT_ALERT,
                        "exp_alerts": [],
                    },
                    {
                        "eval_time": format_duration(fired),
                        "alertname": DRIFT_ALERT,
                        "exp_alerts": [exp],
                    },
                ],
            }
        ],
    }


def _canary_tests() -> list[Doc]:
    """``SegmonCanaryWorse``: pending, then firing for a worse signal; never for a 0."""
    rule = canary_rule_groups()[0]["rules"][0]
    labels = {"baseline": "stable", "candidate": "canary", "signal": "quality"}
    fine = {**labels, "signal": "latency_ms"}
    pending = CANARY_FOR - timedelta(minutes=5)
    fired = CANARY_FOR + timedelta(minutes=5)
    steps = int(fired.total_seconds() // 60) + 5
    annotations = dict(rule["annotations"])
    for key, value in labels.items():
        annotations = {
            k: v.replace("{{ $labels." + key + " }}", value) for k, v in annotations.items()
        }
    exp = {"exp_labels": {**labels, **rule["labels"]}, "exp_annotations": annotations}
    return [
        {
            "name": f"canary alert waits {format_duration(CANARY_FOR)} on a worse signal, "
            "then fires; a signal that is not worse never does",
            "interval": "1m",
            "input_series": [
                _series(mc.CANARY_WORSE, labels, _const(1, steps)),
                _series(mc.CANARY_WORSE, fine, _const(0, steps)),
            ],
            "alert_rule_test": [
                {
                    "eval_time": format_duration(pending),
                    "alertname": CANARY_ALERT,
                    "exp_alerts": [],
                },
                {
                    "eval_time": format_duration(fired),
                    "alertname": CANARY_ALERT,
                    "exp_alerts": [exp],
                },
            ],
        },
        {
            "name": "no canary alert while the verdict is not worse",
            "interval": "1m",
            "input_series": [_series(mc.CANARY_WORSE, labels, _const(0, steps))],
            "alert_rule_test": [
                {"eval_time": format_duration(fired), "alertname": CANARY_ALERT, "exp_alerts": []}
            ],
        },
    ]


def _job_tests(jobs: Mapping[JobName, timedelta], stale_factor: float) -> Doc:
    rules = job_rule_groups(jobs, stale_factor)[0]["rules"]
    after = {job: job_stale_after(i, stale_factor) for job, i in jobs.items()}
    # Step between evaluations: the largest whole-minute step dividing every threshold,
    # so a daily job's 3-day threshold does not need 4,320 one-minute evaluations.
    whole = [int(a.total_seconds()) for a in after.values()]
    step_s = 60
    if whole and all(s % 60 == 0 for s in whole):
        step_s = 60 * math.gcd(*(s // 60 for s in whole))
    step = timedelta(seconds=step_s)

    def exp(alertname: str, names: Sequence[str]) -> list[Doc]:
        return [
            {"exp_labels": r["labels"], "exp_annotations": r["annotations"]}
            for r in rules
            if r["alert"] == alertname and r["labels"]["job"] in names
        ]

    def minutes(d: timedelta) -> str:
        return f"{int(d.total_seconds() // 60)}m"

    longest = max(after.values(), default=step)
    first = min(after.values(), default=step)
    samples = int((longest + 2 * step) / step)
    early = minutes(max(first - step, timedelta(0)))
    stale_checks: list[Doc] = [{"eval_time": early, "alertname": JOB_STALE_ALERT, "exp_alerts": []}]
    for job in sorted(after):
        at = after[job] + step
        due = sorted(j for j, a in after.items() if a < at)
        stale_checks.append(
            {
                "eval_time": minutes(at),
                "alertname": JOB_STALE_ALERT,
                "exp_alerts": exp(JOB_STALE_ALERT, due),
            }
        )
    never_checks: list[Doc] = [
        {"eval_time": early, "alertname": JOB_NEVER_ALERT, "exp_alerts": []},
        {
            "eval_time": minutes(longest + step),
            "alertname": JOB_NEVER_ALERT,
            "exp_alerts": exp(JOB_NEVER_ALERT, sorted(after)),
        },
    ]
    interval = format_duration(step)
    return {
        "rule_files": ["jobs.rules.yml"],
        "evaluation_interval": interval,
        "tests": [
            {
                "name": "every job goes stale after its threshold (last success at t=0)",
                "interval": interval,
                "input_series": [
                    _series(mc.JOB_LAST_SUCCESS, {"job": job}, _const(0, samples))
                    for job in sorted(after)
                ],
                "alert_rule_test": stale_checks,
            },
            {
                "name": "a job that never succeeded alerts after its threshold",
                "interval": interval,
                "input_series": [
                    _series(mc.JOB_RUNS, {"job": job, "status": "failure"}, f"0+1x{samples}")
                    for job in sorted(after)
                ],
                "alert_rule_test": never_checks,
            },
        ],
    }


def _with_tests(doc: Doc, tests: Sequence[Doc]) -> Doc:
    return {**doc, "tests": [*doc["tests"], *tests]}


def rule_tests(
    slos: Sequence[SLOSpec],
    jobs: Mapping[JobName, timedelta],
    policy: AlertPolicy,
    drift_for: timedelta,
    stale_factor: float,
) -> dict[str, Doc]:
    """Build the promtool test documents for the slo, drift and jobs rule files.

    Parameters
    ----------
    slos, jobs, policy, drift_for, stale_factor
        As given to :func:`monitor.prometheus.rulefiles.write_rules`.

    Returns
    -------
    dict
        ``{"slo": ..., "drift": ..., "jobs": ...}`` test documents (plain data).

    Examples
    --------
    >>> from datetime import timedelta
    >>> from monitor.slo.policy import DEFAULT_POLICY
    >>> from monitor.slo.spec import default_slos
    >>> docs = rule_tests(default_slos()[:1], {"slo": timedelta(minutes=5)}, DEFAULT_POLICY,
    ...                   timedelta(minutes=30), 3.0)
    >>> [t["name"] for t in docs["slo"]["tests"]][:3]
    ['mask-quality-holdout: page fires at 9.009x over 1h and 5m', \
'mask-quality-holdout: no page at exactly 9x over 1h and 5m', \
'mask-quality-holdout: no page at 8.991x over 1h and 5m']
    """
    cases: list[Doc] = []
    for slo in slos:
        if slo.computed_by_segmon:
            cases.extend(_segmon_cases(slo, policy))
        else:
            cases.extend(_service_cases(slo, policy))
    return {
        "slo": {"rule_files": ["slo.rules.yml"], "evaluation_interval": "1m", "tests": cases},
        "drift": _with_tests(_drift_tests(drift_for), _canary_tests()),
        "jobs": _job_tests(jobs, stale_factor),
    }
