"""I/O for `status`: read every selected account-region, concurrently, into `StatusFacts`.

Per account-region (through the observer role the bootstrap template creates in each account):
S3 GetBucketReplication on the environment's bucket (the rule ids are read, never guessed);
the metadata table's HEARTBEAT, LOCAL#LAG and LOCAL#VALIDATION/latest items; ONE CloudWatch
GetMetricData call holding every metric of that account-region (S3 replication metrics per
rule, the lag metrics per target, Lambda Errors per function — split only above the API's 500
queries per call); the DLQs' depth (GetQueueAttributes); and the environment's alarms. In the admin account,
ListStackInstances on the stack set. Account-regions run in parallel threads.

Nothing here judges. A read that fails is recorded as a `Problem` on that signal (which the
judge turns into `unknown`), a resource that does not exist is recorded as missing; only
programming errors propagate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from replctl.aws import SessionFactory, error_code, translate
from replctl.config import Config, Environment
from replctl.errors import ReplctlError
from replctl.status.model import (
    AlarmFact,
    Difference,
    FUNCTIONS,
    FunctionFact,
    HeartbeatFact,
    InstanceFact,
    LagFact,
    METRICS_NAMESPACE,
    Names,
    Problem,
    QueueFact,
    RuleFact,
    Series,
    StatusFacts,
    TargetFacts,
    ValidationFact,
    alarm_state,
    drift_status,
    names_for,
)
from replctl.statuses import DetailedStatus, InstanceStatus, parse

#: GetMetricData accepts at most 500 MetricDataQuery structures per call (CloudWatch API
#: reference, GetMetricData: "as many as 500 different metrics in a single request").
MAX_QUERIES_PER_CALL = 500
#: Every metric read here is published per minute (S3 replication metrics, Lambda, EMF).
PERIOD_SECONDS = 60

def _errors() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return (ClientError, BotoCoreError, ReplctlError)


def _message(exc: BaseException) -> str:
    return translate(exc).message


#: Error codes that mean the caller's own credentials are unusable (not a missing permission).
_CREDENTIAL_CODES = frozenset({"ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId",
                               "UnrecognizedClientException", "SignatureDoesNotMatch", "InvalidAccessKeyId"})


def caller_unusable(exc: BaseException) -> bool:
    """True when the admin identity itself cannot call AWS: nothing else could be read either, so
    `status` stops with the credentials error (exit 3) instead of a wall of "unknown"."""
    from botocore import exceptions as bx

    fatal = (bx.NoCredentialsError, bx.PartialCredentialsError, bx.NoRegionError, bx.ProfileNotFound,
             bx.TokenRetrievalError, bx.EndpointConnectionError)
    return isinstance(exc, fatal) or error_code(exc) in _CREDENTIAL_CODES


# --------------------------------------------------------------------------- metric queries


@dataclass(frozen=True)
class MetricQuery:
    """One MetricStat query and what its result means (`key`)."""

    key: tuple[str, ...]
    namespace: str
    metric: str
    dimensions: tuple[tuple[str, str], ...]
    stat: str

    def to_api(self, query_id: str) -> dict[str, Any]:
        return {
            "Id": query_id,
            "MetricStat": {
                "Metric": {
                    "Namespace": self.namespace,
                    "MetricName": self.metric,
                    "Dimensions": [{"Name": n, "Value": v} for n, v in self.dimensions],
                },
                "Period": PERIOD_SECONDS,
                "Stat": self.stat,
            },
            "ReturnData": True,
        }


def metric_queries(names: Names, environment: str, bucket: str, rules: Sequence[RuleFact],
                   lag_targets: Sequence[str]) -> list[MetricQuery]:
    """Every metric status reads in one account-region, in a stable order."""
    queries: list[MetricQuery] = []
    for rule in rules:
        # AWS/S3 replication metrics are per rule: SourceBucket, DestinationBucket, RuleId.
        dims = (("SourceBucket", bucket), ("DestinationBucket", rule.destination_bucket), ("RuleId", rule.rule_id))
        queries += [
            MetricQuery(("rule", rule.rule_id, "latency"), "AWS/S3", "ReplicationLatency", dims, "Maximum"),
            MetricQuery(("rule", rule.rule_id, "pending"), "AWS/S3", "OperationsPendingReplication", dims, "Maximum"),
            MetricQuery(("rule", rule.rule_id, "failed"), "AWS/S3", "OperationsFailedReplication", dims, "Sum"),
        ]
    for target in lag_targets:
        dims = (("Environment", environment), ("Target", target))
        queries += [
            MetricQuery(("lag", target, "metadata"), METRICS_NAMESPACE, "MetadataReplicationLag", dims, "Maximum"),
            MetricQuery(("lag", target, "s3"), METRICS_NAMESPACE, "S3CanaryLag", dims, "Maximum"),
        ]
    for short in FUNCTIONS:
        queries.append(MetricQuery(("function", short, "errors"), "AWS/Lambda", "Errors",
                                   (("FunctionName", names.function(short)),), "Sum"))
    return queries


def get_metric_data(cloudwatch: Any, queries: Sequence[MetricQuery], start: datetime,
                    end: datetime) -> dict[tuple[str, ...], Series]:
    """All `queries` in as few GetMetricData calls as the API allows (one up to 500 queries)."""
    out: dict[tuple[str, ...], list[tuple[datetime, float]]] = {q.key: [] for q in queries}
    for offset in range(0, len(queries), MAX_QUERIES_PER_CALL):
        chunk = queries[offset: offset + MAX_QUERIES_PER_CALL]
        by_id = {f"q{offset + i}": q for i, q in enumerate(chunk)}
        kwargs: dict[str, Any] = {
            "MetricDataQueries": [q.to_api(i) for i, q in by_id.items()],
            "StartTime": start,
            "EndTime": end,
            "ScanBy": "TimestampDescending",
        }
        while True:  # NextToken only when the datapoints exceed one page (100,800)
            page = cloudwatch.get_metric_data(**kwargs)
            for result in page.get("MetricDataResults", []):
                q = by_id.get(result["Id"])
                if q is not None:
                    out[q.key].extend(zip(result.get("Timestamps", []), result.get("Values", []), strict=False))
            token = page.get("NextToken")
            if not token:
                break
            kwargs["NextToken"] = token
    stats = {q.key: q.stat for q in queries}
    return {k: Series(stats[k], tuple(sorted(((_utc(t), float(v)) for t, v in pts), key=lambda p: p[0],
                                            reverse=True)))
            for k, pts in out.items()}


# --------------------------------------------------------------------------- item decoding


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def when(value: Any) -> datetime | None:
    """A time from an item attribute: epoch seconds (number) or ISO 8601 text."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float | Decimal):
        return datetime.fromtimestamp(float(value), tz=timezone.utc)
    if isinstance(value, str):
        text = value.strip()
        try:
            return datetime.fromtimestamp(float(text), tz=timezone.utc)
        except ValueError:
            pass
        try:
            return _utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
        except ValueError:
            return None
    return None


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeDeserializer

    d = TypeDeserializer()
    return {k: d.deserialize(v) for k, v in item.items()}


