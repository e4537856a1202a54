"""Apply a teardown plan phase by phase, stopping at the first failure.

StackSet steps run on the rollout's machinery (`deploy.rollout.Runner`): each operation is started
with an explicit OperationId, waited on with progress, and fails naming each account/region with
AWS's reason, exactly as a deploy's. After an unwire phase the environment must be
CURRENT/SUCCEEDED; after a delete phase none of its instances may be left. The data steps act
through the data-remover role of the account (cfn/stackset-execution-role.yaml), and each is
idempotent: what is already gone counts as removed, so a re-run after a failure or Ctrl-C
finishes the job. Nothing is kept locally. The table's DR replicas go one UpdateTable at a time,
each waited on until it is gone and the table ACTIVE again, before the table itself.
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
from replctl.destroy.decide import replica_removal
from replctl.destroy.model import (
    TABLE_SETTLING,
    DeleteParameters,
    DeleteTable,
    DestroyClients,
    EmptyBucket,
    Phase,
    RemoveReplica,
    TableState,
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

    def remove(self, step: EmptyBucket | RemoveReplica | DeleteTable | DeleteParameters | Any) -> None:
        try:
            match step:
                case EmptyBucket(account=a, region=r, bucket=b):
                    if empty_and_delete_bucket(self.clients.remover("s3", a, r), b):
                        self.log.removed.append(f"s3://{b} ({a} {r})")
                case RemoveReplica(account=a, region=r, table=t, replica_region=rr):
                    if self.remove_replica(self.clients.remover("dynamodb", a, r), step):
                        self.log.removed.append(f"table {t} replica ({a} {rr})")
                case DeleteTable(account=a, region=r, table=t):
                    if self.delete_table(self.clients.remover("dynamodb", a, r), step):
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

    def remove_replica(self, ddb: Any, step: RemoveReplica) -> bool:
        """UpdateTable with ReplicaUpdates Delete, waited on until the replica is gone and the table
        ACTIVE. False when it was gone already.

        The request goes to the table's region: "An existing replica to be deleted. The request
        invokes the DeleteTableReplica action in the destination Region, deleting the replica and
        all if its items in the destination Region" (DynamoDB API reference, ReplicationGroupUpdate).
        One replica a call, as a table that is UPDATING accepts no other UpdateTable.
        """
        first = self.read_table(ddb, step)
        if first is None:
            raise self.table_gone(step)
        requested = False
        unread = [first]  # the first probe judges what was just read
        seen = [first]

        def probe() -> Poll[None]:
            nonlocal requested
            state = unread.pop() if unread else self.read_table(ddb, step)
            if state is None:
                raise self.table_gone(step)
            self.report_change(step, seen, state)
            move = replica_removal(state, step.replica_region, requested)
            if move == "request":
                requested = self.request_replica_removal(ddb, step)
            return Poll(move == "done", None)

        wait_until(probe, settings=self.config.stackset.wait, sleep=self.sleep, clock=self.clock, hint=RESUME,
                   what=f"the replica of table {step.table} in {step.replica_region} to be removed")
        return first.replica_status(step.replica_region) is not None

    @staticmethod
    def table_gone(step: RemoveReplica) -> DeployError:
        # A replica outlives its table's deletion elsewhere (see decide.data_phases), and only the
        # table's own region can remove it with UpdateTable.
        return DeployError(f"{step.environment}: table {step.table} is gone from {step.region} ({step.account}), "
                           f"so its replica in {step.replica_region} cannot be removed from there",
                           hint="re-run replctl destroy --delete-data: where the table is gone it looks for it in the "
                           "regions of ExtraReplicaRegions; or delete it there: aws dynamodb delete-table "
                           f"--table-name {step.table} --region {step.replica_region}")

    def request_replica_removal(self, ddb: Any, step: RemoveReplica) -> bool:
        """True once AWS took the request; False when the table turned busy in between (read again)."""
        try:
            ddb.update_table(TableName=step.table, ReplicaUpdates=[{"Delete": {"RegionName": step.replica_region}}])
        except Exception as exc:
            # ResourceInUseException: "You tried to update a resource that was already being
            # updated. When appropriate, wait for the ongoing update to complete and attempt the
            # request again" (DynamoDB API reference, Errors).
            if error_code(exc) == "ResourceInUseException":
                return False
            raise
        return True

    def read_table(self, ddb: Any, step: RemoveReplica | DeleteTable) -> TableState | None:
        """The table as DescribeTable reports it in the step's region; None when it is gone there."""
        try:
            state = TableState.of(ddb.describe_table(TableName=step.table)["Table"], step.region)
        except Exception as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return None
            raise
        if state.status != "ACTIVE" and state.status not in TABLE_SETTLING:
            raise DeployError(f"{step.environment}: table {step.table} ({step.account} {step.region}) is "
                              f"{state.status}, which does not pass by itself (DynamoDB API reference, TableStatus)",
                              hint="restore the table's access (its KMS key, or the replication permissions), "
                              "then re-run replctl destroy --delete-data")
        return state

    def report_change(self, step: RemoveReplica | DeleteTable, seen: list[TableState], state: TableState) -> None:
        """Tell people what the table is doing, once each time it changes."""
        if state != seen[-1]:
            replicas = ", ".join(f"{r} {s}" for r, s in state.replicas) or "none"
            self.reporter.step(f"{step.environment}: table {step.table} ({step.region}) {state.status}; "
                               f"replicas: {replicas}")
            seen.append(state)

    def settle(self, ddb: Any, step: DeleteTable) -> TableState | None:
        """Wait until the table is ACTIVE (None when it is gone)."""
        seen: list[TableState] = []

        def active() -> Poll[TableState | None]:
            state = self.read_table(ddb, step)
            if state is not None and seen:
                self.report_change(step, seen, state)
            elif state is not None:
                seen.append(state)
            return Poll(state is None or state.status == "ACTIVE", state)

        return wait_until(active, settings=self.config.stackset.wait, what=f"table {step.table} to be ACTIVE",
                          sleep=self.sleep, clock=self.clock, hint=RESUME)

    def delete_table(self, ddb: Any, step: DeleteTable) -> bool:
        """No replica left, deletion protection off, ACTIVE, delete. False when the table is already gone."""
        state = self.settle(ddb, step)
        if state is None:
            return False
        if state.replicas:
            # Deleting the table here would leave them behind (see decide.data_phases).
            raise DeployError(f"{step.environment}: table {step.table} ({step.account} {step.region}) has replicas "
                              f"the plan did not remove: {', '.join(r for r, _ in state.replicas)}",
                              hint="re-run replctl destroy --delete-data: it plans their removal first")
        if state.protected:
            try:
                # "When you enable deletion protection for a table, it can't be deleted by any user or
                # process" (DynamoDB API reference, UpdateTable, DeletionProtectionEnabled).
                ddb.update_table(TableName=step.table, DeletionProtectionEnabled=False)
            except Exception as exc:
                if error_code(exc) == "ResourceNotFoundException":
                    return False
                raise
            # The update leaves the table UPDATING; DeleteTable of a table that is not ACTIVE fails
            # with ResourceInUseException (DynamoDB API reference, DeleteTable).
            if self.settle(ddb, step) is None:
                return False
        try:
            ddb.delete_table(TableName=step.table)
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
