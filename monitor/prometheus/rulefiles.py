"""Write the rule files of :mod:`monitor.prometheus.rules` and their promtool tests.

The rules (:mod:`~monitor.prometheus.rules`) and their ``promtool test rules`` cases
(:mod:`~monitor.prometheus.promtool_tests`, which reads the rules it tests) are two
concepts; this module writes both, so neither imports the other back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from monitor.errors import ConfigError
from monitor.jobs.names import JobName
from monitor.prometheus.canary_rules import canary_rule_groups
from monitor.prometheus.promtool_tests import rule_tests
from monitor.prometheus.rules import (
    GENERATED_HEADER,
    drift_rule_groups,
    job_rule_groups,
    slo_rule_groups,
)
from monitor.prometheus.yamlio import dump_yaml
from monitor.slo.policy import DEFAULT_POLICY, AlertPolicy
from monitor.slo.spec import SLOSpec

__all__ = ["RuleFiles", "write_rules"]


@dataclass(frozen=True)
class RuleFiles:
    """Paths written by :func:`write_rules` (tests are ``None`` when not written)."""

    slo: Path
    drift: Path
    jobs: Path
    slo_test: Path | None
    drift_test: Path | None
    jobs_test: Path | None

    @property
    def rule_files(self) -> tuple[Path, Path, Path]:
        """The three rule files."""
        return (self.slo, self.drift, self.jobs)

    @property
    def test_files(self) -> tuple[Path, ...]:
        """The promtool test files that were written."""
        return tuple(p for p in (self.slo_test, self.drift_test, self.jobs_test) if p)


def write_rules(
    slos: Sequence[SLOSpec],
    jobs: Mapping[JobName, timedelta],
    out_dir: Path,
    *,
    policy: AlertPolicy = DEFAULT_POLICY,
    drift_for: timedelta = timedelta(minutes=30),
    stale_factor: float = 3.0,
    with_tests: bool = True,
) -> RuleFiles:
    """Write the SLO, drift and job rule files, and their ``promtool test rules`` files.

    Parameters
    ----------
    slos
        The SLOs (names must be unique).
    jobs
        Scheduled segmon jobs and their intervals, for the staleness alerts.
    out_dir
        Directory to write into (created if missing); existing files are replaced.
    policy
        Burn-rate alert policy (default: the SRE workbook table).
    drift_for
        How long drift must persist before :data:`DRIFT_ALERT` fires.
    stale_factor
        A job is stale after ``stale_factor`` times its interval without success.
    with_tests
        Also write ``*.test.yml`` promtool unit tests for the generated rules.

    Returns
    -------
    RuleFiles
        The paths written.

    Examples
    --------
    >>> import tempfile
    >>> from datetime import timedelta
    >>> from monitor.slo.spec import default_slos
    >>> with tempfile.TemporaryDirectory() as d:
    ...     out = write_rules(default_slos(), {"slo": timedelta(minutes=5)}, Path(d))
    ...     sorted(p.name for p in (*out.rule_files, *out.test_files))
    ['drift.rules.test.yml', 'drift.rules.yml', 'jobs.rules.test.yml', 'jobs.rules.yml', \
'slo.rules.test.yml', 'slo.rules.yml']
    """
    names = [s.name for s in slos]
    if len(set(names)) != len(names):
        raise ConfigError(f"duplicate SLO names in {names!r}")
    out_dir.mkdir(parents=True, exist_ok=True)
    groups = [g for slo in slos for g in slo_rule_groups(slo, policy)]
    files = {
        "slo": {"groups": groups},
        "drift": {"groups": [*drift_rule_groups(drift_for), *canary_rule_groups()]},
        "jobs": {"groups": job_rule_groups(jobs, stale_factor)},
    }
    paths = {k: out_dir / f"{k}.rules.yml" for k in files}
    for key, doc in files.items():
        paths[key].write_text(dump_yaml(doc, header=GENERATED_HEADER), encoding="utf-8")
    tests: dict[str, Path | None] = {k: None for k in files}
    if with_tests:
        for key, doc in rule_tests(slos, jobs, policy, drift_for, stale_factor).items():
            path = out_dir / f"{key}.rules.test.yml"
            path.write_text(dump_yaml(doc, header=GENERATED_HEADER), encoding="utf-8")
            tests[key] = path
    return RuleFiles(
        slo=paths["slo"],
        drift=paths["drift"],
        jobs=paths["jobs"],
        slo_test=tests["slo"],
        drift_test=tests["drift"],
        jobs_test=tests["jobs"],
    )