def lag_fact(item: dict[str, Any]) -> LagFact:
    """A LOCAL#LAG item (plain values) as a LagFact."""
    return LagFact(
        target=str(item.get("sk", "")),
        metadata_lag_seconds=_num(item.get("metadata_lag_seconds")),
        s3_lag_seconds=_num(item.get("s3_lag_seconds")),
        metadata_visible=_bool(item.get("metadata_visible")),
        s3_visible=_bool(item.get("s3_visible")),
        measured_at=when(item.get("measured_at")),
    )


def heartbeat_fact(item: dict[str, Any]) -> HeartbeatFact:
    version = _num(item.get("version"))
    return HeartbeatFact(origin=str(item.get("sk", "")), written_at=when(item.get("written_at")),
                         version=int(version) if version is not None else None)


def validation_fact(item: dict[str, Any]) -> ValidationFact:
    diffs = []
    for d in item.get("differences") or []:
        if isinstance(d, dict):
            diffs.append(Difference(str(d.get("kind", "")), str(d.get("environment", "")), str(d.get("detail", ""))))
        else:
            diffs.append(Difference("", "", str(d)))
    return ValidationFact(
        status=str(item.get("status", "")),
        generated_at=when(item.get("generated_at")),
        differences=tuple(diffs),
        compared=tuple(str(c) for c in item.get("compared") or []),
        trigger=str(item["trigger"]) if item.get("trigger") is not None else None,
    )


# --------------------------------------------------------------------------- per signal


