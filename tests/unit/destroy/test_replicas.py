"""The metadata table's DR replicas (ExtraReplicaRegions) and `destroy --delete-data`.

GIVEN a deployed fake estate whose tables have replicas in other regions (the DynamoDB fake of
fake_data.py: global tables version 2019.11.21, each rule quoting the API reference), WHEN the
teardown is planned and applied, THEN the plan names every replica, `--delete-data` removes them one
UpdateTable at a time before the table, waits out a table that is UPDATING, converges after Ctrl-C
or a failure, and the data-remover role is proved to allow every call it made.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import pytest

from replctl.destroy.apply import DestroyLog
from replctl.destroy.decide import replica_removal
from replctl.destroy.model import DeleteParameters, DeleteTable, EmptyBucket, Phase, RemoveReplica, Retained, TableState
from replctl.errors import DeployError, ReplctlError
from tests import callproof, cfnkit
from tests.callrecord import CliCall, Recording
from tests.unit.deploy.fake_stacksets import PROD, REGION, error
from tests.unit.destroy.conftest import Teardown
from tests.unit.destroy.fake_data import FakeDynamoData

TABLE = "replctl-metadata"
WEST, EU = "us-west-2", "eu-west-1"
HOW = "replctl destroy --env prod --delete-data"


def with_replicas(t: Teardown, *regions: str) -> None:
    """prod's table becomes a global table with replicas in `regions` (DR copies, unprotected)."""
    t.estate.global_table(PROD, REGION, TABLE, regions)


def replica_updates(t: Teardown) -> list[tuple[str, str, Any]]:
    """The UpdateTable/DeleteTable calls made in prod's account: (region sent to, API, what it changes)."""
    out = []
    for role, account, region, api, params in t.estate.requests:
        if account == PROD and role == "remover" and api in ("UpdateTable", "DeleteTable"):
            change = params.get("ReplicaUpdates", params.get("DeletionProtectionEnabled"))
            out.append((region, api, change))
    return out


def tables_left(t: Teardown) -> dict[str, list[str]]:
    return {region: sorted(acct.tables) for (account, region), acct in t.estate.accounts.items()
            if account == PROD and acct.tables}


def delete(region: str) -> list[dict[str, dict[str, str]]]:
    return [{"Delete": {"RegionName": region}}]


# --------------------------------------------------------------------------- the judge (pure)


def state(status: str = "ACTIVE", **replicas: str) -> TableState:
    return TableState(status, True, tuple(sorted((r.replace("_", "-"), s) for r, s in replicas.items())))


@pytest.mark.parametrize(("table", "requested", "move"), [
    (state(us_west_2="ACTIVE"), False, "request"),
    (state("UPDATING", us_west_2="ACTIVE"), False, "wait"),  # a table UPDATING takes no other UpdateTable
    (state(us_west_2="ACTIVE"), True, "wait"),  # asked already; DescribeTable may not show it yet
    (state("UPDATING", us_west_2="DELETING"), False, "wait"),  # an earlier run asked: never ask twice
    (state("ACTIVE", us_west_2="DELETING"), False, "wait"),
    (state("UPDATING"), True, "wait"),  # gone, but the table is not ACTIVE yet
    (state("ACTIVE", eu_west_1="ACTIVE"), True, "done"),  # gone and ACTIVE; the other replica is not this one
])
def test_the_next_move_follows_the_tables_state(table: TableState, requested: bool, move: str) -> None:
    assert replica_removal(table, WEST, requested) == move


def test_the_asked_region_is_never_one_of_the_replicas() -> None:
    described = {"TableStatus": "UPDATING", "DeletionProtectionEnabled": False, "Replicas": [
        {"RegionName": WEST, "ReplicaStatus": "DELETING"}, {"RegionName": REGION, "ReplicaStatus": "ACTIVE"},
        {"RegionName": EU, "ReplicaStatus": "ACTIVE"}]}
    assert TableState.of(described, REGION) == TableState("UPDATING", False, ((EU, "ACTIVE"), (WEST, "DELETING")))
    assert TableState.of({"TableStatus": "ACTIVE"}, REGION) == TableState("ACTIVE", True, ())


