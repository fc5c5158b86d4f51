"""``segmon demo --live`` end to end: a real Prometheus and Alertmanager page a webhook.

The end-to-end test runs the command line as a user would (small sizes), then reads the
demo's database with the other reporting commands, and checks every human output rounds
its numbers. It needs Debian's ``prometheus`` and ``prometheus-alertmanager`` (skipped
with a reason where they are missing) and takes about a minute on a loaded 2-core
machine, so it is not marked ``slow``: ``make test`` runs it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.config import Settings
from monitor.service.live import missing_binaries, run_live
from tests.support.paths import REPO
from tests.support.processes import binary

# A float printed with five or more significant decimals (leading zeros after the point
# not counted: 0.05263 is fine), e.g. 19.999999999999982 or 0.16473317865429216; ids,
# versions and timestamps are no such numbers.
LONG_FLOAT = re.compile(r"(?<![\w.:-])-?\d+\.0*[1-9]\d{4,}(?![\w.])")


def _segmon(workdir: Path, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "SEGMON_DATABASE_URL": f"sqlite:///{workdir / 'segmon.db'}",
        "TMPDIR": str(tmp),
        "COLUMNS": "200",
        "PYTHONPATH": str(REPO),  # this checkout, whatever the virtualenv was installed from
    }
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        cwd=workdir.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _processes_under(folder: Path) -> list[str]:
    """Command lines of running processes that name ``folder`` (the live demo's temp dirs)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(folder) in cmdline:
            found.append(cmdline)
    return found


def test_without_the_binaries_the_live_demo_says_what_it_skipped(tmp_path: Path) -> None:
    result = run_live(
        f"sqlite:///{tmp_path / 'none.db'}",
        Settings(),
        datetime(2026, 11, 25, tzinfo=UTC),
        which=lambda name: "/usr/bin/prometheus" if name == "prometheus" else None,
    )
    assert result.page is None and result.received == ()
    assert result.skipped is not None
    assert result.skipped.startswith("prometheus-alertmanager not installed")
    assert "no live Prometheus, Alertmanager or webhook was started" in result.skipped
    assert missing_binaries(lambda name: None) == ["prometheus", "prometheus-alertmanager"]


@pytest.mark.prometheus
def test_demo_live_pages_through_prometheus_and_alertmanager_and_cleans_up(
    tmp_path: Path,
) -> None:
    binary("prometheus")
    binary("prometheus-alertmanager")
    workdir = tmp_path / "demo"
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    demo = _segmon(
        workdir,
        scratch,
        "demo",
        "--workdir",
        str(workdir),
        "--holdout-images",
        "4",
        "--images-per-day",
        "6",
        "--live",
        "--live-timeout",
        "120",
    )
    assert demo.returncode == 0, demo.stderr[-3000:]
    text = demo.stdout
    # offline: the same tiers as the rules, evaluated per day
    assert "alerts at the end of day1 (2026-11-24T00:00:00+00:00): nothing fires" in text
    assert "page mask-quality-shadow" in text
    assert "PAGE mask-quality-shadow: page 1h/5m: FIRES: 1h 6.667 > 6" in text
    # the drifted day's canary, side by side with the stable version (numbers rounded below)
    assert "canary on day2: prod-2026.11.2-rc1 served 8 of 30 requests (30 %)" in text
    assert re.search(r"^shadow_agreement +\S+ +\S+ +\w+ *$", text, re.MULTILINE), text[-3000:]
    assert "the candidate is worse on:" in text
    # live: the webhook the demo ran received the page from Alertmanager
    assert "live: Alertmanager paged after" in text, text[-3000:]
    assert "the webhook receiver 'page' got" in text
    for line in (
        "alertname=SLOErrorBudgetBurn",
        "severity=page",
        "sloth_slo=mask-quality-shadow",
        "summary: segmon mask-quality-shadow SLO error budget burn rate is too fast.",
        "tiers: 6x over 1h and 5m, or 6x over 6h and 30m (burn rate at most 6.667)",
    ):
        assert f"    {line}" in text, line
    assert "adjusted_tiers: page tier 1h/5m capped from 14.4x to 6x" in text
    # every process the demo started is gone, and so are its temporary folders
    assert _processes_under(scratch) == []
    assert not any(scratch.glob("segmon-live-*"))

    # the other reporting commands over the demo's database round their numbers too
    outputs = {"demo --live": text}
    for command in (
        ["status"],
        ["slo"],
        ["quarantine"],
        ["evaluate", "show"],
        ["categories", "list"],
    ):
        result = _segmon(workdir, scratch, *command)
        assert result.returncode == 0, (command, result.stderr[-2000:])
        outputs[" ".join(command)] = result.stdout
    assert "budget left" in outputs["slo"] and "AP" in outputs["evaluate show"]
    for name, output in outputs.items():
        assert LONG_FLOAT.findall(output) == [], (name, LONG_FLOAT.findall(output))
