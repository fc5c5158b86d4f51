"""An example Alertmanager configuration routing segmon's pages and tickets apart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from monitor.prometheus.rules import BURN_ALERT, GENERATED_HEADER
from monitor.prometheus.yamlio import dump_yaml

__all__ = ["alertmanager_config", "write_alertmanager_config"]


def alertmanager_config(webhook_base: str = "http://127.0.0.1:9095/alerts") -> dict[str, Any]:
    """Return an Alertmanager config: ``severity=page`` and ``severity=ticket`` to two receivers.

    Pages repeat hourly, tickets twice a day; a firing page of an SLO silences the
    ticket of the same SLO (``sloth_id``). Every receiver is a webhook under
    ``webhook_base`` (replace with PagerDuty, Opsgenie, a ticket system…).

    Parameters
    ----------
    webhook_base
        URL prefix of the example webhook receivers.

    Returns
    -------
    dict
        The configuration as plain data.

    Examples
    --------
    >>> cfg = alertmanager_config()
    >>> [(r["matchers"], r["receiver"]) for r in cfg["route"]["routes"]]
    [(['severity="page"'], 'segmon-page'), (['severity="ticket"'], 'segmon-ticket')]
    """
    receivers = ("segmon-default", "segmon-page", "segmon-ticket")
    return {
        "global": {"resolve_timeout": "5m"},
        "route": {
            "receiver": "segmon-default",
            "group_by": ["alertname", "sloth_service", "sloth_slo", "job"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "12h",
            "routes": [
                {
                    "matchers": ['severity="page"'],
                    "receiver": "segmon-page",
                    "group_wait": "10s",
                    "repeat_interval": "1h",
                },
                {
                    "matchers": ['severity="ticket"'],
                    "receiver": "segmon-ticket",
                    "repeat_interval": "12h",
                },
            ],
        },
        "inhibit_rules": [
            {
                "source_matchers": ['severity="page"', f'alertname="{BURN_ALERT}"'],
                "target_matchers": ['severity="ticket"', f'alertname="{BURN_ALERT}"'],
                "equal": ["sloth_id"],
            }
        ],
        "receivers": [
            {
                "name": name,
                "webhook_configs": [
                    {
                        "url": f"{webhook_base}/{name.removeprefix('segmon-')}",
                        "send_resolved": True,
                    }
                ],
            }
            for name in receivers
        ],
    }


def write_alertmanager_config(
    path: Path, webhook_base: str = "http://127.0.0.1:9095/alerts"
) -> Path:
    """Write :func:`alertmanager_config` as YAML to ``path`` and return ``path``.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = write_alertmanager_config(Path(d) / "alertmanager.yml")
    ...     "segmon-ticket" in p.read_text()
    True
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        dump_yaml(alertmanager_config(webhook_base), header=GENERATED_HEADER), encoding="utf-8"
    )
    return path
