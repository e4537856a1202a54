"""StreamProcessorLambda against three moto accounts, called in-process with stream batches.

moto's own stream -> Lambda mapping cannot run handler code (moto-notes §5), so the batches are
the documented record shape (tests/events/dynamodb_stream_batch.json) or built from real items.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fnkit import TABLE, Estate, estate, load_event, metric_values  # noqa: F401

import stream_processor  # noqa: E402
from replshared.errors import UnhandledEvent  # noqa: E402

BATCH = "dynamodb_stream_batch.json"
MALFORMED_SEQ = "111000000000000000007"


def record(seq: str, name: str, image: dict[str, Any], *, old: dict[str, Any] | None = None) -> dict[str, Any]:
    stream: dict[str, Any] = {"Keys": {"pk": image["pk"], "sk": image["sk"]}, "SequenceNumber": seq,
                              "StreamViewType": "NEW_AND_OLD_IMAGES", "ApproximateCreationDateTime": 1714564800}
    if name == "REMOVE":
        stream["OldImage"] = image
    else:
        stream["NewImage"] = image
        if old is not None:
            stream["OldImage"] = old
    return {"eventID": seq[-8:], "eventName": name, "eventVersion": "1.1", "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1", "dynamodb": stream,
            "eventSourceARN": "arn:aws:dynamodb:us-east-1:111111111111:table/replctl-metadata/stream/x"}


def image(pk: str, sk: str, origin: str, version: int, **extra: Any) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}, "origin": {"S": origin}, "version": {"N": str(version)}, **extra}


def put_raw(e: Estate, env: str, item: dict[str, Any]) -> None:
    e.client(env, "dynamodb").put_item(TableName=TABLE, Item=item)


def schema_queue(e: Estate, env: str = "dev") -> str:
    """An SQS queue receiving the schema-change events (moto delivers EventBridge -> SQS)."""
    sqs, events = e.client(env, "sqs"), e.client(env, "events")
    url = sqs.create_queue(QueueName="schema-changes")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="schema-changes", EventPattern=json.dumps(
        {"source": ["replctl.metadata"], "detail-type": ["Metadata Schema Change"]}))
    events.put_targets(Rule="schema-changes", Targets=[{"Id": "q", "Arn": arn}])
    return url


def received(e: Estate, url: str, env: str = "dev") -> list[dict[str, Any]]:
    messages = e.client(env, "sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def test_batch_with_one_malformed_record_fails_only_that_record(
    estate: Estate, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN downstream copies of the flag that dev deletes in this batch, and an EventBridge target
    for env in ("staging", "prod"):
        put_raw(estate, env, image("FEATURE#dark-mode", "flag", "dev", 4, enabled={"BOOL": True}))
    url = schema_queue(estate)

    response = estate.invoke(stream_processor, load_event(BATCH), "dev")

    # THEN exactly the malformed record is reported ...
    assert response == {"batchItemFailures": [{"itemIdentifier": MALFORMED_SEQ}]}
    # ... and the others were applied downstream
    for env in ("staging", "prod"):
        billing = estate.item(env, "SERVICE#billing", "config")
        assert billing["version"] == 2 and billing["replicas"] == 3 and billing["origin"] == "dev"
        assert estate.item(env, "SCHEMA", "orders")["fields"] == ["id", "amount"]
        assert estate.item(env, "FEATURE#dark-mode", "flag") is None  # REMOVE propagated
        assert estate.item(env, "SERVICE#ledger", "config") is None  # origin staging: not ours
        assert estate.item(env, "LOCAL#LAG", "staging") is None  # LOCAL#: never propagated
        assert estate.item(env, "SERVICE#audit", "config") is None  # the malformed one
    # the SCHEMA item was announced once
    events = received(estate, url)
    assert [(ev["source"], ev["detail-type"]) for ev in events] == [("replctl.metadata", "Metadata Schema Change")]
    assert events[0]["detail"] == {
        "environment": "dev", "change": "UPSERT", "pk": "SCHEMA", "sk": "orders", "version": "5",
        "targets": ["staging", "prod"], "sequenceNumber": "111000000000000000003"}
    out = capsys.readouterr().out
    # INSERT + MODIFY + SCHEMA + REMOVE, each to two targets
    assert metric_values(out, "ItemsPropagated") == [({"Environment": "dev"}, 8.0)]
    assert metric_values(out, "ItemPropagationFailures") == [({"Environment": "dev"}, 1.0)]


def test_older_version_does_not_overwrite_newer_item(estate: Estate) -> None:
    put_raw(estate, "staging", image("SERVICE#billing", "config", "dev", 5, owner={"S": "newer"}))
    batch = {"Records": [record("1", "MODIFY", image("SERVICE#billing", "config", "dev", 3, owner={"S": "older"}))]}

    response = estate.invoke(stream_processor, batch, "dev")

    assert response == {"batchItemFailures": []}  # a lost race is success by idempotence
    assert estate.item("staging", "SERVICE#billing", "config")["owner"] == "newer"
    assert estate.item("prod", "SERVICE#billing", "config")["owner"] == "older"  # prod had nothing


def test_same_version_replayed_is_a_no_op(estate: Estate) -> None:
    batch = {"Records": [record("1", "INSERT", image("K", "1", "dev", 2, v={"S": "a"}))]}
    estate.invoke(stream_processor, batch, "dev")
    put_raw(estate, "prod", image("K", "1", "dev", 2, v={"S": "changed-downstream"}))

    assert estate.invoke(stream_processor, batch, "dev") == {"batchItemFailures": []}
    assert estate.item("prod", "K", "1")["v"] == "changed-downstream"


def test_remove_does_not_delete_a_newer_downstream_item(estate: Estate) -> None:
    put_raw(estate, "prod", image("K", "1", "dev", 9))
    put_raw(estate, "staging", image("K", "1", "dev", 3))

    response = estate.invoke(stream_processor, {"Records": [record("1", "REMOVE", image("K", "1", "dev", 3))]}, "dev")

    assert response == {"batchItemFailures": []}
    assert estate.item("prod", "K", "1")["version"] == 9
    assert estate.item("staging", "K", "1") is None


def test_item_from_upstream_is_not_sent_on_and_never_back(estate: Estate) -> None:
    # In staging, an item that came from dev (origin dev) shows up in staging's stream.
    batch = {"Records": [
        record("1", "INSERT", image("FROM#dev", "x", "dev", 1)),
        record("2", "INSERT", image("FROM#staging", "x", "staging", 1)),
    ]}

    assert estate.invoke(stream_processor, batch, "staging") == {"batchItemFailures": []}

    assert estate.item("prod", "FROM#dev", "x") is None  # dev sends its own items to prod
    assert estate.item("prod", "FROM#staging", "x")["origin"] == "staging"
    assert estate.item("dev", "FROM#staging", "x") is None  # nothing flows upstream


def test_prod_propagates_nothing(estate: Estate) -> None:
    batch = {"Records": [record("1", "INSERT", image("FROM#prod", "x", "prod", 1))]}

    assert estate.invoke(stream_processor, batch, "prod") == {"batchItemFailures": []}

    assert estate.item("dev", "FROM#prod", "x") is None
    assert estate.item("staging", "FROM#prod", "x") is None


def test_schema_removal_is_announced(estate: Estate) -> None:
    url = schema_queue(estate)
    batch = {"Records": [record("9", "REMOVE", image("T", "1", "dev", 2, type={"S": "SCHEMA"}))]}

    assert estate.invoke(stream_processor, batch, "dev") == {"batchItemFailures": []}

    assert [ev["detail"]["change"] for ev in received(estate, url)] == ["REMOVE"]


def test_failing_target_fails_the_record_and_is_retried_idempotently(estate: Estate) -> None:
    estate.client("prod", "dynamodb").delete_table(TableName=TABLE)
    batch = {"Records": [record("1", "INSERT", image("K", "1", "dev", 1)), record("2", "INSERT", image("K", "2", "dev", 1))]}

    first = estate.invoke(stream_processor, batch, "dev")
    assert first == {"batchItemFailures": [{"itemIdentifier": "1"}, {"itemIdentifier": "2"}]}
    assert estate.item("staging", "K", "1")["version"] == 1  # staging got it anyway

    estate.create_table("prod")
    assert estate.invoke(stream_processor, batch, "dev") == {"batchItemFailures": []}  # the retry
    assert estate.item("prod", "K", "2")["version"] == 1


def test_empty_batch(estate: Estate) -> None:
    assert estate.invoke(stream_processor, {"Records": []}, "dev") == {"batchItemFailures": []}


@pytest.mark.parametrize("event", [
    load_event("scheduled.json"),
    load_event("s3_replication_failed.json"),
    {"Records": [{"eventSource": "aws:dynamodb", "eventName": "INSERT", "dynamodb": {"Keys": {}}}]},
    {"Records": "nope"},
    "text",
])
def test_events_that_are_not_stream_batches_are_unhandled(
    estate: Estate, capsys: pytest.CaptureFixture[str], event: Any
) -> None:
    with pytest.raises(UnhandledEvent):
        estate.invoke(stream_processor, event, "dev", AWS_LAMBDA_FUNCTION_NAME="replctl-stream-processor")
    assert metric_values(capsys.readouterr().out, "UnhandledEvents") == [
        ({"Environment": "dev", "Function": "replctl-stream-processor"}, 1.0)]


def test_items_propagated_cross_account_carry_the_source_account_data(estate: Estate) -> None:
    # Written through the agent role into each downstream account, not into the caller's.
    estate.invoke(stream_processor, {"Records": [record("1", "INSERT", image("K", "1", "dev", 1))]}, "dev")
    assert estate.item("dev", "K", "1") is None
    for env in ("staging", "prod"):
        assert estate.item(env, "K", "1") == {"pk": "K", "sk": "1", "origin": "dev", "version": 1}
