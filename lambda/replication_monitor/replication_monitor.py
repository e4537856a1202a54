"""ReplicationMonitorLambda: SSM mirroring, S3 replication failures, heartbeat and lag.

Handler: `replication_monitor.handler`. Events (shapes in tests/events/):
- EventBridge "Parameter Store Change" under this environment's hierarchy: the parameter is
  re-read here (the event carries no value) and mirrored, under the same name, into each
  downstream account through the assumed replication-agent role; a parameter that no longer
  exists has its mirrors deleted. Mirrors never go back in time (see monitor_logic).
- S3 event notifications `Replication:OperationFailedReplication`: each failed object is
  recorded as a `LOCAL#S3FAILURE` item and counted in `ReplicationFailures`.
- EventBridge "Scheduled Event": writes the heartbeat item (pk HEARTBEAT, sk <env>) and a canary
  object, polls each downstream table and bucket (bounded, backing off) until they show up,
  writes one `LOCAL#LAG` item per target and publishes `MetadataReplicationLag` and
  `S3CanaryLag`; then reconciles the whole hierarchy with its mirrors, which also backfills
  parameters that existed before mirroring towards an environment was switched on.

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

from monitor_logic import (
    SECURE,
    DeleteMirror,
    KeepMirror,
    MirrorState,
    PutMirror,
    SourceParameter,
    canary_key,
    decide_mirror,
    error_text,
    failure_item,
    in_hierarchy,
    lag_item,
    lag_seconds,
    parse_parameter_change,
    parse_replication_failure,
    poll_until_visible,
    put_mirror_request,
)
from replshared.clients import AwsClients, clients_for
from replshared.errors import HandlerError, ProcessingFailed
from replshared.events import event_kind, function_dimension, unhandled
from replshared.items import from_item, to_item
from replshared.settings import Settings
from replshared.telemetry import Metrics, get_logger

FUNCTION = "replication-monitor"
logger = get_logger(FUNCTION)

MAX_POLL_SECONDS = 60.0  # the lag poll never runs longer than this
RESERVED_SECONDS = 20.0  # left for the reconciliation and the writes after the poll


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat()


def _error_code(error: Exception) -> str | None:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return response.get("Error", {}).get("Code")
    return None


# -- SSM mirroring --------------------------------------------------------------------------


def read_source(ssm: Any, name: str, *, with_decryption: bool) -> SourceParameter | None:
    """The source parameter's current state, or None when it does not exist."""
    try:
        parameter = ssm.get_parameter(Name=name, WithDecryption=with_decryption)["Parameter"]
    except Exception as error:
        if _error_code(error) == "ParameterNotFound":
            return None
        raise
    return SourceParameter(
        name=parameter["Name"],
        type=parameter["Type"],
        value=parameter["Value"],
        version=int(parameter["Version"]),
        modified=parameter["LastModifiedDate"].timestamp(),
    )


def read_mirror(ssm: Any, name: str) -> MirrorState | None:
    """A mirror's name and description (DescribeParameters: GetParameter has no description)."""
    found = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": [name]}])
    for parameter in found.get("Parameters", []):
        if parameter.get("Name") == name:
            return MirrorState(name=name, description=parameter.get("Description"))
    return None


def apply_mirror(ssm: Any, action: Any, source: SourceParameter | None, name: str, source_env: str) -> bool:
    """Carry out one decision in a target account; True when something was written."""
    if isinstance(action, PutMirror):
        assert source is not None
        ssm.put_parameter(**put_mirror_request(source, source_env))
        return True
    if isinstance(action, DeleteMirror):
        try:
            ssm.delete_parameter(Name=name)
        except Exception as error:
            if _error_code(error) != "ParameterNotFound":
                raise
        return True
    return False


