from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from monitor.config import ExecutorSettings
from monitor.service.status import read_status
from monitor.storage.schema import JobRun, RunStatus

T0 = datetime(2026, 11, 24, tzinfo=UTC)


def test_status_names_the_executor_and_what_the_last_runs_used(
    sessions: sessionmaker[Session],
) -> None:
    dask = {"kind": "dask", "workers": 2, "retries": 1, "batches": 9}
    with sessions.begin() as s:
        for minute, run_status, executor in (
            (0, RunStatus.SUCCESS, {"kind": "local", "workers": 1}),
            (1, RunStatus.SUCCESS, dask),
            (2, RunStatus.FAILED, {}),
        ):
            s.add(
                JobRun(
                    job="embed",
                    started_at=T0.replace(minute=minute),
                    status=run_status,
                    counts={"executor": executor} if executor else {},
                )
            )
    settings = ExecutorSettings(kind="dask", address="tcp://scheduler:8786")
    with sessions() as s:
        status = read_status(s, settings)
        bare = read_status(s)
    assert status.executor == {
        "kind": "dask",
        "address": "tcp://scheduler:8786",
        "last_runs": {"embed": dask},
    }
    assert status.to_dict()["executor"]["last_runs"]["embed"]["retries"] == 1
    assert bare.executor == {"last_runs": {"embed": dask}}
