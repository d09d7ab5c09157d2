"""DNS rebinding, in a real browser: a page of ``evil.example`` whose name now
resolves to 127.0.0.1 must not read the dashboard nor act on it.

Chromium maps evil.example to 127.0.0.1 (``--host-resolver-rules``). The
attacker's page (what evil.example served before its DNS answer changed) comes
from the same port as the dashboard, as it would from the attacker's server;
its script then talks to its own origin ``http://evil.example:<port>``, which
now reaches the dashboard, exactly as after a rebinding. With the default Host allowlist the attack gets nothing;
with ``allowed_hosts=["*"]`` the same script succeeds, so the test can fail.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from starlette.responses import HTMLResponse

from durable import Durable, Workflow, step
from durable.dashboard import create_app
from durable.wait import wait_for_event
from tests.support.procs import wait_until

pytest.importorskip("playwright")

from tests.e2e.conftest import ARGS, CHROMIUM

ATTACK = """<!doctype html><title>cute cats</title><script>
window.attack = (async () => {
  const out = {};
  const list = await fetch("/executions");
  out.status = list.status;
  const text = await list.text();
  out.sawRun = text.includes(RUN_ID);
  const m = text.match(/name="csrf-token" content="([0-9a-f]+)"/);
  out.token = m ? m[1] : null;
  const body = new URLSearchParams({csrf_token: out.token || "", reason: "pwned"});
  const cancel = await fetch("/executions/" + RUN_ID + "/cancel", {method: "POST", body});
  out.cancelStatus = cancel.status;
  return out;
})();
</script>"""


def parcel(ctx: Any) -> Any:
    return wait_for_event("parcel")


EVENTS = Workflow("await_parcel", [step(parcel)])


@pytest.fixture
def app(sqlite_url: str) -> Iterator[Durable]:
    durable = Durable(sqlite_url, [EVENTS], poll_interval_seconds=0.1)
    durable.start_worker()
    yield durable
    durable.close()


@pytest.fixture
def rebinding_browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI") or os.environ.get("DURABLE_REQUIRE_SERVICES"):
            pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
        pytest.skip("browser tests need Chromium: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        rules = "--host-resolver-rules=MAP evil.example 127.0.0.1"
        b = p.chromium.launch(executable_path=CHROMIUM, args=[*ARGS, rules])
        yield b
        b.close()


def with_attack_page(dashboard: Any, run_id: str) -> Any:
    """The dashboard, and the attacker's page at /cats.html on the same port."""
    page = HTMLResponse(ATTACK.replace("RUN_ID", repr(run_id)))

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/cats.html":
            await page(scope, receive, send)
        else:
            await dashboard(scope, receive, send)

    return app


def _attack(browser: Any, base: str) -> dict[str, Any]:
    port = urlsplit(base).port
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"http://evil.example:{port}/cats.html")
        result: dict[str, Any] = page.evaluate("window.attack")
        return result
    finally:
        context.close()


def _waiting(app: Durable, run_id: str) -> Callable[[], bool]:
    return lambda: app.get_execution(run_id).status == "waiting"


def test_a_rebound_page_reads_nothing_and_cancels_nothing(
    app: Durable, serve: Callable[[Any], str], rebinding_browser: Any
) -> None:
    run_id = app.start(EVENTS, None)
    wait_until(_waiting(app, run_id), 10, what="the run waits")
    base = serve(with_attack_page(create_app(app), run_id))
    result = _attack(rebinding_browser, base)
    assert result["status"] == 400
    assert result["sawRun"] is False and result["token"] is None
    assert result["cancelStatus"] == 400
    assert app.get_execution(run_id).status == "waiting"
    assert app.query.audit_log() == []


def test_without_the_allowlist_the_same_attack_works(
    app: Durable, serve: Callable[[Any], str], rebinding_browser: Any
) -> None:
    run_id = app.start(EVENTS, None)
    wait_until(_waiting(app, run_id), 10, what="the run waits")
    dashboard = create_app(app, allowed_hosts=["*"])  # what the dashboard used to do
    base = serve(with_attack_page(dashboard, run_id))
    result = _attack(rebinding_browser, base)
    assert result["status"] == 200 and result["sawRun"] is True and result["token"]
    assert app.get_execution(run_id).status == "cancelled"