def sync_parameter(
    name: str, settings: Settings, clients: AwsClients, metrics: Metrics, *, trigger: str
) -> list[str]:
    """Bring every downstream mirror of `name` in line with the source; returns failures."""
    dims = {"Environment": settings.environment}
    try:
        source = read_source(clients.local("ssm"), name, with_decryption=settings.mirror_secure_strings)
    except Exception as error:  # noqa: BLE001 - reported, then raised by the caller
        metrics.count("ParameterMirrorFailures", dims, len(settings.downstream))
        logger.error("source parameter unreadable", extra={"parameter": name, "error": f"{type(error).__name__}: {error}"[:500]})
        return [f"{name}: cannot read the source: {type(error).__name__}: {error}"]
    failures: list[str] = []
    for target in settings.downstream:
        try:
            ssm = clients.remote(target, "ssm")
            mirror = read_mirror(ssm, name)
            action = decide_mirror(
                source, mirror, source_env=settings.environment, mirror_secure_strings=settings.mirror_secure_strings
            )
            written = apply_mirror(ssm, action, source, name, settings.environment)
        except Exception as error:  # noqa: BLE001 - reported per target, then raised
            metrics.count("ParameterMirrorFailures", dims)
            text = error_text(error, source, _error_code(error))
            failures.append(f"{name} -> {target}: {text}")
            logger.error("parameter mirror failed", extra={"parameter": name, "target": target, "error": text[:500]})
            continue
        if written:
            metrics.count("ParametersMirrored", dims)
        logger.info(
            "parameter mirror",
            extra={
                "parameter": name,
                "target": target,
                "action": type(action).__name__,
                "reason": action.reason,
                "source_version": source.version if source else None,
                "trigger": trigger,
            },
        )
    return failures


def handle_parameter_change(event: dict[str, Any], settings: Settings, clients: AwsClients, metrics: Metrics) -> dict[str, Any]:
    change = parse_parameter_change(event["detail"])
    hierarchy = settings.hierarchy(settings.environment)
    if not in_hierarchy(change.name, hierarchy):
        # Understood, but not ours (e.g. a mirror written into this account from upstream).
        logger.info("parameter outside this environment's hierarchy ignored", extra={"parameter": change.name, "hierarchy": hierarchy})
        return {"mirrored": 0, "ignored": change.name}
    if not settings.downstream:
        logger.info("no downstream environment to mirror to", extra={"parameter": change.name})
        return {"mirrored": 0, "targets": []}
    failures = sync_parameter(change.name, settings, clients, metrics, trigger=f"event:{change.operation}")
    if failures:
        raise ProcessingFailed("; ".join(failures))
    return {"parameter": change.name, "targets": list(settings.downstream)}


def _sources_by_path(ssm: Any, path: str, *, with_decryption: bool) -> dict[str, SourceParameter]:
    sources: dict[str, SourceParameter] = {}
    paginator = ssm.get_paginator("get_parameters_by_path")
    for page in paginator.paginate(Path=path, Recursive=True, WithDecryption=with_decryption):
        for p in page.get("Parameters", []):
            sources[p["Name"]] = SourceParameter(
                name=p["Name"], type=p["Type"], value=p["Value"], version=int(p["Version"]),
                modified=p["LastModifiedDate"].timestamp(),
            )
    return sources


def _mirrors_by_path(ssm: Any, path: str) -> dict[str, MirrorState]:
    mirrors: dict[str, MirrorState] = {}
    paginator = ssm.get_paginator("describe_parameters")
    for page in paginator.paginate(ParameterFilters=[{"Key": "Path", "Option": "Recursive", "Values": [path]}]):
        for p in page.get("Parameters", []):
            mirrors[p["Name"]] = MirrorState(name=p["Name"], description=p.get("Description"))
    return mirrors


