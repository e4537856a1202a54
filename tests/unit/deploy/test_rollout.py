"""Rollout against the scripted fake StackSet service: order, failures, resume, waits, gates.

GIVEN a fake AWS whose operations take time on a fake clock, WHEN a plan is applied, THEN
environments go strictly in order, the first failure stops everything after it, and a re-run
resumes from what the fake reports.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from replctl.aws import is_mutating
from replctl.config import Config, load_config
from replctl.errors import AwsAccessError, DeployError, Refused, WaitTimeout
from replctl.deploy.model import BringForward, CreateInstances, params
from replctl.deploy.plan import build_plan
from replctl.deploy.rollout import RolloutLog, apply, attach
from tests.unit.deploy.fake_stacksets import (
    ADMIN,
    CONFIG,
    DEV,
    PROD,
    REGION,
    STAGING,
    TEMPLATE,
    World,
    error,
    make_artifacts,
    write_estate,
)


class Recording:
    """A Reporter that keeps everything it is told."""

    def __init__(self) -> None:
        self.steps: list[str] = []
        self.progress_seen: list[tuple[str, str, tuple[tuple[str, str, str], ...]]] = []

    def step(self, message: str) -> None:
        self.steps.append(message)

    def started(self, environment: str, action: str, operation_id: str, total: int) -> None:
        self.steps.append(f"started {environment} {action} {operation_id}")

    def progress(self, operation_id, status, results) -> None:
        self.progress_seen.append((operation_id, status.value,
                                   tuple((r.account, r.region, r.status.value) for r in results)))

    def finished(self, outcome) -> None:
        self.steps.append(f"finished {outcome.operation_id} {outcome.status.value}")


class Estate:
    def __init__(self, tmp_path: Path, config_text: str = CONFIG, template: str = TEMPLATE) -> None:
        self.config: Config = load_config(write_estate(tmp_path, config=config_text, template=template))
        self.artifacts = make_artifacts(tmp_path)
        self.world = World()
        self.reporter = Recording()

    def plan(self, **kw):
        return build_plan(self.config, self.world.clients(), artifacts=self.artifacts, lint=False, **kw)

    def apply(self, plan=None, log: RolloutLog | None = None) -> RolloutLog:
        plan = plan if plan is not None else self.plan()
        return apply(plan, self.config, self.world.clients(), reporter=self.reporter,
                     sleep=self.world.clock.sleep, clock=self.world.clock, log=log)

    def instance_calls(self, since: int = 0) -> list[tuple[str, tuple[str, ...]]]:
        return [(api, tuple(kw.get("Accounts", ()))) for api, kw in self.world.cfn.calls[since:]
                if api in ("CreateStackInstances", "UpdateStackInstances", "UpdateStackSet")]


@pytest.fixture()
def estate(tmp_path: Path) -> Estate:
    return Estate(tmp_path)


def test_first_rollout_goes_dev_staging_prod_then_wires(estate: Estate) -> None:
    log = estate.apply()
    assert estate.instance_calls() == [
        ("CreateStackInstances", (DEV,)), ("CreateStackInstances", (STAGING,)), ("CreateStackInstances", (PROD,)),
        ("UpdateStackInstances", (DEV,)), ("UpdateStackInstances", (STAGING,)),
    ]
    assert log.completed == ["dev", "staging", "prod", "wiring dev", "wiring staging"]
    assert [o.status.value for o in log.operations] == ["SUCCEEDED"] * 5
    # Backoff from the config: 1, 2, 4, 8 and capped at 8 while a 30 s operation runs.
    assert estate.world.clock.sleeps[:6] == [1, 2, 4, 8, 8, 8]
    created = estate.world.cfn.stack_set["create_kwargs"]
    assert created["AdministrationRoleARN"] == f"arn:aws:iam::{ADMIN}:role/AWSCloudFormationStackSetAdministrationRole"
    assert created["Capabilities"] == ["CAPABILITY_NAMED_IAM"] and created["ManagedExecution"] == {"Active": False}
    first = estate.world.cfn.calls_to("CreateStackInstances")[0]
    assert first["OperationPreferences"] == {"RegionConcurrencyType": "SEQUENTIAL",
                                             "ConcurrencyMode": "STRICT_FAILURE_TOLERANCE",
                                             "FailureToleranceCount": 0, "MaxConcurrentCount": 1}
    assert first["OperationId"].startswith("replctl-")
    settings = estate.world.s3.buckets[f"replctl-artifacts-{ADMIN}-{REGION}"]["settings"]
    assert settings["PutBucketVersioning"] == {"VersioningConfiguration": {"Status": "Enabled"}}
    assert settings["PutPublicAccessBlock"]["PublicAccessBlockConfiguration"]["BlockPublicPolicy"] is True
    assert "created artifact bucket" in " ".join(estate.reporter.steps)


def test_a_second_run_changes_nothing(estate: Estate) -> None:
    estate.apply()
    before = len(estate.world.cfn.calls)
    plan = estate.plan()
    assert not plan.changes
    estate.apply(plan)
    assert [api for api, _ in estate.world.cfn.calls[before:] if api[0] not in "DL"] == []


def test_staging_failure_stops_before_prod_and_a_rerun_resumes_at_staging(estate: Estate) -> None:
    reason = "Resource handler returned message: \"replctl-config-staging-222222222222 already exists\""
    estate.world.cfn.failures[(STAGING, REGION)] = reason
    log = RolloutLog()
    with pytest.raises(DeployError) as info:
        estate.apply(log=log)
    assert f"{STAGING} {REGION}: FAILED — {reason}" in info.value.message
    assert info.value.message.startswith("staging: CreateStackInstances operation ")
    assert log.completed == ["dev"]
    assert all(PROD not in accounts for _, accounts in estate.instance_calls())
    assert [(o.environment, o.status.value) for o in log.operations] == [("dev", "SUCCEEDED"),
                                                                       ("staging", "FAILED")]

    # The cause is fixed (the scripted failure is used up); re-run from what AWS reports.
    since = len(estate.world.cfn.calls)
    plan = estate.plan()
    staging_now = params({"Environment": "staging", "LogRetentionDays": "90", "ReplicateToProd": "false",
                          "ReplicateToStaging": "false"})
    assert [w.steps for w in plan.waves][:2] == [(), (BringForward("staging", (STAGING,), (REGION,), staging_now),)]
    estate.apply(plan)
    assert estate.instance_calls(since) == [
        ("UpdateStackInstances", (STAGING,)), ("CreateStackInstances", (PROD,)),
        ("UpdateStackInstances", (DEV,)), ("UpdateStackInstances", (STAGING,)),
    ]
    dev = estate.world.cfn.instances[(DEV, REGION)]
    assert dev.deployments == 2  # created once, then wired; never redeployed by the resume
    assert estate.world.cfn.instances[(PROD, REGION)].status == "CURRENT"


def test_operation_in_progress_waits_then_proceeds(estate: Estate) -> None:
    estate.apply()
    estate.config = load_config(write_estate(estate.config.path.parent,
                                             config=CONFIG.replace('LogRetentionDays: "30"', 'LogRetentionDays: "31"')))
    plan = estate.plan()
    foreign = estate.world.cfn.foreign_operation(duration=100)
    started = estate.world.clock()
    estate.apply(plan)
    tries = estate.world.cfn.calls_to("UpdateStackInstances")[-2:]
    assert [t["Accounts"] for t in tries] == [[DEV], [DEV]]
    assert tries[0]["OperationId"] == tries[1]["OperationId"]  # the same idempotency token on retry
    assert estate.world.clock() - started >= 100
    assert f"started dev running operation {foreign}" in estate.reporter.steps
    assert estate.world.cfn.instances[(DEV, REGION)].overrides["LogRetentionDays"] == "31"


def test_slow_operation_shows_progress_then_times_out_with_its_id(tmp_path: Path) -> None:
    two_accounts = CONFIG.replace('account_id: "111111111111"\n', 'account_id: "111111111111"\n'
                                  '    extra_account_ids: ["444444444444"]\n')
    estate = Estate(tmp_path, two_accounts)
    estate.world.cfn.durations = [10_000]
    with pytest.raises(WaitTimeout) as info:
        estate.apply()
    op_id = estate.world.cfn.calls_to("CreateStackInstances")[0]["OperationId"]
    assert info.value.message.startswith(f"gave up waiting for dev: CreateStackInstances (operation {op_id}")
    assert "re-run replctl deploy" in (info.value.hint or "")
    assert max(estate.world.clock.sleeps) == 8 and 600 <= sum(estate.world.clock.sleeps) <= 601
    seen = {results for _, status, results in estate.reporter.progress_seen if status == "RUNNING"}
    assert ((DEV, REGION, "RUNNING"), ("444444444444", REGION, "PENDING")) in seen
    assert estate.world.cfn.calls_to("CreateStackInstances")[0]["ParameterOverrides"] != []
    assert all(STAGING not in a for _, a in estate.instance_calls())


def test_throttled_reads_are_retried(estate: Estate) -> None:
    estate.world.cfn.throttle.update({"DescribeStackSetOperation": 3, "ListStackSetOperationResults": 1,
                                      "ListStackInstances": 2})
    estate.apply()
    assert any("throttled while polling (Throttling)" in s for s in estate.reporter.steps)
    assert estate.world.cfn.instances[(PROD, REGION)].status == "CURRENT"


def test_interrupted_wait_is_resumed_by_attaching(estate: Estate) -> None:
    cfn, clock = estate.world.cfn, estate.world.clock

    def interrupt_during_staging(_: float) -> None:
        if any((STAGING, REGION) in op.targets and not op.settled for op in cfn.operations.values()):
            clock.on_sleep = None
            raise KeyboardInterrupt

    clock.on_sleep = interrupt_during_staging
    with pytest.raises(KeyboardInterrupt):
        estate.apply()
    running = [op.id for op in cfn.operations.values() if not op.settled]
    assert len(running) == 1

    outcomes = attach(estate.config, estate.world.clients(), reporter=estate.reporter, sleep=clock.sleep, clock=clock)
    assert [(o.operation_id, o.status.value) for o in outcomes] == [(running[0], "SUCCEEDED")]
    plan = estate.plan()
    assert [w.steps for w in plan.waves][:3] == [(), (), (CreateInstances(
        "prod", (PROD,), (REGION,), params({"Environment": "prod", "LogRetentionDays": "365",
                                            "ReplicateToProd": "false", "ReplicateToStaging": "false"})),)]
    estate.apply(plan)
    assert len(cfn.calls_to("CreateStackInstances")) == 3  # staging was never started twice


def test_gate_alarm_stops_the_rollout(estate: Estate) -> None:
    estate.world.watch(STAGING).alarms.append({"AlarmName": "replctl-staging-metadata-lag", "StateValue": "ALARM",
                                               "StateReason": "Threshold Crossed: 1 datapoint [4.2] > 1.0"})
    estate.world.watch(STAGING).alarms.append({"AlarmName": "replctl-staging-errors-x", "StateValue": "OK"})
    with pytest.raises(DeployError) as info:
        estate.apply()
    assert info.value.message == ("staging: gate failed, alarms in ALARM:\n"
                                  f"  {STAGING} {REGION}: replctl-staging-metadata-lag — "
                                  "Threshold Crossed: 1 datapoint [4.2] > 1.0")
    assert all(PROD not in a for _, a in estate.instance_calls())
    # Composite alarms count too: without AlarmTypes DescribeAlarms returns metric alarms only.
    assert estate.world.watch(STAGING).calls[0] == {"AlarmNamePrefix": "replctl-staging-", "StateValue": "ALARM",
                                                    "AlarmTypes": ["CompositeAlarm", "MetricAlarm"]}


def test_gate_bakes_before_checking(tmp_path: Path) -> None:
    text = CONFIG.replace('      LogRetentionDays: "30"\n', '      LogRetentionDays: "30"\n    gate:\n      wait_seconds: 300\n')
    estate = Estate(tmp_path, text)
    estate.apply()
    assert estate.world.clock.sleeps.count(300) == 2  # after dev's rollout and after its wiring
    assert "dev: baking for 300s before checking its alarms" in estate.reporter.steps


def test_expired_admin_credentials_are_an_access_error(estate: Estate) -> None:
    estate.world.cfn.raise_next["CreateStackInstances"] = error("ExpiredToken", "The security token included in "
                                                               "the request is expired", "CreateStackInstances")
    with pytest.raises(AwsAccessError, match="expired"):
        estate.apply()


def test_rejected_call_names_the_environment(estate: Estate) -> None:
    estate.world.cfn.raise_next["CreateStackInstances"] = error("ValidationError", "Account 111111111111 should "
                                                               "have 'AWSCloudFormationStackSetExecutionRole'",
                                                               "CreateStackInstances")
    with pytest.raises(DeployError) as info:
        estate.apply()
    assert info.value.message == ("dev: CreateStackInstances was rejected: ValidationError: Account 111111111111 "
                                  "should have 'AWSCloudFormationStackSetExecutionRole'")


def test_large_template_is_uploaded_and_sent_by_url(tmp_path: Path) -> None:
    big = TEMPLATE.replace("Description: Small", "Description: Small" + " padding" * 7000)
    estate = Estate(tmp_path, template=big)
    estate.apply()
    created = estate.world.cfn.stack_set["create_kwargs"]
    assert "TemplateBody" not in created
    bucket = f"replctl-artifacts-{ADMIN}-{REGION}"
    key = created["TemplateURL"].split(".amazonaws.com/", 1)[1]
    assert created["TemplateURL"] == f"https://{bucket}.s3.us-east-1.amazonaws.com/{key}"
    assert estate.world.s3.buckets[bucket]["objects"][key] == big.encode()
    assert not estate.plan().changes


def test_template_change_updates_dev_first_then_brings_forward(estate: Estate) -> None:
    estate.apply()
    new = TEMPLATE.replace("Default: replctl\n", "Default: replctl2\n")
    write_estate(estate.config.path.parent, template=new)
    since = len(estate.world.cfn.calls)
    statuses: list[dict[str, str]] = []
    cfn = estate.world.cfn
    estate.reporter.finished = lambda outcome: statuses.append({k[0]: i.status for k, i in cfn.instances.items()})
    estate.apply()
    assert estate.instance_calls(since) == [("UpdateStackSet", (DEV,)), ("UpdateStackInstances", (STAGING,)),
                                            ("UpdateStackInstances", (PROD,))]
    first = cfn.calls_to("UpdateStackSet")[-1]
    assert first["TemplateBody"] == new and "UsePreviousTemplate" not in first
    later = cfn.calls_to("UpdateStackInstances")[-1]
    assert later["ParameterOverrides"] == [{"ParameterKey": k, "ParameterValue": v} for k, v in params(
        {"Environment": "prod", "LogRetentionDays": "365", "ReplicateToProd": "false", "ReplicateToStaging": "false"})]
    # Bringing staging forward leaves dev CURRENT (an UpdateStackSet would have marked it OUTDATED again).
    assert statuses == [{DEV: "CURRENT", STAGING: "OUTDATED", PROD: "OUTDATED"},
                        {DEV: "CURRENT", STAGING: "CURRENT", PROD: "OUTDATED"},
                        {DEV: "CURRENT", STAGING: "CURRENT", PROD: "CURRENT"}]
    assert {i.deployed_template for i in cfn.instances.values()} == {new}
    before = len(cfn.calls)
    again = estate.plan()
    assert not again.changes
    estate.apply(again)
    assert [api for api, _ in cfn.calls[before:] if is_mutating(api)] == []


def test_service_managed_targets_accounts_within_the_ou(tmp_path: Path) -> None:
    text = CONFIG.replace("  managed_execution: false\n", "  managed_execution: false\n  permission_model: SERVICE_MANAGED\n")
    for env, ou in (("dev", "ou-ab12-devdev01"), ("staging", "ou-ab12-stgstg01"), ("prod", "ou-ab12-prdprd01")):
        text = text.replace(f"    ssm_path: /app/{env}/config\n",
                            f"    ssm_path: /app/{env}/config\n    organizational_unit_id: {ou}\n")
    estate = Estate(tmp_path, text)
    estate.apply()
    created = estate.world.cfn.stack_set["create_kwargs"]
    assert created["PermissionModel"] == "SERVICE_MANAGED" and created["AutoDeployment"] == {"Enabled": False}
    assert "AdministrationRoleARN" not in created
    first = estate.world.cfn.calls_to("CreateStackInstances")[0]
    assert first["DeploymentTargets"] == {"OrganizationalUnitIds": ["ou-ab12-devdev01"], "Accounts": [DEV],
                                          "AccountFilterType": "INTERSECTION"}
    assert "Accounts" not in first
    assert set(estate.world.cfn.instances) == {(DEV, REGION), (STAGING, REGION), (PROD, REGION)}


def test_throttled_start_is_retried_with_the_same_operation_id(estate: Estate) -> None:
    estate.world.cfn.throttle["CreateStackInstances"] = 2
    estate.apply()
    tries = estate.world.cfn.calls_to("CreateStackInstances")[:3]
    assert [t["Accounts"] for t in tries] == [[DEV], [DEV], [DEV]]
    assert len({t["OperationId"] for t in tries}) == 1
    assert len(estate.world.cfn.operations) == 5


# A template whose LogRetentionDays parameter is renamed LogRetention: one parameter dropped, one
# added, both overridden by every environment.
RENAMED = TEMPLATE.replace("  LogRetentionDays:\n", "  LogRetention:\n").replace("${LogRetentionDays}", "${LogRetention}")


def test_two_wave_update_with_a_changed_parameter_converges(estate: Estate) -> None:
    """The template renames an overridden parameter. dev: its override of the dropped one goes
    before the UpdateStackSet, the new one after. staging and prod: brought forward with
    UpdateStackInstances (dropped override gone, new one not yet), then overridden. Every
    instance ends CURRENT with its own values, and a second deploy changes nothing."""
    estate.apply()
    cfn = estate.world.cfn
    write_estate(estate.config.path.parent, template=RENAMED,
                 config=CONFIG.replace("LogRetentionDays:", "LogRetention:"))
    estate.config = load_config(estate.config.path)
    since = len(cfn.calls)
    log = estate.apply()
    assert estate.instance_calls(since) == [
        ("UpdateStackInstances", (DEV,)), ("UpdateStackSet", (DEV,)), ("UpdateStackInstances", (DEV,)),
        ("UpdateStackInstances", (STAGING,)), ("UpdateStackInstances", (STAGING,)),
        ("UpdateStackInstances", (PROD,)), ("UpdateStackInstances", (PROD,)),
    ]
    assert [o.status.value for o in log.operations] == ["SUCCEEDED"] * 7
    for account, retention in ((DEV, "30"), (STAGING, "90"), (PROD, "365")):
        inst = cfn.instances[(account, REGION)]
        assert (inst.status, inst.detailed) == ("CURRENT", "SUCCEEDED")
        assert inst.deployed_template == RENAMED
        assert inst.deployed_parameters["LogRetention"] == retention and "LogRetentionDays" not in inst.deployed_parameters
    before = len(cfn.calls)
    again = estate.plan()
    assert not again.changes
    estate.apply(again)
    assert [api for api, _ in cfn.calls[before:] if is_mutating(api)] == []


def test_a_delegated_administrator_calls_as_one_everywhere(tmp_path: Path) -> None:
    text = CONFIG.replace("  managed_execution: false\n", "  managed_execution: false\n  permission_model: SERVICE_MANAGED\n"
                          "  call_as: DELEGATED_ADMIN\n")
    for env, ou in (("dev", "ou-ab12-devdev01"), ("staging", "ou-ab12-stgstg01"), ("prod", "ou-ab12-prdprd01")):
        text = text.replace(f"    ssm_path: /app/{env}/config\n",
                            f"    ssm_path: /app/{env}/config\n    organizational_unit_id: {ou}\n")
    estate = Estate(tmp_path, text)
    estate.world.cfn.delegated_admin = True
    estate.apply()
    cfn = estate.world.cfn
    assert cfn.created_as_self == []
    assert {kw.get("CallAs") for _, kw in cfn.calls} == {"DELEGATED_ADMIN"}
    assert {i.status for i in cfn.instances.values()} == {"CURRENT"} and len(cfn.instances) == 3
    assert not estate.plan().changes


def test_an_inoperable_instance_stops_the_deploy_before_any_change(estate: Estate) -> None:
    estate.apply()
    cfn = estate.world.cfn
    cfn.set_instance_state((PROD, REGION), "INOPERABLE", "INOPERABLE")
    write_estate(estate.config.path.parent, template=TEMPLATE.replace("Default: replctl\n", "Default: replctl2\n"))
    before = len(cfn.calls)
    with pytest.raises(Refused, match="--retain-stacks"):
        estate.plan()
    assert [api for api, _ in cfn.calls[before:] if is_mutating(api)] == []
