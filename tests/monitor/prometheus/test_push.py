"""Pushing to a real Pushgateway on 127.0.0.1 and reading the metrics back."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from monitor.cli.main import app
from monitor.clock import ManualClock
from monitor.config import Settings
from monitor.prometheus import catalog as mc
from monitor.prometheus.push import PushError, push_metrics
from monitor.slo.spec import QualitySLI, SLOSpec
from tests.support.processes import StartProcess, binary, free_port, http_get, wait_until
from tests.support.result_rows import NOW, Rows

pytestmark = pytest.mark.prometheus


def _read(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = http_get(f"{url}/metrics").decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


def _gateway(processes: StartProcess, tmp_path: Path) -> str:
    pushgateway = binary("prometheus-pushgateway")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    processes([pushgateway, f"--web.listen-address=127.0.0.1:{port}"], tmp_path / "pushgateway.log")
    assert wait_until(lambda: http_get(f"{url}/-/ready") is not None, 20), (
        tmp_path / "pushgateway.log"
    ).read_text()
    return url


def test_push_and_read_back(
    sessions: sessionmaker[Session], rows: Rows, processes: StartProcess, tmp_path: Path
) -> None:
    url = _gateway(processes, tmp_path)
    now = NOW
    rows.shadow(now - timedelta(minutes=1), now, {1: ([0.9, 0.2], 1, 1)})
    rows.job("ingest", now - timedelta(minutes=2))
    rows.job("drift", now - timedelta(minutes=3))
    rows.session.commit()
    slo = SLOSpec(
        name="shadow",
        objective=0.9,
        sli=QualitySLI(source="shadow"),
        min_events=1,
        unreachable_tiers="cap",
    )
    groups = push_metrics(url, sessions, Settings(slos=(slo,)), ManualClock(now))
    assert groups == ["segmon", "drift", "ingest"]
    got = _read(url)

    def value(name: str, **labels: str) -> float | None:
        return got.get((name, frozenset({"instance": "", **labels}.items())))

    # 4 events (2 pairs, 1 production-only, 1 reference-only), 3 bad.
    assert value(mc.SLO_EVENTS, job="segmon", slo="shadow", window="5m") == 4
    assert value(mc.SLO_BURN_RATE, job="segmon", slo="shadow", window="5m") == pytest.approx(
        0.75 / 0.1
    )
    # Job metrics keep their segmon job in the `job` label (one group per job).
    last = (now - timedelta(minutes=2)).timestamp()
    assert value(mc.JOB_LAST_SUCCESS, job="ingest") == last
    assert value(mc.JOB_LAST_SUCCESS, job="drift") == last - 60
    assert value(mc.JOB_RUNS, job="ingest", status="success") == 1


def test_cli_pushes_and_names_an_unreachable_gateway(
    database_url: str,
    sessions: sessionmaker[Session],
    rows: Rows,
    processes: StartProcess,
    tmp_path: Path,
) -> None:
    url = _gateway(processes, tmp_path)
    rows.shadow(datetime.now(UTC) - timedelta(minutes=1), datetime.now(UTC), {1: ([0.9], 0, 0)})
    rows.session.commit()
    config = tmp_path / "segmon.yaml"
    config.write_text(f"database_url: {database_url}\n")
    runner = CliRunner()
    for command in ("slo", "status"):
        result = runner.invoke(app, ["--config", str(config), command, "--pushgateway", url])
        assert result.exit_code == 0, result.output
    got = _read(url)
    labels = frozenset(
        {"instance": "", "job": "segmon", "slo": "mask-quality-shadow", "window": "5m"}.items()
    )
    assert got[(mc.SLO_EVENTS, labels)] == 1
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(PushError, match=re.escape(f"Pushgateway {nowhere!r}")):
        push_metrics(nowhere, sessions, Settings(), ManualClock(NOW))
