"""A scripted fake of the StackSet API (and the bits of S3/CloudWatch a rollout touches).

moto runs every StackSet operation instantly and successfully; this fake does what the AWS
CloudFormation API reference says AWS does, where replctl's behaviour depends on it. Each rule
quotes its sentence where it is implemented (`SOURCES` lists the pages), and
tests/unit/deploy/test_fake_stacksets.py has a test per rule:

- which instances become OUTDATED: an UpdateStackSet that specifies a template or the Parameters
  property marks every instance OUTDATED, then deploys the named ones (none named: all of them);
  UpdateStackInstances deploys the stack set's current template to the named instances only;
- override merging: a stack gets the stack set's parameters with its instance's overrides on
  top; a list passed to Create/UpdateStackInstances is the complete override set (left out: the
  stack set's value; UsePreviousValue: kept; no list at all: every override kept);
- parameter existence: an override must name a parameter the stack set has; a newly added
  parameter can be overridden only once the instance runs the template that declares it; a
  stack whose parameters its template does not declare fails ("Parameters: [X] do not exist in
  the template");
- failure tolerance per region (FailureToleranceCount, default 0): within it the operation
  SUCCEEDS with the failed instance left OUTDATED; beyond it the rest is CANCELLED and the
  operation FAILS;
- one operation at a time: OperationInProgressException without managed execution, queued in
  request order with it;
- INOPERABLE instances are excluded from UpdateStackSet;
- CallAs: a delegated administrator that does not pass DELEGATED_ADMIN finds no stack set;
- operations are RUNNING for a scripted time on a fake clock, instance by instance (results go
  PENDING → RUNNING → SUCCEEDED/FAILED/CANCELLED); scripted failures, throttling and states AWS
  reaches without replctl (a failed delete, a suspended account) come from the test.

Also here: the fixture template (real parameter names), estate config and artifacts shared by
the unit and functional deploy tests.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml
from botocore.exceptions import ClientError

from replctl.aws import is_mutating
from replctl.package import Artifact
from replctl.deploy.model import Clients

ADMIN = "123456789012"
DEV, STAGING, PROD = "111111111111", "222222222222", "333333333333"
REGION = "us-east-1"
NAME = "replctl-replication"

TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Description: Small stand-in for cfn/replication.yaml with the same replctl-set parameter names.
Parameters:
  Environment:
    Type: String
    AllowedValues: [dev, staging, prod]
  AccountIdDev:
    Type: String
  AccountIdStaging:
    Type: String
  AccountIdProd:
    Type: String
  AdminAccountId:
    Type: String
  SSMPathPrefix:
    Type: String
    Default: /app
  ArtifactBucketName:
    Type: String
  ReplicationMonitorCodeKey:
    Type: String
  ConfigValidatorCodeKey:
    Type: String
  StreamProcessorCodeKey:
    Type: String
  ReplicateToStaging:
    Type: String
    AllowedValues: ["true", "false"]
    Default: "false"
  ReplicateToProd:
    Type: String
    AllowedValues: ["true", "false"]
    Default: "false"
  ObserverRoleName:
    Type: String
    Default: replctl-observer
  ResourcePrefix:
    Type: String
    Default: replctl
  LogRetentionDays:
    Type: Number
    Default: 90
Resources:
  Accounts:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub ${SSMPathPrefix}/${Environment}/config/accounts
      Type: String
      Value: !Sub ${AccountIdDev},${AccountIdStaging},${AccountIdProd},${AdminAccountId}
  Code:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub ${SSMPathPrefix}/${Environment}/config/code
      Type: String
      Value: !Sub s3://${ArtifactBucketName}/${ReplicationMonitorCodeKey},${ConfigValidatorCodeKey},${StreamProcessorCodeKey}
  Targets:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub ${SSMPathPrefix}/${Environment}/config/targets
      Type: String
      Value: !Sub staging=${ReplicateToStaging},prod=${ReplicateToProd},observer=${ObserverRoleName},prefix=${ResourcePrefix},logs=${LogRetentionDays}
"""

CONFIG = """\
version: 1
admin:
  account_id: "123456789012"
stackset:
  name: replctl-replication
  template: t.yaml
  home_region: us-east-1
  artifact_bucket: replctl-artifacts-{account_id}-{region}
  managed_execution: false
  wait:
    initial_interval_seconds: 1
    max_interval_seconds: 8
    timeout_seconds: 600
ssm_prefix: /app
parameters:
  ResourcePrefix: replctl
environments:
  - name: dev
    account_id: "111111111111"
    regions: [us-east-1]
    ssm_path: /app/dev/config
    parameters:
      LogRetentionDays: "30"
  - name: staging
    account_id: "222222222222"
    regions: [us-east-1]
    ssm_path: /app/staging/config
    parameters:
      LogRetentionDays: "90"
  - name: prod
    account_id: "333333333333"
    regions: [us-east-1]
    ssm_path: /app/prod/config
    parameters:
      LogRetentionDays: "365"
"""

FUNCTIONS = ("replication_monitor", "config_validator", "stream_processor")


def write_estate(where: Path, *, config: str = CONFIG, template: str = TEMPLATE) -> Path:
    """environments.yaml + t.yaml in `where`; returns the config path."""
    (where / "t.yaml").write_text(template)
    path = where / "environments.yaml"
    path.write_text(config)
    return path


def make_artifacts(where: Path, version: str = "1") -> list[Artifact]:
    """Three small ZIPs named by content hash, like replctl.package builds."""
    out = []
    build = where / "build"
    build.mkdir(exist_ok=True)
    for fn in FUNCTIONS:
        tmp = build / f"{fn}.zip"
        with zipfile.ZipFile(tmp, "w") as z:
            info = zipfile.ZipInfo(f"{fn}.py", date_time=(1980, 1, 1, 0, 0, 0))
            z.writestr(info, f"VERSION = {version!r}\ndef handler(event, context):\n    return {{}}\n")
        data = tmp.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        key = f"{fn}-{sha[:16]}.zip"
        path = build / key
        tmp.rename(path)
        out.append(Artifact(fn, path, sha, key, len(data)))
    return out


def error(code: str, message: str, operation: str, status: int = 400) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, operation)


