"""The storage seam stays honest: protocols covered by the contract suite, one SQL
fragment for the terminal statuses, no import cycle between storage modules."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

from durable.models import TERMINAL_STATUSES
from durable.storage import (
    DashboardStorage,
    OpsStorage,
    RetentionStorage,
    ScheduleStorage,
    Storage,
    StorageBackend,
)
from durable.storage.sqlfile import parse

ROOT = Path(__file__).resolve().parents[2]
STORAGE = ROOT / "durable" / "storage"
PROTOCOLS = (Storage, ScheduleStorage, DashboardStorage, OpsStorage, RetentionStorage)


def _methods(protocol: type) -> set[str]:
    return {
        name
        for name, value in vars(protocol).items()
        if inspect.isfunction(value) and not name.startswith("_")
    }


def test_every_protocol_method_is_exercised_by_the_contract_suite() -> None:
    suite = "\n".join(p.read_text() for p in (ROOT / "tests" / "storage").glob("test_*.py"))
    untested = sorted(
        f"{protocol.__name__}.{name}"
        for protocol in PROTOCOLS
        for name in _methods(protocol)
        if not re.search(rf"\.{name}\(", suite)
    )
    assert untested == []


def test_every_protocol_method_has_its_contract_in_a_docstring() -> None:
    bare = sorted(
        f"{protocol.__name__}.{name}"
        for protocol in PROTOCOLS
        for name in _methods(protocol)
        if not (getattr(protocol, name).__doc__ or "").strip()
    )
    assert bare == []


def test_the_backend_protocol_is_every_protocol() -> None:
    union = set().union(*(_methods(p) for p in PROTOCOLS))
    backend = {name for name in dir(StorageBackend) if name in union}
    assert backend == union
    names = [set(_methods(p)) for p in PROTOCOLS]
    for i, a in enumerate(names):  # no method is declared by two protocols
        for b in names[i + 1 :]:
            assert not a & b


def test_one_sql_fragment_holds_the_terminal_statuses() -> None:
    fragment = parse((STORAGE / "sql" / "queries.sql").read_text())["_terminal_statuses"]
    assert set(re.findall(r"'(\w+)'", fragment)) == {s.value for s in TERMINAL_STATUSES}
    written_out = re.compile(r"'completed',\s*'failed',\s*'cancelled'")
    for path in (STORAGE / "sql").rglob("*.sql"):
        if "migrations" in path.parts:
            continue
        for name, sql in parse(path.read_text()).items():
            if name != "_terminal_statuses":
                assert not written_out.search(sql), f"{path.name}:{name} spells the statuses out"


def _imports(path: Path) -> set[str]:
    """Storage modules ``path`` imports (at any level, type-checking ones too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.level == 1:
            found |= {alias.name for alias in node.names}
    return found


def test_no_import_cycle_between_storage_modules() -> None:
    modules = {p.stem: p for p in STORAGE.glob("*.py") if p.stem != "__init__"}
    graph = {name: _imports(path) & set(modules) for name, path in modules.items()}
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"import cycle: {' -> '.join((*path, name))}"
        if name in done:
            return
        for target in sorted(graph[name]):
            visit(target, (*path, name))
        done.add(name)

    for name in sorted(graph):
        visit(name, ())
    assert graph["sql_base"] >= {"tx", "schedules", "dashboard", "ops", "retention"}
