"""The bounded HTTP server: idle connections hold no thread, stalled ones are cut off."""

from __future__ import annotations

import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator

import pytest

from monitor.service.httpd import BoundedHTTPServer, BoundedRequestHandler, ServerLimits
from tests.support.processes import wait_until


class _Hello(BoundedRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        body = b"hello\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _HelloServer(BoundedHTTPServer):
    def __init__(self, limits: ServerLimits) -> None:
        super().__init__(("127.0.0.1", 0), _Hello, limits)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"


Serve = Callable[[ServerLimits], _HelloServer]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Start servers on 127.0.0.1 with these limits; stopped when the test ends."""
    started: list[_HelloServer] = []

    def start(limits: ServerLimits) -> _HelloServer:
        server = _HelloServer(limits)
        started.append(server)
        return server

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


def _get(url: str, timeout: float = 5.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return bytes(response.read())


def _connect(server: BoundedHTTPServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=10)
    return sock


def test_idle_connections_hold_no_thread_and_delay_no_request(
    serve: Serve,
) -> None:
    server = serve(ServerLimits(workers=2, max_connections=64, request_timeout_s=5.0))
    assert _get(server.url) == b"hello\n"  # workers are up
    before = set(threading.enumerate())
    idle = [_connect(server) for _ in range(20)]  # half-open: they never send a byte
    try:
        assert wait_until(lambda: server.open_connections == 20, deadline_s=5, step_s=0.02)
        assert set(threading.enumerate()) - before == set()  # no thread started for them
        assert _get(server.url, timeout=3.0) == b"hello\n"  # answered before they time out
        for sock in idle:  # each is cut off at its deadline
            assert sock.recv(1) == b""
        assert wait_until(lambda: server.open_connections == 0, deadline_s=5, step_s=0.02)
    finally:
        for sock in idle:
            sock.close()


def test_a_stalled_request_is_cut_off_so_the_only_worker_serves_the_next(
    serve: Serve,
) -> None:
    server = serve(ServerLimits(workers=1, max_connections=8, request_timeout_s=0.5))
    stalled = _connect(server)
    stalled.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # headers never end
    try:
        assert wait_until(lambda: server.open_connections == 1, deadline_s=5, step_s=0.02)
        assert _get(server.url, timeout=5.0) == b"hello\n"
        assert stalled.recv(1024) == b""  # closed, no answer
    finally:
        stalled.close()


def test_a_client_dripping_its_request_is_cut_off_at_the_deadline(
    serve: Serve,
) -> None:
    server = serve(ServerLimits(workers=1, max_connections=8, request_timeout_s=0.6))
    drip = _connect(server)
    sent = 0
    try:
        for byte in b"GET / HTTP/1.1\r\nHost: somewhere-far-away\r\n":  # bounded: 40 bytes
            try:
                drip.sendall(bytes([byte]))
            except OSError:  # the server closed it
                break
            sent += 1
            time.sleep(0.1)  # each read on its own would beat a per-read timeout
        assert sent < 30  # cut off before the request was sent: 0.6 s, not per read
        assert _get(server.url) == b"hello\n"
    finally:
        drip.close()


def test_connections_beyond_the_cap_are_answered_503(serve: Serve) -> None:
    server = serve(ServerLimits(workers=1, max_connections=2, request_timeout_s=5.0))
    held = [_connect(server) for _ in range(2)]
    try:
        assert wait_until(lambda: server.open_connections == 2, deadline_s=5, step_s=0.02)
        extra = _connect(server)
        answer = extra.recv(1024)
        extra.close()
        assert answer.startswith(b"HTTP/1.0 503 Service Unavailable\r\n")
        assert answer.endswith(b'{"error": "too many connections; retry later"}\n')
    finally:
        for sock in held:
            sock.close()
    assert wait_until(lambda: server.open_connections == 0, deadline_s=5, step_s=0.02)
    assert _get(server.url) == b"hello\n"
