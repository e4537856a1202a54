"""Removing the metadata table's DR replicas, against botocore's Stubber (moto ignores ReplicaUpdates
and reports no `Replicas`): every request replctl sends is checked against the DynamoDB service
model botocore ships, and answered with responses of that model's shapes, in the order AWS would
give them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from replctl.config import load_config
from replctl.destroy.apply import apply
from replctl.destroy.model import DeleteTable, DestroyClients, Phase, RemoveReplica, TeardownPlan
from tests.unit.deploy.fake_stacksets import PROD, World, write_estate

TABLE, HOME, DR = "replctl-metadata", "us-east-1", "us-west-2"


def table(status: str, protected: bool, *replicas: tuple[str, str]) -> dict[str, Any]:
    described: dict[str, Any] = {"TableName": TABLE, "TableStatus": status, "DeletionProtectionEnabled": protected}
    if replicas:
        described["Replicas"] = [{"RegionName": r, "ReplicaStatus": s} for r, s in replicas]
    return {"Table": described}


def test_a_replica_is_removed_from_the_home_region_then_the_table(tmp_path: Path) -> None:
    config = load_config(write_estate(tmp_path))
    ddb = boto3.client("dynamodb", region_name=HOME, aws_access_key_id="testing", aws_secret_access_key="testing")
    stub = Stubber(ddb)
    name = {"TableName": TABLE}
    stub.add_response("describe_table", table("ACTIVE", True, (DR, "ACTIVE")), name)
    stub.add_response("update_table", {}, {**name, "ReplicaUpdates": [{"Delete": {"RegionName": DR}}]})
    stub.add_response("describe_table", table("UPDATING", True, (DR, "DELETING")), name)
    stub.add_response("describe_table", table("ACTIVE", True), name)
    stub.add_response("describe_table", table("ACTIVE", True), name)
    stub.add_response("update_table", {}, {**name, "DeletionProtectionEnabled": False})
    stub.add_response("describe_table", table("UPDATING", False), name)
    stub.add_response("describe_table", table("ACTIVE", False), name)
    stub.add_response("delete_table", {}, name)
    plan = TeardownPlan("replctl-replication", HOME, False, ("prod",), False, True, (), (Phase("data", "prod", (
        RemoveReplica("prod", PROD, HOME, TABLE, DR), DeleteTable("prod", PROD, HOME, TABLE))),), ())
    world = World()
    def remover(service: str, account: str, region: str) -> Any:
        assert (service, account, region) == ("dynamodb", PROD, HOME)  # every call goes to the table's region
        return ddb

    clients = DestroyClients(world.clients(), lambda *_: pytest.fail("no reads through the observer here"), remover)
    with stub:
        log = apply(plan, config, clients, sleep=world.clock.sleep, clock=world.clock)
        stub.assert_no_pending_responses()
    assert log.removed == [f"table {TABLE} replica ({PROD} {DR})", f"table {TABLE} ({PROD} {HOME})"]
    assert len(world.clock.sleeps) == 3  # after the request and while DELETING; while the protection changes
