"""The dashboard in a real browser (Debian's Chromium through playwright).

Each test serves a dashboard with uvicorn in a thread over a SQLite file, with
a worker running in this process; the cross-process test starts its run from
another Python process. Screenshots of the main pages go to test-artifacts/screenshots/
(set DURABLE_SCREENSHOTS=docs/screenshots to refresh the README's).
"""

from __future__ import annotations

import logging
import os
import re
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from durable import Durable, Workflow, step
from durable.dashboard import create_app
from durable.wait import wait_for_approval, wait_for_event
from tests.support.procs import spawn, wait_until

pytest.importorskip("playwright")
from playwright.sync_api import expect

# test artefacts; DURABLE_SCREENSHOTS=docs/screenshots refreshes the README's pictures
SHOTS = Path(
    os.environ.get("DURABLE_SCREENSHOTS")
    or Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
)
XSS = "<img src=x onerror=alert(1)>"
log = logging.getLogger("shop")


def load(order: dict[str, Any]) -> dict[str, Any]:
    log.info("loaded order %s", order.get("id"))
    return {"order": order, "total": 42, "password": "hunter2"}


def approve(ctx: dict[str, Any]) -> dict[str, Any]:
    decision = wait_for_approval("manager", prompt=f"Ship order {ctx['order'].get('id')}?")
    return {**ctx, "decision": decision}


def ship(ctx: dict[str, Any]) -> dict[str, Any]:
    return {**ctx, "shipped": True}


def flaky(ctx: dict[str, Any]) -> None:
    log.error("payment gateway said %s", XSS)
    print(f"stdout {XSS}")
    raise RuntimeError(f"card declined {XSS}")


def parcel(ctx: Any) -> Any:
    return wait_for_event("parcel_arrived")


ORDER = Workflow("process_order", [step(load), step(approve), step(ship)])
FAILING = Workflow("charge_card", [step(load), step(flaky)])
EVENTS = Workflow("await_parcel", [step(parcel)])
WORKFLOWS = [ORDER, FAILING, EVENTS]


@pytest.fixture
def app(sqlite_url: str) -> Iterator[Durable]:
    durable = Durable(sqlite_url, WORKFLOWS, pubsub="sqlite", poll_interval_seconds=0.1)
    durable.start_worker()
    yield durable
    durable.close()


@pytest.fixture
def page(context: Any) -> Any:
    return context.new_page()


def _status(app: Durable, run_id: str, *statuses: str) -> Callable[[], bool]:
    return lambda: app.get_execution(run_id).status in statuses


def test_run_started_in_another_process_appears_live(
    app: Durable, serve: Callable[[Any], str], context: Any, sqlite_url: str, tmp_path: Path
) -> None:
    # a long fallback poll: what arrives within 2 s came over the cross-process bus
    base = serve(create_app(app, poll_interval_seconds=30))
    overview, executions = context.new_page(), context.new_page()
    overview.goto(base + "/")
    executions.goto(base + "/executions")
    for p in (overview, executions):  # both pages' event streams are open
        expect(p.locator(".live-state")).to_have_text("connected", timeout=10_000)
    out = tmp_path / "started.txt"
    code = textwrap.dedent(
        f"""
        from durable import Durable, Workflow, step
        wf = Workflow("process_order", [step(lambda o: o, name="load")])
        app = Durable({sqlite_url!r}, [wf], pubsub="sqlite")
        run_id = app.start("process_order", {{"id": "from-elsewhere"}})
        open({str(out)!r}, "w").write(run_id)
        app.close()
        """
    )
    proc = spawn(["-c", code])
    wait_until(lambda: out.exists() and out.read_text() != "", 20, what="the other process")
    run_id = out.read_text()
    for p in (overview, executions):
        expect(p.locator(f'tr[data-id="{run_id}"]')).to_be_visible(timeout=2000)
    proc.wait(10)


def test_approving_an_input_completes_the_run(
    app: Durable, serve: Callable[[Any], str], page: Any
) -> None:
    base = serve(create_app(app))
    run_id = app.start(ORDER, {"id": "o-1"})
    wait_until(_status(app, run_id, "waiting"), 10, what="the run waits")
    page.goto(base + "/inputs")
    form = page.locator(f'form[action$="/executions/{run_id}/inputs/manager"]')
    expect(form.get_by_text("Ship order o-1?")).to_be_visible()
    form.get_by_role("button", name="Approve").click()
    page.wait_for_url(re.compile(r"/inputs$"))
    wait_until(_status(app, run_id, "completed"), 10, what="the run completes")
    assert app.get_execution(run_id).context["decision"] == "approved"
    page.goto(f"{base}/executions/{run_id}?tab=flow")
    expect(page.locator('g[data-node="ship"]')).to_have_attribute("data-status", "completed")


def test_cancel_and_retry_from_the_run_page(
    app: Durable, serve: Callable[[Any], str], page: Any
) -> None:
    base = serve(create_app(app))
    waiting = app.start(ORDER, {"id": "o-2"})
    failing = app.start(FAILING, {"id": "o-3"})
    wait_until(_status(app, waiting, "waiting"), 10, what="a waiting run")
    wait_until(_status(app, failing, "failed"), 10, what="a failed run")
    page.goto(f"{base}/executions/{waiting}")
    page.get_by_role("button", name=re.compile("^Cancel")).click()
    expect(page.locator(".run-head .badge")).to_have_text("cancelled")
    page.goto(f"{base}/executions/{failing}")
    page.get_by_role("button", name="Retry").click()
    wait_until(
        lambda: len([s for s in app.list_steps(failing) if s.step_name == "flaky"]) == 2,
        10,
        what="a second attempt",
    )
    page.goto(f"{base}/executions/{failing}?tab=history")
    expect(page.locator('tr[data-step="flaky"]')).to_have_count(2)
    page.goto(f"{base}/audit")
    expect(page.locator('tr[data-action="retry"][data-outcome="ok"]')).to_have_count(1)
    expect(page.locator('tr[data-action="cancel"][data-outcome="ok"]')).to_have_count(1)


