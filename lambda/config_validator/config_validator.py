"""ConfigValidatorLambda: are the environments configured alike?

Handler: `config_validator.handler`. Events: EventBridge "CloudFormation Stack Status Change"
for the replication stack (validated once the stack reaches a *_COMPLETE state other than
DELETE_COMPLETE; in-progress and failed states are logged and skipped) and an EventBridge
schedule (the periodic sweep).

What is read, and from where (read-only calls only):
- this environment: everything, locally;
- downstream environments (REPLICATE_TO_* true): table, SSM hierarchy and bucket through the
  replication-agent role of their account (those roles trust this account);
- upstream environments: only their SSM hierarchy, from the mirrors they write into this
  account (no role upstream trusts a downstream account). In prod, mirrors of every hierarchy
  exist locally, so prod compares all three key sets without leaving its account.
What could not be compared is listed in the report's `skipped`.

The report goes to the metadata table as `LOCAL#VALIDATION` (sk `latest`, plus one history item
keyed by its ISO time) and `ValidationFailures` counts its differences.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from replshared.clients import AwsClients, clients_for
from replshared.errors import HandlerError, ProcessingFailed
from replshared.events import event_kind, function_dimension, unhandled
from replshared.items import to_item
from replshared.settings import ENVIRONMENTS, Settings
from replshared.telemetry import Metrics, get_logger
from validator_logic import (
    BucketSettings,
    Difference,
    compare_buckets,
    compare_key_sets,
    compare_tables,
    normalize_bucket,
    normalize_table,
    relative_keys,
    report_items,
)

FUNCTION = "config-validator"
logger = get_logger(FUNCTION)

_MISSING_CODES = {
    "ResourceNotFoundException",
    "NoSuchBucket",
    "ServerSideEncryptionConfigurationNotFoundError",
    "ReplicationConfigurationNotFoundError",
}


def _error_code(error: Exception) -> str | None:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return response.get("Error", {}).get("Code")
    return None


def _missing_to_none(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except Exception as error:
        if _error_code(error) in _MISSING_CODES:
            return None
        raise


# -- fetch ----------------------------------------------------------------------------------


def fetch_table(dynamodb: Any, table_name: str) -> dict[str, Any] | None:
    found = _missing_to_none(lambda: dynamodb.describe_table(TableName=table_name))
    return normalize_table(found["Table"]) if found else None


def fetch_key_names(ssm: Any, hierarchy: str) -> list[str]:
    """Names under a hierarchy (DescribeParameters: names only, never values)."""
    names: list[str] = []
    paginator = ssm.get_paginator("describe_parameters")
    for page in paginator.paginate(ParameterFilters=[{"Key": "Path", "Option": "Recursive", "Values": [hierarchy]}]):
        names.extend(p["Name"] for p in page.get("Parameters", []))
    return names


def fetch_bucket(s3: Any, bucket: str) -> BucketSettings | None:
    versioning = _missing_to_none(lambda: s3.get_bucket_versioning(Bucket=bucket))
    if versioning is None:
        return None
    encryption = _missing_to_none(lambda: s3.get_bucket_encryption(Bucket=bucket))
    replication = _missing_to_none(lambda: s3.get_bucket_replication(Bucket=bucket))
    return normalize_bucket(
        bucket,
        versioning,
        (encryption or {}).get("ServerSideEncryptionConfiguration"),
        (replication or {}).get("ReplicationConfiguration"),
    )


def _ordered(envs: set[str]) -> list[str]:
    return [e for e in ENVIRONMENTS if e in envs]


def validate(settings: Settings, clients: AwsClients) -> tuple[list[str], list[str], list[Difference]]:
    """Fetch everything reachable and compare; returns (compared, skipped, differences)."""
    me = settings.environment
    reachable = _ordered({me, *settings.downstream})
    compared: list[str] = []
    skipped: list[str] = []
    diffs: list[Difference] = []

    def read(env: str, what: str, call: Callable[[], Any]) -> tuple[bool, Any]:
        try:
            return True, call()
        except Exception as error:  # noqa: BLE001 - an unreadable environment is a finding
            diffs.append(Difference("unreachable", env, f"{what}: {type(error).__name__}: {error}"[:500]))
            return False, None

    # Table schemas: this environment and downstream.
    tables: dict[str, Any] = {}
    for env in reachable:
        ok, schema = read(env, "describe table", lambda env=env: fetch_table(clients.for_environment(env, "dynamodb"), settings.table_name))
        if ok:
            tables[env] = schema
            compared.append(f"table:{env}")
    diffs.extend(compare_tables(me, tables, settings.table_name))

    # SSM key sets: upstream from local mirrors (if mirrored here), this env, downstream remote.
    key_sets: dict[str, frozenset[str]] = {}
    for env in ENVIRONMENTS:
        hierarchy = settings.hierarchy(env)
        if env in settings.upstream:
            if me not in settings.replicate_to:
                skipped.append(f"ssm:{env} (not mirrored into {me}: REPLICATE_TO_{me.upper()} is false)")
                continue
            source = "local mirror"
            call = lambda hierarchy=hierarchy: fetch_key_names(clients.local("ssm"), hierarchy)  # noqa: E731
        elif env in reachable:
            source = "local" if env == me else "remote"
            call = lambda env=env, hierarchy=hierarchy: fetch_key_names(clients.for_environment(env, "ssm"), hierarchy)  # noqa: E731
        else:
            skipped.append(f"ssm:{env} (replication towards {env} is off)")
            continue
        ok, names = read(env, f"list {hierarchy}", call)
        if ok:
            key_sets[env] = relative_keys(names, hierarchy)
            compared.append(f"ssm:{env} ({hierarchy}, {source})")
    diffs.extend(compare_key_sets(key_sets))

    # Buckets: this environment and downstream.
    buckets: dict[str, BucketSettings | None] = {}
    for env in reachable:
        name = settings.bucket_of(env)
        ok, bucket = read(env, f"read bucket {name}", lambda env=env, name=name: fetch_bucket(clients.for_environment(env, "s3"), name))
        if ok:
            buckets[env] = bucket
            compared.append(f"bucket:{env} ({name})")
    expected = {env: frozenset(settings.bucket_of(t) for t in settings.downstream_of(env)) for env in buckets}
    diffs.extend(compare_buckets(me, buckets, expected, {env: settings.bucket_of(env) for env in buckets}))

    for env in settings.upstream:
        skipped.append(f"table:{env} and bucket:{env} (upstream: no read access from {me})")
    for env in ENVIRONMENTS:
        if env not in reachable and env not in settings.upstream:
            skipped.append(f"table:{env} and bucket:{env} (replication towards {env} is off)")
    order = {e: i for i, e in enumerate(ENVIRONMENTS)}
    diffs.sort(key=lambda d: (order.get(d.environment, 9), d.kind, d.detail))
    return compared, skipped, diffs


def run_validation(
    settings: Settings, clients: AwsClients, metrics: Metrics, *, trigger: str, clock: Callable[[], float] = time.time
) -> dict[str, Any]:
    compared, skipped, diffs = validate(settings, clients)
    now = clock()
    generated_at = datetime.fromtimestamp(now, tz=timezone.utc).isoformat()
    items = report_items(
        environment=settings.environment, compared=compared, skipped=skipped, differences=diffs,
        generated_at=generated_at, trigger=trigger, version=int(now * 1000),
    )
    table = clients.local("dynamodb")
    for item in items:
        table.put_item(TableName=settings.table_name, Item=to_item(item))
    metrics.count("ValidationFailures", {"Environment": settings.environment}, len(diffs))
    logger.info(
        "validation report written",
        extra={"status": items[0]["status"], "differences": len(diffs), "compared": compared, "trigger": trigger},
    )
    for diff in diffs:
        logger.warning("difference", extra=diff.as_map())
    return {"status": items[0]["status"], "differences": [d.as_map() for d in diffs], "compared": compared}


# -- entry point ----------------------------------------------------------------------------


def stack_status(event: dict[str, Any]) -> str | None:
    details = event["detail"].get("status-details")
    status = details.get("status") if isinstance(details, dict) else None
    return status if isinstance(status, str) and status else None


def should_validate(status: str) -> bool:
    """Validate once the stack has settled; not while it changes or after it is deleted."""
    return status.endswith("_COMPLETE") and not status.startswith("DELETE") and "IN_PROGRESS" not in status


@logger.inject_lambda_context(log_event=False)
def handler(event: Any, context: Any) -> dict[str, Any]:
    settings = Settings.from_env()
    metrics = Metrics(settings.metrics_namespace)
    function = function_dimension(f"replctl-{FUNCTION}")
    try:
        kind = event_kind(event)
        if kind == "schedule":
            return run_validation(settings, clients_for(settings, FUNCTION), metrics, trigger="schedule")
        if kind == "cfn-stack-status":
            status = stack_status(event)
            if status is None:
                raise unhandled(event, "stack status change without status-details.status", logger=logger,
                                metrics=metrics, environment=settings.environment, function=function)
            if not should_validate(status):
                logger.info("stack not settled; validation skipped", extra={"stack_status": status})
                return {"skipped": status}
            return run_validation(settings, clients_for(settings, FUNCTION), metrics, trigger=f"stack:{status}")
        raise unhandled(event, f"event kind {kind or 'unknown'} is not handled by {FUNCTION}", logger=logger,
                        metrics=metrics, environment=settings.environment, function=function)
    except HandlerError:
        raise
    except Exception as error:
        logger.exception("invocation failed")
        raise ProcessingFailed(f"{FUNCTION}: {type(error).__name__}: {error}") from error
    finally:
        metrics.flush()
