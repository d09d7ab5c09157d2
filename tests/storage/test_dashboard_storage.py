"""The DashboardStorage contract (search, counts, charts, audit), on every backend."""

from __future__ import annotations

from durable.storage import ExecutionFilter, StorageBackend, open_storage
from durable.storage.protocols import AuditEntry, JsonMatch

from .rows import NOW, execution, finish


def _store(backend: StorageBackend) -> list[dict]:
    rows = [
        execution(input='{"customer":{"id":7,"tier":"gold"}}', queue="first", created=0),
        execution(input='{"customer":{"id":"7"}}', workflow_name="other", created=1),
        execution(input='{"customer":{"id":8}}', context='{"region":"eu"}', created=2),
    ]
    for row in rows:
        backend.create_executions(
            [{k: v for k, v in row.items() if k != "created"}], NOW + row["created"]
        )
    return rows


def test_search_filters_matches_json_typed_and_pages(backend: StorageBackend) -> None:
    rows = _store(backend)
    everything = backend.dashboard_search_executions(ExecutionFilter(), (), 10, None)
    assert [r["id"] for r in everything] == [r["id"] for r in reversed(rows)]
    seven = JsonMatch("input", ("customer", "id"), 7)
    assert [
        r["id"] for r in backend.dashboard_search_executions(ExecutionFilter(), [seven], 10, None)
    ] == [rows[0]["id"]]
    text_seven = JsonMatch("input", ("customer", "id"), "7")
    found = backend.dashboard_search_executions(ExecutionFilter(), [text_seven], 10, None)
    assert [r["id"] for r in found] == [rows[1]["id"]]
    eu = JsonMatch("context", ("region",), "eu")
    both = backend.dashboard_search_executions(ExecutionFilter(), [eu], 10, None)
    assert [r["id"] for r in both] == [rows[2]["id"]]
    only_wf = backend.dashboard_search_executions(ExecutionFilter(workflow="wf"), (), 1, None)
    assert [r["id"] for r in only_wf] == [rows[2]["id"]]
    cursor = (only_wf[0]["created_at"], only_wf[0]["id"])
    rest = backend.dashboard_search_executions(ExecutionFilter(workflow="wf"), (), 10, cursor)
    assert [r["id"] for r in rest] == [rows[0]["id"]]


def test_count_stops_at_the_cap_and_select_returns_ids_newest_first(
    backend: StorageBackend,
) -> None:
    rows = _store(backend)
    assert backend.dashboard_count_executions(ExecutionFilter(), (), 100) == 3
    assert backend.dashboard_count_executions(ExecutionFilter(), (), 2) == 2
    gold = JsonMatch("input", ("customer", "tier"), "gold")
    assert backend.dashboard_count_executions(ExecutionFilter(), [gold], 100) == 1
    picked = backend.dashboard_select_ids(ExecutionFilter(statuses=("pending",)), (), 2)
    assert [(r["id"], r["status"], r["workflow_name"]) for r in picked] == [
        (rows[2]["id"], "pending", "wf"),
        (rows[1]["id"], "pending", "other"),
    ]


def test_workflow_stats_last_run_and_time_buckets(backend: StorageBackend) -> None:
    rows = _store(backend)
    finish(backend, rows[0], "failed", NOW + 60_000, error='{"type":"E"}')
    stats = {r["workflow_name"]: r for r in backend.dashboard_workflow_stats()}
    assert stats["wf"]["runs"] == 2 and stats["wf"]["failed"] == 1
    assert stats["wf"]["active"] == 1 and stats["wf"]["waiting"] == 0
    assert stats["other"]["runs"] == 1
    last = backend.dashboard_last_run("wf")
    assert last is not None and last["id"] == rows[2]["id"] and last["status"] == "pending"
    assert backend.dashboard_last_run("nobody") is None
    created, finished = backend.dashboard_buckets(NOW, 60_000)
    assert [(int(r["bucket"]), int(r["n"])) for r in created] == [(0, 3)]
    assert [(int(r["bucket"]), r["status"], int(r["n"])) for r in finished] == [(1, "failed", 1)]


def test_the_change_marker_moves_when_another_connection_writes(
    backend: StorageBackend, any_url: str
) -> None:
    before = backend.dashboard_change_marker()
    if any_url.startswith("memory://"):  # one private connection: no other writer exists
        backend.create_executions([execution()], NOW)
        assert isinstance(before, int)
        return
    other = open_storage(any_url)
    try:
        other.create_executions([execution()], NOW)
    finally:
        other.close()
    after = backend.dashboard_change_marker()
    assert before is not None and after is not None and after != before


def test_the_audit_log_appends_and_filters_newest_first(backend: StorageBackend) -> None:
    def entry(actor: str, action: str, outcome: str = "ok") -> AuditEntry:
        return AuditEntry(NOW, actor, "operator", action, "run-1", '{"x":1}', outcome, None, "::1")

    ids = [
        backend.dashboard_audit_insert(entry("ann", "cancel")),
        backend.dashboard_audit_insert(entry("bob", "retry", "error")),
        backend.dashboard_audit_insert(entry("ann", "retry")),
    ]
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert [r["id"] for r in backend.dashboard_audit_list()] == ids[::-1]
    assert [r["id"] for r in backend.dashboard_audit_list(actor="ann")] == [ids[2], ids[0]]
    assert [r["id"] for r in backend.dashboard_audit_list(action="retry", outcome="ok")] == [ids[2]]
    assert [r["id"] for r in backend.dashboard_audit_list(before_id=ids[2], limit=1)] == [ids[1]]
    row = backend.dashboard_audit_list(target="run-1", limit=1)[0]
    assert (row["actor"], row["role"], row["params"], row["remote"]) == (
        "ann",
        "operator",
        '{"x":1}',
        "::1",
    )
