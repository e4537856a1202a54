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
(`install_stackset_emulation`; each rule quotes the API reference sentence it follows):
- instance parameter overrides are merged with the stack set's parameters (moto replaces), and
  kept across stack set updates (moto overwrites the named instances' overrides with the stack
  set's parameters on UpdateStackSet);
- UpdateStackSet / UpdateStackInstances / CreateStackInstances reach the deployed stacks (moto
  only updates metadata): the named instances' stacks get the stack set's current template and
  parameters, as StackSets would;
- instance status as AWS reports it: an UpdateStackSet that specifies the template or the
  Parameters property marks every instance OUTDATED, and the instances an operation deployed
  become CURRENT (or OUTDATED/FAILED with the stack update's error). moto says CURRENT always,
  so the sandbox keeps its own record (`StatusBook`, a file in the sandbox's state folder) and
  corrects ListStackInstances and DescribeStackInstance;
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
from pathlib import Path
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
#
# moto 5.2 keeps StackSet metadata only: it never updates a deployed stack, always reports every
# instance CURRENT, replaces (does not merge) the stack set's parameters with an instance's
# overrides, and an UpdateStackSet naming instances overwrites their overrides with the stack
# set's parameters. The hooks below make the admin CloudFormation client answer as AWS does, each
# rule quoting the AWS CloudFormation API reference sentence it follows; the emulation's own
# calls go through a plain client outside the factory, so replctl's call accounting never sees
# them. tests/functional/sandbox/test_stacksets.py has a test per rule.

#: The operations whose results the emulation completes.
OPERATIONS = ("CreateStackInstances", "UpdateStackInstances", "UpdateStackSet")


def merged_parameters(stack_set_params: list[dict[str, Any]], overrides: list[dict[str, Any]]) -> list[dict[str, str]]:
    """What AWS deploys: the stack set's parameters with the instance's overrides on top."""
    values = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack_set_params}
    for p in overrides:
        if p.get("UsePreviousValue"):
            continue
        values[p["ParameterKey"]] = p.get("ParameterValue", "")
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]


def resolved_overrides(given: list[dict[str, Any]] | None, previous: dict[str, str]) -> dict[str, str]:
    """An instance's overrides after Create/UpdateStackInstances sent `given` (None: not sent).

    UpdateStackInstances, ParameterOverrides: "To leave all parameters set to their present
    values, don't specify this property at all"; "To leave an overridden parameter set to its
    present value, include the parameter and specify UsePreviousValue as true"; "To set an
    overridden parameter back to the value specified in the stack set, specify a parameter list
    but don't include the parameter in the list."
    """
    if given is None:
        return dict(previous)
    return {p["ParameterKey"]: previous.get(p["ParameterKey"], "") if p.get("UsePreviousValue")
            else p.get("ParameterValue", "") for p in given}


def _pairs(values: dict[str, str]) -> list[dict[str, str]]:
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]


