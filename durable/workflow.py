"""Workflow definitions: ``Workflow``, ``step``, ``decision``, ``branch``, ``parallel``.

A definition is validated when it is built, so mistakes surface at import
time. :meth:`Workflow.program` flattens the tree into instructions addressed
by step name; the executor walks them and stores the current name.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from .checks import count, seconds
from .codec import MAX_NAME_CHARS, MAX_SECONDS, text_problem
from .errors import DefinitionError
from .retry import Retry

if TYPE_CHECKING:
    from .scheduler.schedule import Schedule

StepFn = Callable[..., Any]
OnError = Literal["fail_fast", "complete_all"]


@dataclass(frozen=True, slots=True)
class Goto:
    """Returned by a decision step: jump forward to ``step`` with ``context``."""

    step: str
    context: Any = None


def goto(step_name: str, context: Any = None) -> Goto:
    """Jump forward to the step named ``step_name``, passing ``context`` to it."""
    return Goto(step_name, context)


@dataclass(frozen=True, slots=True, eq=False)
class Step:
    """A step: a callable that takes the previous context and returns the next."""

    fn: StepFn
    name: str
    retry: Retry | None = None
    timeout: float | None = None
    queue: str | None = None
    compensate: Step | None = None
    jumps_to: tuple[str, ...] | None = None
    takes_arg: bool = True

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.fn)


@dataclass(frozen=True, slots=True, eq=False)
class Branch:
    on: Callable[[Any], Any]
    cases: Mapping[Any, tuple[Node, ...]]
    default: tuple[Node, ...] | None
    name: str | None = None


@dataclass(frozen=True, slots=True, eq=False)
class Parallel:
    steps: tuple[Step, ...]
    into: Callable[[Any, dict[str, Any]], Any] | None
    on_error: OnError
    name: str | None = None


@dataclass(frozen=True, slots=True, eq=False)
class ForEach:
    step: Step
    items: Callable[[Any], Any]
    into: Callable[[Any, list[Any]], Any] | None
    on_error: OnError
    concurrency: int
    name: str | None = None


Node = Step | Branch | Parallel | ForEach


def _check_timeout(value: float | None, what: str) -> float | None:
    if value is None:
        return None
    checked = seconds(value, f"{what} timeout", positive=True, error=DefinitionError)
    if checked > MAX_SECONDS:  # deadlines are 64-bit epoch milliseconds
        raise DefinitionError(f"{what} timeout must be at most {MAX_SECONDS:.0e} seconds")
    return checked


def _takes_arg(fn: StepFn, name: str) -> bool:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return True
    positional = [
        p
        for p in params
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]
    if len(positional) > 1:
        raise DefinitionError(
            f"step {name!r} must take one argument (the context), it takes {len(positional)}"
        )
    return bool(positional) or any(p.kind == p.VAR_POSITIONAL for p in params) or bool(params)


def step(
    fn: StepFn | Step,
    *,
    name: str | None = None,
    retry: Retry | None = None,
    timeout: float | None = None,
    queue: str | None = None,
    compensate: StepFn | Step | None = None,
    jumps_to: Sequence[str] | None = None,
) -> Step:
    """Define a step from a ``def`` or ``async def`` taking the previous context.

    ``compensate`` names a callable (or ``step(...)``) run with this step's result
    if a later step fails for good. ``jumps_to`` declares the steps a decision
    may jump to, so bad jumps are refused when the workflow is defined.
    """
    if isinstance(fn, Step):
        return fn
    if not callable(fn):
        raise DefinitionError(f"a step must be callable, got {fn!r} ({type(fn).__name__})")
    step_name = name or getattr(fn, "__name__", None)
    if not step_name or step_name == "<lambda>":
        raise DefinitionError(f"step {fn!r} needs a name: pass step(fn, name='...')")
    if retry is not None and not isinstance(retry, Retry):
        raise DefinitionError(f"step {step_name!r}: retry must be a Retry(...), got {retry!r}")
    comp: Step | None = None
    if compensate is not None:
        if not callable(compensate) and not isinstance(compensate, Step):
            raise DefinitionError(
                f"step {step_name!r}: compensate must be callable, got {compensate!r}"
            )
        comp = (
            step(compensate, name=f"{step_name}.compensate")
            if not isinstance(compensate, Step)
            else compensate
        )
    return Step(
        fn=fn,
        name=step_name,
        retry=retry,
        timeout=_check_timeout(timeout, f"step {step_name!r}"),
        queue=queue,
        compensate=comp,
        jumps_to=tuple(jumps_to) if jumps_to is not None else None,
        takes_arg=_takes_arg(fn, step_name),
    )


def decision(fn: StepFn, *, targets: Sequence[str], **options: Any) -> Step:
    """A step that may ``return goto("later_step", ctx)``; ``targets`` are checked."""
    return step(fn, jumps_to=targets, **options)


def _nodes(items: Sequence[Any], where: str) -> tuple[Node, ...]:
    if isinstance(items, str | bytes) or not isinstance(items, Sequence):
        raise DefinitionError(f"{where} must be a list of steps, got {items!r}")
    out: list[Node] = []
    for item in items:
        out.append(item if isinstance(item, Step | Branch | Parallel | ForEach) else step(item))
    return tuple(out)


def branch(
    on: Callable[[Any], Any],
    cases: Mapping[Any, Sequence[Any]],
    default: Sequence[Any] | None = None,
    *,
    name: str | None = None,
) -> Branch:
    """Run the steps of the case matching ``on(ctx)``, then carry on after the branch."""
    if not callable(on):
        raise DefinitionError(f"branch on= must be callable, got {on!r}")
    if not isinstance(cases, Mapping) or not cases:
        raise DefinitionError("branch cases= must be a non-empty dict of value -> steps")
    built = {key: _nodes(steps, f"branch case {key!r}") for key, steps in cases.items()}
    for key, nodes in built.items():
        if not nodes:
            raise DefinitionError(f"branch case {key!r} has no steps")
    dflt = _nodes(default, "branch default") if default is not None else None
    return Branch(on=on, cases=built, default=dflt, name=name)


_BLOCK_QUEUE = (
    "{what}: queue= is not supported inside parallel or foreach (the block runs on the "
    "worker that holds the run); put the step outside the block, or give the whole "
    "workflow that queue"
)


def parallel(
    steps: Sequence[Any],
    *,
    into: Callable[[Any, dict[str, Any]], Any] | None = None,
    on_error: OnError = "fail_fast",
    name: str | None = None,
) -> Parallel:
    """Run ``steps`` concurrently; results go under ``__results__`` or through ``into``."""
    nodes = _nodes(steps, "parallel")
    if not nodes:
        raise DefinitionError("parallel needs at least one step")
    for node in nodes:
        if not isinstance(node, Step):
            raise DefinitionError("parallel takes plain steps (no branch or parallel inside)")
        if node.queue:
            raise DefinitionError(_BLOCK_QUEUE.format(what=f"parallel step {node.name!r}"))
    if on_error not in ("fail_fast", "complete_all"):
        raise DefinitionError(f"on_error must be 'fail_fast' or 'complete_all', got {on_error!r}")
    if into is not None and not callable(into):
        raise DefinitionError(f"parallel into= must be callable, got {into!r}")
    return Parallel(steps=nodes, into=into, on_error=on_error, name=name)  # type: ignore[arg-type]


def foreach(
    body: StepFn | Step,
    *,
    items: Callable[[Any], Any],
    into: Callable[[Any, list[Any]], Any] | None = None,
    on_error: OnError = "fail_fast",
    concurrency: int = 1,
    name: str | None = None,
) -> ForEach:
    """Run ``body`` once per element of ``items(ctx)`` (a list), each checkpointed on its own.

    The body receives one item. Results, in item order, go under ``ctx["__results__"]``
    as ``{"ok": value}`` / ``{"error": {...}}``, or through ``into(ctx, results)``.
    Up to ``concurrency`` items run at once; each has the body's retry policy and
    compensation. ``items`` must give the same list every time it is called with the
    same context (it is called again when the run resumes).
    """
    template = step(body)
    if not callable(items):
        raise DefinitionError(f"foreach {template.name!r}: items= must be callable (ctx -> list)")
    if into is not None and not callable(into):
        raise DefinitionError(f"foreach {template.name!r}: into= must be callable")
    if on_error not in ("fail_fast", "complete_all"):
        raise DefinitionError(f"on_error must be 'fail_fast' or 'complete_all', got {on_error!r}")
    count(concurrency, f"foreach {template.name!r}: concurrency", error=DefinitionError)
    if template.jumps_to:
        raise DefinitionError(f"foreach {template.name!r}: its body may not jump")
    if template.queue:
        raise DefinitionError(_BLOCK_QUEUE.format(what=f"foreach body {template.name!r}"))
    return ForEach(template, items, into, on_error, concurrency, name)


# ---- the flattened program -------------------------------------------------


@dataclass(slots=True, eq=False)
class Instr:
    """One addressable instruction of a compiled workflow."""

    name: str
    node: Node
    index: int
    scope: tuple[str, ...]
    next: str | None = None
    case_starts: dict[Any, str | None] = field(default_factory=dict)
    default_start: str | None = None
    has_default: bool = False


class Program:
    """A workflow flattened into instructions; ``first`` is the entry name."""

    def __init__(self, nodes: tuple[Node, ...]) -> None:
        self.instrs: dict[str, Instr] = {}
        self.order: list[str] = []
        self.compensations: dict[str, Step] = {}
        self._counters = {"branch": 0, "parallel": 0, "foreach": 0}
        self.first = self._emit(nodes, (), None)

    def _name_for(self, node: Node) -> str:
        if isinstance(node, Step):
            return node.name
        kind = (
            "branch"
            if isinstance(node, Branch)
            else "parallel"
            if isinstance(node, Parallel)
            else "foreach"
        )
        self._counters[kind] += 1
        return node.name or f"{kind}_{self._counters[kind]}"

    def _add(self, name: str, node: Node, scope: tuple[str, ...]) -> Instr:
        _storable(name, "a step name")
        if isinstance(node, Step) and node.queue:
            _storable(node.queue, f"step {name!r}: the queue name")
        if name in self.instrs or name in self.compensations:
            raise DefinitionError(f"duplicate step name {name!r}: step names must be unique")
        instr = Instr(name=name, node=node, index=len(self.order), scope=scope)
        self.instrs[name] = instr
        self.order.append(name)
        if isinstance(node, Step) and node.compensate is not None:
            self.compensations[name] = node.compensate
        return instr

    def _emit(
        self, nodes: tuple[Node, ...], scope: tuple[str, ...], after: str | None
    ) -> str | None:
        """Emit ``nodes`` in order; the last one continues at ``after``. Returns the first name."""
        emitted: list[Instr] = []
        pending: dict[str, list[tuple[Any, tuple[Node, ...]]]] = {}
        for node in nodes:
            instr = self._add(self._name_for(node), node, scope)
            if isinstance(node, Parallel):
                for child in node.steps:
                    self._add(child.name, child, (*scope, instr.name))
            if isinstance(node, ForEach):
                self._add(node.step.name, node.step, (*scope, instr.name))
            emitted.append(instr)
            if isinstance(node, Branch):
                # branch bodies are emitted after the whole sequence, once "next" is known
                bodies: list[tuple[Any, tuple[Node, ...]]] = list(node.cases.items())
                if node.default is not None:
                    bodies.append((_DEFAULT, node.default))
                pending[instr.name] = bodies
                instr.has_default = node.default is not None
        names = [i.name for i in emitted]
        for pos, instr in enumerate(emitted):
            follow = names[pos + 1] if pos + 1 < len(names) else after
            instr.next = follow
        for instr in emitted:
            for key, body in pending.get(instr.name, []):
                start = self._emit(body, (*instr.scope, f"{instr.name}:{key!r}"), instr.next)
                if key is _DEFAULT:
                    instr.default_start = start
                else:
                    instr.case_starts[key] = start
        return names[0] if names else after

    def validate_jump(self, source: str, target: str) -> str | None:
        """Why a jump from ``source`` to ``target`` is refused, or None if allowed."""
        if target not in self.instrs:
            return f"step {source!r} jumps to unknown step {target!r}"
        if target == source:
            return f"step {source!r} may not jump to itself"
        src, dst = self.instrs[source], self.instrs[target]
        if dst.index <= src.index:
            return f"step {source!r} may only jump forward; {target!r} comes before it"
        if src.scope[: len(dst.scope)] != dst.scope:
            return f"step {source!r} may not jump into {target!r}, which is inside a branch or parallel block"
        return None


class _Default:
    def __repr__(self) -> str:
        return "default"


_DEFAULT: Any = _Default()


class Workflow:
    """A named pipeline of steps.

    >>> wf = Workflow("hello", [step(lambda name: f"hi {name}", name="greet")])
    >>> wf.name, [s for s in wf.step_names]
    ('hello', ['greet'])
    """

    def __init__(
        self,
        name: str,
        steps: Sequence[Any],
        *,
        timeout: float | None = None,
        queue: str = "default",
        schedules: Sequence[Schedule] = (),
        description: str | None = None,
        version: str | int | None = None,
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise DefinitionError(f"a workflow needs a non-empty name, got {name!r}")
        _storable(name, "a workflow name")
        self.name = name
        self.nodes = _nodes(steps, f"workflow {name!r} steps")
        if not self.nodes:
            raise DefinitionError(f"workflow {name!r} has no steps")
        self.timeout = _check_timeout(timeout, f"workflow {name!r}")
        if not isinstance(queue, str) or not queue:
            raise DefinitionError(f"workflow {name!r}: queue must be a non-empty string")
        _storable(queue, f"workflow {name!r}: the queue name")
        self.queue = queue
        self.schedules = tuple(schedules)
        self.description = description
        if version is not None and (isinstance(version, bool) or not str(version).strip()):
            raise DefinitionError(f"workflow {name!r}: version must be a non-empty str or int")
        self.version: str | None = None if version is None else str(version)
        if self.version is not None:
            _storable(self.version, f"workflow {name!r}: the version")
        try:
            self.program = Program(self.nodes)
        except DefinitionError as exc:
            raise DefinitionError(f"workflow {name!r}: {exc}") from None
        for instr in self.program.instrs.values():
            node = instr.node
            if isinstance(node, Step) and node.jumps_to is not None:
                for target in node.jumps_to:
                    why = self.program.validate_jump(instr.name, target)
                    if why is not None:
                        raise DefinitionError(f"workflow {name!r}: {why}")

    @property
    def step_names(self) -> list[str]:
        return list(self.program.order)

    def queues(self) -> set[str]:
        """Every queue this workflow's steps may run on."""
        out = {self.queue}
        for instr in self.program.instrs.values():
            if isinstance(instr.node, Step) and instr.node.queue:
                out.add(instr.node.queue)
        return out

    def graph(self) -> dict[str, Any]:
        """The static shape as a JSON-serialisable dict (see ``durable.graph``)."""
        from .graph import workflow_graph

        return workflow_graph(self)

    def __repr__(self) -> str:
        shown = f", version={self.version!r}" if self.version is not None else ""
        return f"Workflow({self.name!r}{shown}, steps={self.step_names})"


def _storable(name: str, what: str) -> None:
    """Names are stored in their own columns: the codec's rules for names apply."""
    problem = text_problem(name)
    if problem is not None:
        raise DefinitionError(f"{what} {name!r} is refused: {problem}")
    if len(name) > MAX_NAME_CHARS:
        raise DefinitionError(f"{what} is longer than {MAX_NAME_CHARS} characters")