def read_rules(s3: Any, bucket: str, names: Names) -> tuple[RuleFact, ...]:
    """The bucket's replication rules (empty when it has no replication configuration)."""
    try:
        config = s3.get_bucket_replication(Bucket=bucket)["ReplicationConfiguration"]
    except Exception as exc:
        if error_code(exc) == "ReplicationConfigurationNotFoundError":
            return ()
        raise
    rules = []
    for r in config.get("Rules", []):
        dest = r.get("Destination", {})
        arn = str(dest.get("Bucket", ""))
        rules.append(RuleFact(
            rule_id=str(r.get("ID", "")),
            destination_bucket=arn.rsplit(":", 1)[-1],
            target=names.environment_of_bucket(arn),
            enabled=r.get("Status") == "Enabled",
            metrics_enabled=dest.get("Metrics", {}).get("Status") == "Enabled",
        ))
    return tuple(sorted(rules, key=lambda r: (r.target or "~", r.rule_id)))


def read_items(dynamodb: Any, table: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any] | None]:
    """(HEARTBEAT items, LOCAL#LAG items, LOCAL#VALIDATION/latest or None), as plain values."""

    def query(pk: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}},
        }
        while True:
            page = dynamodb.query(**kwargs)
            items += [_plain(i) for i in page.get("Items", [])]
            if not page.get("LastEvaluatedKey"):
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    heartbeats = query("HEARTBEAT")
    lags = query("LOCAL#LAG")
    got = dynamodb.get_item(TableName=table, Key={"pk": {"S": "LOCAL#VALIDATION"}, "sk": {"S": "latest"}})
    validation = _plain(got["Item"]) if "Item" in got else None
    return heartbeats, lags, validation


def queue_url(account: str, region: str, name: str) -> str:
    """The queue's URL, built rather than looked up: the observer role may only GetQueueAttributes."""
    return f"https://sqs.{region}.amazonaws.com/{account}/{name}"


def read_queue(sqs: Any, account: str, region: str, name: str) -> QueueFact | None:
    """Depth of one DLQ; None when the queue does not exist."""
    # The queue attribute is ApproximateNumberOfMessages ("messages available for retrieval");
    # ApproximateNumberOfMessagesVisible is the CloudWatch metric of the same count, not an
    # attribute name (SQS API reference, GetQueueAttributes).
    try:
        attrs = sqs.get_queue_attributes(QueueUrl=queue_url(account, region, name),
                                         AttributeNames=["ApproximateNumberOfMessages"])
    except Exception as exc:
        if error_code(exc) in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
            return None
        raise
    return QueueFact(name, int(attrs.get("Attributes", {}).get("ApproximateNumberOfMessages", 0)))


#: Both kinds, always. "If you omit this parameter, only metric alarms are returned" (CloudWatch API
#: reference, DescribeAlarms, AlarmTypes); asking for composite alarms needs cloudwatch:DescribeAlarms
#: on "*", which the observer role grants.
ALARM_TYPES = ("CompositeAlarm", "MetricAlarm")


def describe_alarms(cloudwatch: Any, prefix: str, *, state: str | None = None) -> list[dict[str, Any]]:
    """Every metric and composite alarm named `prefix`*, optionally only those in `state`.

    The one DescribeAlarms of replctl: `status` and the deploy gate both read through it, so they
    always agree on which alarms count.
    """
    kwargs: dict[str, Any] = {"AlarmNamePrefix": prefix, "AlarmTypes": list(ALARM_TYPES)}
    if state is not None:
        kwargs["StateValue"] = state
    found: list[dict[str, Any]] = []
    while True:
        page = cloudwatch.describe_alarms(**kwargs)
        found += [*page.get("MetricAlarms", []), *page.get("CompositeAlarms", [])]
        if not page.get("NextToken"):
            break
        kwargs["NextToken"] = page["NextToken"]
    # Filter again: not every endpoint honours StateValue together with a prefix (moto returns every
    # alarm of the prefix), and a gate must never fail on an OK alarm.
    return [a for a in found if state is None or a.get("StateValue") == state]


def read_alarms(cloudwatch: Any, prefix: str) -> tuple[AlarmFact, ...]:
    alarms: list[AlarmFact] = []
    for a in describe_alarms(cloudwatch, prefix):
        updated = a.get("StateUpdatedTimestamp")
        alarms.append(AlarmFact(a["AlarmName"], alarm_state(a["StateValue"]), a.get("StateReason", ""),
                                _utc(updated) if isinstance(updated, datetime) else None))
    return tuple(sorted(alarms, key=lambda a: a.name))


@dataclass(frozen=True)
class InstanceListing:
    """ListStackInstances, by (account, region); `problem` when it could not be read."""

    instances: dict[tuple[str, str], InstanceFact]
    listed: bool
    problem: str | None = None


