"""AWS StackSet statuses become enums in one function; anything unknown raises."""

from __future__ import annotations

import pytest

from replctl.errors import DeployError, ExitCode
from replctl.statuses import (
    DetailedStatus,
    InstanceStatus,
    OperationStatus,
    ResultStatus,
    StackSetStatus,
    excluded_from_updates,
    instance_ok,
    parse,
)


@pytest.mark.parametrize("kind, values", [
    (OperationStatus, ["RUNNING", "SUCCEEDED", "FAILED", "QUEUED", "STOPPING", "STOPPED"]),
    (ResultStatus, ["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"]),
    (InstanceStatus, ["CURRENT", "OUTDATED", "INOPERABLE"]),
    (DetailedStatus, ["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED", "INOPERABLE",
                      "SKIPPED_SUSPENDED_ACCOUNT", "FAILED_IMPORT"]),
    (StackSetStatus, ["ACTIVE", "DELETED"]),
])
def test_every_documented_value_parses(kind, values) -> None:
    assert [parse(kind, v).value for v in values] == values


@pytest.mark.parametrize("kind, value", [
    (OperationStatus, "SUCCEEDED_MOSTLY"), (OperationStatus, "running"), (InstanceStatus, None),
    (DetailedStatus, ""), (ResultStatus, "DONE"),
])
def test_unknown_status_raises(kind, value) -> None:
    with pytest.raises(DeployError) as info:
        parse(kind, value)
    assert info.value.exit_code == ExitCode.DEPLOY_FAILED
    assert f"unknown {kind.__name__} {value!r}" in info.value.message


def test_operation_finished_and_ok() -> None:
    assert [s.value for s in OperationStatus if s.finished] == ["SUCCEEDED", "FAILED", "STOPPED"]
    assert [s.value for s in OperationStatus if s.ok] == ["SUCCEEDED"]
    assert [s.value for s in ResultStatus if s.finished] == ["SUCCEEDED", "FAILED", "CANCELLED"]


def test_instance_ok_needs_current_and_succeeded() -> None:
    assert instance_ok(InstanceStatus.CURRENT, DetailedStatus.SUCCEEDED)
    assert instance_ok(InstanceStatus.CURRENT, None)  # endpoints without a detailed status
    assert not instance_ok(InstanceStatus.CURRENT, DetailedStatus.RUNNING)
    assert not instance_ok(InstanceStatus.OUTDATED, DetailedStatus.SUCCEEDED)
    assert not instance_ok(InstanceStatus.OUTDATED, DetailedStatus.FAILED)


@pytest.mark.parametrize(("status", "detailed", "excluded"), [
    ("INOPERABLE", "INOPERABLE", DetailedStatus.INOPERABLE),
    ("INOPERABLE", None, DetailedStatus.INOPERABLE),  # an endpoint that omits the detailed status
    ("INOPERABLE", "FAILED_IMPORT", DetailedStatus.FAILED_IMPORT),  # "can be returned here when ... a failed import"
    ("OUTDATED", "SKIPPED_SUSPENDED_ACCOUNT", DetailedStatus.SKIPPED_SUSPENDED_ACCOUNT),
    ("OUTDATED", "FAILED", None),
    ("OUTDATED", "CANCELLED", None),
    ("CURRENT", "SUCCEEDED", None),
])
def test_which_states_keep_operations_from_an_instance(status: str, detailed: str | None,
                                                        excluded: DetailedStatus | None) -> None:
    got = excluded_from_updates(InstanceStatus(status), DetailedStatus(detailed) if detailed else None)
    assert got is excluded
