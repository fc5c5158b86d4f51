"""``segmon demo --live``: a real Prometheus and Alertmanager page on the demo's data.

Where Debian's ``prometheus`` and ``prometheus-alertmanager`` are installed, this starts
on 127.0.0.1, each on a free port and in a temporary folder:

* segmon's ``/metrics`` (:class:`~monitor.service.server.MonitorServer` with the
  database collectors) over the demo's database, its clock held at the demo's last
  instant, so the SLO gauges are those of the end of the drifted day;
* a webhook receiver (a small HTTP server in this process) that records every
  notification Alertmanager posts;
* Alertmanager with segmon's example routing (:mod:`monitor.prometheus.alertmanager`:
  pages and tickets to their own receivers, a page inhibiting its SLO's ticket) pointed
  at that receiver, its waits shortened to one second;
* Prometheus scraping segmon every second and evaluating the rules ``segmon rules``
  generates (the SLO and drift files; the job-freshness rules are left out, because the
  demo's jobs ran in simulated time, days ago by the wall clock). Rules are evaluated
  every second instead of Prometheus's default minute. The burn-rate alerts have no
  ``for:``, so a page fires at the first evaluation that sees its burn rates; the
  drift alert's ``for: 30m`` keeps it pending for the length of the demo.

It then waits, at most ``timeout_s``, for the webhook to receive a ``severity=page``
notification, and returns it with its labels and annotations. Every process and server
it started is stopped before it returns, whatever happens (terminate, then kill).
"""

from __future__ import annotations

import json
import queue
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from monitor.clock import ManualClock
from monitor.config import Settings
from monitor.prometheus.alertmanager import alertmanager_config
from monitor.prometheus.examples import prometheus_config
from monitor.prometheus.rulefiles import write_rules
from monitor.prometheus.yamlio import dump_yaml
from monitor.service.serve import default_registry
from monitor.service.server import MonitorServer
from monitor.storage.engine import make_engine, session_factory

__all__ = ["BINARIES", "LiveResult", "missing_binaries", "run_live"]

BINARIES: tuple[str, str] = ("prometheus", "prometheus-alertmanager")
_STOP_S = 10.0


