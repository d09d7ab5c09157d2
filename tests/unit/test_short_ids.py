"""One short id form (the id's last group), accepted wherever an id is."""

from __future__ import annotations

import pytest

from durable import Durable, Workflow, step
from durable.errors import DurableError, ExecutionNotFoundError
from durable.ids import SHORT_ID_LENGTH, short_id

WF = Workflow("noop", [step(lambda x: x, name="noop")])


def test_runs_started_together_have_distinct_short_ids_that_resolve() -> None:
    with Durable("memory://", [WF]) as app:
        ids = app.start_many(WF, list(range(200)))
        assert len({i[:13] for i in ids}) < len(ids)  # the timestamp digits collide
        shorts = [short_id(i) for i in ids]
        assert len(set(shorts)) == len(ids)
        assert all(len(s) == SHORT_ID_LENGTH for s in shorts)
        for full, short in zip(ids[:20], shorts[:20], strict=True):
            assert app.query.resolve_id(short) == full
            assert app.query.resolve_id(short.upper()) == full
            assert app.query.resolve_id(full) == full


def test_an_ambiguous_or_unknown_short_id_is_refused_clearly() -> None:
    with Durable("memory://", [WF]) as app:
        app.migrate()
        row = app.engine.execution_row(WF, 1)
        twin = {**app.engine.execution_row(WF, 2)}
        twin["id"] = (
            row["id"][:-SHORT_ID_LENGTH].replace("0", "f", 1) + row["id"][-SHORT_ID_LENGTH:]
        )
        app.engine.insert([row, twin])
        with pytest.raises(DurableError, match="ambiguous"):
            app.query.resolve_id(short_id(row["id"]))
        with pytest.raises(ExecutionNotFoundError, match="or ends with it"):
            app.query.resolve_id("0123456789ab")