class FakeClock:
    """Time that moves only when someone sleeps; `on_sleep` lets a test act mid-wait."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self.on_sleep: Callable[[float], None] | None = None

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep is not None:
            self.on_sleep(seconds)


# --------------------------------------------------------------------------- StackSets
#
# Each rule the fake implements quotes the AWS CloudFormation API reference sentence it follows
# (API_<Name>.html unless another source is named); tests/unit/deploy/test_fake_stacksets.py has a test
# per rule. Where AWS documents nothing (how long an operation takes, in what order one region's
# accounts go), the fake picks the simplest behaviour and says so.

#: Where each rule comes from, by the short name used in the comments below.
SOURCES = {
    "UpdateStackSet": "https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_UpdateStackSet.html",
    "UpdateStackInstances":
        "https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_UpdateStackInstances.html",
    "CreateStackInstances":
        "https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateStackInstances.html",
    "StackSetOperationPreferences":
        "https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_StackSetOperationPreferences.html",
    "StackSetOperation": "https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_StackSetOperation.html",
    "StackInstanceComprehensiveStatus":
        "https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_StackInstanceComprehensiveStatus.html",
    "ManagedExecution": "https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ManagedExecution.html",
    "CallAs": "https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_UpdateStackSet.html (CallAs)",
    "StackInstancesAction":
        "https://docs.aws.amazon.com/codepipeline/latest/userguide/action-reference-StackSets.html",
    "ParametersNotInTemplate": "CloudFormation's ValidationError, as reported in "
                               "https://github.com/aws-samples/aws-security-reference-architecture-examples/issues/265",
}


class _TagIgnoringLoader(yaml.SafeLoader):
    """Reads a template's Parameters section; intrinsic tags (!Ref, !Sub) become None."""


_TagIgnoringLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def declared_parameters(template: str) -> frozenset[str]:
    """The parameter names a template declares (what CloudFormation validates a stack against)."""
    doc = yaml.load(template, Loader=_TagIgnoringLoader) or {}  # noqa: S506 - a SafeLoader subclass
    return frozenset((doc.get("Parameters") or {}).keys())


@dataclass
class Instance:
    account: str
    region: str
    status: str = "OUTDATED"
    detailed: str = "PENDING"
    reason: str | None = None
    overrides: dict[str, str] = field(default_factory=dict)
    deployed_template: str | None = None  # what the stack in the account runs
    deployed_parameters: dict[str, str] | None = None
    deployments: int = 0


@dataclass
class Operation:
    id: str
    action: str  # CREATE / UPDATE
    api: str
    start: float
    duration: float
    targets: list[tuple[str, str]]  # in the order AWS works through them: region by region
    failures: dict[tuple[str, str], str]
    template: str
    parameters: dict[str, str]
    mark_outdated: bool = False
    tolerance: int = 0  # OperationPreferences.FailureToleranceCount
    status: str = "QUEUED"
    reason: str | None = None
    results: dict[tuple[str, str], tuple[str, str | None]] = field(default_factory=dict)
    settled: bool = False

    @property
    def end(self) -> float:
        return self.start + self.duration


