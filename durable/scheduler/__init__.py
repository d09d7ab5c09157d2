"""Schedules: cron and interval workflows (``Schedule`` is declared on a Workflow)."""

from .schedule import Schedule

__all__ = ["Schedule"]
