"""``segmon run`` replicas as subprocesses: start one, read its ``/healthz``, kill it.

Used by the failover and outage tests and by ``bench/bench_failover.py``. Each replica
serves on a free port of 127.0.0.1; its output goes to a log file whose tail is shown
when it does not come up.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import free_port

ADMIN_TOKEN = "replica-t0ken"
"""The admin token every replica started here accepts."""


def request(url: str, method: str = "GET", token: str | None = None) -> tuple[int, Any]:
    """Return the status and decoded JSON body of a request (HTTP errors included)."""
    req = urllib.request.Request(url, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


@dataclass
class Replica:
    """One ``segmon run`` process."""

    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    @property
    def identity(self) -> str:
        """Its name among the replicas (``host:pid``)."""
        return f"{socket.gethostname()}:{self.proc.pid}"

    def health(self) -> dict[str, Any]:
        """Its ``/healthz`` document (also when it answers 503)."""
        _status, body = request(f"{self.url}/healthz")
        assert isinstance(body, dict)
        return body

    def leads(self) -> bool:
        """Whether its ``/healthz`` says it leads (False when it does not answer)."""
        try:
            return bool(self.health().get("leader"))
        except OSError:
            return False

    def kill(self) -> None:
        """``kill -9`` it and reap it."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> int:
        """SIGTERM, then its exit status (killed after 30 s)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait(timeout=30)

    def log_tail(self, chars: int = 3000) -> str:
        """The end of its output."""
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def replica_env(database_url: str, workdir: Path, overrides: Mapping[str, str]) -> dict[str, str]:
    """The environment of a replica: the database, a data dir, the admin token, overrides."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workdir),
        "SEGMON_DATABASE_URL": database_url,
        "SEGMON_DATA_DIR": str(workdir / "var"),
        "SEGMON_ADMIN_TOKEN": ADMIN_TOKEN,
    }
    env.update(overrides)
    return env


def start_replica(
    database_url: str,
    workdir: Path,
    name: str,
    overrides: Mapping[str, str] | None = None,
    deadline_s: float = 90.0,
) -> Replica:
    """Start ``segmon run`` in ``workdir`` and wait (bounded) until ``/healthz`` answers.

    Raises
    ------
    RuntimeError
        If it exits or does not answer within ``deadline_s``; the message holds its log.
    """
    port = free_port()
    log = workdir / f"{name}.log"
    with log.open("wb") as handle:
        proc = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "--port", str(port)],
            cwd=workdir,
            env=replica_env(database_url, workdir, overrides or {}),
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    replica = Replica(proc, f"http://127.0.0.1:{port}", log)
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(
                f"replica {name} exited with {proc.returncode}:\n{replica.log_tail()}"
            )
        try:
            replica.health()
            return replica
        except OSError:
            time.sleep(0.1)
    replica.kill()
    raise RuntimeError(f"replica {name} did not answer in {deadline_s} s:\n{replica.log_tail()}")


def wait_for(check: Callable[[], bool], deadline_s: float, step_s: float = 0.1) -> float | None:
    """Poll ``check()`` until true; return the seconds it took, None if it never was."""
    start = time.monotonic()
    while time.monotonic() - start < deadline_s:
        try:
            if check():
                return time.monotonic() - start
        except OSError:
            pass
        time.sleep(step_s)
    return None


StartReplica = Callable[..., Replica]
"""``start(database_url, workdir, name, overrides)``: a started replica, killed at the end."""


@pytest.fixture
def replicas() -> Iterator[StartReplica]:
    """Start ``segmon run`` replicas that are killed when the test ends, whatever happens."""
    started: list[Replica] = []

    def start(
        database_url: str, workdir: Path, name: str, overrides: Mapping[str, str] | None = None
    ) -> Replica:
        replica = start_replica(database_url, workdir, name, overrides)
        started.append(replica)
        return replica

    try:
        yield start
    finally:
        for replica in started:
            if replica.proc.poll() is None:
                replica.kill()
