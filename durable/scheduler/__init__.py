"""Schedules: cron and interval workflows, exactly once per tick across processes.

``Schedule`` is declared on a Workflow; ``app.schedules`` (a
:class:`~durable.scheduler.manager.ScheduleManager`) manages schedules at run
time; every worker runs a :class:`~durable.scheduler.scheduler.Scheduler`.
"""

from ..errors import CronError, ScheduleExistsError, ScheduleNotFoundError, TimezoneError
from .schedule import Schedule

__all__ = [
    "CronError",
    "Schedule",
    "ScheduleExistsError",
    "ScheduleNotFoundError",
    "TimezoneError",
]
