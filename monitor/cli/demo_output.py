"""The human output of ``segmon demo``'s alert and canary sections and of ``--live``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.table import Table

from monitor.cli.app import out
from monitor.cli.numbers import num

__all__ = ["print_alerts", "print_canary", "print_live"]


def print_alerts(alerts: Mapping[str, Any]) -> None:
    """Print, per simulated day, the burn-rate alerts that fire and the tiers that fire them."""
    for day in alerts["days"]:
        firing = day["firing"]
        head = ", ".join(f"{f['severity']} {f['slo']}" for f in firing) or "nothing fires"
        out.print(f"alerts at the end of {day['day']} ({day['at']}): {head}", highlight=False)
        quiet = 0
        for slo in day["slos"]:
            for tier in slo["tiers"]:
                if not tier["fires"]:
                    quiet += 1
                    continue
                out.print(
                    f"  {tier['severity'].upper()} {slo['slo']}: {tier['why']}", highlight=False
                )
            for note in slo["adjusted_tiers"] if slo["firing"] else ():
                out.print(f"    ({note})", highlight=False)
        out.print(f"  ({quiet} other tiers quiet; --json lists every tier)", highlight=False)
    for alert in alerts.get("canary", ()):
        out.print(
            f"  {alert['severity'].upper()} {alert['alert']} (pending, fires after "
            f"{alert['for']} if the next canary run agrees): {alert['candidate']} is worse "
            f"than {alert['baseline']} on {alert['signal']}",
            highlight=False,
        )
    for skipped in alerts["skipped"]:
        out.print(f"not evaluated: {skipped['slo']} ({skipped['reason']})", highlight=False)


def print_live(live: Mapping[str, Any]) -> None:
    """Print the page the live Alertmanager's webhook received, or why there is none."""
    if live["skipped"]:
        out.print(f"live: skipped: {live['skipped']}", highlight=False)
        return
    page = live["page"]
    if page is None:
        out.print(
            f"live: no page reached the webhook within {num(live['timeout_s'])} s; "
            f"Prometheus reported: {live['firing_in_prometheus'] or 'no alerts'}",
            highlight=False,
        )
        for name, text in (live["logs"] or {}).items():
            out.print(f"--- {name} log (tail) ---\n{text}", highlight=False, markup=False)
        return
    out.print(
        f"live: Alertmanager paged after {num(live['waited_s'], 2)} s; the webhook receiver "
        f"'{page['receiver']}' got ({len(live['received'])} alert(s) in all):",
        highlight=False,
    )
    out.print(f"  status: {page['status']}, since {page['starts_at']}", highlight=False)
    out.print("  labels:", highlight=False)
    for key, value in sorted(page["labels"].items()):
        out.print(f"    {key}={value}", highlight=False, markup=False)
    out.print("  annotations:", highlight=False)
    for key, value in sorted(page["annotations"].items()):
        out.print(f"    {key}: {value}", highlight=False, markup=False)


def print_canary(canary: Mapping[str, Any]) -> None:
    """Print the drifted day's canary side by side: per signal, both means and the verdict.

    The drift families have no mean (``-``); their verdict says how many of their checks
    found a difference (after the Bonferroni correction).
    """
    out.print(
        f"canary on day2: {canary['candidate']} served {canary['requests']} of "
        f"{canary['total_requests']} requests ({num(canary['share'] * 100)} %), "
        f"{canary['baseline']} the rest",
        highlight=False,
    )
    out.print(f"  the candidate: {canary['perturbation']}", highlight=False)
    table = Table("signal", "baseline", "candidate", "verdict", box=None, pad_edge=False)
    for s in canary["signals"]:
        verdict = s["verdict"]
        if s["signal"].startswith("drift:") and s["checks"]:
            verdict += f" ({s['significant']} of {s['checks']} checks differ)"
        table.add_row(s["signal"], num(s["baseline_mean"]), num(s["candidate_mean"]), verdict)
    out.print(table, highlight=False)
    worse = ", ".join(canary["worse"]) or "nothing"
    out.print(f"  the candidate is worse on: {worse}", highlight=False)
