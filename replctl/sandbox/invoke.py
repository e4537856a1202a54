"""Run a function's real handler in-process against the sandbox, as `sam local invoke` would.

moto cannot execute Lambda code without Docker (and a stream event-source mapping would drain
the table's stream into nowhere), so the sandbox plays the part of the Lambda service: it reads
the deployed function's configuration (its environment variables), takes credentials in the
function's account, imports the handler from `lambda/` in a clean module namespace, calls it
with a Lambda-shaped context, and delivers the Embedded Metric Format lines the handler prints
to the sandbox's CloudWatch, so `status` shows what the real code measured.

Where events come from: the table's stream (`--kind stream`, the event source mapping played
here), a schedule (`schedule`, `validation`: the two schedule rules' events), or the function's
asynchronous invocation queue (`queued`: what EventBridge routed to it in the emulator — Parameter
Store and CloudFormation changes; see `replctl.sandbox.asyncinvoke`).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from replctl.aws import SessionFactory
from replctl.config import Config
from replctl.errors import ConfigError, SandboxError
from replctl.resources import bundle, functions_dir
from replctl.sandbox.asyncinvoke import FileQueue
from replctl.sandbox.state import state_dir

#: CLI name -> (folder under lambda/, handler module)
FUNCTIONS = {
    "replication-monitor": ("replication_monitor", "replication_monitor"),
    "config-validator": ("config_validator", "config_validator"),
    "stream-processor": ("stream_processor", "stream_processor"),
}


@dataclass
class FakeContext:
    """The parts of the Lambda context object handlers use."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    deadline: float
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "sandbox"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def function_role_arn(config: Config, account: str, function: str) -> str:
    # In the sandbox any role can be assumed; acting "as the function" means acting in its account.
    return f"arn:aws:iam::{account}:role/replctl/{config.parameters.get('ResourcePrefix', 'replctl')}-{function}"


@contextlib.contextmanager
def environ(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of a block, then restore them."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def load_handlers(functions: list[str], lambda_dir: Path | None = None) -> dict[str, Callable[[Any, Any], Any]]:
    """Import the handlers fresh from `lambda_dir` (default: the bundled functions): lazily-created
    clients must not outlive this invocation."""
    import importlib

    lambda_dir = lambda_dir or bundle().functions
    for name in list(sys.modules):
        if name == "replshared" or name.startswith("replshared.") or name in _lambda_module_names(lambda_dir):
            del sys.modules[name]
    paths = [str(lambda_dir / FUNCTIONS[f][0]) for f in functions] + [str(lambda_dir / "shared")]
    for p in reversed(paths):
        if p in sys.path:
            sys.path.remove(p)
        sys.path.insert(0, p)
    return {f: importlib.import_module(FUNCTIONS[f][1]).handler for f in functions}


def _lambda_module_names(lambda_dir: Path) -> set[str]:
    names = set()
    for folder, _ in FUNCTIONS.values():
        for f in (lambda_dir / folder).glob("*.py"):
            names.add(f.stem)
    return names


def deliver_emf(cloudwatch: Any, lines: list[str]) -> int:
    """PutMetricData for every EMF line (what CloudWatch Logs does with them in AWS)."""
    sent = 0
    for line in lines:
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        meta = doc.get("_aws") if isinstance(doc, dict) else None
        if not isinstance(meta, dict):
            continue
        ts = meta.get("Timestamp")
        when = datetime.fromtimestamp(ts / 1000, tz=timezone.utc) if isinstance(ts, int | float) else None
        for directive in meta.get("CloudWatchMetrics", []):
            dims_sets = directive.get("Dimensions") or [[]]
            data = []
            for metric in directive.get("Metrics", []):
                value = doc.get(metric["Name"])
                values = value if isinstance(value, list) else [value]
                for dims in dims_sets:
                    for v in values:
                        if not isinstance(v, int | float):
                            continue
                        datum: dict[str, Any] = {
                            "MetricName": metric["Name"], "Value": float(v), "Unit": metric.get("Unit", "None"),
                            "Dimensions": [{"Name": d, "Value": str(doc[d])} for d in dims if d in doc],
                        }
                        if when is not None:
                            datum["Timestamp"] = when
                        data.append(datum)
            for i in range(0, len(data), 20):
                cloudwatch.put_metric_data(Namespace=directive["Namespace"], MetricData=data[i:i + 20])
                sent += len(data[i:i + 20])
    return sent


def publish_lambda_metrics(cloudwatch: Any, function_name: str, *, error: bool, duration_seconds: float) -> None:
    """The AWS/Lambda metrics the Lambda service publishes for every invocation."""
    dims = [{"Name": "FunctionName", "Value": function_name}]
    cloudwatch.put_metric_data(Namespace="AWS/Lambda", MetricData=[
        {"MetricName": "Invocations", "Dimensions": dims, "Unit": "Count", "Value": 1.0},
        {"MetricName": "Errors", "Dimensions": dims, "Unit": "Count", "Value": 1.0 if error else 0.0},
        {"MetricName": "Duration", "Dimensions": dims, "Unit": "Milliseconds", "Value": duration_seconds * 1000},
    ])


# --------------------------------------------------------------------------- built-in events


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def scheduled_event(account: str, region: str, rule: str) -> dict[str, Any]:
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
        "account": account, "time": _now(), "region": region,
        "resources": [f"arn:aws:events:{region}:{account}:rule/{rule}"], "detail": {},
    }


