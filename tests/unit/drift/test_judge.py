"""`drift` judging on hand-made facts: StackSet results and each parity rule, with where and what to do."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from replctl.drift.judge import (
    DriftReport,
    judge_buckets,
    judge_code,
    judge_drift,
    judge_parity,
    judge_ssm,
    judge_stackset,
    judge_tables,
    wanted_targets,
)
from replctl.errors import ExitCode
from replctl.drift.model import (
    DetectionStatus,
    InstanceDrift,
    ParityFacts,
    ParityTarget,
    PropertyDiff,
    ResourceDrift,
    ResourceDriftStatus,
    StackSetDrift,
    TableSchema,
)
from replctl.status.model import DriftStatus, Names, Problem, RuleFact
from replctl.statuses import OperationStatus

DEV, STAGING, PROD = "111111111111", "222222222222", "333333333333"
ACCOUNT = {"dev": DEV, "staging": STAGING, "prod": PROD}
NAMES = Names(stack_set="replctl-replication", resource_prefix="replctl", table="replctl-metadata",
              bucket_prefix="replctl-config", ssm_prefix="/app", observer_role_name="replctl-observer",
              accounts=MappingProxyType(ACCOUNT))
ENVS = ("dev", "staging", "prod")
SCHEMA = TableSchema(keys=(("pk", "HASH"), ("sk", "RANGE")), attributes=(("pk", "S"), ("sk", "S")),
                     global_indexes=(), local_indexes=(), stream="NEW_AND_OLD_IMAGES", billing="PAY_PER_REQUEST")
ALL_ON = {"dev": {"ReplicateToStaging": "true", "ReplicateToProd": "true"},
          "staging": {"ReplicateToProd": "true"}, "prod": {}}


def rule(source: str, target: str, **kw) -> RuleFact:
    base = dict(rule_id=f"to-{target}", destination_bucket=f"replctl-config-{target}-{ACCOUNT[target]}", target=target,
                enabled=True, metrics_enabled=True)
    base.update(kw)
    return RuleFact(**base)


def target(env: str, **kw) -> ParityTarget:
    downstream = {"dev": ("staging", "prod"), "staging": ("prod",), "prod": ()}[env]
    base = dict(environment=env, account=ACCOUNT[env], region="us-east-1",
                ssm_keys=frozenset({"db/url", "timeout"}), table=SCHEMA,
                code={"replication-monitor": "A=", "config-validator": "B=", "stream-processor": "C="},
                rules=tuple(rule(env, t) for t in downstream), bucket=f"replctl-config-{env}-{ACCOUNT[env]}",
                parameters=ALL_ON[env])
    base.update(kw)
    return ParityTarget(**base)


BUILT = {"replication-monitor": "A=", "config-validator": "B=", "stream-processor": "C="}


def clean() -> list[ParityTarget]:
    return [target(e) for e in ENVS]


# --------------------------------------------------------------------------- wanted rules


@pytest.mark.parametrize(("env", "params", "wanted"), [
    ("dev", {"ReplicateToStaging": "true", "ReplicateToProd": "true"}, ("staging", "prod")),
    ("dev", {"ReplicateToStaging": "true", "ReplicateToProd": "false"}, ("staging",)),
    ("dev", {}, ()),  # the template's default is "false"
    ("staging", {"ReplicateToStaging": "true", "ReplicateToProd": "true"}, ("prod",)),  # never upstream or itself
    ("prod", {"ReplicateToStaging": "true", "ReplicateToProd": "true"}, ()),
    ("dev", {"ReplicateToStaging": "TRUE"}, ("staging",)),
])
def test_wanted_targets_follow_the_template(env, params, wanted) -> None:
    assert wanted_targets(env, params, ENVS) == wanted


def test_wanted_targets_only_towards_configured_environments() -> None:
    assert wanted_targets("dev", ALL_ON["dev"], ("dev", "prod")) == ("prod",)


# --------------------------------------------------------------------------- parity rules


def test_clean_estate_has_no_findings() -> None:
    findings, notes, checked = judge_parity(ParityFacts(ENVS, tuple(clean()), BUILT), NAMES)
    assert (findings, notes) == ([], [])
    assert checked == ("ssm-keys", "table-schema", "function-code", "bucket-replication")


def test_missing_ssm_key_is_reported_where_it_is_missing() -> None:
    targets = clean()
    targets[2] = target("prod", ssm_keys=frozenset({"timeout"}))
    (f,) = judge_ssm(targets, NAMES)
    assert (f.kind, f.environment, f.account, f.region, f.resource) == (
        "ssm-key", "prod", PROD, "us-east-1", "/app/prod/config/db/url")
    assert f.detail == "missing; db/url exists under /app/dev/config, /app/staging/config"
    assert f.action == f"create /app/prod/config/db/url in account {PROD} (us-east-1), or delete db/url from dev, " \
                       "staging if it is obsolete"


def test_a_key_only_one_environment_has_is_missing_in_the_others() -> None:
    targets = clean()
    targets[0] = target("dev", ssm_keys=frozenset({"db/url", "timeout", "new/flag"}))
    assert [(f.environment, f.resource) for f in judge_ssm(targets, NAMES)] == [
        ("staging", "/app/staging/config/new/flag"), ("prod", "/app/prod/config/new/flag")]


def test_unreadable_ssm_is_not_compared_and_becomes_a_note() -> None:
    targets = clean()
    targets[1] = target("staging", ssm_keys=None, problems=(Problem("ssm-keys", "DescribeParameters: AccessDenied"),))
    findings, notes, _ = judge_parity(ParityFacts(ENVS, tuple(targets), BUILT), NAMES)
    assert findings == []
    assert notes == [f"staging ({STAGING} us-east-1): ssm-keys: DescribeParameters: AccessDenied"]


def test_table_schema_differences_each_part() -> None:
    targets = clean()
    gsi = ("byOrigin(origin:HASH; ALL)",)
    attributes = (("origin", "S"), *SCHEMA.attributes)  # sorted, as read_table_schema makes them
    targets[1] = target("staging", table=TableSchema(SCHEMA.keys, attributes, gsi, (),
                                                     "NEW_IMAGE", "PROVISIONED"))
    targets[2] = target("prod", table=None, table_missing=True)
    got = [(f.environment, f.detail) for f in judge_tables(targets, "replctl-metadata")]
    assert got == [
        ("prod", "the metadata table does not exist"),
        ("staging", f"attribute definitions is origin:S, pk:S, sk:S; dev ({DEV} us-east-1) has pk:S, sk:S"),
        ("staging", f"global secondary indexes is byOrigin(origin:HASH; ALL); dev ({DEV} us-east-1) has none"),
        ("staging", f"stream is NEW_IMAGE; dev ({DEV} us-east-1) has NEW_AND_OLD_IMAGES"),
        ("staging", f"billing mode is PROVISIONED; dev ({DEV} us-east-1) has PAY_PER_REQUEST"),
    ]


def test_function_code_against_this_checkouts_build() -> None:
    targets = clean()
    targets[1] = target("staging", code={"replication-monitor": "A=", "config-validator": None,
                                         "stream-processor": "X="})
    got = [(f.environment, f.resource, f.detail) for f in judge_code(targets, BUILT, NAMES)]
    assert got == [
        ("staging", "replctl-config-validator", "the function does not exist"),
        ("staging", "replctl-stream-processor", "deployed code (CodeSha256 X=) is not this checkout's build (C=)"),
    ]


def test_bucket_rules_missing_extra_upstream_disabled_and_without_metrics() -> None:
    targets = [
        target("dev", rules=(rule("dev", "staging", metrics_enabled=False), rule("dev", "prod", enabled=False))),
        target("staging", rules=(rule("staging", "prod"), rule("staging", "dev"))),
        target("prod", bucket_missing=True, rules=None),
    ]
    got = [(f.environment, f.detail) for f in judge_buckets(targets, NAMES, ENVS)]
    assert got == [
        ("dev", "rule to-staging towards staging has replication metrics disabled (status cannot see it)"),
        ("dev", f"no enabled replication rule towards prod (replctl-config-prod-{PROD}), though ReplicateToProd is "
                "true for this instance"),
        ("staging", f"rule to-dev replicates to replctl-config-dev-{DEV}: replication flows downstream only "
                    "(dev → staging → prod)"),
        ("prod", "the bucket does not exist"),
    ]


def test_a_rule_the_parameters_do_not_switch_on_is_drift() -> None:
    targets = [target("dev", parameters={"ReplicateToStaging": "true", "ReplicateToProd": "false"})]
    (f,) = judge_buckets(targets, NAMES, ENVS)
    assert f.detail == (f"rule to-prod replicates to replctl-config-prod-{PROD}: the template does not replicate "
                        "there for this instance's parameters")
    assert f.action.startswith("remove the rule, which the template did not create")


def test_rules_are_only_checked_where_the_bucket_lives_and_when_the_parameters_are_known() -> None:
    other_region = target("dev", region="eu-west-1", bucket=None, rules=None)
    unknown = target("staging", parameters=None, rules=())
    assert judge_buckets([other_region, unknown], NAMES, ENVS) == []


def test_one_environment_skips_the_cross_environment_checks() -> None:
    findings, notes, checked = judge_parity(ParityFacts(("prod",), (target("prod", ssm_keys=frozenset()),), BUILT),
                                            NAMES)
    assert (findings, notes, checked) == ([], [], ("function-code", "bucket-replication"))


# --------------------------------------------------------------------------- StackSet drift


ENV_OF = {DEV: "dev", STAGING: "staging", PROD: "prod"}


def stackset(**kw) -> StackSetDrift:
    base = dict(stack_set="replctl-replication", available=True, operation_id="op-1",
                operation=OperationStatus.SUCCEEDED, detection=DetectionStatus.COMPLETED, drift=DriftStatus.IN_SYNC)
    base.update(kw)
    return StackSetDrift(**base)


def test_drifted_resources_become_findings_with_expected_and_actual() -> None:
    resources = (
        ResourceDrift("Bucket", "replctl-config-dev-111111111111", "AWS::S3::Bucket", ResourceDriftStatus.MODIFIED, (
            PropertyDiff("/VersioningConfiguration/Status", "Enabled", "Suspended", "NOT_EQUAL"),
            PropertyDiff("/Tags/1", None, '{"Key":"x","Value":"y"}', "ADD"),
            PropertyDiff("/LifecycleConfiguration", '{"Rules":[]}', None, "REMOVE"))),
        ResourceDrift("Topic", None, "AWS::SNS::Topic", ResourceDriftStatus.DELETED),
        ResourceDrift("Role", "r", "AWS::IAM::Role", ResourceDriftStatus.IN_SYNC),
    )
    d = stackset(drift=DriftStatus.DRIFTED, instances=(InstanceDrift(DEV, "us-east-1", DriftStatus.DRIFTED, None,
                                                                     resources),
                                                       InstanceDrift(PROD, "us-east-1", DriftStatus.IN_SYNC)))
    findings, notes = judge_stackset(d, ENV_OF, "us-east-1", "123456789012")
    assert notes == []
    assert [(f.kind, f.environment, f.account, f.resource, f.detail) for f in findings] == [
        ("stack-resource", "dev", DEV, "Bucket (AWS::S3::Bucket replctl-config-dev-111111111111)",
         'modified: /VersioningConfiguration/Status: expected Enabled, actual Suspended; '
         '/Tags/1: added ({"Key":"x","Value":"y"}); /LifecycleConfiguration: removed ({"Rules":[]})'),
        ("stack-resource", "dev", DEV, "Topic (AWS::SNS::Topic)", "deleted outside CloudFormation"),
    ]


def test_a_drifted_instance_without_resource_details_is_still_a_finding() -> None:
    d = stackset(instances=(InstanceDrift(STAGING, "us-east-1", DriftStatus.DRIFTED),))
    (f,) = judge_stackset(d, ENV_OF, "us-east-1", "123456789012")[0]
    assert (f.kind, f.environment, f.detail) == (
        "stack-instance", "staging", "the stack instance is DRIFTED (no resource details were returned)")


@pytest.mark.parametrize(("change", "note"), [
    ({"operation": OperationStatus.FAILED}, "drift detection operation op-1 ended FAILED: some instances were not checked"),
    ({"operation": OperationStatus.STOPPED}, "drift detection operation op-1 ended STOPPED: some instances were not checked"),
    ({"detection": DetectionStatus.PARTIAL_SUCCESS, "counts": {"FailedStackInstancesCount": 1}},
     "drift detection PARTIAL_SUCCESS: 1 instance(s) could not be checked"),
])
def test_detection_that_did_not_finish_cleanly_is_a_note(change, note) -> None:
    assert judge_stackset(stackset(**change), ENV_OF, "us-east-1", "123456789012") == ([], [note])


def test_unavailable_detection_is_neither_finding_nor_note() -> None:
    d = StackSetDrift("replctl-replication", available=False, note="not available")
    assert judge_stackset(d, ENV_OF, "us-east-1", "123456789012") == ([], [])


def test_missing_stack_set() -> None:
    (f,), _ = judge_stackset(StackSetDrift("replctl-replication", True, missing=True), ENV_OF, "us-east-1",
                             "123456789012")
    assert (f.kind, f.account, f.region, f.resource, f.action) == (
        "stack-set", "123456789012", "us-east-1", "replctl-replication", "create it and roll it out with replctl deploy")


# --------------------------------------------------------------------------- the report


def test_exit_codes_of_the_report() -> None:
    parity = ParityFacts(ENVS, tuple(clean()), BUILT)
    ok = judge_drift(stackset(), parity, NAMES, ENV_OF, "us-east-1", "123456789012")
    assert (ok.in_sync, ok.complete, ok.exit_code) == (True, True, ExitCode.OK)
    assert ok.checked == ("stack-set-drift", "ssm-keys", "table-schema", "function-code", "bucket-replication")
    incomplete = judge_drift(stackset(operation=OperationStatus.FAILED), parity, NAMES, ENV_OF, "us-east-1", "1")
    assert incomplete.exit_code == ExitCode.UNKNOWN
    drifted = DriftReport(stackset(), findings=judge_code([target("dev", code={"stream-processor": "Z="})], BUILT, NAMES))
    assert drifted.exit_code == ExitCode.DRIFTED == 30


def test_report_json_shape() -> None:
    d = stackset(drift=DriftStatus.DRIFTED, counts={"DriftedStackInstancesCount": 1}, instances=(
        InstanceDrift(DEV, "us-east-1", DriftStatus.DRIFTED, None, (
            ResourceDrift("Fn", "replctl-stream-processor", "AWS::Lambda::Function", ResourceDriftStatus.MODIFIED,
                          (PropertyDiff("/MemorySize", "256", "512", "NOT_EQUAL"),)),)),))
    report = judge_drift(d, ParityFacts(ENVS, tuple(clean()), BUILT), NAMES, ENV_OF, "us-east-1", "123456789012")
    out = report.to_dict()
    assert list(out) == ["in_sync", "complete", "exit_code", "stack_set", "parity", "findings", "notes"]
    assert out["exit_code"] == 30 and out["in_sync"] is False
    assert out["stack_set"]["instances"][0]["resources"][0] == {
        "logical_id": "Fn", "physical_id": "replctl-stream-processor", "type": "AWS::Lambda::Function",
        "drift_status": "MODIFIED", "differences": [{"path": "/MemorySize", "expected": "256", "actual": "512",
                                                     "type": "NOT_EQUAL"}]}
    assert set(out["findings"][0]) == {"kind", "environment", "account", "region", "resource", "detail", "action"}
