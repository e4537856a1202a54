"""Everything the sandbox does because the emulator (moto 5.2) is not AWS — in one place.

`cfn/replication.yaml` stays written for AWS. What moto lacks is handled here, each gap named:

Template, adapted on upload (`adapt_template_for_sandbox`, each substitution listed):
- `AWS::DynamoDB::GlobalTable` → `AWS::DynamoDB::Table` with the same keys, billing, stream
  and SSE (moto silently skips GlobalTable and crashes on `GetAtt StreamArn` of it).
- `AWS::Lambda::EventSourceMapping` removed: moto would hand stream records to Docker and
  drop them; the sandbox plays the mapping instead (`sandbox invoke` reads the stream).
- `AWS::KMS::Key`: `KeyPolicy` given as a JSON string and `Tags` in the API's TagKey/TagValue shape
  (moto breaks on both CloudFormation forms).
- Short-form `!Condition` inside `!Not/!And/!Or` (moto evaluates it wrongly) disappears because
  the adapted template is emitted in JSON long form.

StackSet behaviour, emulated through botocore hooks on the admin CloudFormation client
(`install_stackset_emulation`):
- instance parameter overrides are merged with the stack set's parameters (moto replaces);
- UpdateStackSet / UpdateStackInstances reach the deployed stacks (moto only updates
  metadata): the named instances' stacks are updated with the stack set's template and
  parameters, as StackSets would;
- after a stack is created or updated, the properties and types moto's CloudFormation skips are
  applied through the service APIs (`complete_skipped_resources`): bucket versioning,
  encryption, public access block, ownership controls and replication rules; table point-in-time
  recovery; and the CloudWatch alarms (created from the template's alarm definitions).

Bucket policies: moto enforces any Deny on every object call whatever its Principal and
Condition, so the emulator receives replctl's bucket policies without their Deny statements
(`without_denies`); AWS gets them whole.

EventBridge and the events AWS services publish to it, adapted inside the emulator's process
(`install_emulator_adaptations`, installed by `replctl.sandbox.server`; the section at the end):
a rule without an event pattern (a schedule) or a disabled rule never matches an event; an event
routed to a Lambda target is queued for the function (`replctl.sandbox.asyncinvoke`) instead of
failing the PutEvents call; Parameter Store and CloudFormation publish their change events.

Not emulated (said once by the commands that would need them; see `NOT_EMULATED`).
"""

from __future__ import annotations

import contextlib
import copy
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from replctl import cfnyaml

#: What the emulator cannot do, by the command that would need it; each is said once per run.
NOT_EMULATED: dict[str, tuple[str, ...]] = {
    "deploy": (
        "the emulator runs StackSet operations instantly; StackSets' propagation of updates and the "
        "resource properties moto skips are applied by the sandbox (replctl.sandbox.adapt)",
        "bucket policies are not applied in the sandbox (moto enforces any Deny regardless of its conditions)",
    ),
    "status": (
        "the emulator never evaluates alarms: they stay OK unless set with set-alarm-state",
        "functions run only through `replctl sandbox invoke`; S3 replication and the stream mapping are "
        "played by it, so lag and metrics are as fresh as the last invoke",
    ),
}


def notes_for(command: str) -> tuple[str, ...]:
    return NOT_EMULATED.get(command, ())


@dataclass(frozen=True)
class Adapted:
    text: str
    substitutions: tuple[str, ...]


def adapt_template_for_sandbox(text: str) -> str:
    """The template as the sandbox uploads it (see the module docstring for each substitution)."""
    return adapt(text).text