class FakeStackSets:
    """The CloudFormation client methods replctl's plan and rollout call, answering as AWS documents."""

    def __init__(self, clock: FakeClock, *, duration: float = 30.0, s3: FakeS3 | None = None,
                 delegated_admin: bool = False) -> None:
        self.clock = clock
        self.duration = duration
        self.durations: list[float] = []  # scripted durations for the next operations
        self.s3 = s3
        self.stack_set: dict[str, Any] | None = None
        self.instances: dict[tuple[str, str], Instance] = {}
        self.operations: dict[str, Operation] = {}
        self.failures: dict[tuple[str, str], str] = {}  # next operation touching this key fails there
        self.throttle: dict[str, int] = {}  # API name -> how many Throttling errors to raise
        self.raise_next: dict[str, Exception] = {}  # API name -> raise this once
        self.calls: list[tuple[str, dict[str, Any]]] = []
        # The caller is a delegated administrator of the organization that owns the stack set.
        self.delegated_admin = delegated_admin
        self.created_as_self: list[dict[str, Any]] = []  # CreateStackSet calls that missed CallAs
        self.retained_stacks: list[tuple[str, str]] = []  # instances deleted with RetainStacks true
        self._ids = itertools.count(1)
        self.bus: FakeEventBus | None = None  # where state changes are announced (see `_announce`)
        self._announced: dict[str, dict[str, Any]] = {}

    # -- bookkeeping ------------------------------------------------------------------------------

    def _call(self, api: str, kwargs: dict[str, Any]) -> None:
        self.calls.append((api, kwargs))
        left = self.throttle.get(api, 0)
        if left:
            self.throttle[api] = left - 1
            raise error("Throttling", "Rate exceeded", api)
        scripted = self.raise_next.pop(api, None)
        if scripted is not None:
            raise scripted
        self._advance()

    def mutating_calls(self) -> list[str]:
        return [api for api, _ in self.calls if is_mutating(api)]

    def calls_to(self, api: str) -> list[dict[str, Any]]:
        return [kw for name, kw in self.calls if name == api]

    def _as_delegated_admin(self, kw: dict[str, Any]) -> bool:
        # CallAs: "If you are signed in to a delegated administrator account, specify
        # DELEGATED_ADMIN." Without it the call acts on the caller's own account, which holds no
        # such stack set.
        return not self.delegated_admin or kw.get("CallAs") == "DELEGATED_ADMIN"

    def _need_stack_set(self, api: str, kw: dict[str, Any]) -> dict[str, Any]:
        name = kw["StackSetName"]
        if self.stack_set is None or self.stack_set["StackSetName"] != name or not self._as_delegated_admin(kw):
            raise error("StackSetNotFoundException", f"StackSet {name} not found", api, 404)
        return self.stack_set

    def _busy(self) -> list[Operation]:
        return [op for op in self.operations.values() if op.status in ("RUNNING", "QUEUED", "STOPPING")]

    def _advance(self) -> None:
        """Move every unfinished operation to where the clock says it is, instance by instance."""
        now = self.clock()
        for op in self.operations.values():
            if op.settled:
                continue
            if now < op.start:
                op.status = "QUEUED"
                continue
            op.status = "RUNNING"
            failed = self._advance_targets(op, now)
            if failed or now >= op.end:
                op.settled = True
                # StackSetOperation: FAILED — "If the number of failed stacks within a Region exceeds the
                # failure tolerance, the status of the operation in the Region is set to FAILED. This in
                # turn sets the status of the operation as a whole to FAILED"; SUCCEEDED — "completed
                # creating or updating all the specified stacks without exceeding the failure tolerance".
                op.status = "FAILED" if failed else "SUCCEEDED"
                if failed:
                    op.reason = "The Operation failed because the failure tolerance was exceeded"
        self._announce()

    def _advance_targets(self, op: Operation, now: float) -> bool:
        """Each target's result at `now` (one at a time, evenly over the duration). True once the
        failure tolerance is exceeded in a region."""
        n = max(len(op.targets), 1)
        failures: dict[str, int] = {}
        exceeded = False
        for i, key in enumerate(op.targets):
            inst = self.instances.get(key)
            slot_start, slot_end = op.start + op.duration * i / n, op.start + op.duration * (i + 1) / n
            if exceeded:
                # StackSetOperationPreferences, FailureToleranceCount: "The number of accounts, per
                # Region, for which this operation can fail before CloudFormation stops the operation
                # in that Region. If the operation is stopped in a Region, CloudFormation doesn't
                # attempt the operation in any subsequent Regions." (default 0)
                op.results[key] = ("CANCELLED", "Cancelled since failure tolerance has exceeded")
                if inst is not None:
                    inst.status, inst.detailed = "OUTDATED", "CANCELLED"
            elif now < slot_start:
                op.results[key] = ("PENDING", None)
            elif now < slot_end:
                op.results[key] = ("RUNNING", None)
                if inst is not None:
                    inst.detailed = "RUNNING"
            elif op.results.get(key, ("",))[0] not in ("SUCCEEDED", "FAILED"):
                reason = op.failures.get(key) or (self._deploy(inst, op) if inst is not None else None)
                op.results[key] = ("FAILED", reason) if reason else ("SUCCEEDED", None)
                if reason and inst is not None:
                    inst.status, inst.detailed, inst.reason = "OUTDATED", "FAILED", reason
                    if op.action == "DELETE":
                        self._delete_failed(inst, reason)
            if op.results[key][0] == "FAILED":
                failures[key[1]] = failures.get(key[1], 0) + 1
                exceeded = exceeded or failures[key[1]] > op.tolerance
        return exceeded

    def _deploy(self, inst: Instance, op: Operation) -> str | None:
        """Create or update the instance's stack with the operation's template and the stack set's
        parameters merged with the instance's overrides; the failure reason, or None."""
        if op.action == "DELETE":
            return self._delete(inst)
        # UpdateStackInstances: "During stack set updates, any parameters overridden for a stack
        # instance aren't updated, but retain their overridden value."
        values = {**op.parameters, **inst.overrides}
        unknown = sorted(set(values) - declared_parameters(op.template))
        if unknown:
            # ParametersNotInTemplate: a stack is validated against its template.
            return f"Parameters: [{', '.join(unknown)}] do not exist in the template"
        inst.status, inst.detailed, inst.reason = "CURRENT", "SUCCEEDED", None
        inst.deployed_template = op.template
        inst.deployed_parameters = values
        inst.deployments += 1
        return None

    def _start(self, api: str, action: str, targets: list[tuple[str, str]], kwargs: dict[str, Any],
               mark_outdated: bool = False) -> dict[str, Any]:
        ss = self.stack_set
        assert ss is not None
        busy = self._busy()
        start = self.clock()
        if busy:
            if not ss["ManagedExecution"]["Active"]:
                # UpdateStackSet (Errors): OperationInProgressException — "Another operation is
                # currently in progress for this stack set. Only one operation can be performed for a
                # stack set at a given time."
                raise error("OperationInProgressException",
                            f"Another Operation on StackSet {ss['StackSetId']} is in progress", api, 409)
            # ManagedExecution: "If there are already running or queued operations, StackSets queues
            # all incoming operations even if they are non-conflicting"; "After conflicting operations
            # finish, StackSets starts queued operations in request order."
            start = max(op.end for op in busy)
        op_id = kwargs.get("OperationId") or f"op-{next(self._ids)}"
        if op_id in self.operations:
            # UpdateStackSet (Errors): OperationIdAlreadyExistsException — "The specified operation ID
            # already exists."
            raise error("OperationIdAlreadyExistsException", f"operation {op_id} already exists", api, 409)
        failures = {k: self.failures.pop(k) for k in list(self.failures) if k in targets}
        duration = self.durations.pop(0) if self.durations else self.duration
        tolerance = int(kwargs.get("OperationPreferences", {}).get("FailureToleranceCount", 0))
        op = Operation(op_id, action, api, start, duration, list(targets), failures, ss["TemplateBody"],
                       dict(ss["Parameters"]), mark_outdated, tolerance)
        self.operations[op_id] = op
        for key in targets:
            inst = self.instances[key]
            inst.status, inst.detailed, inst.reason = "OUTDATED", "PENDING", None
        self._advance()
        return {"OperationId": op_id}

    def _targets(self, kwargs: dict[str, Any]) -> list[tuple[str, str]]:
        """The named account/region pairs, region by region (RegionOrder first, as given)."""
        accounts = kwargs.get("Accounts") or kwargs.get("DeploymentTargets", {}).get("Accounts") or []
        regions = list(kwargs.get("Regions", []))
        order = [r for r in kwargs.get("OperationPreferences", {}).get("RegionOrder", []) if r in regions]
        regions = order + [r for r in regions if r not in order]
        return [(a, r) for r in regions for a in accounts]

    def _overrides(self, api: str, given: list[dict[str, Any]] | None, previous: dict[str, str]) -> dict[str, str]:
        """An instance's overrides after a Create/UpdateStackInstances call."""
        assert self.stack_set is not None
        if given is None:
            # UpdateStackInstances, ParameterOverrides: "To leave all parameters set to their present
            # values, don't specify this property at all."
            return dict(previous)
        values: dict[str, str] = {}
        for p in given:
            key = p["ParameterKey"]
            if key not in self.stack_set["Parameters"]:
                # UpdateStackInstances: "You can only override the parameter values that are specified
                # in the stack set; to add or delete a parameter itself, use UpdateStackSet".
                raise error("ValidationError", f"Parameter {key} is not in the stack set; "
                            "override only parameters the stack set has", api)
            # "To leave an overridden parameter set to its present value, include the parameter and
            # specify UsePreviousValue as true."
            values[key] = previous[key] if p.get("UsePreviousValue") else p["ParameterValue"]
        # "To set an overridden parameter back to the value specified in the stack set, specify a
        # parameter list but don't include the parameter in the list."
        return values

    def _template(self, kwargs: dict[str, Any]) -> str:
        if "TemplateBody" in kwargs:
            return str(kwargs["TemplateBody"])
        url = kwargs["TemplateURL"]
        assert self.s3 is not None, "TemplateURL needs the fake S3"
        host, key = url.removeprefix("https://").split("/", 1)
        bucket = host.split(".s3.", 1)[0]
        return self.s3.buckets[bucket]["objects"][key].decode()

    # -- the API ------------------------------------------------------------------------------------

    def describe_stack_set(self, **kw: Any) -> dict[str, Any]:
        self._call("DescribeStackSet", kw)
        ss = self._need_stack_set("DescribeStackSet", kw)
        return {"StackSet": {
            "StackSetName": ss["StackSetName"], "StackSetId": ss["StackSetId"], "Status": "ACTIVE",
            "TemplateBody": ss["TemplateBody"],
            "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in ss["Parameters"].items()],
            "PermissionModel": ss["PermissionModel"], "ManagedExecution": dict(ss["ManagedExecution"]),
        }}

    def create_stack_set(self, **kw: Any) -> dict[str, Any]:
        self._call("CreateStackSet", kw)
        if not self._as_delegated_admin(kw):
            self.created_as_self.append(kw)  # a stack set of the caller's own account, not the estate's
            return {"StackSetId": f"{kw['StackSetName']}:created-as-self"}
        if self.stack_set is not None:
            raise error("NameAlreadyExistsException", "exists", "CreateStackSet", 409)
        template = self._template(kw)
        parameters = {p["ParameterKey"]: p["ParameterValue"] for p in kw.get("Parameters", [])}
        self._check_declared("CreateStackSet", parameters, template)
        self.stack_set = {
            "StackSetName": kw["StackSetName"], "StackSetId": f"{kw['StackSetName']}:fake",
            "TemplateBody": template, "Parameters": parameters,
            "PermissionModel": kw.get("PermissionModel", "SELF_MANAGED"),
            "ManagedExecution": dict(kw.get("ManagedExecution", {"Active": False})),
            "create_kwargs": kw,
        }
        return {"StackSetId": self.stack_set["StackSetId"]}

    @staticmethod
    def _check_declared(api: str, parameters: dict[str, str], template: str) -> None:
        unknown = sorted(set(parameters) - declared_parameters(template))
        if unknown:  # ParametersNotInTemplate
            raise error("ValidationError", f"Parameters: [{', '.join(unknown)}] do not exist in the template", api)

    def update_stack_set(self, **kw: Any) -> dict[str, Any]:
        self._call("UpdateStackSet", kw)
        ss = self._need_stack_set("UpdateStackSet", kw)
        if bool(kw.get("Accounts")) != bool(kw.get("Regions")) and not kw.get("DeploymentTargets"):
            # UpdateStackSet, Accounts: "If you specify accounts, you must also specify the AWS Regions
            # in which to update stack set instances."
            raise error("ValidationError", "Accounts and Regions go together", "UpdateStackSet")
        targets = self._targets(kw)
        if not kw.get("Accounts") and not kw.get("DeploymentTargets"):
            # "To update all the stack instances associated with this stack set, don't specify the
            # Accounts or Regions properties."
            targets = list(self.instances)
        for key in targets:
            if key not in self.instances:
                # UpdateStackSet (Errors): StackInstanceNotFoundException — "The specified stack instance
                # doesn't exist."
                raise error("StackInstanceNotFoundException", "The specified stack instance doesn't exist.",
                            "UpdateStackSet", 404)
        if self._busy() and not ss["ManagedExecution"]["Active"]:
            raise error("OperationInProgressException", "Another Operation is in progress", "UpdateStackSet", 409)
        template = self._template(kw) if "TemplateBody" in kw or "TemplateURL" in kw else ss["TemplateBody"]
        values = dict(ss["Parameters"])
        if "Parameters" in kw:
            values = {p["ParameterKey"]: ss["Parameters"][p["ParameterKey"]] if p.get("UsePreviousValue")
                      else p["ParameterValue"] for p in kw["Parameters"]}
        self._check_declared("UpdateStackSet", values, template)
        # "Even if the stack set operation created by updating the stack set fails ..., the stack set
        # is updated with your changes. Subsequent CreateStackInstances calls on the specified stack
        # set use the updated stack set."
        ss["TemplateBody"], ss["Parameters"] = template, values
        if "ManagedExecution" in kw:
            ss["ManagedExecution"] = dict(kw["ManagedExecution"])
        marks = "TemplateBody" in kw or "TemplateURL" in kw or "Parameters" in kw
        if marks:
            # Accounts: "If the stack set update includes changes to the template (that is, if the
            # TemplateBody or TemplateURL properties are specified), or the Parameters property,
            # CloudFormation marks all stack instances with a status of OUTDATED prior to updating the
            # stack instances in the specified accounts and AWS Regions." (Otherwise "leaving all other
            # stack instances with their existing stack instance status".)
            for inst in self.instances.values():
                if inst.status != "INOPERABLE":
                    inst.status = "OUTDATED"
        # StackInstanceComprehensiveStatus, INOPERABLE: "Stacks in this state are excluded from
        # further UpdateStackSet operations."
        targets = [k for k in targets if self.instances[k].status != "INOPERABLE"]
        return self._start("UpdateStackSet", "UPDATE", targets, kw, marks)

    def create_stack_instances(self, **kw: Any) -> dict[str, Any]:
        self._call("CreateStackInstances", kw)
        ss = self._need_stack_set("CreateStackInstances", kw)
        overrides = self._overrides("CreateStackInstances", kw.get("ParameterOverrides"), {})
        targets = self._targets(kw)
        if self._busy() and not ss["ManagedExecution"]["Active"]:
            raise error("OperationInProgressException", "Another Operation is in progress",
                        "CreateStackInstances", 409)
        for key in targets:
            # The new stack gets the stack set's current template (UpdateStackSet: "Subsequent
            # CreateStackInstances calls on the specified stack set use the updated stack set").
            if key not in self.instances:
                self.instances[key] = Instance(*key, overrides=dict(overrides))
            else:
                self.instances[key].overrides = dict(overrides)
        return self._start("CreateStackInstances", "CREATE", targets, kw)

    def update_stack_instances(self, **kw: Any) -> dict[str, Any]:
        self._call("UpdateStackInstances", kw)
        ss = self._need_stack_set("UpdateStackInstances", kw)
        targets = self._targets(kw)
        for key in targets:
            if key not in self.instances:
                # "You can only update stack instances in AWS Regions and accounts where they already
                # exist; to create additional stack instances, use CreateStackInstances."
                raise error("StackInstanceNotFoundException", "The specified stack instance doesn't exist.",
                            "UpdateStackInstances", 404)
        new = {k: self._overrides("UpdateStackInstances", kw.get("ParameterOverrides"), self.instances[k].overrides)
               for k in targets}
        for key in targets:
            self._check_new_overrides(self.instances[key], new[key])
        if self._busy() and not ss["ManagedExecution"]["Active"]:
            raise error("OperationInProgressException", "Another Operation is in progress",
                        "UpdateStackInstances", 409)
        for key in targets:
            self.instances[key].overrides = new[key]
        # The operation deploys the stack set's current template to the named instances only
        # (StackInstancesAction: it "creates new stack instances or updates outdated stack instances.
        # An instance becomes outdated when a stack set is updated, but not all instances within it
        # are updated.").
        return self._start("UpdateStackInstances", "UPDATE", targets, kw)

    @staticmethod
    def _check_new_overrides(inst: Instance, overrides: dict[str, str]) -> None:
        # UpdateStackInstances: "If you add a parameter to a template, before you can override the
        # parameter value specified in the stack set you must first use UpdateStackSet to update all
        # stack instances with the updated template ... Once a stack instance has been updated with
        # the new parameter, you can then override the parameter value using UpdateStackInstances."
        if inst.deployed_template is None:
            return  # no stack yet: the operation creates it from the current template
        fresh = set(overrides) - set(inst.overrides) - declared_parameters(inst.deployed_template)
        if fresh:
            raise error("ValidationError", f"Parameters {sorted(fresh)} are not yet in the template of the stack "
                        f"instance {inst.account}/{inst.region}; update it with the new template first",
                        "UpdateStackInstances")

    def list_stack_instances(self, **kw: Any) -> dict[str, Any]:
        self._call("ListStackInstances", kw)
        self._need_stack_set("ListStackInstances", kw)
        rows = [{"Account": i.account, "Region": i.region, "Status": i.status,
                 "StackInstanceStatus": {"DetailedStatus": i.detailed},
                 **({"StatusReason": i.reason} if i.reason else {})} for i in self.instances.values()]
        start = int(kw.get("NextToken", "0"))
        page = rows[start:start + 2]  # small pages: callers must follow NextToken
        out: dict[str, Any] = {"Summaries": page}
        if start + 2 < len(rows):
            out["NextToken"] = str(start + 2)
        return out

    def describe_stack_instance(self, **kw: Any) -> dict[str, Any]:
        self._call("DescribeStackInstance", kw)
        self._need_stack_set("DescribeStackInstance", kw)
        key = (kw["StackInstanceAccount"], kw["StackInstanceRegion"])
        inst = self.instances.get(key)
        if inst is None:
            raise error("StackInstanceNotFoundException", "not found", "DescribeStackInstance", 404)
        return {"StackInstance": {
            "Account": inst.account, "Region": inst.region, "Status": inst.status,
            "StackInstanceStatus": {"DetailedStatus": inst.detailed},
            "ParameterOverrides": [{"ParameterKey": k, "ParameterValue": v} for k, v in inst.overrides.items()],
        }}

    def describe_stack_set_operation(self, **kw: Any) -> dict[str, Any]:
        self._call("DescribeStackSetOperation", kw)
        self._need_stack_set("DescribeStackSetOperation", kw)
        op = self.operations.get(kw["OperationId"])
        if op is None:
            raise error("OperationNotFoundException", "not found", "DescribeStackSetOperation", 404)
        out = {"OperationId": op.id, "Action": op.action, "Status": op.status}
        if op.reason:
            out["StatusReason"] = op.reason
        return {"StackSetOperation": out}

    def list_stack_set_operation_results(self, **kw: Any) -> dict[str, Any]:
        self._call("ListStackSetOperationResults", kw)
        self._need_stack_set("ListStackSetOperationResults", kw)
        op = self.operations[kw["OperationId"]]
        rows = []
        for (account, region), (status, reason) in op.results.items():
            row = {"Account": account, "Region": region, "Status": status}
            if reason:
                row["StatusReason"] = reason
            rows.append(row)
        return {"Summaries": rows}

    def list_stack_set_operations(self, **kw: Any) -> dict[str, Any]:
        self._call("ListStackSetOperations", kw)
        self._need_stack_set("ListStackSetOperations", kw)
        return {"Summaries": [{"OperationId": op.id, "Action": op.action, "Status": op.status}
                              for op in reversed(list(self.operations.values()))]}

    # -- teardown: DeleteStackInstances and DeleteStackSet ------------------------------------------

    def delete_stack_instances(self, **kw: Any) -> dict[str, Any]:
        self._call("DeleteStackInstances", kw)
        ss = self._need_stack_set("DeleteStackInstances", kw)
        if "RetainStacks" not in kw:
            # DeleteStackInstances, RetainStacks: "Required: Yes".
            raise error("ValidationError", "RetainStacks is required", "DeleteStackInstances")
        if self._busy() and not ss["ManagedExecution"]["Active"]:
            # DeleteStackInstances (Errors): OperationInProgressException — "Another operation is currently
            # in progress for this stack set. Only one operation can be performed for a stack set at a
            # given time."
            raise error("OperationInProgressException", "Another Operation is in progress",
                        "DeleteStackInstances", 409)
        # Only instances that exist are worked on (AWS documents no error for naming one that does not;
        # the simplest behaviour: a result for what exists).
        targets = [k for k in self._targets(kw) if k in self.instances]
        self.retained_stacks += [k for k in targets] if kw["RetainStacks"] else []
        return self._start("DeleteStackInstances", "DELETE", targets, kw)

    def _delete(self, inst: Instance) -> None:
        """The instance leaves the stack set (its stack deleted, or kept with RetainStacks); no failure."""
        del self.instances[(inst.account, inst.region)]

    @staticmethod
    def _delete_failed(inst: Instance, reason: str) -> None:
        # StackInstanceComprehensiveStatus, INOPERABLE: "A DeleteStackInstances operation has failed and
        # left the stack in an unstable state. Stacks in this state are excluded from further
        # UpdateStackSet operations. You might need to perform a DeleteStackInstances operation, with
        # RetainStacks set to true, to delete the stack instance, and then delete the stack manually."
        inst.status, inst.detailed, inst.reason = "INOPERABLE", "INOPERABLE", reason

    def delete_stack_set(self, **kw: Any) -> dict[str, Any]:
        self._call("DeleteStackSet", kw)
        self._need_stack_set("DeleteStackSet", kw)
        if self.instances:
            # DeleteStackSet: "Before you can delete a stack set, all its member stack instances must be
            # deleted." (Errors): StackSetNotEmptyException — "You can't yet delete this stack set, because
            # it still contains one or more stack instances."
            raise error("StackSetNotEmptyException", "StackSet is not empty", "DeleteStackSet", 409)
        if self._busy():
            # DeleteStackSet (Errors): OperationInProgressException.
            raise error("OperationInProgressException", "Another Operation is in progress", "DeleteStackSet", 409)
        self.stack_set = None
        return {}

    # -- events ---------------------------------------------------------------------------------------
    #
    # CloudFormation publishes a "CloudFormation StackSet Operation Status Change" event when an
    # operation's status changes (detail: stack-set-arn, stack-set-operation-id, status-details.status
    # "RUNNING | SUCCEEDED | FAILED | STOPPING | STOPPED | QUEUED") and a "CloudFormation StackSet
    # StackInstance Status Change" event when an instance's does (detail: stack-set-arn, stack-id,
    # action, status-details.status "CURRENT | OUTDATED | INOPERABLE", status-reason, detailed-status)
    # — CloudFormation User Guide, event-detail-stackset-operation-status-change.html and
    # event-detail-stackset-stack-instance-status-change.html; in the administration account and the
    # stack set's region (the pages' examples: "account": "111122223333", "region": "us-east-1", the
    # stack set ARN in us-east-1). AWS documents no delay or order between a change and its event; the
    # fake stamps each event with the moment of its change and leaves delay, loss, duplicates and
    # order to the bus (`FakeEventBus`), which the test scripts.

    def stack_set_arn(self) -> str:
        name = self.stack_set["StackSetName"] if self.stack_set else NAME
        return f"arn:aws:cloudformation:{REGION}:{ADMIN}:stackset/{name}:0a1b2c3d-fake"

    def _announce(self) -> None:
        """Publish the events of every change since the last call, each stamped with when it happened."""
        if self.bus is None or self.stack_set is None:
            return
        now = self.clock()
        batch: list[tuple[float, int, dict[str, Any]]] = []
        for op in self.operations.values():
            last = self._announced.setdefault(op.id, {"status": None, "results": {}})
            n = max(len(op.targets), 1)
            slot = {key: (op.start + op.duration * i / n, op.start + op.duration * (i + 1) / n)
                    for i, key in enumerate(op.targets)}
            for key, (result, reason) in op.results.items():
                if last["results"].get(key) != result:
                    if result in ("SUCCEEDED", "FAILED") and last["results"].get(key) in (None, "PENDING"):
                        # It ran in between (the clock jumped past its start): AWS said so then.
                        batch.append((min(slot[key][0], now), 1, self._instance_event(op, key, "RUNNING", None)))
                    last["results"][key] = result
                    at = slot[key][0] if result in ("PENDING", "RUNNING") else slot[key][1]
                    batch.append((min(at, now), 1, self._instance_event(op, key, result, reason)))
            if op.status != last["status"]:
                previous, last["status"] = last["status"], op.status
                if previous in (None, "QUEUED") and op.status not in ("QUEUED", "RUNNING"):
                    batch.append((min(op.start, now), 0, self._operation_event(op, "RUNNING")))  # it ran first
                batch.append((self._status_time(op, slot, now), 0 if op.status in ("QUEUED", "RUNNING") else 2,
                              self._operation_event(op, op.status)))
        batch.sort(key=lambda b: (b[0], b[1]))
        if batch:
            self.bus.put_all([(at, event) for at, _, event in batch])

    @staticmethod
    def _status_time(op: Operation, slot: dict[tuple[str, str], tuple[float, float]], now: float) -> float:
        if op.status == "QUEUED":
            return now
        if op.status == "RUNNING":
            return min(op.start, now)
        if op.status in ("SUCCEEDED", "FAILED") and op.settled:
            done = [slot[k][1] for k, (r, _) in op.results.items() if r in ("SUCCEEDED", "FAILED") and k in slot]
            return min(max(done) if op.status == "FAILED" and done else op.end, now)
        return now  # STOPPED/STOPPING: set by a test at this moment

    def _operation_event(self, op: Operation, status: str) -> dict[str, Any]:
        return fake_event("CloudFormation StackSet Operation Status Change", {
            "stack-set-arn": self.stack_set_arn(), "stack-set-operation-id": op.id,
            "status-details": {"status": status}})

    def _instance_event(self, op: Operation, key: tuple[str, str], result: str, reason: str | None) -> dict[str, Any]:
        inst = self.instances.get(key)
        account, region = key
        return fake_event("CloudFormation StackSet StackInstance Status Change", {
            "stack-set-arn": self.stack_set_arn(),
            "stack-id": f"arn:aws:cloudformation:{region}:{account}:stack/StackSet-{NAME}-fake/{op.id}",
            "action": op.action,
            # An instance an operation has not finished with is OUTDATED (StackInstanceSummary.Status:
            # "OUTDATED: The stack isn't currently up to date with the stack set").
            "status-details": {"status": inst.status if inst and result not in ("PENDING", "RUNNING") else "OUTDATED",
                               "status-reason": reason or "",
                               "detailed-status": result}})

    def next_change(self) -> float:
        """When the next scheduled change of an unfinished operation happens (inf: none is scheduled)."""
        now = self.clock()
        times = []
        for op in self.operations.values():
            if op.settled:
                continue
            n = max(len(op.targets), 1)
            times += [op.start + op.duration * i / n for i in range(n + 1)]
        return min((t for t in times if t > now), default=float("inf"))

    # -- scripting --------------------------------------------------------------------------------

    def foreign_operation(self, duration: float) -> str:
        """Someone else's operation holding the stack set for `duration` seconds."""
        assert self.stack_set is not None
        op_id = f"foreign-{next(self._ids)}"
        self.operations[op_id] = Operation(op_id, "UPDATE", "UpdateStackSet", self.clock(), duration, [], {},
                                           self.stack_set["TemplateBody"], dict(self.stack_set["Parameters"]))
        self._advance()
        return op_id

    def set_instance_state(self, key: tuple[str, str], status: str, detailed: str, reason: str | None = None) -> None:
        """Put an instance in a state replctl never causes itself (a failed delete, a suspended account)."""
        inst = self.instances[key]
        inst.status, inst.detailed, inst.reason = status, detailed, reason


