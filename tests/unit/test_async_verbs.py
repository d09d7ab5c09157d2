"""Every verb the README lists has an async form, and the README says so truly."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from durable import Durable
from durable.scheduler.manager import ScheduleManager
from durable.twins import twin_names

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()

# verbs of the README's API table that are not calls on an app
NOT_VERBS = {"Durable"}


def _readme_api_verbs() -> set[str]:
    section = README.split("## The API", 1)[1].split("\n## ", 1)[0]
    verbs: set[str] = set()
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        first_cell = line.split(" | ", 1)[0]
        verbs |= set(re.findall(r"`(\w+)\(", first_cell))
        verbs |= {name for name in re.findall(r"`(\w+)`", first_cell) if name.islower()}
    return verbs - NOT_VERBS


def test_the_readme_claims_an_async_form_for_every_verb() -> None:
    assert "| verb (each also `<verb>_async`) |" in README


def test_every_readme_verb_of_the_app_has_an_async_twin() -> None:
    verbs = _readme_api_verbs()
    assert {"start", "result", "close", "start_worker", "subscribe"} <= verbs  # the parse works
    twins = twin_names(Durable)
    attributes = {name for name in verbs if not callable(getattr(Durable, name, None))}
    missing = sorted(v for v in verbs - attributes if v not in twins)
    assert missing == [], f"README verbs without an async form: {missing}"
    assert attributes == {"pubsub", "schedules"}  # objects, not verbs


def test_every_public_sync_verb_of_the_app_has_a_twin_and_no_twin_is_orphaned() -> None:
    twins = twin_names(Durable)
    public = {
        name
        for name, value in vars(Durable).items()
        if inspect.isfunction(value)
        and not name.startswith("_")
        and not name.endswith("_async")
        and not inspect.iscoroutinefunction(value)
    }
    # pure in-memory helpers that never touch the database or wait
    in_memory = {"register", "get_workflow", "worker", "with_schema"}  # + a CLI set-up helper
    assert sorted(public - in_memory - set(twins)) == []
    assert all(hasattr(Durable, verb) for verb in twins)
    for twin in twins.values():
        assert inspect.iscoroutinefunction(getattr(Durable, twin)), twin


def test_schedule_manager_verbs_named_in_the_readme_have_twins() -> None:
    line = re.search(r"app\.schedules\.([\w/\n]+?)`, each with an `_async` twin", README)
    assert line is not None
    verbs = set(line.group(1).replace("\n", "").split("/"))
    assert verbs == {
        "create",
        "get",
        "list",
        "update",
        "delete",
        "enable",
        "disable",
        "trigger",
        "next_fire_times",
    }
    assert verbs <= set(twin_names(ScheduleManager))


def test_async_context_manager_and_lifecycle_exist() -> None:
    for name in ("__aenter__", "__aexit__", "start_worker_async", "stop_worker_async"):
        assert inspect.iscoroutinefunction(getattr(Durable, name)), name
    assert inspect.iscoroutinefunction(Durable.close_async)
