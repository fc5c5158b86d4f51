"""Helpers and fixtures shared by the test folders (imported, never copied).

Modules that define fixtures are registered as plugins in ``tests/conftest.py``
(``pytest_plugins``), so every test folder can request them by name; everything
else is imported: ``from tests.support.drift_scenes import DriftScenes``.
"""
