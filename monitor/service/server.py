"""The HTTP side of ``segmon run``: ``/metrics``, ``/healthz`` and the admin API.

``/metrics`` is computed at scrape time from the database by the registry's collectors.
``/healthz`` says whether the database answers now and what this replica is (leader,
standby, or unknown while the database is unreachable), and who leads. The admin API
(``GET /admin/jobs``, ``POST /admin/jobs/NAME`` to run a job now) needs
``Authorization: Bearer TOKEN`` with the token from ``SEGMON_ADMIN_TOKEN``; without a
configured token it is disabled (403); a blank one is refused at start-up
(:func:`admin_token_from_env`). A job trigger on a replica that does not lead answers 409
naming the leader (503 while nobody can tell). Requests are answered by a bounded pool of
workers with per-connection deadlines (:mod:`monitor.service.httpd`).
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from monitor.errors import ConfigError, NotFoundError
from monitor.jobs.lease import LeaderInfo, NotLeaderError, Role
from monitor.jobs.scheduler import Service
from monitor.service.httpd import BoundedHTTPServer, BoundedRequestHandler, ServerLimits

log = logging.getLogger("segmon.server")

ADMIN_TOKEN_ENV = "SEGMON_ADMIN_TOKEN"


def admin_token_from_env(env: Mapping[str, str]) -> str | None:
    r"""Return the admin API token, None when unset (the API is then disabled).

    Raises
    ------
    ConfigError
        If the variable is set but blank or whitespace only: that is a mistake, not a
        way to disable the API (unset it for that).

    Examples
    --------
    >>> admin_token_from_env({"SEGMON_ADMIN_TOKEN": "s3cret"}), admin_token_from_env({})
    ('s3cret', None)
    >>> admin_token_from_env({"SEGMON_ADMIN_TOKEN": " \t"})
    Traceback (most recent call last):
    ...
    monitor.errors.ConfigError: SEGMON_ADMIN_TOKEN is blank (' \t'): set a token, or unset it
    """
    token = env.get(ADMIN_TOKEN_ENV)
    if token is None:
        return None
    if not token.strip():
        raise ConfigError(f"{ADMIN_TOKEN_ENV} is blank ({token!r}): set a token, or unset it")
    return token


def _leader_json(leader: LeaderInfo | None) -> dict[str, Any] | None:
    if leader is None:
        return None
    return {
        "holder": leader.holder,
        "url": leader.url,
        "acquired_at": leader.acquired_at.isoformat(),
        "renewed_at": leader.renewed_at.isoformat(),
    }


class MonitorServer(BoundedHTTPServer):
    """The HTTP server of ``segmon run``: knows the registry, the database and the service."""

    def __init__(
        self,
        address: tuple[str, int],
        registry: CollectorRegistry,
        sessions: sessionmaker[Session],
        service: Service | None,
        admin_token: str | None,
        limits: ServerLimits | None = None,
    ) -> None:
        super().__init__(address, _Handler, limits)
        self.registry = registry
        self.sessions = sessions
        self.service = service
        self.admin_token = admin_token
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL the server listens on."""
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self.serve_forever, name="segmon-http", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)


class _Handler(BoundedRequestHandler):
    server: MonitorServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        log.debug("%s " + format, self.address_string(), *args)

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, payload: Any) -> None:
        self._send(status, (json.dumps(payload) + "\n").encode())

    def _authorised(self) -> bool:
        token = self.server.admin_token
        if not token:
            self._json(403, {"error": "admin API disabled: set SEGMON_ADMIN_TOKEN"})
            return False
        given = self.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            self._json(401, {"error": "missing or wrong bearer token"})
            return False
        return True

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        if self.path == "/metrics":
            try:
                body = generate_latest(self.server.registry)
            except Exception as exc:
                log.exception("metrics collection failed")
                self._json(500, {"error": f"metrics collection failed: {exc}"})
                return
            self._send(200, body, CONTENT_TYPE_LATEST)
        elif self.path == "/healthz":
            self._health()
        elif self.path == "/admin/jobs":
            if self._authorised():
                service = self.server.service
                self._json(200, [asdict(s) for s in service.states()] if service else [])
        else:
            self._json(404, {"error": f"no route {self.path!r}"})

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        prefix = "/admin/jobs/"
        if not self.path.startswith(prefix):
            self._json(404, {"error": f"no route {self.path!r}"})
            return
        if not self._authorised():
            return
        service = self.server.service
        if service is None:
            self._json(409, {"error": "this process runs no scheduler"})
            return
        name = self.path[len(prefix) :]
        try:
            service.trigger(name)
        except NotFoundError as exc:
            self._json(404, {"error": str(exc)})
            return
        except NotLeaderError as exc:
            status = 503 if exc.state.role is Role.UNKNOWN else 409
            self._json(
                status,
                {
                    "error": str(exc),
                    "role": exc.state.role.value,
                    "leader": _leader_json(exc.state.leader),
                },
            )
            return
        self._json(202, {"job": name, "status": "scheduled"})

    def _health(self) -> None:
        service = self.server.service
        payload: dict[str, Any] = {"scheduler": bool(service and service.scheduler.running)}
        try:
            with self.server.sessions() as session:
                session.execute(text("SELECT 1"))
            payload["database"] = "ok"
            healthy = True
        except Exception as exc:
            payload["database"] = f"error: {exc.__class__.__name__}"
            healthy = False
        if service is not None:
            state = service.lease_state()
            payload.update(
                {
                    "leader": state.role is Role.LEADER,
                    "role": state.role.value,
                    "identity": state.identity,
                    "lease_checked_at": state.checked_at.isoformat() if state.checked_at else None,
                    "current_leader": _leader_json(state.leader),
                    "lease_error": state.error,
                    "unrecorded_runs": service.unrecorded,
                }
            )
            healthy = healthy and state.role is not Role.UNKNOWN
        else:
            payload["leader"] = False
        payload["status"] = "ok" if healthy else "unhealthy"
        self._json(200 if healthy else 503, payload)
