"""Apps for the production-estate tests: two services on one database, two versions of
one workflow (a rolling deploy) and a client without workflows.

Configured by environment: DURABLE_TEST_URL (database), DURABLE_TEST_SCHEMA (PostgreSQL
schema, optional).
"""

from __future__ import annotations

import os
from typing import Any

from durable import Durable, Workflow, step


def _tag(tag: str) -> Any:
    def body(ctx: Any) -> Any:
        return {"input": ctx, "ran_by": tag, "pid": os.getpid()}

    body.__name__ = "work"
    return body


ORDER = Workflow("order", [step(_tag("shop"))])
REFUND = Workflow("refund", [step(_tag("shop"))])
INVOICE = Workflow("invoice", [step(_tag("billing"))])
PAYOUT = Workflow("payout", [step(_tag("billing"))], queue="payouts")

DEPLOY_V1 = Workflow("deploy", [step(_tag("v1"))], version=1)
DEPLOY_V2 = Workflow("deploy", [step(_tag("v2"))], version=2)


def _build(workflows: list[Workflow], **options: Any) -> Durable:
    options.setdefault("poll_interval_seconds", 0.1)
    options.setdefault("heartbeat_interval_seconds", 0.5)
    options.setdefault("stale_timeout_seconds", 5.0)
    schema = os.environ.get("DURABLE_TEST_SCHEMA")
    if schema:
        options["schema"] = schema
    return Durable(os.environ["DURABLE_TEST_URL"], workflows=workflows, **options)


def __getattr__(name: str) -> Any:
    builders = {
        "shop": lambda: _build([ORDER, REFUND], name="shop"),
        "billing": lambda: _build([INVOICE, PAYOUT], name="billing"),
        "v1": lambda: _build([DEPLOY_V1], name="deploy"),
        "v2": lambda: _build([DEPLOY_V2], name="deploy"),
        "client": lambda: _build([], name="client"),
    }
    if name in builders:
        return builders[name]()
    raise AttributeError(name)
