"""What CloudFormation's StackSet events say, read from the event queue's messages: pure, no I/O.

CloudFormation publishes two StackSet events to EventBridge in the administration account
(CloudFormation User Guide, "StackSet Operation Status Change event detail" and "StackSet Stack
Instance Status Change event detail"); the bootstrap's rule sends this stack set's to an SQS
queue as the whole event envelope. `replctl.deploy.queue` receives the messages; this module
decides, for the one operation a waiter waits on, what each message is and what to do with it:

- an operation event of that operation: its status (a terminal one wakes the waiter);
- an instance event of one of its targets: per-account progress for the display. The instance
  event names no operation (its detail is `stack-set-arn`, `stack-id`, `action`,
  `status-details`), so it belongs to the operation whose targets include its account/region —
  StackSets runs one operation at a time on a stack set unless managed execution queues
  non-conflicting ones ("If there are already running or queued operations, StackSets queues all
  incoming operations even if they are non-conflicting", API reference, ManagedExecution);
- an event of an operation this run already finished waiting on (a late duplicate): deleted;
- an event of any other operation: left for whoever waits on it (handed back);
- anything else (not a StackSet event of this stack set): junk, deleted.

SQS delivers at least once and a standard queue does not keep order, so the same event may come
twice and a RUNNING may come after a SUCCEEDED: progress never goes backwards here, and a
terminal status in any message is enough to wake the waiter (which then reads AWS to confirm).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from replctl.statuses import DetailedStatus, OperationStatus, ResultStatus, parse

OPERATION_EVENT = "CloudFormation StackSet Operation Status Change"
INSTANCE_EVENT = "CloudFormation StackSet StackInstance Status Change"
#: What the bootstrap's rule matches (cfn/stackset-administration-role.yaml, StackSetEventsRule).
DETAIL_TYPES = (OPERATION_EVENT, INSTANCE_EVENT)

Key = tuple[str, str]  # (account, region)


@dataclass(frozen=True)
class Message:
    """One SQS message as received: its id, the handle to delete or hand it back, its body."""

    id: str
    receipt: str
    body: str
    receive_count: int = 1  # ApproximateReceiveCount


@dataclass(frozen=True)
class OperationEvent:
    stack_set: str  # the stack set's name, from stack-set-arn
    operation_id: str
    status: str  # as AWS wrote it; parsed only for the waiter's own operation


@dataclass(frozen=True)
class InstanceEvent:
    stack_set: str
    account: str
    region: str
    detailed: str  # status-details.detailed-status, as AWS wrote it
    reason: str | None = None


Event = OperationEvent | InstanceEvent


def stack_set_name(arn: object) -> str | None:
    """`replctl-replication` from arn:aws:cloudformation:us-east-1:111122223333:stackset/replctl-replication:<uuid>."""
    if not isinstance(arn, str):
        return None
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[2] != "cloudformation" or not parts[5].startswith("stackset/"):
        return None
    name, sep, _ = parts[5].removeprefix("stackset/").partition(":")
    return name if sep and name else None


def stack_key(stack_id: object) -> Key | None:
    """(account, region) of an instance's stack: arn:aws:cloudformation:<region>:<account>:stack/<name>/<id>."""
    if not isinstance(stack_id, str):
        return None
    parts = stack_id.split(":", 5)
    if len(parts) != 6 or parts[2] != "cloudformation" or not parts[5].startswith("stack/"):
        return None
    return (parts[4], parts[3]) if parts[3] and parts[4] else None


def read_event(body: str) -> Event | None:
    """The StackSet event a message carries (the EventBridge envelope as its body), or None."""
    try:
        envelope = json.loads(body)
    except ValueError:
        return None
    if not isinstance(envelope, dict) or envelope.get("source") != "aws.cloudformation":
        return None
    detail = envelope.get("detail")
    if not isinstance(detail, dict):
        return None
    name = stack_set_name(detail.get("stack-set-arn"))
    status = detail.get("status-details") if isinstance(detail.get("status-details"), dict) else {}
    if name is None:
        return None
    match envelope.get("detail-type"):
        case "CloudFormation StackSet Operation Status Change":
            op, value = detail.get("stack-set-operation-id"), status.get("status")
            if isinstance(op, str) and isinstance(value, str):
                return OperationEvent(name, op, value)
        case "CloudFormation StackSet StackInstance Status Change":
            key, value = stack_key(detail.get("stack-id")), status.get("detailed-status")
            if key is not None and isinstance(value, str):
                reason = status.get("status-reason")
                return InstanceEvent(name, key[0], key[1], value, reason if isinstance(reason, str) and reason else None)
    return None


class Verdict(str, Enum):
    """What a waiter does with one message."""

    MINE = "mine"  # about the awaited operation: use it, then delete it
    FINISHED = "finished"  # about an operation this run already waited out: delete it
    FOREIGN = "foreign"  # about another operation: hand it back for its owner
    JUNK = "junk"  # not this stack set's StackSet event: delete it


