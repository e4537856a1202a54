"""Fakes of what `destroy` touches in the target accounts: S3 buckets with versions and delete markers,
the metadata table with deletion protection and DR replicas (global tables version 2019.11.21), and
Parameter Store — each behaviour one the service's API reference documents, quoted where `destroy`
depends on it; what AWS does not document (a Delete of a region that holds no replica, several
replica updates in one call) raises `Undocumented`, so a test fails if `destroy` ever relies on it.
`Estate` wires them with the fake StackSet service into `DestroyClients`, recording which role each
call ran as.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from replctl.destroy.model import DestroyClients
from tests.unit.deploy.fake_stacksets import World, error


@dataclass
class Account:
    """One account-region's data."""

    buckets: dict[str, list[tuple[str, str, bool]]] = field(default_factory=dict)  # name -> (key, version, marker)
    # name -> {"protected": bool, "status": str, "replicas": {region: ReplicaStatus} (the other regions),
    #          "reads": DescribeTable reads an update takes (default 1), "busy": reads left of the pending
    #          one, "then": what it does when done}
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    parameters: dict[str, str] = field(default_factory=dict)


class FakeS3Data:
    def __init__(self, acct: Account, calls: list[tuple[str, str, str]], role: str) -> None:
        self.acct, self.calls, self.role = acct, calls, role

    def _bucket(self, api: str, name: str) -> list[tuple[str, str, bool]]:
        self.calls.append((self.role, api, name))
        if name not in self.acct.buckets:
            raise error("NoSuchBucket", "The specified bucket does not exist", api, 404)
        return self.acct.buckets[name]

    def get_bucket_versioning(self, Bucket: str) -> dict[str, Any]:
        self._bucket("GetBucketVersioning", Bucket)
        return {"Status": "Enabled"}

    def get_paginator(self, name: str) -> Any:
        assert name == "list_object_versions"
        outer = self

        class Paginator:
            def paginate(self, Bucket: str) -> Any:
                # ListObjectVersions: "Returns metadata about all versions of the objects in a bucket"
                # (Versions and DeleteMarkers), up to MaxKeys (default 1,000) a page.
                items = outer._bucket("ListObjectVersions", Bucket)
                for i in range(0, max(len(items), 1), 1000):
                    page = items[i:i + 1000]
                    yield {"Versions": [{"Key": k, "VersionId": v} for k, v, m in page if not m],
                           "DeleteMarkers": [{"Key": k, "VersionId": v} for k, v, m in page if m]}

        return Paginator()

    def delete_objects(self, Bucket: str, Delete: dict[str, Any]) -> dict[str, Any]:
        items = self._bucket("DeleteObjects", Bucket)
        objects = Delete["Objects"]
        if len(objects) > 1000:
            # DeleteObjects: "The request can contain a list of up to 1,000 keys that you want to delete."
            raise error("MalformedXML", "more than 1000 keys", "DeleteObjects")
        gone = {(o["Key"], o["VersionId"]) for o in objects}
        items[:] = [i for i in items if (i[0], i[1]) not in gone]
        return {}

    def delete_bucket(self, Bucket: str) -> dict[str, Any]:
        if self._bucket("DeleteBucket", Bucket):
            # DeleteBucket: "All objects (including all object versions and delete markers) in the bucket
            # must be deleted before the bucket itself can be deleted."
            raise error("BucketNotEmpty", "The bucket you tried to delete is not empty", "DeleteBucket", 409)
        del self.acct.buckets[Bucket]
        return {}


class Undocumented(AssertionError):
    """A request whose answer AWS does not document: the fake will not make one up."""


