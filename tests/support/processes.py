"""Real binaries on 127.0.0.1: free ports, HTTP reads, waiting, processes that always stop."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

StartProcess = Callable[[Sequence[str], Path], subprocess.Popen[bytes]]
"""``processes(args, log)``: start ``args`` with stdout and stderr into ``log``."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (at the time of asking)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(url: str, timeout: float = 5.0) -> bytes:
    """The body of a GET of ``url`` (an HTTP error status raises)."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return bytes(response.read())


def wait_until(check: Callable[[], bool], deadline_s: float, step_s: float = 0.25) -> bool:
    """Poll ``check`` until it is true (connection errors count as not yet); bounded."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            if check():
                return True
        except OSError:
            pass
        time.sleep(step_s)
    return False


@pytest.fixture
def processes() -> Iterator[StartProcess]:
    """Start processes that are killed when the test ends, whatever happens."""
    started: list[subprocess.Popen[bytes]] = []

    def start(args: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
        handle = log.open("wb")
        proc = subprocess.Popen(list(args), stdout=handle, stderr=subprocess.STDOUT)
        handle.close()
        started.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in started:
            proc.terminate()
        for proc in started:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def binary(name: str) -> str:
    """The path of an installed binary, or a skip naming how to install it."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (apt-get install prometheus / .ci/system-deps)")
    return path