def parameter_change_event(ssm: Any, account: str, region: str, name: str) -> dict[str, Any]:
    """A "Parameter Store Change" event for `name`, as EventBridge would deliver it."""
    try:
        p = ssm.get_parameter(Name=name)["Parameter"]
        operation, ptype = ("Update" if p.get("Version", 1) > 1 else "Create"), p["Type"]
    except Exception as exc:
        if "ParameterNotFound" not in str(exc):
            raise
        operation, ptype = "Delete", "String"
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "Parameter Store Change", "source": "aws.ssm",
        "account": account, "time": _now(), "region": region,
        "resources": [f"arn:aws:ssm:{region}:{account}:parameter{name}"],
        "detail": {"name": name, "type": ptype, "operation": operation},
    }


def stack_status_event(account: str, region: str, stack_id: str) -> dict[str, Any]:
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "CloudFormation Stack Status Change",
        "source": "aws.cloudformation", "account": account, "time": _now(), "region": region,
        "resources": [stack_id],
        "detail": {"stack-id": stack_id, "status-details": {"status": "UPDATE_COMPLETE", "status-reason": ""}},
    }


def _epoch(value: Any) -> Any:
    return value.timestamp() if isinstance(value, datetime) else value


class StreamReader:
    """Reads a table's new stream records as a Lambda DynamoDB event, resuming where the last
    read (by any invocation: the cursor is a file) ended. Clients and the stream ARN are looked
    up once, so the mapping played beside the monitor polls cheaply."""

    def __init__(self, session: Any, endpoint: str, region: str, table: str, *, cursor_file: Path) -> None:
        self.ddb = session.client("dynamodb", region_name=region, endpoint_url=endpoint)
        self.streams = session.client("dynamodbstreams", region_name=region, endpoint_url=endpoint)
        self.table, self.cursor_file = table, cursor_file
        self._arn: str | None = None

    def arn(self) -> str:
        if self._arn is None:
            arn = self.ddb.describe_table(TableName=self.table)["Table"].get("LatestStreamArn")
            if not arn:
                raise SandboxError(f"table {self.table} has no stream")
            self._arn = str(arn)
        return self._arn

    def batch(self, limit: int = 100) -> dict[str, Any]:
        arn = self.arn()
        cursors: dict[str, str] = json.loads(self.cursor_file.read_text()) if self.cursor_file.exists() else {}
        records: list[dict[str, Any]] = []
        for shard in self.streams.describe_stream(StreamArn=arn)["StreamDescription"].get("Shards", []):
            sid = shard["ShardId"]
            last = cursors.get(f"{arn}/{sid}")
            kwargs = ({"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": last} if last
                      else {"ShardIteratorType": "TRIM_HORIZON"})
            it = self.streams.get_shard_iterator(StreamArn=arn, ShardId=sid, **kwargs)["ShardIterator"]
            for r in self.streams.get_records(ShardIterator=it, Limit=limit).get("Records", []):
                r = dict(r)
                ddbpart = dict(r["dynamodb"])
                ddbpart["ApproximateCreationDateTime"] = _epoch(ddbpart.get("ApproximateCreationDateTime"))
                r["dynamodb"] = ddbpart
                r["eventSourceARN"] = arn
                records.append(r)
                cursors[f"{arn}/{sid}"] = ddbpart["SequenceNumber"]
        self.cursor_file.parent.mkdir(parents=True, exist_ok=True)
        self.cursor_file.write_text(json.dumps(cursors))
        return {"Records": _without_moto_key_only_inserts(records)}