def list_instances(factory: SessionFactory, stack_set: str, home_region: str, call_as: str = "SELF") -> InstanceListing:
    """The stack set's instances, read in the admin account (as `call_as`: SELF or DELEGATED_ADMIN)."""
    cfn = factory.client("cloudformation", region=home_region)
    found: dict[tuple[str, str], InstanceFact] = {}
    try:
        for page in cfn.get_paginator("list_stack_instances").paginate(StackSetName=stack_set, CallAs=call_as):
            for s in page.get("Summaries", []):
                detailed = s.get("StackInstanceStatus", {}).get("DetailedStatus")
                drift = s.get("DriftStatus")
                checked = s.get("LastDriftCheckTimestamp")
                found[(s["Account"], s["Region"])] = InstanceFact(
                    status=parse(InstanceStatus, s["Status"]),
                    detailed=parse(DetailedStatus, detailed) if detailed else None,
                    reason=s.get("StatusReason"),
                    drift=drift_status(drift) if drift else None,
                    last_drift_check=_utc(checked) if isinstance(checked, datetime) else None,
                )
    except _errors() as exc:
        if caller_unusable(exc):
            raise translate(exc) from exc
        if error_code(exc) == "StackSetNotFoundException":
            return InstanceListing({}, True, f"stack set {stack_set} does not exist in region {home_region} "
                                             "of the admin account")
        return InstanceListing({}, False, f"ListStackInstances failed: {_message(exc)}")
    return InstanceListing(found, True)


@dataclass
class _Reads:
    """What `fetch_target` has read in one account-region so far, and what it could not read."""

    values: dict[str, Any] = field(default_factory=dict)  # TargetFacts fields
    problems: list[Problem] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


Client = Callable[[str], Any]  # service name -> client in the account-region, as the observer role


def fetch_target(config: Config, factory: SessionFactory, names: Names, env: Environment, account: str,
                 region: str, now: datetime) -> TargetFacts:
    """Everything status reads in one account-region, through the observer role."""
    bucket = names.bucket(env.name, account)
    facts = TargetFacts(env.name, account, region, now, bucket, alarm_prefix=names.alarm_prefix(env.name))
    role = names.observer_role_arn(account)
    try:
        factory.session(account, role)  # assumes the role now: a failure is reported as such
    except _errors() as exc:
        return replace(facts, problems=(Problem("access", _message(exc)),))

    def client(service: str) -> Any:
        return factory.client(service, region=region, account=account, role_arn=role)

    reads = _Reads()
    rules = _read_replication_rules(reads, client, bucket, names)
    lag_items = _read_table_items(reads, client, names)
    start = now - timedelta(minutes=config.thresholds.lookback_minutes)
    _read_metrics(reads, client, names, env.name, bucket, rules, lag_items, start, now)
    _read_queues(reads, client, names, account, region)
    _read_alarms(reads, client, names.alarm_prefix(env.name))
    return replace(facts, problems=tuple(reads.problems), missing=tuple(reads.missing), **reads.values)


def _read_replication_rules(reads: _Reads, client: Client, bucket: str, names: Names) -> tuple[RuleFact, ...]:
    """1. The bucket's replication rules: which destinations (and rule ids) metrics are published for."""
    try:
        rules = read_rules(client("s3"), bucket, names)
    except _errors() as exc:
        if error_code(exc) == "NoSuchBucket":
            reads.missing.append(f"bucket {bucket}")
        else:
            reads.problems.append(Problem("s3-replication", f"GetBucketReplication on {bucket}: {_message(exc)}"))
        return ()
    reads.values["rules"] = rules
    return rules


def _read_table_items(reads: _Reads, client: Client, names: Names) -> list[dict[str, Any]]:
    """2. The metadata table's heartbeat, lag and validation items; the LOCAL#LAG items are returned."""
    try:
        heartbeats, lag_items, validation = read_items(client("dynamodb"), names.table)
    except _errors() as exc:
        if error_code(exc) == "ResourceNotFoundException":
            reads.missing.append(f"table {names.table}")
        else:
            msg = f"reading table {names.table}: {_message(exc)}"
            reads.problems += [Problem(s, msg) for s in ("metadata-lag", "heartbeat", "validation")]
        return []
    reads.values["heartbeats"] = tuple(sorted((heartbeat_fact(h) for h in heartbeats), key=lambda h: h.origin))
    reads.values["validation"] = validation_fact(validation) if validation is not None else None
    reads.values["validation_read"] = True
    return lag_items


