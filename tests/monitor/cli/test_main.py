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


def run_env(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_request_ids_are_printed_literally(tmp_path: Path, log_builder: LogBuilder) -> None:
    """`[/bold]` and terminal escape sequences in request ids neither crash nor reach the tty."""
    hostile = ["[/bold]", "[red]x[/red]", "r-\x1b[31mred\x1b]0;title\x07", ":smile:"]
    log_builder.write(
        [log_builder.line(i, request_id=rid, captured_at="no") for i, rid in enumerate(hostile)]
    )
    assert run(tmp_path, "init").returncode == 0
    assert run(tmp_path, "ingest", str(log_builder.root)).returncode == 0
    db = {"SEGMON_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "COLUMNS": "400"}
    shown = run_env(tmp_path, db, "quarantine")
    assert shown.returncode == 0, shown.stderr
    assert (
        "[/bold]" in shown.stdout and "[red]x[/red]" in shown.stdout and ":smile:" in shown.stdout
    )
    assert "\x1b" not in shown.stdout and "\x07" not in shown.stdout
    assert "\\x1b[31mred\\x1b]0;title\\x07" in shown.stdout
    listed = json.loads(run(tmp_path, "quarantine", "--json").stdout)
    assert sorted(q["request_id"] for q in listed) == sorted(hostile)


def test_a_password_in_a_bad_database_url_is_never_printed(tmp_path: Path) -> None:
    for url in (
        "mysql://segmon:hunter2@db/x",
        "postgresql://segmon:hunter2@db:port/x",
        "postgresql+psycopg://segmon:hunter2@127.0.0.1:1/segmon",
    ):
        result = run_env(tmp_path, {"SEGMON_DATABASE_URL": url}, "status")
        assert result.returncode == 2, (url, result.stderr)
        assert "hunter2" not in result.stderr + result.stdout, url
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    (tmp_path / "segmon.yaml").write_text(
        "database_url: postgresql://segmon:hunter2@db/x\ningest: {batch_size: 0}\n"
    )
    result = run_env(tmp_path, {}, "status")
    assert result.returncode == 2 and "hunter2" not in result.stderr


def test_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    url = "postgresql+psycopg://segmon:hunter2@127.0.0.1:1/segmon"
    result = run_env(tmp_path, {"SEGMON_DATABASE_URL": url}, "status", "--json")
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: database unreachable:") and "127.0.0.1" in line
    assert result.stdout == ""


def test_an_oversized_model_config_is_refused_before_allocating(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    config = {"categories": ["disc"], "width": 1700, "input_size": 256, "blocks": 1}
    model = tmp_path / "huge.safetensors"
    save_file(
        {},
        str(model),
        metadata={"segmon.format": "segmon-builtin/1", "segmon.config": json.dumps(config)},
    )
    (tmp_path / "images").mkdir()
    result = run(
        tmp_path,
        "predict",
        "--model",
        str(model),
        "--images",
        str(tmp_path / "images"),
        "--out",
        "r.json",
    )
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "needs 14.0 GiB of weights, more than 1 GiB: refusing to allocate it" in line


def test_polygon_of_1e12_never_crashes_ingest_holdout_import_or_evaluate(
    tmp_path: Path, log_builder: LogBuilder
) -> None:
    """Each command runs in its own process: a crash in native code would show as a signal."""
    huge = [[0, 0, 1e12, 0, 1e12, 1e12]]
    line = log_builder.line(0)
    line["instances"][0]["segmentation"] = huge
    log_builder.write([line, log_builder.line(1)])
    assert run(tmp_path, "init").returncode == 0
    ingest = run(tmp_path, "ingest", str(log_builder.root), "--json")
    assert ingest.returncode == 0, ingest.stderr
    assert json.loads(ingest.stdout)["quarantined"] == {"invalid_polygon": 1}

    scenes = tmp_path / "scenes"
    assert (
        run(
            tmp_path, "synth", str(scenes), "--images", "2", "--seed", "3", "--size", "64"
        ).returncode
        == 0
    )
    doc = json.loads((scenes / "annotations.json").read_text())
    good = json.dumps(doc)
    doc["annotations"][0]["segmentation"] = huge
    (scenes / "huge.json").write_text(json.dumps(doc))
    holdout = run(
        tmp_path,
        "holdout",
        "import",
        str(scenes / "huge.json"),
        "--images",
        str(scenes / "images"),
        "--name",
        "h",
    )
    assert holdout.returncode == 2, holdout.stderr
    assert "x=1000000000000.0 is outside" in holdout.stderr and "Traceback" not in holdout.stderr

    (scenes / "good.json").write_text(good)
    imported = run(
        tmp_path,
        "holdout",
        "import",
        str(scenes / "good.json"),
        "--images",
        str(scenes / "images"),
        "--name",
        "h",
    )
    assert imported.returncode == 0, imported.stderr
    image_id = json.loads(good)["images"][0]["id"]
    results = [{"image_id": image_id, "category_id": 1, "score": 0.5, "segmentation": huge}]
    (tmp_path / "results.json").write_text(json.dumps(results))
    evaluated = run(
        tmp_path, "evaluate", "--holdout", "h", "--predictions", str(tmp_path / "results.json")
    )
    assert evaluated.returncode == 2, evaluated.stderr
    assert (
        "x=1000000000000.0 is outside" in evaluated.stderr and "Traceback" not in evaluated.stderr
    )
