"""A PostgreSQL server of the test's own, on another port, that it may stop and restart.

Never the shared server on 5432: :class:`PostgresServer` runs ``initdb`` into a fresh
temporary folder with the Debian binaries under ``/usr/lib/postgresql/*/bin``, listens
on 127.0.0.1 only (trust authentication), and the ``own_postgres`` fixture stops it and
removes its folder when the test ends. As root, the server runs as the ``postgres`` user
(PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.processes import free_port


def postgres_bindir() -> Path | None:
    """The newest Debian PostgreSQL binaries folder, if installed."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    return found[-1] if found and (found[-1] / "initdb").is_file() else None


@dataclass
class PostgresServer:
    """One PostgreSQL cluster in ``root`` listening on 127.0.0.1:``port``."""

    bindir: Path
    root: Path
    port: int
    user: str | None  # run the binaries as this user (when we are root)

    @property
    def datadir(self) -> Path:
        """The cluster's data folder."""
        return self.root / "data"

    @property
    def url(self) -> str:
        """SQLAlchemy URL of its ``postgres`` database."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 120) -> None:
        result = subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            user=self.user,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.root,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({result.returncode}): {result.stderr[-2000:]}")

    def init(self) -> None:
        """Create the cluster (trust authentication, superuser ``postgres``)."""
        self._run("initdb", "-D", str(self.datadir), "-U", "postgres", "--auth=trust", "--no-sync")

    def start(self) -> None:
        """Start the server and wait until it accepts connections (bounded: 60 s)."""
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off"
            " -c max_connections=50"
        )
        self._run(
            "pg_ctl", "-D", str(self.datadir), "-l", str(self.root / "server.log"),
            "-o", options, "-w", "-t", "60", "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: end sessions, then shut down cleanly)."""
        self._run("pg_ctl", "-D", str(self.datadir), "-m", mode, "-w", "-t", "60", "stop")

    def running(self) -> bool:
        """Whether the server's postmaster runs."""
        return (self.datadir / "postmaster.pid").exists()


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A started PostgreSQL server of this test's own; stopped and removed at the end."""
    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL binaries under /usr/lib/postgresql/*/bin")
    user: str | None = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no postgres user to run PostgreSQL as")
        user = "postgres"
    root = Path(tempfile.mkdtemp(prefix="segmon-pg-"))  # /tmp: reachable by that user
    if user is not None:
        shutil.chown(root, user=user)
    server = PostgresServer(bindir, root, free_port(), user)
    try:
        server.init()
        server.start()
        yield server
    finally:
        try:
            if server.running():
                server.stop("immediate")
        finally:
            shutil.rmtree(root, ignore_errors=True)
