"""The teardown plan as a value: GIVEN what AWS reports (a deployed fake estate, read with the real
reads), WHEN `decide` runs, THEN the whole plan is what the order demands, compared with `==`."""

from __future__ import annotations

from replctl.deploy.model import DeleteInstances, DeleteStackSet, UpdateOverrides
from replctl.destroy.model import DeleteParameters, DeleteTable, EmptyBucket, Phase, Retained
from tests.unit.deploy.fake_stacksets import DEV, PROD, REGION, STAGING
from tests.unit.destroy.conftest import Teardown

R = (REGION,)


def overrides(env: str, logs: str, staging: str, prod: str) -> tuple[tuple[str, str], ...]:
    return (("Environment", env), ("LogRetentionDays", logs), ("ReplicateToProd", prod), ("ReplicateToStaging", staging))


def retained(env: str, account: str) -> list[Retained]:
    how = f"replctl destroy --env {env} --delete-data"
    return [Retained(env, account, REGION, "bucket", f"replctl-config-{env}-{account}", how),
            Retained(env, account, REGION, "table", "replctl-metadata", how)]


def test_whole_estate_deletes_prod_then_staging_then_dev_then_the_stack_set(teardown: Teardown) -> None:
    before = teardown.estate.mutating_calls()
    plan = teardown.plan()
    assert plan.phases == (
        Phase("delete", "prod", (DeleteInstances("prod", (PROD,), R),)),
        Phase("delete", "staging", (DeleteInstances("staging", (STAGING,), R),)),
        Phase("delete", "dev", (DeleteInstances("dev", (DEV,), R),)),
        Phase("stack set", "", (DeleteStackSet("replctl-replication"),)),
    )
    assert plan.whole_estate and plan.environments == ("dev", "staging", "prod")
    assert plan.retained == tuple(retained("dev", DEV) + retained("staging", STAGING) + retained("prod", PROD))
    assert [r.action for r in plan.instances] == ["delete", "delete", "delete"]
    assert teardown.estate.mutating_calls() == before  # planning reads only


def test_prod_only_unwires_dev_and_staging_first_and_keeps_the_stack_set(teardown: Teardown) -> None:
    plan = teardown.plan("prod")
    why = "stop replicating and mirroring to prod"
    assert plan.phases == (
        Phase("unwire", "dev", (UpdateOverrides("dev", (DEV,), R, overrides("dev", "30", "true", "false"), why),)),
        Phase("unwire", "staging", (UpdateOverrides("staging", (STAGING,), R,
                                                    overrides("staging", "90", "false", "false"), why),)),
        Phase("delete", "prod", (DeleteInstances("prod", (PROD,), R),)),
    )
    assert not plan.whole_estate
    assert plan.retained == tuple(retained("prod", PROD))
    assert [(r.environment, r.action) for r in plan.instances] == [("dev", "unwire"), ("staging", "unwire"),
                                                                   ("prod", "delete")]


def test_dev_only_has_nothing_upstream_to_unwire(teardown: Teardown) -> None:
    plan = teardown.plan("dev")
    assert plan.phases == (Phase("delete", "dev", (DeleteInstances("dev", (DEV,), R),)),)
    assert [(r.environment, r.action) for r in plan.instances] == [("dev", "delete"), ("staging", "keep"),
                                                                   ("prod", "keep")]


def test_partial_leftovers_plan_only_what_is_left(teardown: Teardown) -> None:
    # GIVEN an earlier run that deleted prod and staging, then was stopped
    del teardown.world.cfn.instances[(PROD, REGION)]
    del teardown.world.cfn.instances[(STAGING, REGION)]
    plan = teardown.plan()
    assert plan.phases == (
        Phase("delete", "dev", (DeleteInstances("dev", (DEV,), R),)),
        Phase("stack set", "", (DeleteStackSet("replctl-replication"),)),
    )
    assert [r.action for r in plan.instances] == ["delete", "none (gone)", "none (gone)"]


def test_nothing_left_is_a_no_op_that_still_lists_the_retained_data(teardown: Teardown) -> None:
    teardown.destroy()
    before = teardown.estate.mutating_calls()
    plan = teardown.plan()
    assert plan.phases == () and not plan.changes and not plan.exists
    assert plan.retained == tuple(retained("dev", DEV) + retained("staging", STAGING) + retained("prod", PROD))
    assert teardown.estate.mutating_calls() == before


def test_delete_data_removes_each_environments_data_after_its_instances_and_its_mirrors_downstream(
        teardown: Teardown) -> None:
    plan = teardown.plan("staging", "prod", delete_data=True)
    data = [p for p in plan.phases if p.kind == "data"]
    assert data == [
        Phase("data", "prod", (
            EmptyBucket("prod", PROD, REGION, f"replctl-config-prod-{PROD}"),
            DeleteTable("prod", PROD, REGION, "replctl-metadata"),
            DeleteParameters("prod", PROD, REGION, ("/app/dev/config", "/app/staging/config", "/app/prod/config"),
                             ("/app/dev/config/timeout", "/app/staging/config/timeout", "/app/prod/config/timeout")),
        )),
        Phase("data", "staging", (
            EmptyBucket("staging", STAGING, REGION, f"replctl-config-staging-{STAGING}"),
            DeleteTable("staging", STAGING, REGION, "replctl-metadata"),
            DeleteParameters("staging", STAGING, REGION, ("/app/dev/config", "/app/staging/config"),
                             ("/app/dev/config/timeout", "/app/staging/config/timeout")),
        )),
    ]
    # data comes after every instance deletion; dev (staying) keeps its own data
    kinds = [p.kind for p in plan.phases]
    assert kinds == ["unwire", "delete", "delete", "data", "data"]
    assert plan.retained == ()
