from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer.core
import typer.main
from typer.testing import CliRunner

from monitor.cli.main import app
from tests.support.paths import REPO
from tests.support.samplelog import LogBuilder

runner = CliRunner()


def all_commands() -> list[str]:
    root = typer.main.get_command(app)
    assert isinstance(root, typer.core.TyperGroup)
    names = []
    for name, command in root.commands.items():
        if isinstance(command, typer.core.TyperGroup):
            names += [f"{name} {sub}" for sub in command.commands]
        else:
            names.append(name)
    return sorted(names)


def test_every_command_has_help_and_is_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text()
    commands = all_commands()
    assert {"init", "ingest", "status", "quarantine", "holdout import", "db upgrade"} <= set(
        commands
    )
    for command in commands:
        result = runner.invoke(app, [*command.split(), "--help"])
        assert result.exit_code == 0, (command, result.output)
        assert "Usage" in result.output
        assert f"segmon {command}" in readme, f"`segmon {command}` is not documented in README.md"


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"SEGMON_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_init_ingest_status_quarantine_json(tmp_path: Path, log_builder: LogBuilder) -> None:
    log_builder.write([log_builder.line() for _ in range(3)] + ['{"broken": '])
    init = run(tmp_path, "init", "--json")
    assert init.returncode == 0, init.stderr
    assert json.loads(init.stdout)["config_written"] is True and (tmp_path / "segmon.yaml").exists()
    ingest = run(tmp_path, "ingest", str(log_builder.root), "--json")
    assert ingest.returncode == 0, ingest.stderr
    assert json.loads(ingest.stdout)["ingested"] == 3
    status = json.loads(run(tmp_path, "status", "--json").stdout)
    assert (status["samples_ingested"], status["quarantined_by_reason"]) == (
        3,
        {"malformed_json": 1},
    )
    assert status["jobs"][0]["job"] == "ingest" and status["jobs"][0]["last_status"] == "success"
    listed = json.loads(run(tmp_path, "quarantine", "--json").stdout)
    assert [(q["reason"], q["raw"]) for q in listed] == [("malformed_json", '{"broken": ')]


def test_errors_are_one_line_naming_the_value(tmp_path: Path) -> None:
    (tmp_path / "segmon.yaml").write_text("ingest: {batch_size: 0}\n")
    result = run(tmp_path, "status")
    assert result.returncode == 2
    assert "ingest.batch_size = 0" in result.stderr and "Traceback" not in result.stderr
    assert run(tmp_path, "init").returncode == 2


def test_uninitialised_database_says_run_init(tmp_path: Path) -> None:
    result = run(tmp_path, "status")
    assert result.returncode == 2
    assert "run `segmon init`" in result.stderr and "Traceback" not in result.stderr


def test_failed_job_is_recorded_and_exits_nonzero(tmp_path: Path) -> None:
    assert run(tmp_path, "init").returncode == 0
    result = run(tmp_path, "ingest", str(tmp_path / "nowhere"))
    assert result.returncode == 2 and "nowhere" in result.stderr
    status = json.loads(run(tmp_path, "status", "--json").stdout)
    assert status["jobs"] == [
        {
            "job": "ingest",
            "runs": 1,
            "last_status": "failed",
            "last_started_at": status["jobs"][0]["last_started_at"],
        }
    ]


@pytest.mark.parametrize("bad", ["--images=-3", "--size=10", "--drift=fog=0.5", "--drift=blur=2"])
def test_synth_rejects_bad_options(tmp_path: Path, bad: str) -> None:
    result = run(tmp_path, "synth", str(tmp_path / "out"), bad)
    assert result.returncode == 2
    assert bad.split("=", 1)[1].split("=")[0] in result.stderr


def test_evaluate_runs_a_bundled_model_over_the_holdout(tmp_path: Path) -> None:
    assert run(tmp_path, "init").returncode == 0
    scenes = tmp_path / "scenes"
    assert run(tmp_path, "synth", str(scenes), "--images", "6", "--seed", "11").returncode == 0
    imported = run(
        tmp_path, "holdout", "import", str(scenes / "annotations.json"),
        "--images", str(scenes / "images"), "--name", "h",
    )  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    done = run(tmp_path, "evaluate", "--holdout", "h", "--model", "reference", "--json")
    assert done.returncode == 0, done.stderr
    [result] = json.loads(done.stdout)["results"]
    assert result["model_version"].startswith("builtin:reference@")
    assert result["images"] == 6 and 0.3 < result["ap"] <= 1.0
    both = run(
        tmp_path, "evaluate", "--holdout", "h", "--model", "reference",
        "--predictions", str(scenes / "annotations.json"),
    )  # fmt: skip
    assert both.returncode == 2 and "not both" in both.stderr
