"""`durable schedules ...` as subprocesses against app.schedules."""

from __future__ import annotations

from tests.e2e.cli_support import durable


def test_schedule_lifecycle(db_url: str) -> None:
    assert durable(db_url, "migrate").code == 0
    made = durable(
        db_url,
        "schedules",
        "create",
        "nightly",
        "greet",
        "--cron",
        "0 3 * * *",
        "--tz",
        "Europe/Paris",
        "--input",
        '"night"',
        "--json",
    )
    assert made.code == 0, made.err
    assert made.json["name"] == "nightly" and made.json["workflow_name"] == "greet"
    assert made.json["cron"] == "0 3 * * *" and made.json["timezone"] == "Europe/Paris"
    assert made.json["enabled"] is True and made.json["next_run_at"].endswith("Z")

    listed = durable(db_url, "schedules", "list", "--json").json
    assert [s["name"] for s in listed] == ["nightly"]
    nxt = durable(db_url, "schedules", "next", "nightly", "-n", "3", "--json").json
    assert len(nxt["next"]) == 3 and all("T03:00:00" in t for t in nxt["next"])

    changed = durable(db_url, "schedules", "update", "nightly", "--every", "2h", "--json")
    assert changed.code == 0, changed.err
    assert changed.json["every_seconds"] == 7200 and changed.json["cron"] is None
    off = durable(db_url, "schedules", "disable", "nightly", "--json").json
    assert off["enabled"] is False
    assert durable(db_url, "schedules", "list", "--enabled", "--json").json == []
    assert durable(db_url, "schedules", "enable", "nightly", "--json").json["enabled"] is True

    fired = durable(db_url, "schedules", "trigger", "nightly", "--json")
    assert fired.code == 0, fired.err
    run = durable(db_url, "inspect", fired.json["id"], "--json").json["execution"]
    assert (
        run["workflow_name"] == "greet"
        and run["schedule_name"] == "nightly"
        and run["input"] == "night"
    )
    by_schedule = durable(db_url, "list", "--schedule", "nightly", "--json").json
    assert [e["id"] for e in by_schedule["items"]] == [fired.json["id"]]
    shown = durable(db_url, "schedules", "show", "nightly")
    assert shown.code == 0 and "nightly" in shown.out

    for args, code, message in [
        (("schedules", "show", "nope"), 1, "nope"),
        (("schedules", "create", "x", "greet"), 2, "exactly one of --cron or --every"),
        (("schedules", "create", "x", "greet", "--cron", "not a cron"), 1, "cron"),
        (("schedules", "create", "x", "nope", "--every", "1h"), 1, "unknown workflow"),
        (("schedules", "update", "nightly"), 2, "nothing to change"),
    ]:
        result = durable(db_url, *args)
        assert result.code == code, (args, result.err)
        assert message in result.err, (args, result.err)
    assert durable(db_url, "schedules", "delete", "nightly", "--json").json == {
        "name": "nightly",
        "deleted": True,
    }
    assert durable(db_url, "schedules", "list", "--json").json == []