# --------------------------------------------------------------------------- S3 and CloudWatch


class FakeS3:
    def __init__(self) -> None:
        self.buckets: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def _bucket(self, api: str, name: str) -> dict[str, Any]:
        if name not in self.buckets:
            raise error("NoSuchBucket", "The specified bucket does not exist", api, 404)
        return self.buckets[name]

    def head_bucket(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("HeadBucket", kw))
        if kw["Bucket"] not in self.buckets:
            raise error("404", "Not Found", "HeadBucket", 404)
        return {}

    def head_object(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("HeadObject", kw))
        if kw["Key"] not in self._bucket("HeadObject", kw["Bucket"])["objects"]:
            raise error("404", "Not Found", "HeadObject", 404)
        return {}

    def create_bucket(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("CreateBucket", kw))
        self.buckets.setdefault(kw["Bucket"], {"objects": {}, "settings": {}})
        return {}

    def put_object(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("PutObject", kw))
        self._bucket("PutObject", kw["Bucket"])["objects"][kw["Key"]] = kw["Body"]
        return {}

    def _setting(self, api: str, kw: dict[str, Any]) -> dict[str, Any]:
        self.calls.append((api, kw))
        self._bucket(api, kw["Bucket"])["settings"][api] = {k: v for k, v in kw.items() if k != "Bucket"}
        return {}

    def put_public_access_block(self, **kw: Any) -> dict[str, Any]:
        return self._setting("PutPublicAccessBlock", kw)

    def put_bucket_ownership_controls(self, **kw: Any) -> dict[str, Any]:
        return self._setting("PutBucketOwnershipControls", kw)

    def put_bucket_versioning(self, **kw: Any) -> dict[str, Any]:
        return self._setting("PutBucketVersioning", kw)

    def put_bucket_encryption(self, **kw: Any) -> dict[str, Any]:
        return self._setting("PutBucketEncryption", kw)

    def put_bucket_policy(self, **kw: Any) -> dict[str, Any]:
        return self._setting("PutBucketPolicy", kw)