def stream_event(session: Any, endpoint: str, region: str, table: str, *, cursor_file: Path,
                 limit: int = 100) -> dict[str, Any]:
    """The table's new stream records as a Lambda DynamoDB event (resuming where the last read ended)."""
    return StreamReader(session, endpoint, region, table, cursor_file=cursor_file).batch(limit)


def _without_moto_key_only_inserts(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """moto emits an extra keys-only INSERT before the real one when UpdateItem creates an item;
    AWS emits a single INSERT with the full image. Drop the phantom so the batch is AWS-shaped."""
    out = []
    for i, r in enumerate(records):
        ddb = r.get("dynamodb", {})
        image, keys = ddb.get("NewImage"), ddb.get("Keys")
        nxt = records[i + 1].get("dynamodb", {}) if i + 1 < len(records) else {}
        if r.get("eventName") == "INSERT" and image is not None and image == keys and nxt.get("Keys") == keys:
            continue
        out.append(r)
    return out


def has_downstream(variables: dict[str, str]) -> bool:
    """The template's HasDownstream, from the function's environment (docs/contract.md)."""
    order = ("dev", "staging", "prod")
    env = variables.get("ENVIRONMENT", "")
    later = order[order.index(env) + 1:] if env in order else ()
    return any(variables.get(f"REPLICATE_TO_{e.upper()}") == "true" for e in later)


# --------------------------------------------------------------------------- emulated services


class EmulatedServices:
    """What AWS does beside the functions, played locally: S3 replication per the bucket's rules
    (moto stores the rules but never copies an object; replication metrics are published as S3
    would) and the table's stream mapping (new records handed to the stream processor)."""

    def __init__(self, *, s3: Any, cloudwatch: Any, bucket: str, stream_batch: Callable[[], dict[str, Any]],
                 stream_handler: Callable[[Any, Any], Any] | None, context: Any,
                 stream_function: str = "", interval: float = 0.05) -> None:
        self.s3, self.cloudwatch, self.bucket = s3, cloudwatch, bucket
        self.stream_batch, self.stream_handler, self.context = stream_batch, stream_handler, context
        self.interval = interval
        self.stream_function = stream_function
        self.copied: list[str] = []
        self.records = 0
        self.record_failures = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self, *, play_stream: bool) -> None:
        self.replicate_s3()
        if play_stream and self.stream_handler is not None:
            # Apart, so that S3's slower listing never delays the stream mapping (in AWS the
            # two run independently, and the monitor measures how soon each delivers).
            for name, work, every in (("stream", self.play_stream, self.interval),
                                      ("s3", self.replicate_s3, 4 * self.interval)):
                thread = threading.Thread(target=self._loop, args=(work, every), name=f"sandbox-{name}", daemon=True)
                thread.start()
                self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        if self._threads:
            self.play_stream()
        self.replicate_s3()

    def _loop(self, work: Callable[[], None], every: float) -> None:
        while not self._stop.is_set():
            work()
            self._stop.wait(every)

    def play_stream(self) -> None:
        if self.stream_handler is None:
            return
        try:
            batch = self.stream_batch()
            if batch["Records"]:
                self.records += len(batch["Records"])
                started = time.monotonic()
                failed = False
                try:
                    result = self.stream_handler(batch, self.context) or {}
                except Exception:
                    failed, result = True, {}
                    raise
                finally:
                    if self.stream_function:
                        publish_lambda_metrics(self.cloudwatch, self.stream_function, error=failed,
                                               duration_seconds=time.monotonic() - started)
                self.record_failures += len(result.get("batchItemFailures", []))
        except Exception as exc:  # noqa: BLE001 - reported, never fatal to the function run
            self.errors.append(f"stream: {type(exc).__name__}: {exc}")

    def replicate_s3(self) -> None:
        if not self.bucket:
            return
        try:
            rules = self.s3.get_bucket_replication(Bucket=self.bucket)["ReplicationConfiguration"]["Rules"]
        except Exception:  # noqa: BLE001 - no replication configured
            return
        try:
            objects = [o for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
                       for o in page.get("Contents", [])]
            for rule in rules:
                if rule.get("Status") != "Enabled":
                    continue
                dest = rule["Destination"]["Bucket"].split(":::")[-1]
                prefix = (rule.get("Filter") or {}).get("Prefix", "") or rule.get("Prefix", "")
                latencies = []
                for obj in objects:
                    if not obj["Key"].startswith(prefix):
                        continue
                    try:
                        head = self.s3.head_object(Bucket=dest, Key=obj["Key"])
                        if head.get("ETag") == obj.get("ETag"):
                            continue
                    except Exception:  # noqa: BLE001 - not there yet
                        pass
                    body = self.s3.get_object(Bucket=self.bucket, Key=obj["Key"])["Body"].read()
                    self.s3.put_object(Bucket=dest, Key=obj["Key"], Body=body)
                    self.copied.append(f"{dest}/{obj['Key']}")
                    modified = obj.get("LastModified")
                    if isinstance(modified, datetime):
                        latencies.append(max(0.0, (datetime.now(timezone.utc) - modified).total_seconds()))
                dims = [{"Name": "SourceBucket", "Value": self.bucket}, {"Name": "DestinationBucket", "Value": dest},
                        {"Name": "RuleId", "Value": rule.get("ID", "")}]
                self.cloudwatch.put_metric_data(Namespace="AWS/S3", MetricData=[
                    {"MetricName": "ReplicationLatency", "Dimensions": dims, "Unit": "Seconds",
                     "Value": max(latencies, default=0.0)},
                    {"MetricName": "OperationsPendingReplication", "Dimensions": dims, "Unit": "Count", "Value": 0.0},
                    {"MetricName": "OperationsFailedReplication", "Dimensions": dims, "Unit": "Count", "Value": 0.0},
                ])
        except Exception as exc:  # noqa: BLE001 - reported, never fatal to the function run
            self.errors.append(f"s3: {type(exc).__name__}: {exc}")

    def summary(self) -> str:
        """What was played beside the function, only where something happened ('' otherwise)."""
        parts = ([f"S3 replicated {len(self.copied)} object(s)"] if self.copied else []) + (
            [f"the stream mapping handed {self.records} record(s) to the stream processor"] if self.records else []) + (
            [f"{len(self.errors)} emulation error(s): {'; '.join(self.errors)}"] if self.errors else [])
        return "; ".join(parts)

    def report(self) -> dict[str, Any]:
        return {"s3_objects_replicated": self.copied, "stream_records": self.records,
                "stream_record_failures": self.record_failures, "errors": self.errors}


