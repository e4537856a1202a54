"""`replctl status` across 3 environments and across 3 × 20 accounts: calls and wall time,
concurrent (the default) vs sequential (`max_workers=1`) in the same run.

moto (in-process `mock_aws`) is seeded with what status reads in every account — the bucket and
its replication rules, the metadata table's HEARTBEAT / LOCAL#LAG / LOCAL#VALIDATION items,
the metrics, the dead-letter queues and the alarms — plus the stack set with one instance per
account. The estate config is generated with `extra_account_ids`.

moto answers in microseconds from the same process, so without help every call is CPU work
under one GIL and threads could only lose. Real AWS answers after a network round trip, during
which a thread waits and the others run. The runs marked "modeled RTT" add a fixed sleep before
every call (in the factory's per-call listener) to stand for that round trip; the runs without
it show replctl's and moto's CPU cost alone.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from bench.model import Budget, Section, Table
from bench.stats import fmt_ratio, fmt_seconds, ratio

REGION = "us-east-1"
ENVIRONMENTS = ("dev", "staging", "prod")
PRIMARY = {"dev": "111111111111", "staging": "222222222222", "prod": "333333333333"}
DOWNSTREAM = {"dev": ("staging", "prod"), "staging": ("prod",), "prod": ()}
FUNCTIONS = ("replication-monitor", "config-validator", "stream-processor")
#: The round trip each call is given in the "modeled RTT" runs (a same-region AWS API call).
MODELED_RTT_SECONDS = 0.025
TINY_TEMPLATE = json.dumps({
    "Parameters": {"ReplicateToStaging": {"Type": "String", "Default": "false"},
                   "ReplicateToProd": {"Type": "String", "Default": "false"}},
    "Resources": {"P": {"Type": "AWS::SSM::Parameter", "Properties": {
        "Name": {"Fn::Sub": "/replctl-bench/${AWS::Region}"}, "Type": "String", "Value": "x"}}}})


def accounts(env: str, per_environment: int) -> list[str]:
    """The environment's primary account, then generated extra accounts (12-digit strings)."""
    digit = PRIMARY[env][0]
    return [PRIMARY[env], *(f"{digit * 4}{i:08d}" for i in range(1, per_environment))]


def config_text(per_environment: int) -> str:
    envs = []
    for env in ENVIRONMENTS:
        ids = accounts(env, per_environment)
        extra = "".join(f'\n      - "{a}"' for a in ids[1:])
        envs.append(f"""\
  - name: {env}
    account_id: "{ids[0]}"
{"    extra_account_ids:" + extra if extra else ""}
    regions: [{REGION}]
    ssm_path: /app/{env}/config
""")
    return f"""\
version: 1
admin:
  account_id: "123456789012"
stackset:
  name: replctl-replication
  template: t.yaml
  home_region: {REGION}
  artifact_bucket: replctl-artifacts-{{account_id}}-{{region}}
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
{"".join(envs)}"""


def write_config(workdir: Path, per_environment: int) -> Path:
    where = workdir / f"status-{per_environment}"
    where.mkdir(parents=True, exist_ok=True)
    (where / "t.yaml").write_text("Resources: {}\n")
    path = where / "environments.yaml"
    path.write_text(config_text(per_environment))
    return path


# --------------------------------------------------------------------------- seeding


def status_api() -> tuple[Any, Any, Any]:
    """`fetch_status`, `judge` and `names_for` of the importable replctl. `bench --compare` runs the
    probe against older revisions too, which had them in replctl/health_*.py."""
    try:
        from replctl.status.fetch import fetch_status
        from replctl.status.judge import judge
        from replctl.status.model import names_for
    except ImportError:
        from replctl.health_fetch import fetch_status  # type: ignore[import-not-found,no-redef]
        from replctl.health_judge import judge  # type: ignore[import-not-found,no-redef]
        from replctl.health_model import names_for  # type: ignore[import-not-found,no-redef]
    return fetch_status, judge, names_for


