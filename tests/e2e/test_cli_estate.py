"""The CLI as the docs write it: --app/--name after the command name too, clear errors
for an --app that is not a Durable app."""

from __future__ import annotations

import pytest

from tests.e2e.cli_support import APP, durable


@pytest.mark.parametrize(
    "args",
    [
        ("--app", APP, "migrate", "--json"),
        ("migrate", "--json", "--app", APP),
        ("migrate", "--app", APP, "--json"),
        ("--app", APP, "migrate", "--json", "--app", APP),  # the same value twice is fine
    ],
)
def test_app_before_or_after_the_command(sqlite_url: str, args: tuple[str, ...]) -> None:
    result = durable(sqlite_url, *args, app=None)
    assert result.code == 0, result.err
    assert "0001_core" in result.json["applied"]


def test_app_and_name_after_a_subcommand_of_a_group(sqlite_url: str) -> None:
    result = durable(sqlite_url, "schedules", "list", "--app", APP, "--name", "durable", app=None)
    assert result.code == 0, result.err
    wrong = durable(sqlite_url, "status", "--app", APP, "--name", "shop", app=None)
    assert wrong.code == 1 and "is the instance 'durable', not 'shop'" in wrong.err


def test_two_different_apps_are_refused(sqlite_url: str) -> None:
    result = durable(sqlite_url, "--app", APP, "status", "--app", "x:y", app=None)
    assert result.code == 2
    assert "--app was given twice" in result.err and "'x:y'" in result.err


def test_pending_filters_by_wait_name_and_keeps_name_for_the_instance(sqlite_url: str) -> None:
    result = durable(sqlite_url, "pending", "--wait-name", "manager", "--name", "durable", "--json")
    assert result.code == 0, result.err
    assert result.json == {"inputs": [], "events": []}


@pytest.mark.parametrize(
    ("target", "says"),
    [
        ("tests.e2e.estate_app:api", "tests.e2e.estate_app:api is a Starlette application"),
        ("tests.e2e.estate_app:answer", "tests.e2e.estate_app:answer is an int (42)"),
        (
            "tests.e2e.estate_app:not_an_app",
            "tests.e2e.estate_app:not_an_app() returned a dict ({'x': 1}) holding no Durable app",
        ),
        ("tests.e2e.estate_app:durable", "has no attribute 'durable'"),
    ],
)
def test_app_that_is_not_a_durable_app(sqlite_url: str, target: str, says: str) -> None:
    result = durable(sqlite_url, "status", "--app", target, app=None)
    assert result.code == 1
    assert says in result.err, result.err
    assert "Traceback" not in result.err