# --------------------------------------------------------------------------- invoke

#: The built-in events, by function when --kind is not given.
DEFAULT_KIND = {"replication-monitor": "schedule", "config-validator": "validation", "stream-processor": "stream"}
KINDS = ("schedule", "validation", "ssm-change", "stream", "queued")


@dataclass(frozen=True)
class Deployed:
    """A function as deployed in one environment, and the identity it runs with."""

    function: str  # the CLI's name (replication-monitor, ...)
    environment: str
    name: str  # the deployed function's name
    arn: str
    account: str
    region: str
    role: str
    prefix: str
    endpoint: str
    variables: dict[str, str]
    memory: int
    timeout: float

    @property
    def table(self) -> str:
        return self.variables.get("TABLE_NAME", "replctl-metadata")


def deployed_function(config: Config, factory: SessionFactory, function: str, env_name: str) -> Deployed:
    """Read the deployed function's configuration (environment variables, memory, timeout)."""
    if function not in FUNCTIONS:
        raise ConfigError(f"unknown function '{function}' (valid: {', '.join(FUNCTIONS)})")
    env = config.environment(env_name)
    account, region = env.account_id, env.regions[0]
    endpoint = factory.settings.endpoint_url
    if not endpoint:
        raise SandboxError("sandbox invoke needs the sandbox endpoint", hint="run with --sandbox")
    prefix = config.parameters.get("ResourcePrefix", "replctl")
    name = f"{prefix}-{function}"
    role = function_role_arn(config, account, function)
    try:
        fn = factory.client("lambda", region=region, account=account, role_arn=role).get_function_configuration(
            FunctionName=name)
    except Exception as exc:
        raise SandboxError(f"function {name} is not deployed in {env_name} ({account})",
                           hint="run `replctl --sandbox deploy --yes` first") from exc
    variables = dict(fn.get("Environment", {}).get("Variables", {}))
    variables.setdefault("TABLE_NAME", config.parameters.get("DynamoDBTableName", "replctl-metadata"))
    return Deployed(function=function, environment=env_name, name=name, arn=fn["FunctionArn"], account=account,
                    region=region, role=role, prefix=prefix, endpoint=endpoint, variables=variables,
                    memory=int(fn.get("MemorySize", 256)), timeout=float(fn.get("Timeout", 60)))


