"""An HTTP server with a fixed pool of workers, where idle connections hold no thread.

The standard library's ``ThreadingHTTPServer`` starts a thread per connection and never
times one out, so idle or half-open connections pin a thread each, indefinitely.
:class:`BoundedHTTPServer` instead:

- accepts connections on one I/O thread and keeps them in a selector until the client
  has sent something (an idle connection costs a file descriptor, no thread);
- hands readable connections to ``workers`` threads;
- gives each connection ``request_timeout_s`` to start sending, and again from when a
  worker takes it up to finish its request line and headers, and cuts it off then
  (silent in the selector, or stalling a worker byte by byte); time spent queued for a
  busy worker does not count; every socket operation has the same timeout;
- answers ``503`` and closes connections beyond ``max_connections``.

One request per connection (HTTP/1.0, no keep-alive).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import selectors
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

__all__ = ["BoundedHTTPServer", "BoundedRequestHandler", "ServerLimits"]

log = logging.getLogger("segmon.httpd")

_BUSY_BODY = b'{"error": "too many connections; retry later"}\n'
_BUSY = (
    b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    b"Connection: close\r\nRetry-After: 1\r\n"
    + f"Content-Length: {len(_BUSY_BODY)}\r\n\r\n".encode()
    + _BUSY_BODY
)


@dataclass(frozen=True)
class ServerLimits:
    """How much the server takes on at once, and how long a client may take.

    Examples
    --------
    >>> ServerLimits(workers=2, max_connections=8, request_timeout_s=1.5)
    ServerLimits(workers=2, max_connections=8, request_timeout_s=1.5)
    >>> ServerLimits(workers=4, max_connections=2)
    Traceback (most recent call last):
    ...
    ValueError: max_connections 2 is below workers 4
    """

    workers: int = 8
    max_connections: int = 64
    request_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")
        if self.max_connections < self.workers:
            raise ValueError(
                f"max_connections {self.max_connections} is below workers {self.workers}"
            )
        if not self.request_timeout_s > 0:
            raise ValueError(f"request_timeout_s must be positive, got {self.request_timeout_s}")


class BoundedHTTPServer(HTTPServer):
    """``HTTPServer`` with a fixed worker pool, per-connection deadlines and a cap.

    Parameters
    ----------
    address
        ``(host, port)`` to bind; port 0 picks a free one.
    handler
        The request handler class; a :class:`BoundedRequestHandler` subclass tells the
        server when the request has been read, which ends its deadline.
    limits
        Workers, connection cap and request timeout.
    """

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        limits: ServerLimits | None = None,
    ) -> None:
        super().__init__(address, handler)
        self.limits = limits or ServerLimits()
        self._selector = selectors.DefaultSelector()
        self._waiting: dict[socket.socket, float] = {}  # accepted, nothing sent yet
        self._reading: dict[socket.socket, float] = {}  # with a worker, request not read
        self._in_worker = 0  # queued for or held by a worker
        self._mutex = threading.Lock()
        self._work: queue.Queue[tuple[socket.socket, Any] | None] = queue.Queue()
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._stopped.set()
        self._workers = [
            threading.Thread(target=self._worker, name=f"segmon-http-{i}", daemon=True)
            for i in range(self.limits.workers)
        ]
        for worker in self._workers:
            worker.start()

    @property
    def open_connections(self) -> int:
        """Connections accepted and not yet closed."""
        with self._mutex:
            return len(self._waiting) + self._in_worker

    def serve_forever(self, poll_interval: float = 0.1) -> None:
        """Accept, wait for requests and enforce deadlines until :meth:`shutdown`."""
        self._stopped.clear()
        self.socket.setblocking(False)
        self._selector.register(self.socket, selectors.EVENT_READ)
        try:
            while not self._stop.is_set():
                for key, _events in self._selector.select(timeout=poll_interval):
                    if key.fileobj is self.socket:
                        self._accept()
                    else:
                        conn = key.fileobj
                        assert isinstance(conn, socket.socket)
                        self._selector.unregister(conn)
                        self._hand_over(conn, key.data)
                self._enforce_deadlines()
        finally:
            self._selector.unregister(self.socket)
            for conn in list(self._waiting):
                self._selector.unregister(conn)
                self._close(conn)
            self._waiting.clear()
            self._stopped.set()

    def shutdown(self) -> None:
        """Stop accepting; requests being answered finish (their sockets time out)."""
        self._stop.set()
        self._stopped.wait(timeout=10)
        for _ in self._workers:
            self._work.put(None)

    def _accept(self) -> None:
        for _ in range(64):  # bounded: drain what the backlog holds now
            try:
                conn, address = self.socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. out of file descriptors: try again later
                log.warning("accept failed: %s", exc)
                return
            if self.open_connections >= self.limits.max_connections:
                self._refuse(conn)
                continue
            conn.setblocking(False)
            with self._mutex:
                self._waiting[conn] = time.monotonic() + self.limits.request_timeout_s
            self._selector.register(conn, selectors.EVENT_READ, address)

    def _refuse(self, conn: socket.socket) -> None:
        try:
            conn.setblocking(False)
            conn.send(_BUSY)
        except OSError:
            pass
        self._close(conn)

    def _hand_over(self, conn: socket.socket, address: Any) -> None:
        with self._mutex:
            del self._waiting[conn]
            self._in_worker += 1
        conn.setblocking(True)
        conn.settimeout(self.limits.request_timeout_s)
        self._work.put((conn, address))

    def _enforce_deadlines(self) -> None:
        now = time.monotonic()
        with self._mutex:
            idle = [c for c, d in self._waiting.items() if d <= now]
            for conn in idle:
                del self._waiting[conn]
            stalled = [c for c, d in self._reading.items() if d <= now]
            for conn in stalled:
                del self._reading[conn]
                # the worker's blocked read returns at once; the worker closes it
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
        for conn in idle:
            self._selector.unregister(conn)
            self._close(conn)
        if idle or stalled:
            log.info("cut off %d idle and %d stalled connections", len(idle), len(stalled))

    def request_read(self, conn: socket.socket) -> None:
        """Tell the server that ``conn``'s request is read: its deadline no longer applies."""
        with self._mutex:
            self._reading.pop(conn, None)

    def _worker(self) -> None:
        while True:
            item = self._work.get()
            if item is None:
                return
            conn, address = item
            with self._mutex:  # the client's time to send its request starts now
                self._reading[conn] = time.monotonic() + self.limits.request_timeout_s
            try:
                self.finish_request(conn, address)
            except Exception:
                self.handle_error(conn, address)
            finally:
                with self._mutex:
                    self._reading.pop(conn, None)
                    self._in_worker -= 1
                self.shutdown_request(conn)

    @staticmethod
    def _close(conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            conn.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log a failed request (the default prints a traceback on stderr)."""
        log.exception("request from %s failed", client_address)

    def server_close(self) -> None:
        """Close the listening socket and the selector."""
        super().server_close()
        self._selector.close()


class BoundedRequestHandler(BaseHTTPRequestHandler):
    """A request handler that ends its connection's deadline once the request is read."""

    server: BoundedHTTPServer

    def parse_request(self) -> bool:
        """Parse the request line and headers, then release the read deadline."""
        ok = super().parse_request()
        self.server.request_read(self.connection)
        return ok
