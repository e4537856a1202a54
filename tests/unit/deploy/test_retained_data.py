"""Planning looks for data a data-retaining destroy left behind: the bucket, the table, and the
table's DR replicas, whose names are fixed, so creating the instance would fail on any of them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from replctl.config import Config, parse_config
from replctl.deploy.model import Clients
from replctl.deploy.observe import retained_data
from tests.unit.test_config import VALID

TABLE = "replctl-metadata"


def estate(tmp_path: Path, dr: str) -> Config:
    text = VALID.replace("  ResourcePrefix: replctl\n", f"  ResourcePrefix: replctl\n  ExtraReplicaRegions: {dr}\n")
    (tmp_path / "t.yaml").write_text("Resources: {}\n")
    return parse_config(text, tmp_path / "environments.yaml")


def make_table(region: str) -> None:
    boto3.client("dynamodb", region_name=region).create_table(
        TableName=TABLE, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])


@pytest.fixture
def clients() -> Any:
    with mock_aws():
        # moto keeps one store per region (the accounts are left out: the reads here are per region).
        yield Clients(cfn=None, s3=lambda r: None, cloudwatch=lambda a, r: None,
                      observer=lambda service, account, region: boto3.client(service, region_name=region))


def test_a_replica_left_in_a_dr_region_is_retained_data(tmp_path: Path, clients: Clients) -> None:
    make_table("us-west-2")  # the home table is gone; its replica in the DR region is not
    config = estate(tmp_path, "us-west-2,eu-west-1")
    found = retained_data(config, clients, present=set())
    assert {(env, region, kind) for env, _, region, kind, _ in found} == {
        (e, "us-west-2", "replica") for e in ("dev", "staging", "prod")}


def test_nothing_left_anywhere_is_no_retained_data(tmp_path: Path, clients: Clients) -> None:
    assert retained_data(estate(tmp_path, "us-west-2"), clients, present=set()) == ()


def test_instances_that_exist_are_not_looked_at(tmp_path: Path, clients: Clients) -> None:
    make_table("us-west-2")
    config = estate(tmp_path, "us-west-2")
    present = {k for env in config.environments for k in env.instances()}
    assert retained_data(config, clients, present=present) == ()
