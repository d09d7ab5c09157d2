"""Async twins of blocking verbs: the one helper behind every ``<verb>_async``.

A twin runs its sync verb in a worker thread (``asyncio.to_thread``), so the event
loop never waits on the database; the caller's context variables go with it (an
OpenTelemetry span current in the caller stays current in the verb). The app and
the schedule manager both declare theirs with it::

    start_async = async_twin(start)

:func:`twin_names` lists the verbs of a class that have a twin (tests compare it
with what the README promises).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, TypeVar

S = TypeVar("S")
P = ParamSpec("P")
R = TypeVar("R")

_TWIN_OF = "__durable_twin_of__"


def async_twin(
    fn: Callable[Concatenate[S, P], R],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, R]]:
    """The async form of the method ``fn``: same arguments, runs off the event loop."""

    @functools.wraps(fn)
    async def twin(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return await asyncio.to_thread(fn, self, *args, **kwargs)

    twin.__name__ = f"{fn.__name__}_async"
    twin.__qualname__ = f"{fn.__qualname__}_async"
    twin.__doc__ = (
        f"Async form of :meth:`{fn.__name__}` (same arguments; runs it off the event loop)."
    )
    setattr(twin, _TWIN_OF, fn.__name__)
    return twin


def twin_names(cls: type) -> dict[str, str]:
    """``{verb: verb_async}`` for every async form declared on ``cls`` (made by
    :func:`async_twin` or written by hand as ``async def <verb>_async``)."""
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            if not name.endswith("_async") or name.startswith("_"):
                continue
            if inspect.iscoroutinefunction(value) or getattr(value, _TWIN_OF, None):
                out[name.removesuffix("_async")] = name
    return out
