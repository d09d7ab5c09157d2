"""Durable: embeddable, durable, resumable workflows for Python.

A workflow is a pipeline of named steps; each step's result is committed to a
database (SQLite by default, PostgreSQL for many workers) before the next
starts, so a run survives crashes, restarts and deploys.
"""

from .app import Durable
from .durations import days, hours, minutes, seconds
from .errors import DurableError
from .limits import QueueLimits
from .models import Execution, ExecutionStatus, StepExecution
from .retry import Retry
from .scheduler.schedule import Schedule
from .workflow import Workflow, branch, decision, foreach, goto, parallel, step

__all__ = [
    "Durable",
    "DurableError",
    "Execution",
    "ExecutionStatus",
    "QueueLimits",
    "Retry",
    "Schedule",
    "StepExecution",
    "Workflow",
    "branch",
    "days",
    "decision",
    "foreach",
    "goto",
    "hours",
    "minutes",
    "parallel",
    "seconds",
    "step",
]