class Seeder:
    """Healthy-estate data in every account, through one boto3 session (models parsed once)."""

    def __init__(self, config: Any) -> None:
        import boto3

        _, _, names_for = status_api()
        self.config = config
        self.names = names_for(config)
        self.session = boto3.Session(region_name=REGION)
        self.sts = self.session.client("sts")
        self.now = datetime.now(timezone.utc)

    def client(self, account: str, service: str) -> Any:
        creds = self.sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/bench-setup",
                                     RoleSessionName="bench")["Credentials"]
        return self.session.client(service, aws_access_key_id=creds["AccessKeyId"],
                                   aws_secret_access_key=creds["SecretAccessKey"],
                                   aws_session_token=creds["SessionToken"])

    def seed(self) -> None:
        for env in self.config.environments:
            for account in env.account_ids:
                self.account(env.name, account)
        self.stack_set()

    def account(self, env: str, account: str) -> None:
        names, now = self.names, self.now
        bucket = names.bucket(env, account)
        targets = DOWNSTREAM[env]
        s3 = self.client(account, "s3")
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        if targets:
            s3.put_bucket_replication(Bucket=bucket, ReplicationConfiguration={
                "Role": f"arn:aws:iam::{account}:role/replctl/replctl-s3-replication-{env}",
                "Rules": [{
                    "ID": f"to-{t}", "Priority": i + 1, "Status": "Enabled", "Filter": {"Prefix": ""},
                    "DeleteMarkerReplication": {"Status": "Enabled"},
                    "Destination": {"Bucket": f"arn:aws:s3:::{names.primary_bucket(t)}", "Account": PRIMARY[t],
                                    "Metrics": {"Status": "Enabled"}},
                } for i, t in enumerate(targets)]})

        ddb = self.client(account, "dynamodb")
        ddb.create_table(
            TableName=names.table, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                  {"AttributeName": "sk", "AttributeType": "S"}])
        items = [{"pk": {"S": "HEARTBEAT"}, "sk": {"S": env}, "origin": {"S": env}, "version": {"N": "42"},
                  "written_at": {"N": str(round((now - timedelta(seconds=60)).timestamp(), 3))}},
                 {"pk": {"S": "LOCAL#VALIDATION"}, "sk": {"S": "latest"}, "origin": {"S": env},
                  "version": {"N": "7"}, "status": {"S": "consistent"}, "differences": {"L": []},
                  "compared": {"L": [{"S": "ssm"}, {"S": "table"}, {"S": "bucket"}]},
                  "trigger": {"S": "schedule"}, "generated_at": {"S": (now - timedelta(minutes=10)).isoformat()}}]
        items += [{"pk": {"S": "LOCAL#LAG"}, "sk": {"S": t}, "origin": {"S": env}, "version": {"N": "42"},
                   "heartbeat_version": {"N": "42"}, "metadata_lag_seconds": {"N": "0.3"},
                   "s3_lag_seconds": {"N": "40"}, "metadata_visible": {"BOOL": True}, "s3_visible": {"BOOL": True},
                   "measured_at": {"S": (now - timedelta(seconds=60)).isoformat()}} for t in targets]
        ddb.batch_write_item(RequestItems={names.table: [{"PutRequest": {"Item": i}} for i in items]})

        sqs = self.client(account, "sqs")
        for queue in names.queues():
            sqs.create_queue(QueueName=queue)

        cw = self.client(account, "cloudwatch")
        when = now - timedelta(minutes=2)
        data: list[dict[str, Any]] = []

        def datum(metric: str, dims: list[tuple[str, str]], value: float) -> dict[str, Any]:
            return {"MetricName": metric, "Timestamp": when, "Value": value,
                    "Dimensions": [{"Name": k, "Value": v} for k, v in dims]}

        for t in targets:
            dims = [("SourceBucket", bucket), ("DestinationBucket", names.primary_bucket(t)), ("RuleId", f"to-{t}")]
            cw.put_metric_data(Namespace="AWS/S3", MetricData=[
                datum("ReplicationLatency", dims, 30.0), datum("OperationsPendingReplication", dims, 0.0),
                datum("OperationsFailedReplication", dims, 0.0)])
            data += [datum("MetadataReplicationLag", [("Environment", env), ("Target", t)], 0.3),
                     datum("S3CanaryLag", [("Environment", env), ("Target", t)], 40.0)]
        if data:
            cw.put_metric_data(Namespace="ReplicationFramework", MetricData=data)
        cw.put_metric_data(Namespace="AWS/Lambda", MetricData=[
            datum("Errors", [("FunctionName", names.function(f))], 0.0) for f in FUNCTIONS])
        for signal in ("metadata-lag", "errors-replication-monitor", "dlq-depth-stream-processor"):
            cw.put_metric_alarm(AlarmName=f"{names.alarm_prefix(env)}{signal}", MetricName="Errors",
                                Namespace="AWS/Lambda", Statistic="Sum", Period=60, EvaluationPeriods=1,
                                Threshold=0, ComparisonOperator="GreaterThanThreshold")

    def stack_set(self) -> None:
        cfn = self.session.client("cloudformation")
        flags = ("ReplicateToStaging", "ReplicateToProd")
        cfn.create_stack_set(StackSetName=self.names.stack_set, TemplateBody=TINY_TEMPLATE,
                             PermissionModel="SELF_MANAGED",
                             Parameters=[{"ParameterKey": k, "ParameterValue": "false"} for k in flags])
        for env in self.config.environments:
            wanted = {f"ReplicateTo{t.capitalize()}": "true" for t in DOWNSTREAM[env.name]}
            # moto replaces rather than merges overrides: always the full list.
            cfn.create_stack_instances(
                StackSetName=self.names.stack_set, Accounts=list(env.account_ids), Regions=[REGION],
                ParameterOverrides=[{"ParameterKey": k, "ParameterValue": wanted.get(k, "false")} for k in flags])


