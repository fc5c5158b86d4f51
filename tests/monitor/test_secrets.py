"""Secrets never reach an error message or a log line."""

from __future__ import annotations

import io
import logging

from monitor.secrets import RedactingFilter, redact, url_password


def test_every_url_password_and_secret_setting_is_masked() -> None:
    text = (
        "connect postgresql+psycopg://segmon:s3cr%40t@db:5432/x failed; "
        "also redis://:tok@cache/0, dsn 'host=db password=hunter2 user=x', token=abc123"
    )
    shown = redact(text)
    for secret in ("s3cr%40t", "tok@", "hunter2", "abc123"):
        assert secret not in shown, secret
    assert "postgresql+psycopg://segmon:***@db:5432/x" in shown
    assert "password=***" in shown and "token=***" in shown
    assert url_password("postgresql://u:p@h/d") == "p" and url_password("sqlite:///x.db") is None


def test_log_lines_are_redacted_including_tracebacks() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter(["admin-token-123"]))
    logger = logging.getLogger("segmon.test.secrets")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("db %s and token %s", "postgresql://u:hunter2@h/d", "admin-token-123")
        try:
            raise RuntimeError("cannot reach postgresql://u:hunter2@h/d")
        except RuntimeError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    output = stream.getvalue()
    assert "hunter2" not in output and "admin-token-123" not in output
    assert "postgresql://u:***@h/d" in output and "RuntimeError" in output
