"""The one place where AWS StackSet status strings become enums.

CloudFormation reports four families of status for StackSets: the operation's overall status,
each account/region's result within an operation, a stack instance's status and its detailed
status (AWS CloudFormation API Reference: StackSetOperation, StackSetOperationResultSummary,
StackInstanceSummary, StackInstanceComprehensiveStatus). Everything else in replctl reasons about
these enums only. `parse` is the single conversion function: a value AWS adds in future (or a
typo in a fake) raises instead of being silently treated as success or failure.
"""

from __future__ import annotations

from enum import Enum
from typing import TypeVar

from replctl.errors import DeployError


class OperationStatus(str, Enum):
    """StackSetOperation.Status."""

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    STOPPING = "STOPPING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    STOPPED = "STOPPED"

    @property
    def finished(self) -> bool:
        return self in (OperationStatus.SUCCEEDED, OperationStatus.FAILED, OperationStatus.STOPPED)

    @property
    def ok(self) -> bool:
        return self is OperationStatus.SUCCEEDED


class ResultStatus(str, Enum):
    """StackSetOperationResultSummary.Status: one account/region within an operation."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def finished(self) -> bool:
        return self in (ResultStatus.SUCCEEDED, ResultStatus.FAILED, ResultStatus.CANCELLED)

    @property
    def ok(self) -> bool:
        return self is ResultStatus.SUCCEEDED


class InstanceStatus(str, Enum):
    """StackInstanceSummary.Status."""

    CURRENT = "CURRENT"
    OUTDATED = "OUTDATED"
    INOPERABLE = "INOPERABLE"


class DetailedStatus(str, Enum):
    """StackInstanceComprehensiveStatus.DetailedStatus."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    INOPERABLE = "INOPERABLE"
    SKIPPED_SUSPENDED_ACCOUNT = "SKIPPED_SUSPENDED_ACCOUNT"
    FAILED_IMPORT = "FAILED_IMPORT"


class StackSetStatus(str, Enum):
    """StackSet.Status."""

    ACTIVE = "ACTIVE"
    DELETED = "DELETED"


E = TypeVar("E", bound=Enum)


def parse(kind: type[E], value: object) -> E:
    """AWS's status string as `kind`; an unknown value raises DeployError (never guessed)."""
    try:
        return kind(value)
    except ValueError:
        known = ", ".join(m.value for m in kind)  # type: ignore[attr-defined]
        raise DeployError(
            f"AWS reported an unknown {kind.__name__} {value!r} (known: {known})",
            hint="this replctl does not know that status; upgrade replctl or check the operation in the console",
        ) from None


def instance_ok(status: InstanceStatus, detailed: DetailedStatus | None) -> bool:
    """An instance is done and healthy when CURRENT with detailed status SUCCEEDED.

    Some endpoints omit the detailed status; CURRENT alone then counts as done.
    """
    return status is InstanceStatus.CURRENT and detailed in (DetailedStatus.SUCCEEDED, None)


def excluded_from_updates(status: InstanceStatus, detailed: DetailedStatus | None) -> DetailedStatus | None:
    """Which state keeps a stack set operation from reaching this instance, if any.

    StackInstanceComprehensiveStatus (API reference): INOPERABLE — "A DeleteStackInstances
    operation has failed and left the stack in an unstable state. Stacks in this state are
    excluded from further UpdateStackSet operations"; FAILED_IMPORT — "The import of the stack
    instance ... failed and left the stack in an unstable state"; SKIPPED_SUSPENDED_ACCOUNT — "The
    operation ... has been skipped because the account was suspended at the time of the
    operation". StackInstanceSummary.Status INOPERABLE "can be returned here when the cause is a
    failed import", so the detailed status decides which of the first two it is.
    """
    if detailed in (DetailedStatus.INOPERABLE, DetailedStatus.FAILED_IMPORT, DetailedStatus.SKIPPED_SUSPENDED_ACCOUNT):
        return detailed
    if status is InstanceStatus.INOPERABLE:
        return DetailedStatus.INOPERABLE
    return None