# --------------------------------------------------------------------------- measuring


@dataclass(frozen=True)
class Run:
    scale: str
    mode: str
    workers: int
    rtt: float
    calls: int
    seconds: float
    verdict: str
    targets: int


@contextmanager
def _estate(workdir: Path, per_environment: int) -> Iterator[Any]:
    from moto import mock_aws

    from replctl.config import load_config

    with mock_aws():
        config = load_config(write_config(workdir, per_environment))
        Seeder(config).seed()
        yield config


def measure(config: Any, *, workers: int, rtt: float, scale: str, mode: str) -> Run:
    """One `status` fetch + judge with a fresh factory (as one CLI run has)."""
    from replctl.aws import AwsSettings, SessionFactory

    fetch_status, judge, _ = status_api()
    factory = SessionFactory(AwsSettings(region=REGION))
    calls: list[Any] = []

    def listener(call: Any) -> None:
        calls.append(call)
        if rtt:
            time.sleep(rtt)

    factory.add_listener(listener)
    start = time.perf_counter()
    facts = fetch_status(config, factory, config.environments, max_workers=workers)
    report = judge(facts, config.thresholds)
    seconds = time.perf_counter() - start
    return Run(scale, mode, workers, rtt, len(calls), seconds, report.verdict.value, len(facts.targets))


def render_seconds(config: Any) -> float:
    """Wall time of judging and rendering the status table (what the CLI adds to the fetch)."""
    from rich.console import Console

    from replctl.aws import AwsSettings, SessionFactory
    from replctl.status.render import status_tables
    from replctl.status.fetch import fetch_status
    from replctl.status.judge import judge

    facts = fetch_status(config, SessionFactory(AwsSettings(region=REGION)), config.environments)
    console = Console(file=io.StringIO(), width=160, no_color=True)
    start = time.perf_counter()
    console.print(status_tables(judge(facts, config.thresholds)))
    return time.perf_counter() - start