def adapt(text: str) -> Adapted:
    template = cfnyaml.load(text)
    subs: list[str] = []
    resources: dict[str, Any] = template.get("Resources") or {}
    for logical, res in list(resources.items()):
        rtype = res.get("Type")
        props = res.get("Properties") or {}
        if rtype == "AWS::DynamoDB::GlobalTable":
            table = {k: v for k, v in props.items() if k in (
                "TableName", "AttributeDefinitions", "KeySchema", "BillingMode", "StreamSpecification",
                "GlobalSecondaryIndexes", "LocalSecondaryIndexes", "TimeToLiveSpecification")}
            if "SSESpecification" in props:
                table["SSESpecification"] = {"SSEEnabled": props["SSESpecification"].get("SSEEnabled", True)}
            home = _home_replica(props.get("Replicas"))
            for key in ("PointInTimeRecoverySpecification", "DeletionProtectionEnabled"):
                if key in home:
                    table[key] = home[key]
            res["Type"] = "AWS::DynamoDB::Table"
            res["Properties"] = table
            subs.append(f"{logical}: AWS::DynamoDB::GlobalTable -> AWS::DynamoDB::Table (replicas dropped)")
        elif rtype == "AWS::Lambda::EventSourceMapping":
            del resources[logical]
            _drop_references(template, logical)
            subs.append(f"{logical}: AWS::Lambda::EventSourceMapping removed (played by `sandbox invoke`)")
        elif rtype == "AWS::KMS::Key":
            if isinstance(props.get("KeyPolicy"), dict):
                props["KeyPolicy"] = {"Fn::ToJsonString": props["KeyPolicy"]} if _has_intrinsics(
                    props["KeyPolicy"]) else json.dumps(props["KeyPolicy"])
                subs.append(f"{logical}: KeyPolicy passed as a JSON string")
            if isinstance(props.get("Tags"), list):
                props["Tags"] = [{"TagKey": t.get("Key"), "TagValue": t.get("Value")} for t in props["Tags"]]
                subs.append(f"{logical}: Tags given as TagKey/TagValue (moto reads the API's tag shape)")
    return Adapted(cfnyaml.dump_json(template), tuple(subs))


def _home_replica(replicas: Any) -> dict[str, Any]:
    """The replica in the stack's own region (the last branch of an Fn::If list holds the single one)."""
    if isinstance(replicas, dict) and "Fn::If" in replicas:
        return _home_replica(replicas["Fn::If"][2])
    for replica in replicas or []:
        if isinstance(replica, dict) and replica.get("Region") == {"Ref": "AWS::Region"}:
            return replica
    return {}


def _has_intrinsics(value: Any) -> bool:
    if isinstance(value, dict):
        return any(k == "Ref" or k.startswith("Fn::") or _has_intrinsics(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_intrinsics(v) for v in value)
    return False


def _refers_to(value: Any, logical: str) -> bool:
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "Ref" and v == logical:
                return True
            if k == "Fn::GetAtt" and (v[0] if isinstance(v, list) else str(v).split(".")[0]) == logical:
                return True
            if k == "Fn::Sub" and ("${" + logical) in json.dumps(v):
                return True
            if _refers_to(v, logical):
                return True
    elif isinstance(value, list):
        return any(_refers_to(v, logical) for v in value)
    return False


def _drop_references(template: dict[str, Any], logical: str) -> None:
    for res in (template.get("Resources") or {}).values():
        deps = res.get("DependsOn")
        if deps == logical:
            del res["DependsOn"]
        elif isinstance(deps, list) and logical in deps:
            res["DependsOn"] = [d for d in deps if d != logical]
    outputs = template.get("Outputs") or {}
    for name in [n for n, o in outputs.items() if _refers_to(o, logical)]:
        del outputs[name]


# --------------------------------------------------------------------------- StackSet emulation


def merged_parameters(stack_set_params: list[dict[str, Any]], overrides: list[dict[str, Any]]) -> list[dict[str, str]]:
    """What AWS deploys: the stack set's parameters with the instance's overrides on top."""
    values = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack_set_params}
    for p in overrides:
        if p.get("UsePreviousValue"):
            continue
        values[p["ParameterKey"]] = p.get("ParameterValue", "")
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]


