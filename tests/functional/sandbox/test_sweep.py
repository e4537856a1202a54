"""Every kind of record and event the three functions handle or emit, carried through the sandbox.

One table, one row per kind. A row says what happens in one environment (an application writes
an item, a setting, an object; AWS publishes an event), which deployed functions then run
(`replctl sandbox invoke`: the CLI's own code, run in the test's process to spare an interpreter
start per run; the emulator is the sandbox's server process) and what must hold afterwards in
dev, staging and prod: the effect downstream, and nothing upstream. Every invocation must end
without a handler error, and a stream batch without `batchItemFailures`.

One sandbox and one deploy serve every row (the module's fixture). The estate is
environments.sandbox.yaml with one difference: staging mirrors SecureStrings and dev does not,
so both settings of `MirrorSecureStrings` are exercised by one deployment.

The checks can fail: after a row passes, each of its expectations is taken away again in the
emulator (a copy downstream deleted, a copy upstream planted, the observed event purged) and the
same check must then fail. A row whose effect were removed from the code would fail the same way.
The whole table runs inside one test so that it shares one sandbox however pytest-xdist splits
the suite; every failing row is reported, not just the first.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from tests.conftest import DEV, PROD, REPO, STAGING

pytestmark = pytest.mark.slow

ACCOUNTS = {"dev": DEV, "staging": STAGING, "prod": PROD}
TABLE = "replctl-metadata"
EVENTS = REPO / "tests" / "events"


def bucket(env: str) -> str:
    return f"replctl-config-{env}-{ACCOUNTS[env]}"


# --------------------------------------------------------------------------- the sandbox


def sweep_config(tmp: Path) -> Path:
    """environments.sandbox.yaml, with SecureStrings mirrored from staging (and not from dev)."""
    doc = yaml.safe_load((REPO / "environments.sandbox.yaml").read_text())
    doc["stackset"]["template"] = str(REPO / "cfn" / "replication.yaml")
    staging = next(e for e in doc["environments"] if e["name"] == "staging")
    staging.setdefault("parameters", {})["MirrorSecureStrings"] = "true"
    path = tmp / "environments.sweep.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    # Functions are packaged from the estate file's folder: the checkout's, with its build cache
    # (written atomically, so sharing it with other tests is safe).
    (tmp / "lambda").symlink_to(REPO / "lambda")
    (REPO / ".replctl" / "build").mkdir(parents=True, exist_ok=True)
    (tmp / ".replctl").mkdir()
    (tmp / ".replctl" / "build").symlink_to(REPO / ".replctl" / "build")
    return path


class World:
    """The running sandbox: the CLI as a user runs it, and AWS calls in each account."""

    def __init__(self, env: dict[str, str], config: Path, endpoint: str, state: Path) -> None:
        self.env, self.config, self.endpoint, self.state = env, config, endpoint, state
        self._sessions: dict[str, boto3.Session] = {}
        self.observer = ""

    def replctl(self, *args: str, ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([sys.executable, "-m", "replctl", "--config", str(self.config), *args], cwd=REPO,
                              env=self.env, text=True, capture_output=True, timeout=300, check=False)
        assert proc.returncode in ok, f"replctl {' '.join(args)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc

    def invoke(self, *args: str) -> str:
        """`replctl ARGS` in this process (typer's CliRunner): the CLI's own code, without paying
        an interpreter start per function run. Returns stdout."""
        from typer.testing import CliRunner

        from replctl.cli import app

        result = CliRunner().invoke(app, ["--config", str(self.config), *args],
                                    env={"REPLCTL_SANDBOX_DIR": str(self.state), "COLUMNS": "200"})
        assert result.exit_code == 0, f"replctl {' '.join(args)} -> {result.exit_code}\n{result.output}"
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        return result.stdout

    def client(self, env: str, service: str) -> Any:
        if env not in self._sessions:
            sts = boto3.client("sts", endpoint_url=self.endpoint, region_name="us-east-1")
            c = sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNTS[env]}:role/app-team",
                                RoleSessionName="sweep")["Credentials"]
            self._sessions[env] = boto3.Session(
                aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"],
                aws_session_token=c["SessionToken"], region_name="us-east-1")
        return self._sessions[env].client(service, endpoint_url=self.endpoint)

    # -- metadata table
    def put_item(self, env: str, pk: str, sk: str, origin: str, version: int, **attrs: str) -> None:
        item = {"pk": {"S": pk}, "sk": {"S": sk}, "origin": {"S": origin}, "version": {"N": str(version)},
                **{k: {"S": v} for k, v in attrs.items()}}
        self.client(env, "dynamodb").put_item(TableName=TABLE, Item=item)

    def delete_item(self, env: str, pk: str, sk: str) -> None:
        self.client(env, "dynamodb").delete_item(TableName=TABLE, Key={"pk": {"S": pk}, "sk": {"S": sk}})

    def item(self, env: str, pk: str, sk: str) -> dict[str, Any] | None:
        from boto3.dynamodb.types import TypeDeserializer

        raw = self.client(env, "dynamodb").get_item(TableName=TABLE, Key={"pk": {"S": pk}, "sk": {"S": sk}},
                                                    ConsistentRead=True).get("Item")
        return None if raw is None else {k: TypeDeserializer().deserialize(v) for k, v in raw.items()}

    # -- Parameter Store
    def put_param(self, env: str, name: str, value: str, ptype: str = "String") -> None:
        self.client(env, "ssm").put_parameter(Name=name, Value=value, Type=ptype, Overwrite=True)

    def delete_param(self, env: str, name: str) -> None:
        self.client(env, "ssm").delete_parameter(Name=name)

    def param(self, env: str, name: str) -> tuple[str, str] | None:
        ssm = self.client(env, "ssm")
        try:
            p = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]
        except ssm.exceptions.ParameterNotFound:
            return None
        return p["Value"], p["Type"]

    # -- S3
    def put_object(self, env: str, key: str, body: str) -> None:
        self.client(env, "s3").put_object(Bucket=bucket(env), Key=key, Body=body.encode())

    def delete_object(self, env: str, key: str) -> None:
        self.client(env, "s3").delete_object(Bucket=bucket(env), Key=key)

    def object(self, env: str, key: str) -> str | None:
        s3 = self.client(env, "s3")
        try:
            return s3.get_object(Bucket=bucket(env), Key=key)["Body"].read().decode()
        except s3.exceptions.NoSuchKey:
            return None

    # -- the schema-change events a subscriber in dev receives
    def announced(self) -> list[dict[str, Any]]:
        sqs = self.client("dev", "sqs")
        messages = sqs.receive_message(QueueUrl=self.observer, MaxNumberOfMessages=10, VisibilityTimeout=0,
                                       WaitTimeSeconds=0).get("Messages", [])
        return [json.loads(m["Body"]) for m in messages]

    def subscribe_to_schema_changes(self) -> None:
        """A rule + SQS queue in dev standing for whoever consumes the schema-change events: the
        template itself routes them nowhere (see the schema row)."""
        sqs, events = self.client("dev", "sqs"), self.client("dev", "events")
        self.observer = sqs.create_queue(QueueName="schema-change-subscriber")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=self.observer, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="schema-change-subscriber", EventPattern=json.dumps(
            {"source": ["replctl.metadata"], "detail-type": ["Metadata Schema Change"]}))
        events.put_targets(Rule="schema-change-subscriber", Targets=[{"Id": "q", "Arn": arn}])

    def queued(self, env: str, function: str) -> list[dict[str, Any]]:
        from replctl.sandbox.asyncinvoke import FileQueue

        return [q.event for q in FileQueue(self.state).peek(ACCOUNTS[env], "us-east-1", f"replctl-{function}")]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("sweep")
    state = tmp / "sandbox"
    env = {**os.environ, "REPLCTL_SANDBOX_DIR": str(state), "COLUMNS": "200"}
    w = World(env, sweep_config(tmp), "", state)
    info = json.loads(w.replctl("-o", "json", "sandbox", "start").stdout)
    w.endpoint = info["endpoint"]
    try:
        w.replctl("--sandbox", "deploy", "--yes")
        w.subscribe_to_schema_changes()
        yield w
    finally:
        w.replctl("sandbox", "stop")


# --------------------------------------------------------------------------- expectations


@dataclass(frozen=True)
class Item:
    """The metadata item is in `env`'s table, with these attributes."""

    env: str
    pk: str
    sk: str
    attrs: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class NoItem:
    env: str
    pk: str
    sk: str


@dataclass(frozen=True)
class Param:
    """`name` exists in `env`'s account with this value and type."""

    env: str
    name: str
    value: str
    type: str = "String"


@dataclass(frozen=True)
class NoParam:
    env: str
    name: str


@dataclass(frozen=True)
class Object:
    """`key` is in `env`'s bucket with this body."""

    env: str
    key: str
    body: str


@dataclass(frozen=True)
class NoObject:
    env: str
    key: str


@dataclass(frozen=True)
class Report:
    """`env`'s latest validation report has this trigger and compared these environments."""

    env: str
    trigger: str
    compared: tuple[str, ...]


@dataclass(frozen=True)
class Announced:
    """A subscriber in dev received the schema-change event for this item."""

    pk: str
    sk: str
    change: str
    targets: tuple[str, ...]


Expect = Item | NoItem | Param | NoParam | Object | NoObject | Report | Announced


def check(w: World, e: Expect) -> None:
    match e:
        case Item(env, pk, sk, attrs):
            got = w.item(env, pk, sk)
            assert got is not None, f"{pk}/{sk} is not in {env}'s table"
            assert {k: got.get(k) for k, _ in attrs} == dict(attrs), f"{pk}/{sk} in {env}: {got}"
        case NoItem(env, pk, sk):
            assert w.item(env, pk, sk) is None, f"{pk}/{sk} reached {env}'s table"
        case Param(env, name, value, ptype):
            assert w.param(env, name) == (value, ptype), f"{name} in {env}: {w.param(env, name)}"
        case NoParam(env, name):
            assert w.param(env, name) is None, f"{name} reached {env}"
        case Object(env, key, body):
            assert w.object(env, key) == body, f"s3://{bucket(env)}/{key}: {w.object(env, key)!r}"
        case NoObject(env, key):
            assert w.object(env, key) is None, f"{key} reached {env}'s bucket"
        case Report(env, trigger, compared):
            report = w.item(env, "LOCAL#VALIDATION", "latest")
            assert report is not None, f"no validation report in {env}"
            assert report["trigger"] == trigger, f"{env}'s report was triggered by {report['trigger']}"
            for other in compared:
                assert any(c.startswith(f"table:{other}") for c in report["compared"]), report["compared"]
                assert any(c.startswith(f"bucket:{other}") for c in report["compared"]), report["compared"]
        case Announced(pk, sk, change, targets):
            details = [m["detail"] for m in w.announced() if m.get("source") == "replctl.metadata"]
            mine = [d for d in details if (d["pk"], d["sk"]) == (pk, sk)]
            assert [(d["change"], d["environment"], tuple(d["targets"])) for d in mine] == [
                (change, "dev", targets)], f"schema-change events received: {details}"


def take_away(w: World, e: Expect) -> Callable[[], None]:
    """Remove what `e` observes from the emulator; returns how to put it back."""
    match e:
        case Item(env, pk, sk, _):
            w.delete_item(env, pk, sk)
            return lambda: None
        case NoItem(env, pk, sk):
            w.put_item(env, pk, sk, "planted", 0)  # an origin no function sends on
            return lambda: w.delete_item(env, pk, sk)
        case Param(env, name, _, _):
            w.delete_param(env, name)
            return lambda: None
        case NoParam(env, name):
            w.put_param(env, name, "planted")
            return lambda: w.delete_param(env, name)
        case Object(env, key, _):
            w.delete_object(env, key)
            return lambda: None
        case NoObject(env, key):
            w.put_object(env, key, "planted")
            return lambda: w.delete_object(env, key)
        case Report(env, _, _):
            w.delete_item(env, "LOCAL#VALIDATION", "latest")
            return lambda: None
        case Announced():
            w.client("dev", "sqs").purge_queue(QueueUrl=w.observer)
            return lambda: None
    raise AssertionError(f"no way to take away {e}")


# --------------------------------------------------------------------------- plays and rows


@dataclass(frozen=True)
class Play:
    """One `replctl sandbox invoke` (kind None: the function's default event)."""

    function: str
    env: str
    kind: str | None = None
    event: dict[str, Any] | None = None
    name: str | None = None  # for --kind ssm-change
    delivers: tuple[str, ...] = ()  # for --kind queued: what the queued events must include


def play(w: World, p: Play, tmp: Path) -> dict[str, Any]:
    args = ["--sandbox", "-o", "json", "sandbox", "invoke", p.function, "--env", p.env]
    if p.kind:
        args += ["--kind", p.kind]
    if p.name:
        args += ["--name", p.name]
    if p.event is not None:
        path = tmp / f"event-{time.monotonic_ns()}.json"
        path.write_text(json.dumps(p.event))
        args += ["--event", str(path)]
    result = json.loads(w.invoke(*args))
    assert result["error"] is None, f"{p}: {result['error']}"
    runs = result.get("invocations", [result])
    for run in runs:
        if p.function == "stream-processor":
            assert run["response"] == {"batchItemFailures": []}, f"{p}: {run['response']}"
    seen = [json.dumps(run.get("event")) for run in runs]
    for wanted in p.delivers:
        assert any(wanted in s for s in seen), f"{p}: no queued event with {wanted!r} among {seen}"
    return result


@dataclass(frozen=True)
class Step:
    act: Callable[[World], None]
    plays: tuple[Play, ...]


@dataclass(frozen=True)
class Row:
    kind: str
    steps: tuple[Step, ...]
    expect: tuple[Expect, ...]
    after: Callable[[World], None] = field(default=lambda w: None)  # extra checks of the row's own


def stream(*envs: str) -> tuple[Play, ...]:
    return tuple(Play("stream-processor", env) for env in envs)


def queued(env: str, *delivers: str) -> Play:
    return Play("replication-monitor", env, "queued", delivers=delivers)


def nothing(w: World) -> None:
    return None


def s3_failure_event(key: str) -> dict[str, Any]:
    """The notification S3 sends when replicating `key` from dev's bucket fails (tests/events)."""
    event = json.loads((EVENTS / "s3_replication_failed.json").read_text())
    record = event["Records"][0]
    record["s3"]["bucket"].update(name=bucket("dev"), arn=f"arn:aws:s3:::{bucket('dev')}")
    record["s3"]["object"]["key"] = key
    record["replicationEventData"]["destinationBucket"] = f"arn:aws:s3:::{bucket('prod')}"
    return event


def no_schedule_rule_got_the_schema_event(w: World) -> None:
    # The reported divergence: moto matched the two schedule rules against this PutEvents.
    for function in ("replication-monitor", "config-validator"):
        assert not [e for e in w.queued("dev", function) if e.get("source") == "replctl.metadata"]


D = "/app/dev/config/sweep"
S = "/app/staging/config/sweep"
P = "/app/prod/config/sweep"
BOTH = ("staging", "prod")

ROWS: tuple[Row, ...] = (
    # -- metadata items: the stream processor, one way downstream ---------------------------------
    Row("config item written in dev (INSERT)",
        (Step(lambda w: w.put_item("dev", "CONFIG#checkout", "timeout", "dev", 1, type="CONFIG", value="1500"),
              stream("dev", "staging", "prod")),),
        tuple(Item(env, "CONFIG#checkout", "timeout", (("value", "1500"), ("origin", "dev"))) for env in BOTH)),
    Row("config item changed in dev (MODIFY)",
        (Step(lambda w: w.put_item("dev", "CONFIG#cart", "limit", "dev", 1, type="CONFIG", value="10"), stream("dev")),
         Step(lambda w: w.put_item("dev", "CONFIG#cart", "limit", "dev", 2, type="CONFIG", value="20"), stream("dev"))),
        tuple(Item(env, "CONFIG#cart", "limit", (("value", "20"), ("version", 2))) for env in BOTH)),
    Row("schema item written in dev (and the schema-change event it publishes)",
        (Step(lambda w: w.put_item("dev", "SCHEMA", "orders", "dev", 1, type="SCHEMA"), stream("dev", "staging", "prod")),),
        (*(Item(env, "SCHEMA", "orders", (("type", "SCHEMA"), ("origin", "dev"))) for env in BOTH),
         Announced("SCHEMA", "orders", "UPSERT", BOTH)),
        after=no_schedule_rule_got_the_schema_event),
    Row("heartbeat item written in dev (the monitor's own item, carried by the stream)",
        (Step(lambda w: w.put_item("dev", "HEARTBEAT", "sweep", "dev", 7, written_at="0"), stream("dev")),),
        tuple(Item(env, "HEARTBEAT", "sweep", (("version", 7),)) for env in BOTH)),
    Row("item deleted in dev (REMOVE)",
        (Step(lambda w: w.put_item("dev", "CONFIG#legacy", "flag", "dev", 3, value="on"), stream("dev")),
         Step(lambda w: w.delete_item("dev", "CONFIG#legacy", "flag"), stream("dev"))),
        tuple(NoItem(env, "CONFIG#legacy", "flag") for env in BOTH)),
    Row("item written in staging reaches prod, never dev",
        (Step(lambda w: w.put_item("staging", "CONFIG#staging-only", "x", "staging", 1, value="s"),
              stream("staging", "prod")),),
        (Item("prod", "CONFIG#staging-only", "x", (("origin", "staging"),)), NoItem("dev", "CONFIG#staging-only", "x"))),
    Row("item written in prod reaches nobody",
        (Step(lambda w: w.put_item("prod", "CONFIG#prod-only", "x", "prod", 1, value="p"), stream("prod")),),
        (NoItem("dev", "CONFIG#prod-only", "x"), NoItem("staging", "CONFIG#prod-only", "x"))),
    # -- settings: Parameter Store Change -> EventBridge -> the monitor, mirrored downstream -------
    Row("setting created in dev",
        (Step(lambda w: w.put_param("dev", f"{D}/created", "a"), (queued("dev", '"Create"'),)),),
        tuple(Param(env, f"{D}/created", "a") for env in BOTH)),
    Row("setting updated in dev",
        (Step(lambda w: w.put_param("dev", f"{D}/updated", "v1"), (queued("dev"),)),
         Step(lambda w: w.put_param("dev", f"{D}/updated", "v2"), (queued("dev", '"Update"'),))),
        tuple(Param(env, f"{D}/updated", "v2") for env in BOTH)),
    Row("setting labelled in dev (the label event alone re-syncs mirrors lost downstream)",
        (Step(lambda w: w.put_param("dev", f"{D}/labelled", "v1"), (queued("dev"),)),
         Step(lambda w: [w.delete_param(env, f"{D}/labelled") for env in BOTH], ()),
         Step(lambda w: w.client("dev", "ssm").label_parameter_version(Name=f"{D}/labelled", Labels=["released"]),
              (queued("dev", '"LabelParameterVersion"'),))),
        tuple(Param(env, f"{D}/labelled", "v1") for env in BOTH)),
    Row("setting deleted in dev",
        (Step(lambda w: w.put_param("dev", f"{D}/deleted", "x"), (queued("dev"),)),
         Step(lambda w: w.delete_param("dev", f"{D}/deleted"), (queued("dev", '"Delete"'),))),
        tuple(NoParam(env, f"{D}/deleted") for env in BOTH)),
    Row("SecureString in dev, where mirroring SecureStrings is off (a String beside it is mirrored)",
        (Step(lambda w: (w.put_param("dev", f"{D}/secret", "s3cr3t", "SecureString"),
                         w.put_param("dev", f"{D}/plain", "p")), (queued("dev", '"SecureString"'),)),),
        (*(NoParam(env, f"{D}/secret") for env in BOTH), *(Param(env, f"{D}/plain", "p") for env in BOTH))),
    Row("SecureString in staging, where mirroring SecureStrings is on: prod only, never dev",
        (Step(lambda w: w.put_param("staging", f"{S}/secret", "t0ps3cret", "SecureString"),
              (queued("staging", '"SecureString"'),)),),
        (Param("prod", f"{S}/secret", "t0ps3cret", "SecureString"), NoParam("dev", f"{S}/secret"))),
    Row("setting changed in prod reaches nobody (prod has no parameter-change rule)",
        (Step(lambda w: w.put_param("prod", f"{P}/own", "p"),
              (queued("prod"), Play("replication-monitor", "prod", "ssm-change", name=f"{P}/own"))),),
        (NoParam("dev", f"{P}/own"), NoParam("staging", f"{P}/own"))),
    # -- S3 replication failures: recorded where they happen, never propagated ---------------------
    Row("S3 replication failure notification in dev",
        (Step(nothing, (Play("replication-monitor", "dev", event=s3_failure_event("sweep/failed.json")),
                        *stream("dev"))),),
        (Item("dev", "LOCAL#S3FAILURE", "2024-09-05T21:04:32.527Z#sweep/failed.json",
              (("reason", "DstBucketUnversioned"), ("bucket", bucket("dev")))),
         *(NoItem(env, "LOCAL#S3FAILURE", "2024-09-05T21:04:32.527Z#sweep/failed.json") for env in BOTH))),
    # -- the validator: stack status changes and its schedule ------------------------------------
    Row("stack status change of dev's stack (published by CloudFormation during the deploy)",
        (Step(nothing, (Play("config-validator", "dev", "queued", delivers=('"UPDATE_COMPLETE"',)),)),),
        (Report("dev", "stack:UPDATE_COMPLETE", BOTH),)),
    Row("the validation-sweep schedule in dev",
        (Step(nothing, (Play("config-validator", "dev", "validation"),)),),
        (Report("dev", "schedule", BOTH),)),
    # -- the heartbeat schedule, and S3 replication played beside the monitor ---------------------
    Row("the heartbeat schedule in dev (heartbeat downstream, lag measured)",
        (Step(nothing, (Play("replication-monitor", "dev"),)),),
        (*(Item(env, "HEARTBEAT", "dev", (("origin", "dev"),)) for env in BOTH),
         *(Item("dev", "LOCAL#LAG", env, (("metadata_visible", True),)) for env in BOTH),
         NoItem("staging", "LOCAL#LAG", "staging"))),
    Row("artifact written to dev's bucket (S3 replication)",
        (Step(lambda w: w.put_object("dev", "sweep/dev.json", '{"v": 1}'), (Play("replication-monitor", "dev"),)),),
        tuple(Object(env, "sweep/dev.json", '{"v": 1}') for env in BOTH)),
    Row("artifact written to staging's bucket reaches prod, never dev",
        (Step(lambda w: w.put_object("staging", "sweep/staging.json", "s"), (Play("replication-monitor", "staging"),)),),
        (Object("prod", "sweep/staging.json", "s"), NoObject("dev", "sweep/staging.json"))),
    Row("artifact written to prod's bucket reaches nobody",
        (Step(lambda w: w.put_object("prod", "sweep/prod.json", "p"), (Play("replication-monitor", "prod"),)),),
        (NoObject("dev", "sweep/prod.json"), NoObject("staging", "sweep/prod.json"))),
)


def run_row(w: World, row: Row, tmp: Path) -> None:
    for step in row.steps:
        step.act(w)
        for p in step.plays:
            play(w, p, tmp)
    for e in row.expect:
        check(w, e)
    row.after(w)
    for e in row.expect:
        put_back = take_away(w, e)
        try:
            check(w, e)
        except AssertionError:
            pass
        else:
            raise AssertionError(f"{e} still holds after its effect was taken away: the check proves nothing")
        finally:
            put_back()


def test_every_kind_of_change_reaches_downstream_and_nothing_flows_upstream(world: World, tmp_path: Path) -> None:
    failures = []
    for row in ROWS:
        try:
            run_row(world, row, tmp_path)
        except Exception as exc:  # noqa: BLE001 - every row is reported, whatever broke it
            failures.append(f"{row.kind}: {type(exc).__name__}: {exc}")
    assert not failures, "\n".join(failures)