@dataclass(frozen=True)
class LiveResult:
    """What the live demo did.

    Attributes
    ----------
    skipped
        Why nothing was started (binaries missing), else ``None``.
    page
        The first ``severity=page`` alert the webhook received: its receiver, status,
        labels, annotations and start time; ``None`` if none came in time.
    received
        Every alert the webhook received, in order.
    waited_s
        Seconds from starting the processes to the page (or the timeout).
    timeout_s
        The bound on that wait.
    firing_in_prometheus
        On a timeout, the alerts Prometheus itself reported (name, SLO, severity, state).
    logs
        On a timeout, the tail of each process's log.
    """

    skipped: str | None
    page: dict[str, Any] | None = None
    received: tuple[dict[str, Any], ...] = ()
    waited_s: float = 0.0
    timeout_s: float = 0.0
    firing_in_prometheus: tuple[dict[str, str], ...] = ()
    logs: dict[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return {
            "skipped": self.skipped,
            "paged": self.page is not None,
            "page": self.page,
            "received": list(self.received),
            "waited_s": self.waited_s,
            "timeout_s": self.timeout_s,
            "firing_in_prometheus": list(self.firing_in_prometheus),
            "logs": self.logs,
        }


def missing_binaries(which: Callable[[str], str | None] = shutil.which) -> list[str]:
    """Return the live demo's binaries that are not on ``PATH``.

    Examples
    --------
    >>> missing_binaries(lambda name: None)
    ['prometheus', 'prometheus-alertmanager']
    """
    return [name for name in BINARIES if which(name) is None]


class _Webhook(ThreadingHTTPServer):
    """Alertmanager's webhook receiver: records each alert of every notification."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _WebhookHandler)
        self.alerts: queue.Queue[dict[str, Any]] = queue.Queue()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class _WebhookHandler(BaseHTTPRequestHandler):
    server: _Webhook

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        """Stay quiet: the demo prints what matters."""

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        length = int(self.headers.get("Content-Length") or 0)
        try:
            doc = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            doc = {}
        receiver = self.path.rstrip("/").rsplit("/", 1)[-1]
        for alert in doc.get("alerts", []) if isinstance(doc, dict) else []:
            self.server.alerts.put(
                {
                    "receiver": receiver,
                    "status": alert.get("status"),
                    "labels": alert.get("labels", {}),
                    "annotations": alert.get("annotations", {}),
                    "starts_at": alert.get("startsAt"),
                }
            )
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(processes: Sequence[subprocess.Popen[bytes]]) -> None:
    for proc in processes:
        if proc.poll() is None:
            proc.terminate()
    for proc in processes:
        try:
            proc.wait(timeout=_STOP_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=_STOP_S)


def _prometheus_alerts(base: str) -> tuple[dict[str, str], ...]:
    try:
        with urllib.request.urlopen(f"{base}/api/v1/alerts", timeout=5) as response:
            doc = json.loads(response.read())
    except (OSError, ValueError):
        return ()
    return tuple(
        {
            "alertname": a["labels"].get("alertname", ""),
            "slo": a["labels"].get("sloth_slo", ""),
            "severity": a["labels"].get("severity", ""),
            "state": a.get("state", ""),
        }
        for a in doc.get("data", {}).get("alerts", [])
    )


def _tail(path: Path, chars: int = 1500) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def run_live(
    database_url: str,
    settings: Settings,
    at: datetime,
    *,
    timeout_s: float = 90.0,
    say: Callable[[str], None] = lambda _: None,
    which: Callable[[str], str | None] = shutil.which,
) -> LiveResult:
    """Page through a real Prometheus and Alertmanager over the demo's database.

    Parameters
    ----------
    database_url
        The demo's database.
    settings
        Its settings (the SLOs the rules are generated for).
    at
        The demo's last instant: the clock of the ``/metrics`` collectors.
    timeout_s
        How long to wait for the page once the processes are started.
    say
        Progress messages.
    which
        Finds the binaries (``shutil.which``).

    Returns
    -------
    LiveResult
        The page and every alert received, or why it was skipped or timed out.
    """
    missing = missing_binaries(which)
    if missing:
        return LiveResult(
            skipped=f"{' and '.join(missing)} not installed (apt-get install prometheus "
            "prometheus-alertmanager, as `make demo` does): no live Prometheus, Alertmanager "
            "or webhook was started"
        )
    prometheus, alertmanager = (str(which(name)) for name in BINARIES)
    engine = make_engine(database_url)
    sessions = session_factory(engine)
    started: list[subprocess.Popen[bytes]] = []
    logs: dict[str, Path] = {}
    webhook = _Webhook()
    metrics = MonitorServer(
        ("127.0.0.1", 0),
        default_registry(sessions, settings, ManualClock(at)),
        sessions,
        None,
        None,
    )
    threading.Thread(target=webhook.serve_forever, name="segmon-webhook", daemon=True).start()
    metrics.start()
    try:
        with tempfile.TemporaryDirectory(prefix="segmon-live-", ignore_cleanup_errors=True) as tmp:
            try:
                root = Path(tmp)

                def start(name: str, args: list[str]) -> None:
                    logs[name] = root / f"{name}.log"
                    with logs[name].open("wb") as handle:
                        started.append(
                            subprocess.Popen(args, stdout=handle, stderr=subprocess.STDOUT)
                        )

                rules = write_rules(settings.slos, {}, root / "rules", with_tests=False)
                am_port, prom_port = _free_port(), _free_port()
                am_cfg = alertmanager_config(f"{webhook.url}/alerts")
                route = am_cfg["route"]
                route.update(group_wait="1s", group_interval="1s")
                for sub in route["routes"]:
                    sub["group_wait"] = "1s"
                (root / "alertmanager.yml").write_text(dump_yaml(am_cfg))
                prom_cfg = prometheus_config(
                    metrics.url.removeprefix("http://"), f"127.0.0.1:{am_port}"
                )
                prom_cfg["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
                prom_cfg["rule_files"] = [str(rules.slo), str(rules.drift)]
                (root / "prometheus.yml").write_text(dump_yaml(prom_cfg))
                say(
                    f"live: segmon /metrics at {metrics.url}, webhook at {webhook.url}; starting "
                    f"Alertmanager on 127.0.0.1:{am_port} and Prometheus on 127.0.0.1:{prom_port}"
                )
                t0 = time.monotonic()
                start(
                    "alertmanager",
                    [
                        alertmanager,
                        f"--config.file={root / 'alertmanager.yml'}",
                        f"--storage.path={root / 'alertmanager-data'}",
                        f"--web.listen-address=127.0.0.1:{am_port}",
                        "--cluster.listen-address=",
                    ],
                )
                start(
                    "prometheus",
                    [
                        prometheus,
                        f"--config.file={root / 'prometheus.yml'}",
                        f"--storage.tsdb.path={root / 'tsdb'}",
                        f"--web.listen-address=127.0.0.1:{prom_port}",
                    ],
                )
                received: list[dict[str, Any]] = []
                page: dict[str, Any] | None = None
                deadline = t0 + timeout_s
                while page is None and time.monotonic() < deadline:
                    try:
                        alert = webhook.alerts.get(timeout=0.5)
                    except queue.Empty:
                        if any(p.poll() is not None for p in started):
                            break  # a process died: no page will come
                        continue
                    received.append(alert)
                    if alert["labels"].get("severity") == "page" and alert["status"] == "firing":
                        page = alert
                waited = time.monotonic() - t0
                while not webhook.alerts.empty():
                    received.append(webhook.alerts.get_nowait())
                if page is not None:
                    return LiveResult(None, page, tuple(received), waited, timeout_s)
                return LiveResult(
                    None,
                    None,
                    tuple(received),
                    waited,
                    timeout_s,
                    _prometheus_alerts(f"http://127.0.0.1:{prom_port}"),
                    {name: _tail(path) for name, path in logs.items()},
                )
            finally:
                _stop(started)  # before the folder they write into goes
    finally:
        _stop(started)
        metrics.stop()
        webhook.shutdown()
        webhook.server_close()
        engine.dispose()