class StatusBook:
    """Each instance's status as AWS would report it, by stack set id (moto says CURRENT always).

    Kept in a JSON file next to the sandbox's server state, so a later `replctl` process sees
    what an earlier one's operations left; a stack set id is new whenever the emulator is reset.
    Without a path (tests, bench) it lives in memory.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._memory: dict[str, dict[str, dict[str, str]]] = {}

    @classmethod
    def for_sandbox(cls) -> StatusBook:
        from replctl.sandbox.state import state_dir

        return cls(state_dir() / "stackset-status.json")

    def _load(self) -> dict[str, dict[str, dict[str, str]]]:
        if self.path is None:
            return self._memory
        try:
            return dict(json.loads(self.path.read_text()))
        except (FileNotFoundError, ValueError):
            return {}

    def get(self, stack_set_id: str, account: str, region: str) -> dict[str, str] | None:
        return self._load().get(stack_set_id, {}).get(f"{account}/{region}")

    def record(self, stack_set_id: str, states: dict[tuple[str, str], dict[str, str]]) -> None:
        data = self._load()
        book = data.setdefault(stack_set_id, {})
        book.update({f"{a}/{r}": s for (a, r), s in states.items()})
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
            tmp.replace(self.path)


CURRENT = {"Status": "CURRENT", "DetailedStatus": "SUCCEEDED"}
OUTDATED = {"Status": "OUTDATED", "DetailedStatus": "SUCCEEDED"}


class StackSetEmulation:
    """botocore hooks that make moto's StackSets answer like AWS's for the calls replctl makes."""

    def __init__(self, session_for_account: Callable[[str, str], Any], plain_client: Callable[[Any], Any],
                 book: StatusBook | None = None, log: Callable[[str], None] | None = None):
        self._session_for = session_for_account
        self._plain_for = plain_client  # the admin client -> an unhooked client to the same endpoint
        self.book = book or StatusBook()
        self._log = log or (lambda _m: None)
        self._lock = threading.RLock()

    def install(self, cfn_client: Any) -> None:
        events = cfn_client.meta.events
        plain = self._plain_for(cfn_client)
        for op in OPERATIONS:
            events.register(f"provide-client-params.cloudformation.{op}", self._before(plain))
            events.register(f"after-call.cloudformation.{op}", self._after(plain))
        events.register("after-call.cloudformation.ListStackInstances", self._correct_listing)
        events.register("after-call.cloudformation.DescribeStackInstance", self._correct_instance)

    # -- before the call: what AWS would keep, and what moto needs ---------------------------------

    def _before(self, plain: Any) -> Callable[..., None]:
        def hook(params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
            name = params["StackSetName"]
            try:
                ss = plain.describe_stack_set(StackSetName=name)["StackSet"]
            except Exception:  # noqa: BLE001 - the call itself will report the missing stack set
                return
            request = copy.deepcopy(params)
            if model.name != "UpdateStackSet":
                _check_overridable(model.name, request.get("ParameterOverrides") or [], ss)
            targets = self._targets(plain, name, request)
            context["replctl_emulation"] = {
                "request": request, "stack_set_id": ss["StackSetId"], "targets": targets,
                "previous": {k: _overrides(plain, name, k) for k in targets if model.name != "CreateStackInstances"},
            }
            if model.name == "CreateStackInstances" and params.get("ParameterOverrides"):
                # CreateStackInstances, ParameterOverrides: overrides apply on top of the stack set's
                # values; moto replaces them instead ("Missing parameter ..."), so it gets the merge.
                params["ParameterOverrides"] = merged_parameters(ss.get("Parameters", []), params["ParameterOverrides"])

        return hook

    def _targets(self, plain: Any, name: str, request: dict[str, Any]) -> list[tuple[str, str]]:
        accounts = request.get("Accounts") or request.get("DeploymentTargets", {}).get("Accounts") or []
        if accounts:
            return [(a, r) for r in request.get("Regions", []) for a in accounts]
        # UpdateStackSet, Accounts: "To update all the stack instances associated with this stack
        # set, don't specify the Accounts or Regions properties."
        return _instance_keys(plain, name)

    # -- after the call: overrides, stacks and statuses as AWS leaves them -------------------------

    def _after(self, plain: Any) -> Callable[..., None]:
        def hook(parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
            state = context.get("replctl_emulation")
            if state is None or parsed.get("Error") or "OperationId" not in parsed:
                return
            with self._lock:
                self._complete(plain, model.name, state)

        return hook

    def _complete(self, plain: Any, op: str, state: dict[str, Any]) -> None:
        request, targets = state["request"], state["targets"]
        name = request["StackSetName"]
        ss = plain.describe_stack_set(StackSetName=name)["StackSet"]
        given = request.get("ParameterOverrides")
        if op == "UpdateStackSet":
            # UpdateStackInstances: "During stack set updates, any parameters overridden for a stack
            # instance aren't updated, but retain their overridden value." (moto overwrote them)
            overrides = dict(state["previous"])
        else:
            overrides = {k: resolved_overrides(given, state["previous"].get(k, {})) for k in targets}
        for (account, region), values in overrides.items():
            plain.update_stack_instances(StackSetName=name, Accounts=[account], Regions=[region],
                                         ParameterOverrides=_pairs(values))  # metadata only in moto
        states: dict[tuple[str, str], dict[str, str]] = {}
        if op == "UpdateStackSet" and any(k in request for k in ("TemplateBody", "TemplateURL", "Parameters")):
            # UpdateStackSet, Accounts: "If the stack set update includes changes to the template (that
            # is, if the TemplateBody or TemplateURL properties are specified), or the Parameters
            # property, CloudFormation marks all stack instances with a status of OUTDATED prior to
            # updating the stack instances in the specified accounts and AWS Regions." Otherwise it
            # leaves "all other stack instances with their existing stack instance status".
            states.update({k: OUTDATED for k in _instance_keys(plain, name)})
        for account, region in targets:
            # The operation deploys the stack set's current template and parameters to the named
            # instances (UpdateStackSet: "Subsequent CreateStackInstances calls on the specified stack
            # set use the updated stack set"; UpdateStackInstances updates outdated instances).
            params_now = merged_parameters(ss.get("Parameters", []), _pairs(overrides.get((account, region), {})))
            failure = self.reconcile(name, account, region, _template_body(ss), params_now)
            states[(account, region)] = CURRENT if failure is None else {
                "Status": "OUTDATED", "DetailedStatus": "FAILED", "StatusReason": failure}
        self.book.record(ss["StackSetId"], states)

    def reconcile(self, stack_set: str, account: str, region: str, template_body: str,
                  parameters: list[dict[str, str]]) -> str | None:
        """Bring the instance's stack to the stack set's template/parameters and fill what moto
        skipped; the stack update's error when it fails (AWS then reports the instance FAILED)."""
        with self._lock:
            session = self._session_for(account, region)
            cfn = session.client("cloudformation")
            stack = instance_stack_name(cfn, stack_set)
            if stack is None:
                return None
            declared = set(cfnyaml.load(template_body).get("Parameters") or {})
            unknown = sorted({p["ParameterKey"] for p in parameters} - declared)
            if unknown:
                # A stack is validated against its template (AWS: "Parameters: [X] do not exist in the
                # template"); moto accepts any parameter, so the check is made here.
                return f"Parameters: [{', '.join(unknown)}] do not exist in the template"
            try:
                cfn.update_stack(StackName=stack, TemplateBody=template_body, Parameters=parameters,
                                 Capabilities=["CAPABILITY_NAMED_IAM"])
                self._log(f"sandbox: stack in {account}/{region} brought to the stack set's template and parameters")
            except Exception as exc:  # noqa: BLE001 - reported as the instance's failure, as AWS does
                if "No updates are to be performed" not in str(exc):
                    return str(exc)
            values = {p["ParameterKey"]: p["ParameterValue"] for p in parameters}
            complete_skipped_resources(session, cfn, stack, template_body, values, account=account, region=region)
            return None

    # -- what replctl reads ----------------------------------------------------------------------

    def _correct(self, summary: dict[str, Any]) -> None:
        state = self.book.get(str(summary.get("StackSetId", "")), summary.get("Account", ""), summary.get("Region", ""))
        if state is None:
            return
        summary["Status"] = state["Status"]
        summary["StackInstanceStatus"] = {"DetailedStatus": state["DetailedStatus"]}
        summary.pop("StatusReason", None)
        if state.get("StatusReason"):
            summary["StatusReason"] = state["StatusReason"]

    def _correct_listing(self, parsed: dict[str, Any], **_: Any) -> None:
        for summary in parsed.get("Summaries") or []:
            self._correct(summary)

    def _correct_instance(self, parsed: dict[str, Any], **_: Any) -> None:
        if parsed.get("StackInstance"):
            self._correct(parsed["StackInstance"])