class StackSetEmulation:
    """botocore hooks that make moto's StackSets behave like AWS's for the calls replctl makes."""

    def __init__(self, session_for_account: Callable[[str, str], Any], log: Callable[[str], None] | None = None):
        self._session_for = session_for_account
        self._log = log or (lambda _m: None)
        self._lock = threading.Lock()

    def install(self, cfn_client: Any) -> None:
        events = cfn_client.meta.events
        for op in ("UpdateStackSet", "UpdateStackInstances", "CreateStackInstances"):
            events.register(f"provide-client-params.cloudformation.{op}", _stash_params)
        events.register("provide-client-params.cloudformation.CreateStackInstances", self._merge_overrides(cfn_client))
        events.register("after-call.cloudformation.UpdateStackSet", self._after_update(cfn_client))
        events.register("after-call.cloudformation.UpdateStackInstances", self._after_update(cfn_client))
        events.register("after-call.cloudformation.CreateStackInstances", self._after_update(cfn_client))

    def _merge_overrides(self, cfn: Any) -> Callable[..., None]:
        def hook(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
            overrides = params.get("ParameterOverrides")
            if not overrides:
                return
            ss = cfn.describe_stack_set(StackSetName=params["StackSetName"])["StackSet"]
            params["ParameterOverrides"] = merged_parameters(ss.get("Parameters", []), overrides)
            context["replctl_expanded_overrides"] = True
        return hook

    def _after_update(self, cfn: Any) -> Callable[..., None]:
        def hook(parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
            params = context.get("replctl_params")
            if params is None or parsed.get("Error") or "OperationId" not in parsed:
                return
            name = params["StackSetName"]
            accounts = params.get("Accounts") or []
            regions = params.get("Regions") or []
            if context.get("replctl_expanded_overrides") and not context.get("replctl_restoring"):
                # moto stored the expanded list as the instances' overrides; AWS stores what was
                # sent. Put the original overrides back (a metadata-only call in moto).
                cfn.update_stack_instances(StackSetName=name, Accounts=accounts, Regions=regions,
                                           ParameterOverrides=params.get("ParameterOverrides") or [])
            ss = cfn.describe_stack_set(StackSetName=name)["StackSet"]
            for account in accounts:
                for region in regions:
                    inst = cfn.describe_stack_instance(StackSetName=name, StackInstanceAccount=account,
                                                       StackInstanceRegion=region)["StackInstance"]
                    params_now = merged_parameters(ss.get("Parameters", []), inst.get("ParameterOverrides", []))
                    self.reconcile(name, account, region, _template_body(ss), params_now)
        return hook

    def reconcile(self, stack_set: str, account: str, region: str, template_body: str,
                  parameters: list[dict[str, str]]) -> None:
        """Bring the instance's stack to the stack set's template/parameters; fill what moto skipped."""
        with self._lock:
            session = self._session_for(account, region)
            cfn = session.client("cloudformation")
            stack = instance_stack_name(cfn, stack_set)
            if stack is None:
                return
            # moto creates a new instance from the stack set's *first* template and never
            # propagates updates; StackSets would deploy the current template and parameters.
            try:
                cfn.update_stack(StackName=stack, TemplateBody=template_body, Parameters=parameters,
                                 Capabilities=["CAPABILITY_NAMED_IAM"])
                self._log(f"sandbox: stack in {account}/{region} brought to the stack set's template and parameters")
            except Exception as exc:
                if "No updates are to be performed" not in str(exc):
                    raise
            values = {p["ParameterKey"]: p["ParameterValue"] for p in parameters}
            complete_skipped_resources(session, cfn, stack, template_body, values, account=account, region=region)


def _stash_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    # after-call handlers see the response, not the request: keep the request's parameters
    # as the caller sent them (before any expansion below).
    context["replctl_params"] = copy.deepcopy(params)


def _template_body(stack_set: dict[str, Any]) -> str:
    return str(stack_set["TemplateBody"])


class AccountClients:
    """`.client(service)` in one account and region, through the factory (endpoint, caching)."""

    def __init__(self, factory: Any, account: str, region: str, role_arn: str) -> None:
        self.factory, self.account, self.region, self.role_arn = factory, account, region, role_arn

    def client(self, service: str) -> Any:
        return self.factory.client(service, region=self.region, account=self.account, role_arn=self.role_arn)


def install_stackset_emulation(factory: Any, execution_role_name: str, log: Callable[[str], None] | None = None) -> None:
    """Make every admin CloudFormation client from `factory` emulate StackSets' propagation, and
    keep bucket-policy Deny statements away from the emulator (see `without_denies`)."""
    emulation = StackSetEmulation(
        lambda account, region: AccountClients(
            factory, account, region, f"arn:aws:iam::{account}:role/{execution_role_name}"), log)

    def hook(service: str, account: str | None, client: Any) -> None:
        if service == "cloudformation" and account is None:
            emulation.install(client)
        if service == "s3":
            client.meta.events.register("provide-client-params.s3.PutBucketPolicy", without_denies)

    factory.add_client_hook(hook)


def without_denies(params: dict[str, Any], **_: Any) -> None:
    """moto enforces a bucket policy's Deny on every object call, whatever its Principal and
    Condition say (a TLS-only Deny blocks HTTPS uploads too), so the emulator gets the policy
    without its Deny statements. The policy replctl sends to AWS is unchanged."""
    try:
        policy = json.loads(params["Policy"])
    except (KeyError, TypeError, ValueError):
        return
    statements = policy.get("Statement", [])
    if isinstance(statements, list):
        policy["Statement"] = [st for st in statements if st.get("Effect") != "Deny"]
        params["Policy"] = json.dumps(policy)


def instance_stack_name(cfn: Any, stack_set: str) -> str | None:
    for page in cfn.get_paginator("list_stacks").paginate():
        for s in page.get("StackSummaries", []):
            if s["StackStatus"].startswith("DELETE"):
                continue
            n = s["StackName"]
            if n == f"StackSet:{stack_set}" or n.startswith(f"StackSet-{stack_set}-"):
                return str(n)
    return None


# --------------------------------------------------------------------------- what moto's CFN skips


def complete_skipped_resources(session: Any, cfn: Any, stack: str, template_body: str, params: dict[str, str], *,
                               account: str, region: str) -> list[str]:
    """Apply, through the service APIs, the template properties and types moto's CFN skipped."""
    template = cfnyaml.load(template_body)
    # moto lists a skipped resource type as a blank entry: keep only the real ones.
    resources = {r["LogicalResourceId"]: r for r in cfn.describe_stack_resources(StackName=stack)["StackResources"]
                 if r.get("LogicalResourceId")}
    physical = {k: r.get("PhysicalResourceId", "") for k, r in resources.items()}
    attributes: dict[tuple[str, str], str] = {}
    for logical, res in (template.get("Resources") or {}).items():
        pid = physical.get(logical, "")
        if res.get("Type") == "AWS::SQS::Queue" and pid:
            attributes[(logical, "QueueName")] = pid.rsplit("/", 1)[-1]
            attributes[(logical, "Arn")] = f"arn:aws:sqs:{region}:{account}:{pid.rsplit('/', 1)[-1]}"
        if res.get("Type") == "AWS::S3::Bucket" and pid:
            attributes[(logical, "Arn")] = f"arn:aws:s3:::{pid}"
        if res.get("Type") == "AWS::IAM::Role" and pid:
            try:
                attributes[(logical, "Arn")] = session.client("iam").get_role(RoleName=pid)["Role"]["Arn"]
            except Exception:  # noqa: BLE001 - left unresolved; only the replication rule uses it
                pass
    ev = cfnyaml.Evaluator(template, params, account=account, region=region, stack_name=stack,
                           physical=physical, attributes=attributes)
    done: list[str] = []
    s3 = session.client("s3")
    cw = session.client("cloudwatch")
    ddb = session.client("dynamodb")
    for logical, res in (template.get("Resources") or {}).items():
        if not ev.active(res):
            continue
        props = ev.value(copy.deepcopy(res.get("Properties") or {}))
        match res.get("Type"):
            case "AWS::S3::Bucket":
                bucket = physical.get(logical)
                if not bucket:
                    continue
                if props.get("VersioningConfiguration"):
                    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={
                        "Status": props["VersioningConfiguration"]["Status"]})
                if props.get("BucketEncryption"):
                    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [
                        {"ApplyServerSideEncryptionByDefault": r.get("ServerSideEncryptionByDefault", {}),
                         **({"BucketKeyEnabled": r["BucketKeyEnabled"]} if "BucketKeyEnabled" in r else {})}
                        for r in props["BucketEncryption"].get("ServerSideEncryptionConfiguration", [])]})
                if props.get("PublicAccessBlockConfiguration"):
                    s3.put_public_access_block(Bucket=bucket,
                                               PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"])
                if props.get("OwnershipControls"):
                    s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls=props["OwnershipControls"])
                rc = props.get("ReplicationConfiguration")
                if rc and rc.get("Rules"):
                    s3.put_bucket_replication(Bucket=bucket, ReplicationConfiguration=_replication_api(rc))
                else:
                    try:
                        s3.delete_bucket_replication(Bucket=bucket)
                    except Exception:  # noqa: BLE001 - nothing to delete
                        pass
                done.append(f"bucket {bucket}")
            case "AWS::DynamoDB::Table" | "AWS::DynamoDB::GlobalTable":
                name = physical.get(logical) or props.get("TableName")
                if name:
                    ddb.update_continuous_backups(TableName=name, PointInTimeRecoverySpecification={
                        "PointInTimeRecoveryEnabled": True})
                    done.append(f"table {name} PITR")
            case "AWS::CloudWatch::Alarm":
                cw.put_metric_alarm(**_alarm_api(props))
                done.append(f"alarm {props.get('AlarmName')}")
    return done


