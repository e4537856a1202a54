"""Run a function's real handler in-process against the sandbox, as `sam local invoke` would.

moto cannot execute Lambda code without Docker (and a stream event-source mapping would drain
the table's stream into nowhere), so the sandbox plays the part of the Lambda service: it reads
the deployed function's configuration (its environment variables), takes credentials in the
function's account, imports the handler from `lambda/` in a clean module namespace, calls it
with a Lambda-shaped context, and delivers the Embedded Metric Format lines the handler prints
to the sandbox's CloudWatch, so `status` shows what the real code measured.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
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
from replctl.sandbox.state import state_dir

REPO_ROOT = Path(__file__).resolve().parents[2]

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


def _observer_arn(config: Config, account: str) -> str:
    return f"arn:aws:iam::{account}:role/replctl/{config.observer_role_name}"


def function_role_arn(config: Config, account: str, function: str) -> str:
    # In the sandbox any role can be assumed; acting "as the function" means acting in its account.
    return f"arn:aws:iam::{account}:role/replctl/{config.parameters.get('ResourcePrefix', 'replctl')}-{function}"


@contextlib.contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
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


def _load_handler(folder: str, module: str) -> Callable[[Any, Any], Any]:
    """Import the handler fresh: its lazily-created clients must not outlive this invocation."""
    import importlib

    paths = [str(REPO_ROOT / "lambda" / folder), str(REPO_ROOT / "lambda" / "shared")]
    for name in list(sys.modules):
        if name == "replshared" or name.startswith("replshared.") or name in _lambda_module_names():
            del sys.modules[name]
    for p in reversed(paths):
        if p in sys.path:
            sys.path.remove(p)
        sys.path.insert(0, p)
    mod = importlib.import_module(module)
    return mod.handler  # type: ignore[no-any-return]


def _lambda_module_names() -> set[str]:
    names = set()
    for folder, _ in FUNCTIONS.values():
        for f in (REPO_ROOT / "lambda" / folder).glob("*.py"):
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


def stream_event(session: Any, endpoint: str, region: str, table: str, *, cursor_file: Path,
                 limit: int = 100) -> dict[str, Any]:
    """The table's new stream records as a Lambda DynamoDB event (resuming where the last read ended)."""
    ddb = session.client("dynamodb", region_name=region, endpoint_url=endpoint)
    streams = session.client("dynamodbstreams", region_name=region, endpoint_url=endpoint)
    arn = ddb.describe_table(TableName=table)["Table"].get("LatestStreamArn")
    if not arn:
        raise SandboxError(f"table {table} has no stream")
    cursors: dict[str, str] = json.loads(cursor_file.read_text()) if cursor_file.exists() else {}
    records: list[dict[str, Any]] = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"].get("Shards", []):
        sid = shard["ShardId"]
        last = cursors.get(f"{arn}/{sid}")
        kwargs = ({"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": last} if last
                  else {"ShardIteratorType": "TRIM_HORIZON"})
        it = streams.get_shard_iterator(StreamArn=arn, ShardId=sid, **kwargs)["ShardIterator"]
        out = streams.get_records(ShardIterator=it, Limit=limit)
        for r in out.get("Records", []):
            r = dict(r)
            ddbpart = dict(r["dynamodb"])
            ddbpart["ApproximateCreationDateTime"] = _epoch(ddbpart.get("ApproximateCreationDateTime"))
            r["dynamodb"] = ddbpart
            r["eventSourceARN"] = arn
            records.append(r)
            cursors[f"{arn}/{sid}"] = ddbpart["SequenceNumber"]
    cursor_file.parent.mkdir(parents=True, exist_ok=True)
    cursor_file.write_text(json.dumps(cursors))
    return {"Records": records}


# --------------------------------------------------------------------------- invoke


