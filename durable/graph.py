"""The static shape of a workflow as a JSON-serialisable graph (from the definition only).

``{"workflow": name, "nodes": [...], "edges": [...]}``. Node kinds: start, end,
step, branch, parallel, compensation. Edge kinds: next, case, default, fork,
join, jump (a decision's declared targets), compensate. A step whose source
calls ``call_workflow``/``start_workflow`` is marked ``calls_children`` (a
best-effort scan of its code's names).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .workflow import Workflow


def _calls_children(fn: Any) -> bool:
    code = getattr(fn, "__code__", None)
    return code is not None and bool({"call_workflow", "start_workflow"} & set(code.co_names))


def workflow_graph(wf: Workflow) -> dict[str, Any]:
    from .workflow import Branch, ForEach, Parallel, Step

    nodes: list[dict[str, Any]] = [{"id": "__start__", "kind": "start", "label": wf.name}]
    edges: list[dict[str, Any]] = []
    program = wf.program
    for name in program.order:
        instr = program.instrs[name]
        node = instr.node
        entry: dict[str, Any] = {"id": name, "label": name, "scope": list(instr.scope)}
        after: list[dict[str, Any]] = []  # a compensation follows the step it undoes
        if isinstance(node, Step):
            entry.update(
                kind="step",
                is_async=node.is_async,
                retry=None
                if node.retry is None
                else {"max_attempts": node.retry.max_attempts, "backoff": node.retry.backoff},
                timeout=node.timeout,
                queue=node.queue,
                calls_children=_calls_children(node.fn),
            )
            if (
                instr.scope
                and instr.scope[-1] in program.instrs
                and isinstance(program.instrs[instr.scope[-1]].node, Parallel | ForEach)
            ):
                entry["parallel"] = instr.scope[-1]
            for target in node.jumps_to or ():
                edges.append({"from": name, "to": target, "kind": "jump"})
            if node.compensate is not None:
                comp = node.compensate.name
                nodes_comp = {
                    "id": comp,
                    "kind": "compensation",
                    "label": comp,
                    "compensates": name,
                    "scope": list(instr.scope),
                }
                after.append(nodes_comp)
                edges.append({"from": name, "to": comp, "kind": "compensate"})
        elif isinstance(node, Branch):
            entry["kind"] = "branch"
            for key, start in instr.case_starts.items():
                edges.append(
                    {
                        "from": name,
                        "to": start,
                        "kind": "case",
                        "label": repr(key) if not isinstance(key, str) else key,
                    }
                )
            if instr.has_default:
                edges.append(
                    {"from": name, "to": instr.default_start, "kind": "default", "label": "default"}
                )
        elif isinstance(node, ForEach):
            entry.update(
                kind="foreach",
                on_error=node.on_error,
                concurrency=node.concurrency,
                steps=[node.step.name],
            )
            edges.append({"from": name, "to": node.step.name, "kind": "fork", "label": "each item"})
            edges.append({"from": node.step.name, "to": instr.next or "__end__", "kind": "join"})
        else:
            entry.update(
                kind="parallel", on_error=node.on_error, steps=[c.name for c in node.steps]
            )
            for child in node.steps:
                edges.append({"from": name, "to": child.name, "kind": "fork"})
                edges.append({"from": child.name, "to": instr.next or "__end__", "kind": "join"})
        nodes.append(entry)
        nodes.extend(after)
        if not isinstance(node, Branch) and not _in_parallel(program, instr):
            edges.append({"from": name, "to": instr.next or "__end__", "kind": "next"})
    nodes.append({"id": "__end__", "kind": "end", "label": "end"})
    edges.insert(0, {"from": "__start__", "to": program.first or "__end__", "kind": "next"})
    return {
        "workflow": wf.name,
        "timeout": wf.timeout,
        "queue": wf.queue,
        "nodes": nodes,
        "edges": edges,
    }


def _in_parallel(program: Any, instr: Any) -> bool:
    from .workflow import ForEach, Parallel

    if not instr.scope:
        return False
    owner = program.instrs.get(instr.scope[-1])
    return owner is not None and isinstance(owner.node, Parallel | ForEach)
