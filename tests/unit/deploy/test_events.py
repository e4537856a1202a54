"""Reading StackSet events off the queue: pure functions, events in the shapes AWS documents.

GIVEN the two StackSet events as the CloudFormation User Guide documents them
(tests/events/cfn_stackset_*.json: the "Example" events of event-detail-stackset-operation-
status-change.html and event-detail-stackset-stack-instance-status-change.html, with this
estate's names), WHEN a waiter reads and sorts them, THEN it learns what they say about its own
operation only, in any order and however often they come.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from replctl.deploy.events import (
    Heard,
    InstanceEvent,
    OperationEvent,
    Verdict,
    Waiting,
    ends_wait,
    hand_back_seconds,
    heard,
    read_event,
    shown,
    sort_event,
    stack_key,
    stack_set_name,
)
from replctl.errors import DeployError
from replctl.statuses import OperationStatus, ResultStatus
from tests.fnkit import EVENTS

OP = "replctl-6f1c2d3e-4a5b-4c6d-8e7f-901a2b3c4d5e"
STAGING = ("222222222222", "us-east-1")


def load(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def operation(status: str, op: str = OP, name: str = "replctl-replication") -> OperationEvent:
    return OperationEvent(name, op, status)


def instance(detailed: str, key: tuple[str, str] = STAGING, reason: str | None = None) -> InstanceEvent:
    return InstanceEvent("replctl-replication", key[0], key[1], detailed, reason)


def test_the_documented_operation_event_is_read() -> None:
    event = read_event(json.dumps(load("cfn_stackset_operation_status_change.json")))
    assert event == OperationEvent("replctl-replication", OP, "SUCCEEDED")


def test_the_documented_instance_event_is_read_with_its_account_region_and_reason() -> None:
    event = read_event(json.dumps(load("cfn_stackset_instance_status_change.json")))
    assert event == InstanceEvent("replctl-replication", "222222222222", "us-east-1", "FAILED",
                                  'Resource handler returned message: "replctl-config-staging-222222222222 already exists"')


@pytest.mark.parametrize("arn, name", [
    ("arn:aws:cloudformation:us-east-1:123456789012:stackset/replctl-replication:e5f5", "replctl-replication"),
    ("arn:aws-cn:cloudformation:cn-north-1:123456789012:stackset/a-b:1", "a-b"),
    ("arn:aws:cloudformation:us-east-1:123456789012:stack/replctl-replication/e5f5", None),
    ("arn:aws:cloudformation:us-east-1:123456789012:stackset/replctl-replication", None),
    ("arn:aws:s3:::stackset/x:1", None),
    (None, None), (42, None), ("", None),
])
def test_stack_set_name_comes_from_the_arn(arn: object, name: str | None) -> None:
    assert stack_set_name(arn) == name


def test_stack_key_is_the_stacks_account_and_region() -> None:
    assert stack_key("arn:aws:cloudformation:eu-west-1:111111111111:stack/StackSet-x-1/abc") == ("111111111111", "eu-west-1")
    assert stack_key("arn:aws:cloudformation:eu-west-1:111111111111:stackset/x:1") is None
    assert stack_key("not an arn") is None


def _mutations(event: dict[str, Any]) -> list[Any]:
    """The event with each field in turn deleted or replaced by a wrong type."""
    out: list[Any] = ["", "{", "[]", "null"]

    def walk(node: Any, path: tuple[Any, ...]) -> None:
        if isinstance(node, dict):
            for key in list(node):
                for replacement in (None, 7, "", [], {}, "DELETE"):
                    copy_ = copy.deepcopy(event)
                    parent = copy_
                    for step in path:
                        parent = parent[step]
                    if replacement == "DELETE":
                        del parent[key]
                    else:
                        parent[key] = replacement
                    out.append(json.dumps(copy_))
                walk(node[key], (*path, key))

    walk(event, ())
    return out


@pytest.mark.parametrize("name", ["cfn_stackset_operation_status_change.json", "cfn_stackset_instance_status_change.json"])
def test_a_damaged_message_is_no_event_and_never_an_error(name: str) -> None:
    bodies = _mutations(load(name))
    read = [read_event(b) for b in bodies]
    assert len(bodies) > 50
    assert all(e is None or isinstance(e, OperationEvent | InstanceEvent) for e in read)
    assert sum(e is None for e in read) > 10  # the parser really rejects damaged ones


def test_other_events_on_the_queue_are_not_stackset_events() -> None:
    stack = load("cfn_stack_status_change.json")
    assert read_event(json.dumps(stack)) is None
    assert read_event(json.dumps(load("ssm_parameter_created.json"))) is None


WHO = Waiting("replctl-replication", OP, frozenset({STAGING}), frozenset({"replctl-earlier"}))


@pytest.mark.parametrize("event, verdict", [
    (operation("RUNNING"), Verdict.MINE),
    (operation("SUCCEEDED", op="replctl-earlier"), Verdict.FINISHED),
    (operation("RUNNING", op="someone-elses"), Verdict.FOREIGN),
    (operation("SUCCEEDED", name="another-stack-set"), Verdict.JUNK),
    (instance("RUNNING"), Verdict.MINE),
    (instance("RUNNING", key=("333333333333", "us-east-1")), Verdict.FOREIGN),
    (None, Verdict.JUNK),
])
def test_each_message_is_sorted_for_the_waiter(event: Any, verdict: Verdict) -> None:
    assert sort_event(event, WHO) is verdict


def test_without_known_targets_every_instance_event_of_the_stack_set_is_taken() -> None:
    who = Waiting("replctl-replication", OP)
    assert sort_event(instance("RUNNING", key=("333333333333", "eu-west-1")), who) is Verdict.MINE


def test_statuses_only_move_forward_whatever_the_order_and_duplicates() -> None:
    events = [operation("SUCCEEDED"), instance("SUCCEEDED"), operation("RUNNING"), instance("RUNNING"),
              instance("PENDING"), operation("QUEUED"), operation("SUCCEEDED"), instance("SUCCEEDED")]
    assert heard(Heard(), events) == Heard(OperationStatus.SUCCEEDED, {STAGING: (ResultStatus.SUCCEEDED, None)})
    # one at a time, in the same order: the same result
    h = Heard()
    for e in events:
        h = heard(h, [e])
    assert h == heard(Heard(), events)


def test_a_failure_keeps_its_reason() -> None:
    h = heard(Heard(), [instance("RUNNING"), instance("FAILED", reason="bucket exists")])
    assert h.progress[STAGING] == (ResultStatus.FAILED, "bucket exists")


def test_detailed_statuses_without_a_result_counterpart_are_left_to_the_confirming_read() -> None:
    assert heard(Heard(), [instance("SKIPPED_SUSPENDED_ACCOUNT"), instance("INOPERABLE")]).progress == {}


def test_an_unknown_status_of_the_awaited_operation_is_refused_not_guessed() -> None:
    with pytest.raises(DeployError, match="unknown OperationStatus 'PAUSED'"):
        heard(Heard(), [operation("PAUSED")])


def test_only_a_finished_status_of_the_awaited_operation_ends_the_wait() -> None:
    assert ends_wait([operation("STOPPED")], OP)
    assert ends_wait([instance("SUCCEEDED"), operation("FAILED")], OP)
    assert not ends_wait([operation("RUNNING"), operation("STOPPING"), instance("SUCCEEDED")], OP)
    assert not ends_wait([operation("SUCCEEDED", op="someone-elses")], OP)


def test_the_display_lists_every_target_pending_until_heard_of() -> None:
    other = ("333333333333", "us-east-1")
    status, rows = shown(heard(Heard(), [instance("RUNNING")]), [STAGING, other])
    assert status is OperationStatus.RUNNING
    assert rows == [(*STAGING, ResultStatus.RUNNING, None), (*other, ResultStatus.PENDING, None)]


def test_other_operations_messages_come_back_sooner_to_an_owner_than_to_nobody() -> None:
    assert [hand_back_seconds(n) for n in (1, 2, 3, 4, 10, 100)] == [5, 10, 20, 40, 300, 300]
