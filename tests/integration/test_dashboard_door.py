"""The dashboard's door, on SQLite and PostgreSQL: Host allowlist, Secure cookie,
hostile form values refused with nothing stored, search that one bad row cannot
break, literal id prefixes, no credential in any page."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from durable import Durable, Workflow, step
from durable.dashboard import create_app
from durable.dashboard.filters import parse_search
from durable.storage import ExecutionFilter
from durable.testing import TestApp
from durable.wait import wait_for_event, wait_for_input

BASE = "http://localhost"


def await_parcel(ctx: Any) -> Any:
    return wait_for_event("parcel")


def ask(ctx: Any) -> Any:
    return wait_for_input("answer")


def keep(ctx: Any) -> Any:
    return ctx


EVENT = Workflow("parcel", [step(await_parcel)])
ASK = Workflow("ask", [step(ask)])
KEEP = Workflow("keep", [step(keep)])


@pytest.fixture
def t(db_url: str) -> Iterator[TestApp]:
    with TestApp([EVENT, ASK, KEEP], url=db_url, max_value_bytes=4096) as t:
        yield t


def client(app: Durable, base: str = BASE, **options: Any) -> TestClient:
    return TestClient(create_app(app, **options), base_url=base)


def token(c: TestClient, path: str = "/") -> str:
    found = re.search(r'name="csrf-token" content="([0-9a-f]+)"', c.get(path).text)
    assert found, "no CSRF token on the page"
    return found.group(1)


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:8080", "localhost.evil.example", "127.0.0.1.nip.io", ""]
)
def test_other_host_names_are_refused(t: TestApp, host: str) -> None:
    c = client(t.app)
    for path in ("/", "/executions", "/stream", "/static/dashboard.css"):
        r = c.get(path, headers={"host": host})
        assert r.status_code == 400, (path, host)
        assert "not allowed" in r.text and "allowed_hosts" in r.text
        assert "set-cookie" not in r.headers
    run_id = t.app.start(EVENT, None)
    t.run_until_idle()
    r = c.post(f"/executions/{run_id}/cancel", headers={"host": host})
    assert r.status_code == 400
    assert t.app.get_execution(run_id).status == "waiting"


@pytest.mark.parametrize("host", ["localhost", "localhost:8080", "127.0.0.1:9", "[::1]:8080"])
def test_loopback_names_are_allowed_by_default(t: TestApp, host: str) -> None:
    assert client(t.app).get("/", headers={"host": host}).status_code == 200


def test_allowed_hosts_are_configurable(t: TestApp) -> None:
    c = client(t.app, allowed_hosts=["ops.example.com", "*.internal"])
    assert c.get("/", headers={"host": "ops.example.com:443"}).status_code == 200
    assert c.get("/", headers={"host": "a.b.internal"}).status_code == 200
    assert c.get("/", headers={"host": "internal"}).status_code == 400
    assert c.get("/", headers={"host": "localhost"}).status_code == 400  # the list replaces
    assert client(t.app, allowed_hosts=["*"]).get("/", headers={"host": "x.y"}).status_code == 200


def test_the_csrf_cookie_is_secure_over_https(t: TestApp) -> None:
    plain = client(t.app).get("/").headers["set-cookie"]
    secure = client(t.app, base="https://localhost").get("/").headers["set-cookie"]
    assert "HttpOnly" in plain and "Secure" not in plain
    assert "Secure" in secure and "SameSite=Strict" in secure


BAD_JSON = [
    '{"a\\u0000": 1}',
    '"nul \\u0000 inside"',
    '{"file": "\\udcff"}',
    "[" * 150 + "]" * 150,
    '"' + "x" * 5000 + '"',
]


@pytest.mark.parametrize("raw", BAD_JSON)
def test_event_form_refuses_unstorable_payloads(t: TestApp, raw: str) -> None:
    run_id = t.app.start(EVENT, None)
    t.run_until_idle()
    c = client(t.app)
    r = c.post(
        f"/executions/{run_id}/events",
        data={"csrf_token": token(c), "name": "parcel", "payload": raw},
    )
    assert r.status_code == 422
    assert "cannot be stored" in r.text or "too large" in r.text
    t.run_until_idle()
    assert t.app.get_execution(run_id).status == "waiting"
    t.send_event(run_id, "parcel", "the real one")  # nothing was buffered before it
    assert t.app.get_execution(run_id).result == "the real one"
    outcomes = [e["outcome"] for e in t.app.query.audit_log()]
    assert outcomes == ["error"]


@pytest.mark.parametrize("raw", BAD_JSON)
def test_input_form_refuses_unstorable_values(t: TestApp, raw: str) -> None:
    run_id = t.app.start(ASK, None)
    t.run_until_idle()
    c = client(t.app)
    r = c.post(f"/executions/{run_id}/inputs/answer", data={"csrf_token": token(c), "value": raw})
    assert r.status_code == 422
    assert [i.input_name for i in t.app.list_pending_inputs()] == ["answer"]
    t.provide_input(run_id, "answer", 7)
    assert t.app.get_execution(run_id).result == 7


def test_event_name_and_cancel_reason_forms_refuse_nul(t: TestApp) -> None:
    run_id = t.app.start(EVENT, None)
    t.run_until_idle()
    c = client(t.app)
    r = c.post(
        f"/executions/{run_id}/events",
        data={"csrf_token": token(c), "name": "parcel\x00", "payload": "1"},
    )
    assert r.status_code == 422
    r = c.post(
        f"/executions/{run_id}/cancel", data={"csrf_token": token(c), "reason": "stop\x00now"}
    )
    assert r.status_code == 422 and "cancel reason" in r.text
    assert t.app.get_execution(run_id).status == "waiting"


@pytest.mark.parametrize(
    "q", ['context.a = "\\ud800"', 'input.a = "\\u0000"', 'context.a = {"k\\u0000": 1}']
)
def test_unstorable_search_values_are_refused_not_500(t: TestApp, q: str) -> None:
    t.app.start(KEEP, {"a": 1})
    c = client(t.app)
    r = c.get("/executions", params={"q": q})
    assert r.status_code == 400 and "cannot be stored" in r.text
    r = c.get("/executions/bulk", params={"q": q, "action": "cancel"})
    assert r.status_code == 400


def _poison_context(url: str, run_id: str) -> None:
    """A context as an older version could store it: a NUL escape in a key."""
    text = '{"a": 1, "k\\u0000": 2}'
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.execute("UPDATE executions SET context = ? WHERE id = ?", (text, run_id))
    else:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("UPDATE durable.executions SET context = %s WHERE id = %s", (text, run_id))


def test_one_bad_row_does_not_break_context_search(t: TestApp, db_url: str) -> None:
    good = t.app.start(KEEP, {"a": 1})
    bad = t.app.start(KEEP, {"a": 1})
    t.run_until_idle()
    _poison_context(db_url, bad)
    c = client(t.app)
    r = c.get("/executions", params={"q": "context.a = 1"})
    assert r.status_code == 200 and 'class="error"' not in r.text
    assert f'data-id="{good}"' in r.text
    n = t.app.query.count_executions(ExecutionFilter(), parse_search("context.a = 1"))
    assert n in (1, 2)  # SQLite reads the row, PostgreSQL skips it; neither fails
    assert c.get("/executions/bulk", params={"q": "context.a = 1", "action": "cancel"}).is_success


def test_id_filters_are_literal(t: TestApp) -> None:
    ids = [t.app.start(KEEP, {"n": i}) for i in range(3)]
    c = client(t.app)
    for prefix in ("_", "__", "-", ids[0][:3] + "_"):
        page = c.get("/executions", params={"id": prefix}).text
        assert not any(f'data-id="{i}"' in page for i in ids), prefix
        preview = c.get("/executions/bulk", params={"id": prefix, "action": "cancel"})
        assert preview.status_code == 200
        assert not any(i in preview.text for i in ids), prefix
    page = c.get("/executions", params={"id": ids[1]}).text
    assert f'data-id="{ids[1]}"' in page and f'data-id="{ids[0]}"' not in page
    assert c.get("/executions/_").status_code == 404


@pytest.mark.parametrize("path", ["/executions/a%00b", "/executions/%ED%B3%BF", "/executions/%00"])
def test_unstorable_ids_are_not_found(t: TestApp, path: str) -> None:
    assert client(t.app).get(path).status_code == 404
