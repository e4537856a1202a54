"""A scripted fake of the StackSet API (and the bits of S3/CloudWatch a rollout touches).

moto runs every StackSet operation instantly and successfully; this fake does what AWS does
where replctl's behaviour depends on it:

- operations are RUNNING for a scripted time on a fake clock, instance by instance (results go
  PENDING → RUNNING → SUCCEEDED/FAILED/CANCELLED), then SUCCEEDED or FAILED with a reason;
- a scripted failure in an account/region fails the instance there with a StatusReason; once
  more instances failed than `OperationPreferences.FailureToleranceCount` allows (default 0),
  the instances after it are cancelled and the operation is FAILED — within the tolerance the
  operation still SUCCEEDS with the failed instance left OUTDATED, as AWS does;
- a second operation while one runs raises OperationInProgressException (managed execution
  off) or is queued behind it (managed execution on);
- UpdateStackSet with a template or parameters marks every instance OUTDATED and deploys the
  named ones; with UsePreviousTemplate and previous values it touches only the named ones;
  naming an instance that does not exist raises StackInstanceNotFoundException;
- instance overrides merge with the stack set's parameters; a list passed to
  Create/UpdateStackInstances is the instance's complete override set; overriding a parameter
  the stack set does not have is a ValidationError;
- any method can be scripted to raise Throttling a number of times.

Also here: the fixture template (real parameter names), estate config and artifacts shared by
the unit and functional deploy tests.
"""

from __future__ import annotations

