"""`replctl status` against moto: an admin account with a stack set, and dev/staging/prod accounts
seeded with what the template and functions would produce (bucket rules, metadata items, metrics,
queues, alarms).

moto never evaluates alarms and never publishes AWS/S3 or AWS/Lambda metrics itself (moto-notes
§6, §7): the tests put the datapoints and set alarm states, which is exactly what makes each
verdict rule reachable.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from typer.testing import CliRunner

from replctl.aws import Call, SessionFactory
from replctl.cli import app
from replctl.config import load_config
from tests.conftest import DEV, PROD, STAGING

runner = CliRunner()
REGION = "us-east-1"
ACCOUNTS = {"dev": DEV, "staging": STAGING, "prod": PROD}
FUNCTIONS = ("replication-monitor", "config-validator", "stream-processor")
TINY_TEMPLATE = json.dumps({
    "Parameters": {"ReplicateToStaging": {"Type": "String", "Default": "false"},
                   "ReplicateToProd": {"Type": "String", "Default": "false"}},
    "Resources": {"P": {"Type": "AWS::SSM::Parameter", "Properties": {
        "Name": {"Fn::Sub": "/replctl-test/${AWS::Region}"}, "Type": "String", "Value": "x"}}}})
#: The instances' ReplicateTo* values once every environment exists (what deploy ends with).
WANTED = {
    "dev": {"ReplicateToStaging": "true", "ReplicateToProd": "true"},
    "staging": {"ReplicateToStaging": "false", "ReplicateToProd": "true"},
    "prod": {"ReplicateToStaging": "false", "ReplicateToProd": "false"},
}

CONFIG = """\
version: 1
admin:
  account_id: "123456789012"
stackset:
  name: replctl-replication
  template: t.yaml
  home_region: us-east-1
  artifact_bucket: replctl-artifacts-{account_id}-{region}
  wait:
    initial_interval_seconds: 1
    max_interval_seconds: 4
    timeout_seconds: 60
ssm_prefix: /app
parameters:
  ResourcePrefix: replctl
  DynamoDBTableName: replctl-metadata
  ReplicationBucketName: replctl-config
thresholds:
  metadata_lag_seconds: 1
  s3_latency_seconds: 900
  heartbeat_max_age_seconds: 900
  validation_max_age_seconds: 7200
  lookback_minutes: 30
environments:
  - name: dev
    account_id: "111111111111"
    regions: [us-east-1]
    ssm_path: /app/dev/config
  - name: staging
    account_id: "222222222222"
    regions: [us-east-1]
    ssm_path: /app/staging/config
  - name: prod
    account_id: "333333333333"
    regions: [us-east-1]
    ssm_path: /app/prod/config
"""

DOWNSTREAM = {"dev": ("staging", "prod"), "staging": ("prod",), "prod": ()}


def session_in(account: str) -> boto3.Session:
    """Credentials acting in `account` (moto grants any AssumeRole; moto-notes §2)."""
    creds = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/setup", RoleSessionName="setup")["Credentials"]
    return boto3.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                         aws_session_token=creds["SessionToken"], region_name=REGION)


def bucket(env: str) -> str:
    return f"replctl-config-{env}-{ACCOUNTS[env]}"


def code_zip(text: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("handler.py", text)
    return buf.getvalue()


@dataclass
class Seed:
    """What one environment's account holds; the defaults are a healthy environment."""

    lag: float = 0.3
    s3_lag: float = 40.0
    latency: float = 30.0
    failed: float = 0.0
    errors: float = 0.0
    heartbeat_age: float = 60.0
    validation: str | None = "consistent"
    validation_age: float = 600.0
    differences: list[dict[str, str]] = field(default_factory=list)
    dlq_depth: int = 0
    alarm_states: dict[str, str] = field(default_factory=dict)
    rules: tuple[str, ...] | None = None  # targets with a rule; default: every downstream env
    ssm_keys: tuple[str, ...] = ("db/url", "feature/flag", "timeout")
    code: dict[str, bytes] | None = None  # function short name -> zip bytes
    stream_view: str = "NEW_AND_OLD_IMAGES"
    metrics: bool = True


