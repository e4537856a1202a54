"""The teardown plan as a value: its phases, the data steps, and what the data reads found.

StackSet steps are deploy's (`UpdateOverrides` to unwire an upstream environment,
`DeleteInstances`, `DeleteStackSet`), applied by the same rollout machinery; the data steps
(`EmptyBucket`, `RemoveReplica`, `DeleteTable`, `DeleteParameters`) exist only here. `decide`
builds a `TeardownPlan`; `destroy --dry-run` and `destroy` show the same value. `TableState` is
what a DescribeTable of the metadata table says, as apply judges it while removing replicas.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from replctl.deploy.model import (
    HIDDEN,
    SENSITIVE_PARAMETERS,
    Clients,
    DeleteInstances,
    DeleteStackSet,
    InstanceRow,
    InstanceState,
    StackSetState,
    UpdateOverrides,
    describe_step,
    step_action,
)


@dataclass(frozen=True)
class DestroyClients:
    """deploy's clients, plus the two ways into a target account: read (observer) and remove data."""

    stacksets: Clients
    observer: Callable[[str, str, str], Any]  # (service, account, region) -> client as the observer role
    remover: Callable[[str, str, str], Any]  # (service, account, region) -> client as the data-remover role

    @classmethod
    def from_factory(cls, factory: Any, config: Any) -> DestroyClients:
        def as_role(role: str) -> Callable[[str, str, str], Any]:
            def client(service: str, account: str, region: str) -> Any:
                return factory.client(service, region=region, account=account,
                                      role_arn=f"arn:aws:iam::{account}:role/replctl/{role}")
            return client

        return cls(Clients.from_factory(factory, config), as_role(config.observer_role_name),
                   as_role(config.data_remover_role_name))


# --------------------------------------------------------------------------- what is there


@dataclass(frozen=True)
class AccountData:
    """What one account-region holds of the estate's data, read through the observer role."""

    environment: str
    account: str
    region: str
    bucket: str
    bucket_exists: bool
    table: str
    # Where the table to remove is: this region, or, when it is gone here, the first DR region of
    # ExtraReplicaRegions still holding a table of that name (a replica left behind); None: nowhere.
    table_region: str | None
    replicas: tuple[str, ...] = ()  # regions of the table's other replicas, as table_region's DescribeTable lists them
    parameters: tuple[str, ...] = ()  # names under the hierarchies replctl wrote here (read with --delete-data)

    @property
    def table_exists(self) -> bool:
        return self.table_region is not None


@dataclass(frozen=True)
class Facts:
    """Everything `decide` needs, read with read-only calls."""

    stack_set: StackSetState | None
    instances: tuple[InstanceState, ...] = ()
    data: tuple[AccountData, ...] = ()
    running: tuple[str, ...] = ()


#: TableStatus values that pass by themselves (DynamoDB API reference, TableDescription): "UPDATING -
#: The table/index configuration is being updated", and so on. The others it lists
#: (INACCESSIBLE_ENCRYPTION_CREDENTIALS, ARCHIVING, ARCHIVED, REPLICATION_NOT_AUTHORIZED) wait for
#: someone to act, so a teardown stops on them instead of waiting.
TABLE_SETTLING = frozenset({"CREATING", "UPDATING", "DELETING"})


@dataclass(frozen=True)
class TableState:
    """What DescribeTable says of the metadata table in the region it was asked in."""

    status: str  # TableStatus
    protected: bool  # DeletionProtectionEnabled
    replicas: tuple[tuple[str, str], ...]  # (region, ReplicaStatus) of its replicas in other regions, sorted

    @classmethod
    def of(cls, table: dict[str, Any], region: str) -> TableState:
        """From DescribeTable's `Table`. Whether `Replicas` lists the asked region too is not
        documented, so it is dropped here either way."""
        replicas = sorted((r["RegionName"], r.get("ReplicaStatus", "")) for r in table.get("Replicas") or []
                          if r["RegionName"] != region)
        return cls(table["TableStatus"], bool(table.get("DeletionProtectionEnabled", True)), tuple(replicas))

    def replica_status(self, region: str) -> str | None:
        return dict(self.replicas).get(region)


# --------------------------------------------------------------------------- data steps


@dataclass(frozen=True)
class EmptyBucket:
    """Delete every object version and delete marker (ListObjectVersions pages, DeleteObjects in
    batches of 1,000), then the bucket."""

    environment: str
    account: str
    region: str
    bucket: str


