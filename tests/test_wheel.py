"""A non-editable install works: the wheel carries the migrations and the checkpoints.

The wheel is built from the checkout and installed into a fresh virtualenv outside it;
segmon's dependencies come from the test's own environment (a ``.pth`` line), so the
test needs no network and checks only what the wheel itself carries. ``segmon init``,
``segmon db current`` and ``segmon demo`` then run from an empty folder.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(args: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEGMON_", "PYTHON"))}
    done = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{args}: {done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return done


def _source_copy(dest: Path) -> Path:
    """Copy the files git would ship (tracked, or new and not ignored) to ``dest``.

    Building from a copy keeps setuptools' ``build/`` out of the checkout, where files
    left from an older build would end up in the wheel.
    """
    listed = _run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=REPO
    ).stdout
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return dest


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv outside the checkout with segmon installed from a freshly built wheel."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs a git checkout to know which files a clean clone holds")
    root = tmp_path_factory.mktemp("wheel")
    source = _source_copy(root / "src")
    dist = root / "dist"
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "--wheel-dir",
            str(dist),
            str(source),
        ],
        cwd=root,
    )
    (wheel,) = dist.glob("segmon-*.whl")
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=root)
    python = venv / "bin" / "python"
    site = _run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=root
    ).stdout.strip()
    # Dependencies from this environment; segmon itself only from the wheel (the editable
    # install's own .pth is not processed for a path added this way).
    Path(site, "segmon-test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--ignore-installed",
            str(wheel),
        ],
        cwd=root,
    )
    return venv


def test_the_wheel_carries_migrations_and_checkpoints(installed: Path, tmp_path: Path) -> None:
    probe = (
        "import monitor, monitor.storage.engine as e, monitor.model.loading as m; "
        "print(monitor.__file__); print(e.migrations_dir()); "
        "print(*(m.bundled_path(n) for n in m.BUNDLED))"
    )
    lines = _run([str(installed / "bin" / "python"), "-c", probe], cwd=tmp_path).stdout.split()
    assert all(Path(p).resolve().is_relative_to(installed.resolve()) for p in lines), lines
    assert (Path(lines[1]) / "versions").is_dir()


def test_init_db_current_and_demo_run_from_the_wheel(installed: Path, tmp_path: Path) -> None:
    segmon = str(installed / "bin" / "segmon")
    init = json.loads(_run([segmon, "init", "--json"], cwd=tmp_path).stdout)
    assert (tmp_path / "segmon.yaml").is_file()
    current = json.loads(_run([segmon, "db", "current", "--json"], cwd=tmp_path).stdout)
    assert current["revision"] == init["revision"] is not None
    # small sizes: this checks the installed package runs the demo, not the demo's scale
    small = ["--holdout-images", "8", "--images-per-day", "12"]
    demo = json.loads(
        _run(
            [segmon, "demo", "--workdir", str(tmp_path / "demo"), *small, "--json"], cwd=tmp_path
        ).stdout
    )
    assert [day["day"] for day in demo["days"]] == ["day1", "day2"]
    assert len(demo["days"][1]["drift_flagged"]) > len(demo["days"][0]["drift_flagged"])
    assert demo["alerts"]["days"][0]["firing"] == []
    assert {"slo": "mask-quality-shadow", "severity": "page"} in demo["alerts"]["days"][1]["firing"]
