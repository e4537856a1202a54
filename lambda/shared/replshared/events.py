"""Recognising the event shapes AWS delivers, and reporting the ones a function does not handle.

Kinds (the shapes are those AWS documents; see tests/events/):
- `ssm-change`: EventBridge "Parameter Store Change" (`source` aws.ssm).
- `schedule`: EventBridge "Scheduled Event" (aws.events rules, aws.scheduler schedules).
- `cfn-stack-status`: EventBridge "CloudFormation Stack Status Change".
- `s3-notification`: S3 event notification records (`Records[].eventSource` aws:s3).
- `s3-test`: the `s3:TestEvent` S3 sends once when a notification configuration is saved.
- `dynamodb-stream`: DynamoDB stream records (`Records[].eventSource` aws:dynamodb).

An event nobody understands is logged (its shape only, never its values), counted in
`UnhandledEvents` (dimensions Environment, Function) and raised as `UnhandledEvent`: for async
invocations that sends it through Lambda's retries to the DLQ, for a stream it fails the batch.
"""

from __future__ import annotations

import os
from typing import Any

from replshared.errors import UnhandledEvent
from replshared.telemetry import Metrics, event_shape


def _records_source(event: dict[str, Any]) -> str | None:
    records = event.get("Records")
    if not isinstance(records, list) or not records:
        return None
    if not all(isinstance(r, dict) and isinstance(r.get("eventSource"), str) for r in records):
        return None
    sources = {r["eventSource"] for r in records}
    return sources.pop() if len(sources) == 1 else None


def event_kind(event: Any) -> str | None:
    """The kind of an event, or None when it is not one of the shapes above."""
    if not isinstance(event, dict):
        return None
    source, detail_type = event.get("source"), event.get("detail-type")
    if isinstance(source, str) and isinstance(detail_type, str) and isinstance(event.get("detail"), dict):
        if source == "aws.ssm" and detail_type == "Parameter Store Change":
            return "ssm-change"
        if source in ("aws.events", "aws.scheduler") and detail_type == "Scheduled Event":
            return "schedule"
        if source == "aws.cloudformation" and detail_type == "CloudFormation Stack Status Change":
            return "cfn-stack-status"
        return None
    if event.get("Event") == "s3:TestEvent" and event.get("Service") == "Amazon S3":
        return "s3-test"
    records_source = _records_source(event)
    if records_source == "aws:s3":
        return "s3-notification"
    if records_source == "aws:dynamodb":
        return "dynamodb-stream"
    return None


def function_dimension(default: str) -> str:
    """The `Function` dimension: the deployed function name Lambda sets, else the default."""
    return os.environ.get("AWS_LAMBDA_FUNCTION_NAME") or default


def unhandled(
    event: Any,
    reason: str,
    *,
    logger: Any,
    metrics: Metrics,
    environment: str,
    function: str,
) -> UnhandledEvent:
    """Log and count an event this function does not handle; returns the exception to raise."""
    logger.error(
        "unhandled event",
        extra={"reason": reason, "event_shape": event_shape(event), "function": function},
    )
    metrics.count("UnhandledEvents", {"Environment": environment, "Function": function})
    return UnhandledEvent(f"{function}: {reason}")