def built_in_events(factory: SessionFactory, d: Deployed, kind: str, name: str | None,
                    log: Callable[[str], None]) -> list[Any]:
    """The events of a built-in --kind (one per invocation)."""
    match kind:
        case "schedule":
            return [scheduled_event(d.account, d.region, f"{d.prefix}-{d.environment}-heartbeat")]
        case "validation":
            return [scheduled_event(d.account, d.region, f"{d.prefix}-{d.environment}-validation-sweep")]
        case "ssm-change":
            if not name:
                raise ConfigError("--kind ssm-change needs --name /app/<env>/config/<key>")
            ssm = factory.client("ssm", region=d.region, account=d.account, role_arn=d.role)
            return [parameter_change_event(ssm, d.account, d.region, name)]
        case "stream":
            event = stream_event(factory.session(d.account, d.role), d.endpoint, d.region, d.table,
                                 cursor_file=_stream_cursor(d.environment))
            if not event["Records"]:
                log(f"no new stream records in {d.environment}'s table")
            return [event]
        case "queued":
            queued = FileQueue(state_dir()).take(d.account, d.region, d.name)
            if not queued:
                log(f"no events queued for {d.name} in {d.environment}: no rule routed an event to it")
            return [q.event for q in queued]
        case other:
            raise ConfigError(f"unknown --kind '{other}' (valid: {', '.join(KINDS)})")


def _stream_cursor(env_name: str) -> Path:
    return state_dir() / "stream-cursors" / f"{env_name}.json"


