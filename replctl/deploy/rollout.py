"""Apply a plan: preparation, then wave by wave — start, wait, verify, gate — stopping at the first bad one.

`apply` dispatches each step with `match`. Every StackSets call carries `CallAs` from
`stackset.call_as` (a delegated administrator that leaves it out is told the stack set does not
exist). A StackSet operation is started with an explicit `OperationId` (AWS uses it as an
idempotency token, so a retried call never starts a second operation) and waited on: by its
events where the bootstrap's event queue is there (`waiting.wait_by_event` with a
`queue.Listener`: CloudFormation's terminal event wakes the wait, one DescribeStackSetOperation
and its results confirm it, instance events drive the per-account progress, and a safety read
every `stackset.wait.safety_poll_seconds` covers a lost event), otherwise with backoff
(`waiting.wait_until`, intervals from `stackset.wait`), reporting each account/region's result
from ListStackSetOperationResults as it changes. After a wave's steps, every instance of the environment must be CURRENT with
detailed status SUCCEEDED, then the environment's gate runs (optional bake time, then none of
its alarms — `<ResourcePrefix>-<env>-*`, read through the observer role — may be in ALARM).
Only then does the next wave start. A failure raises `DeployError` naming each failed
account/region with AWS's reason; later waves never start.

Nothing is kept locally: re-running plans again from what AWS reports, so a run stopped by a
failure, a timeout or Ctrl-C resumes where AWS is. `attach` waits for operations that are still
running (for example after Ctrl-C) before a new plan is made. `OperationInProgressException`
(another operation holds the stack set; StackSets runs one at a time unless managed execution
is on) is handled the same way: wait for the running operation, then start ours.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from replctl.aws import error_code, is_transient, translate
from replctl.config import Config, Environment
from replctl.errors import DeployError, ReplctlError
from replctl.deploy.model import (
    BringForward,
    Clients,
    CreateArtifactBucket,
    CreateInstances,
    CreateStackSet,
    DeleteInstances,
    DeleteStackSet,
    GrantArtifactReaders,
    Plan,
    Step,
    UpdateOverrides,
    UpdateStackSet,
    UploadArtifact,
    UploadTemplate,
    describe_step,
    step_action,
)
from replctl.deploy.observe import instance_state, list_instances, running_operations
from replctl.statuses import OperationStatus, ResultStatus, parse
from replctl.deploy.events import Heard, Waiting, shown
from replctl.deploy.queue import Listener
from replctl.waiting import Poll, intervals, wait_by_event, wait_until

#: What every stack set call acknowledges: the template creates named IAM roles.
CAPABILITIES = ("CAPABILITY_NAMED_IAM",)
#: How often a start call refused with OperationInProgressException or throttling is retried.
MAX_IN_PROGRESS_RETRIES = 5


@dataclass(frozen=True)
class InstanceResult:
    """One account/region's result within an operation."""

    account: str
    region: str
    status: ResultStatus
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"account": self.account, "region": self.region, "status": self.status.value, "reason": self.reason}


@dataclass(frozen=True)
class OperationOutcome:
    environment: str
    action: str
    operation_id: str
    status: OperationStatus
    results: tuple[InstanceResult, ...] = ()
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "action": self.action,
            "operation_id": self.operation_id,
            "status": self.status.value,
            "reason": self.reason,
            "instances": [r.to_dict() for r in self.results],
        }


@dataclass
class RolloutLog:
    """What happened, filled in as the rollout goes (kept by the caller even when it fails)."""

    operations: list[OperationOutcome] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)  # "dev", "staging", "wire dev", ...
    instances: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "operations": [o.to_dict() for o in self.operations],
            "created": list(self.created),
            "completed": list(self.completed),
            "instances": list(self.instances),
        }


class Reporter(Protocol):
    """Where the rollout tells people what it is doing."""

    def step(self, message: str) -> None: ...
    def started(self, environment: str, action: str, operation_id: str, total: int) -> None: ...
    def progress(self, operation_id: str, status: OperationStatus, results: Sequence[InstanceResult]) -> None: ...
    def finished(self, outcome: OperationOutcome) -> None: ...