@dataclass(frozen=True)
class RemoveReplica:
    """Remove the table's replica in another region: UpdateTable with ReplicaUpdates Delete, sent to
    the table's region, then wait until the replica is gone and the table ACTIVE again."""

    environment: str
    account: str
    region: str  # where UpdateTable is sent (the table's region)
    table: str
    replica_region: str


@dataclass(frozen=True)
class DeleteTable:
    """Turn off the table's deletion protection, then delete it."""

    environment: str
    account: str
    region: str
    table: str


@dataclass(frozen=True)
class DeleteParameters:
    """Delete the parameters replctl wrote under these hierarchies in one account (DeleteParameters,
    10 names a call)."""

    environment: str  # whose account this is
    account: str
    region: str
    hierarchies: tuple[str, ...]
    names: tuple[str, ...]


DataStep = EmptyBucket | RemoveReplica | DeleteTable | DeleteParameters
TeardownStep = UpdateOverrides | DeleteInstances | DeleteStackSet | DataStep


def describe(step: TeardownStep) -> str:
    """One line for people."""
    match step:
        case EmptyBucket(account=a, region=r, bucket=b):
            return f"empty s3://{b} (every version and delete marker) and delete it ({a} {r})"
        case RemoveReplica(account=a, region=r, table=t, replica_region=rr):
            return f"remove the replica of table {t} in {rr} (UpdateTable from {r}) ({a} {rr})"
        case DeleteTable(account=a, region=r, table=t):
            return f"turn off deletion protection of table {t} and delete it ({a} {r})"
        case DeleteParameters(account=a, region=r, hierarchies=h, names=n):
            return f"delete {len(n)} parameter(s) under {', '.join(h)} ({a} {r})"
    return describe_step(step)


def api(step: TeardownStep) -> str:
    """The AWS API(s) the step calls."""
    match step:
        case EmptyBucket():
            return "ListObjectVersions, DeleteObjects, DeleteBucket"
        case RemoveReplica():
            return "UpdateTable (ReplicaUpdates Delete), DescribeTable"
        case DeleteTable():
            return "UpdateTable, DeleteTable"
        case DeleteParameters():
            return "DeleteParameters"
    return step_action(step)


@dataclass(frozen=True)
class Phase:
    """One step of the order: unwire an upstream environment, delete an environment's instances,
    delete the stack set, or remove an environment's data."""

    kind: str  # "unwire", "delete", "stack set", "data"
    environment: str
    steps: tuple[TeardownStep, ...] = ()


@dataclass(frozen=True)
class Retained:
    """Data that outlives the teardown (DeletionPolicy Retain), with the command that removes it."""

    environment: str
    account: str
    region: str
    kind: str  # "bucket", "table", or "replica" (the table's copy in a DR region)
    name: str
    remove: str


@dataclass(frozen=True)
class TeardownPlan:
    stack_set: str
    region: str
    exists: bool
    environments: tuple[str, ...]  # being removed, in rollout order
    whole_estate: bool
    delete_data: bool
    instances: tuple[InstanceRow, ...]
    phases: tuple[Phase, ...]
    retained: tuple[Retained, ...]
    running_operations: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    data: tuple[AccountData, ...] = field(default=(), repr=False)

    @property
    def changes(self) -> bool:
        return any(p.steps for p in self.phases)

    def steps(self) -> tuple[TeardownStep, ...]:
        return tuple(s for p in self.phases for s in p.steps)

    def to_dict(self) -> dict[str, Any]:
        def step_dict(s: TeardownStep) -> dict[str, Any]:
            d = asdict(s)
            if "overrides" in d:
                d["overrides"] = {k: HIDDEN if k in SENSITIVE_PARAMETERS else v for k, v in d["overrides"]}
            return {"step": type(s).__name__, "api": api(s), "description": describe(s), **d}

        return {
            "stack_set": self.stack_set,
            "region": self.region,
            "exists": self.exists,
            "environments": list(self.environments),
            "whole_estate": self.whole_estate,
            "delete_data": self.delete_data,
            "changes": self.changes,
            "instances": [asdict(r) for r in self.instances],
            "phases": [{"kind": p.kind, "environment": p.environment, "steps": [step_dict(s) for s in p.steps]}
                       for p in self.phases],
            "retained": [asdict(r) for r in self.retained],
            "running_operations": list(self.running_operations),
            "notes": list(self.notes),
        }