def test_filters_survive_a_reload(app: Durable, serve: Callable[[Any], str], page: Any) -> None:
    base = serve(create_app(app))
    failing = app.start(FAILING, {"id": "o-4"})
    ok = app.start(ORDER, {"id": "o-5"})
    wait_until(_status(app, failing, "failed"), 10, what="a failed run")
    page.goto(base + "/executions")
    page.locator('form.filters input[name="status"][value="failed"]').check()
    page.locator('form.filters input[name="q"]').fill("input.id = o-4")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"status=failed"))
    page.reload()
    expect(page.locator('form.filters input[name="status"][value="failed"]')).to_be_checked()
    expect(page.locator('form.filters input[name="q"]')).to_have_value("input.id = o-4")
    expect(page.locator(f'tr[data-id="{failing}"]')).to_be_visible()
    expect(page.locator(f'tr[data-id="{ok}"]')).to_have_count(0)


def test_xss_payload_raises_no_dialog_on_any_tab(
    app: Durable, serve: Callable[[Any], str], page: Any
) -> None:
    base = serve(create_app(app, redact=["password"]))
    run_id = app.start(FAILING, {"id": XSS, "note": XSS})
    waiting = app.start(ORDER, {"id": XSS})
    parcel_run = app.start(EVENTS, None)
    wait_until(_status(app, run_id, "failed"), 10, what="a failed run")
    wait_until(_status(app, waiting, "waiting"), 10, what="a waiting run")
    wait_until(_status(app, parcel_run, "waiting"), 10, what="a run waiting for an event")
    dialogs: list[str] = []
    violations: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    tabs = ["summary", "flow", "timeline", "logs", "data", "history", "family"]
    paths = [f"/executions/{rid}?tab={tab}" for rid in (run_id, waiting) for tab in tabs]
    paths += ["/", "/workflows", "/executions", "/inputs", "/events", "/audit"]
    for path in paths:
        page.goto(base + path)
        page.wait_for_load_state("load")
    page.goto(f"{base}/executions/{run_id}?tab=logs")
    expect(page.locator("table.logs")).to_contain_text(XSS)
    page.goto(f"{base}/executions/{run_id}?tab=data")
    expect(page.locator("#json-input")).to_contain_text(XSS)
    expect(page.locator("#json-context")).not_to_contain_text("hunter2")
    assert dialogs == []
    assert violations == []


def test_denying_auth_gets_401_everywhere(
    app: Durable, serve: Callable[[Any], str], page: Any
) -> None:
    base = serve(create_app(app, auth=lambda request: None))
    run_id = app.start(ORDER, {"id": "o-6"})
    paths = ["/", "/workflows", "/executions", f"/executions/{run_id}", "/inputs", "/events"]
    paths += ["/schedules", "/workers", "/audit", "/stream?channels=runs", "/?partial=live"]
    for path in paths:
        response = page.goto(base + path)
        assert response is not None and response.status == 401, path
    r = page.request.post(f"{base}/executions/{run_id}/cancel", form={"csrf_token": "x"})
    assert r.status == 401
    assert page.request.get(f"{base}/static/dashboard.css").status == 200


def test_viewer_cannot_act(app: Durable, serve: Callable[[Any], str], page: Any) -> None:
    base = serve(create_app(app, auth=lambda request: "vic", roles={"vic": "viewer"}))
    run_id = app.start(ORDER, {"id": "o-7"})
    wait_until(_status(app, run_id, "waiting"), 10, what="a waiting run")
    page.goto(f"{base}/executions/{run_id}")
    expect(page.locator(".who")).to_contain_text("viewer")
    expect(page.locator("form[method=post]")).to_have_count(0)
    page.goto(f"{base}/inputs")
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    r = page.request.post(f"{base}/executions/{run_id}/cancel", form={"csrf_token": "x"})
    assert r.status == 403
    assert app.get_execution(run_id).status == "waiting"


def test_screenshots_of_the_main_pages(
    app: Durable, serve: Callable[[Any], str], page: Any
) -> None:
    base = serve(create_app(app, redact=["password"]))
    done = [app.start(ORDER, {"id": f"o-{i}"}) for i in range(4)]
    failed = app.start(FAILING, {"id": "o-9"})
    app.start(EVENTS, None)
    for run_id in done[:3]:
        wait_until(_status(app, run_id, "waiting"), 10, what="a waiting run")
        app.provide_input(run_id, "manager", "approved")
    wait_until(_status(app, failed, "failed"), 10, what="a failed run")
    for run_id in done[:3]:
        wait_until(_status(app, run_id, "completed"), 10, what="completion")
    SHOTS.mkdir(parents=True, exist_ok=True)
    shots = {
        "overview": "/",
        "executions": "/executions",
        "run-flow": f"/executions/{done[0]}?tab=flow",
        "run-timeline": f"/executions/{done[0]}?tab=timeline",
        "run-failed": f"/executions/{failed}",
        "inputs": "/inputs",
        "workflows": "/workflows",
    }
    for name, path in shots.items():
        page.goto(base + path)
        page.wait_for_load_state("load")
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
        assert (SHOTS / f"{name}.png").stat().st_size > 1000