def run(workdir: Path, *, default_workers: int | None = None) -> Section:
    import inspect

    from replctl.status.fetch import fetch_status

    workers = default_workers or inspect.signature(fetch_status).parameters["max_workers"].default
    section = Section("status", "2. `replctl status` fan-out: concurrent vs sequential")
    runs: list[Run] = []
    seed_seconds: dict[str, float] = {}
    render: dict[str, float] = {}
    for per_env in (1, 20):
        scale = f"3 × {per_env} account{'s' if per_env > 1 else ''}"
        start = time.perf_counter()
        with _estate(workdir, per_env) as config:
            seed_seconds[scale] = time.perf_counter() - start
            if per_env == 1:  # first use of the status modules in this process: not part of a run
                measure(config, workers=workers, rtt=0, scale=scale, mode="warm-up")
            for rtt in (0.0, MODELED_RTT_SECONDS):
                for mode, n in (("sequential", 1), ("concurrent", workers)):
                    runs.append(measure(config, workers=n, rtt=rtt, scale=scale, mode=mode))
            render[scale] = render_seconds(config)

    table = Table("status fetch + judge (fresh session factory per run, as one CLI run)",
                  ("estate", "network", "mode", "workers", "calls", "wall", "concurrent speed-up", "verdict"))
    by = {(r.scale, r.rtt, r.mode): r for r in runs}
    for r in runs:
        seq = by[(r.scale, r.rtt, "sequential")]
        speedup = fmt_ratio(ratio(seq.seconds, r.seconds)) if r.mode == "concurrent" else ""
        network = f"modeled RTT {r.rtt * 1000:.0f} ms" if r.rtt else "none (moto in-process)"
        table.add(r.scale, network, r.mode, r.workers, r.calls, fmt_seconds(r.seconds), speedup, r.verdict)
    section.tables.append(table)
    extra = Table("around the fetch", ("estate", "seeding moto (setup, not status)", "render the status table"))
    for scale in seed_seconds:
        extra.add(scale, fmt_seconds(seed_seconds[scale]), fmt_seconds(render[scale]))
    section.tables.append(extra)

    big = [r for r in runs if r.scale.endswith("20 accounts") and r.rtt]
    small = [r for r in runs if r.scale.endswith("1 account") and r.rtt]
    seq60, con60 = big
    seq3, con3 = small
    section.headline += [
        ("status: 3 environments, calls / wall concurrent (modeled RTT)", f"{con3.calls} / {fmt_seconds(con3.seconds)}"),
        ("status: 3 × 20 accounts, calls / wall concurrent (modeled RTT)", f"{con60.calls} / {fmt_seconds(con60.seconds)}"),
        ("status: 3 × 20 accounts, sequential ÷ concurrent (modeled RTT)",
         fmt_ratio(ratio(seq60.seconds, con60.seconds))),
    ]
    per_target = (con60.calls - 1) / con60.targets
    section.budgets += [
        Budget("status: every run judged the seeded estate healthy", "healthy",
               ", ".join(sorted({r.verdict for r in runs})), all(r.verdict == "healthy" for r in runs)),
        Budget("status: calls per account-region (3 × 20)", "≤ 11", f"{per_target:.1f}", per_target <= 11),
        Budget("status: concurrent beats sequential at 3 × 20 accounts (modeled RTT)", "> 1×",
               fmt_ratio(ratio(seq60.seconds, con60.seconds)), con60.seconds < seq60.seconds),
    ]
    section.notes.append(
        f"Calls per account-region: AssumeRole (observer role), GetBucketReplication, 2 × Query, GetItem, "
        f"1 × GetMetricData, 4 × GetQueueAttributes, DescribeAlarms; plus one ListStackInstances per run. "
        f"Modeled RTT = {MODELED_RTT_SECONDS * 1000:.0f} ms slept before each call.")
    return section


def probe(per_environment: int, rtts: list[float], workers: int | None = None) -> list[dict[str, Any]]:
    """`status` at each modeled RTT, with `workers` readers (default: the importable replctl's default)."""
    import inspect
    import tempfile

    fetch_status, _, _ = status_api()

    workers = workers or inspect.signature(fetch_status).parameters["max_workers"].default
    out = []
    with tempfile.TemporaryDirectory() as tmp, _estate(Path(tmp), per_environment) as config:
        for rtt in rtts:
            r = measure(config, workers=workers, rtt=rtt, scale=f"3 × {per_environment}", mode="default")
            out.append({"rtt": rtt, "workers": workers, "calls": r.calls, "seconds": r.seconds,
                        "verdict": r.verdict})
    return out


if __name__ == "__main__":  # used by `python -m bench --compare`, against another revision's replctl
    import argparse

    from bench.env import use_fake_aws

    parser = argparse.ArgumentParser(description="status fan-out with the importable replctl")
    parser.add_argument("--per-env", type=int, default=20)
    parser.add_argument("--rtt", type=float, action="append", default=[])
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    use_fake_aws()
    print(json.dumps(probe(args.per_env, args.rtt or [MODELED_RTT_SECONDS], args.workers)))