import hashlib
import itertools
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from replctl.aws import is_mutating
from replctl.package import Artifact
from replctl.plan import Clients

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
    targets: list[tuple[str, str]]
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
    """The CloudFormation client methods replctl's plan and rollout call."""

    def __init__(self, clock: FakeClock, *, duration: float = 30.0, s3: FakeS3 | None = None) -> None:
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
        self._ids = itertools.count(1)

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

    def _need_stack_set(self, api: str, name: str) -> dict[str, Any]:
        if self.stack_set is None or self.stack_set["StackSetName"] != name:
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
            n = max(len(op.targets), 1)
            failed = False  # more failures than the tolerance: the rest is cancelled
            failures = 0
            for i, key in enumerate(op.targets):
                inst = self.instances.get(key)
                slot_start = op.start + op.duration * i / n
                slot_end = op.start + op.duration * (i + 1) / n
                if failed:
                    op.results[key] = ("CANCELLED", "Cancelled since failure tolerance has exceeded")
                    if inst is not None:
                        inst.status, inst.detailed = "OUTDATED", "CANCELLED"
                elif now < slot_start:
                    op.results[key] = ("PENDING", None)
                elif now < slot_end:
                    op.results[key] = ("RUNNING", None)
                    if inst is not None:
                        inst.detailed = "RUNNING"
                elif key in op.failures:
                    op.results[key] = ("FAILED", op.failures[key])
                    failures += 1
                    failed = failures > op.tolerance
                    if inst is not None:
                        inst.status, inst.detailed, inst.reason = "OUTDATED", "FAILED", op.failures[key]
                else:
                    if op.results.get(key, ("",))[0] != "SUCCEEDED" and inst is not None:
                        self._deploy(inst, op)
                    op.results[key] = ("SUCCEEDED", None)
            if failed or now >= op.end:
                op.settled = True
                op.status = "FAILED" if failed else "SUCCEEDED"
                if failed:
                    op.reason = "The Operation failed because the failure tolerance was exceeded"

    def _deploy(self, inst: Instance, op: Operation) -> None:
        inst.status, inst.detailed, inst.reason = "CURRENT", "SUCCEEDED", None
        inst.deployed_template = op.template
        inst.deployed_parameters = {**op.parameters, **inst.overrides}
        inst.deployments += 1

    def _start(self, api: str, action: str, targets: list[tuple[str, str]], kwargs: dict[str, Any],
               mark_outdated: bool = False) -> dict[str, Any]:
        ss = self.stack_set
        assert ss is not None
        busy = self._busy()
        start = self.clock()
        if busy:
            if not ss["ManagedExecution"]["Active"]:
                raise error("OperationInProgressException",
                            f"Another Operation on StackSet {ss['StackSetId']} is in progress", api, 409)
            start = max(op.end for op in busy)
        op_id = kwargs.get("OperationId") or f"op-{next(self._ids)}"
        if op_id in self.operations:
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

    def _targets(self, api: str, kwargs: dict[str, Any]) -> list[tuple[str, str]]:
        accounts = kwargs.get("Accounts") or kwargs.get("DeploymentTargets", {}).get("Accounts") or []
        return [(a, r) for a in accounts for r in kwargs.get("Regions", [])]

    def _check_overrides(self, api: str, overrides: list[dict[str, Any]]) -> dict[str, str]:
        assert self.stack_set is not None
        values = {}
        for p in overrides:
            if p["ParameterKey"] not in self.stack_set["Parameters"]:
                raise error("ValidationError", f"Parameter {p['ParameterKey']} is not in the stack set; "
                            "override only parameters the stack set has", api)
            values[p["ParameterKey"]] = p["ParameterValue"]
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
        ss = self._need_stack_set("DescribeStackSet", kw["StackSetName"])
        return {"StackSet": {
            "StackSetName": ss["StackSetName"], "StackSetId": ss["StackSetId"], "Status": "ACTIVE",
            "TemplateBody": ss["TemplateBody"],
            "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in ss["Parameters"].items()],
            "PermissionModel": ss["PermissionModel"], "ManagedExecution": dict(ss["ManagedExecution"]),
        }}

    def create_stack_set(self, **kw: Any) -> dict[str, Any]:
        self._call("CreateStackSet", kw)
        if self.stack_set is not None:
            raise error("NameAlreadyExistsException", "exists", "CreateStackSet", 409)
        self.stack_set = {
            "StackSetName": kw["StackSetName"], "StackSetId": f"{kw['StackSetName']}:fake",
            "TemplateBody": self._template(kw),
            "Parameters": {p["ParameterKey"]: p["ParameterValue"] for p in kw.get("Parameters", [])},
            "PermissionModel": kw.get("PermissionModel", "SELF_MANAGED"),
            "ManagedExecution": dict(kw.get("ManagedExecution", {"Active": False})),
            "create_kwargs": kw,
        }
        return {"StackSetId": self.stack_set["StackSetId"]}

    def update_stack_set(self, **kw: Any) -> dict[str, Any]:
        self._call("UpdateStackSet", kw)
        ss = self._need_stack_set("UpdateStackSet", kw["StackSetName"])
        targets = self._targets("UpdateStackSet", kw)
        if not targets and (kw.get("Accounts") or kw.get("Regions")):
            raise error("ValidationError", "Accounts and Regions go together", "UpdateStackSet")
        if not kw.get("Accounts") and not kw.get("DeploymentTargets"):
            targets = list(self.instances)  # no accounts: every instance
        for key in targets:
            if key not in self.instances:
                raise error("StackInstanceNotFoundException", "The specified stack instance doesn't exist.",
                            "UpdateStackSet", 404)
        if self._busy() and not ss["ManagedExecution"]["Active"]:
            raise error("OperationInProgressException", "Another Operation is in progress", "UpdateStackSet", 409)
        new_template = "TemplateBody" in kw or "TemplateURL" in kw
        values: dict[str, str] = {}
        changed_params = False
        for p in kw.get("Parameters", []):
            if p.get("UsePreviousValue"):
                values[p["ParameterKey"]] = ss["Parameters"][p["ParameterKey"]]
            else:
                values[p["ParameterKey"]] = p["ParameterValue"]
                changed_params = True
        if new_template:
            ss["TemplateBody"] = self._template(kw)
        if "Parameters" in kw:
            ss["Parameters"] = values
        if "ManagedExecution" in kw:
            ss["ManagedExecution"] = dict(kw["ManagedExecution"])
        if new_template or changed_params:
            for inst in self.instances.values():
                inst.status = "OUTDATED"  # AWS marks every instance OUTDATED, then updates those named
        return self._start("UpdateStackSet", "UPDATE", targets, kw, new_template or changed_params)

    def create_stack_instances(self, **kw: Any) -> dict[str, Any]:
        self._call("CreateStackInstances", kw)
        self._need_stack_set("CreateStackInstances", kw["StackSetName"])
        overrides = self._check_overrides("CreateStackInstances", kw.get("ParameterOverrides", []))
        targets = self._targets("CreateStackInstances", kw)
        if self._busy() and not self.stack_set["ManagedExecution"]["Active"]:  # type: ignore[index]
            raise error("OperationInProgressException", "Another Operation is in progress",
                        "CreateStackInstances", 409)
        for key in targets:
            if key not in self.instances:
                self.instances[key] = Instance(*key, overrides=dict(overrides))
            else:
                self.instances[key].overrides = dict(overrides)
        return self._start("CreateStackInstances", "CREATE", targets, kw)

    def update_stack_instances(self, **kw: Any) -> dict[str, Any]:
        self._call("UpdateStackInstances", kw)
        self._need_stack_set("UpdateStackInstances", kw["StackSetName"])
        targets = self._targets("UpdateStackInstances", kw)
        for key in targets:
            if key not in self.instances:
                raise error("StackInstanceNotFoundException", "The specified stack instance doesn't exist.",
                            "UpdateStackInstances", 404)
        overrides = self._check_overrides("UpdateStackInstances", kw.get("ParameterOverrides", []))
        if self._busy() and not self.stack_set["ManagedExecution"]["Active"]:  # type: ignore[index]
            raise error("OperationInProgressException", "Another Operation is in progress",
                        "UpdateStackInstances", 409)
        for key in targets:
            # The list is the instance's complete override set: a parameter left out takes the
            # stack set's value (UpdateStackInstances, ParameterOverrides).
            self.instances[key].overrides = dict(overrides)
        return self._start("UpdateStackInstances", "UPDATE", targets, kw)

    def list_stack_instances(self, **kw: Any) -> dict[str, Any]:
        self._call("ListStackInstances", kw)
        self._need_stack_set("ListStackInstances", kw["StackSetName"])
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
        op = self.operations.get(kw["OperationId"])
        if op is None:
            raise error("OperationNotFoundException", "not found", "DescribeStackSetOperation", 404)
        out = {"OperationId": op.id, "Action": op.action, "Status": op.status}
        if op.reason:
            out["StatusReason"] = op.reason
        return {"StackSetOperation": out}

    def list_stack_set_operation_results(self, **kw: Any) -> dict[str, Any]:
        self._call("ListStackSetOperationResults", kw)
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
        self._need_stack_set("ListStackSetOperations", kw["StackSetName"])
        return {"Summaries": [{"OperationId": op.id, "Action": op.action, "Status": op.status}
                              for op in reversed(list(self.operations.values()))]}

    # -- scripting --------------------------------------------------------------------------------

    def foreign_operation(self, duration: float) -> str:
        """Someone else's operation holding the stack set for `duration` seconds."""
        assert self.stack_set is not None
        op_id = f"foreign-{next(self._ids)}"
        self.operations[op_id] = Operation(op_id, "UPDATE", "UpdateStackSet", self.clock(), duration, [], {},
                                           self.stack_set["TemplateBody"], dict(self.stack_set["Parameters"]))
        self._advance()
        return op_id


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


@dataclass
class World:
    """A fake AWS: one StackSet service, one S3, one CloudWatch per account, one clock."""

    clock: FakeClock = field(default_factory=FakeClock)
    s3: FakeS3 = field(default_factory=FakeS3)
    cloudwatch: dict[str, FakeCloudWatch] = field(default_factory=dict)
    cfn: FakeStackSets = field(init=False)

    def __post_init__(self) -> None:
        self.cfn = FakeStackSets(self.clock, s3=self.s3)

    def watch(self, account: str) -> FakeCloudWatch:
        return self.cloudwatch.setdefault(account, FakeCloudWatch())

    def clients(self) -> Clients:
        return Clients(cfn=self.cfn, s3=lambda region: self.s3,
                       cloudwatch=lambda account, region: self.watch(account))

    def mutating_calls(self) -> list[str]:
        return self.cfn.mutating_calls() + [api for api, _ in self.s3.calls if is_mutating(api)]
