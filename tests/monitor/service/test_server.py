"""The HTTP server of ``segmon run``: /healthz tells the truth, triggers only on the leader."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import SystemClock
from monitor.config import Settings
from monitor.jobs.leader import LeaderLock, leader_lock
from monitor.jobs.scheduler import Service
from monitor.service.httpd import ServerLimits
from monitor.service.schedule import build_jobs
from monitor.service.server import MonitorServer
from tests.support.outage import OutageSessions, SwitchableLock
from tests.support.processes import wait_until
from tests.support.replicas import request

TOKEN = "t0ken"


class _Replica:
    """A Service and its MonitorServer in this process."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        lock: LeaderLock,
        name: str,
        limits: ServerLimits | None = None,
    ) -> None:
        settings = Settings()  # hourly and slower jobs: none fires during a test
        self.service = Service(
            sessions,
            build_jobs(sessions, settings, SystemClock()),
            lock,
            SystemClock(),
            heartbeat=timedelta(seconds=0.2),
            identity=name,
        )
        self.server = MonitorServer(
            ("127.0.0.1", 0), CollectorRegistry(), sessions, self.service, TOKEN, limits
        )
        self.url = self.server.url

    def start(self) -> None:
        self.service.start(self.url)
        self.server.start()

    def stop(self) -> None:
        self.server.stop()
        self.service.shutdown()


@pytest.fixture
def replicas_here() -> Iterator[list[_Replica]]:
    """In-process replicas, stopped when the test ends."""
    started: list[_Replica] = []
    yield started
    for replica in started:
        replica.stop()


def test_a_standby_names_the_leader_in_healthz_and_answers_409_to_a_trigger(
    engine: Engine, sessions: sessionmaker[Session], tmp_path: Path, replicas_here: list[_Replica]
) -> None:
    a = _Replica(sessions, leader_lock(engine, tmp_path), "a:1")
    b = _Replica(sessions, leader_lock(engine, tmp_path), "b:2")
    replicas_here.extend([a, b])
    a.start()
    b.start()

    status, health = request(f"{b.url}/healthz")
    assert status == 200
    assert (health["status"], health["database"], health["role"], health["leader"]) == (
        "ok",
        "ok",
        "standby",
        False,
    )
    assert health["current_leader"]["holder"] == "a:1"
    assert health["current_leader"]["url"] == a.url
    status, leader_health = request(f"{a.url}/healthz")
    assert (status, leader_health["role"], leader_health["leader"]) == (200, "leader", True)

    status, body = request(f"{b.url}/admin/jobs/ingest", "POST", TOKEN)
    assert status == 409
    assert body["error"].startswith(f"b:2 is not the leader; the leader is a:1 at {a.url}")
    assert body["leader"]["holder"] == "a:1" and body["role"] == "standby"
    assert request(f"{a.url}/admin/jobs/ingest", "POST", TOKEN)[0] == 202
    assert request(f"{b.url}/admin/jobs/ingest", "POST", "wrong")[0] == 401  # auth first


def test_healthz_is_503_and_says_why_while_the_database_is_unreachable(
    engine: Engine, replicas_here: list[_Replica]
) -> None:
    sessions = OutageSessions(engine, expire_on_commit=False)
    lock = SwitchableLock()
    a = _Replica(sessions, lock, "a:1")
    replicas_here.append(a)
    a.start()
    assert request(f"{a.url}/healthz")[1]["leader"] is True

    sessions.down = lock.down = True
    a.service.tick()
    status, health = request(f"{a.url}/healthz")
    assert status == 503
    assert (health["status"], health["database"], health["role"], health["leader"]) == (
        "unhealthy",
        "error: OperationalError",
        "unknown",
        False,
    )
    assert health["lease_error"].startswith("database unreachable: OperationalError")
    status, body = request(f"{a.url}/admin/jobs/ingest", "POST", TOKEN)
    assert status == 503 and body["error"].startswith("a:1 cannot tell who leads")

    sessions.down = lock.down = False
    a.service.tick()
    status, health = request(f"{a.url}/healthz")
    assert (status, health["role"], health["database"]) == (200, "leader", "ok")


def test_a_half_open_connection_does_not_block_other_requests(
    sessions: sessionmaker[Session], replicas_here: list[_Replica]
) -> None:
    limits = ServerLimits(workers=1, max_connections=16, request_timeout_s=30.0)
    a = _Replica(sessions, SwitchableLock(), "a:1", limits)
    replicas_here.append(a)
    a.start()
    port = a.server.server_address[1]
    before = set(threading.enumerate())
    half_open = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(8)]
    try:  # one worker, eight silent connections, each allowed 30 s: none of them pins it
        assert wait_until(lambda: a.server.open_connections == 8, deadline_s=5, step_s=0.02)
        for _ in range(3):
            status, health = request(f"{a.url}/healthz")
            assert status == 200 and health["leader"] is True
        assert set(threading.enumerate()) - before == set()  # no thread per connection
    finally:
        for sock in half_open:
            sock.close()