def invoke(config: Config, factory: SessionFactory, function: str, env_name: str, *,
           event: Any = None, kind: str | None = None, name: str | None = None,
           log: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    """Run `function` of environment `env_name` in-process; returns its response and what was delivered.

    `--kind queued` runs the handler once per event waiting in the function's asynchronous
    invocation queue (what EventBridge routed to it) and returns every invocation.
    """
    d = deployed_function(config, factory, function, env_name)
    kind = None if event is not None else (kind or DEFAULT_KIND[function])
    events = [event] if event is not None else built_in_events(factory, d, kind or "", name, log)
    # The handler code the estate deploys: its ejected copies, else the bundled functions.
    code = functions_dir(Path(config.path).resolve().parent)
    results = [run_handler(factory, d, e, kind=kind, log=log, lambda_dir=code) for e in events]
    if kind != "queued":
        return results[0]
    errors = [r["error"] for r in results if r["error"]]
    return {"function": d.name, "environment": env_name, "account": d.account, "region": d.region,
            "event_kind": kind, "queued": len(results), "invocations": results,
            "response": [r["response"] for r in results], "error": errors[0] if errors else None}


def run_handler(factory: SessionFactory, d: Deployed, event: Any, *, kind: str | None,
                log: Callable[[str], None], lambda_dir: Path | None = None) -> dict[str, Any]:
    """One invocation of the real handler, with what AWS runs beside it, and its metrics delivered."""
    creds = factory.session(d.account, d.role).get_credentials().get_frozen_credentials()
    session = factory.session(d.account, d.role)
    context = FakeContext(
        function_name=d.name, invoked_function_arn=d.arn, memory_limit_in_mb=d.memory,
        aws_request_id=str(uuid.uuid4()), deadline=time.monotonic() + d.timeout, log_group_name=f"/aws/lambda/{d.name}",
    )
    lambda_env = {
        **d.variables,
        "AWS_ACCESS_KEY_ID": creds.access_key, "AWS_SECRET_ACCESS_KEY": creds.secret_key,
        "AWS_SESSION_TOKEN": creds.token or "", "AWS_REGION": d.region, "AWS_DEFAULT_REGION": d.region,
        "AWS_ENDPOINT_URL": d.endpoint, "AWS_LAMBDA_FUNCTION_NAME": d.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(d.memory), "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    }
    captured = io.StringIO()
    error: str | None = None
    response: Any = None
    started = time.monotonic()
    # What AWS runs beside the function while it works: S3 replication, and (while the monitor's
    # heartbeat run waits for its heartbeat downstream) the table's stream mapping — which the
    # template creates only where the environment replicates downstream.
    play_stream = d.function == "replication-monitor" and _scheduled(event) and has_downstream(d.variables)
    reader = StreamReader(session, d.endpoint, d.region, d.table,
                          cursor_file=_stream_cursor(d.environment)) if play_stream else None
    with environ(lambda_env), contextlib.redirect_stdout(captured):
        handlers = load_handlers(sorted({d.function, "stream-processor"}), lambda_dir)
        services = EmulatedServices(
            s3=factory.client("s3", region=d.region, account=d.account, role_arn=d.role),
            cloudwatch=factory.client("cloudwatch", region=d.region, account=d.account, role_arn=d.role),
            bucket=d.variables.get("BUCKET_NAME", ""),
            stream_batch=reader.batch if reader else lambda: {"Records": []},
            stream_handler=handlers["stream-processor"] if d.function != "stream-processor" else None,
            context=context, stream_function=f"{d.prefix}-stream-processor",
        )
        services.start(play_stream=play_stream)
        try:
            response = handlers[d.function](event, context)
        except Exception as exc:  # the Lambda service would record it and retry / dead-letter
            error = f"{type(exc).__name__}: {exc}"
        finally:
            services.stop()
    elapsed = time.monotonic() - started
    lines = captured.getvalue().splitlines()
    cw = factory.client("cloudwatch", region=d.region, account=d.account, role_arn=d.role)
    publish_lambda_metrics(cw, d.name, error=error is not None, duration_seconds=elapsed)
    delivered = deliver_emf(cw, lines)
    records = len(event["Records"]) if isinstance(event, dict) and isinstance(event.get("Records"), list) else None
    said = [f"{records} record(s)"] if records is not None else []
    said += [f"{delivered} metric value(s) to CloudWatch"] if delivered else []
    said += [services.summary()] if services.summary() else []
    log(f"{d.name} in {d.environment}: {'error: ' + error if error else 'ok'} in {elapsed:.2f} s"
        + "".join(f"; {part}" for part in said))
    return {
        "emulated": services.report(),
        "function": d.name, "environment": d.environment, "account": d.account, "region": d.region,
        "event_kind": kind, "records": records,
        "event": _event_summary(event),
        "response": response, "error": error, "metrics_delivered": delivered,
        "log_lines": [ln for ln in lines if '"_aws"' not in ln],
    }


def _scheduled(event: Any) -> bool:
    return isinstance(event, dict) and event.get("detail-type") == "Scheduled Event"


def _event_summary(event: Any) -> dict[str, Any] | None:
    """What the event was, without its values (detail-type and the detail's identifying fields)."""
    if not isinstance(event, dict) or "detail-type" not in event:
        return None
    detail = event.get("detail") if isinstance(event.get("detail"), dict) else {}
    keep = ("name", "type", "operation", "stack-id", "status-details")
    return {"detail-type": event["detail-type"], **{k: detail[k] for k in keep if k in detail}}
