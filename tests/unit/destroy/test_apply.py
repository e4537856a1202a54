"""Applying a teardown against the scripted StackSet service and the data fakes: the order, the
data removal, a failed delete in one account, an operation in progress, Ctrl-C between phases, and
a re-run that converges."""

from __future__ import annotations

import pytest

from replctl.destroy.apply import DestroyLog
from replctl.errors import DeployError, Refused
from tests.unit.deploy.fake_stacksets import DEV, PROD, REGION, STAGING
from tests.unit.destroy.conftest import Teardown


def teardown_calls(t: Teardown) -> list[tuple[str, tuple[str, ...]]]:
    return [(api, tuple(kw.get("Accounts", ()))) for api, kw in t.world.cfn.calls[t.calls_before:]
            if api in ("UpdateStackInstances", "DeleteStackInstances", "DeleteStackSet")]


def test_whole_estate_goes_prod_first_and_keeps_the_data(teardown: Teardown) -> None:
    log = teardown.destroy()
    assert teardown_calls(teardown) == [("DeleteStackInstances", (PROD,)), ("DeleteStackInstances", (STAGING,)),
                                        ("DeleteStackInstances", (DEV,)), ("DeleteStackSet", ())]
    assert all(kw["RetainStacks"] is False for kw in teardown.world.cfn.calls_to("DeleteStackInstances"))
    assert teardown.world.cfn.stack_set is None and teardown.instances() == set()
    assert log.rollout.completed == ["delete prod", "delete staging", "delete dev", "stack set replctl-replication deleted"]
    assert teardown.estate.at(DEV).buckets and teardown.estate.at(DEV).tables  # retained
    assert [op.status.value for op in log.rollout.operations] == ["SUCCEEDED"] * 3


def test_prod_only_unwires_upstream_before_deleting_and_leaves_them_verified(teardown: Teardown) -> None:
    teardown.destroy("prod")
    assert teardown_calls(teardown) == [("UpdateStackInstances", (DEV,)), ("UpdateStackInstances", (STAGING,)),
                                        ("DeleteStackInstances", (PROD,))]
    assert teardown.flags(DEV) == {"ReplicateToStaging": "true", "ReplicateToProd": "false"}
    assert teardown.flags(STAGING) == {"ReplicateToStaging": "false", "ReplicateToProd": "false"}
    assert teardown.instances() == {(DEV, REGION), (STAGING, REGION)}
    assert teardown.world.cfn.stack_set is not None


def test_delete_data_removes_every_version_the_table_and_the_parameters(teardown: Teardown) -> None:
    bucket = teardown.estate.at(PROD).buckets[f"replctl-config-prod-{PROD}"]
    bucket += [(f"k{i}", f"v{i}", i % 3 == 0) for i in range(2500)]  # versions and delete markers, 3 pages
    log = teardown.destroy(delete_data=True)
    for account in (DEV, STAGING, PROD):
        acct = teardown.estate.at(account)
        assert acct.buckets == {} and acct.tables == {} and acct.parameters == {}
    assert f"s3://replctl-config-prod-{PROD} ({PROD} {REGION})" in log.removed
    removals = [(role, api) for role, api, _ in teardown.estate.calls if api in ("DeleteObjects", "DeleteBucket",
                                                                                  "UpdateTable", "DeleteTable",
                                                                                  "DeleteParameters")]
    assert {role for role, _ in removals} == {"remover"}  # data goes only through the data-remover role
    assert teardown.plan(delete_data=True).changes is False


def test_a_failed_delete_in_one_account_stops_before_the_next_environment(teardown: Teardown) -> None:
    teardown.world.cfn.failures[(STAGING, REGION)] = "Bucket replctl-config-staging is not empty"
    with pytest.raises(DeployError) as info:
        teardown.destroy()
    message = str(info.value)
    assert f"{STAGING} us-east-1: FAILED — Bucket replctl-config-staging is not empty" in message
    assert "re-run replctl destroy" in message
    assert teardown.world.cfn.instances[(STAGING, REGION)].status == "INOPERABLE"
    assert (DEV, REGION) in teardown.instances()  # dev untouched, stack set kept
    assert [api for api, _ in teardown_calls(teardown)] == ["DeleteStackInstances", "DeleteStackInstances"]
    # A re-run refuses with AWS's remedy for an INOPERABLE instance, changing nothing.
    calls = len(teardown.world.cfn.calls)
    with pytest.raises(Refused, match="--retain-stacks"):
        teardown.destroy()
    assert all(api not in ("DeleteStackInstances", "UpdateStackInstances")
               for api, _ in teardown.world.cfn.calls[calls:])


def test_an_operation_in_progress_is_waited_for_then_the_teardown_goes_on(teardown: Teardown) -> None:
    foreign = teardown.world.cfn.foreign_operation(duration=120)
    teardown.destroy("dev")
    assert teardown.world.cfn.operations[foreign].status == "SUCCEEDED"
    assert (DEV, REGION) not in teardown.instances()
    assert any("another operation is running" in s for s in teardown.reporter.steps)


def test_ctrl_c_between_phases_leaves_later_phases_untouched_and_a_rerun_converges(teardown: Teardown) -> None:
    plan = teardown.plan()
    log = DestroyLog()

    def interrupt(_: float) -> None:
        if "delete prod" in log.rollout.completed:
            raise KeyboardInterrupt

    teardown.world.clock.on_sleep = interrupt
    with pytest.raises(KeyboardInterrupt):
        teardown.apply(plan, log)
    teardown.world.clock.on_sleep = None
    # staging's deletion may have started; dev's never did, and the stack set is there
    assert (DEV, REGION) in teardown.instances() and teardown.world.cfn.stack_set is not None
    assert not any(kw.get("Accounts") == [DEV] for kw in teardown.world.cfn.calls_to("DeleteStackInstances"))
    # the re-run waits for what is running, plans what is left, and finishes
    from replctl.deploy.rollout import attach

    attach(teardown.config, teardown.world.clients(), sleep=teardown.world.clock.sleep, clock=teardown.world.clock)
    teardown.destroy()
    assert teardown.world.cfn.stack_set is None and teardown.instances() == set()
    before = teardown.estate.mutating_calls()
    assert teardown.plan().changes is False and teardown.estate.mutating_calls() == before


def test_a_deploy_after_a_data_retaining_destroy_refuses_before_any_change(teardown: Teardown) -> None:
    from dataclasses import replace

    from replctl.deploy.plan import build_plan
    from tests.unit.deploy.fake_stacksets import make_artifacts

    teardown.destroy("prod")
    clients = replace(teardown.world.clients(), observer=teardown.estate.clients().observer)
    before = teardown.estate.mutating_calls()
    artifacts = make_artifacts(teardown.config.path.parent)
    with pytest.raises(Refused) as info:
        build_plan(teardown.config, clients, artifacts=artifacts, lint=False)
    message = str(info.value)
    assert f"prod {PROD} us-east-1: bucket replctl-config-prod-{PROD}" in message
    assert f"prod {PROD} us-east-1: table replctl-metadata" in message
    assert "replctl destroy --env prod --delete-data" in message and "aws s3 sync" in message
    assert teardown.estate.mutating_calls() == before
    # with the data removed, the same deploy plans prod's creation again
    teardown.destroy("prod", delete_data=True)
    plan = build_plan(teardown.config, clients, artifacts=artifacts, lint=False)
    assert [w.environment for w in plan.waves if w.steps][:1] == ["prod"]
