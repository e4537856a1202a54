"""ReplicationMonitorLambda: SSM mirroring, S3 replication failures, heartbeat and lag.

Handler: `replication_monitor.handler`. Events (shapes in tests/events/):
- EventBridge "Parameter Store Change" under this environment's hierarchy: the parameter is
  re-read here (the event carries no value) and mirrored, under the same name, into each
  downstream account through the assumed replication-agent role; a parameter that no longer
  exists has its mirrors deleted. Mirrors never go back in time (monitor_logic; I/O in
  mirroring).
- S3 event notifications `Replication:OperationFailedReplication`: each failed object is
  recorded as a `LOCAL#S3FAILURE` item and counted in `ReplicationFailures`.
- EventBridge "Scheduled Event": writes the heartbeat item (pk HEARTBEAT, sk <env>, with
  `written_at_ms`, so the stream processor measures its lag where the copy is written) and a
  canary object, then checks end to end, on separate schedules, until each downstream table and
  bucket shows them: one `LOCAL#LAG` item per target and `HeartbeatLag` / `S3CanaryLag`. Then it
  reconciles the whole hierarchy with its mirrors within the invocation's remaining time, and
  says in `ReconcileBacklog` how much it left for the next run.

Parameter values are never logged. Every event is handled idempotently; a partial failure is
logged, counted and raised (`ProcessingFailed`) after the rest of the work is done, so Lambda's
async retries and the DLQ see it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from mirroring import MirrorRun, Outcome, reconcile, sync_parameter
from monitor_logic import (
    METADATA_POLL,
    S3_POLL,
    PollSchedule,
    canary_key,
    failure_item,
    in_hierarchy,
    lag_item,
    lag_seconds,
    parse_parameter_change,
    parse_replication_failure,
    poll_until_visible,
)
from replshared.budget import Budget, error_code
from replshared.clients import AwsClients, clients_for
from replshared.errors import HandlerError, ProcessingFailed
from replshared.events import event_kind, function_dimension, unhandled
from replshared.items import from_item, to_item
from replshared.settings import Settings
from replshared.telemetry import Metrics, get_logger

FUNCTION = "replication-monitor"
logger = get_logger(FUNCTION)

MAX_POLL_SECONDS = 60.0  # the lag poll never runs longer than this
LEFT_AFTER_POLL_SECONDS = 20.0  # the poll always leaves this much for the reconciliation
# No new call is started with less than this left: an SSM call that is throttled can spend
# ~15 s in the SDK's own retries (adaptive mode, 5 attempts, backoff up to 1+2+4+8 s), and the
# result and metrics must still be written after it.
STOP_BEFORE_DEADLINE_SECONDS = 15.0


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat()


# -- SSM mirroring --------------------------------------------------------------------------


def _mirror_run(settings: Settings, clients: AwsClients, metrics: Metrics, budget: Budget, *,
                trigger: str, schedule: bool) -> MirrorRun:
    return MirrorRun(settings, clients, metrics, budget, trigger, stop_when_throttled=schedule)


def handle_parameter_change(event: dict[str, Any], settings: Settings, clients: AwsClients, metrics: Metrics,
                            budget: Budget) -> dict[str, Any]:
    change = parse_parameter_change(event["detail"])
    hierarchy = settings.hierarchy(settings.environment)
    if not in_hierarchy(change.name, hierarchy):
        # Understood, but not ours (e.g. a mirror written into this account from upstream).
        logger.info("parameter outside this environment's hierarchy ignored", extra={"parameter": change.name, "hierarchy": hierarchy})
        return {"mirrored": 0, "ignored": change.name}
    if not settings.downstream:
        logger.info("no downstream environment to mirror to", extra={"parameter": change.name})
        return {"mirrored": 0, "targets": []}
    # An event is retried by Lambda when it fails, so no extra backoff here (the SDK's retries
    # still apply); a type change whose wait does not fit is left for the scheduled run.
    run = _mirror_run(settings, clients, metrics, budget, trigger=f"event:{change.operation}", schedule=False)
    outcome = sync_parameter(run, change.name)
    if outcome.stopped:
        logger.warning("parameter left for the scheduled reconciliation",
                       extra={"parameter": change.name, "left": outcome.left, "reason": outcome.stopped})
    if outcome.failures:
        raise ProcessingFailed("; ".join(outcome.failures))
    return {"parameter": change.name, "targets": list(settings.downstream), "left": outcome.left}


def reconcile_parameters(settings: Settings, clients: AwsClients, metrics: Metrics, budget: Budget) -> Outcome:
    """The scheduled reconciliation, within the budget; logs and counts what it left."""
    hierarchy = settings.hierarchy(settings.environment)
    if not settings.downstream:
        return Outcome()
    outcome = reconcile(_mirror_run(settings, clients, metrics, budget, trigger="schedule", schedule=True))
    metrics.count("ReconcileBacklog", {"Environment": settings.environment}, outcome.left)
    fields = {"hierarchy": hierarchy, "targets": list(settings.downstream), "written": outcome.written,
              "left": outcome.left, "throttled": budget.throttled, "remaining_ms": budget.remaining_ms()}
    if outcome.stopped:
        logger.warning("reconciliation stopped before the deadline; the rest is left for the next run",
                       extra={**fields, "reason": outcome.stopped})
    else:
        logger.info("hierarchy reconciled", extra=fields)
    return outcome


# -- S3 replication failures ----------------------------------------------------------------


def handle_s3_notification(
    event: dict[str, Any], settings: Settings, clients: AwsClients, metrics: Metrics, *, clock: Callable[[], float] = time.time
) -> dict[str, Any]:
    """Record each failed replication; other S3 event names are logged and counted unhandled."""
    table = clients.local("dynamodb")
    dims = {"Environment": settings.environment}
    recorded, ignored, problems = 0, 0, []
    for index, record in enumerate(event["Records"]):
        try:
            failure = parse_replication_failure(record)
        except ValueError as error:
            problems.append(f"record {index}: {error}")
            continue
        if failure is None:
            ignored += 1
            continue
        now = clock()
        item = failure_item(failure, environment=settings.environment, recorded_at=_iso(now), version=int(now * 1000))
        table.put_item(TableName=settings.table_name, Item=to_item(item))
        metrics.count("ReplicationFailures", dims)
        recorded += 1
        logger.warning(
            "S3 replication failure recorded",
            extra={"bucket": failure.bucket, "key": failure.key, "reason": failure.reason, "destination": failure.destination_bucket},
        )
    return {"recorded": recorded, "ignored": ignored, "problems": problems}


# -- heartbeat, canary and lag --------------------------------------------------------------


def write_heartbeat(settings: Settings, clients: AwsClients, written_at: float) -> int:
    """Bump the heartbeat item (pk HEARTBEAT, sk <env>); returns its new version.

    `written_at_ms` is the contract's millisecond write time: the stream processor compares it
    with the time it writes each downstream copy (the stream record's own
    ApproximateCreationDateTime is "rounded down to the closest second", too coarse for a 1 s
    bound).
    """
    result = clients.local("dynamodb").update_item(
        TableName=settings.table_name,
        Key={"pk": {"S": "HEARTBEAT"}, "sk": {"S": settings.environment}},
        UpdateExpression="ADD #version :one SET written_at = :at, written_at_ms = :ms, origin = :origin",
        ExpressionAttributeNames={"#version": "version"},
        ExpressionAttributeValues=to_item({":one": 1, ":at": written_at, ":ms": round(written_at * 1000),
                                           ":origin": settings.environment}),
        ReturnValues="UPDATED_NEW",
    )
    return int(result["Attributes"]["version"]["N"])


def write_canary(settings: Settings, clients: AwsClients, written_at: float, version: int) -> None:
    body = json.dumps({"environment": settings.environment, "heartbeat_version": version, "written_at": written_at})
    clients.local("s3").put_object(
        Bucket=settings.bucket_name, Key=canary_key(settings.environment), Body=body.encode(),
        ContentType="application/json",
    )


def _metadata_probe(settings: Settings, clients: AwsClients, target: str, version: int) -> Callable[[], bool]:
    def probe() -> bool:
        found = clients.remote(target, "dynamodb").get_item(
            TableName=settings.table_name,
            Key={"pk": {"S": "HEARTBEAT"}, "sk": {"S": settings.environment}},
            ConsistentRead=True,
        ).get("Item")
        return bool(found) and int(from_item(found).get("version", 0)) >= version

    return probe


def _s3_probe(settings: Settings, clients: AwsClients, target: str, version: int) -> Callable[[], bool]:
    def probe() -> bool:
        s3 = clients.remote(target, "s3")
        try:
            body = s3.get_object(Bucket=settings.bucket_of(target), Key=canary_key(settings.environment))["Body"].read()
        except Exception as error:
            if error_code(error) in ("NoSuchKey", "404"):
                return False
            raise
        return int(json.loads(body).get("heartbeat_version", 0)) >= version

    return probe


def _logged(probe: Callable[[], bool], kind: str, target: str) -> Callable[[], bool]:
    """The probe, logging its first failure: the poll counts a failing probe as "not visible yet",
    which is right for the lag (a lower bound is published), but the cause (a denied role, a
    missing table) must still reach the log."""
    failed = False

    def logged() -> bool:
        nonlocal failed
        try:
            return probe()
        except Exception as error:
            if not failed:
                failed = True
                logger.warning("downstream probe failed", extra={
                    "probe": kind, "target": target, "error": f"{type(error).__name__}: {error}"[:500]})
            raise

    return logged


def _probes(settings: Settings, clients: AwsClients, version: int) -> dict[str, tuple[Callable[[], bool], PollSchedule]]:
    probes: dict[str, tuple[Callable[[], bool], PollSchedule]] = {}
    for target in settings.downstream:
        probes[f"metadata:{target}"] = (
            _logged(_metadata_probe(settings, clients, target, version), "metadata", target), METADATA_POLL)
        probes[f"s3:{target}"] = (_logged(_s3_probe(settings, clients, target, version), "s3", target), S3_POLL)
    return probes


def poll_seconds_for(budget: Budget) -> float:
    """How long the end-to-end check may poll: at most 60 s, always leaving time to reconcile."""
    return max(0.0, min(MAX_POLL_SECONDS, budget.left() - LEFT_AFTER_POLL_SECONDS))


def _record_lag(settings: Settings, clients: AwsClients, metrics: Metrics, target: str, *,
                metadata: tuple[float, bool], s3: tuple[float, bool], now: float, version: int) -> None:
    item = lag_item(target=target, environment=settings.environment, metadata=metadata, s3=s3,
                    measured_at=_iso(now), heartbeat_version=version)
    clients.local("dynamodb").put_item(TableName=settings.table_name, Item=to_item(item))
    dims = {"Environment": settings.environment, "Target": target}
    metrics.value("HeartbeatLag", "Seconds", metadata[0], dims)
    metrics.value("S3CanaryLag", "Seconds", s3[0], dims)
    if not metadata[1]:
        # Never seen: no copy was written, so the stream processor measured nothing. The time
        # waited is a true lower bound of the lag, and goes where the lag alarm looks.
        metrics.value("MetadataReplicationLag", "Seconds", metadata[0], dims)
    logger.info("replication lag measured", extra={
        "target": target, "metadata_lag_seconds": metadata[0], "metadata_visible": metadata[1],
        "s3_lag_seconds": s3[0], "s3_visible": s3[1], "heartbeat_version": version})


def run_schedule(
    settings: Settings,
    clients: AwsClients,
    metrics: Metrics,
    *,
    context: Any = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] | None = None,
    poll_seconds: float | None = None,
    reconcile: bool = True,
) -> dict[str, Any]:
    """Heartbeat + canary, end-to-end lag per downstream target, then reconcile SSM mirrors."""
    sleep = sleep or time.sleep
    budget = Budget.from_context(context, STOP_BEFORE_DEADLINE_SECONDS, sleep=sleep)
    written_at = clock()
    version = write_heartbeat(settings, clients, written_at)
    write_canary(settings, clients, written_at, version)
    probes = _probes(settings, clients, version)
    wait = poll_seconds_for(budget) if poll_seconds is None else poll_seconds
    seen = poll_until_visible(probes, clock=clock, sleep=sleep, start=written_at,
                              deadline=written_at + wait) if probes else {}
    now = clock()
    lags: dict[str, dict[str, Any]] = {}
    for target in settings.downstream:
        metadata = lag_seconds(written_at, seen[f"metadata:{target}"], now)
        s3 = lag_seconds(written_at, seen[f"s3:{target}"], now)
        _record_lag(settings, clients, metrics, target, metadata=metadata, s3=s3, now=now, version=version)
        lags[target] = {"metadata": metadata, "s3": s3}
    result: dict[str, Any] = {"heartbeat_version": version, "lag": lags}
    if reconcile:
        outcome = reconcile_parameters(settings, clients, metrics, budget)
        result["reconcile"] = {"written": outcome.written, "left": outcome.left, "stopped": outcome.stopped}
        if outcome.failures:
            raise ProcessingFailed("; ".join(outcome.failures))
    return result


# -- entry point ----------------------------------------------------------------------------


@logger.inject_lambda_context(log_event=False)
def handler(event: Any, context: Any) -> dict[str, Any]:
    settings = Settings.from_env()
    metrics = Metrics(settings.metrics_namespace)
    function = function_dimension(f"replctl-{FUNCTION}")

    def not_understood(reason: str) -> Exception:
        return unhandled(event, reason, logger=logger, metrics=metrics, environment=settings.environment, function=function)

    try:
        kind = event_kind(event)
        if kind == "ssm-change":
            try:
                parse_parameter_change(event["detail"])
            except ValueError as error:
                raise not_understood(f"Parameter Store Change event: {error}") from None
            # A handful of calls, so no reserve; one attempt per call: a throttled event fails
            # and goes back to Lambda's retries. The budget only decides whether a type change's
            # 30 s wait fits in this invocation.
            budget = Budget.from_context(context, 0.0, max_attempts=1)
            return handle_parameter_change(event, settings, clients_for(settings, FUNCTION), metrics, budget)
        if kind == "s3-notification":
            result = handle_s3_notification(event, settings, clients_for(settings, FUNCTION), metrics)
            if result["problems"] or result["ignored"]:
                reason = f"S3 notification: {result['ignored']} record(s) of another event type; " + "; ".join(result["problems"])
                raise not_understood(reason)
            return result
        if kind == "s3-test":
            logger.info("S3 test notification received (sent when the notification configuration is saved)")
            return {"ignored": "s3:TestEvent"}
        if kind == "schedule":
            return run_schedule(settings, clients_for(settings, FUNCTION), metrics, context=context)
        raise not_understood(f"event kind {kind or 'unknown'} is not handled by {FUNCTION}")
    except HandlerError:
        raise
    except Exception as error:
        logger.exception("invocation failed")
        raise ProcessingFailed(f"{FUNCTION}: {type(error).__name__}: {error}") from error
    finally:
        metrics.flush()