def reconcile_parameters(settings: Settings, clients: AwsClients, metrics: Metrics) -> list[str]:
    """Compare the whole hierarchy with each downstream copy and fix what differs."""
    hierarchy = settings.hierarchy(settings.environment)
    dims = {"Environment": settings.environment}
    if not settings.downstream:
        return []
    sources = _sources_by_path(clients.local("ssm"), hierarchy, with_decryption=settings.mirror_secure_strings)
    failures: list[str] = []
    for target in settings.downstream:
        try:
            ssm = clients.remote(target, "ssm")
            mirrors = _mirrors_by_path(ssm, hierarchy)
        except Exception as error:  # noqa: BLE001
            metrics.count("ParameterMirrorFailures", dims)
            failures.append(f"{hierarchy} -> {target}: {type(error).__name__}: {error}")
            logger.error("mirrors unreadable", extra={"hierarchy": hierarchy, "target": target,
                                                      "error": f"{type(error).__name__}: {error}"[:500]})
            continue
        changed = 0
        for name in sorted(set(sources) | set(mirrors)):
            source = sources.get(name)
            action = decide_mirror(
                source, mirrors.get(name), source_env=settings.environment,
                mirror_secure_strings=settings.mirror_secure_strings,
            )
            if isinstance(action, KeepMirror):
                continue
            try:
                # Re-read the single parameter before writing: the listing may already be stale.
                fresh = read_source(clients.local("ssm"), name, with_decryption=settings.mirror_secure_strings)
                action = decide_mirror(
                    fresh, read_mirror(ssm, name), source_env=settings.environment,
                    mirror_secure_strings=settings.mirror_secure_strings,
                )
                if apply_mirror(ssm, action, fresh, name, settings.environment):
                    changed += 1
                    metrics.count("ParametersMirrored", dims)
            except Exception as error:  # noqa: BLE001
                metrics.count("ParameterMirrorFailures", dims)
                text = error_text(error, sources.get(name), _error_code(error))
                failures.append(f"{name} -> {target}: {text}")
                logger.error("parameter mirror failed",
                             extra={"parameter": name, "target": target, "error": text[:500], "trigger": "schedule"})
        logger.info("hierarchy reconciled", extra={"hierarchy": hierarchy, "target": target, "changed": changed})
    return failures


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
    """Bump the heartbeat item (pk HEARTBEAT, sk <env>); returns its new version."""
    result = clients.local("dynamodb").update_item(
        TableName=settings.table_name,
        Key={"pk": {"S": "HEARTBEAT"}, "sk": {"S": settings.environment}},
        UpdateExpression="ADD #version :one SET written_at = :at, origin = :origin",
        ExpressionAttributeNames={"#version": "version"},
        ExpressionAttributeValues=to_item({":one": 1, ":at": written_at, ":origin": settings.environment}),
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
            if _error_code(error) in ("NoSuchKey", "404"):
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


def run_schedule(
    settings: Settings,
    clients: AwsClients,
    metrics: Metrics,
    *,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    poll_seconds: float = MAX_POLL_SECONDS,
    reconcile: bool = True,
) -> dict[str, Any]:
    """Heartbeat + canary, lag per downstream target, then reconcile SSM mirrors."""
    written_at = clock()
    version = write_heartbeat(settings, clients, written_at)
    write_canary(settings, clients, written_at, version)
    probes: dict[str, Callable[[], bool]] = {}
    for target in settings.downstream:
        probes[f"metadata:{target}"] = _logged(_metadata_probe(settings, clients, target, version), "metadata", target)
        probes[f"s3:{target}"] = _logged(_s3_probe(settings, clients, target, version), "s3", target)
    seen = poll_until_visible(probes, clock=clock, sleep=sleep, deadline=written_at + poll_seconds) if probes else {}
    now = clock()
    table = clients.local("dynamodb")
    lags: dict[str, dict[str, Any]] = {}
    for target in settings.downstream:
        metadata = lag_seconds(written_at, seen[f"metadata:{target}"], now)
        s3 = lag_seconds(written_at, seen[f"s3:{target}"], now)
        item = lag_item(
            target=target, environment=settings.environment, metadata=metadata, s3=s3,
            measured_at=_iso(now), heartbeat_version=version,
        )
        table.put_item(TableName=settings.table_name, Item=to_item(item))
        dims = {"Environment": settings.environment, "Target": target}
        # Not seen within the poll: the elapsed time is a lower bound of the lag and is
        # published as such, so the lag alarm still fires.
        metrics.value("MetadataReplicationLag", "Seconds", metadata[0], dims)
        metrics.value("S3CanaryLag", "Seconds", s3[0], dims)
        lags[target] = {"metadata": metadata, "s3": s3}
        logger.info(
            "replication lag measured",
            extra={"target": target, "metadata_lag_seconds": metadata[0], "metadata_visible": metadata[1],
                   "s3_lag_seconds": s3[0], "s3_visible": s3[1], "heartbeat_version": version},
        )
    failures = reconcile_parameters(settings, clients, metrics) if reconcile else []
    if failures:
        raise ProcessingFailed("; ".join(failures))
    return {"heartbeat_version": version, "lag": lags}


# -- entry point ----------------------------------------------------------------------------


def _poll_budget(context: Any) -> float:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if callable(remaining):
        try:
            return max(0.0, min(MAX_POLL_SECONDS, remaining() / 1000.0 - RESERVED_SECONDS))
        except Exception:  # noqa: BLE001
            pass
    return MAX_POLL_SECONDS


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
            return handle_parameter_change(event, settings, clients_for(settings, FUNCTION), metrics)
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
            return run_schedule(settings, clients_for(settings, FUNCTION), metrics, poll_seconds=_poll_budget(context))
        raise not_understood(f"event kind {kind or 'unknown'} is not handled by {FUNCTION}")
    except HandlerError:
        raise
    except Exception as error:
        logger.exception("invocation failed")
        raise ProcessingFailed(f"{FUNCTION}: {type(error).__name__}: {error}") from error
    finally:
        metrics.flush()
