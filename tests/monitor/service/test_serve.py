"""`segmon run`: metrics, HTTP endpoints, SIGTERM, blank tokens, failover, a database outage."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import ManualClock
from monitor.config import DEFAULT_CATEGORIES, Settings
from monitor.service.schedule import build_jobs
from monitor.storage.bootstrap import init_database
from monitor.storage.engine import make_engine, session_factory
from monitor.storage.schema import JobRun, RunStatus
from tests.support.postgres_server import PostgresServer
from tests.support.replicas import ADMIN_TOKEN, StartReplica, request, wait_for
from tests.support.samplelog import LogBuilder


def test_service_registry_exports_every_scheduled_job(sessions: sessionmaker[Session]) -> None:
    from monitor.service.serve import default_registry

    clock = ManualClock(datetime(2026, 11, 24, tzinfo=UTC))
    settings = Settings()
    registry = default_registry(sessions, settings, clock)
    for job in build_jobs(sessions, settings, clock):
        labels = {"job": job.name, "status": "success"}
        assert registry.get_sample_value("segmon_job_runs_total", labels) == 0


def _get(url: str, token: str | None = None, method: str = "GET") -> tuple[int, bytes]:
    request = urllib.request.Request(url, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_segmon_run_serves_and_stops_on_sigterm(tmp_path: Path, log_builder: LogBuilder) -> None:
    log_builder.write([log_builder.line() for _ in range(3)])
    db = f"sqlite:///{tmp_path / 's.db'}"
    env = {
        "SEGMON_DATABASE_URL": db,
        "SEGMON_ADMIN_TOKEN": "t0ken",
        "PATH": "/usr/bin:/bin",
        "SEGMON_DATA_DIR": str(tmp_path / "var"),
        "SEGMON_SCHEDULE__INGEST_S": "3600",
    }
    (tmp_path / "segmon.yaml").write_text(f"sources: ['{log_builder.root}']\n")
    subprocess.run(
        [sys.executable, "-m", "monitor", "init"],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "--port", "0"],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = None
        deadline = time.monotonic() + 60
        assert proc.stderr is not None
        while url is None and time.monotonic() < deadline:  # bounded
            line = proc.stderr.readline()
            if "listening on" in line:
                url = line.split("listening on ")[1].split()[0]
        assert url and url.startswith("http://127.0.0.1:")
        threading.Thread(target=proc.stderr.read, daemon=True).start()  # keep the pipe drained
        status, body = _get(f"{url}/healthz")
        assert status == 200 and json.loads(body)["database"] == "ok"
        assert _get(f"{url}/admin/jobs")[0] == 401
        assert _get(f"{url}/admin/jobs/ingest", "wrong", "POST")[0] == 401
        assert _get(f"{url}/admin/jobs/nope", "t0ken", "POST")[0] == 404
        assert _get(f"{url}/admin/jobs/ingest", "t0ken", "POST")[0] == 202
        ingested = None
        for _ in range(100):  # bounded: 100 scrapes at most
            status, body = _get(f"{url}/metrics")
            assert status == 200
            for line in body.decode().splitlines():
                if line.startswith("segmon_samples_ingested_total{"):
                    ingested = float(line.rsplit(" ", 1)[1])
            if ingested == 3:
                break
            time.sleep(0.1)
        assert ingested == 3
        assert _get(f"{url}/nothing")[0] == 404
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("token", ["", "   ", "\t\n"])
def test_a_blank_admin_token_is_refused_at_start_up(tmp_path: Path, token: str) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "SEGMON_DATABASE_URL": f"sqlite:///{tmp_path / 's.db'}",
        "SEGMON_ADMIN_TOKEN": token,
    }
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "run", "--port", "0"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: SEGMON_ADMIN_TOKEN is blank ({token!r}): set a token, or unset it"
    )
    assert not (tmp_path / "s.db").exists()  # refused before anything started


def _runs(sessions: sessionmaker[Session], **where: Any) -> list[JobRun]:
    with sessions() as s:
        return list(s.scalars(select(JobRun).filter_by(**where).order_by(JobRun.id)))


@pytest.mark.postgres
def test_replicas_elect_at_start_and_a_standby_takes_over_within_15_s_of_a_kill_9(
    postgres_url: str, tmp_path: Path, replicas: StartReplica, log_builder: LogBuilder
) -> None:
    engine = make_engine(postgres_url)
    init_database(engine, DEFAULT_CATEGORIES)
    sessions = session_factory(engine)
    log_builder.write([log_builder.line() for _ in range(2000)])
    (tmp_path / "segmon.yaml").write_text(f"sources: ['{log_builder.root}']\n")
    # default heartbeat (5 s); one line per transaction keeps an ingest run going for long
    overrides = {"SEGMON_INGEST__BATCH_SIZE": "1", "SEGMON_LEADER__ABANDON_AFTER_S": "15"}
    try:
        a = replicas(postgres_url, tmp_path, "a", overrides)
        b = replicas(postgres_url, tmp_path, "b", overrides)

        # a fresh pair: the first to start has elected itself before it answers
        assert a.health()["role"] == "leader"
        standby = b.health()
        assert standby["role"] == "standby" and standby["current_leader"]["holder"] == a.identity
        status, body = request(f"{b.url}/admin/jobs/ingest", "POST", ADMIN_TOKEN)
        assert status == 409 and f"the leader is {a.identity} at {a.url}" in body["error"]

        assert request(f"{a.url}/admin/jobs/ingest", "POST", ADMIN_TOKEN)[0] == 202
        assert wait_for(lambda: bool(_runs(sessions, status=RunStatus.RUNNING)), 60, 0.02)
        a.kill()
        took = wait_for(b.leads, deadline_s=30, step_s=0.05)
        assert took is not None and took < 15, (took, b.log_tail())

        # the run the killed leader left `running` is marked abandoned by the new leader
        assert wait_for(lambda: bool(_runs(sessions, status=RunStatus.ABANDONED)), 60)
        (run,) = _runs(sessions, job="ingest")
        assert (run.status, run.owner, run.abandoned_by) == (
            RunStatus.ABANDONED,
            a.identity,
            b.identity,
        )
        assert run.finished_at is not None and run.heartbeat_at is not None
        assert run.finished_at - run.heartbeat_at >= timedelta(seconds=15)
        assert b.stop() == 0
    finally:
        engine.dispose()


def test_a_database_outage_is_reported_recorded_and_recovered_from(
    own_postgres: PostgresServer, tmp_path: Path, replicas: StartReplica
) -> None:
    engine = make_engine(own_postgres.url)
    init_database(engine, DEFAULT_CATEGORIES)
    engine.dispose()
    overrides = {
        "SEGMON_SCHEDULE__INGEST_S": "1",  # an attempt every second
        "SEGMON_LEADER__HEARTBEAT_S": "1",
        "SEGMON_LEADER__ABANDON_AFTER_S": "3",
    }
    a = replicas(own_postgres.url, tmp_path, "a", overrides)
    assert a.health()["leader"] is True

    own_postgres.stop()  # the database goes away under the running service
    stopped = datetime.now(UTC)
    assert wait_for(lambda: a.health()["role"] == "unknown", 15), a.log_tail()
    status, health = request(f"{a.url}/healthz")
    assert status == 503 and health["status"] == "unhealthy" and health["leader"] is False
    assert health["database"].startswith("error: ")
    assert health["lease_error"].startswith("database unreachable: OperationalError")
    assert wait_for(lambda: a.health()["unrecorded_runs"] >= 3, 20), a.log_tail()

    own_postgres.start()
    restarted = datetime.now(UTC)

    def recovered() -> bool:
        h = a.health()
        return bool(h["status"] == "ok" and h["leader"] and h["unrecorded_runs"] == 0)

    assert wait_for(recovered, 30), a.log_tail()
    engine = make_engine(own_postgres.url)
    sessions = session_factory(engine)
    try:
        failed = [r for r in _runs(sessions, status=RunStatus.FAILED) if r.started_at >= stopped]
        assert len(failed) >= 3
        for run in failed:
            assert run.owner == a.identity and run.finished_at is not None
            assert "OperationalError" in (run.error or ""), run.error
        outage = [r for r in failed if r.started_at < restarted]
        assert len(outage) >= 3  # attempts made while it was down, written after
        assert wait_for(
            lambda: any(
                r.started_at > restarted for r in _runs(sessions, status=RunStatus.SUCCESS)
            ),
            30,
        )  # and the jobs run again
        assert a.stop() == 0
    finally:
        engine.dispose()
