"""The web dashboard: a live console to see and act on workflows.

>>> from durable import Durable
>>> from durable.dashboard import create_app
>>> app = Durable("memory://")
>>> asgi = create_app(app, redact=["password"])   # serve with uvicorn, or mount it
>>> app.close()

Needs the ``dashboard`` extra: ``pip install 'durable[dashboard]'``.
"""

from __future__ import annotations

from .app import create_app
from .security import OPERATOR, VIEWER, Principal

__all__ = ["OPERATOR", "VIEWER", "Principal", "create_app"]
