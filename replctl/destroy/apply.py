"""Apply a teardown plan phase by phase, stopping at the first failure.

StackSet steps run on the rollout's machinery (`deploy.rollout.Runner`): each operation is started
with an explicit OperationId, waited on with progress, and fails naming each account/region with
AWS's reason, exactly as a deploy's. After an unwire phase the environment must be
CURRENT/SUCCEEDED; after a delete phase none of its instances may be left. The data steps act
through the data-remover role of the account (cfn/stackset-execution-role.yaml), and each is
idempotent: what is already gone counts as removed, so a re-run after a failure or Ctrl-C
finishes the job. Nothing is kept locally.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from replctl.aws import error_code, translate
from replctl.config import Config
from replctl.deploy.observe import instance_state, list_instances
from replctl.deploy.rollout import Reporter, RolloutLog, Runner, SilentReporter
from replctl.destroy.model import (
    DeleteParameters,
    DeleteTable,
    DestroyClients,
    EmptyBucket,
    Phase,
    TeardownPlan,
    describe,
)
from replctl.errors import DeployError, ReplctlError
from replctl.waiting import Poll, wait_until

#: DeleteObjects: "The request can contain a list of up to 1,000 keys" (Amazon S3 API reference).
DELETE_OBJECTS_BATCH = 1000
#: DeleteParameters, Names: "Array Members: Minimum number of 1 item. Maximum number of 10 items."
DELETE_PARAMETERS_BATCH = 10

RESUME = "fix the cause and re-run replctl destroy; it resumes from what AWS reports"


@dataclass
class DestroyLog:
    """What happened, filled in as the teardown goes (kept by the caller even when it fails)."""

    rollout: RolloutLog = field(default_factory=RolloutLog)
    removed: list[str] = field(default_factory=list)  # data removed: "s3://bucket (account region)", ...

    def to_dict(self) -> dict[str, Any]:
        return {**self.rollout.to_dict(), "removed": list(self.removed)}


class _Teardown:
    def __init__(self, plan: TeardownPlan, config: Config, clients: DestroyClients, reporter: Reporter,
                 sleep: Callable[[float], None], clock: Callable[[], float], log: DestroyLog) -> None:
        self.plan, self.config, self.clients, self.reporter = plan, config, clients, reporter
        self.sleep, self.clock, self.log = sleep, clock, log
        self.runner = Runner(config, clients.stacksets, reporter=reporter, sleep=sleep, clock=clock, log=log.rollout)

    def run(self) -> None:
        for phase in self.plan.phases:
            self.phase(phase)

    def phase(self, phase: Phase) -> None:
        done = self.log.rollout.completed
        match phase.kind:
            case "unwire":
                for step in phase.steps:
                    self.runner.execute(step)
                self.runner.verify(self.config.environment(phase.environment))
                done.append(f"unwire {phase.environment}")
            case "delete":
                for step in phase.steps:
                    self.runner.execute(step)
                self.verify_gone(phase.environment)
                done.append(f"delete {phase.environment}")
            case "stack set":
                for step in phase.steps:
                    self.runner.execute(step)
            case "data":
                for step in phase.steps:
                    self.reporter.step(f"{phase.environment}: {describe(step)}")
                    self.remove(step)
                done.append(f"data {phase.environment}")
            case _:  # pragma: no cover - decide makes only these
                raise TypeError(f"unknown phase {phase.kind!r}")

    def verify_gone(self, environment: str) -> None:
        """None of the environment's instances is left after its deletion."""
        name, call_as = self.config.stackset.name, self.config.stackset.call_as
        listed = self.runner.read(_instances_if_any, self.clients.stacksets.cfn, name, call_as)
        wanted = set(self.config.environment(environment).instances())
        left = [instance_state(s) for s in listed if (s["Account"], s["Region"]) in wanted]
        if left:
            lines = "\n".join(f"  {i.account} {i.region}: {i.label()}" + (f" — {i.reason}" if i.reason else "")
                              for i in left)
            raise DeployError(f"{environment}: stack instances are still there after their deletion:\n{lines}",
                              hint=RESUME)

    # -- data ---------------------------------------------------------------------------------

    def remove(self, step: EmptyBucket | DeleteTable | DeleteParameters | Any) -> None:
        try:
            match step:
                case EmptyBucket(account=a, region=r, bucket=b):
                    if empty_and_delete_bucket(self.clients.remover("s3", a, r), b):
                        self.log.removed.append(f"s3://{b} ({a} {r})")
                case DeleteTable(account=a, region=r, table=t):
                    if self.delete_table(self.clients.remover("dynamodb", a, r), t):
                        self.log.removed.append(f"table {t} ({a} {r})")
                case DeleteParameters(account=a, region=r, names=names):
                    delete_parameters(self.clients.remover("ssm", a, r), names)
                    self.log.removed.append(f"{len(names)} parameter(s) ({a} {r})")
                case _:  # pragma: no cover
                    raise TypeError(f"unknown data step {step!r}")
        except ReplctlError:
            raise
        except Exception as exc:
            err = translate(exc)
            if type(err) is ReplctlError:
                raise DeployError(f"{step.environment}: {describe(step)} failed: {err.message}", hint=RESUME) from exc
            raise err from exc

    def delete_table(self, ddb: Any, table: str) -> bool:
        """Deletion protection off, wait for ACTIVE, delete. False when the table is already gone."""
        try:
            # "When you enable deletion protection for a table, it can't be deleted by any user or
            # process" (DynamoDB API reference, UpdateTable, DeletionProtectionEnabled).
            ddb.update_table(TableName=table, DeletionProtectionEnabled=False)
        except Exception as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return False
            raise

        def active() -> Poll[None]:
            status = ddb.describe_table(TableName=table)["Table"].get("TableStatus", "ACTIVE")
            return Poll(status == "ACTIVE", None)

        # An UpdateTable leaves the table UPDATING; DeleteTable of a table that is not ACTIVE fails
        # with ResourceInUseException (DynamoDB API reference, DeleteTable).
        wait_until(active, settings=self.config.stackset.wait, what=f"table {table} to be ACTIVE",
                   sleep=self.sleep, clock=self.clock)
        try:
            ddb.delete_table(TableName=table)
        except Exception as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return False
            raise
        return True