class SilentReporter:
    def step(self, message: str) -> None:
        pass

    def started(self, environment: str, action: str, operation_id: str, total: int) -> None:
        pass

    def progress(self, operation_id: str, status: OperationStatus, results: Sequence[InstanceResult]) -> None:
        pass

    def finished(self, outcome: OperationOutcome) -> None:
        pass


class _Rollout:
    def __init__(self, plan: Plan, config: Config, clients: Clients, reporter: Reporter,
                 sleep: Callable[[float], None], clock: Callable[[], float], log: RolloutLog) -> None:
        self.plan = plan
        self.config = config
        self.clients = clients
        self.cfn = clients.cfn
        self.reporter = reporter
        self.sleep = sleep
        self.clock = clock
        self.log = log
        self.name = config.stackset.name
        self.call_as = config.stackset.call_as

    # -- the sequence ---------------------------------------------------------------------------

    def run(self) -> None:
        for step in self.plan.preparation:
            self.execute(step)
        for wave in self.plan.waves:
            env = self.config.environment(wave.environment)
            for step in wave.steps:
                self.execute(step)
            self.verify(env)
            self.gate(env, bake=bool(wave.steps))
            self.log.completed.append(env.name if wave.kind == "rollout" else f"{wave.kind} {env.name}")

    def execute(self, step: Step) -> None:
        self.reporter.step(describe_step(step))
        match step:
            case CreateArtifactBucket():
                self.create_bucket(step)
            case GrantArtifactReaders(region=region, bucket=bucket, reader_accounts=readers):
                self.s3_call(region, "put_bucket_policy", Bucket=bucket,
                             Policy=json.dumps(self.artifact_policy(bucket, readers)))
            case UploadArtifact(region=region, bucket=bucket, key=key, path=path):
                self.s3_call(region, "put_object", Bucket=bucket, Key=key, Body=Path(path).read_bytes(),
                             ContentType="application/zip")
                self.log.created.append(f"s3://{bucket}/{key}")
            case UploadTemplate(region=region, bucket=bucket, key=key):
                self.s3_call(region, "put_object", Bucket=bucket, Key=key,
                             Body=self.plan.template_body.encode("utf-8"), ContentType="application/x-yaml")
                self.log.created.append(f"s3://{bucket}/{key}")
            case CreateStackSet():
                self.create_stack_set()
            case UpdateStackSet(environment=env, accounts=accounts, regions=regions, organizational_unit=ou):
                if not accounts:
                    self.ensure_no_instances(env)
                kwargs = self.stack_set_update_kwargs(accounts, regions, ou)
                kwargs.update(self.template_kwargs())
                kwargs["Parameters"] = [{"ParameterKey": k, "ParameterValue": v} for k, v in self.plan.parameters]
                self.operation(env, step, self.cfn.update_stack_set, kwargs, len(accounts) * len(regions))
            case BringForward(environment=env, accounts=accounts, regions=regions, overrides=ov,
                              organizational_unit=ou):
                # UpdateStackInstances, not UpdateStackSet: an UpdateStackSet that specifies the
                # Parameters property would mark every other instance OUTDATED again (API reference).
                kwargs = self.instance_kwargs(accounts, regions, ou, ov)
                self.operation(env, step, self.cfn.update_stack_instances, kwargs, len(accounts) * len(regions))
            case CreateInstances(environment=env, accounts=accounts, regions=regions, overrides=ov,
                                 organizational_unit=ou):
                kwargs = self.instance_kwargs(accounts, regions, ou, ov)
                self.operation(env, step, self.cfn.create_stack_instances, kwargs, len(accounts) * len(regions))
            case UpdateOverrides(environment=env, accounts=accounts, regions=regions, overrides=ov,
                                 organizational_unit=ou):
                kwargs = self.instance_kwargs(accounts, regions, ou, ov)
                self.operation(env, step, self.cfn.update_stack_instances, kwargs, len(accounts) * len(regions))
            case DeleteInstances(environment=env, accounts=accounts, regions=regions, organizational_unit=ou):
                # RetainStacks false: the stacks go; what their template marks DeletionPolicy Retain
                # (the buckets and tables) stays (DeleteStackInstances, RetainStacks).
                kwargs = {"StackSetName": self.name, "CallAs": self.call_as, **self.targets(accounts, regions, ou),
                          "RetainStacks": False,
                          "OperationPreferences": self.config.stackset.operation_preferences.to_api(list(regions))}
                self.operation(env, step, self.cfn.delete_stack_instances, kwargs, len(accounts) * len(regions))
            case DeleteStackSet():
                self.delete_stack_set()
            case _:  # pragma: no cover - the Step union is closed
                raise TypeError(f"unknown step {step!r}")

    # -- S3 ---------------------------------------------------------------------------------------

    def s3_call(self, region: str, method: str, **kwargs: Any) -> Any:
        try:
            return getattr(self.clients.s3(region), method)(**kwargs)
        except ReplctlError:
            raise
        except Exception as exc:
            raise _rejected(f"{method} on s3://{kwargs.get('Bucket')}", exc) from exc

    def artifact_policy(self, bucket: str, readers: tuple[str, ...]) -> dict[str, Any]:
        # Lambda fetches the ZIP as the StackSet execution role of each target account
        # (AWS::Lambda::Function Code: the bucket may be in another account, same region).
        prefix = self.config.stackset.artifact_prefix
        return {"Version": "2012-10-17", "Statement": [
            {
                "Sid": "TargetAccountsReadArtifacts",
                "Effect": "Allow",
                "Principal": {"AWS": [f"arn:aws:iam::{a}:root" for a in readers]},
                "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                "Resource": f"arn:aws:s3:::{bucket}/{prefix}*",
            },
            {
                # The same TLS-only rule the template's buckets carry (E9104).
                "Sid": "TlsOnly",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
        ]}

    def create_bucket(self, step: CreateArtifactBucket) -> None:
        b, region = step.bucket, step.region
        kwargs: dict[str, Any] = {"Bucket": b}
        if region != "us-east-1":  # us-east-1 rejects an explicit LocationConstraint
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            self.clients.s3(region).create_bucket(**kwargs)
        except Exception as exc:
            if error_code(exc) != "BucketAlreadyOwnedByYou":
                raise _rejected(f"CreateBucket {b}", exc) from exc
        self.s3_call(region, "put_public_access_block", Bucket=b, PublicAccessBlockConfiguration={
            "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
        self.s3_call(region, "put_bucket_ownership_controls", Bucket=b,
                     OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
        self.s3_call(region, "put_bucket_versioning", Bucket=b, VersioningConfiguration={"Status": "Enabled"})
        self.s3_call(region, "put_bucket_encryption", Bucket=b, ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
        if step.reader_accounts:
            self.s3_call(region, "put_bucket_policy", Bucket=b,
                         Policy=json.dumps(self.artifact_policy(b, step.reader_accounts)))
        self.log.created.append(f"s3://{b}")
        self.reporter.step(f"created artifact bucket {b} in {region}: versioning on, SSE-S3, "
                           "public access blocked, bucket-owner-enforced"
                           + (f", readable by {', '.join(step.reader_accounts)}" if step.reader_accounts else ""))

    # -- CloudFormation -------------------------------------------------------------------------

    def template_kwargs(self) -> dict[str, Any]:
        if self.plan.template_url:
            return {"TemplateURL": self.plan.template_url}
        return {"TemplateBody": self.plan.template_body}

    def role_kwargs(self) -> dict[str, Any]:
        ss = self.config.stackset
        if ss.permission_model == "SELF_MANAGED":
            return {"AdministrationRoleARN": ss.administration_role_arn(self.config.admin.account_id),
                    "ExecutionRoleName": ss.execution_role_name}
        return {}

    def targets(self, accounts: Sequence[str], regions: Sequence[str], ou: str | None) -> dict[str, Any]:
        if self.config.stackset.permission_model == "SERVICE_MANAGED":
            # Only the environment's accounts within its OU (AccountFilterType INTERSECTION).
            return {"DeploymentTargets": {"OrganizationalUnitIds": [ou], "Accounts": list(accounts),
                                          "AccountFilterType": "INTERSECTION"},
                    "Regions": list(regions)}
        return {"Accounts": list(accounts), "Regions": list(regions)}

    def stack_set_update_kwargs(self, accounts: Sequence[str], regions: Sequence[str], ou: str | None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "StackSetName": self.name,
            "CallAs": self.call_as,
            "Capabilities": list(CAPABILITIES),
            "ManagedExecution": {"Active": self.config.stackset.managed_execution},
            **self.role_kwargs(),
        }
        if accounts:
            kwargs.update(self.targets(accounts, regions, ou))
            kwargs["OperationPreferences"] = self.config.stackset.operation_preferences.to_api(list(regions))
        return kwargs

    def instance_kwargs(self, accounts: Sequence[str], regions: Sequence[str], ou: str | None,
                        overrides: Sequence[tuple[str, str]]) -> dict[str, Any]:
        return {
            "StackSetName": self.name,
            "CallAs": self.call_as,
            **self.targets(accounts, regions, ou),
            "ParameterOverrides": [{"ParameterKey": k, "ParameterValue": v} for k, v in overrides],
            "OperationPreferences": self.config.stackset.operation_preferences.to_api(list(regions)),
        }

    def create_stack_set(self) -> None:
        ss = self.config.stackset
        kwargs: dict[str, Any] = {
            "StackSetName": self.name,
            "CallAs": self.call_as,
            "Description": "replctl: configuration replication framework (dev -> staging -> prod)",
            "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in self.plan.parameters],
            "Capabilities": list(CAPABILITIES),
            "PermissionModel": ss.permission_model,
            "ManagedExecution": {"Active": ss.managed_execution},
            **self.template_kwargs(),
            **self.role_kwargs(),
        }
        if ss.permission_model == "SERVICE_MANAGED":
            # New accounts in an OU must not receive the stack outside the ordered rollout.
            kwargs["AutoDeployment"] = {"Enabled": False}
        try:
            self.cfn.create_stack_set(**kwargs)
        except Exception as exc:
            if error_code(exc) == "NameAlreadyExistsException":
                raise DeployError(f"stack set {self.name} was created by someone else meanwhile",
                                  hint="re-run replctl deploy to plan against it") from exc
            raise _rejected(f"CreateStackSet {self.name}", exc) from exc
        self.log.created.append(f"stack set {self.name}")

    def delete_stack_set(self) -> None:
        for attempt in range(MAX_IN_PROGRESS_RETRIES + 1):
            try:
                self.cfn.delete_stack_set(StackSetName=self.name, CallAs=self.call_as)
                break
            except Exception as exc:
                code = error_code(exc)
                if code == "StackSetNotFoundException":
                    return  # already gone: what a re-run after an interruption finds
                if code == "OperationInProgressException" and attempt < MAX_IN_PROGRESS_RETRIES:
                    self.reporter.step(f"another operation is running on {self.name}; waiting for it")
                    self.wait_for_running("stack set")
                    continue
                if code == "StackSetNotEmptyException":
                    # DeleteStackSet (Errors): "You can't yet delete this stack set, because it still
                    # contains one or more stack instances."
                    raise DeployError(f"stack set {self.name} still has stack instances; it was not deleted",
                                      hint="someone added instances since the plan was made; re-run the command "
                                      "to plan against what AWS reports") from exc
                raise _rejected(f"DeleteStackSet {self.name}", exc) from exc
        self.log.completed.append(f"stack set {self.name} deleted")

    def ensure_no_instances(self, env: str) -> None:
        # Defence in depth: an UpdateStackSet without accounts updates *every* instance.
        if list_instances(self.cfn, self.name, call_as=self.call_as):
            raise DeployError(f"{env}: the stack set gained instances since the plan was made; nothing was updated",
                              hint="re-run replctl deploy")

    def operation(self, env: str, step: Step, call: Callable[..., Any], kwargs: dict[str, Any], total: int) -> None:
        """Start one StackSet operation, wait for it, and fail loudly if it did not succeed."""
        action = step_action(step)
        # The same OperationId on every retry: AWS starts the operation at most once.
        kwargs["OperationId"] = f"replctl-{uuid.uuid4()}"
        backoff = intervals(self.config.stackset.wait)
        for attempt in range(MAX_IN_PROGRESS_RETRIES + 1):
            try:
                op_id = call(**kwargs)["OperationId"]
                break
            except Exception as exc:
                code = error_code(exc)
                if code == "OperationInProgressException" and attempt < MAX_IN_PROGRESS_RETRIES:
                    self.reporter.step(f"{env}: another operation is running on {self.name}; waiting for it")
                    self.wait_for_running(env)
                    continue
                if is_transient(exc) and attempt < MAX_IN_PROGRESS_RETRIES:
                    self.reporter.step(f"{env}: {action} throttled ({code}); retrying with the same operation id")
                    self.sleep(backoff())
                    continue
                if code == "OperationIdAlreadyExistsException":
                    op_id = kwargs["OperationId"]  # a retried request that AWS had already accepted
                    break
                raise _rejected(f"{env}: {action}", exc) from exc
        self.reporter.started(env, action, op_id, total)
        outcome = self.wait(env, action, op_id, _keys(kwargs))
        if not outcome.status.ok:
            raise operation_failed(outcome)

    def wait_for_running(self, env: str) -> None:
        for op_id in self.read(running_operations, self.cfn, self.name, call_as=self.call_as):
            self.reporter.started(env, "running operation", op_id, 0)
            self.wait(env, "running operation", op_id)

    def wait(self, env: str, action: str, op_id: str,
             targets: Sequence[tuple[str, str]] | None = None) -> OperationOutcome:
        """Wait for the operation to finish: by its events when the event queue is there, else by
        polling; either way the outcome is what DescribeStackSetOperation and its results say.
        `targets` (account, region) attribute instance events to it; None takes every one."""
        listener = self.listener(op_id, targets)
        what = f"{env}: {action} (operation {op_id} on stack set {self.name})"
        kwargs: dict[str, Any] = dict(
            settings=self.config.stackset.wait, what=what, sleep=self.sleep, clock=self.clock,
            on_transient=lambda exc: self.reporter.step(f"{env}: throttled while polling ({error_code(exc)}); backing off"),
            hint="the operation keeps running in AWS; re-run replctl deploy to wait for it and carry on",
        )
        if listener is None:
            outcome = wait_until(lambda: self.probe(env, action, op_id, every=True), **kwargs)
        else:
            outcome = wait_by_event(listener.listen, lambda: self.probe(env, action, op_id, every=False), **kwargs)
            self.clients.events.finished.add(op_id)
        self.log.operations.append(outcome)
        self.reporter.finished(outcome)
        return outcome

    def probe(self, env: str, action: str, op_id: str, *, every: bool) -> Poll[OperationOutcome]:
        """One read of the operation. Polling (`every`) reads its results each time for the progress
        display; waiting by event, a read that finds it still running needs no results (the events
        show progress), so confirming a finished operation costs one Describe and its result pages."""
        try:
            op = self.cfn.describe_stack_set_operation(StackSetName=self.name, OperationId=op_id,
                                                       CallAs=self.call_as)["StackSetOperation"]
        except Exception as exc:
            if error_code(exc) == "OperationNotFoundException":  # eventually consistent right after start
                return Poll(False, OperationOutcome(env, action, op_id, OperationStatus.QUEUED))
            if is_transient(exc):
                raise
            raise _rejected(f"{env}: DescribeStackSetOperation {op_id}", exc) from exc
        status = parse(OperationStatus, op["Status"])
        if not (every or status.finished):
            return Poll(False, OperationOutcome(env, action, op_id, status))
        results = self.results(op_id)
        outcome = OperationOutcome(env, action, op_id, status, results, op.get("StatusReason"))
        self.reporter.progress(op_id, status, results)
        return Poll(status.finished, outcome)

    def listener(self, op_id: str, targets: Sequence[tuple[str, str]] | None) -> Listener | None:
        """This wait's listener on the event queue, or None to poll (no queue, or stackset.wait.mode: poll)."""
        queue = self.clients.events
        if queue is None or not queue.ready(self.reporter.step):
            return None
        who = Waiting(self.name, op_id, frozenset(targets) if targets else None, frozenset(queue.finished))

        def show(h: Heard) -> None:
            status, rows = shown(h, targets)
            self.reporter.progress(op_id, status, [InstanceResult(*row) for row in rows])

        return queue.listener(who, on_progress=show, say=self.reporter.step, sleep=self.sleep,
                              settings=self.config.stackset.wait)

    def results(self, op_id: str) -> tuple[InstanceResult, ...]:
        out: list[InstanceResult] = []
        kwargs: dict[str, Any] = {"StackSetName": self.name, "OperationId": op_id, "CallAs": self.call_as}
        while True:
            page = self.cfn.list_stack_set_operation_results(**kwargs)
            for r in page.get("Summaries", []):
                out.append(InstanceResult(r["Account"], r["Region"], parse(ResultStatus, r["Status"]),
                                          r.get("StatusReason") or None))
            token = page.get("NextToken")
            if not token:
                return tuple(sorted(out, key=lambda r: (r.account, r.region)))
            kwargs["NextToken"] = token

    # -- verify and gate --------------------------------------------------------------------------

    def read(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """A read call that survives throttling: retried with the configured backoff."""

        def probe() -> Poll[Any]:
            try:
                return Poll(True, fn(*args, **kwargs))
            except ReplctlError:
                raise
            except Exception as exc:
                if is_transient(exc):
                    raise
                raise translate(exc) from exc

        return wait_until(probe, settings=self.config.stackset.wait, what=getattr(fn, "__name__", "a read"),
                          sleep=self.sleep, clock=self.clock)

    def verify(self, env: Environment) -> None:
        """Every instance of the environment is CURRENT with detailed status SUCCEEDED."""
        listed = self.read(list_instances, self.cfn, self.name, call_as=self.call_as)
        found = {(s["Account"], s["Region"]): instance_state(s) for s in listed}
        bad = []
        for key in env.instances():
            inst = found.get(key)
            if inst is None:
                bad.append(f"  {key[0]} {key[1]}: no stack instance")
            elif not inst.ok:
                bad.append(f"  {key[0]} {key[1]}: {inst.label()}" + (f" — {inst.reason}" if inst.reason else ""))
            if inst is not None:
                self.log.instances.append({"environment": env.name, "account": key[0], "region": key[1],
                                           "status": inst.status.value,
                                           "detailed_status": inst.detailed.value if inst.detailed else None})
        if bad:
            raise DeployError(f"{env.name}: not every instance is CURRENT/SUCCEEDED after the rollout:\n" + "\n".join(bad),
                              hint="fix the cause and re-run replctl deploy; it resumes from what AWS reports")

    def gate(self, env: Environment, *, bake: bool) -> None:
        if bake and env.gate.wait_seconds:
            self.reporter.step(f"{env.name}: baking for {env.gate.wait_seconds:g}s before checking its alarms")
            self.sleep(env.gate.wait_seconds)
        if not env.gate.alarms:
            return
        prefix = f"{self.config.parameters.get('ResourcePrefix', 'replctl')}-{env.name}-"
        firing: list[str] = []
        for account, region in env.instances():
            cw = self.clients.cloudwatch(account, region)
            for alarm in self.read(_alarms_in_alarm, cw, prefix):
                reason = alarm.get("StateReason", "")
                firing.append(f"  {account} {region}: {alarm['AlarmName']}" + (f" — {reason}" if reason else ""))
        if firing:
            raise DeployError(f"{env.name}: gate failed, alarms in ALARM:\n" + "\n".join(firing),
                              hint="investigate the alarms; later environments were not touched")
        self.reporter.step(f"{env.name}: gate passed (no {prefix}* alarm in ALARM)")


def _alarms_in_alarm(cw: Any, prefix: str) -> list[dict[str, Any]]:
    """The environment's metric and composite alarms in ALARM, read exactly as `status` reads them."""
    from replctl.status.fetch import describe_alarms

    return describe_alarms(cw, prefix, state="ALARM")


def _keys(kwargs: dict[str, Any]) -> list[tuple[str, str]]:
    """The (account, region) instances a StackSet call names."""
    accounts = kwargs.get("Accounts") or kwargs.get("DeploymentTargets", {}).get("Accounts") or []
    return [(a, r) for a in accounts for r in kwargs.get("Regions", [])]


def _running_if_any(cfn: Any, name: str, call_as: str) -> tuple[str, ...]:
    try:
        return running_operations(cfn, name, call_as=call_as)
    except Exception as exc:
        if error_code(exc) == "StackSetNotFoundException":
            return ()
        raise


def _rejected(what: str, exc: BaseException) -> ReplctlError:
    """An AWS refusal as a DeployError naming the call; credential problems stay AwsAccessError."""
    err = translate(exc)
    if type(err) is ReplctlError:
        response = getattr(exc, "response", None) or {}
        detail = response.get("Error", {})
        text = f"{detail.get('Code')}: {detail.get('Message')}" if detail.get("Code") else err.message
        return DeployError(f"{what} was rejected: {text}", hint="nothing after this step was started; "
                           "fix the cause and re-run replctl deploy")
    return err


def operation_failed(outcome: OperationOutcome) -> DeployError:
    """The error for an operation that did not succeed, naming each failed account/region."""
    lines = [f"{outcome.environment}: {outcome.action} operation {outcome.operation_id} {outcome.status.value}"
             + (f" — {outcome.reason}" if outcome.reason else "")]
    failed = [r for r in outcome.results if not r.status.ok]
    for r in failed:
        lines.append(f"  {r.account} {r.region}: {r.status.value}" + (f" — {r.reason}" if r.reason else ""))
    return DeployError("\n".join(lines), hint="later environments were not touched; fix the cause and re-run "
                       "replctl deploy — it resumes from what AWS reports")


def apply(
    plan: Plan,
    config: Config,
    clients: Clients,
    *,
    reporter: Reporter | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    log: RolloutLog | None = None,
) -> RolloutLog:
    """Apply the plan wave by wave; raise at the first failure (the log keeps what happened)."""
    log = log if log is not None else RolloutLog()
    if not plan.changes:
        return log
    _Rollout(plan, config, clients, reporter or SilentReporter(), sleep, clock, log).run()
    return log


def attach(
    config: Config,
    clients: Clients,
    *,
    reporter: Reporter | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    log: RolloutLog | None = None,
) -> list[OperationOutcome]:
    """Wait for operations still running on the stack set (e.g. left by Ctrl-C) before planning.

    Their outcome is reported, not raised: the plan made afterwards sees what they left.
    """
    log = log if log is not None else RolloutLog()
    runner = _Rollout(_EMPTY, config, clients, reporter or SilentReporter(), sleep, clock, log)
    if clients.events is not None and clients.events.mode == "events":
        # The queue is required: a missing one is refused before anything is started. (In mode
        # auto it is looked up by the first wait, so a deploy that waits on nothing never asks.)
        clients.events.ready(runner.reporter.step)
    ids = runner.read(_running_if_any, clients.cfn, config.stackset.name, config.stackset.call_as)
    outcomes = []
    for op_id in ids:
        runner.reporter.step(f"operation {op_id} is still running on {config.stackset.name}; waiting for it")
        runner.reporter.started("(earlier run)", "running operation", op_id, 0)
        outcomes.append(runner.wait("(earlier run)", "running operation", op_id))
    return outcomes


class Runner:
    """The rollout's machinery for a sequence of its own (`destroy`): run one StackSet step —
    started, waited on with progress, failed per account/region as a deploy fails —, verify an
    environment's instances, and read with the configured backoff."""

    def __init__(self, config: Config, clients: Clients, *, reporter: Reporter | None = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                 log: RolloutLog | None = None) -> None:
        self.log = log if log is not None else RolloutLog()
        self._rollout = _Rollout(_EMPTY, config, clients, reporter or SilentReporter(), sleep, clock, self.log)

    def execute(self, step: Step) -> None:
        self._rollout.execute(step)

    def verify(self, env: Environment) -> None:
        self._rollout.verify(env)

    def read(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return self._rollout.read(fn, *args, **kwargs)


_EMPTY = Plan(
    stack_set="", region="", exists=False, permission_model="", template_path="", template_body="",
    template_url=None, template_diff="", parameters=(), parameter_changes=(), managed_execution=(None, False),
    instances=(), artifacts=(), preparation=(), waves=(),
)

__all__ = [
    "InstanceResult", "OperationOutcome", "Reporter", "RolloutLog", "Runner", "SilentReporter", "apply", "attach",
    "operation_failed",
]