# --------------------------------------------------------------------------- the plan (a value)


def test_delete_data_plans_each_replica_before_its_table(teardown: Teardown) -> None:
    with_replicas(teardown, WEST, EU)
    before = teardown.estate.mutating_calls()
    plan = teardown.plan("prod", delete_data=True)
    (data,) = [p for p in plan.phases if p.kind == "data"]
    assert data == Phase("data", "prod", (
        EmptyBucket("prod", PROD, REGION, f"replctl-config-prod-{PROD}"),
        RemoveReplica("prod", PROD, REGION, TABLE, EU),
        RemoveReplica("prod", PROD, REGION, TABLE, WEST),
        DeleteTable("prod", PROD, REGION, TABLE),
        DeleteParameters("prod", PROD, REGION, ("/app/dev/config", "/app/staging/config", "/app/prod/config"),
                         ("/app/dev/config/timeout", "/app/staging/config/timeout", "/app/prod/config/timeout")),
    ))
    assert teardown.estate.mutating_calls() == before  # planning reads only


def test_a_data_keeping_destroy_names_the_replicas_among_the_retained_data(teardown: Teardown) -> None:
    with_replicas(teardown, WEST, EU)
    plan = teardown.plan("prod")
    assert plan.retained == (
        Retained("prod", PROD, REGION, "bucket", f"replctl-config-prod-{PROD}", HOW),
        Retained("prod", PROD, REGION, "table", TABLE, HOW),
        Retained("prod", PROD, EU, "replica", TABLE, HOW),
        Retained("prod", PROD, WEST, "replica", TABLE, HOW),
    )


def test_replicas_left_behind_by_a_deleted_table_are_found_in_the_configured_dr_regions(teardown: Teardown) -> None:
    # GIVEN the table was deleted in its own region while its replicas stayed (what a teardown that
    # knew nothing of replicas left), replicating between the two DR regions
    with_replicas(teardown, WEST, EU)
    someone = FakeDynamoData(teardown.estate, PROD, REGION, "someone")
    someone.update_table(TableName=TABLE, DeletionProtectionEnabled=False)
    someone.describe_table(TableName=TABLE)
    someone.delete_table(TableName=TABLE)
    assert tables_left(teardown) == {WEST: [TABLE], EU: [TABLE]}
    # WHEN the estate names those regions, THEN the first one still holding the table is where it goes from
    teardown.config = replace(teardown.config, parameters={**teardown.config.parameters,
                                                           "ExtraReplicaRegions": f"{WEST},{EU}"})
    assert [r for r in teardown.plan("prod").retained if r.kind != "bucket"] == [
        Retained("prod", PROD, WEST, "replica", TABLE, HOW), Retained("prod", PROD, EU, "replica", TABLE, HOW)]
    plan = teardown.plan("prod", delete_data=True)
    (data,) = [p for p in plan.phases if p.kind == "data"]
    assert data.steps[1:3] == (RemoveReplica("prod", PROD, WEST, TABLE, EU), DeleteTable("prod", PROD, WEST, TABLE))
    teardown.apply(plan)
    assert tables_left(teardown) == {}
    # read in us-west-2 through the observer, removed from there through the data-remover role
    assert {(role, region) for role, _, region, api, _ in teardown.estate.requests if api == "UpdateTable"} >= {
        ("remover", WEST)}
    assert callproof.denials(callproof.prove(recorded(teardown))) == []


def test_the_dr_regions_are_read_only_where_the_table_is_gone(teardown: Teardown) -> None:
    teardown.config = replace(teardown.config, parameters={**teardown.config.parameters,
                                                           "ExtraReplicaRegions": f"{WEST},{EU}"})
    teardown.plan()
    asked = {(account, region) for _, account, region, api, _ in teardown.estate.requests if api == "DescribeTable"}
    assert {region for _, region in asked} == {REGION}


# --------------------------------------------------------------------------- applying it


