"""The layout's promises: light imports, one name per thing, every package shipped.

The import-linter contracts in ``pyproject.toml`` check which module may import which;
these tests check what importing actually loads (lazy imports are invisible to a static
graph), that names stay unique, and that the packaging list matches the tree.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from collections import Counter
from pathlib import Path
from typing import get_args

import pytest

from detectors.registry import REGISTRY, FeatureKind, detector_names
from monitor.config import DriftDetectors

REPO = Path(__file__).resolve().parents[1]

_PROBE = """
import json, sys
{body}
print(json.dumps(sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))))
"""


def _torch_modules(body: str, cwd: Path) -> list[str]:
    """Run ``body`` in a fresh interpreter and return the torch modules it loaded."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE.format(body=body)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    modules: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return modules


@pytest.mark.parametrize(
    "module",
    [
        "monitor.drift",
        "monitor.drift.job",
        "monitor.drift.report",
        "monitor.prometheus",
        "monitor.prometheus.collector",
        "monitor.prometheus.rulefiles",
        "monitor.slo",
        "monitor.slo.events",
        "monitor.ingest.job",
        "monitor.service.status",
        "detectors",
        "detectors.registry",
    ],
)
def test_importing_a_torch_free_stage_loads_no_torch(module: str, tmp_path: Path) -> None:
    assert _torch_modules(f"import {module}", tmp_path) == []


def test_the_probe_sees_torch_where_it_is_loaded(tmp_path: Path) -> None:
    assert "torch" in _torch_modules("import monitor.model.adapters", tmp_path)


def test_rules_slo_and_status_commands_load_no_torch(tmp_path: Path) -> None:
    body = f"""
import os
os.environ["SEGMON_DATABASE_URL"] = "sqlite:///{tmp_path / "segmon.db"}"
from monitor.cli.main import app
for args in (["init"], ["rules", "--out", "{tmp_path / "rules"}"], ["slo", "--json"],
             ["status", "--json"]):
    code = app(args, standalone_mode=False)
    assert code in (None, 0), (args, code)
"""
    assert _torch_modules(body, tmp_path) == []
    assert (tmp_path / "rules" / "slo.rules.yml").is_file()


def test_module_stems_are_unique() -> None:
    """One name, one meaning: no two modules share a stem.

    Allowed twice: each stage's ``job``, ``errors`` (``monitor.errors`` re-exports the
    leaf ``detectors.errors`` and adds the service's own: one hierarchy), and ``_typing``
    (the private array aliases of each pure package; ``sampling._typing`` is the sampling
    API's contract, float64 signals, where ``detectors._typing`` takes any float precision).
    """
    allowed = {"__init__", "__main__", "job", "errors", "_typing"}
    stems = Counter(
        path.stem
        for package in ("monitor", "detectors", "sampling")
        for path in (REPO / package).rglob("*.py")
    )
    assert {stem: n for stem, n in stems.items() if n > 1 and stem not in allowed} == {}


def test_config_accepts_exactly_the_registered_detectors() -> None:
    """Config validation derives its detector names from the registry (one list)."""
    by_kind = {kind: set(detector_names(kind)) for kind in get_args(FeatureKind)}
    assert set(REGISTRY) == set().union(*by_kind.values())
    family_kinds: dict[str, tuple[FeatureKind, ...]] = {
        "image_embedding": ("embedding",),
        "instance_embedding": ("embedding",),
        "mask_geometry": ("numeric",),
        "prediction": ("numeric", "categorical"),
        "image_properties": ("numeric",),
    }
    assert set(family_kinds) == set(DriftDetectors.model_fields)
    for family, kinds in family_kinds.items():
        allowed = set().union(*(by_kind[k] for k in kinds))
        for name in REGISTRY:
            if name in allowed:
                DriftDetectors.model_validate({family: [name]})
            else:
                with pytest.raises(ValueError, match=name):
                    DriftDetectors.model_validate({family: [name]})


def test_every_registered_detector_builds() -> None:
    for name, entry in REGISTRY.items():
        detector = entry.build(alpha=0.05, seed=1, feature="x")
        assert type(detector).__name__ == entry.target.split(":")[1], name


def test_pyproject_lists_every_package() -> None:
    """The wheel ships what the tree holds (an unlisted package would be left out)."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {
        ".".join(init.parent.relative_to(REPO).parts)
        for package in ("monitor", "detectors", "sampling")
        for init in (REPO / package).rglob("__init__.py")
    }
    mapped = {name for name in config["package-dir"]} | {
        f"{name}.versions" for name in config["package-dir"]
    }
    assert set(config["packages"]) == on_disk | mapped
