"""Workflow definitions are validated when they are built."""

from __future__ import annotations

import pytest

from durable import Retry, Workflow, branch, decision, goto, parallel, step
from durable.errors import DefinitionError


def a(x):
    return x


def b(x):
    return x


def c(x):
    return x


def test_a_pipeline_keeps_step_order():
    wf = Workflow("w", [step(a), step(b), c])
    assert wf.step_names == ["a", "b", "c"]
    assert wf.program.first == "a"
    assert wf.program.instrs["a"].next == "b"
    assert wf.program.instrs["c"].next is None


def test_duplicate_step_names_are_refused():
    with pytest.raises(DefinitionError, match="duplicate step name 'a'"):
        Workflow("w", [step(a), step(a)])


def test_duplicate_names_inside_a_branch_are_refused():
    with pytest.raises(DefinitionError, match="duplicate step name 'b'"):
        Workflow("w", [step(b), branch(on=lambda x: x, cases={1: [step(b)]})])


def test_non_callable_step_is_refused():
    with pytest.raises(DefinitionError, match="must be callable"):
        Workflow("w", [step(42)])  # type: ignore[arg-type]
    with pytest.raises(DefinitionError, match="must be callable"):
        Workflow("w", ["not a function"])


def test_empty_workflow_and_bad_names_are_refused():
    with pytest.raises(DefinitionError, match="has no steps"):
        Workflow("w", [])
    with pytest.raises(DefinitionError, match="non-empty name"):
        Workflow("", [a])


def test_lambda_needs_a_name():
    with pytest.raises(DefinitionError, match="needs a name"):
        step(lambda x: x)
    assert step(lambda x: x, name="ok").name == "ok"


def test_step_with_two_required_arguments_is_refused():
    def two(x, y):
        return x

    with pytest.raises(DefinitionError, match="one argument"):
        step(two)


def test_step_without_arguments_is_allowed():
    def none():
        return 1

    assert step(none).takes_arg is False


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"backoff": "random"}, "backoff"),
        ({"base": -1}, "must not be negative"),
        ({"jitter": 2.0}, "jitter"),
    ],
)
def test_bad_retry_options(kwargs, message):
    with pytest.raises(DefinitionError, match=message):
        Retry(**kwargs)


def test_bad_timeouts():
    with pytest.raises(DefinitionError, match="timeout must be a positive"):
        step(a, timeout=0)
    with pytest.raises(DefinitionError, match="timeout must be a positive"):
        Workflow("w", [a], timeout=-5)


def test_compensation_is_named_after_its_step():
    def refund(x):
        return x

    wf = Workflow("w", [step(a, compensate=refund), b])
    assert wf.program.compensations["a"].name == "a.compensate"


def test_decision_jump_targets_are_checked_when_defined():
    def pick(x):
        return goto("c", x)

    Workflow("ok", [decision(pick, targets=["c"]), b, c])
    with pytest.raises(DefinitionError, match="unknown step 'zzz'"):
        Workflow("w", [decision(pick, targets=["zzz"]), b, c])
    with pytest.raises(DefinitionError, match="only jump forward"):
        Workflow("w", [a, decision(pick, targets=["a"]), c])
    with pytest.raises(DefinitionError, match="itself"):
        Workflow("w", [decision(pick, targets=["pick"]), c])


def test_decision_may_not_jump_into_a_branch():
    def pick(x):
        return x

    with pytest.raises(DefinitionError, match="inside a branch"):
        Workflow(
            "w",
            [decision(pick, targets=["b"]), branch(on=lambda x: x, cases={1: [step(b)]}), c],
        )


def test_branch_validation():
    with pytest.raises(DefinitionError, match="non-empty dict"):
        branch(on=lambda x: x, cases={})
    with pytest.raises(DefinitionError, match="must be callable"):
        branch(on="x", cases={1: [a]})  # type: ignore[arg-type]
    with pytest.raises(DefinitionError, match="has no steps"):
        branch(on=lambda x: x, cases={1: []})


def test_branch_layout_continues_after_the_branch():
    wf = Workflow(
        "w",
        [
            a,
            branch(on=lambda x: x, cases={"x": [step(b)]}, default=[step(c)]),
            step(a, name="after"),
        ],
    )
    br = wf.program.instrs["branch_1"]
    assert br.case_starts == {"x": "b"}
    assert br.default_start == "c"
    assert wf.program.instrs["b"].next == "after"
    assert wf.program.instrs["c"].next == "after"


def test_parallel_validation():
    with pytest.raises(DefinitionError, match="at least one step"):
        parallel([])
    with pytest.raises(DefinitionError, match="on_error"):
        parallel([a], on_error="ignore")  # type: ignore[arg-type]
    with pytest.raises(DefinitionError, match="plain steps"):
        parallel([branch(on=lambda x: x, cases={1: [a]})])


def test_graph_is_json_serialisable():
    import json

    def refund(x):
        return x

    wf = Workflow(
        "g",
        [
            step(a, compensate=refund),
            parallel([b, c]),
            branch(on=lambda x: x, cases={1: [step(a, name="one")]}, default=[step(a, name="two")]),
        ],
    )
    graph = wf.graph()
    json.dumps(graph)
    kinds = {n["id"]: n["kind"] for n in graph["nodes"]}
    assert (
        kinds["a"] == "step" and kinds["parallel_1"] == "parallel" and kinds["branch_1"] == "branch"
    )
    assert kinds["a.compensate"] == "compensation"
    order = [n["id"] for n in graph["nodes"]]
    assert order.index("a") + 1 == order.index("a.compensate")  # after the step it undoes
    edge_kinds = {(e["from"], e["to"], e["kind"]) for e in graph["edges"]}
    assert ("parallel_1", "b", "fork") in edge_kinds
    assert ("branch_1", "one", "case") in edge_kinds
    assert ("branch_1", "two", "default") in edge_kinds
    assert ("a", "a.compensate", "compensate") in edge_kinds