@pytest.mark.parametrize("lists_own_region", [False, True])
def test_delete_data_removes_both_replicas_one_at_a_time_then_the_table(teardown: Teardown,
                                                                      lists_own_region: bool) -> None:
    teardown.estate.lists_own_region = lists_own_region
    with_replicas(teardown, WEST, EU)
    teardown.estate.at(PROD).tables[TABLE]["reads"] = 3  # each update takes a few reads
    log = teardown.destroy("prod", delete_data=True)
    # Every call went to the table's region, each UpdateTable once (a refused one would be listed too).
    assert replica_updates(teardown) == [
        (REGION, "UpdateTable", delete(EU)),
        (REGION, "UpdateTable", delete(WEST)),
        (REGION, "UpdateTable", False),
        (REGION, "DeleteTable", None),
    ]
    assert tables_left(teardown) == {}
    assert [r for r in log.removed if "table" in r] == [
        f"table {TABLE} replica ({PROD} {EU})", f"table {TABLE} replica ({PROD} {WEST})",
        f"table {TABLE} ({PROD} {REGION})"]
    assert any(f"replicas: {EU} DELETING, {WEST} ACTIVE" in s for s in teardown.reporter.steps)  # progress
    assert teardown.world.clock.sleeps  # waited, on the injected clock
    assert teardown.plan("prod", delete_data=True).changes is False


def test_a_replica_already_gone_counts_as_removed(teardown: Teardown) -> None:
    with_replicas(teardown, WEST, EU)
    plan = teardown.plan("prod", delete_data=True)
    # GIVEN the replica in us-west-2 goes between planning and applying (another run removed it)
    someone = FakeDynamoData(teardown.estate, PROD, REGION, "someone")
    someone.update_table(TableName=TABLE, ReplicaUpdates=delete(WEST))
    someone.describe_table(TableName=TABLE)
    log = teardown.apply(plan)
    assert (REGION, "UpdateTable", delete(WEST)) not in replica_updates(teardown)
    assert f"table {TABLE} replica ({PROD} {WEST})" not in log.removed
    assert tables_left(teardown) == {}


def test_a_table_that_is_updating_is_waited_for_then_the_removal_goes_on(teardown: Teardown) -> None:
    with_replicas(teardown, WEST)
    plan = teardown.plan("prod", delete_data=True)
    # GIVEN an update of the table (not ours) is under way when the data phase starts
    home = teardown.estate.at(PROD).tables[TABLE]
    home["status"], home["busy"] = "UPDATING", 4
    teardown.apply(plan)
    assert replica_updates(teardown)[0] == (REGION, "UpdateTable", delete(WEST))  # only once it was ACTIVE
    assert len(teardown.world.clock.sleeps) >= 3
    assert tables_left(teardown) == {}