def _instances_if_any(cfn: Any, name: str, call_as: str) -> list[dict[str, Any]]:
    try:
        return list_instances(cfn, name, call_as=call_as)
    except Exception as exc:
        if error_code(exc) == "StackSetNotFoundException":
            return []
        raise


def empty_and_delete_bucket(s3: Any, bucket: str) -> bool:
    """Every object version and delete marker, then the bucket. False when it is already gone.

    A versioned bucket keeps every version and delete marker; DeleteBucket: "All objects
    (including all object versions and delete markers) in the bucket must be deleted before the
    bucket itself can be deleted" (Amazon S3 API reference).
    """
    try:
        while True:
            batch: list[dict[str, str]] = []
            for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
                for v in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
                    batch.append({"Key": v["Key"], "VersionId": v["VersionId"]})
                    if len(batch) == DELETE_OBJECTS_BATCH:
                        _delete_objects(s3, bucket, batch)
                        batch = []
            if not batch:
                break
            _delete_objects(s3, bucket, batch)
        s3.delete_bucket(Bucket=bucket)
    except Exception as exc:
        if error_code(exc) in ("NoSuchBucket", "404"):
            return False
        raise
    return True


def _delete_objects(s3: Any, bucket: str, objects: list[dict[str, str]]) -> None:
    answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
    errors = answer.get("Errors") or []
    if errors:
        first = errors[0]
        raise DeployError(f"s3://{bucket}: {len(errors)} object version(s) could not be deleted, e.g. "
                          f"{first.get('Key')} ({first.get('VersionId')}): {first.get('Code')} {first.get('Message')}",
                          hint=RESUME)


def delete_parameters(ssm: Any, names: tuple[str, ...]) -> None:
    """DeleteParameters, ten names a call; names already gone are reported back, not failed."""
    for i in range(0, len(names), DELETE_PARAMETERS_BATCH):
        ssm.delete_parameters(Names=list(names[i: i + DELETE_PARAMETERS_BATCH]))


def apply(
    plan: TeardownPlan,
    config: Config,
    clients: DestroyClients,
    *,
    reporter: Reporter | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    log: DestroyLog | None = None,
) -> DestroyLog:
    """Apply the teardown phase by phase; raise at the first failure (the log keeps what happened)."""
    log = log if log is not None else DestroyLog()
    if not plan.changes:
        return log
    try:
        _Teardown(plan, config, clients, reporter or SilentReporter(), sleep, clock, log).run()
    except DeployError as exc:
        exc.hint = ("later phases were not started; " + RESUME) if exc.hint and "deploy" in exc.hint else exc.hint
        raise
    return log
