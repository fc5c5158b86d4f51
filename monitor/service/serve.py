"""``segmon run``: the long-running service.

Builds the engine, leader lock, scheduled jobs, metrics registry and HTTP server from
the settings, elects (one leadership check before serving), runs until SIGTERM or
SIGINT (or ``stop`` is set), then shuts down in order: stop taking HTTP requests, let
running jobs finish, release the leader lock. A blank admin token stops it before
anything starts.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Mapping
from datetime import timedelta
from types import FrameType
from typing import Protocol

from prometheus_client import CollectorRegistry
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import Clock, SystemClock
from monitor.config import Settings
from monitor.jobs.executor import SharedExecutor
from monitor.jobs.leader import leader_lock
from monitor.jobs.scheduler import Service
from monitor.prometheus.executor_collector import ExecutorCollector
from monitor.service.httpd import ServerLimits
from monitor.service.schedule import build_jobs
from monitor.service.server import MonitorServer, admin_token_from_env
from monitor.storage.engine import make_engine, require_schema, session_factory

log = logging.getLogger("segmon.service")


class RegistryFactory(Protocol):
    """Builds the registry ``/metrics`` serves (:func:`default_registry`)."""

    def __call__(
        self,
        sessions: sessionmaker[Session],
        settings: Settings,
        clock: Clock,
        *,
        executor: SharedExecutor | None = None,
    ) -> CollectorRegistry:
        """Return a registry for this service."""
        ...


def default_registry(
    sessions: sessionmaker[Session],
    settings: Settings,
    clock: Clock,
    *,
    executor: SharedExecutor | None = None,
) -> CollectorRegistry:
    """Return a fresh registry with segmon's database-backed and executor collectors.

    ``executor`` is the service's (its live stats); None: the configured one, unopened.
    """
    from monitor.prometheus.collector import DatabaseCollector

    registry = CollectorRegistry()
    job_names = [job.name for job in build_jobs(sessions, settings, clock)]
    registry.register(DatabaseCollector(sessions, settings, clock, job_names))
    executor = executor or SharedExecutor(settings.executor)
    registry.register(ExecutorCollector(executor.stats))
    return registry


def serve(
    settings: Settings,
    env: Mapping[str, str],
    stop: threading.Event | None = None,
    on_ready: Callable[[str], None] = lambda url: None,
    clock: Clock | None = None,
    registry_factory: RegistryFactory = default_registry,
) -> None:
    """Run the scheduler and the HTTP server until stopped.

    Parameters
    ----------
    settings
        Validated settings (database, sources, schedule, server address).
    env
        Environment, read once here for the admin token (``SEGMON_ADMIN_TOKEN``; set
        but blank is a :class:`~monitor.errors.ConfigError`).
    stop
        Set it to stop; SIGTERM and SIGINT set it too (when called from the main thread).
    on_ready
        Told the server's base URL once it listens (a port of 0 picks a free one).
    clock
        The clock jobs stamp their rows with.
    registry_factory
        Builds the metrics registry served at ``/metrics``.
    """
    stop = stop or threading.Event()
    clock = clock or SystemClock()
    token = admin_token_from_env(env)
    engine = make_engine(settings.database_url)
    require_schema(engine)
    sessions = session_factory(engine)
    leader = settings.leader
    executor = SharedExecutor(settings.executor)
    service = Service(
        sessions,
        build_jobs(sessions, settings, clock, executor),
        leader_lock(engine, settings.data_dir, timedelta(seconds=leader.lease_s)),
        clock,
        heartbeat=timedelta(seconds=leader.heartbeat_s),
        stale_after=timedelta(seconds=leader.abandon_after_s),
    )
    registry = registry_factory(sessions, settings, clock, executor=executor)
    server = MonitorServer(
        (settings.server.host, settings.server.port),
        registry,
        sessions,
        service,
        token,
        ServerLimits(
            workers=settings.server.workers,
            max_connections=settings.server.max_connections,
            request_timeout_s=settings.server.request_timeout_s,
        ),
    )

    def _handle(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: shutting down", signal.Signals(signum).name)
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _handle)
        signal.signal(signal.SIGINT, _handle)
    try:
        service.start(server.url)
        server.start()
        on_ready(server.url)
        stop.wait()
    finally:
        server.stop()
        service.shutdown()
        executor.close()
        engine.dispose()