@dataclass(frozen=True)
class Waiting:
    """Who is asking: the stack set, the operation awaited, its targets (None: unknown, e.g. an
    operation found running), and the operations this run has already finished waiting on."""

    stack_set: str
    operation_id: str
    targets: frozenset[Key] | None = None
    finished: frozenset[str] = frozenset()


def sort_event(event: Event | None, who: Waiting) -> Verdict:
    """The verdict on one message's event for this waiter."""
    if event is None or event.stack_set != who.stack_set:
        return Verdict.JUNK
    match event:
        case OperationEvent(operation_id=op) if op == who.operation_id:
            return Verdict.MINE
        case OperationEvent(operation_id=op) if op in who.finished:
            return Verdict.FINISHED
        case OperationEvent():
            return Verdict.FOREIGN
        case InstanceEvent(account=a, region=r) if who.targets is None or (a, r) in who.targets:
            return Verdict.MINE
        case _:
            return Verdict.FOREIGN


#: Detailed statuses with the same meaning as an operation result (StackInstanceComprehensiveStatus
#: and StackSetOperationResultSummary both define PENDING, RUNNING, SUCCEEDED, FAILED and CANCELLED
#: for "the operation in the specified account and Region"). The others (INOPERABLE, FAILED_IMPORT,
#: SKIPPED_SUSPENDED_ACCOUNT) have no result counterpart; the confirming read reports them.
_AS_RESULT = {DetailedStatus.PENDING: ResultStatus.PENDING, DetailedStatus.RUNNING: ResultStatus.RUNNING,
              DetailedStatus.SUCCEEDED: ResultStatus.SUCCEEDED, DetailedStatus.FAILED: ResultStatus.FAILED,
              DetailedStatus.CANCELLED: ResultStatus.CANCELLED}


def _rank(status: ResultStatus) -> int:
    return 2 if status.finished else (1 if status is ResultStatus.RUNNING else 0)


def _op_rank(status: OperationStatus) -> int:
    # QUEUED → RUNNING → STOPPING → a finished status (StackSetOperation.Status).
    order = (OperationStatus.QUEUED, OperationStatus.RUNNING, OperationStatus.STOPPING)
    return order.index(status) if status in order else 3


Progress = Mapping[Key, tuple[ResultStatus, str | None]]


@dataclass(frozen=True)
class Heard:
    """What the awaited operation's events said so far: its furthest status (None until an
    operation event came) and each instance's furthest result."""

    status: OperationStatus | None = None
    progress: Progress = field(default_factory=dict)

    @property
    def terminal(self) -> OperationStatus | None:
        return self.status if self.status is not None and self.status.finished else None


def heard(before: Heard, events: Iterable[Event]) -> Heard:
    """Fold the awaited operation's events (any order, duplicates allowed) into what is known.

    Statuses only move forward: within one operation AWS moves an instance's result PENDING →
    RUNNING → finished and the operation QUEUED → RUNNING → (STOPPING →) finished, so an older
    event that arrives late changes nothing.
    """
    status = before.status
    progress: dict[Key, tuple[ResultStatus, str | None]] = dict(before.progress)
    for event in events:
        match event:
            case OperationEvent(status=value):
                new = parse(OperationStatus, value)
                if status is None or _op_rank(new) > _op_rank(status):
                    status = new
            case InstanceEvent(account=a, region=r, detailed=value, reason=reason):
                result = _AS_RESULT.get(parse(DetailedStatus, value))
                if result is None:
                    continue
                seen = progress.get((a, r))
                if seen is None or _rank(result) > _rank(seen[0]):
                    progress[(a, r)] = (result, reason)
    return Heard(status, progress)


def ends_wait(events: Iterable[Event], operation_id: str) -> bool:
    """Does one of these events say the operation finished (SUCCEEDED, FAILED or STOPPED)?"""
    return any(isinstance(e, OperationEvent) and e.operation_id == operation_id
               and parse(OperationStatus, e.status).finished for e in events)


def shown(h: Heard, targets: Iterable[Key] | None) -> tuple[OperationStatus, list[tuple[str, str, ResultStatus, str | None]]]:
    """What the progress display shows from events: the operation's status (RUNNING until an event
    said otherwise) and every target's result (PENDING until one was heard of)."""
    progress = dict(h.progress)
    keys = sorted(set(targets or ()) | set(progress))
    return h.status or OperationStatus.RUNNING, [(a, r, *progress.get((a, r), (ResultStatus.PENDING, None)))
                                                 for a, r in keys]


#: First hand-back delay for another operation's message, doubling with each receive up to the cap:
#: the owner (polling with a 20-second long poll) gets it within seconds, and a message nobody
#: owns (an operation started outside replctl) is received less and less often until the queue's
#: retention drops it.
HAND_BACK_SECONDS = 5
HAND_BACK_MAX_SECONDS = 300


def hand_back_seconds(receive_count: int) -> int:
    """How long another operation's message stays hidden after this waiter saw it."""
    return min(HAND_BACK_SECONDS * 2 ** max(receive_count - 1, 0), HAND_BACK_MAX_SECONDS)