def invoke(config: Config, factory: SessionFactory, function: str, env_name: str, *,
           event: Any = None, kind: str | None = None, name: str | None = None,
           log: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    """Run `function` of environment `env_name` in-process; returns its response and what was delivered."""
    if function not in FUNCTIONS:
        raise ConfigError(f"unknown function '{function}' (valid: {', '.join(FUNCTIONS)})")
    env = config.environment(env_name)
    account, region = env.account_id, env.regions[0]
    endpoint = factory.settings.endpoint_url
    if not endpoint:
        raise SandboxError("sandbox invoke needs the sandbox endpoint", hint="run with --sandbox")
    prefix = config.parameters.get("ResourcePrefix", "replctl")
    fn_name = f"{prefix}-{function}"
    role = function_role_arn(config, account, function)
    lam = factory.client("lambda", region=region, account=account, role_arn=role)
    try:
        fn_config = lam.get_function_configuration(FunctionName=fn_name)
    except Exception as exc:
        raise SandboxError(f"function {fn_name} is not deployed in {env_name} ({account})",
                           hint="run `replctl --sandbox deploy --yes` first") from exc
    variables = dict(fn_config.get("Environment", {}).get("Variables", {}))
    creds = factory.session(account, role).get_credentials().get_frozen_credentials()
    session = factory.session(account, role)

    if event is None:
        match kind or {"replication-monitor": "schedule", "config-validator": "validation",
                       "stream-processor": "stream"}[function]:
            case "schedule":
                event = scheduled_event(account, region, f"{prefix}-{env_name}-heartbeat")
            case "validation":
                event = scheduled_event(account, region, f"{prefix}-{env_name}-validation")
            case "ssm-change":
                if not name:
                    raise ConfigError("--kind ssm-change needs --name /app/<env>/config/<key>")
                ssm = factory.client("ssm", region=region, account=account, role_arn=role)
                event = parameter_change_event(ssm, account, region, name)
            case "stream":
                table = variables.get("TABLE_NAME") or config.parameters.get("DynamoDBTableName", "replctl-metadata")
                event = stream_event(session, endpoint, region, table,
                                     cursor_file=state_dir() / "stream-cursors" / f"{env_name}.json")
            case other:
                raise ConfigError(f"unknown --kind '{other}' (valid: schedule, ssm-change, stream, validation)")

    folder, module = FUNCTIONS[function]
    context = FakeContext(
        function_name=fn_name, invoked_function_arn=fn_config["FunctionArn"],
        memory_limit_in_mb=int(fn_config.get("MemorySize", 256)), aws_request_id=str(uuid.uuid4()),
        deadline=time.monotonic() + float(fn_config.get("Timeout", 60)),
        log_group_name=f"/aws/lambda/{fn_name}",
    )
    lambda_env = {
        **variables,
        "AWS_ACCESS_KEY_ID": creds.access_key, "AWS_SECRET_ACCESS_KEY": creds.secret_key,
        "AWS_SESSION_TOKEN": creds.token or "", "AWS_REGION": region, "AWS_DEFAULT_REGION": region,
        "AWS_ENDPOINT_URL": endpoint, "AWS_LAMBDA_FUNCTION_NAME": fn_name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(context.memory_limit_in_mb),
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    }
    captured = io.StringIO()
    error: str | None = None
    response: Any = None
    started = time.monotonic()
    with _environ(lambda_env), contextlib.redirect_stdout(captured):
        handler = _load_handler(folder, module)
        try:
            response = handler(event, context)
        except Exception as exc:  # the Lambda service would record it and retry / dead-letter
            error = f"{type(exc).__name__}: {exc}"
    elapsed = time.monotonic() - started
    lines = captured.getvalue().splitlines()
    cw = factory.client("cloudwatch", region=region, account=account, role_arn=role)
    delivered = deliver_emf(cw, lines)
    log(f"{fn_name} in {env_name}: {'error: ' + error if error else 'ok'} in {elapsed:.2f} s; "
        f"{delivered} metric values delivered to CloudWatch")
    return {
        "function": fn_name, "environment": env_name, "account": account, "region": region,
        "event_kind": kind, "records": len(event.get("Records", [])) if isinstance(event, dict) else None,
        "response": response, "error": error, "metrics_delivered": delivered,
        "log_lines": [ln for ln in lines if '"_aws"' not in ln],
    }
