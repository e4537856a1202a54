"""stream_logic: the pure per-record decisions of the stream processor (no AWS)."""

from __future__ import annotations

import json
from typing import Any

import pytest

import tests.fnkit  # noqa: F401  (puts the function folders on sys.path)
from tests.fnkit import load_event

from replshared.errors import MalformedRecord  # noqa: E402
from stream_logic import (  # noqa: E402
    DeleteItem,
    PutItem,
    SkipRecord,
    copy_lag_seconds,
    delete_request,
    plan_record,
    put_request,
    schema_event,
    written_at_ms,
)

BATCH = load_event("dynamodb_stream_batch.json")["Records"]


def test_plans_for_the_documented_batch() -> None:
    plans = [plan_record(r, "dev") if i != 6 else None for i, r in enumerate(BATCH)]

    assert isinstance(plans[0], PutItem) and plans[0].version == "1" and not plans[0].is_schema
    assert isinstance(plans[1], PutItem) and plans[1].version == "2" and plans[1].item["replicas"] == {"N": "3"}
    assert isinstance(plans[2], PutItem) and plans[2].is_schema
    assert plans[3] == SkipRecord("origin is staging, not dev: not sent on")
    assert isinstance(plans[4], SkipRecord) and "LOCAL#" in plans[4].reason
    assert plans[5] == DeleteItem(pk="FEATURE#dark-mode", sk="flag", version="4", is_schema=False)
    with pytest.raises(MalformedRecord, match="version"):
        plan_record(BATCH[6], "dev")


def test_same_batch_in_staging_skips_everything_from_dev() -> None:
    plans = [plan_record(r, "staging") for r in BATCH[:6]]
    assert isinstance(plans[3], PutItem)  # staging's own item
    assert all(isinstance(p, SkipRecord) for i, p in enumerate(plans) if i != 3)


def test_schema_detected_by_type_attribute() -> None:
    record = json.loads(json.dumps(BATCH[0]))
    record["dynamodb"]["NewImage"]["type"] = {"S": "SCHEMA"}
    assert plan_record(record, "dev").is_schema


def _mutated(path: list[str], value: Any = ...) -> dict[str, Any]:
    record = json.loads(json.dumps(BATCH[1]))
    node = record
    for key in path[:-1]:
        node = node[key]
    if value is ...:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return record


@pytest.mark.parametrize("path, value", [
    (["eventName"], "TRUNCATE"),
    (["eventSource"], "aws:kinesis"),
    (["dynamodb"], ...),
    (["dynamodb", "Keys"], ...),
    (["dynamodb", "Keys", "pk"], {"N": "1"}),
    (["dynamodb", "Keys", "sk"], {"S": ""}),
    (["dynamodb", "NewImage"], ...),
    (["dynamodb", "NewImage", "origin"], ...),
    (["dynamodb", "NewImage", "version"], {"N": "NaN"}),
    (["dynamodb", "NewImage", "version"], {"N": "1e400"}),
    (["dynamodb", "NewImage", "version"], {"N": "1", "S": "1"}),
    (["dynamodb", "NewImage", "pk"], {"S": "SERVICE#other"}),
])
def test_malformed_records_raise(path: list[str], value: Any) -> None:
    with pytest.raises(MalformedRecord):
        plan_record(_mutated(path, value), "dev")


def test_remove_without_old_image_is_malformed() -> None:
    record = json.loads(json.dumps(BATCH[5]))
    del record["dynamodb"]["OldImage"]
    with pytest.raises(MalformedRecord, match="NEW_AND_OLD_IMAGES"):
        plan_record(record, "dev")


def test_write_requests_are_conditional_on_version() -> None:
    put = plan_record(BATCH[1], "dev")
    request = put_request(put, "t")
    assert request["ConditionExpression"] == "attribute_not_exists(pk) OR #version < :v"
    assert request["ExpressionAttributeNames"] == {"#version": "version"}
    assert request["ExpressionAttributeValues"] == {":v": {"N": "2"}}
    assert request["Item"] is put.item and request["TableName"] == "t"

    delete = delete_request(plan_record(BATCH[5], "dev"), "t")
    assert delete["Key"] == {"pk": {"S": "FEATURE#dark-mode"}, "sk": {"S": "flag"}}
    assert delete["ConditionExpression"] == "#version <= :v"
    assert delete["ExpressionAttributeValues"] == {":v": {"N": "4"}}


def test_schema_event_entry() -> None:
    entry = schema_event(plan_record(BATCH[2], "dev"), environment="dev", targets=("staging",),
                         event_bus="default", sequence_number="3")
    assert entry["Source"] == "replctl.metadata"
    assert entry["DetailType"] == "Metadata Schema Change"
    assert entry["EventBusName"] == "default"
    assert json.loads(entry["Detail"]) == {"environment": "dev", "change": "UPSERT", "pk": "SCHEMA", "sk": "orders",
                                           "version": "5", "targets": ["staging"], "sequenceNumber": "3"}


@pytest.mark.parametrize("attribute, expected", [
    ({"N": "1714564800123"}, 1714564800123),
    ({"N": "1714564800123.0"}, 1714564800123),
    ({"N": "1714564800.5"}, None),  # seconds with a fraction: not the contract's milliseconds
    ({"N": "-5"}, None),
    ({"N": "NaN"}, None),
    ({"N": "x"}, None),
    ({"S": "1714564800123"}, None),
    (None, None),
])
def test_written_at_ms_is_read_only_when_it_is_whole_milliseconds(attribute: Any, expected: int | None) -> None:
    image = {"pk": {"S": "A"}} | ({"written_at_ms": attribute} if attribute is not None else {})
    assert written_at_ms(image) == expected


def test_a_put_carries_the_source_write_time_and_a_malformed_one_only_skips_the_measurement() -> None:
    record = json.loads(json.dumps(BATCH[0]))
    record["dynamodb"]["NewImage"]["written_at_ms"] = {"N": "1714564800123"}
    assert plan_record(record, "dev").written_at_ms == 1714564800123
    record["dynamodb"]["NewImage"]["written_at_ms"] = {"N": "soon"}
    action = plan_record(record, "dev")
    assert isinstance(action, PutItem) and action.written_at_ms is None  # still propagated
    assert put_request(action, "t")["Item"] == record["dynamodb"]["NewImage"]  # the copy is the item as is
    assert isinstance(plan_record(BATCH[0], "dev"), PutItem) and plan_record(BATCH[0], "dev").written_at_ms is None


def test_copy_lag_is_milliseconds_precise_and_never_negative() -> None:
    assert copy_lag_seconds(1_714_564_800_123, 1_714_564_800.957) == pytest.approx(0.834)
    assert copy_lag_seconds(1_714_564_800_123, 1_714_564_800.0) == 0.0  # the writer's clock ran ahead
