"""EventBridge, and the events AWS services publish to it, adapted inside the emulator's process.

`replctl.sandbox.server` installs the adaptations at start; tests that run moto in-process and
need them use `emulator_adaptations()`. Each rule cites the AWS documentation sentence it
implements. (moto has no public hook for any of this; the methods wrapped are moto 5.2.5's,
which pyproject.toml pins, and tests/functional/sandbox/test_eventbridge.py breaks if they
change.)
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from replctl.sandbox.adapt import NotEmulated


#: "A disabled rule won't match any events, and won't self-trigger if it has a schedule
#: expression." (EventBridge API reference, DisableRule)
ENABLED = "ENABLED"


def rule_takes_events(*, has_pattern: bool, state: str | None) -> bool:
    """May this rule match an event put on its bus at all?

    "Rules with EventPatterns are triggered when a matching event is observed. Rules with
    ScheduleExpressions self-trigger based on the given schedule." (EventBridge API reference,
    PutRule): a rule without an event pattern never matches PutEvents (moto matches it with
    every event). A disabled rule matches nothing (DisableRule, above; moto ignores the state).
    """
    return has_pattern and (state or ENABLED) == ENABLED


def lambda_function_of(target_arn: str) -> str | None:
    """The function name when a target is a Lambda function (arn:aws:lambda:…:function:NAME[:qualifier])."""
    parts = target_arn.split(":")
    if len(parts) >= 7 and parts[2] == "lambda" and parts[5] == "function":
        return parts[6]
    return None


def delivered_event(event: dict[str, Any], target: dict[str, Any]) -> dict[str, Any]:
    """The event as the target receives it.

    A target's `Input` is "Valid JSON text passed to the target. In this case, nothing from the
    event itself is passed to the target." (EventBridge API reference, Target). Otherwise the
    event keeps the documented envelope, whose `time` is an ISO-8601 timestamp (EventBridge User
    Guide, "Amazon EventBridge events"); moto keeps epoch seconds and adds an `ingestion-time` no
    AWS event has. `InputPath` and `InputTransformer` are not emulated (the template uses
    neither): such a target is refused (`NotEmulated`) rather than handed the wrong event.
    """
    if target.get("InputPath") or target.get("InputTransformer"):
        raise NotEmulated("InputPath / InputTransformer on a Lambda target")
    if target.get("Input"):
        return dict(json.loads(target["Input"]))
    out = {k: v for k, v in event.items() if k != "ingestion-time"}
    if isinstance(out.get("time"), int | float):
        out["time"] = datetime.fromtimestamp(out["time"], tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return out


def parameter_change_entry(name: str, ptype: str, operation: str, description: str | None) -> dict[str, Any]:
    """The "Parameter Store Change" event Parameter Store publishes for a parameter.

    "You can create an EventBridge rule to notify you when a parameter or a parameter label
    version is created, updated, or deleted." (Systems Manager User Guide,
    sysman-paramstore-cwe.html); detail `name`, `type`, `operation`
    (Create | Update | Delete | LabelParameterVersion), `description`. moto publishes none.
    """
    return {"Source": "aws.ssm", "DetailType": "Parameter Store Change", "EventBusName": "default",
            "Detail": json.dumps({"name": name, "type": ptype, "operation": operation,
                                  "description": description or ""})}


def stack_status_entry(stack_id: str, status: str, reason: str | None) -> dict[str, Any]:
    """The "CloudFormation Stack Status Change" event CloudFormation publishes for a stack.

    CloudFormation sends stack status changes to EventBridge with detail `stack-id`,
    `status-details.status`, `status-details.status-reason` (CloudFormation User Guide,
    event-detail-stack-status-change.html). moto publishes none.
    """
    return {"Source": "aws.cloudformation", "DetailType": "CloudFormation Stack Status Change",
            "EventBusName": "default", "Resources": [stack_id],
            "Detail": json.dumps({"stack-id": stack_id, "status-details": {"status": status,
                                                                            "status-reason": reason or ""},
                                  "client-request-token": ""})}


def stackset_operation_entry(stack_set_arn: str, operation_id: str, status: str) -> dict[str, Any]:
    """The "CloudFormation StackSet Operation Status Change" event CloudFormation publishes.

    Detail `stack-set-arn`, `stack-set-operation-id`, `status-details.status` (RUNNING | SUCCEEDED |
    FAILED | STOPPING | STOPPED | QUEUED) — CloudFormation User Guide,
    event-detail-stackset-operation-status-change.html; its example's `resources` is the stack set's
    ARN. moto publishes none.
    """
    return {"Source": "aws.cloudformation", "DetailType": "CloudFormation StackSet Operation Status Change",
            "EventBusName": "default", "Resources": [stack_set_arn],
            "Detail": json.dumps({"stack-set-arn": stack_set_arn, "stack-set-operation-id": operation_id,
                                  "status-details": {"status": status}})}


def stackset_instance_entry(stack_set_arn: str, stack_id: str, action: str, status: str, detailed: str,
                            reason: str | None) -> dict[str, Any]:
    """The "CloudFormation StackSet StackInstance Status Change" event CloudFormation publishes.

    Detail `stack-set-arn`, `stack-id`, `action` (CREATE | UPDATE | DELETE | DETECT_DRIFT),
    `status-details.status` (CURRENT | OUTDATED | INOPERABLE), `status-reason`, `detailed-status` —
    CloudFormation User Guide, event-detail-stackset-stack-instance-status-change.html. moto
    publishes none.
    """
    return {"Source": "aws.cloudformation", "DetailType": "CloudFormation StackSet StackInstance Status Change",
            "EventBusName": "default", "Resources": [stack_set_arn],
            "Detail": json.dumps({"stack-set-arn": stack_set_arn, "stack-id": stack_id, "action": action,
                                  "status-details": {"status": status, "status-reason": reason or "",
                                                     "detailed-status": detailed}})}


@dataclass
class _Installed:
    enqueue: Callable[[Any], None]
    originals: list[tuple[Any, str, Any]]


_installed: list[_Installed] = []


def install_emulator_adaptations(enqueue: Callable[[Any], None]) -> None:
    """Adapt moto's EventBridge, Parameter Store and CloudFormation models (idempotent; the last
    `enqueue` wins). `enqueue` receives an `asyncinvoke.QueuedEvent` per Lambda delivery."""
    if _installed:
        _installed[0].enqueue = enqueue
        return
    from moto.cloudformation.models import Stack
    from moto.events.models import Rule
    from moto.ssm.models import SimpleSystemManagerBackend

    state = _Installed(enqueue, [])
    _installed.append(state)
    _wrap(state, Rule, "send_to_targets", _rule_delivery)
    for method in ("put_parameter", "delete_parameter", "delete_parameters", "label_parameter_version"):
        _wrap(state, SimpleSystemManagerBackend, method, _parameter_events)
    _wrap(state, Stack, "_add_stack_event", _stack_events)


def uninstall_emulator_adaptations() -> None:
    while _installed:
        for owner, name, original in reversed(_installed.pop().originals):
            setattr(owner, name, original)


@contextlib.contextmanager
def emulator_adaptations(enqueue: Callable[[Any], None]) -> Iterator[None]:
    """The adaptations for a block (moto in-process), removed afterwards."""
    install_emulator_adaptations(enqueue)
    try:
        yield
    finally:
        uninstall_emulator_adaptations()


def _wrap(state: _Installed, owner: Any, name: str, make: Callable[..., Any]) -> None:
    original = getattr(owner, name)
    state.originals.append((owner, name, original))
    setattr(owner, name, make(original, name))


def _enqueue(item: Any) -> None:
    if _installed:
        _installed[0].enqueue(item)


def _rule_delivery(original: Callable[..., Any], _name: str) -> Callable[..., Any]:
    from replctl.sandbox.asyncinvoke import QueuedEvent

    def send_to_targets(rule: Any, event: dict[str, Any], transform_input: bool = True) -> None:
        if not rule_takes_events(has_pattern=bool(rule.event_pattern.get_pattern()), state=rule.state):
            return
        if not rule.event_pattern.matches_event(event):
            return
        others = []
        for target in rule.targets:
            function = lambda_function_of(target["Arn"])
            if function is None:
                others.append(target)
                continue
            # EventBridge hands the event to Lambda's asynchronous queue (moto raises
            # NotImplementedError for a Lambda target and fails the whole PutEvents).
            _enqueue(QueuedEvent(account=target["Arn"].split(":")[4], region=target["Arn"].split(":")[3],
                                 function=function, rule=rule.name, event=delivered_event(event, target)))
        if others:  # SQS, logs, archives, buses: moto delivers these itself
            shadow = copy.copy(rule)
            shadow.targets = others
            original(shadow, event, transform_input)

    return send_to_targets


def _publish(account: str, region: str, entry: dict[str, Any]) -> None:
    from moto.events.models import events_backends

    events_backends[account][region].put_events([entry])


def _parameter_events(original: Callable[..., Any], name: str) -> Callable[..., Any]:
    def call(backend: Any, *args: Any, **kwargs: Any) -> Any:
        names = _parameter_names(name, args, kwargs)
        before = {n: backend.get_parameter(n) for n in names} if name != "put_parameter" else {}
        result = original(backend, *args, **kwargs)
        match name:
            case "put_parameter":
                # moto returns the new version: 1 is a Create, anything later an Update.
                entries = [parameter_change_entry(result.name, result.parameter_type,
                                                  "Create" if result.version == 1 else "Update", result.description)]
            case "delete_parameter":
                entries = [_existing_entry(before[names[0]], "Delete")]
            case "delete_parameters":
                entries = [_existing_entry(before[n], "Delete") for n in result if before.get(n) is not None]
            case _:
                entries = [_existing_entry(before[names[0]], "LabelParameterVersion")]
        for entry in entries:
            _publish(backend.account_id, backend.region_name, entry)
        return result

    return call


def _parameter_names(method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[str]:
    if method == "put_parameter":
        return []
    if method == "delete_parameters":
        return list(kwargs.get("names", args[0] if args else []))
    return [kwargs.get("name", args[0] if args else "")]


def _existing_entry(parameter: Any, operation: str) -> dict[str, Any]:
    return parameter_change_entry(parameter.name, parameter.parameter_type, operation, parameter.description)


def _stack_events(original: Callable[..., Any], _name: str) -> Callable[..., Any]:
    def add_stack_event(stack: Any, resource_status: str, resource_status_reason: str | None = None,
                        resource_properties: str | None = None) -> None:
        original(stack, resource_status, resource_status_reason, resource_properties)
        _publish(stack.account_id, stack.region_name,
                 stack_status_entry(stack.stack_id, resource_status, resource_status_reason))

    return add_stack_event