def test_an_update_that_starts_between_the_read_and_the_request_is_waited_out(teardown: Teardown,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    with_replicas(teardown, WEST)
    plan = teardown.plan("prod", delete_data=True)
    original = FakeDynamoData.update_table
    raced: list[str] = []

    def someone_else_first(self: FakeDynamoData, TableName: str, **kwargs: Any) -> dict[str, Any]:
        if kwargs.get("ReplicaUpdates") and not raced:
            raced.append("x")  # another UpdateTable got in first: the table is UPDATING for a while
            self.acct.tables[TableName].update(status="UPDATING", busy=2)
        return original(self, TableName, **kwargs)

    monkeypatch.setattr(FakeDynamoData, "update_table", someone_else_first)
    teardown.apply(plan)
    assert [c for c in replica_updates(teardown) if c[2] == delete(WEST)] == [(REGION, "UpdateTable", delete(WEST))] * 2
    assert tables_left(teardown) == {}


def test_ctrl_c_while_a_replica_is_deleting_then_a_rerun_never_asks_twice_and_converges(teardown: Teardown) -> None:
    with_replicas(teardown, WEST, EU)
    teardown.estate.at(PROD).tables[TABLE]["reads"] = 4
    plan = teardown.plan("prod", delete_data=True)
    log = DestroyLog()

    def interrupt(_: float) -> None:
        if teardown.estate.at(PROD).tables[TABLE]["replicas"].get(EU) == "DELETING":
            raise KeyboardInterrupt

    teardown.world.clock.on_sleep = interrupt
    with pytest.raises(KeyboardInterrupt):
        teardown.apply(plan, log)
    teardown.world.clock.on_sleep = None
    assert tables_left(teardown)[REGION] == [TABLE] and EU in tables_left(teardown)
    # the re-run plans from what AWS reports: the replica still DELETING is waited for, not asked for again
    again = teardown.plan("prod", delete_data=True)
    assert RemoveReplica("prod", PROD, REGION, TABLE, WEST) in again.steps()
    teardown.apply(again)
    assert [c for c in replica_updates(teardown) if c[1] == "UpdateTable"] == [
        (REGION, "UpdateTable", delete(EU)), (REGION, "UpdateTable", delete(WEST)), (REGION, "UpdateTable", False)]
    assert tables_left(teardown) == {}
    assert teardown.plan("prod", delete_data=True).changes is False


def test_a_refused_removal_stops_before_the_table_and_a_rerun_converges(teardown: Teardown,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    with_replicas(teardown, WEST, EU)
    original = FakeDynamoData.update_table

    def denied_in_west(self: FakeDynamoData, TableName: str, **kwargs: Any) -> dict[str, Any]:
        if kwargs.get("ReplicaUpdates") == delete(WEST):
            self.estate.calls.append((self.role, "UpdateTable", TableName))
            raise error("AccessDeniedException", "not authorized to perform: dynamodb:DeleteTableReplica",
                        "UpdateTable")
        return original(self, TableName, **kwargs)

    monkeypatch.setattr(FakeDynamoData, "update_table", denied_in_west)
    with pytest.raises(ReplctlError) as info:
        teardown.destroy("prod", delete_data=True)
    assert "dynamodb:DeleteTableReplica" in str(info.value) and info.value.exit_code == 3
    assert tables_left(teardown) == {REGION: [TABLE], WEST: [TABLE]}  # eu-west-1 went; the table stays
    monkeypatch.setattr(FakeDynamoData, "update_table", original)
    teardown.destroy("prod", delete_data=True)
    assert tables_left(teardown) == {}


def test_replicas_added_after_planning_stop_the_table_deletion(teardown: Teardown) -> None:
    plan = teardown.plan("prod", delete_data=True)
    with_replicas(teardown, WEST)  # a deploy added a DR region meanwhile
    with pytest.raises(DeployError, match=f"has replicas the plan did not remove: {WEST}"):
        teardown.apply(plan)
    assert tables_left(teardown) == {REGION: [TABLE], WEST: [TABLE]}
    teardown.destroy("prod", delete_data=True)
    assert tables_left(teardown) == {}


# --------------------------------------------------------------------------- the data-remover role


def recorded(t: Teardown) -> Recording:
    """The fake's DynamoDB calls as the permission proof reads recorded calls."""
    estate = callproof.estate_of_config(t.config)
    arns = {"remover": estate.data_remover_arn, "observer": estate.observer_arn}
    return Recording(cli=[CliCall("dynamodb", api, account, region, params, arns[role](account), t.config)
                          for role, account, region, api, params in t.estate.requests if role in arns])


def test_the_data_remover_role_allows_the_replica_removal_and_fails_without_its_grant(teardown: Teardown) -> None:
    with_replicas(teardown, WEST, EU)
    teardown.destroy("prod", delete_data=True)
    calls = recorded(teardown)
    proved = [v.request.action + " " + v.request.resource for v in callproof.prove(calls)]
    for region in (WEST, EU):
        assert f"dynamodb:DeleteTableReplica arn:aws:dynamodb:{region}:{PROD}:table/{TABLE}" in proved
    assert callproof.denials(callproof.prove(calls)) == []

    template = copy.deepcopy(cfnkit.load("stackset-execution-role.yaml"))
    policy = template["Resources"]["DataRemoverRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    policy["Statement"] = [s for s in policy["Statement"] if s.get("Sid") != "RemoveTableReplicas"]
    try:
        callproof.use_templates(stackset_execution_role=template)
        denied = callproof.denials(callproof.prove(calls))
    finally:
        callproof.use_templates()
    assert sorted(d.split(": no statement")[0].split(": ", 1)[1] for d in denied) == [
        f"dynamodb:DeleteTableReplica on arn:aws:dynamodb:{region}:{PROD}:table/{TABLE}" for region in (EU, WEST)]
