"""Fixtures every test folder may use, defined in the importable tests.support modules.

Helpers are imported from those modules (``from tests.support.samplelog import
LogBuilder``); the modules that define fixtures are registered here once, so no test
folder needs a conftest of its own.
"""

import pytest

# Before the plugins below are imported: their asserts (and those of every other
# support module) report values like a test's own.
pytest.register_assert_rewrite("tests.support")

pytest_plugins = [
    "tests.support.paths",
    "tests.support.databases",
    "tests.support.samplelog",
    "tests.support.drift_scenes",
    "tests.support.model_scenes",
    "tests.support.tiny_model",
    "tests.support.exported_models",
    "tests.support.hosted_scenes",
    "tests.support.result_rows",
    "tests.support.processes",
    "tests.support.postgres_server",
    "tests.support.replicas",
    "tests.support.queue_scenes",
]
