"""Fakes of what `destroy` touches in the target accounts: S3 buckets with versions and delete markers,
the metadata table with deletion protection, and Parameter Store — each behaviour one the service's
API reference documents, quoted where `destroy` depends on it. `Estate` wires them with the fake
StackSet service into `DestroyClients`, recording which role each call ran as.
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
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {"protected": bool, "status": str}
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


class FakeDynamoData:
    def __init__(self, acct: Account, calls: list[tuple[str, str, str]], role: str) -> None:
        self.acct, self.calls, self.role = acct, calls, role

    def _table(self, api: str, name: str) -> dict[str, Any]:
        self.calls.append((self.role, api, name))
        if name not in self.acct.tables:
            raise error("ResourceNotFoundException", "Requested resource not found", api)
        return self.acct.tables[name]

    def describe_table(self, TableName: str) -> dict[str, Any]:
        t = self._table("DescribeTable", TableName)
        status = t["status"]
        if status == "UPDATING":  # the update finishes by the next read (how long it takes is not documented)
            t["status"] = "ACTIVE"
        return {"Table": {"TableName": TableName, "TableStatus": status,
                          "DeletionProtectionEnabled": t["protected"]}}

    def update_table(self, TableName: str, DeletionProtectionEnabled: bool) -> dict[str, Any]:
        t = self._table("UpdateTable", TableName)
        t["protected"], t["status"] = DeletionProtectionEnabled, "UPDATING"
        return {}

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

    def at(self, account: str, region: str = "us-east-1") -> Account:
        return self.accounts.setdefault((account, region), Account())

    def clients(self) -> DestroyClients:
        kinds = {"s3": FakeS3Data, "dynamodb": FakeDynamoData, "ssm": FakeSsmData}

        def as_role(role: str) -> Any:
            return lambda service, account, region: kinds[service](self.at(account, region), self.calls, role)

        return DestroyClients(self.world.clients(), as_role("observer"), as_role("remover"))

    def mutating_calls(self) -> list[str]:
        data = [api for _, api, _ in self.calls if not api.startswith(("Get", "Describe", "List"))]
        return self.world.mutating_calls() + data