def _check_overridable(api: str, overrides: list[dict[str, Any]], stack_set: dict[str, Any]) -> None:
    # UpdateStackInstances: "You can only override the parameter values that are specified in the
    # stack set; to add or delete a parameter itself, use UpdateStackSet" (moto accepts any name).
    have = {p["ParameterKey"] for p in stack_set.get("Parameters", [])}
    unknown = sorted({p["ParameterKey"] for p in overrides} - have)
    if unknown:
        from botocore.exceptions import ClientError

        raise ClientError({"Error": {"Code": "ValidationError", "Message": f"Parameters {unknown} are not "
                                     "specified in the stack set; only those can be overridden"},
                           "ResponseMetadata": {"HTTPStatusCode": 400}}, api)


def _instance_keys(plain: Any, name: str) -> list[tuple[str, str]]:
    keys: list[tuple[str, str]] = []
    for page in plain.get_paginator("list_stack_instances").paginate(StackSetName=name):
        keys += [(s["Account"], s["Region"]) for s in page.get("Summaries", [])]
    return keys


def _overrides(plain: Any, name: str, key: tuple[str, str]) -> dict[str, str]:
    try:
        inst = plain.describe_stack_instance(StackSetName=name, StackInstanceAccount=key[0],
                                             StackInstanceRegion=key[1])["StackInstance"]
    except Exception:  # noqa: BLE001 - not there yet: the call itself will say so
        return {}
    return {p["ParameterKey"]: p.get("ParameterValue", "") for p in inst.get("ParameterOverrides") or []}


def _template_body(stack_set: dict[str, Any]) -> str:
    return str(stack_set["TemplateBody"])


class AccountClients:
    """`.client(service)` in one account and region, through the factory (endpoint, caching)."""

    def __init__(self, factory: Any, account: str, region: str, role_arn: str) -> None:
        self.factory, self.account, self.region, self.role_arn = factory, account, region, role_arn

    def client(self, service: str) -> Any:
        return self.factory.client(service, region=self.region, account=self.account, role_arn=self.role_arn)


def install_stackset_emulation(factory: Any, execution_role_name: str, log: Callable[[str], None] | None = None,
                               book: StatusBook | None = None) -> StackSetEmulation:
    """Make every admin CloudFormation client from `factory` answer like AWS's StackSets (status
    kept in the sandbox's state folder unless `book` says otherwise), and keep bucket-policy Deny
    statements away from the emulator (see `without_denies`)."""

    def plain(client: Any) -> Any:
        return factory.base_session().client("cloudformation", region_name=client.meta.region_name,
                                             endpoint_url=client.meta.endpoint_url)

    emulation = StackSetEmulation(
        lambda account, region: AccountClients(
            factory, account, region, f"arn:aws:iam::{account}:role/{execution_role_name}"),
        plain, book or StatusBook.for_sandbox(), log)

    def hook(service: str, account: str | None, client: Any) -> None:
        if service == "cloudformation" and account is None:
            emulation.install(client)
        if service == "s3":
            client.meta.events.register("provide-client-params.s3.PutBucketPolicy", without_denies)

    factory.add_client_hook(hook)
    return emulation


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
# pyproject.toml pins, and tests/functional/sandbox/test_eventbridge.py breaks if they change.)

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
