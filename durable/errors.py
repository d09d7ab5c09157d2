"""One error root for everything Durable raises, plus the control-flow signals.

User-facing errors derive from :class:`DurableError` (an ``Exception``). The
signals a step body uses to suspend, snooze, fail or cancel derive from
``BaseException`` so that a user's ``except Exception`` cannot swallow them.
"""

from __future__ import annotations

from typing import Any


class DurableError(Exception):
    """Root of every error Durable raises."""


class ConfigurationError(DurableError):
    """The app, a URL or an option is set up wrongly."""


class LimitKeyError(ConfigurationError):
    """A queue's key function failed or returned no str for a run's input; that
    start fails (not the worker)."""


class DefinitionError(DurableError):
    """A workflow definition is invalid (raised when it is defined)."""


class SerializationError(DurableError):
    """A value cannot be stored as JSON; the message names where it is."""


class NotFoundError(DurableError):
    """An id or name does not exist."""


class ScheduleNotFoundError(NotFoundError):
    """No schedule has this name."""


class ScheduleExistsError(DurableError):
    """A schedule with this name already exists (names are unique per instance)."""


class CronError(DefinitionError):
    """A cron expression is invalid; the message names the field and why."""


class TimezoneError(DefinitionError):
    """A time zone name is not a known IANA zone."""


class ExecutionNotFoundError(NotFoundError):
    """No execution has this id."""


class WorkflowNotFoundError(NotFoundError):
    """No workflow with this name is registered with the app."""


class ExecutionIdConflictError(DurableError):
    """A run was started under an id that a run of another workflow already has."""


class InvalidStateError(DurableError):
    """The operation does not apply to the execution in its current status."""


class StorageError(DurableError):
    """The database failed or could not be reached."""


class WriteRejectedError(StorageError):
    """The database refused a value it was given (it would refuse it again)."""


class DatabaseGoneError(StorageError):
    """The database this worker was writing to is gone (its file was deleted or
    replaced): nothing more can be committed safely, so the worker stops."""


class SchemaError(StorageError):
    """The database schema is missing or out of date."""


class LostClaimError(DurableError):
    """This worker's claim on an execution was taken over (fencing)."""


class StepTimeoutError(DurableError):
    """A step attempt ran longer than its ``timeout``."""


class WorkflowTimeoutError(DurableError):
    """A workflow ran longer than its ``timeout``."""


class WaitTimeoutError(DurableError):
    """A wait reached its timeout and no ``timeout_value`` was given."""


class WaitCancelledError(DurableError):
    """The wait was cancelled with ``cancel_wait`` and no ``timeout_value`` was given."""


class InputValidationError(DurableError):
    """A provided input does not match the declared input type."""

    def __init__(self, message: str, errors: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or {}


class InputAlreadyProvidedError(InvalidStateError):
    """The input was already answered (two callers raced; the other won)."""


class ChildWorkflowError(DurableError):
    """A child workflow failed or was cancelled; raised in the parent's step."""

    def __init__(self, message: str, child_id: str, status: str, error: dict[str, Any] | None):
        super().__init__(message)
        self.child_id = child_id
        self.status = status
        self.error = error


class StepError(DurableError):
    """Wraps a recorded step error (type, message, traceback) for callers."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(f"{error.get('type')}: {error.get('message')}")
        self.error = error


class PubSubNotConfiguredError(DurableError):
    """``subscribe`` was called on an app whose pub/sub is switched off."""


# ---- control-flow signals (BaseException: user code cannot swallow them) ----


class ControlSignal(BaseException):
    """Base of the signals that steer an execution from inside a step."""


class Suspend(ControlSignal):
    """The step waits (sleep, event, input, child); the run holds nothing."""


class Snooze(ControlSignal):
    """Reschedule the step after ``seconds`` without counting an attempt."""

    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.seconds = seconds


class FailNow(ControlSignal):
    """Fail the workflow now, without retries."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CancelNow(ControlSignal):
    """Cancel the workflow from inside a step."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