def _replication_api(rc: dict[str, Any]) -> dict[str, Any]:
    rules = []
    for r in rc.get("Rules", []):
        rule = {k: v for k, v in r.items() if k in (
            "ID", "Priority", "Filter", "Status", "Destination", "DeleteMarkerReplication", "SourceSelectionCriteria")}
        if "Id" in r:
            rule["ID"] = r["Id"]
        if "Filter" in rule and not rule["Filter"]:
            rule["Filter"] = {"Prefix": ""}
        rules.append(rule)
    return {"Role": rc["Role"], "Rules": rules}


_ALARM_KEYS = (
    "AlarmName", "AlarmDescription", "ActionsEnabled", "OKActions", "AlarmActions", "InsufficientDataActions",
    "MetricName", "Namespace", "Statistic", "ExtendedStatistic", "Dimensions", "Period", "Unit", "EvaluationPeriods",
    "DatapointsToAlarm", "Threshold", "ComparisonOperator", "TreatMissingData", "Metrics", "ThresholdMetricId",
)


def _alarm_api(props: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in props.items() if k in _ALARM_KEYS}
    for k in ("Threshold",):
        if k in out:
            out[k] = float(out[k])
    for k in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):
        if k in out:
            out[k] = int(out[k])
    return out


# =========================================================================== EventBridge and the
# events AWS services publish to it. These adapt moto's models inside the emulator's process:
# `replctl.sandbox.server` installs them at start; tests that run moto in-process and need them
# use `emulator_adaptations()`. Each rule cites the AWS documentation sentence it implements.
# (moto has no public hook for any of this; the methods wrapped are moto 5.2.5's, which
# pyproject.toml pins, and tests/functional/test_sandbox_eventbridge.py breaks if they change.)

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
    neither): such a target is refused rather than handed the wrong event.
    """
    if target.get("InputPath") or target.get("InputTransformer"):
        raise NotImplementedError("sandbox: InputPath / InputTransformer on a Lambda target is not emulated")
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
