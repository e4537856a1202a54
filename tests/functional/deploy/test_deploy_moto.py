"""`replctl deploy` against moto: an admin account and dev/staging/prod accounts.

GIVEN an empty estate (moto: admin 123456789012; dev 111111111111, staging 222222222222,
prod 333333333333), WHEN `replctl deploy --yes` runs, THEN the stack set exists, each account
holds a stack with its environment's parameters, instance operations happened dev, then staging,
then prod, and the replication wiring happened after prod existed. A second deploy, `plan` and
`deploy --dry-run` make no mutating call.

moto's StackSet gaps (overrides replace instead of merge; overrides read back as the merged list;
ManagedExecution not echoed) are bridged in `moto_stacksets` so the product code can keep AWS's
semantics.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from typer.testing import CliRunner

import replctl.aws
from replctl.cli import app
from replctl.commands import deploy as deploy_cmd
from tests.functional.moto_stacksets import Recorder, adapt_for_moto, recording_factory
from tests.unit.deploy.fake_stacksets import ADMIN, CONFIG, DEV, PROD, STAGING, make_artifacts, write_estate

REPO = Path(__file__).resolve().parents[3]
REGION = "us-east-1"
STACK_SET = "replctl-replication"
BUCKET = f"replctl-artifacts-{ADMIN}-{REGION}"

runner = CliRunner()


@pytest.fixture()
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    recorder = Recorder()
    with mock_aws():
        monkeypatch.setattr(replctl.aws, "SessionFactory", recording_factory(recorder))
        yield recorder


@pytest.fixture()
def estate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = write_estate(tmp_path, config=CONFIG.replace("managed_execution: false", "managed_execution: true"))
    artifacts = make_artifacts(tmp_path)
    monkeypatch.setattr(deploy_cmd, "build_artifacts", lambda config, log: artifacts)
    return path


def invoke(path: Path, *args: str, input: str | None = None):
    result = runner.invoke(app, ["--config", str(path), "--no-color", *args], input=input,
                           env={"COLUMNS": "200"})
    assert "Traceback" not in result.output, result.output
    return result


def session(account: str) -> boto3.Session:
    creds = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/check", RoleSessionName="check")["Credentials"]
    return boto3.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                         aws_session_token=creds["SessionToken"], region_name=REGION)


def stack_parameters(account: str) -> dict[str, str]:
    stacks = session(account).client("cloudformation").describe_stacks()["Stacks"]
    assert [s["StackStatus"] for s in stacks] == ["CREATE_COMPLETE"]
    return {p["ParameterKey"]: p["ParameterValue"] for p in stacks[0]["Parameters"]}


def overrides(aws: Recorder, account: str) -> dict[str, str]:
    """The instance's overrides as AWS would report them (moto's merged list trimmed)."""
    cfn = boto3.client("cloudformation", region_name=REGION)
    aws.semantics.install(cfn)
    inst = cfn.describe_stack_instance(StackSetName=STACK_SET, StackInstanceAccount=account,
                                       StackInstanceRegion=REGION)["StackInstance"]
    return {p["ParameterKey"]: p["ParameterValue"] for p in inst["ParameterOverrides"]}


def test_first_deploy_rolls_out_in_order_then_wires_replication(aws: Recorder, estate: Path) -> None:
    result = invoke(estate, "deploy", "--yes")
    assert result.exit_code == 0, result.output

    # The stacks exist in each target account, with that environment's values.
    for env, account, retention in (("dev", DEV, "30"), ("staging", STAGING, "90"), ("prod", PROD, "365")):
        deployed = stack_parameters(account)
        assert deployed["Environment"] == env
        assert deployed["LogRetentionDays"] == retention
        assert deployed["AccountIdProd"] == PROD and deployed["AdminAccountId"] == ADMIN
        ssm = session(account).client("ssm")
        assert ssm.get_parameter(Name=f"/app/{env}/config/targets")["Parameter"]["Value"].endswith(f"logs={retention}")
    assert boto3.client("cloudformation", region_name=REGION).list_stacks()["StackSummaries"] == []

    # Instances were created dev, then staging, then prod; the targets switched on after prod existed.
    instance_calls = [c for c in aws.stackset_calls if c[0] != "UpdateStackSet"]
    assert instance_calls == [
        ("CreateStackInstances", (DEV,)),
        ("CreateStackInstances", (STAGING,)),
        ("CreateStackInstances", (PROD,)),
        ("UpdateStackInstances", (DEV,)),
        ("UpdateStackInstances", (STAGING,)),
    ]
    assert overrides(aws, DEV) == {"Environment": "dev", "LogRetentionDays": "30",
                              "ReplicateToStaging": "true", "ReplicateToProd": "true"}
    assert overrides(aws, STAGING) == {"Environment": "staging", "LogRetentionDays": "90",
                                  "ReplicateToStaging": "false", "ReplicateToProd": "true"}
    assert overrides(aws, PROD) == {"Environment": "prod", "LogRetentionDays": "365",
                               "ReplicateToStaging": "false", "ReplicateToProd": "false"}

    # The artifact bucket was created locked down and holds the content-hashed ZIPs.
    s3 = boto3.client("s3", region_name=REGION)
    assert s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
    assert s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"]["BlockPublicPolicy"] is True
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"])
    assert [k.split("-")[0] for k in keys] == ["replctl/config_validator", "replctl/replication_monitor",
                                               "replctl/stream_processor"]
    ss = boto3.client("cloudformation", region_name=REGION).describe_stack_set(StackSetName=STACK_SET)["StackSet"]
    assert {p["ParameterKey"]: p["ParameterValue"] for p in ss["Parameters"]}["ReplicationMonitorCodeKey"] in keys
    assert "created artifact bucket" in result.stderr
    assert "deployed: dev, staging, prod, wiring dev, wiring staging" in result.stderr


def test_second_deploy_plan_and_dry_run_make_no_mutating_call(aws: Recorder, estate: Path) -> None:
    before = len(aws.calls)
    assert invoke(estate, "plan", "--detailed-exitcode").exit_code == 10
    assert invoke(estate, "deploy", "--dry-run").exit_code == 0
    assert aws.mutating(before) == []

    assert invoke(estate, "deploy", "--yes").exit_code == 0
    after_first = len(aws.calls)
    second = invoke(estate, "deploy", "--yes")
    assert second.exit_code == 0, second.output
    assert aws.mutating(after_first) == []
    assert "nothing to change" in second.stderr
    assert len(aws.calls) > after_first  # it did read

    now = len(aws.calls)
    assert invoke(estate, "plan", "--detailed-exitcode").exit_code == 0
    assert invoke(estate, "deploy", "--dry-run", "--detailed-exitcode").exit_code == 0
    assert aws.mutating(now) == []


def test_packaging_progress_shows_in_deploy_and_in_plan_only_with_verbose(
        aws: Recorder, estate: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    artifacts = make_artifacts(estate.parent)

    def build(config: object, log: Callable[[str], None]) -> list[object]:
        log("replication_monitor: unchanged, using cached replication_monitor-0.zip")
        return artifacts

    monkeypatch.setattr(deploy_cmd, "build_artifacts", build)
    line = "replication_monitor: unchanged, using cached"
    assert line not in invoke(estate, "plan").stderr
    assert line in invoke(estate, "plan", "--verbose").stderr
    assert line in invoke(estate, "deploy", "--dry-run").stderr


def test_json_result_lists_operations_with_ids(aws: Recorder, estate: Path) -> None:
    result = invoke(estate, "--output", "json", "deploy", "--yes")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["result"] == "succeeded"
    assert report["plan"]["exists"] is False
    assert [(o["environment"], o["action"], o["status"]) for o in report["operations"]] == [
        ("dev", "CreateStackInstances", "SUCCEEDED"),
        ("staging", "CreateStackInstances", "SUCCEEDED"),
        ("prod", "CreateStackInstances", "SUCCEEDED"),
        ("dev", "UpdateStackInstances", "SUCCEEDED"),
        ("staging", "UpdateStackInstances", "SUCCEEDED"),
    ]
    assert all(o["operation_id"] for o in report["operations"])
    assert report["operations"][0]["instances"] == [
        {"account": DEV, "region": REGION, "status": "SUCCEEDED", "reason": None}]
    assert {(i["environment"], i["status"], i["detailed_status"]) for i in report["instances"]} == {
        ("dev", "CURRENT", "SUCCEEDED"), ("staging", "CURRENT", "SUCCEEDED"), ("prod", "CURRENT", "SUCCEEDED")}


def test_changed_override_updates_only_that_environment(aws: Recorder, estate: Path) -> None:
    assert invoke(estate, "deploy", "--yes").exit_code == 0
    estate.write_text(estate.read_text().replace('LogRetentionDays: "90"', 'LogRetentionDays: "180"'))
    before = len(aws.stackset_calls)
    plan = json.loads(invoke(estate, "--output", "json", "plan").stdout)["plan"]
    assert plan["parameter_changes"] == [{"scope": "staging", "name": "LogRetentionDays", "before": "90",
                                          "after": "180", "note": ""}]
    result = invoke(estate, "deploy", "--yes")
    assert result.exit_code == 0, result.output
    assert aws.stackset_calls[before:] == [("UpdateStackInstances", (STAGING,))]
    assert overrides(aws, STAGING)["LogRetentionDays"] == "180"


def test_real_template_through_template_url(aws: Recorder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """cfn/replication.yaml (adapted for moto) is over the inline limit: uploaded, sent as TemplateURL."""
    config = (REPO / "environments.yaml").read_text().replace("template: cfn/replication.yaml",
                                                             f"template: {REPO / 'cfn' / 'replication.yaml'}")
    path = tmp_path / "environments.yaml"
    path.write_text(config)
    artifacts = make_artifacts(tmp_path)
    monkeypatch.setattr(deploy_cmd, "build_artifacts", lambda config, log: artifacts)
    monkeypatch.setattr(deploy_cmd, "template_transform", lambda st: adapt_for_moto)

    result = invoke(path, "deploy", "--yes")
    assert result.exit_code == 0, result.output
    s3 = boto3.client("s3", region_name=REGION)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="replctl/templates/")["Contents"]]
    assert len(keys) == 1 and keys[0].startswith(f"replctl/templates/{STACK_SET}-")
    for env, account in (("dev", DEV), ("staging", STAGING), ("prod", PROD)):
        deployed = stack_parameters(account)
        assert deployed["Environment"] == env
        tables = session(account).client("dynamodb").list_tables()["TableNames"]
        assert tables == ["replctl-metadata"]
    before = len(aws.calls)
    again = invoke(path, "deploy", "--yes")
    assert again.exit_code == 0, again.output
    assert aws.mutating(before) == []


def test_an_account_added_later_may_read_the_artifacts_before_its_instance_exists(aws: Recorder,
                                                                                    estate: Path) -> None:
    assert invoke(estate, "deploy", "--yes").exit_code == 0
    extra = "444444444444"
    estate.write_text(estate.read_text().replace(
        f'account_id: "{STAGING}"', f'account_id: "{STAGING}"\n    extra_account_ids: ["{extra}"]', 1))
    aws.calls.clear()
    result = invoke(estate, "deploy", "--yes")
    assert result.exit_code == 0, result.output
    policy = json.loads(boto3.client("s3").get_bucket_policy(Bucket=BUCKET)["Policy"])
    readers = policy["Statement"][0]["Principal"]["AWS"]
    assert f"arn:aws:iam::{extra}:root" in readers and f"arn:aws:iam::{DEV}:root" in readers
    ops = [c.operation for c in aws.calls if c.mutating]
    assert ops.index("PutBucketPolicy") < ops.index("CreateStackInstances")


def test_artifact_bucket_policy_is_tls_only_and_read_only_for_target_accounts(aws: Recorder, estate: Path) -> None:
    assert invoke(estate, "deploy", "--yes").exit_code == 0
    (policy,) = aws.bucket_policies
    allow, deny = policy["Statement"]
    assert allow["Effect"] == "Allow" and set(allow["Action"]) == {"s3:GetObject", "s3:GetObjectVersion"}
    assert set(allow["Principal"]["AWS"]) == {f"arn:aws:iam::{a}:root" for a in (DEV, STAGING, PROD)}
    assert allow["Resource"] == f"arn:aws:s3:::{BUCKET}/replctl/*"
    assert deny == {"Sid": "TlsOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                    "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}}}


def test_template_change_is_rolled_out_once_then_brought_forward(aws: Recorder, estate: Path) -> None:
    """A template change: UpdateStackSet for dev only, then UpdateStackInstances with the complete
    override list for staging and prod; every instance keeps its overrides and a second deploy
    changes nothing. (moto says CURRENT whatever happens: statuses are checked against the fake
    and the sandbox.)"""
    assert invoke(estate, "deploy", "--yes").exit_code == 0
    template = estate.parent / "t.yaml"
    template.write_text(template.read_text().replace("Default: replctl\n", "Default: replctl2\n"))
    before = len(aws.stackset_calls)
    result = invoke(estate, "deploy", "--yes")
    assert result.exit_code == 0, result.output
    assert aws.stackset_calls[before:] == [("UpdateStackSet", (DEV,)), ("UpdateStackInstances", (STAGING,)),
                                           ("UpdateStackInstances", (PROD,))]
    assert overrides(aws, PROD) == {"Environment": "prod", "LogRetentionDays": "365",
                                    "ReplicateToStaging": "false", "ReplicateToProd": "false"}
    assert overrides(aws, DEV)["ReplicateToProd"] == "true"  # the UpdateStackSet kept dev's overrides
    after = len(aws.calls)
    again = invoke(estate, "deploy", "--yes")
    assert again.exit_code == 0, again.output
    assert aws.mutating(after) == []