def seed_account(env: str, seed: Seed, now: datetime) -> None:
    s = session_in(ACCOUNTS[env])
    s3 = s.client("s3")
    s3.create_bucket(Bucket=bucket(env))
    s3.put_bucket_versioning(Bucket=bucket(env), VersioningConfiguration={"Status": "Enabled"})
    targets = DOWNSTREAM[env] if seed.rules is None else seed.rules
    if targets:
        s3.put_bucket_replication(Bucket=bucket(env), ReplicationConfiguration={
            "Role": f"arn:aws:iam::{ACCOUNTS[env]}:role/replctl/replctl-s3-replication-{env}",
            "Rules": [{
                "ID": f"to-{t}", "Priority": i + 1, "Status": "Enabled", "Filter": {"Prefix": ""},
                "DeleteMarkerReplication": {"Status": "Enabled"},
                "Destination": {"Bucket": f"arn:aws:s3:::{bucket(t)}", "Account": ACCOUNTS[t],
                                "Metrics": {"Status": "Enabled"}},
            } for i, t in enumerate(targets)]})

    ddb = s.client("dynamodb")
    ddb.create_table(
        TableName="replctl-metadata", BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "S"}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": seed.stream_view})
    res = s.resource("dynamodb").Table("replctl-metadata")
    from decimal import Decimal

    res.put_item(Item={"pk": "HEARTBEAT", "sk": env, "origin": env, "version": 42,
                       "written_at": Decimal(str(round((now - timedelta(seconds=seed.heartbeat_age)).timestamp(), 3)))})
    measured = (now - timedelta(seconds=60)).isoformat()
    for t in targets:
        res.put_item(Item={"pk": "LOCAL#LAG", "sk": t, "origin": env, "version": 42, "heartbeat_version": 42,
                           "metadata_lag_seconds": Decimal(str(seed.lag)), "s3_lag_seconds": Decimal(str(seed.s3_lag)),
                           "metadata_visible": True, "s3_visible": True, "measured_at": measured})
    if seed.validation is not None:
        res.put_item(Item={"pk": "LOCAL#VALIDATION", "sk": "latest", "origin": env, "version": 7,
                           "status": seed.validation, "compared": ["ssm", "table", "bucket"],
                           "differences": seed.differences, "trigger": "schedule",
                           "generated_at": (now - timedelta(seconds=seed.validation_age)).isoformat()})

    sqs = s.client("sqs")
    for name in [*(f"replctl-{f}-dlq" for f in FUNCTIONS), "replctl-events-dlq"]:
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        if name == "replctl-stream-processor-dlq":
            for i in range(seed.dlq_depth):
                sqs.send_message(QueueUrl=url, MessageBody=f"failed batch {i}")

    cw = s.client("cloudwatch")
    when = now - timedelta(minutes=2)
    if seed.metrics:
        data: list[tuple[str, str, list[tuple[str, str]], float]] = []
        for t in targets:
            dims = [("SourceBucket", bucket(env)), ("DestinationBucket", bucket(t)), ("RuleId", f"to-{t}")]
            data += [("AWS/S3", "ReplicationLatency", dims, seed.latency),
                     ("AWS/S3", "OperationsPendingReplication", dims, 0.0),
                     ("AWS/S3", "OperationsFailedReplication", dims, seed.failed),
                     ("ReplicationFramework", "MetadataReplicationLag", [("Environment", env), ("Target", t)], seed.lag),
                     ("ReplicationFramework", "S3CanaryLag", [("Environment", env), ("Target", t)], seed.s3_lag)]
        for f in FUNCTIONS:
            data.append(("AWS/Lambda", "Errors", [("FunctionName", f"replctl-{f}")], seed.errors))
        for ns, name, dims, value in data:
            cw.put_metric_data(Namespace=ns, MetricData=[{
                "MetricName": name, "Timestamp": when, "Value": value,
                "Dimensions": [{"Name": k, "Value": v} for k, v in dims]}])
    for signal in ("metadata-lag", "errors-replication-monitor", "dlq-depth-stream-processor"):
        name = f"replctl-{env}-{signal}"
        cw.put_metric_alarm(AlarmName=name, MetricName="Errors", Namespace="AWS/Lambda", Statistic="Sum",
                            Period=60, EvaluationPeriods=1, Threshold=0, ComparisonOperator="GreaterThanThreshold")
        state = seed.alarm_states.get(signal)
        if state:  # alarms never evaluate in moto; only set_alarm_state moves them (moto-notes §6)
            cw.set_alarm_state(AlarmName=name, StateValue=state, StateReason=f"Threshold crossed: {signal}")

    ssm = s.client("ssm")
    for key in seed.ssm_keys:
        ssm.put_parameter(Name=f"/app/{env}/config/{key}", Value=f"{env}-{key}", Type="String")

    iam = s.client("iam")
    role = iam.create_role(RoleName="fn-role", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    lam = s.client("lambda")
    for f in FUNCTIONS:
        body = (seed.code or {}).get(f, code_zip(f"# {f}\n"))
        lam.create_function(FunctionName=f"replctl-{f}", Runtime="python3.11", Role=role, Handler="handler.handler",
                            Code={"ZipFile": body}, MemorySize=256)


def make_stack_set(envs: tuple[str, ...] = ("dev", "staging", "prod"),
                   overrides: dict[str, dict[str, str]] | None = None) -> None:
    """The stack set in the admin account, one instance per environment with its ReplicateTo* overrides."""
    cfn = boto3.client("cloudformation", region_name=REGION)
    cfn.create_stack_set(StackSetName="replctl-replication", TemplateBody=TINY_TEMPLATE, PermissionModel="SELF_MANAGED",
                         Parameters=[{"ParameterKey": k, "ParameterValue": "false"}
                                     for k in ("ReplicateToStaging", "ReplicateToProd")])
    for env in envs:
        # moto replaces rather than merges overrides (moto-notes §1): always pass the full list.
        values = {**WANTED[env], **(overrides or {}).get(env, {})}
        cfn.create_stack_instances(StackSetName="replctl-replication", Accounts=[ACCOUNTS[env]], Regions=[REGION],
                                   ParameterOverrides=[{"ParameterKey": k, "ParameterValue": v}
                                                       for k, v in values.items()])


@pytest.fixture(autouse=True)
def shared_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """One botocore model loader for every session in the test (the CLI makes a new session per
    run, and re-parsing the service JSON for each was most of these tests' time)."""
    import botocore.loaders
    import botocore.session

    loader = _LOADER.setdefault("loader", botocore.loaders.create_loader())
    monkeypatch.setattr(botocore.session, "create_loader", lambda *_a, **_k: loader)


_LOADER: dict[str, Any] = {}


@pytest.fixture()
def estate(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "t.yaml").write_text("Resources: {}\n")
    path = tmp_path / "environments.yaml"
    path.write_text(CONFIG)
    with mock_aws():
        yield path


def seed(seeds: dict[str, Seed] | None = None, *, stack_set: bool = True,
         overrides: dict[str, dict[str, str]] | None = None) -> datetime:
    """Seed all three accounts (healthy unless a Seed says otherwise) and the stack set."""
    now = datetime.now(timezone.utc)
    seeds = seeds or {}
    for env in ACCOUNTS:
        seed_account(env, seeds.get(env, Seed()), now)
    if stack_set:
        make_stack_set(overrides=overrides)
    return now


def run_status(path: Path, *args: str):
    result = runner.invoke(app, ["--config", str(path), "--no-color", "status", *args], env={"COLUMNS": "200"})
    assert "Traceback" not in result.output, result.output
    return result


def signals(report: dict[str, Any], env: str) -> dict[tuple[str, str], dict[str, Any]]:
    (target,) = next(e for e in report["environments"] if e["name"] == env)["targets"]
    return {(s["signal"], s["subject"]): s for s in target["signals"]}


# --------------------------------------------------------------------------- tests


def test_all_healthy_exits_zero_and_reads_every_signal(estate: Path) -> None:
    seed()
    result = run_status(estate, "--output", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["verdict"] == "healthy" and report["exit_code"] == 0 and report["reasons"] == []
    assert [e["name"] for e in report["environments"]] == ["dev", "staging", "prod"]
    dev = signals(report, "dev")
    assert dev[("stack-instance", "replctl-replication")]["value"] == "CURRENT / SUCCEEDED"
    assert dev[("s3-replication", "to-staging → staging")]["value"] == "latency 30 s, pending 0, failed 0"
    assert dev[("s3-replication", "to-prod → prod")]["verdict"] == "healthy"
    assert re.fullmatch(r"0\.3 s, measured 6\d s ago", dev[("metadata-lag", "dev → staging")]["value"])
    assert dev[("s3-canary-lag", "dev → prod")]["value"] == "40 s"
    assert re.fullmatch(r"6\d s ago \(v42\)", dev[("heartbeat", "dev")]["value"])
    assert dev[("validation", "latest")]["value"] == "consistent, 10 min ago"
    assert dev[("function-errors", "replctl-stream-processor")]["value"] == "0 in 30 min"
    assert dev[("dlq", "replctl-events-dlq")]["value"] == "0 messages"
    assert dev[("alarms", "replctl-dev-*")]["value"] == "3 OK"
    prod = signals(report, "prod")
    assert prod[("s3-replication", "replctl-config-prod-333333333333")]["value"] == "no replication rules on this bucket"
    assert not any(k[0] == "metadata-lag" for k in prod)
    facts = report["environments"][0]["targets"][0]["facts"]
    assert [r["rule_id"] for r in facts["rules"]] == ["to-prod", "to-staging"]
    assert facts["rules"][0]["latency"] == {"stat": "Maximum", "latest": 30.0, "maximum": 30.0, "sum": 30.0,
                                            "datapoints": 1}
    assert facts["lags"][1]["target"] == "staging" and facts["lags"][1]["metadata_lag_seconds"] == 0.3
    assert facts["validation"]["status"] == "consistent"
    assert facts["instance"]["status"] == "CURRENT"


def test_mixed_estate_table_and_json(estate: Path) -> None:
    seed({
        "staging": Seed(lag=2.5),                                        # above the 1 s bound
        "prod": Seed(alarm_states={"metadata-lag": "ALARM"}, dlq_depth=2),  # alarm + DLQ
    })
    as_json = run_status(estate, "--output", "json")
    assert as_json.exit_code == 21
    report = json.loads(as_json.stdout)
    verdicts = {e["name"]: e["verdict"] for e in report["environments"]}
    assert verdicts == {"dev": "healthy", "staging": "degraded", "prod": "unhealthy"}
    assert report["verdict"] == "unhealthy"
    staging = next(e for e in report["environments"] if e["name"] == "staging")
    assert staging["reasons"] == ["metadata replication lag staging → prod is 2.5 s, above the 1 s bound"]
    prod = next(e for e in report["environments"] if e["name"] == "prod")
    assert "alarm replctl-prod-metadata-lag is in ALARM: Threshold crossed: metadata-lag" in prod["reasons"]
    assert any(r.startswith("2 messages in dead-letter queue replctl-stream-processor-dlq") for r in prod["reasons"])

    table = run_status(estate)
    assert table.exit_code == 21
    flat = " ".join(table.stdout.split())
    assert "overall: UNHEALTHY" in flat
    assert "metadata replication lag staging → prod is 2.5 s, above the 1 s bound" in flat
    assert "replctl-prod-metadata-lag" in flat and "ALARM" in flat
    assert "overall: unhealthy (exit 21)" in table.stderr
    # stderr says what status is about: no packaging progress, only the verdict line.
    assert table.stderr.strip().splitlines() == ["overall: unhealthy (exit 21)"]


def test_one_environment_only(estate: Path) -> None:
    seed({"staging": Seed(lag=2.5)})
    result = run_status(estate, "--env", "staging", "-o", "json")
    assert result.exit_code == 20
    report = json.loads(result.stdout)
    assert [e["name"] for e in report["environments"]] == ["staging"]


def test_failed_replication_and_inconsistent_validation_are_unhealthy(estate: Path) -> None:
    seed({"dev": Seed(failed=3, validation="inconsistent",
                      differences=[{"kind": "ssm", "environment": "prod", "detail": "missing /app/prod/config/x"}])})
    report = json.loads(run_status(estate, "--env", "dev", "-o", "json").stdout)
    dev = next(e for e in report["environments"] if e["name"] == "dev")
    assert dev["verdict"] == "unhealthy"
    assert any(r.startswith("3 replication operations failed in the last 30 min for rule to-staging")
               for r in dev["reasons"])
    assert "validation found 1 difference: prod ssm: missing /app/prod/config/x" in dev["reasons"]


def test_no_data_is_unknown_never_healthy(estate: Path) -> None:
    seed({"dev": Seed(metrics=False, validation=None)})
    result = run_status(estate, "--env", "dev", "-o", "json")
    assert result.exit_code == 22
    dev = signals(json.loads(result.stdout), "dev")
    assert dev[("s3-replication", "to-staging → staging")]["verdict"] == "unknown"
    assert dev[("function-errors", "replctl-replication-monitor")]["verdict"] == "unknown"
    assert dev[("validation", "latest")]["reason"].startswith("no validation report yet")
    # the LOCAL#LAG item alone still answers the lag question
    assert dev[("metadata-lag", "dev → staging")]["verdict"] == "healthy"


def test_missing_stack_instance_is_unhealthy(estate: Path) -> None:
    now = seed(stack_set=False)
    assert now
    make_stack_set(envs=("dev", "staging"))
    report = json.loads(run_status(estate, "--env", "prod", "-o", "json").stdout)
    prod = signals(report, "prod")
    sig = prod[("stack-instance", "replctl-replication")]
    assert sig["verdict"] == "unhealthy" and sig["value"] == "not deployed"
    assert sig["reason"] == ("no stack instance of replctl-replication for account 333333333333 in us-east-1: "
                             "deploy it (replctl deploy --env prod)")


def test_one_get_metric_data_call_per_account_region(estate: Path) -> None:
    from replctl.status.fetch import fetch_status
    from replctl.status.judge import judge

    seed()
    config = load_config(estate)
    factory = SessionFactory()
    calls: list[Call] = []
    factory.add_listener(calls.append)
    report = judge(fetch_status(config, factory, config.environments), config.thresholds)
    assert report.verdict.value == "healthy"
    metric_calls = Counter((c.account, c.region) for c in calls if c.operation == "GetMetricData")
    assert metric_calls == {(DEV, REGION): 1, (STAGING, REGION): 1, (PROD, REGION): 1}
    assert not [c for c in calls if c.mutating]
    # admin reads only the stack instances; everything else through the observer role
    assert {c.operation for c in calls if c.account == "caller"} == {"ListStackInstances", "AssumeRole"}


def test_watch_refreshes_until_ctrl_c_and_exits_with_the_last_verdict(estate: Path, monkeypatch) -> None:
    import replctl.commands.status as cmd

    seed({"staging": Seed(lag=2.5)})
    sleeps: list[float] = []

    def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(cmd, "_sleep", fake_sleep)
    result = run_status(estate, "--watch", "--interval", "5", "-o", "json")
    assert result.exit_code == 20
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 2 and all(r["verdict"] == "degraded" for r in lines)
    assert sleeps == [5.0, 5.0]
    assert "last verdict: degraded (exit 20)" in result.stderr

    sleeps.clear()
    table = run_status(estate, "--watch", "--interval", "5")
    assert table.exit_code == 20
    assert "overall: DEGRADED" in table.stdout and "Ctrl-C to stop" in table.stdout


def test_status_without_credentials_is_an_access_error_not_a_wall_of_unknown(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    (tmp_path / "t.yaml").write_text("Resources: {}\n")
    cfg = tmp_path / "environments.yaml"
    cfg.write_text(CONFIG)
    result = CliRunner().invoke(app, ["--config", str(cfg), "status"])
    assert result.exit_code == 3, result.output
    assert "no AWS credentials found" in result.stderr and "Traceback" not in result.output
