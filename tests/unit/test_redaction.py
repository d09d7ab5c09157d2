"""No credential of any URL form survives :func:`durable.redaction.redact`."""

from __future__ import annotations

import logging

import pytest

from durable.redaction import RedactingFilter, redact

SECRET = "s3cr3t-Pw"

URLS = [
    f"postgresql://app:{SECRET}@db.example:5432/prod",
    f"postgres://app:{SECRET}@db.example/prod?sslmode=require",
    f"postgresql://:{SECRET}@db.example/prod",
    f"postgresql://app:{SECRET.replace('-', '%2D')}@db.example/prod",
    f"postgresql://app:{SECRET}/with/slash@db.example/prod",
    f"postgresql://app:{SECRET}@@db.example/prod",
    f"postgresql://app@db.example/prod?password={SECRET}",
    f"postgresql://app@db.example/prod?sslmode=require&password={SECRET}&connect_timeout=3",
    f"postgresql://app@db.example/prod?sslpassword={SECRET}",
    f"postgresql://app@db.example/prod?passfile=/home/{SECRET}/.pgpass",
    f"postgresql://app@db.example/prod?sslkey=/keys/{SECRET}.key",
    f"postgresql:///prod?host=/run/postgresql&password={SECRET}",
    f"postgresql://[::1]:5432/prod?user=app&password={SECRET}",
    f"redis://:{SECRET}@cache.example:6379/0",
    f"redis://default:{SECRET}@cache.example:6379/0",
    f"rediss://cache.example:6380/0?password={SECRET}",
    f"https://{SECRET}@hooks.example/x",
    f"host=db.example password={SECRET} dbname=prod",
    f"host=db.example password='{SECRET}' dbname=prod",
]


@pytest.mark.parametrize("url", URLS)
def test_every_form_is_masked(url: str) -> None:
    text = f"error: cannot reach {url} (connection refused)"
    shown = redact(text)
    assert SECRET not in shown and SECRET.replace("-", "%2D") not in shown, shown
    assert "***" in shown


EXACT = [u for u in URLS[:16] if not any(k in u for k in ("slash", "@@", "passfile", "sslkey"))]


@pytest.mark.parametrize("url", EXACT)
def test_the_secrets_of_a_url_are_masked_even_quoted_alone(url: str) -> None:
    message = f'invalid integer value "{SECRET}" for connection option "port"'
    assert SECRET not in redact(message, url)


def test_what_is_not_secret_stays_readable() -> None:
    url = "postgresql://app@db.example:5432/prod?sslmode=require&application_name=x"
    assert redact(url) == url
    assert redact("postgresql://app:pw-123@db.example/prod") == (
        "postgresql://app:***@db.example/prod"
    )
    assert redact("sqlite:///var/durable.db") == "sqlite:///var/durable.db"


def test_the_log_filter_masks_records() -> None:
    record = logging.LogRecord(
        "psycopg.pool", logging.WARNING, __file__, 1, "error connecting: %s", (URLS[0],), None
    )
    assert RedactingFilter().filter(record)
    assert SECRET not in record.getMessage()
