"""Leader locks: one PostgreSQL advisory-lock holder at a time."""

from __future__ import annotations

from pathlib import Path

from monitor.jobs.leader import leader_lock


def test_postgres_advisory_lock_admits_one_leader(postgres_url: str) -> None:
    from monitor.storage.engine import make_engine

    a, b = make_engine(postgres_url), make_engine(postgres_url)
    la, lb = leader_lock(a, Path("/nonexistent")), leader_lock(b, Path("/nonexistent"))
    try:
        assert la.try_acquire() and la.try_acquire()
        assert not lb.try_acquire()
        la.release()
        assert lb.try_acquire()
    finally:
        la.release()
        lb.release()
        a.dispose()
        b.dispose()
