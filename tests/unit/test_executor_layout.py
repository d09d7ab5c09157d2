"""The executor's modules import each other without a cycle (TYPE_CHECKING imports too),
and every attempt goes through executor/attempt.py."""

from __future__ import annotations

import ast
from pathlib import Path

EXECUTOR = Path(__file__).resolve().parents[2] / "durable" / "executor"


def _imports() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in EXECUTOR.glob("*.py"):
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
                deps.add(node.module.split(".")[0])
        graph[path.stem] = deps
    return graph


def test_no_import_cycle_between_executor_modules() -> None:
    graph = _imports()
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"import cycle: {' -> '.join((*path, name))}"
        if name in done:
            return
        for dep in graph.get(name, ()):
            visit(dep, (*path, name))
        done.add(name)

    for name in graph:
        visit(name, ())


def test_attempts_begin_and_run_in_one_place() -> None:
    for path in EXECUTOR.glob("*.py"):
        if path.stem in ("attempt", "steps"):
            continue
        text = path.read_text()
        assert "StepRuntime(" not in text, f"{path.name} begins an attempt itself"
        assert "invoker.invoke(" not in text, f"{path.name} invokes a body itself"
