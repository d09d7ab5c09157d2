"""After an action the dashboard confirms it once; the favicon lives under the prefix."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

from durable import Workflow, step
from durable.dashboard import create_app
from durable.testing import TestApp
from durable.wait import wait_for_event


def hold(ctx: object) -> object:
    return wait_for_event("go")


HOLD = Workflow("hold", [step(hold)])


def _token(c: TestClient, path: str) -> str:
    found = re.search(r'name="csrf-token" content="([0-9a-f]+)"', c.get(path).text)
    assert found
    return found.group(1)


def test_an_action_is_confirmed_once_on_the_next_page() -> None:
    with TestApp([HOLD]) as t:
        run_id = t.app.start(HOLD, {})
        t.run_until_idle()
        c = TestClient(create_app(t.app), base_url="http://localhost")
        page = f"/executions/{run_id}"
        r = c.post(f"{page}/cancel", data={"csrf_token": _token(c, page)})
        assert r.status_code == 200 and t.app.get_execution(run_id).status == "cancelled"
        assert '<p class="flash" role="status">cancelled</p>' in r.text
        again = c.get(page).text
        assert 'class="flash"' not in again  # shown once


def test_the_favicon_is_served_under_the_mount_prefix() -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    with TestApp([HOLD]) as t:
        host = Starlette(routes=[Mount("/ops", app=create_app(t.app))])
        c = TestClient(host, base_url="http://localhost")
        html = c.get("/ops/").text
        [icon] = re.findall(r'<link rel="icon" href="([^"]+)"', html)
        assert icon == "/ops/static/favicon.svg"
        got = c.get(icon)
        assert got.status_code == 200 and got.headers["content-type"].startswith("image/svg")
