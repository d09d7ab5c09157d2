"""Dashboard routes and actions through the ASGI app, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from durable import Workflow, step
from durable.dashboard import Principal, create_app
from durable.testing import TestApp
from durable.wait import wait_for_approval, wait_for_event, wait_for_form

XSS = "<img src=x onerror=alert(1)>"


def load(order: dict[str, Any]) -> dict[str, Any]:
    return {"order": order, "password": "hunter2", "note": XSS}


def approve(ctx: dict[str, Any]) -> dict[str, Any]:
    return {**ctx, "decision": wait_for_approval("manager", prompt=f"Ship {XSS}?")}


def boom(ctx: dict[str, Any]) -> None:
    raise ValueError(f"bad order {XSS}")


def ask_form(ctx: Any) -> Any:
    return wait_for_form(
        "details",
        fields=[{"name": "qty", "type": "integer"}, {"name": "gift", "type": "boolean"}],
    )


def await_parcel(ctx: Any) -> Any:
    return wait_for_event("parcel")


ORDER = Workflow("order", [step(load), step(approve)])
FAILING = Workflow("failing", [step(load), step(boom)])
FORM = Workflow("form", [step(ask_form)])
EVENT = Workflow("parcel", [step(await_parcel)])
ALL = [ORDER, FAILING, FORM, EVENT]

BASE = "http://localhost"  # the dashboard answers to loopback names only, by default


@pytest.fixture
def t(db_url: str) -> Iterator[TestApp]:
    with TestApp(ALL, url=db_url) as t:
        yield t


def client(t: TestApp, **options: Any) -> TestClient:
    options.setdefault("redact", ["password"])
    return TestClient(create_app(t.app, **options), base_url=BASE)


def token(c: TestClient, path: str = "/") -> str:
    found = re.search(r'name="csrf-token" content="([0-9a-f]+)"', c.get(path).text)
    assert found, "no CSRF token on the page"
    return found.group(1)


def pages_for(run_id: str) -> list[str]:
    tabs = ["summary", "flow", "timeline", "logs", "data", "history", "family"]
    return [
        "/",
        "/?window=1h",
        "/?partial=live",
        "/workflows",
        "/executions",
        "/executions?status=failed&status=waiting",
        "/executions/bulk?action=retry",
        "/inputs",
        "/events",
        "/schedules",
        "/workers",
        "/audit",
        *(f"/executions/{run_id}?tab={tab}" for tab in tabs),
    ]


def test_every_page_renders_escaped_and_redacted(t: TestApp) -> None:
    ok = t.app.start(ORDER, {"id": "o-7", "secret": {"password": "p4ss"}})
    bad = t.app.start(FAILING, {"id": "o-8"})
    t.run_until_idle()
    c = client(t)
    for run_id in (ok, bad):
        for path in pages_for(run_id):
            r = c.get(path)
            assert r.status_code == 200, path
            assert XSS not in r.text, path
            assert "hunter2" not in r.text and "p4ss" not in r.text, path
            assert "default-src 'none'" in r.headers["content-security-policy"]
    data = c.get(f"/executions/{ok}?tab=data").text
    assert "&lt;img src=x onerror=alert(1)&gt;" in data
    assert "••••••" in data
    summary = c.get(f"/executions/{bad}").text
    assert "ValueError" in summary and "bad order &lt;img" in summary


def test_flow_is_painted_and_workflows_listed(t: TestApp) -> None:
    run_id = t.app.start(FAILING, {"id": "o-1"})
    t.run_until_idle()
    c = client(t)
    flow = c.get(f"/executions/{run_id}?tab=flow").text
    assert re.search(r'data-node="load" data-status="completed"', flow)
    assert re.search(r'data-node="boom" data-status="failed"', flow)
    assert 'class="edge edge-next taken"' in flow
    listed = c.get("/workflows").text
    for wf in ALL:  # every registered workflow, run or not
        assert f'data-workflow="{wf.name}"' in listed
    assert "never run" in listed


def test_filters_search_and_pagination(t: TestApp) -> None:
    ids = [t.app.start(ORDER, {"id": f"o-{i}"}) for i in range(55)]
    failed = t.app.start(FAILING, {"id": "o-x"})
    t.run_until_idle()
    c = client(t)
    r = c.get("/executions", params={"q": "input.id = o-7"})
    assert r.status_code == 200
    assert ids[7] in r.text and ids[8] not in r.text
    r = c.get("/executions", params=[("status", "failed")])
    assert failed in r.text and ids[0] not in r.text
    r = c.get("/executions", params={"id": failed[:30]})
    assert failed in r.text and ids[1] not in r.text
    first = c.get("/executions", params={"workflow": "order"}).text
    more = re.search(r'rel="next" href="([^"]+)"', first)
    assert more, "a second page"
    second = c.get(more.group(1).replace("&amp;", "&")).text
    shown = set(re.findall(r'data-id="([^"]+)"', first)) | set(
        re.findall(r'data-id="([^"]+)"', second)
    )
    assert shown == set(ids)
    for evil in ("' OR 1=1 --", "<script>", "x" * 500):
        r = c.get("/executions", params={"parent": evil, "id": evil, "status": evil})
        assert r.status_code == 400
        assert "<script>" not in r.text
    assert c.get("/executions", params={"q": "input.a' = 1"}).status_code == 400
    assert c.get("/executions", params={"cursor": "nope"}).status_code == 200
    assert c.get("/executions/not a valid id!").status_code == 404
    assert c.get("/executions/0000").status_code == 404


def test_denying_auth_guards_every_route(t: TestApp) -> None:
    run_id = t.app.start(ORDER, {"id": "o-1"})
    t.run_until_idle()
    for answer, code in ((None, 401), (False, 403)):
        c = client(t, auth=lambda request, a=answer: a)
        for path in [*pages_for(run_id), "/stream?channels=runs"]:
            assert c.get(path).status_code == code, path
        for path in (f"/executions/{run_id}/cancel", f"/executions/{run_id}/inputs/manager"):
            assert c.post(path, data={"value": "approved"}).status_code == code
        assert c.get("/static/vendor/htmx.min.js").status_code == 200
    assert t.app.get_execution(run_id).status == "waiting"


def test_viewer_sees_no_controls_and_forged_post_is_refused(t: TestApp) -> None:
    run_id = t.app.start(ORDER, {"id": "o-1"})
    t.run_until_idle()
    asgi = create_app(t.app, auth=lambda request: "vera", roles={"vera": "viewer"})
    c = TestClient(asgi, base_url=BASE)
    for path in pages_for(run_id):
        assert 'method="post"' not in c.get(path).text, path
    # a hand-made request with a valid token for this viewer's cookie
    forged = asgi.state.dashboard.csrf.token(c.cookies["durable_csrf"], Principal("vera", "viewer"))
    r = c.post(
        f"/executions/{run_id}/inputs/manager", data={"value": "approved", "csrf_token": forged}
    )
    assert r.status_code == 403
    assert t.app.get_execution(run_id).status == "waiting"
    entry = t.app.query.audit_log()[0]
    assert (entry["actor"], entry["role"], entry["outcome"]) == ("vera", "viewer", "denied")


def test_actions_need_csrf_and_are_audited(t: TestApp) -> None:
    run_id = t.app.start(ORDER, {"id": "o-1"})
    t.run_until_idle()
    c = client(t, auth=lambda request: Principal("olga", "operator"))
    path = f"/executions/{run_id}/inputs/manager"
    assert c.post(path, data={"value": "approved"}).status_code == 403
    assert c.post(path, data={"value": "approved", "csrf_token": "0" * 64}).status_code == 403
    other = TestClient(create_app(t.app), base_url=BASE)  # another browser: another cookie
    assert c.post(path, data={"value": "approved", "csrf_token": token(other)}).status_code == 403
    r = c.post(
        path,
        data={"value": "approved", "csrf_token": token(c), "next": "/inputs"},
        follow_redirects=False,
        headers={"origin": BASE},
    )
    assert r.status_code == 303 and r.headers["location"] == "/inputs"
    t.run_until_idle()
    assert t.app.get_execution(run_id).status == "completed"
    log = t.app.query.audit_log(target=run_id)
    assert [e["outcome"] for e in log] == ["ok", "denied", "denied", "denied"]
    assert log[0]["actor"] == "olga" and log[0]["action"] == "provide_input"
    page = c.get("/audit").text
    assert "provide_input" in page and "olga" in page


def test_cross_origin_post_is_refused(t: TestApp) -> None:
    run_id = t.app.start(ORDER, {"id": "o-1"})
    t.run_until_idle()
    c = client(t)
    r = c.post(
        f"/executions/{run_id}/cancel",
        data={"csrf_token": token(c)},
        headers={"origin": "https://evil.example"},
    )
    assert r.status_code == 403
    assert t.app.get_execution(run_id).status == "waiting"


def test_cancel_retry_and_bulk(t: TestApp) -> None:
    waiting = t.app.start(ORDER, {"id": "o-1"})
    failed = [t.app.start(FAILING, {"id": f"f-{i}"}) for i in range(3)]
    t.run_until_idle()
    c = client(t)
    csrf = token(c)
    assert c.post(f"/executions/{waiting}/cancel", data={"csrf_token": csrf}).status_code == 200
    assert t.app.get_execution(waiting).status == "cancelled"
    r = c.post(f"/executions/{waiting}/retry", data={"csrf_token": csrf})
    assert r.status_code == 409 and "only failed executions" in r.text
    assert c.post(f"/executions/{failed[0]}/retry", data={"csrf_token": csrf}).status_code == 200
    assert t.app.get_execution(failed[0]).status == "pending"
    preview = c.get("/executions/bulk", params={"action": "retry", "status": "failed"}).text
    assert re.search(r'data-count="matching">2<', preview)
    ids = re.findall(r'name="ids" value="([^"]+)"', preview)
    assert sorted(ids) == sorted(failed[1:])
    ids.append("not-an-execution")
    r = c.post("/executions/bulk", data={"csrf_token": csrf, "action": "retry", "ids": ids})
    assert r.status_code == 200
    outcomes = re.findall(r'data-outcome="(\w+)"', r.text)
    assert sorted(outcomes) == ["error", "ok", "ok"]
    assert {t.app.get_execution(i).status for i in failed} == {"pending"}
    actions = [e["action"] for e in t.app.query.audit_log()]
    assert actions.count("bulk_retry") == 3


def test_form_input_errors_are_shown_in_place(t: TestApp) -> None:
    run_id = t.app.start(FORM, None)
    t.run_until_idle()
    c = client(t)
    form = c.get("/inputs").text
    assert 'name="field.qty"' in form
    r = c.post(
        f"/executions/{run_id}/inputs/details",
        data={"csrf_token": token(c), "field.qty": "many", "field.gift": "true"},
    )
    assert r.status_code == 422
    assert re.search(r'data-field="qty">must be a whole number<', r.text)
    assert 'value="many"' in r.text  # what was typed is kept
    assert t.app.query.audit_log()[0]["outcome"] == "invalid"
    r = c.post(
        f"/executions/{run_id}/inputs/details",
        data={"csrf_token": token(c), "field.qty": "3", "field.gift": "true"},
    )
    assert r.status_code == 200
    t.run_until_idle()
    assert t.app.get_execution(run_id).result == {"qty": 3, "gift": True}


def test_send_event_with_json_payload(t: TestApp) -> None:
    run_id = t.app.start(EVENT, None)
    t.run_until_idle()
    c = client(t)
    assert 'data-event="parcel"' in c.get("/events").text
    path = f"/executions/{run_id}/events"
    r = c.post(path, data={"csrf_token": token(c), "name": "parcel", "payload": "{nope"})
    assert r.status_code == 422 and "not valid JSON" in r.text
    r = c.post(
        path, data={"csrf_token": token(c), "name": "parcel", "payload": '{"password": "pw1"}'}
    )
    assert r.status_code == 200
    t.run_until_idle()
    assert t.app.get_execution(run_id).result == {"password": "pw1"}
    assert "pw1" not in c.get("/audit").text  # redacted in the audit log too


def test_schedules_page_and_actions(t: TestApp) -> None:
    c = client(t)
    assert c.get("/schedules").status_code == 200
    t.app.schedules.create("nightly", ORDER, cron="0 3 * * *", input={"id": "n"})
    page = c.get("/schedules").text
    assert 'data-schedule="nightly"' in page and "0 3 * * *" in page
    csrf = token(c)
    assert c.post("/schedules/nightly/disable", data={"csrf_token": csrf}).status_code == 200
    assert t.app.schedules.get("nightly").enabled is False
    assert c.post("/schedules/nightly/trigger", data={"csrf_token": csrf}).status_code == 200
    assert len(t.app.list_executions(schedule="nightly").items) == 1
    assert [e["action"] for e in t.app.query.audit_log()] == [
        "schedule_trigger",
        "schedule_disable",
    ]


def test_mounted_under_a_prefix(t: TestApp) -> None:
    run_id = t.app.start(ORDER, {"id": "o-1"})
    t.run_until_idle()
    host = Starlette(routes=[Mount("/ops", app=create_app(t.app))])
    c = TestClient(host, base_url=BASE)
    page = c.get("/ops/executions")
    assert page.status_code == 200
    assert f'href="/ops/executions/{run_id}"' in page.text
    assert 'src="/ops/static/vendor/htmx.min.js"' in page.text
    assert "Path=/ops" in page.headers["set-cookie"]
    csrf = token(c, "/ops/")
    r = c.post(
        f"/ops/executions/{run_id}/cancel",
        data={"csrf_token": csrf, "next": "https://evil.example/"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == f"/ops/executions/{run_id}"