def _read_metrics(reads: _Reads, client: Client, names: Names, environment: str, bucket: str,
                  rules: tuple[RuleFact, ...], lag_items: list[dict[str, Any]], start: datetime,
                  now: datetime) -> None:
    """3. One GetMetricData for every metric of this account-region, attached to rules, lags, functions."""
    lag_targets = sorted({r.target for r in rules if r.target and r.enabled} | {str(i.get("sk")) for i in lag_items})
    queries = metric_queries(names, environment, bucket, [r for r in rules if r.enabled], lag_targets)
    series: dict[tuple[str, ...], Series] | None = None
    try:
        series = get_metric_data(client("cloudwatch"), queries, start, now)
    except _errors() as exc:
        msg = f"GetMetricData: {_message(exc)}"
        reads.problems += [Problem(s, msg) for s in ("s3-replication", "metadata-lag", "function-errors")]
    if "rules" in reads.values and series is not None:
        reads.values["rules"] = tuple(
            replace(r, latency=series.get(("rule", r.rule_id, "latency")),
                    pending=series.get(("rule", r.rule_id, "pending")),
                    failed=series.get(("rule", r.rule_id, "failed"))) if r.enabled else r
            for r in rules)
    if "heartbeats" in reads.values:
        by_target = {str(i.get("sk")): lag_fact(i) for i in lag_items}
        lags = []
        for target in lag_targets:
            fact = by_target.get(target, LagFact(target))
            if series is not None:
                fact = replace(fact, metadata_metric=series.get(("lag", target, "metadata")),
                               s3_metric=series.get(("lag", target, "s3")))
            lags.append(fact)
        reads.values["lags"] = tuple(lags)
    if series is not None:
        reads.values["functions"] = tuple(FunctionFact(names.function(f), series.get(("function", f, "errors")))
                                          for f in FUNCTIONS)


def _read_queues(reads: _Reads, client: Client, names: Names, account: str, region: str) -> None:
    """4. The dead-letter queues' depth."""
    queues: list[QueueFact] = []
    sqs = None
    for name in names.queues():
        try:
            sqs = sqs or client("sqs")
            q = read_queue(sqs, account, region, name)
        except _errors() as exc:
            queues.append(QueueFact(name, None, _message(exc)))
            continue
        if q is None:
            reads.missing.append(f"queue {name}")
        else:
            queues.append(q)
    reads.values["queues"] = tuple(queues)


def _read_alarms(reads: _Reads, client: Client, prefix: str) -> None:
    """5. The environment's alarms."""
    try:
        reads.values["alarms"] = read_alarms(client("cloudwatch"), prefix)
    except _errors() as exc:
        reads.problems.append(Problem("alarms", f"DescribeAlarms: {_message(exc)}"))


def _now() -> datetime:
    return datetime.now(timezone.utc)


#: Account-regions read at once. Each is about ten calls one after the other, mostly spent waiting
#: on the network, so with many accounts more threads finish sooner; 16 beat 8 once round trips
#: are long (BENCHMARKS.md, status fan-out). `max_workers=1` reads them one by one.
STATUS_WORKERS = 16


def fetch_status(config: Config, factory: SessionFactory, envs: Iterable[Environment], *,
                 clock: Callable[[], datetime] = _now, max_workers: int = STATUS_WORKERS) -> StatusFacts:
    """Read every account-region of `envs` (in parallel) and the stack set's instances."""
    names = names_for(config)
    envs = tuple(envs)
    now = clock()
    jobs = [(env, account, region) for env in envs for account, region in env.instances()]
    pool = ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(jobs) + 1)),
                              thread_name_prefix="replctl-status")
    try:
        listing_f = pool.submit(list_instances, factory, names.stack_set, config.stackset.home_region,
                                 config.stackset.call_as)
        futures = [pool.submit(fetch_target, config, factory, names, env, a, r, now) for env, a, r in jobs]
        listing = listing_f.result()
        targets = [f.result() for f in futures]
    finally:
        # On Ctrl-C do not wait for reads still in flight.
        pool.shutdown(wait=False, cancel_futures=True)
    out = []
    for t in targets:
        extra: dict[str, Any] = {"instance": listing.instances.get((t.account, t.region)),
                                 "instance_listed": listing.listed}
        if listing.problem:
            extra["problems"] = (*t.problems, Problem("stack-instance", listing.problem))
        out.append(replace(t, **extra))
    return StatusFacts(names.stack_set, now, tuple(out), tuple(e.name for e in envs))