class FakeCloudWatch:
    def __init__(self) -> None:
        self.alarms: list[dict[str, Any]] = []
        self.calls: list[dict[str, Any]] = []

    def describe_alarms(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(kw)
        found = [a for a in self.alarms if a["AlarmName"].startswith(kw.get("AlarmNamePrefix", ""))
                 and a["StateValue"] == kw.get("StateValue", a["StateValue"])]
        return {"MetricAlarms": found}


# --------------------------------------------------------------------------- EventBridge and SQS
#
# The bootstrap's rule routes the stack set's events to an SQS queue (cfn/stackset-administration-
# role.yaml). `FakeEventBus` stands for CloudFormation → EventBridge → SQS delivery, which AWS
# describes only as at least once and with no order: the test scripts each event's delay, drops
# (a lost event), duplicates and reorders. `FakeQueue` is the SQS queue, answering as the SQS API
# reference says (each rule cites its sentence; tests/unit/deploy/test_fake_stacksets.py tests them).

_event_ids = itertools.count(1)


def fake_event(detail_type: str, detail: dict[str, Any]) -> dict[str, Any]:
    """An event as EventBridge delivers it to an SQS target: the whole envelope ("version", "id",
    "detail-type", "source", "account", "time", "region", "resources", "detail" — EventBridge User
    Guide, "Amazon EventBridge events"), time filled in by the bus."""
    return {"version": "0", "id": f"event-{next(_event_ids)}", "detail-type": detail_type,
            "source": "aws.cloudformation", "account": ADMIN, "time": "", "region": REGION,
            "resources": [detail["stack-set-arn"]], "detail": detail}


@dataclass
class FakeEventBus:
    """CloudFormation's events on their way to the queue, as the test scripts them."""

    queue: FakeQueue
    delay: Callable[[dict[str, Any]], float] = lambda event: 0.0
    drop: Callable[[dict[str, Any]], bool] = lambda event: False
    duplicate: Callable[[dict[str, Any]], bool] = lambda event: False
    duplicate_after: float = 1.0
    #: Deliver the events of one change batch last-first, all once the batch's last one happened.
    reorder: bool = False
    published: list[dict[str, Any]] = field(default_factory=list)
    dropped: list[dict[str, Any]] = field(default_factory=list)

    def put_all(self, events: list[tuple[float, dict[str, Any]]]) -> None:
        if self.reorder:
            latest = max(at for at, _ in events)
            events = [(latest, event) for _, event in reversed(events)]
        for at, event in events:
            event = {**event, "time": datetime.fromtimestamp(at, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
            self.published.append(event)
            if self.drop(event):
                self.dropped.append(event)
                continue
            visible = at + self.delay(event)
            self.queue.send(json.dumps(event), visible)
            if self.duplicate(event):
                self.queue.send(json.dumps(event), visible + self.duplicate_after)


@dataclass
class _Queued:
    id: str
    body: str
    visible_at: float
    receive_count: int = 0
    receipt: str = ""
    deleted: bool = False


class FakeQueue:
    """The event queue: SQS's ReceiveMessage, DeleteMessageBatch, ChangeMessageVisibilityBatch, GetQueueUrl."""

    def __init__(self, clock: FakeClock, *, name: str = f"{NAME}-events", account: str = ADMIN,
                 advance: Callable[[], None] = lambda: None, next_change: Callable[[], float] = lambda: float("inf"),
                 visibility_timeout: float = 30.0) -> None:
        self.clock, self.name, self.account = clock, name, account
        self.url = f"https://sqs.{REGION}.amazonaws.com/{account}/{name}"
        self.advance, self.next_change = advance, next_change
        self.visibility_timeout = visibility_timeout
        self.messages: list[_Queued] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.exists = True
        self.denied: set[str] = set()  # API names answered with AccessDenied
        self.raise_next: dict[str, Exception] = {}  # API name -> raise this once
        self._ids = itertools.count(1)

    def _call(self, api: str, kw: dict[str, Any]) -> None:
        self.calls.append((api, kw))
        scripted = self.raise_next.pop(api, None)
        if scripted is not None:
            raise scripted
        if api in self.denied:
            raise error("AccessDenied", f"not authorized to perform: sqs:{api}", api, 403)
        if not self.exists:
            # GetQueueUrl (Errors): QueueDoesNotExist — "Ensure that the QueueUrl is correct and that the
            # queue has not been deleted."
            raise error("AWS.SimpleQueueService.NonExistentQueue", "The specified queue does not exist.", api, 400)

    def calls_to(self, api: str) -> list[dict[str, Any]]:
        return [kw for name, kw in self.calls if name == api]

    def send(self, body: str, visible_at: float) -> None:
        self.messages.append(_Queued(f"msg-{next(self._ids)}", body, visible_at))

    def pending(self) -> list[_Queued]:
        return [m for m in self.messages if not m.deleted]

    def get_queue_url(self, **kw: Any) -> dict[str, Any]:
        self._call("GetQueueUrl", kw)
        if kw["QueueName"] != self.name or kw.get("QueueOwnerAWSAccountId", self.account) != self.account:
            raise error("AWS.SimpleQueueService.NonExistentQueue", "The specified queue does not exist.", "GetQueueUrl")
        return {"QueueUrl": self.url}

    def receive_message(self, **kw: Any) -> dict[str, Any]:
        self._call("ReceiveMessage", kw)
        wait = kw.get("WaitTimeSeconds", 0)
        # WaitTimeSeconds: "The duration (in seconds) for which the call waits for a message to arrive in
        # the queue before returning. If a message is available, the call returns sooner than
        # WaitTimeSeconds." Valid values 0 to 20.
        assert 0 <= wait <= 20 and 1 <= kw.get("MaxNumberOfMessages", 1) <= 10
        deadline = self.clock() + wait
        while True:
            self.advance()
            now = self.clock()
            visible = [m for m in self.messages if not m.deleted and m.visible_at <= now]
            if visible or now >= deadline:
                break
            later = [m.visible_at for m in self.messages if not m.deleted and m.visible_at > now]
            self.clock.sleep(min([deadline, self.next_change(), *later]) - now)
        taken = sorted(visible, key=lambda m: m.visible_at)[: kw.get("MaxNumberOfMessages", 1)]
        for m in taken:
            # "once a message is returned to a ReceiveMessage request, it is not returned on subsequent
            # ReceiveMessage requests for the duration of the VisibilityTimeout" (the queue's unless given).
            m.visible_at = now + kw.get("VisibilityTimeout", self.visibility_timeout)
            m.receive_count += 1
            # DeleteMessage: "If you receive a message more than once, each time you receive it, you get
            # a different receipt handle."
            m.receipt = f"{m.id}#{m.receive_count}"
        return {"Messages": [{"MessageId": m.id, "ReceiptHandle": m.receipt, "Body": m.body,
                              "Attributes": {"ApproximateReceiveCount": str(m.receive_count)}} for m in taken]}

    def _by_receipt(self, receipt: str) -> _Queued | None:
        return next((m for m in self.messages if m.id == receipt.split("#")[0]), None)

    def delete_message_batch(self, **kw: Any) -> dict[str, Any]:
        self._call("DeleteMessageBatch", kw)
        for entry in kw["Entries"]:
            m = self._by_receipt(entry["ReceiptHandle"])
            # DeleteMessage: "You must provide the most recently received receipt handle when you request
            # to delete the message (otherwise, the request succeeds, but the message will not be deleted)."
            if m is not None and m.receipt == entry["ReceiptHandle"]:
                m.deleted = True
        return {"Successful": [{"Id": e["Id"]} for e in kw["Entries"]], "Failed": []}

    def change_message_visibility_batch(self, **kw: Any) -> dict[str, Any]:
        self._call("ChangeMessageVisibilityBatch", kw)
        for entry in kw["Entries"]:
            m = self._by_receipt(entry["ReceiptHandle"])
            if m is not None and not m.deleted:
                # ChangeMessageVisibility: "the 10 seconds begin to count from the time that you make the
                # ChangeMessageVisibility call".
                m.visible_at = self.clock() + entry["VisibilityTimeout"]
        return {"Successful": [{"Id": e["Id"]} for e in kw["Entries"]], "Failed": []}



@dataclass
class World:
    """A fake AWS: one StackSet service, one S3, one CloudWatch per account, one clock."""

    clock: FakeClock = field(default_factory=FakeClock)
    s3: FakeS3 = field(default_factory=FakeS3)
    cloudwatch: dict[str, FakeCloudWatch] = field(default_factory=dict)
    #: With the bootstrap's event queue: the service announces its changes, replctl waits by event.
    events: bool = False
    cfn: FakeStackSets = field(init=False)
    queue: FakeQueue | None = field(init=False, default=None)
    bus: FakeEventBus | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.cfn = FakeStackSets(self.clock, s3=self.s3)
        if self.events:
            self.queue = FakeQueue(self.clock, advance=self.cfn._advance, next_change=self.cfn.next_change)
            self.bus = self.cfn.bus = FakeEventBus(self.queue)

    def watch(self, account: str) -> FakeCloudWatch:
        return self.cloudwatch.setdefault(account, FakeCloudWatch())

    def clients(self, mode: str = "auto") -> Clients:
        from replctl.deploy.queue import EventQueue

        queue = None
        if self.queue is not None:
            q = self.queue
            queue = EventQueue(lambda: q, name=f"{NAME}-events", account=ADMIN, region=REGION, mode=mode)
        return Clients(cfn=self.cfn, s3=lambda region: self.s3,
                       cloudwatch=lambda account, region: self.watch(account), events=queue)

    def mutating_calls(self) -> list[str]:
        return self.cfn.mutating_calls() + [api for api, _ in self.s3.calls if is_mutating(api)]
