"""StreamProcessorLambda: one-way metadata propagation from this table's stream to downstream.

Handler: `stream_processor.handler` (DynamoDB stream event source mapping with
`ReportBatchItemFailures`). Each record is planned by the pure `stream_logic.plan_record`, then
written to every downstream environment's table through the assumed replication-agent role with
a conditional write, so an older version never replaces a newer one. A conditional-check failure
means the target already has this version or a newer one: success by idempotence, not an error.
Items of type SCHEMA also produce an EventBridge event (`replctl.metadata` /
`Metadata Schema Change`) on EVENT_BUS_NAME. Each copy of an item carrying `written_at_ms` is
timed when it is written (`MetadataReplicationLag`, millisecond resolution, per target): the lag
alarm's metric, measured where replication happens rather than by a poll.

The response lists the sequence numbers of the records that failed
(`{"batchItemFailures": [{"itemIdentifier": <SequenceNumber>}]}`), so one bad record neither
blocks the shard nor replays the records that succeeded. A batch whose records cannot even be
identified (no sequence numbers) is not a stream batch at all: it is reported as unhandled and
raised, which fails the invocation (Lambda then bisects / retries / sends it to the on-failure
destination).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from replshared.clients import AwsClients, clients_for
from replshared.errors import HandlerError, ProcessingFailed
from replshared.events import function_dimension, unhandled
from replshared.settings import Settings
from replshared.telemetry import Metrics, get_logger
from stream_logic import PutItem, SkipRecord, copy_lag_seconds, delete_request, plan_record, put_request, schema_event

FUNCTION = "stream-processor"
logger = get_logger(FUNCTION)


def _is_conditional_failure(error: Exception) -> bool:
    response = getattr(error, "response", None)
    return isinstance(response, dict) and response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def apply_record(
    record: dict[str, Any], settings: Settings, clients: AwsClients, metrics: Metrics,
    *, clock: Callable[[], float] = time.time,
) -> str:
    """Propagate one stream record downstream; returns what was done (for the log)."""
    sequence_number = record["dynamodb"]["SequenceNumber"]
    action = plan_record(record, settings.environment)
    if isinstance(action, SkipRecord):
        return f"skipped: {action.reason}"
    dims = {"Environment": settings.environment}
    failures: list[str] = []
    for target in settings.downstream:
        try:
            table = clients.remote(target, "dynamodb")
            if isinstance(action, PutItem):
                table.put_item(**put_request(action, settings.table_name))
                if action.written_at_ms is not None:
                    # The copy is written (PutItem has returned): this is the item's lag there.
                    metrics.value("MetadataReplicationLag", "Seconds",
                                  copy_lag_seconds(action.written_at_ms, clock()), {**dims, "Target": target})
            else:
                table.delete_item(**delete_request(action, settings.table_name))
        except Exception as error:  # noqa: BLE001 - every failure is reported per target
            if _is_conditional_failure(error):
                continue  # the target already holds this version or a newer one
            failures.append(f"{target}: {type(error).__name__}: {error}")
            continue
        metrics.count("ItemsPropagated", dims)
    if failures:
        raise ProcessingFailed("; ".join(failures))
    if action.is_schema:
        entry = schema_event(
            action,
            environment=settings.environment,
            targets=settings.downstream,
            event_bus=settings.event_bus_name,
            sequence_number=sequence_number,
        )
        result = clients.local("events").put_events(Entries=[entry])
        if result.get("FailedEntryCount"):
            codes = [e.get("ErrorCode") for e in result.get("Entries", []) if e.get("ErrorCode")]
            raise ProcessingFailed(f"schema-change event not accepted: {codes}")
    verb = "put" if isinstance(action, PutItem) else "deleted"
    return f"{verb} version {action.version} in {', '.join(settings.downstream) or 'no downstream environment'}"


def _identifiable(event: Any) -> bool:
    """A batch whose every record has a sequence number, so failures can be reported per record.

    The record's other fields (even its eventSource) are checked per record, so one odd record
    is reported on its own instead of failing the batch.
    """
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list) or not records:
        return False
    for record in records:
        if not isinstance(record, dict):
            return False
        stream = record.get("dynamodb")
        if not isinstance(stream, dict):
            return False
        number = stream.get("SequenceNumber")
        if not isinstance(number, str) or not number:
            return False
    return True


@logger.inject_lambda_context(log_event=False)
def handler(event: Any, context: Any) -> dict[str, Any]:
    settings = Settings.from_env()
    metrics = Metrics(settings.metrics_namespace)
    function = function_dimension(f"replctl-{FUNCTION}")
    try:
        if isinstance(event, dict) and event.get("Records") == []:
            logger.info("empty batch")
            return {"batchItemFailures": []}
        if not _identifiable(event):
            raise unhandled(
                event,
                "not a DynamoDB stream batch with sequence numbers",
                logger=logger,
                metrics=metrics,
                environment=settings.environment,
                function=function,
            )
        clients = clients_for(settings, FUNCTION)
        dims = {"Environment": settings.environment}

        def record_handler(record: DynamoDBRecord) -> str:
            raw = record.raw_event
            try:
                outcome = apply_record(raw, settings, clients, metrics)
            except Exception as error:
                metrics.count("ItemPropagationFailures", dims)
                logger.warning(
                    "record failed",
                    extra={
                        "sequence_number": raw["dynamodb"]["SequenceNumber"],
                        "event_name": str(raw.get("eventName"))[:20],
                        "error": f"{type(error).__name__}: {error}"[:500],
                    },
                )
                raise
            logger.debug("record done", extra={"sequence_number": raw["dynamodb"]["SequenceNumber"], "outcome": outcome})
            return outcome

        # A batch where every record failed is reported like any other (all sequence numbers
        # listed) rather than raised: Lambda retries from the first failure either way.
        processor = BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)
        response = process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
        logger.info(
            "batch processed",
            extra={"records": len(event["Records"]), "failed": len(response.get("batchItemFailures", []))},
        )
        return response
    except HandlerError:
        raise
    except Exception as error:
        logger.exception("invocation failed")
        raise ProcessingFailed(f"{FUNCTION}: {type(error).__name__}: {error}") from error
    finally:
        metrics.flush()
