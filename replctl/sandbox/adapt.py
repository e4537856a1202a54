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

Not emulated (said once by the commands that would need them; see `NOT_EMULATED`).
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
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
