"""`segmon run`: the service's metrics registry, its HTTP endpoints, stopping on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import ManualClock
from monitor.config import Settings
from monitor.service.schedule import build_jobs
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
