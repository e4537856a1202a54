"""`decide` is pure: given what is deployed, the whole plan is compared with `==`.

GIVEN an Observed (what AWS reported) and the local config/template/artifacts,
WHEN decide runs, THEN the plan's steps, waves and rows are exactly the expected values.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from replctl.config import Config, load_config
from replctl.errors import ConfigError, Refused, TemplateError
from replctl.package import Artifact
from replctl.deploy.decide import decide, groups
from replctl.deploy.model import (
    ArtifactRow,
    BringForward,
    CreateArtifactBucket,
    CreateInstances,
    CreateStackSet,
    GrantArtifactReaders,
    InstanceRow,
    InstanceState,
    Observed,
    ParameterChange,
    Plan,
    StackSetState,
    UpdateOverrides,
    UpdateStackSet,
    UploadArtifact,
    UploadTemplate,
    Wave,
    params,
    step_action,
)
from replctl.deploy.parameters import check_parameters, desired_parameters, template_url
from replctl.statuses import DetailedStatus, InstanceStatus
from replctl.deploy.template import Template, load_template
from tests.unit.deploy.fake_stacksets import ADMIN, CONFIG, DEV, FUNCTIONS, PROD, REGION, STAGING, TEMPLATE, write_estate

BUCKET = f"replctl-artifacts-{ADMIN}-{REGION}"
ARTIFACTS = tuple(Artifact(fn, Path(f"/build/{fn}.zip"), "ab" * 32, f"{fn}-abababababababab.zip", 100)
                  for fn in FUNCTIONS)
KEYS = {fn: f"replctl/{fn}-abababababababab.zip" for fn in FUNCTIONS}
STACK_SET_PARAMS = params({
    "AccountIdDev": DEV, "AccountIdStaging": STAGING, "AccountIdProd": PROD, "AdminAccountId": ADMIN,
    "ArtifactBucketName": BUCKET, "ConfigValidatorCodeKey": KEYS["config_validator"], "Environment": "dev",
    "LogRetentionDays": "90", "ObserverRoleName": "replctl-observer", "ReplicateToProd": "false",
    "ReplicateToStaging": "false", "ReplicationMonitorCodeKey": KEYS["replication_monitor"],
    "ResourcePrefix": "replctl", "SSMPathPrefix": "/app", "StreamProcessorCodeKey": KEYS["stream_processor"],
})
FINAL = {
    DEV: {"Environment": "dev", "LogRetentionDays": "30", "ReplicateToStaging": "true", "ReplicateToProd": "true"},
    STAGING: {"Environment": "staging", "LogRetentionDays": "90", "ReplicateToStaging": "false",
              "ReplicateToProd": "true"},
    PROD: {"Environment": "prod", "LogRetentionDays": "365", "ReplicateToStaging": "false",
           "ReplicateToProd": "false"},
}


def first_rollout_overrides(account: str) -> tuple[tuple[str, str], ...]:
    return params({**FINAL[account], "ReplicateToStaging": "false", "ReplicateToProd": "false"})


@pytest.fixture()
def estate(tmp_path: Path) -> tuple[Config, Template]:
    config = load_config(write_estate(tmp_path))
    return config, load_template(config.stackset.template)


def current(template: Template, **changes: object) -> Observed:
    """Everything deployed and CURRENT, as a full rollout of this template leaves it."""
    obs = Observed(
        stack_set=StackSetState(template.text, STACK_SET_PARAMS, False, "SELF_MANAGED"),
        instances=tuple(InstanceState(a, REGION, InstanceStatus.CURRENT, DetailedStatus.SUCCEEDED, None,
                                      params(FINAL[a])) for a in (DEV, STAGING, PROD)),
        buckets=frozenset({BUCKET}),
        objects=frozenset((BUCKET, k) for k in KEYS.values()),
    )
    return replace(obs, **changes)  # type: ignore[arg-type]


def instance(account: str, status: str = "CURRENT", detailed: str = "SUCCEEDED", reason: str | None = None,
             overrides: dict[str, str] | None = None) -> InstanceState:
    return InstanceState(account, REGION, InstanceStatus(status), DetailedStatus(detailed), reason,
                         params(FINAL[account] if overrides is None else overrides))


def waves(plan: Plan) -> list[tuple[str, str, tuple[object, ...]]]:
    return [(w.environment, w.kind, w.steps) for w in plan.waves]


def test_first_rollout_is_the_whole_expected_plan(estate) -> None:
    config, template = estate
    plan = decide(config, template, ARTIFACTS, Observed(stack_set=None))
    expected = Plan(
        stack_set="replctl-replication",
        region=REGION,
        exists=False,
        permission_model="SELF_MANAGED",
        template_path=str(config.stackset.template),
        template_body=TEMPLATE,
        template_url=None,
        template_diff=plan.template_diff,
        parameters=STACK_SET_PARAMS,
        parameter_changes=tuple(ParameterChange("stack set", k, None, v) for k, v in STACK_SET_PARAMS) + (
            ParameterChange("dev", "Environment", None, "dev"),
            ParameterChange("dev", "LogRetentionDays", None, "30"),
            ParameterChange("dev", "ReplicateToProd", None, "true", "switched on after its target exists"),
            ParameterChange("dev", "ReplicateToStaging", None, "true", "switched on after its target exists"),
            ParameterChange("staging", "Environment", None, "staging"),
            ParameterChange("staging", "LogRetentionDays", None, "90"),
            ParameterChange("staging", "ReplicateToProd", None, "true", "switched on after its target exists"),
            ParameterChange("staging", "ReplicateToStaging", None, "false"),
            ParameterChange("prod", "Environment", None, "prod"),
            ParameterChange("prod", "LogRetentionDays", None, "365"),
            ParameterChange("prod", "ReplicateToProd", None, "false"),
            ParameterChange("prod", "ReplicateToStaging", None, "false"),
        ),
        managed_execution=(None, False),
        instances=(
            InstanceRow("dev", DEV, REGION, "missing", "create"),
            InstanceRow("staging", STAGING, REGION, "missing", "create"),
            InstanceRow("prod", PROD, REGION, "missing", "create"),
        ),
        artifacts=tuple(ArtifactRow(REGION, BUCKET, KEYS[fn], fn, "upload") for fn in FUNCTIONS),
        preparation=(
            CreateArtifactBucket(REGION, BUCKET, (DEV, STAGING, PROD)),
            *(UploadArtifact(REGION, BUCKET, KEYS[fn], fn, f"/build/{fn}.zip", 100) for fn in FUNCTIONS),
            CreateStackSet("replctl-replication", "SELF_MANAGED"),
        ),
        waves=(
            Wave("dev", "rollout", (CreateInstances("dev", (DEV,), (REGION,), first_rollout_overrides(DEV)),)),
            Wave("staging", "rollout",
                 (CreateInstances("staging", (STAGING,), (REGION,), first_rollout_overrides(STAGING)),)),
            Wave("prod", "rollout", (CreateInstances("prod", (PROD,), (REGION,), first_rollout_overrides(PROD)),)),
            Wave("dev", "wiring", (UpdateOverrides("dev", (DEV,), (REGION,), params(FINAL[DEV]),
                                                   "enable replication to staging, prod"),)),
            Wave("staging", "wiring", (UpdateOverrides("staging", (STAGING,), (REGION,), params(FINAL[STAGING]),
                                                       "enable replication to prod"),)),
        ),
    )
    assert plan == expected
    assert plan.changes
    assert plan.template_diff.startswith("--- /dev/null\n+++ ")
    assert "+  Environment:\n" in plan.template_diff


def test_nothing_to_do_when_everything_is_current(estate) -> None:
    config, template = estate
    plan = decide(config, template, ARTIFACTS, current(template))
    assert plan == Plan(
        stack_set="replctl-replication", region=REGION, exists=True, permission_model="SELF_MANAGED",
        template_path=str(config.stackset.template), template_body=TEMPLATE, template_url=None, template_diff="",
        parameters=STACK_SET_PARAMS, parameter_changes=(), managed_execution=(False, False),
        instances=tuple(InstanceRow(e, a, REGION, "CURRENT/SUCCEEDED", "none")
                        for e, a in (("dev", DEV), ("staging", STAGING), ("prod", PROD))),
        artifacts=tuple(ArtifactRow(REGION, BUCKET, KEYS[fn], fn, "present") for fn in FUNCTIONS),
        preparation=(),
        waves=(Wave("dev", "rollout"), Wave("staging", "rollout"), Wave("prod", "rollout")),
    )
    assert not plan.changes


def test_template_change_updates_dev_then_brings_the_others_forward(estate) -> None:
    config, template = estate
    old = TEMPLATE.replace("Default: replctl\n", "Default: replctl-old\n")
    plan = decide(config, template, ARTIFACTS, current(template, stack_set=StackSetState(
        old, STACK_SET_PARAMS, False, "SELF_MANAGED")))
    # UpdateStackSet once, in the first wave; later environments are brought forward with
    # UpdateStackInstances and their complete override list (UpdateStackSet would mark every other
    # instance OUTDATED again).
    assert waves(plan) == [
        ("dev", "rollout", (UpdateStackSet("dev", (DEV,), (REGION,)),)),
        ("staging", "rollout", (BringForward("staging", (STAGING,), (REGION,), params(FINAL[STAGING])),)),
        ("prod", "rollout", (BringForward("prod", (PROD,), (REGION,), params(FINAL[PROD])),)),
    ]
    assert [step_action(s) for w in plan.waves for s in w.steps] == [
        "UpdateStackSet", "UpdateStackInstances", "UpdateStackInstances"]
    assert plan.preparation == ()
    assert "-    Default: replctl-old\n+    Default: replctl\n" in plan.template_diff
    assert [r.action for r in plan.instances] == ["update", "bring forward", "bring forward"]


def test_new_artifact_changes_stack_set_parameters(estate) -> None:
    config, template = estate
    new = tuple(replace(a, key=a.key.replace("abab", "cdcd", 1)) if a.function == "stream_processor" else a
                for a in ARTIFACTS)
    plan = decide(config, template, new, current(template))
    new_key = "replctl/stream_processor-cdcdabababababab.zip"
    assert plan.preparation == (UploadArtifact(REGION, BUCKET, new_key, "stream_processor",
                                               "/build/stream_processor.zip", 100),)
    assert plan.parameter_changes == (
        ParameterChange("stack set", "StreamProcessorCodeKey", KEYS["stream_processor"], new_key),)
    assert [w.steps[0] for w in plan.waves] == [UpdateStackSet("dev", (DEV,), (REGION,)),
                                                BringForward("staging", (STAGING,), (REGION,), params(FINAL[STAGING])),
                                                BringForward("prod", (PROD,), (REGION,), params(FINAL[PROD]))]


def test_resume_after_staging_failed_skips_dev(estate) -> None:
    """The stack set already has the new template (AWS keeps it even when the operation fails)."""
    config, template = estate
    obs = current(template, instances=(
        instance(DEV),
        instance(STAGING, "OUTDATED", "FAILED", "Resource handler returned message: boom"),
        instance(PROD, "OUTDATED", "SUCCEEDED"),
    ))
    plan = decide(config, template, ARTIFACTS, obs)
    assert waves(plan) == [
        ("dev", "rollout", ()),
        ("staging", "rollout", (BringForward("staging", (STAGING,), (REGION,), params(FINAL[STAGING])),)),
        ("prod", "rollout", (BringForward("prod", (PROD,), (REGION,), params(FINAL[PROD])),)),
    ]
    assert plan.instances[1] == InstanceRow("staging", STAGING, REGION, "OUTDATED/FAILED", "bring forward",
                                            "Resource handler returned message: boom")


def test_partial_first_rollout_creates_prod_then_wires(estate) -> None:
    """dev and staging exist (dev already replicates to staging); prod failed to be created before."""
    config, template = estate
    dev_now = {**FINAL[DEV], "ReplicateToProd": "false"}
    staging_now = {**FINAL[STAGING], "ReplicateToProd": "false"}
    obs = current(template, instances=(instance(DEV, overrides=dev_now), instance(STAGING, overrides=staging_now)))
    plan = decide(config, template, ARTIFACTS, obs)
    # The bucket exists, and an account is about to get its first instance: it must be able to
    # read the ZIPs first, so the whole reader list is written before anything else.
    assert plan.preparation == (GrantArtifactReaders(REGION, BUCKET, (DEV, STAGING, PROD)),)
    assert waves(plan) == [
        ("dev", "rollout", ()),
        ("staging", "rollout", ()),
        ("prod", "rollout", (CreateInstances("prod", (PROD,), (REGION,), params(FINAL[PROD])),)),
        ("dev", "wiring", (UpdateOverrides("dev", (DEV,), (REGION,), params(FINAL[DEV]),
                                           "enable replication to prod"),)),
        ("staging", "wiring", (UpdateOverrides("staging", (STAGING,), (REGION,), params(FINAL[STAGING]),
                                               "enable replication to prod"),)),
    ]


def test_targets_stay_on_while_downstream_is_being_updated(estate) -> None:
    """prod OUTDATED mid-rollout must not switch dev's and staging's replication off."""
    config, template = estate
    obs = current(template, instances=(instance(DEV), instance(STAGING), instance(PROD, "OUTDATED", "SUCCEEDED")))
    plan = decide(config, template, ARTIFACTS, obs)
    assert waves(plan) == [("dev", "rollout", ()), ("staging", "rollout", ()),
                           ("prod", "rollout", (BringForward("prod", (PROD,), (REGION,), params(FINAL[PROD])),))]


def test_added_parameter_reaches_each_instance_before_it_is_overridden(estate) -> None:
    """LogRetentionDays is new in the template. dev: UpdateStackSet first, then the override.
    Later environments: brought forward without it, then overridden ("Once a stack instance has
    been updated with the new parameter, you can then override the parameter value")."""
    config, template = estate
    old_template = TEMPLATE.replace("  LogRetentionDays:\n    Type: Number\n    Default: 90\n", "").replace(
        ",logs=${LogRetentionDays}", "")
    old_params = params({k: v for k, v in STACK_SET_PARAMS if k != "LogRetentionDays"})
    without = {a: {k: v for k, v in FINAL[a].items() if k != "LogRetentionDays"} for a in FINAL}
    obs = current(template, stack_set=StackSetState(old_template, old_params, False, "SELF_MANAGED"),
                  instances=tuple(instance(a, overrides=without[a]) for a in (DEV, STAGING, PROD)))
    plan = decide(config, template, ARTIFACTS, obs)
    new = "override parameters the new template adds"
    assert waves(plan) == [
        ("dev", "rollout", (UpdateStackSet("dev", (DEV,), (REGION,)),
                            UpdateOverrides("dev", (DEV,), (REGION,), params(FINAL[DEV])))),
        ("staging", "rollout", (BringForward("staging", (STAGING,), (REGION,), params(without[STAGING])),
                                UpdateOverrides("staging", (STAGING,), (REGION,), params(FINAL[STAGING]), new))),
        ("prod", "rollout", (BringForward("prod", (PROD,), (REGION,), params(without[PROD])),
                             UpdateOverrides("prod", (PROD,), (REGION,), params(FINAL[PROD]), new))),
    ]
    assert ParameterChange("stack set", "LogRetentionDays", None, "90") in plan.parameter_changes
    assert ParameterChange("staging", "LogRetentionDays", None, "90") in plan.parameter_changes


def test_removed_parameter_override_is_dropped_before_the_template_changes(estate) -> None:
    config, template = estate
    old_params = params({**dict(STACK_SET_PARAMS), "Legacy": "x"})
    dev_now = {**FINAL[DEV], "Legacy": "y"}
    obs = current(template, stack_set=StackSetState("old template", old_params, False, "SELF_MANAGED"),
                  instances=(instance(DEV, overrides=dev_now), instance(STAGING), instance(PROD)))
    plan = decide(config, template, ARTIFACTS, obs)
    assert plan.waves[0].steps == (
        UpdateOverrides("dev", (DEV,), (REGION,), params(FINAL[DEV]), "drop overrides of removed parameters"),
        UpdateStackSet("dev", (DEV,), (REGION,)),
    )


def test_environment_without_instances_is_created_before_the_template_update(estate) -> None:
    """UpdateStackSet must only name instances that exist (StackInstanceNotFoundException)."""
    config, template = estate
    obs = current(template, stack_set=StackSetState("old template", STACK_SET_PARAMS, False, "SELF_MANAGED"),
                  instances=(instance(STAGING), instance(PROD)))
    plan = decide(config, template, ARTIFACTS, obs)
    dev_now = {**FINAL[DEV]}  # staging and prod exist and are CURRENT: targets on from the start
    assert plan.waves[0] == Wave("dev", "rollout", (
        CreateInstances("dev", (DEV,), (REGION,), params(dev_now)),
        UpdateStackSet("dev", (DEV,), (REGION,)),
    ))


def test_stack_set_without_any_instance_is_updated_unrestricted(estate) -> None:
    config, template = estate
    obs = current(template, stack_set=StackSetState("old", STACK_SET_PARAMS, False, "SELF_MANAGED"), instances=())
    plan = decide(config, template, ARTIFACTS, obs)
    assert plan.waves[0].steps == (UpdateStackSet("dev", (), ()),
                                   CreateInstances("dev", (DEV,), (REGION,), first_rollout_overrides(DEV)))


def test_managed_execution_change_is_a_stack_set_change_rolled_out_in_order(estate) -> None:
    """Only UpdateStackSet changes ManagedExecution, and it marks every instance OUTDATED: so it
    goes like a template change — dev first, then the others brought forward."""
    config, template = estate
    obs = current(template, stack_set=StackSetState(template.text, STACK_SET_PARAMS, True, "SELF_MANAGED"))
    plan = decide(config, template, ARTIFACTS, obs)
    assert waves(plan) == [
        ("dev", "rollout", (UpdateStackSet("dev", (DEV,), (REGION,)),)),
        ("staging", "rollout", (BringForward("staging", (STAGING,), (REGION,), params(FINAL[STAGING])),)),
        ("prod", "rollout", (BringForward("prod", (PROD,), (REGION,), params(FINAL[PROD])),)),
    ]
    assert plan.managed_execution == (True, False)
    assert plan.template_diff == "" and plan.parameter_changes == ()


def test_large_template_goes_through_s3(tmp_path: Path) -> None:
    big = TEMPLATE.replace("Description: Small", "Description: Small" + " padding" * 7000)
    config = load_config(write_estate(tmp_path, template=big))
    template = load_template(config.stackset.template)
    assert template.needs_url
    plan = decide(config, template, ARTIFACTS, Observed(stack_set=None))
    key = f"replctl/templates/replctl-replication-{template.sha256[:16]}.yaml"
    assert plan.template_url == f"https://{BUCKET}.s3.us-east-1.amazonaws.com/{key}"
    assert plan.preparation[-2:] == (UploadTemplate(REGION, BUCKET, key, template.size),
                                     CreateStackSet("replctl-replication", "SELF_MANAGED"))
    # Already uploaded and deployed: nothing to upload.
    done = decide(config, template, ARTIFACTS, current(template, objects=frozenset(
        {(BUCKET, k) for k in KEYS.values()} | {(BUCKET, key)})))
    assert done.preparation == () and done.template_url.endswith(key)


def test_second_region_gets_its_own_bucket_and_override(tmp_path: Path) -> None:
    text = CONFIG.replace("regions: [us-east-1]\n    ssm_path: /app/prod", "regions: [us-east-1, eu-west-1]\n    ssm_path: /app/prod")
    config = load_config(write_estate(tmp_path, config=text))
    template = load_template(config.stackset.template)
    plan = decide(config, template, ARTIFACTS, Observed(stack_set=None))
    eu_bucket = f"replctl-artifacts-{ADMIN}-eu-west-1"
    assert CreateArtifactBucket("eu-west-1", eu_bucket, (PROD,)) in plan.preparation
    prod = plan.waves[2].steps
    assert prod == (
        CreateInstances("prod", (PROD,), (REGION,), first_rollout_overrides(PROD)),
        CreateInstances("prod", (PROD,), ("eu-west-1",),
                        params({**dict(first_rollout_overrides(PROD)), "ArtifactBucketName": eu_bucket})),
    )


def test_groups_split_into_exact_cross_products() -> None:
    keys = [("a", "r1"), ("a", "r2"), ("b", "r1"), ("b", "r2"), ("c", "r1")]
    assert groups(keys) == [(("a", "b"), ("r1", "r2"), None), (("c",), ("r1",), None)]
    assert groups(keys, lambda k: k[1]) == [(("a", "b", "c"), ("r1",), "r1"), (("a", "b"), ("r2",), "r2")]


# --------------------------------------------------------------------------- --env and --force


def test_env_alone_is_refused_when_upstream_is_not_current(estate) -> None:
    config, template = estate
    obs = current(template, instances=(instance(DEV, "OUTDATED", "FAILED", "boom"), instance(STAGING),
                                       instance(PROD)))
    with pytest.raises(Refused) as info:
        decide(config, template, ARTIFACTS, obs, only="staging")
    assert info.value.message == (f"refusing to deploy staging on its own: dev is not current: "
                                  f"{DEV}/{REGION} OUTDATED/FAILED")
    assert "--force" in (info.value.hint or "")
    forced = decide(config, template, ARTIFACTS, obs, only="staging", force=True)
    assert waves(forced) == [("staging", "rollout", ())]


def test_env_alone_is_refused_before_the_template_reached_upstream(estate) -> None:
    config, template = estate
    obs = current(template, stack_set=StackSetState("old", STACK_SET_PARAMS, False, "SELF_MANAGED"))
    with pytest.raises(Refused, match="not on this template"):
        decide(config, template, ARTIFACTS, obs, only="prod")
    assert waves(decide(config, template, ARTIFACTS, obs, only="dev")) == [
        ("dev", "rollout", (UpdateStackSet("dev", (DEV,), (REGION,)),))]


def test_env_alone_with_current_upstream(estate) -> None:
    config, template = estate
    obs = current(template, instances=(instance(DEV), instance(STAGING),
                                       instance(PROD, overrides={**FINAL[PROD], "LogRetentionDays": "30"})))
    plan = decide(config, template, ARTIFACTS, obs, only="prod")
    assert waves(plan) == [("prod", "rollout", (UpdateOverrides("prod", (PROD,), (REGION,), params(FINAL[PROD])),))]
    assert [r.action for r in plan.instances] == ["not selected", "not selected", "update overrides"]


# --------------------------------------------------------------------------- parameters


def test_unknown_parameters_are_config_errors(tmp_path: Path) -> None:
    text = CONFIG.replace("  ResourcePrefix: replctl\n", "  ResourcePrefix: replctl\n  Nope: x\n").replace(
        'LogRetentionDays: "365"', 'LogRetentionDay: "365"')
    config = load_config(write_estate(tmp_path, config=text))
    with pytest.raises(ConfigError) as info:
        check_parameters(config, load_template(config.stackset.template), ARTIFACTS)
    assert info.value.problems == ("parameters.Nope: the template has no parameter Nope",
                                   "environments[prod].parameters.LogRetentionDay: the template has no parameter "
                                   "LogRetentionDay")


def test_required_parameter_without_value_is_a_template_error(estate) -> None:
    config, template = estate
    with pytest.raises(TemplateError) as info:
        check_parameters(config, template, ARTIFACTS[:2])
    assert "StreamProcessorCodeKey (no stream_processor artifact was built)" in info.value.message


def test_desired_parameters_only_those_the_template_declares(estate) -> None:
    config, template = estate
    assert params(desired_parameters(config, template, ARTIFACTS)) == STACK_SET_PARAMS


def test_no_reader_grant_without_new_instances(estate) -> None:
    config, template = estate
    new_code = tuple(replace(a, sha256="cd" * 32, key=a.key.replace("abab", "cdcd")) for a in ARTIFACTS)
    plan = decide(config, template, new_code, current(template))
    assert not any(isinstance(s, GrantArtifactReaders) for s in plan.preparation)


# --------------------------------------------------------------------------- rollout semantics


def test_override_of_a_dropped_parameter_leaves_later_instances_with_the_bring_forward(estate) -> None:
    """staging and prod override Legacy, which the new template drops. Their bring-forward is one
    UpdateStackInstances whose complete override list has no Legacy: the override is gone in the
    same operation that brings the template (an UpdateStackInstances after it would come too late:
    the stack update fails with "Parameters: [Legacy] do not exist in the template")."""
    config, template = estate
    old_template = TEMPLATE.replace("Parameters:\n", "Parameters:\n  Legacy:\n    Type: String\n", 1)
    old_params = params({**dict(STACK_SET_PARAMS), "Legacy": "x"})
    obs = current(template, stack_set=StackSetState(old_template, old_params, False, "SELF_MANAGED"),
                  instances=tuple(instance(a, overrides={**FINAL[a], "Legacy": a}) for a in (DEV, STAGING, PROD)))
    plan = decide(config, template, ARTIFACTS, obs)
    assert waves(plan) == [
        ("dev", "rollout", (UpdateOverrides("dev", (DEV,), (REGION,), params(FINAL[DEV]),
                                            "drop overrides of removed parameters"),
                            UpdateStackSet("dev", (DEV,), (REGION,)))),
        ("staging", "rollout", (BringForward("staging", (STAGING,), (REGION,), params(FINAL[STAGING])),)),
        ("prod", "rollout", (BringForward("prod", (PROD,), (REGION,), params(FINAL[PROD])),)),
    ]


def test_resuming_an_outdated_instance_waits_with_new_overrides(estate) -> None:
    """The stack set already changed (an earlier run stopped after dev): which template the
    OUTDATED staging stack runs is unknown, so a newly overridden parameter waits for the bring-forward."""
    config, template = estate
    without = {k: v for k, v in FINAL[STAGING].items() if k != "LogRetentionDays"}
    obs = current(template, instances=(instance(DEV), instance(STAGING, "OUTDATED", "SUCCEEDED", overrides=without),
                                       instance(PROD)))
    plan = decide(config, template, ARTIFACTS, obs)
    assert waves(plan) == [
        ("dev", "rollout", ()),
        ("staging", "rollout", (BringForward("staging", (STAGING,), (REGION,), params(without)),
                                UpdateOverrides("staging", (STAGING,), (REGION,), params(FINAL[STAGING]),
                                                "override parameters the new template adds"))),
        ("prod", "rollout", ()),
    ]


@pytest.mark.parametrize(("status", "detailed", "remedy"), [
    ("INOPERABLE", "INOPERABLE", f"aws cloudformation delete-stack-instances --stack-set-name replctl-replication "
                                 f"--accounts {STAGING} --regions {REGION} --retain-stacks --call-as SELF"),
    ("OUTDATED", "SKIPPED_SUSPENDED_ACCOUNT", f"Reopen the account, then let StackSets reach it again: aws "
                                              f"cloudformation update-stack-instances --stack-set-name "
                                              f"replctl-replication --accounts {STAGING} --regions {REGION}"),
    ("INOPERABLE", "FAILED_IMPORT", "retry the import (aws cloudformation import-stacks-to-stack-set)"),
])
def test_an_instance_aws_does_not_update_is_refused_with_its_remedy(estate, status, detailed, remedy) -> None:
    config, template = estate
    obs = current(template, instances=(instance(DEV), instance(STAGING, status, detailed), instance(PROD)))
    with pytest.raises(Refused) as info:
        decide(config, template, ARTIFACTS, obs)
    assert info.value.exit_code == 9
    assert info.value.message.startswith(f"refusing to deploy: AWS does not update these stack instances:\n"
                                         f"  staging {STAGING} {REGION}: {status}/{detailed} — ")
    assert remedy in info.value.message
    assert DEV not in info.value.message and PROD not in info.value.message
    # Not in the selected environment: that environment's deploy goes ahead.
    assert decide(config, template, ARTIFACTS, obs, only="dev").waves == (Wave("dev", "rollout"),)


def test_template_url_host_follows_the_partition() -> None:
    assert template_url("b", "us-east-1", "k") == "https://b.s3.us-east-1.amazonaws.com/k"
    assert template_url("b", "cn-north-1", "k") == "https://b.s3.cn-north-1.amazonaws.com.cn/k"
    assert template_url("b", "us-gov-west-1", "k") == "https://b.s3.us-gov-west-1.amazonaws.com/k"


def test_large_template_in_china_is_read_from_the_china_partition(tmp_path: Path) -> None:
    big = TEMPLATE.replace("Description: Small", "Description: Small" + " padding" * 7000)
    text = CONFIG.replace("us-east-1", "cn-north-1")
    config = load_config(write_estate(tmp_path, config=text, template=big))
    plan = decide(config, load_template(config.stackset.template), ARTIFACTS, Observed(stack_set=None))
    bucket = f"replctl-artifacts-{ADMIN}-cn-north-1"
    assert plan.template_url.startswith(f"https://{bucket}.s3.cn-north-1.amazonaws.com.cn/replctl/templates/")