class FakeDynamoData:
    """One account-region's DynamoDB, reaching the account's other regions for global-table replicas.

    How long an update takes is not documented: the fake finishes it after `table["reads"]`
    DescribeTable reads (1 by default). Whether DescribeTable's `Replicas` names the region asked
    is not documented either: `Estate.lists_own_region` picks one answer, and tests run both.
    """

    def __init__(self, estate: Estate, account: str, region: str, role: str) -> None:
        self.estate, self.account, self.region, self.role = estate, account, region, role
        self.acct = estate.at(account, region)

    def _table(self, api: str, name: str, **params: Any) -> dict[str, Any]:
        self.estate.calls.append((self.role, api, name))
        self.estate.requests.append((self.role, self.account, self.region, api, {"TableName": name, **params}))
        if name not in self.acct.tables:
            raise error("ResourceNotFoundException", "Requested resource not found", api)
        return self.acct.tables[name]

    def describe_table(self, TableName: str) -> dict[str, Any]:
        t = self._table("DescribeTable", TableName)
        status, replicas = t["status"], dict(t.get("replicas", {}))
        if status == "UPDATING":
            t["busy"] = t.get("busy", 1) - 1
            if t["busy"] <= 0:
                t.pop("busy")
                t["status"] = "ACTIVE"
                t.pop("then", lambda: None)()
        listed = [{"RegionName": r, "ReplicaStatus": st} for r, st in sorted(replicas.items())]
        if replicas and self.estate.lists_own_region:
            listed.append({"RegionName": self.region, "ReplicaStatus": "ACTIVE"})
        # TableDescription: "Replicas: Represents replicas of the table" (absent on a regional table).
        return {"Table": {"TableName": TableName, "TableStatus": status, "DeletionProtectionEnabled": t["protected"],
                          **({"Replicas": listed} if listed else {})}}

    def update_table(self, TableName: str, DeletionProtectionEnabled: bool | None = None,
                     ReplicaUpdates: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        params = {k: v for k, v in (("DeletionProtectionEnabled", DeletionProtectionEnabled),
                                    ("ReplicaUpdates", ReplicaUpdates)) if v is not None}
        t = self._table("UpdateTable", TableName, **params)
        if t["status"] != "ACTIVE":
            # UpdateTable: "While it's UPDATING, you can't issue another UpdateTable request";
            # ResourceInUseException: "You tried to update a resource that was already being updated."
            raise error("ResourceInUseException", "Attempt to change a resource which is still in use", "UpdateTable")
        if ReplicaUpdates is not None:
            self._remove_replica(t, TableName, ReplicaUpdates)
        if DeletionProtectionEnabled is not None:
            t["protected"] = DeletionProtectionEnabled
        # "UpdateTable is an asynchronous operation; while it's executing, the table status changes
        # from ACTIVE to UPDATING."
        t["status"], t["busy"] = "UPDATING", t.get("reads", 1)
        return {}

    def _remove_replica(self, t: dict[str, Any], name: str, updates: list[dict[str, Any]]) -> None:
        if len(updates) != 1 or set(updates[0]) != {"Delete"}:
            raise Undocumented(f"ReplicaUpdates {updates}: the fake models one Delete a call")
        region = updates[0]["Delete"]["RegionName"]
        if region not in t.get("replicas", {}):
            raise Undocumented(f"a Delete of {region}, which holds no replica of {name}")
        # ReplicaDescription, ReplicaStatus: "DELETING - The replica is being deleted."
        t["replicas"][region] = "DELETING"

        def done() -> None:
            # ReplicationGroupUpdate: "An existing replica to be deleted. The request invokes the
            # DeleteTableReplica action in the destination Region, deleting the replica and all if its
            # items in the destination Region."
            del t["replicas"][region]
            there = self.estate.at(self.account, region).tables
            there.pop(name, None)
            for other in t["replicas"]:
                self.estate.at(self.account, other).tables[name].get("replicas", {}).pop(region, None)

        t["then"] = done

    def delete_table(self, TableName: str) -> dict[str, Any]:
        t = self._table("DeleteTable", TableName)
        if t["protected"]:
            # DeletionProtectionEnabled: "When you enable deletion protection for a table, it can't be
            # deleted by any user or process."
            raise error("ValidationException", "Resource cannot be deleted as it is currently protected "
                        "against deletion", "DeleteTable")
        if t["status"] != "ACTIVE":
            # DeleteTable: "If the table is in the ACTIVE state, you can delete it. If a table is in CREATING or
            # UPDATING states, then DynamoDB returns a ResourceInUseException."
            raise error("ResourceInUseException", "table is being updated", "DeleteTable")
        del self.acct.tables[TableName]
        # Global tables FAQ: "You can delete a replica table the same way you would delete any other
        # table. Deleting the global table stops replication to that Region and deletes the table copy
        # kept in that Region": the other replicas stay, replicating among themselves.
        for other in t.get("replicas", {}):
            self.estate.at(self.account, other).tables[TableName].get("replicas", {}).pop(self.region, None)
        return {}


class FakeSsmData:
    def __init__(self, acct: Account, calls: list[tuple[str, str, str]], role: str) -> None:
        self.acct, self.calls, self.role = acct, calls, role

    def get_parameters_by_path(self, Path: str, Recursive: bool, NextToken: str | None = None) -> dict[str, Any]:
        self.calls.append((self.role, "GetParametersByPath", Path))
        names = sorted(n for n in self.acct.parameters if n.startswith(Path + "/"))
        start = int(NextToken or 0)
        # GetParametersByPath, MaxResults: "Valid Range: Minimum value of 1. Maximum value of 10."
        out: dict[str, Any] = {"Parameters": [{"Name": n} for n in names[start:start + 10]]}
        if start + 10 < len(names):
            out["NextToken"] = str(start + 10)
        return out

    def delete_parameters(self, Names: list[str]) -> dict[str, Any]:
        self.calls.append((self.role, "DeleteParameters", ",".join(Names)))
        if len(Names) > 10:
            # DeleteParameters, Names: "Maximum number of 10 items."
            raise error("ValidationException", "too many names", "DeleteParameters")
        # "InvalidParameters: The names of parameters that weren't deleted because the parameters aren't valid."
        invalid = [n for n in Names if n not in self.acct.parameters]
        for n in Names:
            self.acct.parameters.pop(n, None)
        return {"DeletedParameters": [n for n in Names if n not in invalid], "InvalidParameters": invalid}


@dataclass
class Estate:
    """The fake StackSet world plus each account's data, as `DestroyClients`."""

    world: World = field(default_factory=World)
    accounts: dict[tuple[str, str], Account] = field(default_factory=dict)
    calls: list[tuple[str, str, str]] = field(default_factory=list)  # (role, API, resource)
    # DynamoDB calls with their parameters, for the permission proof: (role, account, region, API, params)
    requests: list[tuple[str, str, str, str, dict[str, Any]]] = field(default_factory=list)
    lists_own_region: bool = False  # whether DescribeTable's Replicas names the region asked (undocumented)

    def at(self, account: str, region: str = "us-east-1") -> Account:
        return self.accounts.setdefault((account, region), Account())

    def clients(self) -> DestroyClients:
        kinds = {"s3": FakeS3Data, "ssm": FakeSsmData}

        def as_role(role: str) -> Any:
            def client(service: str, account: str, region: str) -> Any:
                if service == "dynamodb":
                    return FakeDynamoData(self, account, region, role)
                return kinds[service](self.at(account, region), self.calls, role)
            return client

        return DestroyClients(self.world.clients(), as_role("observer"), as_role("remover"))

    def global_table(self, account: str, home: str, name: str, replicas: tuple[str, ...],
                     protected: bool = True) -> None:
        """A table in `home` with replicas in `replicas`: DR copies without deletion protection, as
        cfn/replication.yaml makes them."""
        everywhere = (home, *replicas)
        for region in everywhere:
            self.at(account, region).tables[name] = {
                "protected": protected if region == home else False, "status": "ACTIVE",
                "replicas": {r: "ACTIVE" for r in everywhere if r != region}}

    def mutating_calls(self) -> list[str]:
        data = [api for _, api, _ in self.calls if not api.startswith(("Get", "Describe", "List"))]
        return self.world.mutating_calls() + data
