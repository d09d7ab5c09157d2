"""list_executions(search=...): the dashboard's search from the API (and `durable list --search`)."""

from __future__ import annotations

import pytest

from durable import Workflow, step
from durable.errors import DurableError
from durable.testing import TestApp

CHARGE = Workflow(
    "charge", [step(lambda o: {"charge_id": f"ch-{o['id']}", "total": o["n"]}, name="pay")]
)


def test_search_by_input_context_and_result():
    with TestApp([CHARGE]) as t:
        ids = {k: t.app.start(CHARGE, {"id": k, "n": n}) for k, n in (("o-1", 5), ("o-2", 7))}
        t.run_until_idle()
        found = t.app.list_executions(search="input.id = o-2")
        assert [e.id for e in found.items] == [ids["o-2"]]
        assert [e.id for e in t.app.list_executions(search="result.charge_id = ch-o-1").items] == [
            ids["o-1"]
        ]
        both = t.app.list_executions(search="context.total = 7 and input.id = o-2")
        assert [e.id for e in both.items] == [ids["o-2"]]
        assert t.app.list_executions(search='input.n = "7"').items == []  # typed: 7 is not "7"
        assert t.app.list_executions(search="input.id = o-1", status="failed").items == []


@pytest.mark.parametrize("bad", ["id = 3", "input = 3", "", 7, "input.a b = 1"])
def test_a_search_that_cannot_be_read_is_refused(bad):
    with TestApp([CHARGE]) as t, pytest.raises(DurableError, match="search"):
        t.app.list_executions(search=bad)
